"""Labels from eval results: the margin and pairwise rules, and unusable rows counted."""

from __future__ import annotations

import pytest
from route_builders import results_row

from protege.config import RouteConfig
from protege.route.labels import build_examples, student_key


def test_margin_rule():
    rows = [results_row(0, "a?", 7, 8), results_row(1, "b?", 6, 8), results_row(2, "c?", 9, 8)]
    ex = build_examples([("eval", rows)], RouteConfig(label="margin", margin=1.0), "trained")
    assert list(ex.y) == [0, 1, 0]  # within 1 point: enough; 2 points short: teacher needed
    assert list(ex.q_student) == [7, 6, 9] and list(ex.q_teacher) == [8, 8, 8]
    ex = build_examples([("eval", rows)], RouteConfig(label="margin", margin=0.0), "trained")
    assert list(ex.y) == [1, 1, 0]


def test_pairwise_rule_and_quality():
    rows = [results_row(i, f"q{i}?", 5, 8, pairwise=v) for i, v in enumerate(["win", "tie", "loss"])]
    ex = build_examples([("eval", rows)], RouteConfig(label="pairwise"), "trained")
    assert list(ex.y) == [0, 0, 1]
    assert list(ex.q_student) == [1, 1, 0] and list(ex.q_teacher) == [1, 1, 1]


def test_unusable_rows_are_counted_not_hidden():
    rows = [results_row(0, "a?", None, 8), results_row(1, "b?", 6, 8), results_row(2, "", 6, 8)]
    ex = build_examples([("eval", rows)], RouteConfig(), "trained")
    assert len(ex) == 1
    assert ex.skipped == {"eval: judge failed (no rubric score)": 1, "eval: no question text": 1}


def test_student_key_prefers_trained():
    assert student_key([results_row(0, "a?", 6, 8)]) == "trained"
    assert student_key([results_row(0, "a?", 6, 8, key="untrained")]) == "untrained"


@pytest.mark.parametrize("lp", [None])
def test_missing_logprobs_are_nan(lp):
    ex = build_examples([("eval", [results_row(0, "a?", 6, 8, mean_logprob=lp)])], RouteConfig(), "trained")
    assert ex.logprobs("mean_logprob")[0] != ex.logprobs("mean_logprob")[0]
