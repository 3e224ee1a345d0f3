"""End to end with the real embedded teacher (llama.cpp), on two tiny documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from protege.config import ModelConfig
from protege.corpus.facts import contains
from protege.project import Project
from protege.synth import run

pytestmark = pytest.mark.slow


def test_real_teacher_writes_grounded_pairs(project_dir: Path, teacher_model: ModelConfig) -> None:
    cfg = project_dir / "protege.yaml"
    data = yaml.safe_load(cfg.read_text())
    data["teacher"] = teacher_model.model_dump(exclude_defaults=True)
    data["synth"] = {"questions_per_chunk": 1, "type_mix": {"factual": 1.0}, "answer_max_tokens": 96, "eval_fraction": 0.5}
    cfg.write_text(yaml.safe_dump(data))

    result = run(Project.load(project_dir))

    rows = [json.loads(line) for p in (result.train, result.eval) for line in p.read_text().splitlines()]
    dropped = [json.loads(line) for line in result.dropped.read_text().splitlines()]
    assert len(rows) + len(dropped) == 2  # one question per chunk, two chunks
    assert rows, f"the teacher's pairs were all dropped: {dropped}"
    # a 1.5B teacher (and judge) gets details wrong at times; the answer must at least be on its chunk's topic
    topics = {"hours.md#0": ("open", "close", "9", "10", "sunday", "saturday", "hours"),
              "repairs.md#0": ("79", "15", "tune-up", "tyre", "tire", "repair")}
    for r in rows:
        question, answer = r["messages"][1]["content"], r["messages"][2]["content"]
        assert question.strip() and answer.strip()
        assert any(t in answer.lower() for t in topics[r["source"]["chunks"][0]]), answer
        assert r["scores"]["groundedness"] >= 6 and r["teacher"]["ref"] == teacher_model.ref
        # Key facts come from the source and the teacher's answer states them (checked through one normalization).
        assert all(contains(r["source"]["text"], f) and contains(answer, f) for f in r["key_facts"])
    assert any(r["key_facts"] for r in rows), rows
    card = result.card.read_text()
    assert "| questions planned | 2 |" in card and "## Groundedness and key facts" in card
    assert "Apache-2.0 (Qwen2.5-Coder): outputs may be used to train other models" in card
    assert "WARNING" not in card


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("I'm sorry, but I can't assist with that.", True),
        ("I’m sorry, but I can’t assist with that request.", True),  # curly apostrophes
        ("I cannot help with that.", True),
        ("Sorry, I am unable to help you with this.", True),
        ("Unfortunately, I can't help with your request.", True),
        ("I'm sorry, but the excerpts do not cover that. Please call customer care at 555-0100.", False),
        ("Yes, I can help with that: a tune-up costs $79.", False),
        ("We can't help with e-scooters; we only service bikes.", False),
        ("I'm sorry, but I can't help with that. For deliveries, please call customer care.", False),  # hand-off
        ("I can't assist with that. " + "Here is why, at length: our rental policy covers this. " * 4, False),
    ],
)
def test_is_refusal_flags_only_a_bare_refusal(text, refusal):
    from protege.synth.answers import is_refusal

    assert is_refusal(text) is refusal
