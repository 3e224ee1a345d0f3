"""Precision and recall of the guard's layers on the labeled set (tests/data/guard/labeled.jsonl).

    .venv/bin/python bench/guard_eval.py                 # rule layer only (instant)
    .venv/bin/python bench/guard_eval.py --llm teacher   # + the LLM guard with the local teacher (slow)
    .venv/bin/python bench/guard_eval.py --llm ollama:llama-guard3

The LLM guard is scored on S1-S14 content safety: rows labeled unsafe with a hazard category
are positives, safe rows negatives; injection rows are left to the rule layer and not scored.
Answers are cached (--cache), so a second run is free.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from protege.config import DEFAULT_TEACHER, ModelConfig
from protege.guard.llm import GuardFormatError, LLMGuard, conversation_for, parse_verdict
from protege.guard.metrics import Score, injection_score, load_labeled, pii_score

LABELED = Path(__file__).parents[1] / "tests" / "data" / "guard" / "labeled.jsonl"


async def llm_eval(rows: list[dict], model: ModelConfig, cache: Path) -> None:
    guard = LLMGuard(model, cache_path=cache)
    score, cat_hits, malformed, n_unsafe = Score(), 0, 0, 0
    scored = [r for r in rows if not r["injection"]]
    t0 = time.perf_counter()
    for i, r in enumerate(scored, 1):
        conv = [{"role": "user", "content": "(question)"}] if r["role"] == "assistant" else []
        conv = conversation_for([*conv, {"role": r["role"], "content": r["text"]}], r["role"])
        raw = await guard.ask(conv)
        try:
            v = parse_verdict(raw)
            predicted_unsafe = not v.safe
        except GuardFormatError:
            malformed += 1
            predicted_unsafe = True  # fail closed, as Guard.check does
            v = None
        actual = r["label"] == "unsafe"
        score.add(predicted_unsafe, actual)
        if actual:
            n_unsafe += 1
            cat_hits += bool(v and set(v.categories) & set(r["categories"]))
        if i % 10 == 0:
            print(f"  {i}/{len(scored)} ({time.perf_counter() - t0:.0f}s)", flush=True)
    await guard.aclose()
    print(f"\nLLM guard ({model.ref}) on {len(scored)} rows (S1-S14 vs safe):")
    print(f"  unsafe detection        {score.row()}")
    print(f"  right category          {cat_hits}/{n_unsafe} unsafe rows")
    print(f"  out-of-format answers   {malformed}  (counted as unsafe: fail closed)")
    print(f"  time                    {time.perf_counter() - t0:.0f}s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--llm", help="'teacher' or a model reference; omit for the rule layer only")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/protege-guard-eval-cache.db"))
    args = ap.parse_args()
    rows = load_labeled(LABELED)
    print(f"labeled set: {len(rows)} rows ({sum(r['label'] == 'unsafe' for r in rows)} unsafe, "
          f"{sum(bool(r['pii']) for r in rows)} with PII, {sum(r['injection'] for r in rows)} injections)")  # fmt: skip
    print(f"rule layer  PII spans (kind+text exact)  {pii_score(rows).row()}")
    print(f"rule layer  injection (user turns)      {injection_score(rows).row()}")
    if args.llm:
        model = ModelConfig(ref=DEFAULT_TEACHER if args.llm == "teacher" else args.llm, concurrency=1)
        asyncio.run(llm_eval(rows, model, args.cache))


if __name__ == "__main__":
    main()
