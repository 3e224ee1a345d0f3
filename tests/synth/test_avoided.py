"""Avoided-topic questions: topics read from the system prompt, planned on top of the mix, and
asked as out-of-scope questions when the prompt names none."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import yaml

from protege.config import REFUSAL_TYPES, SynthConfig
from protege.corpus import Chunk
from protege.project import Project
from protege.synth import avoided, run
from protege.synth.questions import plan_questions, question_prompt

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
import canned_endpoint  # noqa: E402


def chunks(n: int) -> list[Chunk]:
    return [Chunk(f"f{i % 3}.md#{i}", f"f{i % 3}.md", i, f"text {i}") for i in range(n)]


def test_topics_come_from_the_json_reply_trimmed_and_once_each() -> None:
    reply = 'Here: {"topics": [" Politics. ", "politics", "diet or weight advice", "x", "' + "y" * 80 + '", 3]}'
    assert avoided.parse_topics(reply) == ["Politics", "diet or weight advice"]
    assert avoided.parse_topics('{"topics": []}') == []  # the prompt names none
    assert avoided.parse_topics("The creator avoids politics.") is None  # not JSON: nothing made up from prose
    assert avoided.parse_topics('{"topics": ["politics", "diet') is None  # cut off: unreadable, not "none"
    assert avoided.parse_topics('{"topics": "politics"}') is None


def test_avoided_questions_are_added_after_the_plan_which_stays_as_it_was() -> None:
    config = SynthConfig(questions_per_chunk=2, seed=4)
    base = plan_questions(chunks(6), config)
    plan = plan_questions(chunks(6), config, avoided=8)
    assert plan[: len(base)] == base  # the same calls, so the same cache entries
    extra = plan[len(base):]
    assert [q.index for q in extra] == list(range(len(base), len(base) + 8))
    assert {q.type for q in extra} == {"avoided-topic"} and "avoided-topic" in REFUSAL_TYPES
    assert len({q.chunks[0].id for q in extra}) == 6  # spread over every chunk before any repeats


def test_topics_are_given_in_turn_or_the_questions_become_out_of_scope() -> None:
    plan = plan_questions(chunks(4), SynthConfig(questions_per_chunk=1, seed=0), avoided=5)
    given = avoided.assign(plan, ["politics", "diet advice"])
    assert [q.topic for q in given if q.type == "avoided-topic"] == ["politics", "diet advice", "politics", "diet advice", "politics"]
    asked = question_prompt(given[5], "maya")
    assert "maya does not discuss diet advice." in asked and "text 1" not in asked  # the post is not shown: it pulls the question off-topic
    fallback = avoided.assign(plan, [])
    assert Counter(q.type for q in fallback)["out-of-scope"] == Counter(q.type for q in plan)["out-of-scope"] + 5
    assert not any(q.type == "avoided-topic" for q in fallback)


def test_a_question_off_its_topic_is_caught() -> None:
    assert avoided.on_topic("Is there any advice available on medical issues?", "medical advice")
    assert avoided.on_topic("What do you make of the political news?", "politics")
    assert not avoided.on_topic("Any advice on how to measure ingredients for kimchi?", "medical advice")  # "advice" says nothing


def test_none_unless_asked_and_never_more_than_a_third_of_the_plan() -> None:
    assert avoided.planned(SynthConfig(), 80) == 0
    assert avoided.planned(SynthConfig(avoided_topic_questions=24), 80) == 24
    assert avoided.planned(SynthConfig(avoided_topic_questions=24), 18) == 6  # a --quick run of such a project


def test_a_creator_synth_writes_avoided_topic_rows_declined_with_their_topic(project_dir: Path) -> None:
    server, url = canned_endpoint.start()
    try:
        cfg = project_dir / "protege.yaml"
        data = yaml.safe_load(cfg.read_text())
        data["teacher"] = {"ref": f"openai:canned@{url}", "max_retries": 0}
        data["synth"] = {"questions_per_chunk": 6, "seed": 1, "avoided_topic_questions": 6, "judge": False}
        data.pop("persona", None)
        cfg.write_text(yaml.safe_dump(data))
        posts = [f"Post {i}: braise the beans for {i + 2} hours, friends. - M." for i in range(8)]
        (project_dir / "docs" / "posts.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in posts))
        result = run(Project.load(project_dir))
    finally:
        server.shutdown()
    rows = [json.loads(line) for p in (result.train, result.eval) for line in p.read_text().splitlines()]
    dropped = [json.loads(line) for line in result.dropped.read_text().splitlines()]
    asked = [r for r in rows if r["type"] == "avoided-topic"] + [d for d in dropped if d["type"] == "avoided-topic"]
    assert len(asked) == 6
    kept = [r for r in rows if r["type"] == "avoided-topic"]
    assert kept and {r["meta"]["topic"] for r in kept} <= {"politics", "diet advice"}
    assert all("outside what I can help with" in r["messages"][-1]["content"] for r in kept)  # the teacher's decline
    card = " ".join(result.card.read_text().split())
    assert "Topics to avoid, as the teacher read them from the system prompt: politics, diet advice." in card
    assert "| avoided-topic | 6 |" in card


def test_the_card_tells_an_unreadable_list_from_one_that_names_none() -> None:
    from collections import Counter as C

    from protege.synth.card import CardData, GroundingCounts, KeyFactCounts, render_card

    def card(topics) -> str:
        d = CardData(project="maya", docs_dir="docs", config_hash="x", code_version="0", format="raft", wall_s=1,
                     files_read=1, skipped=[], notes=[], chunks_total=1, chunks_used=1, persona_source="generated", steps=[],
                     dropped=C(), planned_types=C(), train_types=C(), eval_types=C(), usage=[], licenses=[], logprobs_note="",
                     redactions=0, judge_retries=0, judge_threshold=None, grounding=GroundingCounts(0.7, 0, None),
                     key_facts=KeyFactCounts(1, 0, 0, 0, 0, 0, 0, 0), avoided_topics=topics)  # fmt: skip
        return " ".join(render_card(d).split())

    assert "could not be read" in card("unreadable") and "names no topics" not in card("unreadable")
    assert "names no topics to avoid" in card([])
    assert "Topics to avoid, as the teacher read them from the system prompt: politics." in card(["politics"])
    assert "Topics to avoid" not in card(None) and "could not be read" not in card(None)
