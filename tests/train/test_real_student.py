"""The real embedded students (SmolLM2-135M, Qwen2.5-0.5B): trained a few steps, served by llama.cpp with adapter.gguf."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from conftest import make_project, teacher_rows

from protege.config import ModelConfig
from protege.models.endpoint import open_client
from protege.project import Project
from protege.train import run

ROWS = Path(__file__).parent / "data" / "bikeshop.jsonl"


@pytest.mark.slow
def test_trained_adapter_changes_what_llama_cpp_answers(student_model, tmp_path):
    rows = [json.loads(line) for line in ROWS.read_text().splitlines()][:8]
    root = make_project(tmp_path, student_model.ref, rows, max_steps=3, batch_size=4, learning_rate=2e-3, max_seq_len=128)
    run_dir = run(Project.load(root))
    info = json.loads((run_dir / "run.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert Path(info["base_gguf"]).is_file()
    assert (run_dir / "Modelfile").read_text() == f"FROM {info['base_gguf']}\nADAPTER ./adapter.gguf\n"
    agreement = metrics["export_agreement"]
    # Quantized base vs float PyTorch: most greedy tokens must agree, and the adapter must matter.
    assert agreement["agreement"] >= 0.85, agreement
    assert agreement["adapter_changed"] > 0.02, agreement

    question = rows[0]["messages"][:2]

    async def answer(lora: Path | None) -> str:
        client = open_client(ModelConfig(ref=student_model.ref, n_ctx=512), lora=lora)
        return (await client.complete(question, max_tokens=16, temperature=0)).text

    before, after = asyncio.run(answer(None)), asyncio.run(answer(Path(info["adapter_gguf"])))
    assert before != after


@pytest.mark.slow
def test_an_export_check_that_cannot_run_is_a_warning_not_a_lost_run(student_model, tmp_path, monkeypatch, capsys):
    """On a busy machine llama-server can miss the check's deadline; the trained adapter stays."""
    rows = [json.loads(line) for line in ROWS.read_text().splitlines()][:4]
    root = make_project(tmp_path, student_model.ref, rows, max_steps=1, batch_size=4, max_seq_len=128)
    broken = tmp_path / "llama-server"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setenv("PROTEGE_LLAMA_SERVER", str(broken))  # a server that dies at start
    run_dir = run(Project.load(root))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert "exited at start" in metrics["export_agreement"]["error"]
    assert (run_dir / "adapter.gguf").stat().st_size > 0 and (run_dir / "run.json").is_file()
    assert "adapter.gguf not checked against PyTorch" in capsys.readouterr().err


@pytest.mark.slow
def test_0_5b_student_learns_from_teacher_logprobs_and_exports_for_llama_cpp(tmp_path):
    """The default student (qwen2): token KD on the real teacher's top-5, then adapter.gguf checked
    against PyTorch by llama.cpp (qwen2 needs no q/k reordering; its q/k/v biases stay in the base)."""
    import gguf

    ref = "embedded:qwen2.5-coder-0.5b-instruct"
    seven = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    rows = teacher_rows()[:8]
    root = make_project(tmp_path, ref, rows, max_steps=3, batch_size=4, learning_rate=2e-3, max_seq_len=128,
                        lora_targets=seven)  # fmt: skip
    run_dir = run(Project.load(root))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["distillation"] == "token-kd" and metrics["precision"] in ("bf16", "fp32")
    assert metrics["kd_tokens"] == sum(len(r["teacher"]["logprobs"]) for r in rows)
    assert all("kd" in point for point in metrics["loss_curve"])
    reader = gguf.GGUFReader(str(run_dir / "adapter.gguf"))
    names = {t.name for t in reader.tensors}
    assert bytes(reader.fields["general.architecture"].parts[-1]).decode() == "qwen2"
    assert {f"blk.23.{t}.weight.lora_{ab}" for t in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
            for ab in "ab"} <= names and not any("bias" in n for n in names)  # fmt: skip
    agreement = metrics["export_agreement"]
    assert agreement["agreement"] >= 0.85, agreement
    assert agreement["adapter_changed"] > 0.02, agreement
