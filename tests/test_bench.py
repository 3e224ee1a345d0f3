"""`make bench QUICK=1` inside `make test`: every bench runs at its smallest size, so one that breaks
fails CI. The quick run checks that each bench printed its RATIO line, not what the ratio is
(timings on a shared CI machine are not a pass/fail signal); the fast tests check that the runner
catches a broken bench and that no script in bench/ escapes the run unexplained.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))  # the runner imports bench/record.py and render.py by name
_spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
runner = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runner)
import record  # noqa: E402

RECORDING_BENCH = """
import json, sys
out = sys.argv[sys.argv.index("--json") + 1]
print("RATIO {name}: speed: protege 2 vs peer 1 tok/s = 2.00x (higher is better)")
json.dump({{"bench": "{name}", "comparisons": [], "peer_missing": [], "notes": []}}, open(out, "w"))
"""


def test_every_script_in_bench_is_run_or_says_why_not():
    scripts = {p.stem for p in (ROOT / "bench").glob("*.py")}
    run, not_run, helpers = set(runner.BENCHES), set(runner.NOT_RUN), runner.HELPERS
    assert not (run & not_run) and not (run & helpers) and not (not_run & helpers)
    assert scripts == run | not_run | helpers, f"unlisted: {sorted(scripts - run - not_run - helpers)}"
    assert all(why.strip() for why in runner.NOT_RUN.values())


def test_ratio_is_how_many_times_better_protege_is(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["bench/x.py", "--quick", "--json", str(tmp_path / "x.json")])
    args = record.parse(argparse.ArgumentParser(), quick={})
    with record.BenchRun("x", args) as run:
        assert run.compare("speed", ours=300, peer=100, peer_name="Peer", unit="tok/s", better="higher") == 3
        assert run.compare("latency", ours=2, peer=10, peer_name="Peer", unit="ms", better="lower") == 5
        run.peer_missing("Other", "not installable here")
    out = capsys.readouterr().out
    assert "RATIO x: latency: protege 2 vs Peer 10 ms = 5.00x (lower is better)" in out
    assert "PEER MISSING x: Other: not installable here" in out
    saved = json.loads((tmp_path / "x.json").read_text())
    assert [c["ratio"] for c in saved["comparisons"]] == [3, 5] and saved["quick"] and saved["load_after"]
    assert saved["command"] == "python bench/x.py --quick" and saved["machine"]["cores"]


def test_quick_replaces_defaults_but_not_what_was_given(monkeypatch):
    def parsed(*argv: str) -> argparse.Namespace:
        parser = argparse.ArgumentParser()
        parser.add_argument("--steps", type=int, default=10)
        parser.add_argument("--batch", type=int, default=4)
        monkeypatch.setattr(sys, "argv", ["bench/x.py", *argv])
        return record.parse(parser, quick={"steps": 2, "batch": 1})

    assert (parsed().steps, parsed().batch) == (10, 4)
    assert (parsed("--quick").steps, parsed("--quick", "--batch", "3").batch) == (2, 3)


@pytest.mark.parametrize(
    ("body", "failure"),
    [
        (RECORDING_BENCH, None),
        (RECORDING_BENCH.replace("RATIO", "ratio"), "printed no RATIO line and no PEER MISSING line"),
        (RECORDING_BENCH + "sys.exit(3)\n", "exit code 3"),
        ("import json, sys\nprint('RATIO {name}: x')\n", "wrote no record (--json)"),
        ("import time\ntime.sleep(60)\n", "ran past its 3 s limit"),
    ],
    ids=["ok", "no-ratio-line", "non-zero-exit", "no-record", "hangs"],
)
def test_runner_fails_a_broken_bench(tmp_path, body, failure):
    script = tmp_path / "fake_bench.py"
    script.write_text(body.format(name="fake_bench"))
    result = runner.run_one(script, quick=True, logs=tmp_path, timeout=3)
    assert result.get("failed") == failure
    if failure is None:
        assert result["bench"] == "fake_bench" and result["wall_s"] < 3


@pytest.mark.slow
def test_quick_bench_run_prints_every_ratio_line(tmp_path):
    """The whole quick run, as `make bench QUICK=1` does it (under 3 minutes on 2 cores)."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for name in runner.BENCHES:
        assert any(x.startswith(f"[{name}] RATIO {name}: ") for x in lines), f"{name} printed no RATIO line"
        assert not any(x.startswith(f"[{name}] PEER MISSING") for x in lines), f"{name}'s peer is not installed"
    report = json.loads((tmp_path / "report.json").read_text())
    assert [b["bench"] for b in report["benches"]] == list(runner.BENCHES)
    assert all(b["comparisons"] and b["load_after"] for b in report["benches"])
    text = (tmp_path / "report.md").read_text()
    assert all(f"## {name}" in text for name in runner.BENCHES) and report["machine"]["cpu"] in text
