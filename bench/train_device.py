"""protege train's loop on whatever device this machine has: tokens/s and peak memory, per precision.

The student is the embedded Qwen2.5-Coder-0.5B by default (any embedded:/gguf:/hf: student with
--student), or a local Hugging Face folder with --student-dir. `--random-init` builds that
folder's architecture with random weights, for a machine the weights cannot reach (the lent GPU
box takes 64 MiB of files): throughput and memory depend on the shapes, not on the values; the
loss then says nothing. The rows are real synth output (RAFT format, the demo's shape).

    .venv/bin/python bench/train_device.py [--student REF | --student-dir DIR [--random-init]]
        [--precision auto|bf16|fp32] [--method lora|full] [--batch 4] [--seq 768] [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROWS = Path(__file__).resolve().parent.parent / "tests" / "train" / "data" / "riverbend_raft.jsonl"
SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def load(student: str, student_dir: str | None, random_init: bool, dtype: object) -> tuple:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from protege.train.student import load_student

    if student_dir is None:
        loaded = load_student(student, dtype=dtype)
        return loaded.model, loaded.tokenizer
    tokenizer = AutoTokenizer.from_pretrained(student_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if random_init:
        torch.manual_seed(0)
        return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(student_dir), dtype=dtype), tokenizer
    return AutoModelForCausalLM.from_pretrained(student_dir, dtype=dtype), tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="embedded:qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--student-dir", default=None)
    parser.add_argument("--random-init", action="store_true")
    parser.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")
    parser.add_argument("--method", choices=["lora", "full"], default="lora")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=768)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rows", type=Path, default=ROWS)
    args = parser.parse_args()

    import torch

    from protege.config import TrainConfig
    from protege.train.data import read_rows
    from protege.train.loop import train
    from protege.train.precision import plan
    from protege.train.stage import build_model, encode_dataset

    cuda = torch.cuda.is_available()
    if not cuda:
        torch.set_num_threads(os.cpu_count() or 1)
    device = torch.cuda.get_device_name(0) if cuda else f"CPU, {torch.get_num_threads()} threads"
    chosen = plan(args.precision, args.method, "cuda" if cuda else "cpu")
    model, tokenizer = load(args.student, args.student_dir, args.random_init, chosen.base_dtype)
    config = TrainConfig(method=args.method, batch_size=args.batch, max_seq_len=args.seq, learning_rate=1e-3,
                         warmup_ratio=0.0, max_steps=args.steps, checkpoint_every=10_000, lora_targets=SEVEN)  # fmt: skip
    examples, _ = encode_dataset(read_rows(args.rows), tokenizer, args.seq)
    model = build_model(SimpleNamespace(model=model), config)  # build_model reads student.model
    if cuda:
        model = model.to("cuda")
        torch.cuda.reset_peak_memory_stats()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    common = dict(pad_id=tokenizer.pad_token_id, progress=False, autocast_bf16=chosen.autocast_bf16)
    # Two warm-up steps (kernel selection, allocator) are not timed.
    with tempfile.TemporaryDirectory() as tmp:
        train(model, examples, config, steps=2, checkpoint_dir=Path(tmp), **common)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = train(model, examples, config, steps=args.steps, checkpoint_dir=Path(tmp), **common)
    wall = time.perf_counter() - t0
    if cuda:
        peak, peak_is = torch.cuda.max_memory_allocated() / 2**20, "GPU allocated"
    else:
        peak, peak_is = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"
    out = {
        "device": device,
        "student": args.student_dir or args.student,
        "precision": chosen.precision + (", frozen base in bf16" if chosen.base_dtype == torch.bfloat16 else ""),
        "method": args.method,
        "trainable_params": trainable,
        "batch": args.batch,
        "max_seq_len": args.seq,
        "mean_row_tokens": round(sum(len(e) for e in examples) / len(examples), 1),
        "steps": args.steps,
        "tokens_per_s": round(result.tokens / result.seconds, 1),
        "s_per_step": round(result.seconds / args.steps, 4),
        "wall_s": round(wall, 2),
        "peak_mem_mib": round(peak, 1),
        "peak_mem_is": peak_is,
        "first_loss": round(result.history[0]["loss"], 3),
        "last_loss": round(result.history[-1]["loss"], 3),
        "weights": "random (shapes only)" if args.random_init else "pretrained",
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
