"""Precision and recall of the guard's layers on a labeled set (tests/data/guard/labeled.jsonl).

Row format: {"text", "role": "user"|"assistant", "label": "safe"|"unsafe", "categories": [...],
"pii": [{"kind", "text"}], "injection": bool}. Shared by the tests (floors) and bench/guard_eval.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protege.guard.rules import find_injection, find_pii


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


def load_labeled(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


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
