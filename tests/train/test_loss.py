"""The loss on a tiny random Llama: it learns a toy task, and KD pulls it toward the teacher's top-k."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import qa_rows
from test_data import teacher_logprobs

from protege.config import TrainConfig
from protege.train.data import EncodeStats, VocabMap, encode_row
from protege.train.loop import train
from protege.train.loss import collate, topk_kl
from protege.train.stage import build_model
from protege.train.student import load_student


def train_tiny(student_dir, rows, tmp_path, **overrides):
    config = TrainConfig(**{"batch_size": 4, "learning_rate": 1e-2, "warmup_ratio": 0.0, **overrides})
    student = load_student(f"hf:{student_dir}")
    vocab = VocabMap(student.tokenizer)
    examples = [encode_row(r, student.tokenizer, 256, vocab, EncodeStats()) for r in rows]
    model = build_model(student, config)
    result = train(model, examples, config, pad_id=student.tokenizer.pad_token_id, steps=config.max_steps,
                   checkpoint_dir=tmp_path / "ckpt", progress=False)  # fmt: skip
    return model, examples, result


@pytest.mark.parametrize("method", ["full", "lora"])
def test_loss_falls_on_a_learnable_task(tiny_student, tmp_path, method):
    _, _, result = train_tiny(tiny_student, qa_rows(8), tmp_path, method=method, max_steps=40, lora_r=8)
    first, last = result.history[0]["loss"], result.history[-1]["loss"]
    assert last < (0.3 if method == "full" else 0.8) * first, (first, last)


def test_topk_kl_is_zero_only_when_the_student_matches():
    teacher = torch.log(torch.tensor([[0.6, 0.3]]))
    ids = torch.tensor([[0, 1]])
    matching = torch.log(torch.tensor([[0.6, 0.3, 0.05, 0.05]]))
    assert topk_kl(matching, ids, teacher, 1.0).item() == pytest.approx(0.0, abs=1e-5)
    assert topk_kl(torch.zeros(1, 4), ids, teacher, 1.0).item() > 0.1


def _alt_probability(model, examples, alt_id):
    """The student's mean probability for the teacher's second choice at the KD positions."""
    model.eval()
    device = next(model.parameters()).device  # train() leaves the model on the GPU when there is one
    probs = []
    with torch.no_grad():
        for e in examples:
            logits = model(input_ids=torch.tensor([e.input_ids], device=device)).logits[0]
            for pos in e.kd:
                probs.append(torch.softmax(logits[pos - 1], -1)[alt_id].item())
    return sum(probs) / len(probs)


def test_kd_pulls_the_student_toward_the_teacher_distribution(tiny_student, tiny_tokenizer, tmp_path):
    rows = qa_rows(8)
    for r in rows:
        r["teacher"]["logprobs"] = teacher_logprobs(tiny_tokenizer, r["messages"][-1]["content"], " shop", p_alt=0.3)
    alt = tiny_tokenizer.convert_tokens_to_ids("Ġshop")
    kd_model, examples, kd_result = train_tiny(tiny_student, rows, tmp_path / "kd", method="full", max_steps=60, kd_weight=1.0)
    ce_model, _, _ = train_tiny(tiny_student, rows, tmp_path / "ce", method="full", max_steps=60, kd_weight=0.0)
    assert "kd" in kd_result.history[-1] and kd_result.history[-1]["kd"] < 0.5 * kd_result.history[0]["kd"]
    p_kd, p_ce = _alt_probability(kd_model, examples, alt), _alt_probability(ce_model, examples, alt)
    # The teacher gives " shop" 0.3 everywhere; cross-entropy alone drives it toward 0.
    assert 0.15 < p_kd < 0.45, p_kd
    assert p_ce < 0.05, p_ce
    assert not math.isnan(kd_result.history[-1]["loss"])


def test_collate_predicts_labels_from_the_previous_position(tiny_tokenizer):
    example = encode_row(qa_rows(1)[0], tiny_tokenizer, 256, None, EncodeStats())
    batch = collate([example, example], pad_id=0)
    length = batch.input_ids.shape[1]
    labelled = [t for t in range(len(example)) if example.labels[t]]
    assert batch.positions[: len(labelled)].tolist() == [t - 1 for t in labelled]
    assert batch.positions[len(labelled) :].tolist() == [length + t - 1 for t in labelled]
    assert batch.targets[: len(labelled)].tolist() == [example.input_ids[t] for t in labelled]
