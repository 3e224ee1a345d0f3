"""`protege run --quick` on the bundled bike shop: every stage with the real embedded models.

This is the CI run of the whole loop (a few minutes on 2 cores). It also checks the bookkeeping
a user relies on: a second run skips everything, and a config change re-runs only what follows.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def protege(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200")  # the summary table unwrapped
    return subprocess.run([sys.executable, "-m", "protege.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=900, env=env)


def test_quick_loop_end_to_end(tmp_path):
    project = tmp_path / "shop"
    shutil.copytree(ROOT / "examples" / "riverbend-bikes", project, ignore=shutil.ignore_patterns("artifacts"))
    first = protege("run", str(project), "--quick", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    out = first.stdout
    for figure in ("quality, trained", "quality, teacher", "fact recall, trained", "fact recall, teacher",
                   "gap recovered, rubric", "gap recovered, fact recall", "judge vs fact recall", "latency p50, trained",
                   "cost per 1,000 queries, routed", "router (chosen by cross-validated APGR)"):  # fmt: skip
        assert figure in out, out
    assert "Ran: synth" in out and "protege serve" in out

    artifacts = project / "artifacts"
    train_rows = [json.loads(line) for line in (artifacts / "data" / "train.jsonl").read_text().splitlines()]
    eval_rows = [json.loads(line) for line in (artifacts / "data" / "eval.jsonl").read_text().splitlines()]
    assert train_rows and eval_rows
    assert all(r["context"] is not None for r in train_rows)  # the example trains the RAFT format
    assert any(r["key_facts"] for r in eval_rows)  # fact recall has something to measure
    train_chunks = {c for r in train_rows for c in r["source"]["chunks"]}
    assert not train_chunks & {c for r in eval_rows for c in r["source"]["chunks"]}
    run = (artifacts / "models" / "LATEST").read_text().strip()
    assert (artifacts / "models" / run / "adapter.gguf").stat().st_size > 0
    summary = json.loads((artifacts / "reports" / run / "summary.json").read_text())
    assert summary["trained"] and summary["n_questions"] >= 3
    assert summary["fact_recall"]["teacher"]["n"] >= 1 and "gap_recovered_fact_recall" in summary
    assert (artifacts / "reports" / run / "report.html").stat().st_size > 10_000
    router = json.loads((artifacts / "router" / "router.json").read_text())
    assert router["kind"] in ("sw_ranking", "classifier", "cascade", "random")

    again = protege("run", str(project), "--quick", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Skipped: synth, train, eval, route" in again.stdout

    config = yaml.safe_load((project / "protege.yaml").read_text())
    config["route"] = {"margin": 2.0}
    (project / "protege.yaml").write_text(yaml.safe_dump(config))
    third = protege("run", str(project), "--quick", cwd=tmp_path)
    assert third.returncode == 0, third.stderr[-2000:]
    assert "Ran: route" in third.stdout and "Skipped: synth, train, eval." in third.stdout

    # The KD ablation bench on this finished project: two more arms trained beside it, the
    # project's own run untouched, every arm scored on the report's questions.
    latest = (artifacts / "models" / "LATEST").read_text()
    out = tmp_path / "ablation.json"
    ablation = subprocess.run([sys.executable, str(ROOT / "bench" / "kd_ablation.py"), "--project", str(project), "--quick",
                               "--json", str(out)], capture_output=True, text=True, timeout=900)  # fmt: skip
    assert ablation.returncode == 0, ablation.stderr[-3000:]
    figures = json.loads(out.read_text())
    arms = {a["kd_weight"]: a for a in figures["arms"]}
    assert set(arms) == {0.0, 0.5, 1.0} and "SFT only" in ablation.stdout and "KD only" in ablation.stdout
    assert arms[0.5]["fact_recall"] == pytest.approx(summary["fact_recall"]["trained"]["value"])  # the report's run, reused
    adapters = [Path(arms[w]["source"]) / "adapter.gguf" for w in (0.0, 1.0)]
    assert all(a.is_relative_to(artifacts / "ablation") for a in adapters)
    # The quick student (SmolLM2) has another vocabulary than the Qwen teacher: no token KD, so
    # "KD only" trains on cross-entropy alone, says so, and (same rows, steps, seed) gives the
    # same weights as SFT only. The real student's KD arm is checked in the demo's ablation.
    assert {a["distillation"] for a in figures["arms"]} == {"sequence"} and "KD did not run" in ablation.stdout
    assert adapters[0].read_bytes() == adapters[1].read_bytes()
    assert (artifacts / "models" / "LATEST").read_text() == latest
