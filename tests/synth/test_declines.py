"""synth.declines: excerpt-less copies bring training's share of declines up to RAFT's, and are right by construction."""

from __future__ import annotations

from protege.corpus.retrieve import context_turn, question_of_turn
from protege.synth import prompts
from protege.synth.declines import COPY_SUFFIX, add_excerptless_declines, needed


def raft_row(i: int, *, oracle: bool, type_: str = "factual") -> dict:
    context = [{"chunk": f"c{i}", "text": f"answer text {i}", "oracle": True}] if oracle else []
    context += [{"chunk": f"d{i}", "text": f"distractor {i}", "oracle": False}]
    turn = context_turn(f"question {i}?", [(c["chunk"], c["text"]) for c in context])
    answer = f"the answer is {i}" if oracle else "not covered"
    return {
        "id": f"q-{i}", "type": type_,
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": turn},
                     {"role": "assistant", "content": answer}],
        "context": context, "key_facts": [str(i)] if oracle else [],
        "teacher": {"ref": "t", "logprobs": [{"token": "x"}] if oracle else None},
        "scores": {"groundedness": 1.0}, "meta": {"config_hash": "h"},
    }  # fmt: skip


def test_needed_brings_the_excerpt_less_share_up_to_the_target_and_never_lowers_it() -> None:
    rows = [raft_row(i, oracle=i >= 4) for i in range(45)]  # 4 of 45 excerpt-less
    n = needed(rows, 0.2)
    assert (4 + n) / (45 + n) >= 0.2 > (4 + n - 1) / (45 + n - 1)
    assert needed([raft_row(i, oracle=i >= 20) for i in range(40)], 0.2) == 0  # already half
    assert needed(rows, 0.0) == 0 and needed(rows, 1.0) == 0
    # refusal types and rows without context are not RAFT rows to count
    assert needed(rows + [raft_row(99, oracle=True, type_="out-of-scope")], 0.2) == n
    assert needed([{"id": "q-x", "type": "factual"}], 0.5) == 0


def test_a_copy_keeps_only_the_distractors_and_declines_without_teacher_tokens() -> None:
    rows = [raft_row(i, oracle=i >= 1) for i in range(10)]
    copies = add_excerptless_declines(rows, share=0.3, seed=0, name="Shop")
    assert len(copies) == needed(rows, 0.3) > 0
    by_id = {r["id"]: r for r in rows}
    for c in copies:
        source = by_id[c["meta"]["excerptless_copy_of"]]
        assert c["id"] == source["id"] + COPY_SUFFIX
        assert c["context"] == [x for x in source["context"] if not x["oracle"]] and c["context"]
        turn = c["messages"][1]["content"]
        assert question_of_turn(turn) == question_of_turn(source["messages"][1]["content"])
        assert "answer text" not in turn and "distractor" in turn
        assert c["messages"][0] == source["messages"][0]
        assert c["messages"][-1]["content"] == prompts.NO_EXCERPT_DECLINE.format(name="Shop")
        assert c["teacher"]["logprobs"] is None and c["key_facts"] == [] and c["scores"] is None
        assert source["teacher"]["logprobs"] and source["key_facts"]  # the source row is not touched
    assert len({c["id"] for c in copies}) == len(copies)
    assert [c["id"] for c in copies] == [c["id"] for c in add_excerptless_declines(rows, share=0.3, seed=0, name="Shop")]
    assert [c["id"] for c in copies] != [c["id"] for c in add_excerptless_declines(rows, share=0.3, seed=1, name="Shop")]


def test_refusal_rows_and_rows_without_distractors_are_not_copied() -> None:
    lone = raft_row(0, oracle=True)
    lone["context"] = [c for c in lone["context"] if c["oracle"]]
    rows = [lone, raft_row(1, oracle=True, type_="unsafe"), raft_row(2, oracle=True)]
    copies = add_excerptless_declines(rows, share=0.5, seed=0, name="Shop")
    assert [c["meta"]["excerptless_copy_of"] for c in copies] == ["q-2"]
