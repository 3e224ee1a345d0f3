"""The rule layer's latency: it runs on every request, so its p99 must stay small.

    .venv/bin/python bench/guard_latency.py [--rounds 20]

Times find_pii + find_injection + redact (what serve runs per turn) over the labeled set's
texts and over long texts (the set's texts joined, ~2,000 and ~8,000 characters).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from protege.guard.metrics import load_labeled
from protege.guard.rules import find_injection, redact

LABELED = Path(__file__).parents[1] / "tests" / "data" / "guard" / "labeled.jsonl"


def timings(texts: list[str], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        for t in texts:
            t0 = time.perf_counter()
            find_injection(t)
            redact(t)
            out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    texts = [r["text"] for r in load_labeled(LABELED)]
    joined = " ".join(texts)
    cases = {
        f"labeled set ({len(texts)} texts, mean {statistics.mean(map(len, texts)):.0f} chars)": texts,
        "2,000-char texts": [joined[i : i + 2000] for i in range(0, 8000, 2000)],
        "8,000-char texts": [joined[i : i + 8000] for i in range(0, len(joined) - 8000, 4000)][:4],
    }
    timings(texts, 1)  # warm-up: imports and regex compilation
    print(f"{'case':55} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, batch in cases.items():
        ms = sorted(timings(batch, args.rounds))
        p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
        print(f"{name:55} {len(ms):>6} {p(0.5):>8.3f} {p(0.99):>8.3f} {ms[-1]:>8.3f}")


if __name__ == "__main__":
    main()
