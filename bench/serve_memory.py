"""Memory per extra agent: several projects (LoRA adapters over one base GGUF) behind one gateway.

Each agent's student is its own llama.cpp process (base + that project's adapter). The base GGUF
is mmapped, so its pages are shared between the processes: RSS counts them in every process,
PSS splits them, USS counts only what a process alone holds. The cost of one more agent is the
growth of the total PSS (or the new process's USS), not its RSS.

llama-cpp-python 0.3.36's `Llama()` turns mmap off whenever `lora_path` is set (a leftover from
when adapters were merged into the weights), so each adapter process held a private copy of the
base (~92 MiB for SmolLM2-135M Q4_1): about 235 MiB per extra agent. protege launches its
servers through `protege.models.llama_launch`, which keeps the base mapped; measured on 2 cores
on 2026-11-25: PSS +146.7 MiB, USS +111.5 MiB per extra agent (4 agents).

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
    """(processes, total RSS, total PSS, total USS) in MiB of the running llama.cpp servers."""
    from protege.models.server import POOL

    rss = pss = uss = 0.0
    servers = POOL.running()
    for server in servers:
        info = psutil.Process(server.pid).memory_full_info()
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
        print(f"\nper extra agent: PSS +{(last[2] - first[2]) / extra:.1f} MiB, USS +{(last[3] - first[3]) / extra:.1f} MiB "
              f"(RSS +{(last[1] - first[1]) / extra:.1f} MiB, which counts the shared base again in every process)")  # fmt: skip


if __name__ == "__main__":
    main()
