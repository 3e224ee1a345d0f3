from __future__ import annotations

from collections import Counter

from protege.config import SynthConfig
from protege.corpus import Chunk
from protege.synth.questions import apportion, clean_question, plan_questions


def chunks(n: int) -> list[Chunk]:
    return [Chunk(f"f{i % 3}.md#{i}", f"f{i % 3}.md", i, f"text {i}") for i in range(n)]


def test_apportion_is_exact_and_follows_weights() -> None:
    labels = apportion({"factual": 0.5, "how-to": 0.3, "unsafe": 0.2, "comparison": 0.0}, 10)
    assert Counter(labels) == {"factual": 5, "how-to": 3, "unsafe": 2}
    assert len(apportion({"factual": 1, "how-to": 1, "unsafe": 1}, 7)) == 7


def test_plan_counts_mix_personas_and_multi_hop_partners() -> None:
    config = SynthConfig(questions_per_chunk=4, seed=3)
    plan = plan_questions(chunks(10), config)
    assert len(plan) == 40 and [q.index for q in plan] == list(range(40))
    assert Counter(q.chunks[0].id for q in plan) == {c.id: 4 for c in chunks(10)}
    assert Counter(q.type for q in plan) == Counter(apportion(config.type_mix, 40))
    assert {q.persona for q in plan} <= set(config.personas)
    for q in plan:
        assert len(q.chunks) == (2 if q.type == "multi-hop" else 1)
        if q.type == "multi-hop":
            assert q.chunks[0].file != q.chunks[1].file
    assert plan == plan_questions(chunks(10), config)  # deterministic for a seed
    assert plan != plan_questions(chunks(10), SynthConfig(questions_per_chunk=4, seed=4))


def test_single_chunk_has_no_multi_hop() -> None:
    plan = plan_questions(chunks(1), SynthConfig(questions_per_chunk=20, type_mix={"multi-hop": 1.0, "factual": 1.0}))
    assert {q.type for q in plan} == {"factual"}


def test_clean_question_strips_what_teachers_add() -> None:
    assert clean_question('Question: "Do you rent e-bikes?"') == "Do you rent e-bikes?"
    assert clean_question("Here is a question:\n\n1. When do you open on Sunday?") == "When do you open on Sunday?"
    assert clean_question("**Q:** What does a tune-up cost?\nIt costs $79.") == "What does a tune-up cost?"
    assert clean_question("```\nCan I return a used helmet?\n```") == "Can I return a used helmet?"
    assert clean_question("") is None and clean_question("Hi?") is None


def test_parse_question_reads_the_question_and_its_key_facts() -> None:
    from protege.synth.questions import WrittenQuestion, parse_question

    reply = 'Here it is:\n```json\n{"question": "Q: How much is a tune-up?", "key_facts": ["$79", 7, "", "2 days"]}\n```'
    assert parse_question(reply) == WrittenQuestion("How much is a tune-up?", ("$79", "2 days"))
    listed = '{"questions": [{"question": "When do you open on Sunday?", "key_facts": ["11:00"]}, {"question": "x"}]}'
    assert parse_question(listed) == WrittenQuestion("When do you open on Sunday?", ("11:00",))
    assert parse_question("Do you rent e-bikes?") == WrittenQuestion("Do you rent e-bikes?", ())  # no JSON mode: no facts
    assert parse_question('{"question": "Hi?"}') is None and parse_question('{"key_facts": []}') is None
