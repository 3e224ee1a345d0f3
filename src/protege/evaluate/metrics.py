"""From per-question results (results.jsonl) to the headline figures (summary.json).

Everything here is recomputable from results.jsonl alone: `summarize(read_results(path), info)`.
Each figure carries its n; each has a 95% interval where one can be computed; judge failures and
inconsistent pairwise verdicts are counted, never dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from protege.evaluate.stats import bootstrap_ci, gap_recovered, mean_difference, percentile, rank_agreement, wilson_ci

VERDICTS = ("win", "tie", "loss")


def read_results(path: Path) -> list[dict[str, Any]]:
    from protege.artifacts import read_jsonl

    return read_jsonl(path)


def column(results: list[dict[str, Any]], model: str, key: str) -> list[Any]:
    """One field of one model's answers, per question (None where missing)."""
    return [r["answers"].get(model, {}).get(key) for r in results]


def pairwise_counts(results: list[dict[str, Any]], model: str) -> dict[str, Any]:
    """Win/tie/loss against the teacher, with the position-swap bookkeeping.

    `inconsistent`: both orders answered but could not be reconciled (win in one, loss in the
    other). `failed`: at least one order had no verdict. `order_disagreement`: share of questions
    where both orders answered and differ at all (position bias), with its interval.
    """
    answers = [r["answers"][model] for r in results if model in r["answers"]]
    n = len(answers)
    decided = [a.get("pairwise") for a in answers if a.get("pairwise") is not None]
    both = [a["pairwise_orders"] for a in answers if None not in (a.get("pairwise_orders") or [None])]
    inconsistent = sum(1 for a in answers if a.get("pairwise") is None and None not in (a.get("pairwise_orders") or [None]))
    out: dict[str, Any] = {"n": n, "n_decided": len(decided), "inconsistent": inconsistent,
                           "failed": n - len(decided) - inconsistent}  # fmt: skip
    for v in VERDICTS:
        # Shares over all questions, so inconsistent and failed verdicts stay in the denominator.
        out[v] = wilson_ci(decided.count(v), n).to_dict() | {"count": decided.count(v)}
    out["order_disagreement"] = wilson_ci(sum(1 for a, b in both if a != b), len(both)).to_dict()
    return out


def cost_basis(price: dict[str, Any], usd_per_hour: float) -> str:
    if price["input"] or price["output"]:
        return f"token prices: ${price['input']:g} in / ${price['output']:g} out per million tokens"
    if price["local"]:
        return f"local compute: request wall time x ${usd_per_hour:g}/hour (the machine is busy with the model while it answers)"
    return "no price configured (price_input/price_output): counted as free"


def answer_cost(answer: dict[str, Any], price: dict[str, Any], usd_per_hour: float) -> float | None:
    if answer.get("text") is None:
        return None
    if price["input"] or price["output"]:
        return answer["cost_usd"]
    if price["local"]:
        return answer["latency_s"] * usd_per_hour / 3600
    return 0.0


NO_TRAINED_GAP = {"value": None, "low": None, "high": None, "n": 0, "undefined_resamples": 0,
                  "note": "no trained run: gap recovered needs a trained student"}  # fmt: skip


def paired_figures(results: list[dict[str, Any]], trained: bool, boot: dict[str, int]) -> dict[str, Any]:
    """Gap recovered and the mean trained - untrained difference, per question, for both metrics."""
    if not trained:
        return {"gap_recovered": NO_TRAINED_GAP, "gap_recovered_fact_recall": NO_TRAINED_GAP, "trained_minus_untrained": {}}
    out: dict[str, Any] = {"trained_minus_untrained": {}}
    for metric, key in (("rubric", "gap_recovered"), ("fact_recall", "gap_recovered_fact_recall")):
        u, tr, t = (column(results, m, metric) for m in ("untrained", "trained", "teacher"))
        out[key] = gap_recovered(u, tr, t, **boot).to_dict()
        out["trained_minus_untrained"][metric] = mean_difference(u, tr, **boot).to_dict()
    return out


def judge_agreement(results: list[dict[str, Any]], models: list[str], boot: dict[str, int]) -> dict[str, Any]:
    """How far the judge's rubric ranks answers as fact recall does: Spearman and Kendall over
    every answer with both scores (all models pooled), resampling whole questions."""
    rubric, recall, groups = [], [], []
    for r in results:
        for m in models:
            a = r["answers"].get(m, {})
            if a.get("rubric") is not None and a.get("fact_recall") is not None:
                rubric.append(a["rubric"])
                recall.append(a["fact_recall"])
                groups.append(r["id"])
    agreement = rank_agreement(rubric, recall, groups, **boot)
    return {name: e.to_dict() for name, e in agreement.items()} | {"answers": len(rubric), "questions": len(set(groups))}


def by_type(results: list[dict[str, Any]], models: list[str], key: str, boot: dict[str, Any]) -> dict[str, Any]:
    """`key` per question type and model, e.g. how often each model declines the avoided-topic
    questions (their fact recall is 1 for a decline, else 0)."""
    out: dict[str, Any] = {}
    for t in sorted({r.get("type", "unknown") for r in results}):
        picked = [r for r in results if r.get("type", "unknown") == t]
        out[t] = {"n": len(picked), **{m: bootstrap_ci(column(picked, m, key), **boot).to_dict() for m in models}}
    return out


def summarize(results: list[dict[str, Any]], info: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of an eval run; `info` says which models, prices and settings."""
    cfg = info["eval_config"]
    boot = {"n_resamples": cfg["bootstrap"], "seed": cfg["seed"]}
    models = list(info["models"])
    trained = "trained" in models
    s: dict[str, Any] = {
        **{k: info[k] for k in ("run", "trained_run", "models", "judge", "logprobs")},
        "trained": trained,
        "n_questions": len(results),
        "note": None if trained else "no trained run yet: this report compares the untrained student with the teacher",
        "rubric": {},
        "fact_recall": {},
        "similarity": {},
        "latency_s": {},
        "tokens_per_s": {},
        "cost_per_1k_queries_usd": {},
        "answer_errors": {},
        "pairwise": {},
    }
    for m in models:
        scores = column(results, m, "rubric")
        texts = column(results, m, "text")
        answered = sum(t is not None for t in texts)
        s["answer_errors"][m] = len(results) - answered
        s["rubric"][m] = bootstrap_ci(scores, **boot).to_dict() | {
            "judge_failures": sum(1 for t, sc in zip(texts, scores) if t is not None and sc is None)
        }
        s["fact_recall"][m] = bootstrap_ci(column(results, m, "fact_recall"), **boot).to_dict()
        s["similarity"][m] = bootstrap_ci(column(results, m, "similarity"), **boot).to_dict()
        lat = column(results, m, "latency_s")
        s["latency_s"][m] = {f"p{q}": bootstrap_ci(lat, percentile(q), **boot).to_dict() for q in (50, 95)}
        tps = [t / l if t is not None and l else None for t, l in zip(column(results, m, "completion_tokens"), lat)]
        s["tokens_per_s"][m] = bootstrap_ci(tps, **boot).to_dict()
        price = info["prices"][m]
        costs = [answer_cost(r["answers"][m], price, cfg["local_usd_per_hour"]) for r in results]
        s["cost_per_1k_queries_usd"][m] = bootstrap_ci([c * 1000 if c is not None else None for c in costs], **boot).to_dict() | {
            "basis": cost_basis(price, cfg["local_usd_per_hour"])
        }
        if m != "teacher" and any("pairwise_orders" in r["answers"].get(m, {}) for r in results):
            s["pairwise"][m] = pairwise_counts(results, m)
    s["fact_recall_by_type"] = by_type(results, models, "fact_recall", boot)
    s |= paired_figures(results, trained, boot)
    s["judge_agreement"] = judge_agreement(results, models, boot)
    s["eval_config"] = cfg
    s["meta"] = info["meta"]
    return s
