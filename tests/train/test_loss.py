"""The loss on a tiny random Llama: it learns a toy task, and KD pulls it toward the teacher's top-k."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import qa_rows, teacher_rows
from test_data import teacher_logprobs

from protege.config import TrainConfig
from protege.train.data import EncodeStats, VocabMap, encode_row
from protege.train.loop import train
from protege.train.loss import collate, topk_kl
from protege.train.stage import build_model, encode_dataset
from protege.train.student import load_student


def train_examples(student, examples, tmp_path, **overrides):
    config = TrainConfig(**{"batch_size": 4, "learning_rate": 1e-2, "warmup_ratio": 0.0, **overrides})
    model = build_model(student, config)
    result = train(model, examples, config, pad_id=student.tokenizer.pad_token_id, steps=config.max_steps,
                   checkpoint_dir=tmp_path / "ckpt", progress=False)  # fmt: skip
    return model, result


def train_tiny(student_dir, rows, tmp_path, **overrides):
    student = load_student(f"hf:{student_dir}")
    vocab = VocabMap(student.tokenizer)
    examples = [encode_row(r, student.tokenizer, 256, vocab, EncodeStats()) for r in rows]
    model, result = train_examples(student, examples, tmp_path, **overrides)
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


def _student_top_mass(model, examples):
    """Mean student probability, over KD positions, of the teacher's alternatives (its top-k
    minus the token it chose), next to the teacher's own mean for them."""
    model.eval()
    device = next(model.parameters()).device
    student, teacher = [], []
    with torch.no_grad():
        for e in examples:
            probs = torch.softmax(model(input_ids=torch.tensor([e.input_ids], device=device)).logits[0].float(), -1)
            for pos, target in e.kd.items():
                alternatives = [(i, lp) for i, lp in zip(target.ids, target.logprobs) if i != e.input_ids[pos]]
                student.append(sum(probs[pos - 1, i].item() for i, _ in alternatives))
                teacher.append(sum(math.exp(lp) for _, lp in alternatives))
    return sum(student) / len(student), sum(teacher) / len(teacher)


def test_kd_over_the_real_shared_vocabulary_moves_the_student_to_the_teacher(tiny_qwen, tmp_path):
    """The 0.5B student's architecture and tokenizer, the real 1.5B teacher's top-5 logprobs."""
    rows = teacher_rows()
    student = load_student(f"hf:{tiny_qwen}")
    examples, info = encode_dataset(rows, student.tokenizer, 256)
    # The teacher's GGUF vocabulary was compared with the student's: its tokens are used as they are.
    assert info["distillation"] == "token-kd" and "teacher's own tokens" in info["distillation_reason"]
    answer_tokens = sum(len(r["teacher"]["logprobs"]) for r in rows)
    assert info["kd_tokens"] == info["aligned_tokens"] == answer_tokens and info["kd_mapping_failed"] == 0

    few = examples[:4]  # what a model this small can fit in a few steps
    settings = dict(method="full", max_steps=60)
    kd_model, kd = train_examples(student, few, tmp_path / "kd", kd_weight=1.0, **settings)
    ce_model, _ = train_examples(load_student(f"hf:{tiny_qwen}"), few, tmp_path / "ce", kd_weight=0.0, **settings)
    assert kd.history[-1]["kd"] < 0.1 * kd.history[0]["kd"], (kd.history[0], kd.history[-1])
    kd_mass, teacher_mass = _student_top_mass(kd_model, few)
    ce_mass, _ = _student_top_mass(ce_model, few)
    # Cross-entropy alone learns only the chosen tokens; KD also gives the teacher's alternatives
    # their share of probability.
    assert 0.5 * teacher_mass < kd_mass < 1.5 * teacher_mass, (kd_mass, teacher_mass)
    assert ce_mass < 0.3 * kd_mass, (ce_mass, kd_mass)


def test_collate_predicts_labels_from_the_previous_position(tiny_tokenizer):
    example = encode_row(qa_rows(1)[0], tiny_tokenizer, 256, None, EncodeStats())
    batch = collate([example, example], pad_id=0)
    length = batch.input_ids.shape[1]
    labelled = [t for t in range(len(example)) if example.labels[t]]
    assert batch.positions[: len(labelled)].tolist() == [t - 1 for t in labelled]
    assert batch.positions[len(labelled) :].tolist() == [length + t - 1 for t in labelled]
    assert batch.targets[: len(labelled)].tolist() == [example.input_ids[t] for t in labelled]
