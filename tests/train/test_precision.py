"""bf16 where this machine runs it fast, fp32 elsewhere: the choice, and bf16 runs that learn as fp32 does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import make_project, qa_rows

from protege.project import Project
from protege.train import precision, run


def test_the_cpu_is_timed_once_and_the_answer_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("PROTEGE_CACHE", str(tmp_path))
    timings = [(0.010, 0.002)]  # fp32 s, bf16 s: bf16 five times faster
    calls = []
    monkeypatch.setattr(precision, "time_matmuls", lambda: calls.append(1) or timings[0])
    assert precision.cpu_bf16_fast() and precision.cpu_bf16_fast()
    assert len(calls) == 1
    record = json.loads((tmp_path / "cpu-bf16.json").read_text())
    assert record["bf16"] and record["bf16_gflops"] == pytest.approx(5 * record["fp32_gflops"], rel=1e-3)
    (tmp_path / "cpu-bf16.json").unlink()
    timings[0] = (0.010, 0.030)  # emulated bf16: slower than fp32
    assert not precision.cpu_bf16_fast()
    assert precision.resolve("auto") == "fp32" and precision.resolve("bf16") == "bf16"


def test_a_cpu_with_bf16_instructions_is_found_fast():
    flags = next((line.split() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), [])
    fp32_s, bf16_s = precision.time_matmuls()
    if {"amx_bf16", "avx512_bf16"} & set(flags):
        assert fp32_s / bf16_s >= precision.BF16_SPEEDUP, (fp32_s, bf16_s)
    lora, full = precision.plan("bf16", "lora"), precision.plan("bf16", "full")
    assert (lora.base_dtype, lora.autocast_bf16) == (torch.bfloat16, True)  # frozen base stored in bf16
    assert (full.base_dtype, full.autocast_bf16) == (torch.float32, True)  # fp32 master weights
    assert precision.plan("fp32", "lora") == precision.Plan("fp32", torch.float32, False)


def _curve(root: Path, student: str, method: str, p: str, seed: int) -> list[float]:
    settings = dict(method=method, max_steps=30, batch_size=4, learning_rate=3e-3, warmup_ratio=0.0, lora_r=8)
    project = make_project(root, student, qa_rows(8), precision=p, seed=seed, **settings)
    metrics = json.loads((run(Project.load(project)) / "metrics.json").read_text())
    assert metrics["precision"] == p
    return [point["loss"] for point in metrics["loss_curve"]]


def _gap(a: list[float], b: list[float]) -> float:
    return sum(abs(x - y) / x for x, y in zip(a, b)) / len(a)


@pytest.mark.parametrize("method", ["lora", "full"])
def test_bf16_loss_curve_matches_fp32_within_seed_noise(tiny_student, tmp_path, method):
    """bf16 moves the loss curve less than changing the seed (batch order, LoRA init) does."""
    student = f"hf:{tiny_student}"
    fp32 = _curve(tmp_path / "fp32", student, method, "fp32", seed=0)
    bf16 = _curve(tmp_path / "bf16", student, method, "bf16", seed=0)
    reseeded = _curve(tmp_path / "seed1", student, method, "fp32", seed=1)
    assert fp32[-1] < 0.5 * fp32[0] and bf16[-1] < 0.5 * bf16[0]  # both learn
    assert _gap(fp32, bf16) < 0.5 * _gap(fp32, reseeded), (_gap(fp32, bf16), _gap(fp32, reseeded))
    assert abs(bf16[-1] - fp32[-1]) < 0.1 * fp32[-1], (fp32[-1], bf16[-1])
