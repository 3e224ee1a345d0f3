"""The train stage end to end on a tiny student: artifacts, GGUF adapter layout, merge, messages."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import make_project

from protege.config import TrainConfig
from protege.errors import ProtegeError
from protege.project import Project
from protege.train import latest_run, run
from protege.train.export import _permute_rows
from protege.train.loop import oom_error


@pytest.fixture(scope="module")
def finished(tiny_student, tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("stage"), f"hf:{tiny_student}", max_steps=4, batch_size=4)
    project = Project.load(root)
    return project, run(project, run_name="first", merge=True)


def test_run_writes_the_documented_artifacts(finished):
    project, run_dir = finished
    for name in ("adapter/adapter_model.safetensors", "adapter.gguf", "merged/config.json", "metrics.json", "run.json"):
        assert (run_dir / name).exists(), name
    assert latest_run(project) == run_dir
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["distillation"] == "sequence" and metrics["steps"] == 4 and len(metrics["loss_curve"]) == 4
    info = json.loads((run_dir / "run.json").read_text())
    assert info["student"].startswith("hf:") and info["base_gguf"] is None and info["train_config"]["max_steps"] == 4


def test_gguf_adapter_has_llama_cpp_names_metadata_and_rotary_order(finished):
    import gguf
    from safetensors.torch import load_file

    _, run_dir = finished
    reader = gguf.GGUFReader(str(run_dir / "adapter.gguf"))
    field = lambda k: reader.fields[k].parts[reader.fields[k].data[0]]  # noqa: E731
    assert bytes(field("general.architecture")).decode() == "llama"
    assert bytes(field("general.type")).decode() == "adapter"
    assert bytes(field("adapter.type")).decode() == "lora"
    assert float(field("adapter.lora.alpha")[0]) == 32.0
    tensors = {t.name: np.array(t.data) for t in reader.tensors}
    assert {f"blk.{i}.{p}.weight.lora_{ab}" for i in (0, 1) for p in ("attn_q", "attn_k", "attn_v", "attn_output") for ab in "ab"} == set(tensors)
    peft = load_file(run_dir / "adapter" / "adapter_model.safetensors")
    prefix = "base_model.model.model.layers.1.self_attn"
    np.testing.assert_array_equal(tensors["blk.1.attn_v.weight.lora_b"], peft[f"{prefix}.v_proj.lora_B.weight"].numpy())
    np.testing.assert_array_equal(tensors["blk.1.attn_q.weight.lora_a"], peft[f"{prefix}.q_proj.lora_A.weight"].numpy())
    # q/k rows are reordered as llama.cpp's converter reorders the base weights (4 heads, 2 kv heads).
    np.testing.assert_array_equal(tensors["blk.1.attn_q.weight.lora_b"], _permute_rows(peft[f"{prefix}.q_proj.lora_B.weight"].numpy(), 4))
    np.testing.assert_array_equal(tensors["blk.1.attn_k.weight.lora_b"], _permute_rows(peft[f"{prefix}.k_proj.lora_B.weight"].numpy(), 2))


def test_merged_model_equals_base_plus_adapter(finished, tiny_student):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    _, run_dir = finished
    ids = torch.tensor([[1, 5, 9, 42, 7]])
    merged = AutoModelForCausalLM.from_pretrained(run_dir / "merged").eval()
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_student), run_dir / "adapter").eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_student).eval()
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, adapted(ids).logits, rtol=1e-4, atol=1e-4)
        assert not torch.allclose(merged(ids).logits, base(ids).logits, atol=1e-4)


def test_finished_run_name_is_not_overwritten(finished):
    project, _ = finished
    with pytest.raises(ProtegeError, match="already finished"):
        run(project, run_name="first")


def test_resume_without_an_unfinished_run_says_so(tiny_student, tmp_path):
    project = Project.load(make_project(tmp_path, f"hf:{tiny_student}"))
    with pytest.raises(ProtegeError, match="no unfinished run of .* to resume"):
        run(project, resume=True)


def test_unknown_lora_target_is_named(tiny_student, tmp_path):
    project = Project.load(make_project(tmp_path, f"hf:{tiny_student}", lora_targets=["qkv_proj"], max_steps=1))
    with pytest.raises(ProtegeError, match=r"\['qkv_proj'\] not found"):
        run(project)


def test_out_of_memory_advice_names_the_knobs():
    message = str(oom_error(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), TrainConfig()))
    for knob in ("train.batch_size", "train.max_seq_len", "train.lora_r"):
        assert knob in message


def test_runs_of_another_student_are_neither_latest_nor_resumed(tiny_student, tmp_path):
    """A --quick run trains the small student in the same artifacts: never mistaken for the project's."""
    import yaml

    root = make_project(tmp_path, f"hf:{tiny_student}", max_steps=2, batch_size=4)
    project = Project.load(root)
    finished_run = run(project, run_name="done")
    stopped = run(project, run_name="stopped", stop_at=1)
    assert latest_run(project) == finished_run
    config = yaml.safe_load((root / "protege.yaml").read_text())
    config["student"] = "embedded:smollm2-135m-instruct"
    (root / "protege.yaml").write_text(yaml.safe_dump(config))
    other = Project.load(root)
    assert latest_run(other) is None
    with pytest.raises(ProtegeError, match="no unfinished run of embedded:smollm2-135m-instruct"):
        run(other, resume=True)
    with pytest.raises(ProtegeError, match=f"checkpoints are for student hf:{tiny_student}"):
        run(other, run_name=stopped.name, resume=True)
