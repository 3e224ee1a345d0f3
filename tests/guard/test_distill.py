"""Distilling the guard: the teacher's writing plan, the training rows, the threshold, a small fit."""

import asyncio
from pathlib import Path

import numpy as np
import pytest

from protege.guard import prompts
from protege.guard.classifier import CLASSES
from protege.guard.distill import embed, labeled_rows, pick_threshold, teacher_rows, train, writing_plan
from protege.guard.metrics import load_labeled

LABELED = Path(__file__).parents[1] / "data" / "guard" / "labeled.jsonl"


def test_the_plan_asks_for_every_category_and_every_safe_topic():
    asks = writing_plan(7)
    for code, (name, _) in prompts.CATEGORIES.items():
        mine = [a for a in asks if a.written_as == code]
        assert [a.role for a in mine] == ["user"] * len(prompts.UNSAFE_ANGLES) + ["assistant"]
        assert all(f"{code} {name}" in a.prompt and "7 strings" in a.prompt for a in mine)
    safe = [a for a in asks if a.written_as == "safe" and a.role == "user"]
    assert len(safe) == len(prompts.SAFE_TOPICS)
    for i, code in enumerate(prompts.CATEGORIES):  # the example shown is always another category's
        shown = {a.prompt.split("another category (")[1].split(" ")[0] for a in asks if a.written_as == code}
        assert shown == {list(prompts.CATEGORIES)[(i + 1) % 14]}
    assert len({(a.prompt, a.sample) for a in asks}) == len(asks)  # no two calls share a cache key


def test_labeled_rows_take_the_train_split_only_and_leave_injection_to_the_rules():
    rows = load_labeled(LABELED)
    train_rows = labeled_rows(rows)
    train_texts = {r["text"] for r in rows if r["split"] == "train" and not r["injection"]}
    assert {r.text for r in train_rows} == train_texts
    assert not {r.text for r in train_rows} & {r["text"] for r in rows if r["split"] == "heldout"}
    assert {r.label for r in train_rows} <= set(CLASSES) and all(r.source == "labeled" for r in train_rows)


def test_pick_threshold_takes_the_best_f1_cut():
    scores = np.array([0.1, 0.2, 0.35, 0.6, 0.7, 0.9])
    unsafe = np.array([False, False, True, False, True, True])
    assert pick_threshold(scores, unsafe) == 0.35  # flags 4: tp 3, F1 6/7; at 0.7 F1 is 4/5
    assert pick_threshold(np.array([0.2, 0.8]), np.array([False, True])) == 0.8


def test_trained_on_the_train_split_it_catches_held_out_rows():
    """Gold rows only (no teacher): the fit, the cross-validated threshold and real MiniLM vectors."""
    rows = labeled_rows(load_labeled(LABELED))
    clf = train(rows, embed([r.text for r in rows]))
    assert 0.0 < clf.threshold < 1.0
    held = [r for r in load_labeled(LABELED, "heldout") if not r["injection"]]
    verdicts = clf.verdicts(embed([r["text"] for r in held]))
    tp = sum(v.unsafe and r["label"] == "unsafe" for v, r in zip(verdicts, held))
    flagged, unsafe = sum(v.unsafe for v in verdicts), sum(r["label"] == "unsafe" for r in held)
    assert tp / flagged >= 0.7 and tp / unsafe >= 0.6, (tp, flagged, unsafe)


@pytest.mark.slow
def test_the_teacher_writes_and_labels_messages(teacher_model, tmp_path):
    plan = [a for a in writing_plan(3) if a.role == "user"]
    asks = [next(a for a in plan if a.written_as == w) for w in ("S9", "safe")]  # the plan's own prompts, 3 messages each
    rows, written, disagreed = asyncio.run(teacher_rows(teacher_model, asks, cache_path=tmp_path / "cache.db", n=3))
    assert 4 <= written <= 6 and len(rows) + disagreed == written
    assert {r.label for r in rows if r.written_as == "safe"} <= {"safe"}
    assert all(r.label != "safe" for r in rows if r.written_as == "S9")
    assert len(rows) >= 3, rows  # the teacher-guard agrees with most of what it wrote
