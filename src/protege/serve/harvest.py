"""`protege harvest`: the flywheel. Teacher-answered traffic becomes new training rows.

Only requests the teacher answered, that finished well and that no one rated down are used;
PII is redacted from every message (unless the owner set `guard.redact_pii: false`); questions
that repeat the dataset (train, eval or an earlier harvest, so eval stays clean) or each other
are dropped. The rows land in a file of harvest's own, `artifacts/data/harvest-<n>.jsonl`,
listed in the dataset manifest (see protege.dataset) and in the card's harvest section: the
next `protege train` learns from them, and the next `protege synth` cannot lose them.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protege import __version__, artifacts, dataset
from protege.config import section_hash
from protege.errors import ProtegeError
from protege.project import Project


@dataclass
class HarvestResult:
    version: int | None  # None when nothing new was found
    path: Path | None
    candidates: int  # teacher-answered, not rated down
    added: int
    duplicates: int
    redactions: int
    rated_up: int


def _question(messages: list[dict[str, Any]]) -> str:
    return next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")


def to_row(project: Project, request: dict[str, Any], persona: str, redact: Any) -> tuple[dict[str, Any], int]:
    """A traffic row as a train.jsonl row (docs/formats.md), PII redacted; (row, redactions)."""
    redactions = 0

    def clean(text: str) -> str:
        nonlocal redactions
        text, n = redact(text)
        redactions += n
        return text

    asked = [m for m in json.loads(request["messages"]) if m["role"] in ("user", "assistant")]
    messages = [{"role": "system", "content": persona}]
    messages += [{"role": m["role"], "content": clean(m["content"])} for m in asked]
    messages.append({"role": "assistant", "content": clean(request["answer"])})
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:10]
    row = {
        "id": f"h-{digest}",
        "type": "traffic",
        "persona": "a real user",
        "messages": messages,
        "source": {"chunks": [], "files": [], "text": "", "traffic_id": request["id"]},
        "teacher": {"ref": project.config.teacher.ref, "logprobs": None},
        "scores": {"rating": request["rating"]},
        "guard": {"safe": True, "categories": [], "redactions": redactions},
        "meta": {"config_hash": section_hash(project.config.teacher, project.config.guard),
                 "code_version": __version__, "format": "closed-book", "harvested": time.time()},
    }  # fmt: skip
    return row, redactions


@dataclass
class Selection:
    """What a harvest would add now: the candidate requests and the fresh rows made from them."""

    requests: list[dict[str, Any]]  # teacher-answered, finished well, not rated down
    rows: list[dict[str, Any]]  # new train rows: not harvested before, not near-duplicates
    duplicates: int
    redactions: int
    train: list[dict[str, Any]]  # every training row so far: train.jsonl and the earlier harvests

    @property
    def rated_up(self) -> int:
        return sum(1 for r in self.requests if r["rating"] and r["rating"] > 0)


def select(project: Project, db: str | None = None) -> Selection:
    """The rows a harvest would add, without writing anything (the owner's page shows them too)."""
    from protege.corpus import load_chunks
    from protege.guard import published_pii, redact
    from protege.traffic import harvestable, make_engine
    from protege.synth.dedup import near_duplicates

    paths = project.paths
    if db is None and not paths.traffic_db.is_file():
        raise ProtegeError(f"{paths.traffic_db}: no traffic log yet", hint=f"serve it: `protege serve {project.root}`")
    engine = make_engine(db or f"sqlite:///{paths.traffic_db}")
    try:
        requests = harvestable(engine, project.name)
    finally:
        engine.dispose()

    harvested = [r for p in dataset.parts(paths) for r in artifacts.read_jsonl(paths.data / p.file)]
    train = artifacts.read_jsonl(paths.train_jsonl) + harvested
    existing = train + artifacts.read_jsonl(paths.eval_jsonl)
    seen_traffic = {r.get("source", {}).get("traffic_id") for r in existing}
    persona = project.system_prompt()
    try:
        public = published_pii(c.text for c in load_chunks(project))  # the owner's own contacts stay
    except ProtegeError:  # no documents: nothing is published
        public = frozenset()

    def clean(text: str) -> tuple[str, int]:
        return redact(text, keep=public) if project.config.guard.redact_pii else (text, 0)

    rows = [
        to_row(project, request, persona, clean)[0]
        for request in requests
        if request["id"] not in seen_traffic and (request["answer"] or "").strip()
    ]
    questions = [_question(r["messages"]) for r in existing] + [_question(r["messages"]) for r in rows]
    repeats = near_duplicates(questions, project.config.synth.dedup_threshold)
    fresh = [r for i, r in enumerate(rows) if len(existing) + i not in repeats]
    redactions = sum(r["guard"]["redactions"] for r in fresh)
    return Selection(requests, fresh, len(rows) - len(fresh), redactions, train)


def run(project: Project, db: str | None = None) -> HarvestResult:
    """Harvest the project's traffic log into a new dataset part (nothing written if none)."""
    sel = select(project, db)
    fresh, paths = sel.rows, project.paths
    result = HarvestResult(None, None, len(sel.requests), len(fresh), sel.duplicates, sel.redactions, sel.rated_up)
    if not fresh:
        return result

    part = dataset.add_part(paths, fresh, "harvest", added=len(fresh), duplicates=result.duplicates, redactions=sel.redactions,
                            rated_up=result.rated_up, traffic_ids=[r["source"]["traffic_id"] for r in fresh])  # fmt: skip
    card = paths.card.read_text(encoding="utf-8") if paths.card.is_file() else ""
    artifacts.write_text(paths.card, dataset.with_harvest_section(card, dataset.parts(paths)))
    result.version, result.path = part.version, paths.data / part.file
    return result
