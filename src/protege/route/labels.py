"""Routing examples from judged answers: per query, how good the student and the teacher were.

Each example keeps both qualities (the cost-quality curve needs them) and the label a router
learns: "the student is enough", either because its rubric score is within `margin` of the
teacher's, or because the pairwise judge called it a tie or a win (RouteConfig.label).

Quality is the rubric score (0-10) under the margin rule. Under the pairwise rule it is whether
the answer is at least as good as the teacher's (1 for win or tie, 0 for loss; the teacher
scores 1), so the curve measures the same thing the label does.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from protege.config import RouteConfig
from protege.errors import ProtegeError

STUDENTS = ("trained", "untrained")  # answer keys in results rows; the trained one when present
PAIRWISE_OK = {"win": 1.0, "tie": 1.0, "loss": 0.0}


@dataclass(frozen=True)
class Example:
    id: str
    query: str
    source: str  # "eval", "extra" or "traffic"
    q_student: float
    q_teacher: float
    teacher_needed: bool
    mean_logprob: float | None
    min_logprob: float | None
    student_latency_s: float | None


@dataclass
class Examples:
    """Parallel arrays over the usable examples, plus a count of rows skipped and why."""

    items: list[Example]
    skipped: Counter = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def queries(self) -> list[str]:
        return [e.query for e in self.items]

    @property
    def q_student(self) -> np.ndarray:
        return np.array([e.q_student for e in self.items], dtype=np.float64)

    @property
    def q_teacher(self) -> np.ndarray:
        return np.array([e.q_teacher for e in self.items], dtype=np.float64)

    @property
    def y(self) -> np.ndarray:
        """1 where the teacher is needed (the routers' positive class)."""
        return np.array([e.teacher_needed for e in self.items], dtype=np.int64)

    def logprobs(self, name: str) -> np.ndarray:
        """mean_logprob or min_logprob per example; NaN where the endpoint gave none."""
        return np.array([getattr(e, name) if getattr(e, name) is not None else np.nan for e in self.items])

    @property
    def student_latency_s(self) -> np.ndarray:
        return np.array([e.student_latency_s or 0.0 for e in self.items])

    def sources(self) -> dict[str, int]:
        return dict(Counter(e.source for e in self.items))


def query_text(messages: list[dict[str, Any]]) -> str:
    """What a router reads: the last user message (the question as the owner's user wrote it)."""
    for m in reversed(messages):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, list):  # OpenAI content parts
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def student_key(rows: list[dict[str, Any]]) -> str:
    """Which student the router is for: the trained one if the results have it (what the
    gateway serves when an adapter exists), else the untrained base."""
    has = lambda key: any(isinstance((r.get("answers") or {}).get(key), dict) for r in rows)  # noqa: E731
    return next((k for k in STUDENTS if has(k)), STUDENTS[0])


def example_from_row(row: dict[str, Any], config: RouteConfig, source: str, student_key: str) -> Example | str:
    """One results-format row as an Example, or the reason it cannot be used."""
    answers = row.get("answers") or {}
    student, teacher = answers.get(student_key), answers.get("teacher")
    if not isinstance(student, dict) or not isinstance(teacher, dict):
        return f"no {student_key}-student or teacher answer"
    query = row.get("question") or query_text(row.get("messages") or [])
    if not query.strip():
        return "no question text"
    if config.label == "margin":
        rs, rt = student.get("rubric"), teacher.get("rubric")
        if not isinstance(rs, int | float) or not isinstance(rt, int | float):
            return "judge failed (no rubric score)"
        qs, qt = float(rs), float(rt)
        needed = qt - qs > config.margin
    else:
        verdict = student.get("pairwise")
        if verdict not in PAIRWISE_OK:
            return "judge failed (no pairwise verdict)"
        qs, qt = PAIRWISE_OK[verdict], 1.0
        needed = verdict == "loss"
    return Example(
        id=str(row.get("id", "")),
        query=query,
        source=source,
        q_student=qs,
        q_teacher=qt,
        teacher_needed=bool(needed),
        mean_logprob=student.get("mean_logprob"),
        min_logprob=student.get("min_logprob"),
        student_latency_s=student.get("latency_s"),
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProtegeError(f"{path}: cannot read ({exc})") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ProtegeError(f"{path} line {i}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ProtegeError(f"{path} line {i}: expected a JSON object")
        rows.append(row)
    return rows


def build_examples(rows_by_source: list[tuple[str, list[dict[str, Any]]]], config: RouteConfig, student_key: str) -> Examples:
    """Usable examples from results-format rows; unusable rows are counted by reason, never hidden."""
    examples = Examples(items=[])
    for source, rows in rows_by_source:
        for row in rows:
            ex = example_from_row(row, config, source, student_key)
            if isinstance(ex, str):
                examples.skipped[f"{source}: {ex}"] += 1
            else:
                examples.items.append(ex)
    return examples
