import pytest

from protege.evaluate.metrics import pairwise_counts, summarize
from protege.evaluate.stage import gate_failure

from eval_builders import make_info, make_results


def test_summary_counts_judge_failures_and_inconsistent_verdicts(constructed):
    results, s = constructed
    assert s["n_questions"] == 6 and s["trained"] and s["note"] is None
    assert s["rubric"]["trained"]["n"] == 5 and s["rubric"]["trained"]["judge_failures"] == 1
    assert s["rubric"]["trained"]["value"] == pytest.approx((5 + 4 + 7 + 6 + 5) / 5)
    p = s["pairwise"]["trained"]
    assert (p["win"]["count"], p["tie"]["count"], p["loss"]["count"]) == (1, 1, 2)
    assert p["inconsistent"] == 1 and p["failed"] == 1 and p["n"] == 6
    # Shares keep inconsistent and failed questions in the denominator.
    assert p["loss"]["value"] == pytest.approx(2 / 6)
    # Orders disagree in 2 of the 5 questions where both orders answered.
    assert p["order_disagreement"]["value"] == pytest.approx(2 / 5) and p["order_disagreement"]["n"] == 5


def test_gap_recovered_in_the_summary_uses_paired_questions(constructed):
    _, s = constructed
    g = s["gap_recovered"]
    # Question 1 has no trained score, so 5 questions are paired.
    u, t, tr = [2, 1, 4, 2, 3], [8, 7, 8, 9, 8], [5, 4, 7, 6, 5]
    expected = (sum(tr) / 5 - sum(u) / 5) / (sum(t) / 5 - sum(u) / 5)
    assert g["n"] == 5 and g["value"] == pytest.approx(expected)
    assert g["low"] <= g["value"] <= g["high"]


def test_summary_without_a_trained_run_says_so():
    results = make_results([2, 3, 4], None, [8, 8, 9])
    s = summarize(results, make_info(trained=False))
    assert not s["trained"] and "no trained run" in s["note"]
    assert s["gap_recovered"]["value"] is None and "trained" not in s["rubric"]
    assert set(s["pairwise"]) == {"untrained"}


def test_equal_teacher_and_untrained_give_an_undefined_gap_not_a_crash():
    s = summarize(make_results([5, 6, 7], [6, 6, 6], [7, 6, 5]), make_info(trained=True))
    assert s["gap_recovered"]["value"] is None
    assert s["gap_recovered"]["note"] == "teacher and untrained student score equal: gap recovered undefined"


def test_cost_local_compute_versus_token_prices():
    results = make_results([2, 3], [4, 5], [8, 9])
    for r in results:
        r["answers"]["teacher"]["cost_usd"] = 0.002
    s = summarize(results, make_info(trained=True, teacher_price=1.0))
    teacher = s["cost_per_1k_queries_usd"]["teacher"]
    assert teacher["value"] == pytest.approx(2.0) and "token prices" in teacher["basis"]
    student = s["cost_per_1k_queries_usd"]["trained"]
    # 0.3 s per answer at $0.10/hour, times 1,000 queries.
    assert student["value"] == pytest.approx(0.3 * 0.10 / 3600 * 1000)
    assert "local compute" in student["basis"]


def test_latency_and_tokens_per_second():
    s = summarize(make_results([2, 3, 4], [4, 5, 6], [8, 9, 8]), make_info(trained=True))
    assert s["latency_s"]["teacher"]["p50"]["value"] == pytest.approx(3.1)
    assert s["tokens_per_s"]["trained"]["value"] == pytest.approx(20 / 0.3)


def test_an_unanswered_question_is_counted_as_an_answer_error():
    results = make_results([2, 3], [4, 5], [8, 9])
    results[0]["answers"]["trained"].update(text=None, rubric=None, pairwise=None, pairwise_orders=[None, None])
    s = summarize(results, make_info(trained=True))
    assert s["answer_errors"]["trained"] == 1 and s["rubric"]["trained"]["judge_failures"] == 0
    assert pairwise_counts(results, "trained")["failed"] == 1


def test_regression_gate(constructed):
    _, s = constructed
    assert gate_failure(s, 5.0) is None
    assert "below --fail-under 6" in gate_failure(s, 6.0)
    untrained_only = summarize(make_results([2], None, [8]), make_info(trained=False))
    assert "no trained student" in gate_failure(untrained_only, 1.0)


def test_fact_recall_figures_are_paired_and_the_judge_agreement_is_reported():
    untrained, trained, teacher = [2, 3, 2, 4], [5, 6, 4, 7], [8, 9, 8, 9]
    recall = ([0.0, 0.5, 0.0, 0.5], [0.5, 1.0, None, 1.0], [1.0, 1.0, 1.0, 1.0])
    s = summarize(make_results(untrained, trained, teacher, recall=recall), make_info(trained=True))
    assert s["fact_recall"]["trained"]["value"] == pytest.approx(2.5 / 3) and s["fact_recall"]["trained"]["n"] == 3
    # Question 2 has no trained fact recall: the paired figures use questions 0, 1 and 3.
    g = s["gap_recovered_fact_recall"]
    assert g["n"] == 3 and g["value"] == pytest.approx((0.5 + 0.5 + 0.5) / (1.0 + 0.5 + 0.5))
    d = s["trained_minus_untrained"]
    assert d["fact_recall"]["value"] == pytest.approx(0.5) and d["fact_recall"]["n"] == 3
    assert d["rubric"]["value"] == pytest.approx((3 + 3 + 2 + 3) / 4) and d["rubric"]["low"] > 0
    ag = s["judge_agreement"]
    assert ag["answers"] == 11 and ag["questions"] == 4
    assert ag["spearman"]["value"] > 0.8 and -1 <= ag["kendall"]["low"] <= ag["kendall"]["high"] <= 1


def test_without_key_facts_fact_recall_is_missing_not_zero():
    s = summarize(make_results([2, 3], [4, 5], [8, 9]), make_info(trained=True))
    assert s["fact_recall"]["trained"]["value"] is None and s["gap_recovered_fact_recall"]["value"] is None
    assert s["judge_agreement"]["answers"] == 0 and s["judge_agreement"]["spearman"]["value"] is None


def test_fact_recall_by_type_tells_how_often_each_model_declines_an_avoided_topic():
    from protege.evaluate.metrics import by_type

    def row(qtype, untrained, trained):
        return {"type": qtype, "answers": {"untrained": {"fact_recall": untrained}, "trained": {"fact_recall": trained}}}

    results = [row("avoided-topic", 0.0, 1.0)] * 6 + [row("avoided-topic", 1.0, 1.0)] * 2 + [row("factual", 0.5, None)] * 3
    out = by_type(results, ["untrained", "trained"], "fact_recall", {"n_resamples": 200, "seed": 0})
    assert out["avoided-topic"]["n"] == 8 and out["factual"]["n"] == 3
    assert out["avoided-topic"]["untrained"]["value"] == pytest.approx(0.25)
    assert out["avoided-topic"]["trained"]["value"] == 1.0
    assert out["factual"]["trained"] == {"value": None, "low": None, "high": None, "n": 0, "note": "no values"}
