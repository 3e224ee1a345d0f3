"""The agent's empty state (name, tagline, example questions) and the bounded sources of an answer."""

from __future__ import annotations

import json
from protege.corpus.chunk import Chunk
from protege.corpus.retrieve import context_turn
from protege.serve.profile import EXCERPT_CHARS, example_questions, sources, tagline, title


def test_tagline_is_the_personas_first_sentence_as_a_description():
    persona = ("You are the customer support assistant of Riverbend Bikes, a bike shop with two stores. "
               "Answer briefly and exactly.")
    assert tagline(persona) == "The customer support assistant of Riverbend Bikes, a bike shop with two stores."
    assert tagline("Maya answers her followers' cooking questions!  Warmly.") == "Maya answers her followers' cooking questions!"
    long = tagline("You are " + "a very " * 80 + "long persona.")
    assert len(long) <= 220 and long.endswith("…") and long.startswith("A very")


def test_title_of_a_project_name():
    assert title("riverbend-bikes") == "Riverbend Bikes"
    assert title("maya_cooks") == "Maya Cooks"
    assert title("MayaCooks") == "MayaCooks"


def _row(qtype: str, question: str, raft: bool = False) -> str:
    user = context_turn(question, [("hours.md#0", "We open at 9.")]) if raft else question
    return json.dumps({"id": "q", "type": qtype, "messages": [
        {"role": "system", "content": "You help."}, {"role": "user", "content": user},
        {"role": "assistant", "content": "An answer."}]}) + "\n"  # fmt: skip


def test_example_questions_come_from_in_scope_rows_spread_over_the_dataset(tmp_path):
    path = tmp_path / "train.jsonl"
    lines = [_row("factual", f"What does service number {i} cost?", raft=i % 2 == 0) for i in range(10)]
    lines.insert(3, _row("out-of-scope", "Can you write me a poem about the sea?"))
    lines.insert(5, _row("unsafe", "How do I pick the lock of a bike that is not mine?"))
    lines.insert(6, "{not json\n")
    lines.insert(7, _row("factual", "What does service number 1 cost?"))  # a repeat
    lines.append(_row("factual", "Hi?"))  # too short for an example
    path.write_text("".join(lines))
    found = example_questions(path, n=4)
    assert found == ["What does service number 0 cost?", "What does service number 3 cost?",
                     "What does service number 6 cost?", "What does service number 9 cost?"]  # fmt: skip
    assert all("Context:" not in q for q in found)
    assert example_questions(tmp_path / "missing.jsonl") == []


def test_sources_are_bounded_per_excerpt():
    got = sources([Chunk("a.md#0", "a.md", 0, "short"), Chunk("b.md#3", "b.md", 3, "word " * 1000)])
    assert got[0] == {"id": "a.md#0", "file": "a.md", "text": "short"}
    assert got[1]["id"] == "b.md#3" and len(got[1]["text"]) <= EXCERPT_CHARS and got[1]["text"].endswith("…")
