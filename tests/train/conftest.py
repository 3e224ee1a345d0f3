"""Tiny in-process students: a byte-level BPE tokenizer with a ChatML template and a random Llama.

They run the real training code path in seconds, so loss, KD and resume are tested for real.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "The Riverbend bike shop opens at nine and closes at six.",
    "A tune-up costs 79 dollars and a flat tyre repair costs 15 dollars.",
    "What time does the shop open? When does it close? How much is a repair?",
    "system user assistant You are a helpful assistant for a bike shop.",
] * 4


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token="<|im_start|>"
    )
    fast.chat_template = CHATML
    return fast


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="session")
def tiny_student(tmp_path_factory, tiny_tokenizer) -> Path:
    """A saved random Llama (hidden 32, 2 layers) usable as `hf:<dir>`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tiny_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, initializer_range=0.3,
        pad_token_id=tiny_tokenizer.pad_token_id, eos_token_id=tiny_tokenizer.eos_token_id,
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("tiny-student")
    LlamaForCausalLM(config).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


QA = [
    ("When does the shop open?", "It opens at nine."),
    ("When does the shop close?", "It closes at six."),
    ("How much is a tune-up?", "A tune-up costs 79 dollars."),
    ("How much is a flat tyre repair?", "A flat tyre repair costs 15 dollars."),
]


def qa_rows(n: int = 8) -> list[dict]:
    rows = []
    for i in range(n):
        q, a = QA[i % len(QA)]
        messages = [
            {"role": "system", "content": "You are a helpful assistant for a bike shop."},
            {"role": "user", "content": q},
            {"role": "assistant", "content": a},
        ]
        rows.append({"id": f"q-{i}", "messages": messages, "teacher": {"ref": "test", "logprobs": None}})
    return rows


def make_project(root: Path, student: str, rows: list[dict] | None = None, **train) -> Path:
    """A project folder with protege.yaml (student + train settings) and artifacts/data/train.jsonl."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "docs").mkdir(exist_ok=True)
    config = {"name": "t", "student": student, "train": {"checkpoint_every": 2, **train}}
    (root / "protege.yaml").write_text(yaml.safe_dump(config))
    data = root / "artifacts" / "data"
    data.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r) for r in (qa_rows() if rows is None else rows)]
    (data / "train.jsonl").write_text("\n".join(lines) + "\n")
    return root


TEACHER_ROWS = Path(__file__).parent / "data" / "teacher_rows.jsonl"


def teacher_rows() -> list[dict]:
    """Real teacher output: the embedded 1.5B's answers with its top-5 logprobs (record_teacher_rows.py)."""
    return [json.loads(line) for line in TEACHER_ROWS.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory) -> Path:
    """A random model with the 0.5B student's architecture (qwen2) and its real tokenizer, shrunk
    to hidden 64 and 2 layers, usable as `hf:<dir>`: KD runs over the real shared vocabulary."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from protege.models.embedded import REGISTRY

    model = REGISTRY["qwen2.5-coder-0.5b-instruct"]
    if model.missing_packages():
        pytest.fail(f"embedded model {model.name} missing packages {model.missing_packages()}: run make setup")
    path = model.path()
    config = AutoConfig.from_pretrained(path.parent, gguf_file=path.name)
    assert config.model_type == "qwen2" and config.vocab_size == 151_936
    config.update({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                   "num_key_value_heads": 2, "max_window_layers": 2, "layer_types": ["full_attention"] * 2})  # fmt: skip
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-qwen")
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name).save_pretrained(folder)
    return folder
