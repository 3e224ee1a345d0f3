"""`protege harvest`: the flywheel. Teacher-answered traffic becomes new training rows.

Only requests the teacher answered, that finished well and that no one rated down are used;
PII is redacted from every message; questions that repeat the dataset (train or eval, so eval
stays clean) or each other are dropped. The rows land as a new dataset version:
`artifacts/data/harvest-<n>.jsonl`, appended to train.jsonl, recorded in `versions.jsonl` and
in a section of the data card, so the next `protege train` learns from them.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protege import __version__
from protege.config import section_hash
from protege.errors import ProtegeError
from protege.project import Project


@dataclass
class HarvestResult:
    version: int
    path: Path | None  # None when nothing new was found
    candidates: int  # teacher-answered, not rated down
    added: int
    duplicates: int
    redactions: int
    rated_up: int


def _question(messages: list[dict[str, Any]]) -> str:
    return next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _next_version(data_dir: Path) -> int:
    versions = [int(p.stem.split("-")[1]) for p in data_dir.glob("harvest-*.jsonl") if p.stem.split("-")[1].isdigit()]
    return max(versions, default=0) + 1


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
    train: list[dict[str, Any]]  # train.jsonl as it is

    @property
    def rated_up(self) -> int:
        return sum(1 for r in self.requests if r["rating"] and r["rating"] > 0)


def select(project: Project, db: str | None = None) -> Selection:
    """The rows a harvest would add, without writing anything (the owner's page shows them too)."""
    from protege.corpus import load_chunks
    from protege.guard import published_pii, redact
    from protege.serve.agent import persona_for
    from protege.serve.traffic import harvestable, make_engine
    from protege.synth.dedup import near_duplicates

    if db is None and not project.paths.traffic_db.is_file():
        raise ProtegeError(f"{project.paths.traffic_db}: no traffic log yet", hint=f"serve it: `protege serve {project.root}`")
    engine = make_engine(db or f"sqlite:///{project.paths.traffic_db}")
    try:
        requests = harvestable(engine, project.name)
    finally:
        engine.dispose()

    train = _read_jsonl(project.paths.train_jsonl)
    existing = train + _read_jsonl(project.paths.eval_jsonl)
    seen_traffic = {r.get("source", {}).get("traffic_id") for r in train}
    persona = persona_for(project)
    try:
        public = published_pii(c.text for c in load_chunks(project))  # the owner's own contacts stay
    except ProtegeError:  # no documents: nothing is published
        public = frozenset()

    def clean(text: str) -> tuple[str, int]:
        return redact(text, keep=public)

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
    """Harvest the project's traffic log into a new dataset version (nothing written if none)."""
    sel = select(project, db)
    fresh, train, redactions = sel.rows, sel.train, sel.redactions
    data = project.paths.data
    version = _next_version(data)
    result = HarvestResult(version, None, len(sel.requests), len(fresh), sel.duplicates, redactions, sel.rated_up)
    if not fresh:
        return result

    data.mkdir(parents=True, exist_ok=True)
    path = data / f"harvest-{version}.jsonl"
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in fresh)
    path.write_text(lines, encoding="utf-8")
    with project.paths.train_jsonl.open("a", encoding="utf-8") as f:
        f.write(lines)
    record = {
        "version": version, "file": path.name, "created": time.time(), "added": len(fresh),
        "duplicates": result.duplicates, "redactions": redactions, "train_rows": len(train) + len(fresh),
        "train_sha256": hashlib.sha256(project.paths.train_jsonl.read_bytes()).hexdigest(),
        "traffic_ids": [r["source"]["traffic_id"] for r in fresh], "code_version": __version__,
    }  # fmt: skip
    with (data / "versions.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    with project.paths.card.open("a", encoding="utf-8") as f:
        f.write(
            f"\n## Harvest {version} ({time.strftime('%Y-%m-%d %H:%M', time.localtime())})\n\n"
            f"{len(fresh)} row(s) from live traffic the teacher answered ({result.candidates} candidate(s), "
            f"{result.duplicates} dropped as near-duplicates of the dataset or of each other, "
            f"{redactions} PII span(s) redacted, {result.rated_up} rated up by users). "
            f"Rated-down answers are never harvested. File: `{path.name}`; train.jsonl now has "
            f"{record['train_rows']} rows.\n"
        )
    result.path = path
    return result
