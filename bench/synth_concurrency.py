"""How synth's kept pairs per minute scale with concurrency against a remote-like teacher.

The teacher is bench/canned_endpoint.py: an OpenAI-compatible server that sleeps a fixed time
per answer (network and queueing latency, no compute), so the figure measures protege's own
pipeline: bounded concurrency, caching, parsing, filtering. Each run starts from an empty cache.

    .venv/bin/python bench/synth_concurrency.py [--delay 0.3] [--chunks 16] [--questions 4]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import yaml

import canned_endpoint
from protege.project import Project
from protege.scaffold import init_project
from protege.synth import run

DOCS = Path(__file__).resolve().parents[1] / "examples" / "riverbend-bikes" / "docs"


def one_run(url: str, concurrency: int, chunks: int, questions: int) -> tuple[float, int, int]:
    """(wall seconds, kept pairs, model calls) for one synth run with a fresh cache."""
    root = Path(tempfile.mkdtemp(prefix=f"synth-c{concurrency}-"))
    try:
        init_project(root / "p", docs=DOCS, name="bench")
        cfg = root / "p" / "protege.yaml"
        data = yaml.safe_load(cfg.read_text())
        data["teacher"] = {"ref": f"openai:canned@{url}", "concurrency": concurrency, "max_retries": 0}
        data["synth"] = {"max_chunks": chunks, "questions_per_chunk": questions, "type_mix": {"factual": 1, "how-to": 1}}
        cfg.write_text(yaml.safe_dump(data))
        t0 = time.perf_counter()
        result = run(Project.load(root / "p"))
        wall = time.perf_counter() - t0
        return wall, result.counts["kept"], sum(u["calls"] for u in result.usage)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.3, help="endpoint seconds per answer")
    parser.add_argument("--chunks", type=int, default=16)
    parser.add_argument("--questions", type=int, default=4, help="questions per chunk")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()
    server, url = canned_endpoint.start(delay=args.delay)
    print(f"canned teacher at {url}: {args.delay * 1000:.0f} ms per answer; {args.chunks} chunks x {args.questions} questions")
    print(f"{'concurrency':>11} {'wall s':>8} {'calls':>6} {'kept':>5} {'pairs/min':>10} {'speedup':>8}")
    base = None
    for level in args.levels:
        wall, kept, calls = one_run(url, level, args.chunks, args.questions)
        rate = kept / wall * 60
        base = base or rate
        print(f"{level:>11} {wall:>8.1f} {calls:>6} {kept:>5} {rate:>10.1f} {rate / base:>7.1f}x")
    server.shutdown()


if __name__ == "__main__":
    main()
