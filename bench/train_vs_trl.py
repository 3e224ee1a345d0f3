"""protege train vs TRL's SFTTrainer: same student, rows, LoRA config, batch and steps, side by side.

Each trainer runs in its own subprocess (so peak RSS is its own) on the embedded SmolLM2-135M
and the hand-written bike-shop rows. Both count real (non-padding) tokens; both final models
are scored with the same loss on the assistant tokens of all rows.

    .venv/bin/python bench/train_vs_trl.py [--steps 10] [--batch 4] [--quick] [--json PATH]
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

ROWS = Path(__file__).resolve().parent.parent / "tests" / "train" / "data" / "bikeshop.jsonl"
STUDENT = "embedded:smollm2-135m-instruct"
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
LR, SEQ = 1e-3, 256


def final_loss(model, tokenizer, rows) -> float:
    """Mean cross-entropy on the assistant tokens of every row (protege's encoding, for both)."""
    import torch

    from protege.train.data import EncodeStats, encode_row
    from protege.train.loss import PositionLoss, collate

    examples = [encode_row(r, tokenizer, SEQ, None, EncodeStats()) for r in rows]
    scorer = PositionLoss(model, kd_weight=0.0, kd_temperature=1.0).eval()
    with torch.no_grad():
        losses = [scorer(collate([e], tokenizer.pad_token_id))[1].item() * sum(e.labels) for e in examples]
    return sum(losses) / sum(sum(e.labels) for e in examples)


def run_protege(rows, steps: int, batch: int) -> dict:
    from protege.train.stage import build_model, encode_dataset
    from protege.config import TrainConfig
    from protege.train.loop import train
    from protege.train.student import load_student

    config = TrainConfig(
        lora_r=LORA["r"], lora_alpha=LORA["lora_alpha"], lora_targets=LORA["target_modules"],
        batch_size=batch, max_seq_len=SEQ, learning_rate=LR, warmup_ratio=0.0, max_steps=steps,
    )  # fmt: skip
    student = load_student(STUDENT)
    examples, _ = encode_dataset(rows, student.tokenizer, SEQ)
    model = build_model(student, config)
    with tempfile.TemporaryDirectory() as tmp:
        result = train(model, examples, config, pad_id=student.tokenizer.pad_token_id, steps=steps,
                       checkpoint_dir=Path(tmp), progress=False)  # fmt: skip
    return {"tokens": result.tokens, "seconds": result.seconds, "final_loss": final_loss(model, student.tokenizer, rows)}


def run_trl(rows, steps: int, batch: int) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from protege.train.student import load_student

    folder = load_student(STUDENT).source_dir  # the same dequantized weights protege trains
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    data = Dataset.from_list([{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in rows])
    with tempfile.TemporaryDirectory() as tmp:
        args = SFTConfig(
            output_dir=tmp, max_steps=steps, per_device_train_batch_size=batch, learning_rate=LR,
            lr_scheduler_type="linear", warmup_steps=0, logging_steps=1, save_strategy="no", report_to=[],
            max_length=SEQ, completion_only_loss=True, use_cpu=True, seed=0, dataloader_num_workers=0,
            disable_tqdm=True,
        )  # fmt: skip
        trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                             peft_config=LoraConfig(task_type="CAUSAL_LM", **LORA))  # fmt: skip
        # Real tokens seen: every batch the sampler drew, without padding.
        lengths = [len(x) for x in trainer.train_dataset["input_ids"]]
        out = trainer.train()
    # TRL's sampler order is random: the expected count (exact when steps cover whole epochs).
    seen = round(sum(lengths) / len(lengths) * batch * steps)
    return {"tokens": seen, "seconds": out.metrics["train_runtime"], "final_loss": final_loss(trainer.model, tokenizer, rows)}


def child(which: str, steps: int, batch: int) -> None:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    rows = [json.loads(line) for line in ROWS.read_text().splitlines()]
    figures = (run_protege if which == "protege" else run_trl)(rows, steps, batch)
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--child", choices=["protege", "trl"])
    args = record.parse(parser, quick={"steps": 2, "batch": 2})
    if args.child:
        child(args.child, args.steps, args.batch)
        return
    with record.BenchRun("train_vs_trl", args) as run:
        results = {}
        for which in ("trl", "protege"):
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, __file__, "--child", which, "--steps", str(args.steps),
                                   "--batch", str(args.batch)], capture_output=True, text=True)  # fmt: skip
            line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
            if done.returncode or not line:
                sys.exit(f"{which} failed:\n{done.stderr[-3000:]}")
            results[which] = json.loads(line[0][7:])
            results[which]["wall_s"] = time.perf_counter() - t0
        print(f"{'':10} {'tokens/s':>10} {'peak RSS MB':>12} {'final loss':>11} {'train s':>8}")
        for which, r in results.items():
            print(f"{which:10} {r['tokens'] / r['seconds']:10.1f} {r['peak_rss_mb']:12.0f} {r['final_loss']:11.4f} {r['seconds']:8.1f}")
        ours, trl = results["protege"], results["trl"]
        peer = f"TRL {version('trl')} SFTTrainer"
        run.compare("training tokens/s", ours=ours["tokens"] / ours["seconds"], peer=trl["tokens"] / trl["seconds"],
                    peer_name=peer, unit="tok/s", better="higher")  # fmt: skip
        run.compare("peak RSS", ours=ours["peak_rss_mb"], peer=trl["peak_rss_mb"], peer_name=peer, unit="MB", better="lower")
        run.compare("final loss on the rows", ours=ours["final_loss"], peer=trl["final_loss"], peer_name=peer, unit="",
                    better="lower")  # fmt: skip
        run.note(f"{STUDENT}, LoRA r={LORA['r']} on q/k/v/o, {args.steps} steps of batch {args.batch}, lr {LR}, "
                 f"{SEQ}-token cap, the {len(ROWS.read_text().splitlines())} bike-shop rows; fp32 on CPU, "
                 f"{os.cpu_count()} threads; each trainer in its own process (peak RSS is its own).")  # fmt: skip


if __name__ == "__main__":
    main()
