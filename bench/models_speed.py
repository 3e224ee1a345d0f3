"""Foundation figures: llama.cpp server start time and generation tokens/s of the embedded chat
models, through protege's own client (the path every stage uses).

    .venv/bin/python bench/models_speed.py [--tokens 128] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from protege.config import ModelConfig
from protege.models.endpoint import open_client, server_spec
from protege.models.server import POOL

PROMPT = [{"role": "user", "content": "Write a short paragraph about why bicycles need regular maintenance."}]
MODELS = ["embedded:qwen2.5-coder-1.5b-instruct", "embedded:smollm2-135m-instruct"]


async def measure(ref: str, tokens: int, runs: int) -> dict:
    model = ModelConfig(ref=ref, n_ctx=2048)
    spec = server_spec(model)
    POOL.stop(spec)
    t0 = time.perf_counter()
    client = open_client(model)
    start_s = time.perf_counter() - t0
    rates, latencies = [], []
    async with client:
        for i in range(runs):
            c = await client.complete(PROMPT, max_tokens=tokens, temperature=0.0, seed=i, use_cache=False)
            rates.append(c.tokens_per_s)
            latencies.append(c.latency_s)
    POOL.stop(spec)
    return {"ref": ref, "start_s": start_s, "tok_s": statistics.median(rates), "latency_s": statistics.median(latencies)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(f"{'model':45} {'server start':>12} {'gen tok/s':>10} {'latency':>8}")
    for ref in MODELS:
        r = asyncio.run(measure(ref, args.tokens, args.runs))
        print(f"{r['ref']:45} {r['start_s']:>11.2f}s {r['tok_s']:>10.1f} {r['latency_s']:>7.2f}s")


if __name__ == "__main__":
    main()
