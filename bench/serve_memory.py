"""Memory per extra agent: several projects (LoRA adapters over one base GGUF) behind one gateway.

All agents over one base share one llama-server: each project's adapter.gguf is loaded at start
(without being applied) and each request names its own. One more agent then costs its adapter
and little else. The figure is the growth of the total PSS of the llama-server processes (and
their launchers) from 1 agent to N, per extra agent, beside the adapter's file size; the target
is at most the adapter plus 10 MiB. (Before, with one llama-cpp-python process per agent, it was
PSS +146.7 MiB per extra agent, measured on 2026-11-25.)

    python bench/serve_memory.py --agents 4
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import openai
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "serve"))  # the random-adapter project builder the tests use

from gateway_kit import make_project, start_gateway  # noqa: E402


def llama_memory() -> tuple[int, float, float, float]:
    """(llama-server processes, total RSS, total PSS, total USS) in MiB, launchers included."""
    from protege.models.server import POOL

    rss = pss = uss = 0.0
    servers = POOL.running()
    for server in servers:
        for pid in (server.pid, server.engine_pid):
            info = psutil.Process(pid).memory_full_info()
            rss, pss, uss = rss + info.rss, pss + info.pss, uss + info.uss
    mib = 1024 * 1024
    return len(servers), rss / mib, pss / mib, uss / mib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=4)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="serve-memory-"))
    # The teacher is a remote endpoint here (never contacted): only the students are local.
    teacher = "openai:teacher@http://127.0.0.1:9/v1"
    projects = [make_project(work / f"agent-{i}", f"agent-{i}", teacher=teacher) for i in range(args.agents)]
    print(f"{'agents':>6s} {'procs':>5s} {'RSS MiB':>9s} {'PSS MiB':>9s} {'USS MiB':>9s}   (llama.cpp servers, base "
          f"{projects[0].config.student.ref}, n_ctx {projects[0].config.student.n_ctx}, rank-2 LoRA on q,v)")  # fmt: skip
    rows = []
    for n in range(1, args.agents + 1):
        gw = start_gateway(projects[:n])
        try:
            client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="none", max_retries=0)
            for p in projects[:n]:  # one answer each, so every process has touched its weights
                client.chat.completions.create(model=p.name, messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
            procs, rss, pss, uss = llama_memory()
            rows.append((n, rss, pss, uss))
            print(f"{n:6d} {procs:5d} {rss:9.1f} {pss:9.1f} {uss:9.1f}", flush=True)
        finally:
            gw.stop()
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        extra = len(rows) - 1
        adapter = (projects[0].paths.model_run("run-1") / "adapter.gguf").stat().st_size / (1024 * 1024)
        print(f"\nper extra agent: PSS +{(last[2] - first[2]) / extra:.1f} MiB, USS +{(last[3] - first[3]) / extra:.1f} MiB, "
              f"RSS +{(last[1] - first[1]) / extra:.1f} MiB; one adapter.gguf is {adapter:.2f} MiB "
              f"(target: PSS at most adapter + 10 MiB)")  # fmt: skip


if __name__ == "__main__":
    main()
