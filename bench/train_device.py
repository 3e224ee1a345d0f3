"""protege train's loop on whatever device this machine has (a GPU in bf16 when there is one).

The student is SmolLM2-135M: the embedded one by default, or any local Hugging Face folder.
`--random-init` builds the same architecture from the folder's config.json with random
weights, for a machine the weights cannot reach (the lent GPU box takes 64 MiB of files):
throughput and memory depend on the shapes, not on the values; the loss then says nothing.

    .venv/bin/python bench/train_device.py [--student-dir DIR --random-init] [--method lora|full]
        [--batch 8] [--seq 512] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROWS = Path(__file__).resolve().parent.parent / "tests" / "train" / "data" / "bikeshop.jsonl"


def load(student_dir: str | None, random_init: bool):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from protege.train.student import load_student

    if student_dir is None:
        student = load_student("embedded:smollm2-135m-instruct")
        return student.model, student.tokenizer
    tokenizer = AutoTokenizer.from_pretrained(student_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if random_init:
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(student_dir), dtype=torch.float32)
    else:
        model = AutoModelForCausalLM.from_pretrained(student_dir, dtype=torch.float32)
    return model, tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student-dir", default=None)
    parser.add_argument("--random-init", action="store_true")
    parser.add_argument("--method", choices=["lora", "full"], default="lora")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=8, help="copies of the 20 bike-shop rows")
    args = parser.parse_args()

    import psutil
    import torch

    from protege.config import TrainConfig
    from protege.train.data import read_rows
    from protege.train.loop import train
    from protege.train.stage import build_model, encode_dataset

    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else f"CPU, {torch.get_num_threads()} threads"
    model, tokenizer = load(args.student_dir, args.random_init)
    config = TrainConfig(method=args.method, batch_size=args.batch, max_seq_len=args.seq, learning_rate=1e-3,
                         warmup_ratio=0.0, max_steps=args.steps, checkpoint_every=10_000)  # fmt: skip
    rows = read_rows(ROWS) * args.repeat
    examples, _ = encode_dataset(rows, tokenizer, args.seq)
    model = build_model(SimpleNamespace(model=model), config)  # build_model reads student.model
    if cuda:
        model = model.to("cuda")
        torch.cuda.reset_peak_memory_stats()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    # Two warm-up steps (kernel selection, allocator) are not timed.
    with tempfile.TemporaryDirectory() as tmp:
        train(model, examples, config, pad_id=tokenizer.pad_token_id, steps=2, checkpoint_dir=Path(tmp), progress=False)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = train(model, examples, config, pad_id=tokenizer.pad_token_id, steps=args.steps,
                       checkpoint_dir=Path(tmp), progress=False)  # fmt: skip
    wall = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else psutil.Process().memory_info().rss / 2**20
    out = {
        "device": device,
        "precision": "bf16 autocast" if cuda else "fp32",
        "method": args.method,
        "trainable_params": trainable,
        "batch": args.batch,
        "steps": args.steps,
        "tokens_per_s": round(result.tokens / result.seconds, 1),
        "s_per_step": round(result.seconds / args.steps, 4),
        "wall_s": round(wall, 2),
        "peak_mem_mib": round(peak, 1),
        "peak_mem_is": "GPU allocated" if cuda else "process RSS",
        "first_loss": round(result.history[0]["loss"], 3),
        "last_loss": round(result.history[-1]["loss"], 3),
        "weights": "random (shapes only)" if args.random_init else "pretrained",
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
