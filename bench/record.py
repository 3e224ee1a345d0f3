"""What every bench in bench/ shares: its flags, its RATIO lines, and the JSON record of one run.

A bench compares protege with a peer on the same machine and work, and follows one convention,
so that `bench/run.py` (`make bench`) can run it, collect its figures and write bench/report.md:

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    args = record.parse(parser, quick={"steps": 2})   # adds --quick (smallest size) and --json PATH
    with record.BenchRun("train_vs_trl", args) as run:
        ...
        run.compare("tokens/s", ours=812.3, peer=527.1, peer_name="TRL 1.16.0", unit="tok/s", better="higher")

`compare` prints `RATIO train_vs_trl: tokens/s: protege 812.3 vs TRL 1.16.0 527.1 tok/s = 1.54x`;
the ratio is always how many times better protege's figure is (above 1: protege ahead), for a
figure where lower is better too. A peer that cannot be installed or run here is reported with
`run.peer_missing(peer, why)`, never skipped in silence. The record (machine, load average before
and after, every comparison and note) goes to `--json PATH` when the bench ends without an error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parents[1]
# CPU flags that change these figures: llama.cpp and torch pick kernels by them.
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


def parse(parser: argparse.ArgumentParser, quick: dict[str, object]) -> argparse.Namespace:
    """Parse the bench's arguments plus --quick and --json; with --quick, `quick` replaces the
    defaults (an option given on the command line still wins)."""
    parser.add_argument("--quick", action="store_true", help="the smallest size (what make test runs)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write this run's record as JSON")
    args = parser.parse_args()
    if args.quick:
        parser.set_defaults(**quick)
        args = parser.parse_args()
    return args


def machine() -> dict[str, object]:
    """The machine a figure was measured on: CPU model, cores, the flags above, RAM."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields = dict(line.split(":", 1) for line in cpuinfo.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    present = set(fields.get("flags", "").split())
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem_kib = next((int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal:")), 0)
    return {
        "cpu": fields.get("model name", platform.processor() or "unknown"),
        "cores": os.cpu_count(),
        "flags": [f for f in FLAGS if f in present],
        "ram_gib": round(mem_kib / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def command() -> str:
    """How to rerun this bench by hand, from the repository root (without --json)."""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
    argv = sys.argv[1:]
    if "--json" in argv:
        i = argv.index("--json")
        argv = argv[:i] + argv[i + 2 :]
    return " ".join(["python", str(shown), *argv])


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class BenchRun:
    """One run of one bench: collects its comparisons and writes its record on a clean exit."""

    def __init__(self, bench: str, args: argparse.Namespace) -> None:
        self.bench = bench
        self.json_path: Path | None = args.json
        self.record: dict[str, object] = {
            "bench": bench,
            "quick": bool(args.quick),
            "command": command(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(),
            "load_before": load_average(),
            "comparisons": [],
            "peer_missing": [],
            "notes": [],
        }
        self._t0 = time.perf_counter()

    def __enter__(self) -> BenchRun:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None and self.json_path:
            self.record["seconds"] = round(time.perf_counter() - self._t0, 1)
            self.record["load_after"] = load_average()
            self.json_path.parent.mkdir(parents=True, exist_ok=True)
            self.json_path.write_text(json.dumps(self.record, indent=2) + "\n")

    def compare(self, figure: str, *, ours: float, peer: float, peer_name: str, unit: str,
                better: Literal["higher", "lower"]) -> float:  # fmt: skip
        """Record protege's figure beside the peer's, print the RATIO line; returns the ratio."""
        num, den = (ours, peer) if better == "higher" else (peer, ours)
        ratio = num / den if den else float("nan")
        self.record["comparisons"].append({"figure": figure, "unit": unit, "better": better, "ours": ours,
                                           "peer": peer, "peer_name": peer_name, "ratio": ratio})  # fmt: skip
        print(f"RATIO {self.bench}: {figure}: protege {ours:.4g} vs {peer_name} {peer:.4g} {unit} = {ratio:.2f}x "
              f"({better} is better)", flush=True)  # fmt: skip
        return ratio

    def peer_missing(self, peer: str, why: str) -> None:
        """The peer cannot be installed or run here: said in the output and in the report."""
        self.record["peer_missing"].append({"peer": peer, "why": why})
        print(f"PEER MISSING {self.bench}: {peer}: {why}", flush=True)

    def note(self, text: str) -> None:
        """A line the report prints under the bench's table: what the figures measure, caveats."""
        self.record["notes"].append(text)
