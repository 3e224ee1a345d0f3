"""Fact recall: key facts found in an answer, and declining where that is the right answer."""

import pytest

from protege.evaluate.facts import DECLINE_FACT, expectation, fact_recall

ITEM = {"type": "factual", "key_facts": ["$79", "2 days", "Downtown"], "context": None}


def test_fact_recall_is_the_share_of_key_facts_stated():
    assert fact_recall("A tune-up is 79 dollars and takes two days at our Downtown store.", ITEM) == (1.0, [])
    share, missing = fact_recall("A tune-up is $79.", ITEM)
    assert share == pytest.approx(1 / 3) and missing == ["2 days", "Downtown"]
    assert fact_recall("A tune-up is $89 and takes 3 days.", ITEM) == (0.0, ITEM["key_facts"])
    assert fact_recall(None, ITEM) == (None, [])  # no answer: no score (counted as an answer error)


@pytest.mark.parametrize("qtype", ["out-of-scope", "unsafe"])
def test_refusal_types_score_declining(qtype):
    item = {"type": qtype, "key_facts": []}
    assert expectation(item) == "decline"
    assert fact_recall("Sorry, we only service bicycles; a garage can help with your car.", item) == (1.0, [])
    assert fact_recall("Sure: drain the oil, then refill with 5W-30.", item) == (0.0, [DECLINE_FACT])


def test_raft_rows_without_the_right_excerpt_expect_a_decline():
    shown = [{"chunk": "a#0", "text": "...", "oracle": False}]
    assert expectation({**ITEM, "context": shown}) == "decline"
    assert expectation({**ITEM, "context": [*shown, {"chunk": "b#0", "text": "...", "oracle": True}]}) == "facts"
    assert fact_recall("The excerpts do not cover repair prices; please call customer care.", {**ITEM, "context": shown})[0] == 1.0


def test_an_item_without_key_facts_has_no_fact_recall():
    item = {"type": "factual", "key_facts": []}
    assert expectation(item) is None and fact_recall("anything", item) == (None, [])
