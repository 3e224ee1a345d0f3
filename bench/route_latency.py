"""Latency of one routing decision: embed the query + score it (+ compare with the threshold).

The budget is 10 ms p99 on a CPU for the embedding routers (sw_ranking, classifier); the
cascade's decision is free before the student answers, and its cost is the student's
generation time, which `protege route fit` reports. For a peer comparison the same decision is
timed with the query embedded by sentence-transformers on torch (the path fit uses), and the
ratio is printed.

    .venv/bin/python bench/route_latency.py [--n 500] [--quick] [--json PATH]

On a shared CPU, wall-clock tail latency follows the load, so the CPU time each decision used
is printed beside it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import record

QUERIES = [
    "When do you open on Saturday?",
    "How much does a basic tune-up cost?",
    "My rear derailleur makes a clicking noise when I pedal uphill, what should I check first?",
    "Can you explain step by step how to bleed a hydraulic disc brake at home?",
    "Is there parking at the Old Town store?",
    "Which is better for a heavy rider commuting in the rain, new wheels or a full overhaul?",
]


def percentiles(samples: list[float]) -> tuple[float, float]:
    ms = np.array(samples) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def fitted_routers(directory: Path) -> dict[str, Path]:
    """An sw_ranking and a classifier router fitted on 200 labelled queries, saved as artifacts."""
    from protege.route.router import Router, save
    from protege.route.routers import Classifier, Queries, SwRanking

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(200, 384)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    y = (emb[:, 0] > 0).astype(np.int64)
    q = Queries([f"q{i}" for i in range(200)], emb)
    paths = {}
    for scorer in (SwRanking.fit(q, y), Classifier.fit(q, y)):
        paths[scorer.kind] = directory / scorer.kind
        save(paths[scorer.kind], Router(scorer, 0.5))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="decisions timed per router")
    args = record.parse(parser, quick={"n": 50})
    with record.BenchRun("route_latency", args) as run:
        measure(args.n, run)


def measure(n: int, run: record.BenchRun) -> None:
    """Time n decisions per router through protege's path, and the same decisions on torch."""
    from protege.models.embeddings import encode
    from protege.route import load
    from protege.route.routers import Queries

    with tempfile.TemporaryDirectory() as tmp:
        for kind, path in fitted_routers(Path(tmp)).items():
            router = load(path)
            messages = [[{"role": "user", "content": q}] for q in QUERIES]
            router.decide(messages[0])  # load the encoder once, outside the timing
            times, cpu = [], []
            for i in range(n):
                t0, c0 = time.perf_counter(), time.process_time()
                router.decide(messages[i % len(messages)])
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            p50, p99 = percentiles(times)
            c50, c99 = percentiles(cpu)

            encode(QUERIES[:1])
            torch_times = []
            for i in range(max(50, n // 5)):
                t0 = time.perf_counter()
                emb = encode([QUERIES[i % len(QUERIES)]])
                router.scorer.score(Queries([QUERIES[i % len(QUERIES)]], emb))
                torch_times.append(time.perf_counter() - t0)
            t50, t99 = percentiles(torch_times)
            verdict = "within" if p99 < 10 else "OVER"
            print(f"{kind:11s} decide(): p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  ({verdict} the 10 ms p99 budget; n={n})")
            print(f"{'':11s} CPU time:   p50 {c50:6.2f} ms  p99 {c99:6.2f} ms  (what a decision costs without waiting for a core)")
            print(f"{'':11s} torch path: p50 {t50:6.2f} ms  p99 {t99:6.2f} ms")
            for q, ours, peer in (("p50", p50, t50), ("p99", p99, t99)):
                run.compare(f"{kind} decision {q}", ours=ours, peer=peer, peer_name="sentence-transformers (torch)",
                            unit="ms", better="lower")  # fmt: skip
            run.note(f"{kind}: decision p99 {p99:.2f} ms, {verdict} the 10 ms budget; CPU time per decision p50 "
                     f"{c50:.2f} ms, p99 {c99:.2f} ms; n={n} (torch path n={max(50, n // 5)}).")  # fmt: skip
    run.note("A decision embeds the query (MiniLM-L6) and scores it; the peer embeds it with sentence-transformers "
             "on torch, as `protege route fit` does, and scores it with the same router.")  # fmt: skip


if __name__ == "__main__":
    main()
