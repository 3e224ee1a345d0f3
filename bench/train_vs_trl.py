"""protege train vs TRL's SFTTrainer: same student, rows, LoRA config, batch and steps, side by side.

Each trainer runs in its own subprocess (so peak RSS is its own) on the default student (the
embedded Qwen2.5-Coder-0.5B) and real synth rows (RAFT: excerpts + question + the teacher's
answer; the demo's shape). Each runs at its best setting on this CPU: protege picks its own
precision (bf16 where the CPU runs it fast: frozen base in bf16 under autocast, fp32 adapter);
TRL gets `bf16=True` (autocast over fp32 weights, its documented way) unless --trl-precision says
otherwise. Both count real (non-padding) tokens; both final models are scored with the same loss
on the assistant tokens of all rows.

    .venv/bin/python bench/train_vs_trl.py [--steps 8] [--batch 4] [--protege-precision auto|bf16|fp32]
        [--trl-precision bf16|bf16-base|fp32] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import record

DATA = Path(__file__).resolve().parent.parent / "tests" / "train" / "data"
STUDENT = "embedded:qwen2.5-coder-0.5b-instruct"
SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": SEVEN}
LR = 1e-3
# --trl-precision: what TRL's model is loaded in, and its SFTConfig(bf16=...).
TRL_SETTINGS = {"bf16": ("float32", True), "bf16-base": ("bfloat16", True), "fp32": ("float32", False)}


def final_loss(model, tokenizer, rows, seq: int) -> float:
    """Mean cross-entropy on the assistant tokens of every row (protege's encoding, for both)."""
    import torch

    from protege.train.data import EncodeStats, encode_row
    from protege.train.loss import PositionLoss, collate

    examples = [e for r in rows if (e := encode_row(r, tokenizer, seq, None, EncodeStats())) is not None]
    scorer = PositionLoss(model, kd_weight=0.0, kd_temperature=1.0).eval()
    with torch.no_grad():
        losses = [scorer(collate([e], tokenizer.pad_token_id))[1].item() * sum(e.labels) for e in examples]
    return sum(losses) / sum(sum(e.labels) for e in examples)


def run_protege(rows, args: argparse.Namespace) -> dict:
    from protege.config import TrainConfig
    from protege.train.loop import train
    from protege.train.precision import plan
    from protege.train.stage import build_model, encode_dataset
    from protege.train.student import load_student

    config = TrainConfig(
        lora_r=LORA["r"], lora_alpha=LORA["lora_alpha"], lora_targets=LORA["target_modules"], batch_size=args.batch,
        max_seq_len=args.seq, learning_rate=LR, warmup_ratio=0.0, max_steps=args.steps, precision=args.protege_precision,
    )  # fmt: skip
    chosen = plan(config.precision, config.method)
    student = load_student(args.student, dtype=chosen.base_dtype)
    examples, _ = encode_dataset(rows, student.tokenizer, args.seq)
    model = build_model(student, config)
    with tempfile.TemporaryDirectory() as tmp:
        result = train(model, examples, config, pad_id=student.tokenizer.pad_token_id, steps=args.steps,
                       checkpoint_dir=Path(tmp), progress=False, autocast_bf16=chosen.autocast_bf16)  # fmt: skip
    loss = final_loss(model, student.tokenizer, rows, args.seq)
    return {"tokens": result.tokens, "seconds": result.seconds, "final_loss": loss, "precision": chosen.precision}


def run_trl(rows, args: argparse.Namespace) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from protege.train.student import load_student

    dtype, bf16 = TRL_SETTINGS[args.trl_precision]
    folder = load_student(args.student).source_dir  # the same dequantized weights protege trains
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype))
    data = Dataset.from_list([{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in rows])
    with tempfile.TemporaryDirectory() as tmp:
        config = SFTConfig(
            output_dir=tmp, max_steps=args.steps, per_device_train_batch_size=args.batch, learning_rate=LR,
            lr_scheduler_type="linear", warmup_steps=0, logging_steps=1, save_strategy="no", report_to=[],
            max_length=args.seq, completion_only_loss=True, use_cpu=True, seed=0, dataloader_num_workers=0,
            disable_tqdm=True, bf16=bf16,
        )  # fmt: skip
        trainer = SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer,
                             peft_config=LoraConfig(task_type="CAUSAL_LM", **LORA))  # fmt: skip
        out = trainer.train()
    # Real tokens seen: TRL's own count of the non-padding tokens in every batch it trained on.
    seen = round(max(float(h.get("num_tokens", 0)) for h in trainer.state.log_history))
    loss = final_loss(trainer.model, tokenizer, rows, args.seq)
    return {"tokens": seen, "seconds": out.metrics["train_runtime"], "final_loss": loss, "precision": args.trl_precision}


def child(which: str, args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    rows = [json.loads(line) for line in (DATA / args.rows).read_text().splitlines()]
    figures = (run_protege if which == "protege" else run_trl)(rows, args)
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default=STUDENT)
    parser.add_argument("--rows", default="riverbend_raft.jsonl", help="a file in tests/train/data")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=768, help="token cap per row (the demo's)")
    parser.add_argument("--protege-precision", choices=["auto", "bf16", "fp32"], default="auto")
    parser.add_argument("--trl-precision", choices=sorted(TRL_SETTINGS), default="bf16")
    parser.add_argument("--child", choices=["protege", "trl"])
    # --quick: the same code paths on the small student and short rows (the hand-written bike-shop questions).
    quick = {"student": "embedded:smollm2-135m-instruct", "steps": 2, "batch": 2, "rows": "bikeshop.jsonl", "seq": 256}
    args = record.parse(parser, quick=quick)
    if args.child:
        child(args.child, args)
        return
    forwarded = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in ("child", "quick", "json")]
    with record.BenchRun("train_vs_trl", args) as run:
        results = {}
        for which in ("trl", "protege"):
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, __file__, "--child", which, *forwarded], capture_output=True, text=True)
            line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
            if done.returncode or not line:
                sys.exit(f"{which} failed:\n{done.stderr[-3000:]}")
            results[which] = json.loads(line[0][7:])
            results[which]["wall_s"] = time.perf_counter() - t0
        print(f"{'':10} {'precision':>10} {'tokens/s':>10} {'peak RSS MB':>12} {'final loss':>11} {'train s':>8}")
        for which, r in results.items():
            print(f"{which:10} {r['precision']:>10} {r['tokens'] / r['seconds']:10.1f} {r['peak_rss_mb']:12.0f} "
                  f"{r['final_loss']:11.4f} {r['seconds']:8.1f}")  # fmt: skip
        ours, trl = results["protege"], results["trl"]
        peer = f"TRL {version('trl')} SFTTrainer"
        run.compare("training tokens/s", ours=ours["tokens"] / ours["seconds"], peer=trl["tokens"] / trl["seconds"],
                    peer_name=peer, unit="tok/s", better="higher")  # fmt: skip
        run.compare("peak RSS", ours=ours["peak_rss_mb"], peer=trl["peak_rss_mb"], peer_name=peer, unit="MB", better="lower")
        run.compare("final loss on the rows", ours=ours["final_loss"], peer=trl["final_loss"], peer_name=peer, unit="",
                    better="lower")  # fmt: skip
        n_rows = len((DATA / args.rows).read_text().splitlines())
        run.note(f"{args.student}, LoRA r={LORA['r']} on all seven projections, {args.steps} steps of batch "
                 f"{args.batch}, lr {LR}, {args.seq}-token cap, {n_rows} rows of {args.rows}; protege in "
                 f"{ours['precision']}, TRL with --trl-precision {trl['precision']}; {os.cpu_count()} threads; "
                 f"each trainer in its own process (peak RSS is its own).")  # fmt: skip


if __name__ == "__main__":
    main()
