"""Constructed eval results (the shape of results.jsonl) for the fast tests."""

from __future__ import annotations

from typing import Any

from protege.config import EvalConfig


def answer(text: str | None, rubric: int | None, *, latency: float = 0.5, tokens: int = 20, similarity: float | None = 0.5,
           orders: list[str | None] | None = None, pairwise: str | None = None, errors: list[str] | None = None,
           recall: float | None = None) -> dict[str, Any]:  # fmt: skip
    a = {"text": text, "latency_s": latency if text is not None else None, "completion_tokens": tokens if text is not None else None,
         "cost_usd": 0.0, "mean_logprob": -0.5, "min_logprob": -3.0, "error": None if text is not None else "boom",
         "rubric": rubric, "fact_recall": recall, "facts_missing": [], "similarity": similarity, "judge_errors": errors or []}  # fmt: skip
    if orders is not None:
        a["pairwise_orders"], a["pairwise"] = orders, pairwise
    return a


def make_results(untrained: list, trained: list | None, teacher: list, verdicts: list | None = None,
                 recall: tuple[list, list | None, list] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Rows with the given rubric scores per model; `verdicts` are (orders, reconciled) per question;
    `recall` the fact recall per question of (untrained, trained, teacher)."""
    rows = []
    for i, (u, t) in enumerate(zip(untrained, teacher)):
        orders, pw = verdicts[i] if verdicts else (["tie", "tie"], "tie")
        ru, rs, rt = (None if col is None else col[i] for col in recall) if recall else (None, None, None)
        answers = {"untrained": answer(f"untrained answer {i}", u, orders=orders, pairwise=pw, latency=0.2 + 0.01 * i, recall=ru)}
        if trained is not None:
            answers["trained"] = answer(f"trained answer {i}", trained[i], orders=orders, pairwise=pw, latency=0.3, recall=rs)
        answers["teacher"] = answer(f"teacher answer {i}", t, latency=3.0 + 0.1 * i, tokens=60, similarity=1.0, recall=rt)
        rows.append({"id": f"q-{i}", "type": "factual", "question": f"question {i}?", "reference": f"reference {i}",
                     "messages": [{"role": "user", "content": f"question {i}?"}], "key_facts": ["$79"] if recall else [],
                     "expect": "facts" if recall else None, "answers": answers})  # fmt: skip
    return rows


def make_info(trained: bool, teacher_price: float = 0.0) -> dict[str, Any]:
    models = {"untrained": {"ref": "embedded:smollm2-135m-instruct", "lora": None}}
    if trained:
        models["trained"] = {"ref": "embedded:smollm2-135m-instruct", "lora": "/x/adapter.gguf"}
    models["teacher"] = {"ref": "embedded:qwen2.5-coder-1.5b-instruct", "lora": None}
    prices = {m: {"input": 0.0, "output": 0.0, "local": True} for m in models}
    if teacher_price:
        prices["teacher"] = {"input": teacher_price, "output": teacher_price, "local": False}
    return {
        "run": "run-1" if trained else "untrained", "trained_run": "/x" if trained else None, "models": models,
        "judge": "embedded:qwen2.5-coder-1.5b-instruct", "logprobs": {"untrained": True, "trained": True, "teacher": False},
        "prices": prices, "eval_config": EvalConfig(bootstrap=500).model_dump(mode="json"),
        "meta": {"config_hash": "abc", "code_version": "0.1.0", "created": "now", "wall_s": 1.0},
    }  # fmt: skip
