import pytest

from protege.evaluate.judge import (
    pairwise_messages,
    parse_score,
    parse_winner,
    reconcile,
    rubric_messages,
    student_verdict,
)
from protege.replies import ReplyParseError


@pytest.mark.parametrize(
    "reply, score",
    [
        ('{"score": 7, "reason": "fine"}', 7),
        ('Sure! Here is my grade:\n```json\n{"score": 9, "reason": "correct"}\n```\nHope it helps.', 9),
        ("{'score': 4, 'reason': 'partly wrong',}", 4),  # single quotes, trailing comma
        ('{"score": "8/10", "reason": "ok"}', 8),
        ('{"score": 6.6}', 7),
        ('{"reason": "a {nested} brace in a string", "score": 3}', 3),
        ('{"score": 5, "reason": "cut off by max_tok', 5),  # truncated: regex fallback
        ("Score: 2", 2),
    ],
)
def test_parse_score_tolerates_what_small_judges_write(reply, score):
    assert parse_score(reply) == score


@pytest.mark.parametrize(
    "reply",
    ["I think the answer is good.", '{"score": 11}', '{"score": 0}', '{"score": "great"}', '{"grade": 7}', "", '{"score": true}'],
)
def test_parse_score_rejects_unreadable_replies(reply):
    with pytest.raises(ReplyParseError):
        parse_score(reply)


@pytest.mark.parametrize(
    "reply, winner",
    [
        ('{"winner": "A", "reason": "x"}', "A"),
        ('{"winner": "b"}', "B"),
        ('{"winner": "Answer B"}', "B"),
        ('{"winner": "tie"}', "tie"),
        ('{"winner": "Tie."}', "tie"),
        ('```\n{"winner": "A"}\n```', "A"),
        ('The winner: "B" because it is correct', "B"),
    ],
)
def test_parse_winner(reply, winner):
    assert parse_winner(reply) == winner


@pytest.mark.parametrize("reply", ['{"winner": "C"}', '{"winner": null}', "Both are fine.", "{not json"])
def test_parse_winner_rejects(reply):
    with pytest.raises(ReplyParseError):
        parse_winner(reply)


def test_student_verdict_maps_positions_back_to_the_student():
    # Order 1: A = student. Order 2: A = teacher.
    assert student_verdict("A", student_is_a=True) == "win"
    assert student_verdict("A", student_is_a=False) == "loss"
    assert student_verdict("B", student_is_a=False) == "win"
    assert student_verdict("tie", student_is_a=False) == "tie"
    assert student_verdict(None, student_is_a=True) is None


def test_a_judge_that_always_picks_position_a_cancels_out():
    orders = [student_verdict("A", True), student_verdict("A", False)]
    assert orders == ["win", "loss"]
    assert reconcile(*orders) is None  # inconsistent: a position preference, not a verdict


@pytest.mark.parametrize(
    "first, second, verdict",
    [("win", "win", "win"), ("loss", "loss", "loss"), ("tie", "tie", "tie"), ("win", "tie", "tie"),
     ("tie", "loss", "tie"), ("win", "loss", None), ("loss", "win", None), (None, "win", None), ("win", None, None)],
)  # fmt: skip
def test_reconcile(first, second, verdict):
    assert reconcile(first, second) == verdict


def test_prompts_carry_the_source_the_reference_and_the_scope_note():
    row = {"question": "Can you fix my car?", "reference": "Sorry, we only repair bikes.", "type": "out-of-scope",
           "source": {"text": "We repair bicycles."}, "messages": [{"role": "system", "content": "You are Riverbend's helper."},
           {"role": "user", "content": "Can you fix my car?"}]}  # fmt: skip
    user = rubric_messages(row, "Yes, bring it in.")[1]["content"]
    for part in ("We repair bicycles.", "Sorry, we only repair bikes.", "Yes, bring it in.", "Riverbend's helper", "OUTSIDE"):
        assert part in user
    a_first = pairwise_messages(row, "student says", "teacher says")[1]["content"]
    assert a_first.index("student says") < a_first.index("teacher says")
    b_first = pairwise_messages(row, "teacher says", "student says")[1]["content"]
    assert b_first.index("teacher says") < b_first.index("student says")
    factual = dict(row, type="factual")
    assert "OUTSIDE" not in rubric_messages(factual, "x")[1]["content"]
