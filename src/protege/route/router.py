"""A fitted router as the gateway uses it, and its artifact on disk (router.json + router.npz).

    router = protege.route.load("artifacts/router")
    decision = router.decide(messages)          # Decision(route, score, reason)
    if router.answer_first:                     # the cascade: the student answers first
        answer = <student answer with logprobs>
        if router.escalate(answer.mean_logprob, answer.min_logprob):
            answer = <teacher answer>

The artifact is plain data: numeric arrays in an .npz read with allow_pickle=False, and JSON.
router.json holds the sha256 of router.npz, so a tampered, truncated or mismatched pair fails
with one ProtegeError instead of routing on garbage; loading never runs code from the files.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from protege.errors import ProtegeError
from protege.route.labels import query_text
from protege.route.routers import SCORERS, Cascade, Queries, Scorer

FORMAT = 1
JSON_NAME = "router.json"
NPZ_NAME = "router.npz"


@dataclass(frozen=True)
class Decision:
    route: Literal["student", "teacher"]
    score: float  # higher = more need for the teacher (0.0 for the cascade before it answers)
    reason: str


class Router:
    """A scorer plus the calibrated threshold: a query goes to the teacher when score >= threshold."""

    def __init__(self, scorer: Scorer, threshold: float, info: dict[str, Any] | None = None):
        self.scorer = scorer
        self.threshold = float(threshold)
        self.info = info or {}

    @property
    def kind(self) -> str:
        return self.scorer.kind

    @property
    def answer_first(self) -> bool:
        """True for the cascade: decide() cannot know yet; the student answers, then escalate()."""
        return self.scorer.kind == "cascade"

    def score(self, messages: list[dict[str, Any]]) -> float:
        """The router's score for one conversation (its last user message); not for the cascade."""
        text = query_text(messages)
        emb = None
        if self.scorer.needs_embedding:
            from protege.models.query_encoder import query_encoder

            emb = query_encoder().encode_one(text)[None, :]
        return float(self.scorer.score(Queries(texts=[text], emb=emb))[0])

    @property
    def _feature(self) -> str:
        """The cascade's logprob feature (only a cascade router answers first)."""
        assert isinstance(self.scorer, Cascade)
        return self.scorer.feature

    def decide(self, messages: list[dict[str, Any]]) -> Decision:
        """Where to send this conversation.

        For the cascade (`answer_first`), the answer is always the student with
        reason "cascade: answer first"; call `escalate()` with the student's logprobs afterwards.
        """
        if self.answer_first:
            return Decision("student", 0.0, f"cascade: answer first, escalate if {self._feature} < {-self.threshold:.3f}")
        score = self.score(messages)
        if score >= self.threshold:
            return Decision("teacher", score, f"{self.kind}: score {score:.3f} >= threshold {self.threshold:.3f}")
        return Decision("student", score, f"{self.kind}: score {score:.3f} < threshold {self.threshold:.3f}")

    def escalate(self, mean_logprob: float | None, min_logprob: float | None = None) -> bool:
        """Cascade only: True when the student's answer is too unsure and the teacher should answer.

        Uses the feature the cascade was fitted on (mean or min token logprob); an answer
        without that logprob escalates, since its confidence is unknown.
        """
        if not self.answer_first:
            raise ProtegeError(f"escalate() is for the cascade router; this router is {self.kind}")
        value = mean_logprob if self._feature == "mean_logprob" else min_logprob
        if value is None or not math.isfinite(value):
            return True
        return -float(value) >= self.threshold


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def save(directory: Path, router: Router) -> Path:
    """Write router.npz then router.json (with the npz's sha256); each replaced atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    npz, tmp_npz = directory / NPZ_NAME, directory / f".{NPZ_NAME}.tmp"
    with tmp_npz.open("wb") as f:
        arrays: dict[str, Any] = router.scorer.arrays()  # numeric arrays only: nothing here pickles
        np.savez(f, **arrays)
    os.replace(tmp_npz, npz)
    doc = {
        "format": FORMAT,
        "kind": router.kind,
        "threshold": router.threshold,
        "params": router.scorer.params(),
        "npz_sha256": sha256_file(npz),
        **router.info,
    }
    path, tmp = directory / JSON_NAME, directory / f".{JSON_NAME}.tmp"
    tmp.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_info(path: Path | str) -> dict[str, Any]:
    """router.json as a dict, checked for the fields every router has."""
    path = Path(path)
    json_path = path / JSON_NAME if path.is_dir() else path
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProtegeError(f"{json_path}: no router here", hint="fit one with `protege route fit DIR`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtegeError(f"{json_path}: unreadable router file ({exc})", hint="re-run `protege route fit`") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ProtegeError(f"{json_path}: not a protege router (format {FORMAT})", hint="re-run `protege route fit`")
    threshold, params = doc.get("threshold"), doc.get("params")
    if doc.get("kind") not in SCORERS or not isinstance(params, dict) or not isinstance(doc.get("npz_sha256"), str):
        raise ProtegeError(f"{json_path}: missing or unknown router kind, params or checksum")
    if not isinstance(threshold, int | float) or not math.isfinite(threshold):
        raise ProtegeError(f"{json_path}: the threshold is not a finite number")
    return doc


def load(path: Path | str) -> Router:
    """The router in a folder (or at a router.json); any damage is one ProtegeError.

    Returns a `Router`: `.decide(messages) -> Decision(route, score, reason)`; for the cascade
    (`.answer_first`), decide() says "answer first" and `.escalate(mean_logprob)` decides after.
    """
    path = Path(path)
    doc = read_info(path)
    npz = (path if path.is_dir() else path.parent) / NPZ_NAME
    if not npz.is_file():
        raise ProtegeError(f"{npz}: missing (router.json needs it)", hint="re-run `protege route fit`")
    if sha256_file(npz) != doc["npz_sha256"]:
        raise ProtegeError(f"{npz}: checksum does not match router.json (tampered or truncated)", hint="re-run `protege route fit`")
    try:
        with np.load(npz, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ProtegeError(f"{npz}: unreadable router arrays ({exc})") from None
    try:
        scorer = SCORERS[doc["kind"]].restore(doc["params"], arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtegeError(f"{path}: router parameters are malformed ({exc})") from None
    info = {k: v for k, v in doc.items() if k not in ("format", "kind", "threshold", "params", "npz_sha256")}
    return Router(scorer, doc["threshold"], info)
