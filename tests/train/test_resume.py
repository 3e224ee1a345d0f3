"""Exact resume: a run stopped mid-way (or killed) and resumed ends with the adapter of one never stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import torch
from conftest import make_project
from safetensors.torch import load_file

from protege.project import Project
from protege.train import latest_run, run


def adapter_weights(run_dir):
    return load_file(run_dir / "adapter" / "adapter_model.safetensors")


def assert_same(a, b):
    assert a.keys() == b.keys() and a
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_stopped_and_resumed_run_matches_an_uninterrupted_one(tiny_student, tmp_path):
    # Dropout on: the RNG state must be restored too, not just weights and optimizer.
    settings = dict(max_steps=7, batch_size=3, lora_dropout=0.1, checkpoint_every=100, learning_rate=1e-2)
    straight = run(Project.load(make_project(tmp_path / "a", f"hf:{tiny_student}", **settings)))
    project = Project.load(make_project(tmp_path / "b", f"hf:{tiny_student}", **settings))
    stopped = run(project, run_name="r", stop_at=3)
    assert not (stopped / "run.json").exists() and latest_run(project) is None
    resumed = run(project, resume=True)
    assert resumed == stopped and latest_run(project) == resumed
    assert_same(adapter_weights(straight), adapter_weights(resumed))
    import json

    metrics = json.loads((resumed / "metrics.json").read_text())
    assert metrics["resumed_from"] == 3 and len(metrics["loss_curve"]) == 7


def test_killed_cli_run_resumes_to_the_same_adapter(tiny_student, tmp_path):
    settings = dict(max_steps=40, batch_size=2, checkpoint_every=1, learning_rate=1e-3)
    straight = run(Project.load(make_project(tmp_path / "a", f"hf:{tiny_student}", **settings)))
    root = make_project(tmp_path / "b", f"hf:{tiny_student}", **settings)
    cli = [sys.executable, "-m", "protege.cli", "train", str(root), "--run", "k"]
    state = root / "artifacts" / "models" / "k" / "checkpoints" / "state.pt"
    proc = subprocess.Popen(cli, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run_dir = root / "artifacts" / "models" / "k"
    assert not (run_dir / "run.json").exists(), "the run finished before it could be killed"
    done = subprocess.run(cli + ["--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    import json

    assert json.loads((run_dir / "metrics.json").read_text())["resumed_from"] > 0
    assert "Next:" in done.stdout
    assert_same(adapter_weights(straight), adapter_weights(run_dir))
