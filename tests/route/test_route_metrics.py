"""APGR, CPT and the target share against values worked out by hand on tiny curves."""

from __future__ import annotations

import numpy as np
import pytest

from protege.route.metrics import NoGapError, apgr, check_gap, pgr_curve, router_metrics, share_to_reach, target_level


def test_hand_computed_curve():
    # Gains (teacher - student) of 1, 1, 0, 0; the router ranks both gains first.
    scores = np.array([0.9, 0.8, 0.1, 0.2])
    qs, qt = np.zeros(4), np.array([1.0, 1.0, 0.0, 0.0])
    pgr = pgr_curve(scores, qs, qt)
    np.testing.assert_allclose(pgr, [0, 0.5, 1, 1, 1])
    # Trapezoids of width 1/4: (0+.5)/2 + (.5+1)/2 + 1 + 1, times 1/4 = 0.75.
    assert apgr(pgr) == pytest.approx(0.75)
    assert share_to_reach(pgr, 0.5) == pytest.approx(0.25)
    # 0.8 lies 3/5 of the way from PGR .5 (share .25) to PGR 1 (share .5): .25 + .6 * .25.
    assert share_to_reach(pgr, 0.8) == pytest.approx(0.4)


def test_worst_order_and_unreachable_level():
    qs, qt = np.zeros(4), np.array([1.0, 1.0, 0.0, 0.0])
    pgr = pgr_curve(np.array([0.1, 0.2, 0.9, 0.8]), qs, qt)
    np.testing.assert_allclose(pgr, [0, 0, 0, 0.5, 1])
    assert apgr(pgr) == pytest.approx(0.25)
    assert share_to_reach(pgr, 1.01) == 1.0
    assert share_to_reach(pgr, 0.0) == 0.0


def test_tied_scores_score_like_random():
    rng = np.random.default_rng(0)
    qs, qt = rng.integers(1, 6, 50).astype(float), rng.integers(5, 11, 50).astype(float)
    pgr = pgr_curve(np.zeros(50), qs, qt)
    np.testing.assert_allclose(pgr, np.linspace(0, 1, 51))
    assert apgr(pgr) == pytest.approx(0.5)
    assert share_to_reach(pgr, 0.5) == pytest.approx(0.5)


def test_partial_tie_group():
    # One clear top query (gain 2), then three tied (gains 1, 0, 0): inside the tie, gain grows by 1/3 per query.
    pgr = pgr_curve(np.array([1.0, 0.5, 0.5, 0.5]), np.zeros(4), np.array([2.0, 1.0, 0.0, 0.0]))
    np.testing.assert_allclose(pgr, [0, 2 / 3, 2 / 3 + 1 / 9, 2 / 3 + 2 / 9, 1])


def test_target_level():
    # Student 6, teacher 8: 95% of 8 = 7.6 is 80% of the way from 6 to 8.
    assert target_level(np.full(3, 6.0), np.full(3, 8.0), 0.95) == pytest.approx(0.8)
    # A student already above the target needs no teacher calls.
    assert target_level(np.full(3, 7.9), np.full(3, 8.0), 0.95) < 0


def test_no_gap_is_a_clear_error():
    with pytest.raises(NoGapError, match="no quality gap"):
        check_gap(np.full(5, 7.0), np.full(5, 7.0), "rubric score")
    assert check_gap(np.full(5, 6.0), np.full(5, 7.0), "rubric score") == pytest.approx(1.0)


def test_metrics_intervals_bracket_the_point():
    rng = np.random.default_rng(1)
    qs, qt = rng.integers(1, 8, 80).astype(float), np.full(80, 8.0)
    scores = (qt - qs) + rng.normal(0, 1.5, 80)
    m = router_metrics(scores, qs, qt, target=0.95, seed=0)
    for est in (m.apgr, m.cpt50, m.cpt80, m.student_share):
        assert est.low <= est.value <= est.high
    assert m.apgr.value > 0.6
    assert m.cpt50.value < 0.5 < m.apgr.value
