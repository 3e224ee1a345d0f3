"""Aggregate generation throughput under concurrency: protege's llama-server pool vs the old engine.

The old engine is llama-cpp-python 0.3.36's OpenAI server (`python -m llama_cpp.server`, what
protege ran before), one process per model, built like `make setup` built it (native, no AMX).
It lives in its own venv (`make bench-llamacpp`, about 4 minutes of compiling), never in .venv.
protege's side is its server pool (`POOL`, `open_client`): llama-server with parallel slots and
continuous batching. Both sides get the same model, context, threads and requests: N concurrent
streams, each asking for long answers (max_tokens), greedy; the figure is completion tokens per
second of wall time over all streams. The RATIO lines compare the two engines at each level,
and the notes give each engine's gain from 1 stream to the most.

    .venv/bin/python bench/engine_vs_llama_cpp_python.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai

import record
from protege.config import ModelConfig
from protege.models.endpoint import open_client, server_spec
from protege.models.server import POOL

ROOT = Path(__file__).resolve().parent.parent
OLD_VENV = ROOT / ".bench-venv-llamacpp"
PEER = "llama-cpp-python 0.3.36"
MODELS = {
    "student": "embedded:qwen2.5-coder-0.5b-instruct",
    "smollm2": "embedded:smollm2-135m-instruct",
    "teacher": "embedded:qwen2.5-coder-1.5b-instruct",
}
LEVELS = {"student": [1, 4, 8], "smollm2": [1, 4, 8], "teacher": [1, 4]}
TOPICS = ["bicycle chains", "tyre pressure", "brake pads", "gear cables", "wheel truing", "saddle height",
          "frame sizes", "winter riding", "bike locks", "e-bike batteries", "helmets", "lights"]  # fmt: skip


def ask(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Write a long, detailed guide about {TOPICS[i % len(TOPICS)]} for a new cyclist."}]


async def throughput(base_url: str, model: str, level: int, rounds: int, max_tokens: int) -> float:
    """Completion tokens per second of wall time, `level` streams of `rounds` requests each. The
    client is made here: its connections belong to this event loop (one asyncio.run per level)."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=600)

    async def stream(s: int) -> int:
        tokens = 0
        for r in range(rounds):
            c = await client.chat.completions.create(model=model, messages=ask(s * rounds + r), max_tokens=max_tokens,
                                                     temperature=0.0)  # fmt: skip
            tokens += c.usage.completion_tokens
        return tokens

    async with client:
        t0 = time.perf_counter()
        total = sum(await asyncio.gather(*(stream(s) for s in range(level))))
        return total / (time.perf_counter() - t0)


def protege_side(ref: str, levels: list[int], rounds: int, max_tokens: int, n_ctx: int) -> dict[int, float]:
    model = ModelConfig(ref=ref, n_ctx=n_ctx)
    client = open_client(model)
    route = client.local
    base_url, extra = route.resolve()
    out = {level: asyncio.run(throughput(base_url, "local", level, rounds, max_tokens)) for level in levels}
    POOL.stop(server_spec(model))
    return out


def old_side(python: Path, ref: str, levels: list[int], rounds: int, max_tokens: int, n_ctx: int) -> dict[int, float]:
    from protege.models.endpoint import gguf_path
    from protege.refs import parse_ref

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    threads = str(os.cpu_count() or 1)
    cmd = [str(python), "-m", "llama_cpp.server", "--model", str(gguf_path(parse_ref(ref))), "--model_alias", "local",
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", threads,
           "--n_threads_batch", threads, "--verbose", "false"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                sys.exit(f"{PEER} server exited at start ({' '.join(cmd)})")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        url = f"http://127.0.0.1:{port}/v1"
        return {level: asyncio.run(throughput(url, "local", level, rounds, max_tokens)) for level in levels}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--rounds", type=int, default=2, help="requests per stream")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--old-python", type=Path, default=OLD_VENV / "bin" / "python")
    args = record.parse(parser, quick={"models": ["smollm2"], "rounds": 1, "max_tokens": 32})
    with record.BenchRun("engine_vs_llama_cpp_python", args) as run:
        old_ok = args.old_python.is_file()
        if not old_ok:
            run.peer_missing(PEER, f"{args.old_python} not found: make bench-llamacpp builds it")
        for name in args.models:
            ref, levels = MODELS[name], LEVELS[name] if not args.quick else [1, 4]
            ours = protege_side(ref, levels, args.rounds, args.max_tokens, args.n_ctx)
            old = old_side(args.old_python, ref, levels, args.rounds, args.max_tokens, args.n_ctx) if old_ok else {}
            for level in levels:
                print(f"{name:8s} {level} stream(s): llama-server {ours[level]:7.1f} tok/s"
                      + (f"   {PEER} {old[level]:7.1f} tok/s" if old else ""), flush=True)  # fmt: skip
                if old:
                    run.compare(f"{name} ({ref}) aggregate tok/s, {level} stream(s)", ours=round(ours[level], 1),
                                peer=round(old[level], 1), peer_name=PEER, unit="tok/s", better="higher")  # fmt: skip
            top = levels[-1]
            gains = f"{name}: {top} streams vs 1: llama-server {ours[top] / ours[1]:.2f}x"
            run.note(gains + (f", {PEER} {old[top] / old[1]:.2f}x" if old else ""))
            print(gains + (f", {PEER} {old[top] / old[1]:.2f}x" if old else ""), flush=True)
        run.note(f"greedy, max_tokens {args.max_tokens}, {args.rounds} request(s) per stream, n_ctx {args.n_ctx} "
                 f"per request, {os.cpu_count()} threads; llama-server slots: protege's own choice (8 small, 4 teacher)")  # fmt: skip


if __name__ == "__main__":
    main()
