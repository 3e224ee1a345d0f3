"""Run every side-by-side bench and write one report: bench/report.md and bench/report.json.

    python bench/run.py                  # default sizes (make bench): bench/report.md
    python bench/run.py --quick          # smallest sizes (make bench QUICK=1, and make test)
    python bench/run.py --only gateway_vs_litellm route_latency

Each bench is `python bench/<name>.py [--quick] --json FILE` (the convention in bench/record.py);
its output is streamed here and kept in <out>/logs/<name>.log. A bench fails when it exits
non-zero, writes no record, or prints neither a RATIO line nor a PEER MISSING line; the report
then shows the end of its log, and this exits 1. Adding a bench: follow bench/README.md and add
its name to BENCHES; a script in bench/ that is neither run nor a helper must say why in NOT_RUN.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import record
import render

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent

# name -> what it compares; run in this order (quick ones first, so a broken setup shows early).
BENCHES = {
    "route_latency": "routing decision: protege's numpy query encoder vs sentence-transformers on torch",
    "gateway_vs_litellm": "gateway overhead: protege serve vs LiteLLM's proxy in front of one fast upstream",
    "train_vs_trl": "LoRA SFT: protege train vs TRL's SFTTrainer, same student, rows and settings",
    "synth_vs_distilabel": "synthetic Q&A: protege synth vs distilabel on one local llama.cpp endpoint",
    "engine_vs_llama_cpp_python": "aggregate tok/s at 1/4/8 concurrent streams: llama-server slots vs llama-cpp-python's server",
    "guard_eval": "safety checks on the labelled set's held-out split: the distilled guard vs the teacher-guard it learned from",
}
# Scripts in bench/ that make bench does not run, and why (the report lists them).
NOT_RUN = {
    "serve_memory": "no peer: memory per extra agent over one base GGUF (one llama-server, one adapter each), "
    "protege's own figure against its target (the adapter's size + 10 MiB)",
    "models_speed": "no peer: server start time and tokens/s of the embedded models",
    "synth_concurrency": "no peer: synth's own scaling with teacher concurrency against a canned endpoint",
    "guard_latency": "no peer: the guard rule layer's latency",
    "kd_ablation": "no peer: SFT only vs KD only vs SFT+KD on one finished project (it trains two more students); "
    "test_run_quick runs it on the quick loop's project",
    "train_device": "no peer: protege train's tokens/s and peak memory per precision, on a CPU or a GPU",
}
HELPERS = {"record", "render", "run", "canned_endpoint", "distilabel_side"}  # modules the benches import, not benches


def run_one(script: Path, quick: bool, logs: Path, timeout: float) -> dict:
    """Run one bench script, streaming its output; returns its record, or a failure record."""
    name = script.stem
    out = logs / f"{name}.json"
    out.unlink(missing_ok=True)
    args = ["--json", str(out)] + (["--quick"] if quick else [])
    print(f"\n=== {name}: python bench/{name}.py {' '.join(args)}", flush=True)
    t0, lines = time.perf_counter(), []
    # Its own process group, so a bench past its time limit goes with every server it started.
    proc = subprocess.Popen([sys.executable, str(script), *args], cwd=ROOT, text=True, bufsize=1,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    with (logs / f"{name}.log").open("w") as log:

        def relay() -> None:
            for line in proc.stdout:
                log.write(line)
                lines.append(line.rstrip("\n"))
                print(f"[{name}] {line}", end="", flush=True)

        reader = threading.Thread(target=relay, daemon=True)
        reader.start()
        try:
            code = proc.wait(timeout=timeout)
            why = f"exit code {code}" if code else ""
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            why = f"ran past its {timeout:.0f} s limit"
        except KeyboardInterrupt:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        reader.join(timeout=10)
    seconds = round(time.perf_counter() - t0, 1)
    said = [x for x in lines if x.startswith((f"RATIO {name}:", f"PEER MISSING {name}:"))]
    if not why and not out.exists():
        why = "wrote no record (--json)"
    if not why and not said:
        why = "printed no RATIO line and no PEER MISSING line"
    if why:
        print(f"=== {name} FAILED: {why}", flush=True)
        return {"bench": name, "failed": why, "seconds": seconds, "log_tail": lines[-25:]}
    print(f"=== {name}: done in {seconds} s", flush=True)
    result = json.loads(out.read_text())
    result["wall_s"] = seconds
    return result


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every bench at its smallest size")
    parser.add_argument("--only", nargs="+", choices=list(BENCHES), help="run these benches only")
    parser.add_argument("--out", type=Path, help="folder for report.md/report.json (default: bench/ for a full run "
                        "of every bench, else bench/scratch/)")
    parser.add_argument("--timeout", type=float, help="seconds one bench may run (default 300 quick, 1800 full)")
    args = parser.parse_args()
    full = not (args.quick or args.only)
    out = args.out or (BENCH_DIR if full else BENCH_DIR / "scratch")
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    timeout = args.timeout or (300 if args.quick else 1800)
    started = datetime.now(timezone.utc)
    results = [run_one(BENCH_DIR / f"{name}.py", args.quick, logs, timeout) for name in (args.only or BENCHES)]
    report = {
        "command": "python bench/run.py" + (" --quick" if args.quick else "") + (f" --only {' '.join(args.only)}" if args.only else ""),
        "quick": args.quick, "commit": commit(), "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": round((datetime.now(timezone.utc) - started).total_seconds(), 1),
        "machine": record.machine(), "benches": results, "not_run": NOT_RUN,
    }  # fmt: skip
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(render.report_md(report, BENCHES, NOT_RUN))
    if full and args.out is None:  # the README quotes this report: keep the quote in step
        render.quote(ROOT / "README.md", render.summary_md(report))
    failed = [r["bench"] for r in results if "failed" in r]
    missing = [r["bench"] for r in results if r.get("peer_missing")]
    print("\n" + ", ".join(f"{r['bench']} {r.get('wall_s', r['seconds'])} s" for r in results))
    print(f"{len(results) - len(failed)} of {len(results)} benches ran in {report['seconds']:.0f} s"
          + (f"; peer not measured in: {', '.join(missing)}" if missing else "")
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))  # fmt: skip
    print(f"Report: {out / 'report.md'} (and report.json beside it); logs in {logs}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
