"""The real embedded student (SmolLM2-135M): trained a few steps, served by llama.cpp with adapter.gguf."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from conftest import make_project

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
