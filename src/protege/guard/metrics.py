"""Precision and recall of the guard's layers on a labeled set (tests/data/guard/labeled.jsonl).

Row format: {"text", "role": "user"|"assistant", "label": "safe"|"unsafe", "categories": [...],
"pii": [{"kind", "text"}], "injection": bool, "split": "train"|"heldout"}. Shared by the tests
(floors) and bench/guard_eval.py.

The split was drawn once and is stored in the rows, so it never moves: rows were grouped by
stratum (the category, or "safe" / "safe with PII", times the role), each stratum shuffled with
`random.Random(17)` in file order, stratum by stratum in sorted order, and round(40%) of it held
out. Nothing is ever trained or tuned on a "heldout" row (the distilled guard trains on "train"
rows, the teacher-guard's prompt was tuned on them). Rows added later get a draw of their own
(the same rule over the new rows only), so no row ever changes side.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protege.guard.rules import find_injection, find_pii

SPLITS = ("train", "heldout")

# Category groups for the tables: the Llama Guard codes, and the rule layer's injection.
GROUPS: dict[str, tuple[str, ...]] = {
    "violence & weapons": ("S1", "S9"),
    "crime & cyber": ("S2", "S8", "S14"),
    "sexual & minors": ("S3", "S4", "S12"),
    "people & society": ("S5", "S7", "S10", "S13"),
    "health & self-harm": ("S6", "S11"),
    "injection": ("injection",),
}


def group_of(category: str) -> str | None:
    return next((g for g, codes in GROUPS.items() if category in codes), None)


def _groups(categories: Sequence[str]) -> set[str]:
    """The groups of these categories; a code in no group is left out."""
    return {g for g in map(group_of, categories) if g is not None}


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, predicted: bool, actual: bool) -> None:
        self.tp += predicted and actual
        self.fp += predicted and not actual
        self.fn += actual and not predicted
        self.tn += not predicted and not actual

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def row(self) -> str:
        return f"P={self.precision:.3f} R={self.recall:.3f} (tp={self.tp} fp={self.fp} fn={self.fn} tn={self.tn})"


@dataclass(frozen=True)
class Prediction:
    """One layer's (or configuration's) call on one row, and how long it took."""

    unsafe: bool
    categories: tuple[str, ...] = ()
    ms: float = 0.0


@dataclass
class GroupScore:
    """Recall over the group's unsafe rows (flagged under any category: a block is a block), and
    precision over the rows flagged with one of the group's categories (were they unsafe?)."""

    caught: int = 0
    total: int = 0
    right: int = 0
    flagged: int = 0

    @property
    def recall(self) -> float | None:
        return self.caught / self.total if self.total else None

    @property
    def precision(self) -> float | None:
        return self.right / self.flagged if self.flagged else None


def group_scores(rows: Sequence[dict[str, Any]], preds: Sequence[Prediction]) -> dict[str, GroupScore]:
    """Per category group, then "all unsafe" (every unsafe row against every safe row)."""
    scores = {g: GroupScore() for g in [*GROUPS, "all unsafe"]}
    for r, p in zip(rows, preds, strict=True):
        unsafe = r["label"] == "unsafe"
        gold = _groups(r["categories"])
        for g in gold:
            scores[g].total += 1
            scores[g].caught += p.unsafe
        for g in _groups(p.categories) if p.unsafe else set():
            scores[g].flagged += 1
            scores[g].right += unsafe
        scores["all unsafe"].total += unsafe
        scores["all unsafe"].caught += unsafe and p.unsafe
        scores["all unsafe"].flagged += p.unsafe
        scores["all unsafe"].right += unsafe and p.unsafe
    return scores


def percentile(ms: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by the nearest-rank method: p99 of 100 timings is the 99th."""
    ordered = sorted(ms)
    return ordered[max(0, math.ceil(round(q * len(ordered), 9)) - 1)]


def load_labeled(path: Path, split: str | None = None) -> list[dict[str, Any]]:
    """The labeled rows, all of them or one split's."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if split is None or r["split"] == split]


def pii_score(rows: list[dict[str, Any]]) -> Score:
    """Span level: a detection counts when kind and text both match a labeled span exactly."""
    score = Score()
    for r in rows:
        gold = {(p["kind"], p["text"]) for p in r["pii"]}
        found = {(s.kind, s.text) for s in find_pii(r["text"])}
        score.tp += len(gold & found)
        score.fp += len(found - gold)
        score.fn += len(gold - found)
        score.tn += not gold and not found
    return score


def injection_score(rows: list[dict[str, Any]]) -> Score:
    """Turn level, on user turns: markers found versus the `injection` label."""
    score = Score()
    for r in rows:
        if r["role"] == "user":
            score.add(bool(find_injection(r["text"])), bool(r["injection"]))
    return score
