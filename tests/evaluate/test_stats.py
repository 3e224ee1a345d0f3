import math

import numpy as np
import pytest

from protege.evaluate.stats import UNDEFINED_GAP, bootstrap_ci, gap_recovered, percentile, wilson_ci


def test_bootstrap_mean_interval_covers_the_mean_and_narrows_with_n():
    rng = np.random.default_rng(1)
    small = bootstrap_ci(list(rng.normal(5, 2, 20)), seed=0)
    large = bootstrap_ci(list(rng.normal(5, 2, 2000)), seed=0)
    assert small.low < small.value < small.high and small.n == 20
    assert large.low < 5 < large.high
    assert (large.high - large.low) < (small.high - small.low) / 3


def test_bootstrap_is_seeded_and_skips_missing_values():
    values = [1, 2, None, 3, float("nan"), 10]
    a, b = bootstrap_ci(values, seed=7), bootstrap_ci(values, seed=7)
    assert a == b
    assert a.n == 4 and a.value == pytest.approx(4.0)


def test_bootstrap_edge_cases_say_why_there_is_no_interval():
    assert bootstrap_ci([]).value is None and bootstrap_ci([]).n == 0
    one = bootstrap_ci([3.0])
    assert one.value == 3.0 and one.low is None and one.note == "one value"
    assert "no interval" in one.fmt()


def test_bootstrap_percentile_statistic():
    e = bootstrap_ci(list(range(1, 101)), percentile(95), seed=0)
    assert e.value == pytest.approx(95.05)
    assert e.low <= e.value <= e.high <= 100


def test_wilson_interval_stays_inside_0_1_at_the_edges():
    zero, all_ = wilson_ci(0, 10), wilson_ci(10, 10)
    assert zero.value == 0 and zero.low == 0 and 0.2 < zero.high < 0.35
    assert all_.value == 1 and all_.high == 1 and 0.65 < all_.low < 0.8
    assert wilson_ci(0, 0).value is None


def test_gap_recovered_point_and_paired_interval():
    untrained = [2, 3, 2, 4, 3, 2, 3, 2]
    teacher = [8, 9, 8, 8, 9, 8, 9, 8]
    trained = [5, 7, 4, 6, 6, 5, 7, 5]  # about half the gap, not exactly per question
    g = gap_recovered(untrained, trained, teacher, seed=0)
    u, s, t = np.mean(untrained), np.mean(trained), np.mean(teacher)
    assert g.value == pytest.approx((s - u) / (t - u))
    assert g.low < g.value < g.high and g.n == 8 and g.undefined_resamples == 0


def test_gap_recovered_pairs_questions_and_drops_incomplete_ones():
    g = gap_recovered([2, None, 2], [5, 9, 8], [8, 9, 8])
    assert g.n == 2
    assert g.value == pytest.approx((6.5 - 2) / (8 - 2))


def test_gap_recovered_undefined_when_teacher_equals_untrained():
    g = gap_recovered([5, 6, 7], [6, 6, 6], [7, 6, 5])  # equal means: 6 and 6
    assert g.value is None and g.note == UNDEFINED_GAP and g.n == 3
    assert "gap recovered undefined" in g.fmt()


def test_gap_recovered_counts_resamples_with_a_zero_denominator():
    # One question where teacher == untrained and one where it is not: some resamples draw only
    # the equal one, so the ratio is undefined there; they are counted, not silently dropped.
    g = gap_recovered([5, 2], [5, 5], [5, 8], n_resamples=400, seed=0)
    assert g.value == pytest.approx((5 - 3.5) / (6.5 - 3.5))
    assert 0 < g.undefined_resamples < 400
    assert "undefined in" in g.note


def test_gap_recovered_rejects_misaligned_inputs():
    with pytest.raises(ValueError):
        gap_recovered([1, 2], [1], [1, 2])


def test_estimate_fmt():
    e = bootstrap_ci([1.0, 2.0, 3.0], seed=0)
    text = e.fmt(1)
    assert text.startswith("2.0 [") and text.endswith("(n=3)")
    assert not math.isnan(e.low)


def test_gap_recovered_says_when_the_teacher_is_below_the_untrained_student():
    g = gap_recovered([5, 6, 5], [6, 7, 7], [3, 4, 2], seed=0)
    assert g.value < 0 and "no gap to recover" in g.note


def test_mean_difference_is_paired_per_question():
    from protege.evaluate.stats import mean_difference

    d = mean_difference([1, 2, 3, None], [2, 4, 3, 9], seed=0)
    assert d.n == 3 and d.value == pytest.approx(1.0)  # (1 + 2 + 0) / 3; the unpaired question is left out
    assert 0 <= d.low <= d.value <= d.high <= 2
    # The same shift on every question: no doubt left, whatever the spread of the scores.
    same = mean_difference([1, 9, 4, 7], [2, 10, 5, 8])
    assert (same.value, same.low, same.high) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError):
        mean_difference([1, 2], [1])


def test_gap_recovered_interval_is_narrow_when_every_question_recovers_half():
    # The scores differ a lot between questions, but each question recovers exactly half its gap:
    # the paired interval is that single value. An unpaired interval would span most of 0-1.
    untrained, teacher = [1, 5, 2, 6, 3], [3, 9, 6, 8, 9]
    trained = [u + (t - u) / 2 for u, t in zip(untrained, teacher)]
    g = gap_recovered(untrained, trained, teacher, seed=0)
    assert (g.value, g.low, g.high) == pytest.approx((0.5, 0.5, 0.5))
    # Hand-computed: mean(trained - untrained) = 2 and mean(teacher - untrained) = 4 -> 50%.
    h = gap_recovered([2, 4], [4, 4], [6, 8], seed=0)
    assert h.value == pytest.approx((2 + 0) / 2 / ((4 + 4) / 2))


def test_rank_agreement_on_hand_computed_cases():
    from protege.evaluate.stats import NO_CORRELATION, rank_agreement

    same = rank_agreement([1, 2, 3, 4], [10, 20, 30, 40], seed=0)
    assert same["spearman"].value == pytest.approx(1.0) and same["kendall"].value == pytest.approx(1.0)
    opposite = rank_agreement([1, 2, 3, 4], [0.9, 0.5, 0.2, 0.1], seed=0)
    assert opposite["spearman"].value == pytest.approx(-1.0) and opposite["kendall"].value == pytest.approx(-1.0)
    # Ties: ranks of y are (1.5, 1.5, 3): rho = 1.5 / sqrt(2 * 1.5); tau-b = 2 / sqrt(3 * 2).
    ties = rank_agreement([1, 2, 3, None], [1, 1, 2, 5], seed=0)
    assert ties["spearman"].n == 3
    assert ties["spearman"].value == pytest.approx(1.5 / math.sqrt(3.0))
    assert ties["kendall"].value == pytest.approx(2 / math.sqrt(6.0))
    flat = rank_agreement([1, 2, 3], [7, 7, 7])
    assert flat["spearman"].value is None and flat["spearman"].note == NO_CORRELATION


def test_rank_agreement_resamples_whole_groups():
    from protege.evaluate.stats import rank_agreement

    x = [1, 2, 3, 4, 5, 6, 7, 8]
    y = [1, 3, 2, 4, 6, 5, 8, 7]
    free = rank_agreement(x, y, seed=0)
    assert free["kendall"].low < free["kendall"].value < free["kendall"].high
    one_group = rank_agreement(x, y, ["q"] * 8, seed=0)
    assert one_group["kendall"].value == free["kendall"].value and one_group["kendall"].low is None
    # Pairs of answers to the same question move together: fewer independent draws, wider interval.
    paired = rank_agreement(x, y, ["a", "a", "b", "b", "c", "c", "d", "d"], seed=0)
    assert paired["spearman"].n == 8 and paired["spearman"].high - paired["spearman"].low > 0
