"""protege synth vs distilabel (self-instruct + text-generation) on the same docs and endpoint.

Both talk to one local llama.cpp server (started here through protege's server pool) over the
OpenAI protocol, and both are asked for the same number of pairs: `--chunks` chunks of the
bike-shop example times `--questions` questions each (distilabel's SelfInstruct returns every
line the model wrote as an instruction, so its first `--questions` per chunk are kept before
they are answered). distilabel runs in its own venv (.bench-venv, no torch; `make bench-peers`
installs it); this script runs bench/distilabel_side.py there.

What each does per pair is not the same, and the figures should be read with that in mind:
distilabel writes questions (several per call) and answers them closed-book; protege writes
one question per call, answers grounded in the chunk, runs the guard and a judge call, and
drops pairs the judge scores low. Printed: wall time, teacher tokens, kept pairs per minute.

    .venv/bin/python bench/synth_vs_distilabel.py [--model embedded:qwen2.5-coder-0.5b-instruct] [--chunks 4]
        [--questions 2] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import record

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "examples" / "riverbend-bikes" / "docs"
BENCH_PYTHON = ROOT / ".bench-venv" / "bin" / "python"
DISTILABEL_SIDE = Path(__file__).resolve().parent / "distilabel_side.py"
ANSWER_MAX_TOKENS = 256  # the same cap on both sides (distilabel_side.py reads it from its arguments)


def protege_side(url: str, license: str, chunks: int, questions: int) -> dict:
    import yaml

    from protege.project import Project
    from protege.scaffold import init_project
    from protege.synth import run

    root = Path(tempfile.mkdtemp(prefix="synth-vs-distilabel-"))
    try:
        init_project(root / "p", docs=DOCS, name="riverbend")
        cfg = root / "p" / "protege.yaml"
        data = yaml.safe_load(cfg.read_text())
        data["teacher"] = {"ref": f"openai:local@{url}", "license": license}
        # judge_threshold 0: a stand-in teacher this small cannot grade, so only a judge
        # answer with no scores at all drops a pair (the judge call is still made and timed).
        data["synth"] = {"max_chunks": chunks, "questions_per_chunk": questions, "answer_max_tokens": ANSWER_MAX_TOKENS,
                         "type_mix": {"factual": 1, "how-to": 1}, "judge_threshold": 0}  # fmt: skip
        cfg.write_text(yaml.safe_dump(data))
        project = Project.load(root / "p")
        t0 = time.perf_counter()
        result = run(project)
        wall = time.perf_counter() - t0
        tokens = sum(u["prompt_tokens"] + u["completion_tokens"] for u in result.usage)
        reasons = Counter(json.loads(line)["reason"] for line in result.dropped.read_text().splitlines())
        return {"wall_s": wall, "pairs": result.counts["kept"], "tokens": tokens, "written": result.counts["questions"],
                "dropped": dict(reasons)}  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


def chunk_texts(chunks: int) -> list[str]:
    """The same chunks protege will use (its own loader and seeded selection)."""
    from protege.config import SynthConfig
    from protege.corpus.chunk import chunk_document
    from protege.corpus.load import load_documents
    from protege.synth.pipeline import select_chunks

    cfg = SynthConfig(max_chunks=chunks)
    loaded = load_documents(DOCS)
    all_chunks = [c for d in loaded.documents for c in chunk_document(d, cfg.chunk_tokens, cfg.chunk_overlap)]
    return [c.text for c in select_chunks(all_chunks, cfg.max_chunks, cfg.seed)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:qwen2.5-coder-0.5b-instruct", help="local model behind the endpoint")
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--questions", type=int, default=2, help="questions per chunk")
    args = record.parse(parser, quick={"chunks": 1, "questions": 1})
    with record.BenchRun("synth_vs_distilabel", args) as run:
        if not BENCH_PYTHON.exists():
            run.peer_missing("distilabel", f"{BENCH_PYTHON} missing (make bench-peers installs distilabel there)")
        measure(args, run)


def distilabel_run(url: str, chunks: int, questions: int) -> dict:
    """distilabel's side, in its own venv, on the same chunks and endpoint."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "chunks.json"
        spec.write_text(json.dumps(chunk_texts(chunks)))
        out = Path(tmp) / "result.json"
        env = dict(os.environ, HF_HUB_OFFLINE="1", DISTILABEL_LOG_LEVEL="WARNING")
        args = [url, str(spec), str(questions), str(ANSWER_MAX_TOKENS), str(out)]
        done = subprocess.run([str(BENCH_PYTHON), str(DISTILABEL_SIDE), *args], env=env, capture_output=True, text=True,
                              timeout=1800)  # fmt: skip
        if done.returncode or not out.exists():
            sys.exit(f"distilabel's side failed (exit code {done.returncode}):\n{done.stderr[-3000:]}")
        return json.loads(out.read_text())


def measure(args: argparse.Namespace, run: record.BenchRun) -> None:
    from protege.config import ModelConfig
    from protege.models.endpoint import server_spec
    from protege.models.server import POOL
    from protege.synth.card import license_terms

    url = POOL.get(server_spec(ModelConfig(ref=args.model))).base_url
    print(f"endpoint: {args.model} served by llama.cpp at {url}; {args.chunks} chunks x {args.questions} questions")
    try:
        ours = protege_side(url, license_terms(ModelConfig(ref=args.model)), args.chunks, args.questions)
        print(f"protege done: {json.dumps(ours)}", flush=True)
        theirs = distilabel_run(url, args.chunks, args.questions) if BENCH_PYTHON.exists() else None
    finally:
        POOL.stop_all()

    print(f"{'':<12} {'wall s':>8} {'tokens':>8} {'kept pairs':>11} {'pairs/min':>10}")
    for name, r in (("protege", ours), ("distilabel", theirs)):
        if r:
            print(f"{name:<12} {r['wall_s']:>8.1f} {r['tokens']:>8,} {r['pairs']:>11} {r['pairs'] / r['wall_s'] * 60:>10.1f}")
    run.note(f"Endpoint: {args.model} on llama.cpp; {args.chunks} chunks x {args.questions} questions asked of each. "
             f"protege wrote {ours['written']} questions and kept {ours['pairs']} after dedup, guard and judge "
             f"(dropped: {ours['dropped'] or 'none'}); it answers grounded in the chunk and makes a judge call per pair, "
             "distilabel answers closed-book and keeps every pair.")  # fmt: skip
    if theirs is None:
        return
    peer = f"distilabel {theirs['version']}"
    run.compare("kept pairs per minute", ours=ours["pairs"] / ours["wall_s"] * 60,
                peer=theirs["pairs"] / theirs["wall_s"] * 60, peer_name=peer, unit="pairs/min", better="higher")  # fmt: skip
    if ours["pairs"] and theirs["pairs"]:
        run.compare("teacher tokens per kept pair", ours=ours["tokens"] / ours["pairs"],
                    peer=theirs["tokens"] / theirs["pairs"], peer_name=peer, unit="tokens", better="lower")  # fmt: skip


if __name__ == "__main__":
    main()
