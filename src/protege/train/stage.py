"""`protege train`: artifacts/data/train.jsonl -> artifacts/models/<run>/ (see docs/formats.md).

Imports stay light at module level; torch and friends load inside run().
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from protege import __version__
from protege.errors import ProtegeError
from protege.project import Project

VOCAB_MATCH = 0.99  # share of ids with the same token string for two vocabularies to count as one
ALIGN_MATCH = 0.9  # without the teacher's vocabulary: share of its tokens that are exactly student tokens


STARTED_FILE = "started.json"  # written when a run starts: which student its checkpoints are for


def trained_for(run: Path, name: str = "run.json") -> str | None:
    """The student reference recorded in run.json or started.json; None when not recorded."""
    try:
        student = json.loads((run / name).read_text(encoding="utf-8")).get("student")
    except (OSError, ValueError, AttributeError):
        return None
    return student if isinstance(student, str) else None


def latest_run(project: Project) -> Path | None:
    """The newest finished run (named by artifacts/models/LATEST) if it was trained for the
    project's student, else None: an adapter only fits the base it was trained on."""
    name = project.paths.latest_run()
    if name is None:
        return None
    run = project.paths.model_run(name)
    if not (run / "run.json").is_file():
        return None
    return run if trained_for(run) in (None, project.config.student.ref) else None


def unfinished_runs(project: Project) -> list[Path]:
    """Runs with checkpoints and no run.json, for the project's student, oldest first."""
    student = project.config.student.ref
    found = [
        d.parent
        for d in project.paths.models.glob("*/checkpoints")
        if not (d.parent / "run.json").is_file() and trained_for(d.parent, STARTED_FILE) in (None, student)
    ]
    return sorted(found, key=lambda d: (d / "checkpoints").stat().st_mtime)


def _pick_run_dir(project: Project, run_name: str | None, resume: bool) -> Path:
    models = project.paths.models
    if run_name:
        if "/" in run_name or run_name.startswith("."):
            raise ProtegeError(f"--run '{run_name}': a run name is a plain folder name")
        return models / run_name
    if resume:
        unfinished = unfinished_runs(project)
        if not unfinished:
            raise ProtegeError(
                f"{models}: no unfinished run of {project.config.student.ref} to resume",
                hint="start one with `protege train DIR`",
            )
        return unfinished[-1]
    return models / time.strftime("run-%Y%m%d-%H%M%S")


def _teacher_vocab_matches(tokenizer: Any, teacher_ref: str | None) -> bool | None:
    """Compare vocabularies id by id when the teacher is a local GGUF; None when it cannot be read."""
    if not teacher_ref:
        return None
    try:
        import gguf

        from protege.models.endpoint import gguf_path
        from protege.refs import parse_ref

        ref = parse_ref(teacher_ref)
        if not ref.is_local_gguf:
            return None
        field = gguf.GGUFReader(str(gguf_path(ref))).fields["tokenizer.ggml.tokens"]
        teacher = [bytes(field.parts[i]).decode("utf-8", "replace") for i in field.data]
    except (ProtegeError, KeyError, OSError, ValueError):
        return None
    student = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    n = min(len(teacher), len(student))
    same = sum(a == b for a, b in zip(teacher[:n], student[:n]))
    return n > 0 and same / max(len(student), 1) >= VOCAB_MATCH


def encode_dataset(rows: list[dict[str, Any]], tokenizer: Any, max_len: int) -> tuple[list, dict[str, Any]]:
    """Rows -> examples, deciding token-level KD vs sequence-level distillation (and saying why)."""
    from protege.train.data import EncodeStats, VocabMap, encode_row

    with_logprobs = [r for r in rows if (r.get("teacher") or {}).get("logprobs")]
    teacher_refs = {(r.get("teacher") or {}).get("ref") for r in with_logprobs}
    vocab, reason, matches = None, "rows carry no teacher logprobs", []
    if with_logprobs:
        matches = [_teacher_vocab_matches(tokenizer, ref) for ref in teacher_refs]
        if any(m is False for m in matches):
            reason = "the teacher's vocabulary differs from the student's"
        else:
            vocab = VocabMap(tokenizer)
    # Vocabularies compared and equal: the answers are the teacher's own tokens (no alignment).
    checked = bool(matches) and all(m is True for m in matches)
    stats = EncodeStats()
    examples = [
        e for r in rows if (e := encode_row(r, tokenizer, max_len, vocab, stats, teacher_tokens=checked)) is not None
    ]
    if vocab is not None:
        aligned = stats.aligned_tokens / max(stats.teacher_tokens, 1)
        if not checked and aligned < ALIGN_MATCH:
            reason = f"only {aligned:.0%} of the teacher's tokens are student tokens: the vocabularies differ"
            for e in examples:
                e.kd = {}
        elif stats.kd_tokens == 0:
            reason = "no teacher token could be mapped to a student token"
        else:
            reason = "teacher top-k logprobs over the shared vocabulary" + (
                " (vocabularies compared; answers are the teacher's own tokens)"
                if checked
                else f" ({aligned:.0%} of teacher tokens aligned)"
            )
    if not examples:
        raise ProtegeError(f"no row fits in train.max_seq_len={max_len} tokens", hint="raise train.max_seq_len")
    use_kd = any(e.kd for e in examples)
    info = {
        "distillation": "token-kd" if use_kd else "sequence",
        "distillation_reason": reason,
        "rows_with_logprobs": len(with_logprobs),
        **stats.as_dict(),
    }
    if not use_kd:
        info["kd_rows"] = info["kd_tokens"] = 0
    return examples, info


def build_model(student: Any, config: Any) -> Any:
    """LoRA on the configured targets (default), or every weight trainable (method: full)."""
    import torch

    if config.method == "full":
        return student.model
    from peft import LoraConfig, get_peft_model

    names = {n.rsplit(".", 1)[-1] for n, _ in student.model.named_modules()}
    unknown = [t for t in config.lora_targets if t not in names]
    if unknown:
        raise ProtegeError(f"train.lora_targets: {unknown} not found in the student", hint="e.g. q_proj, k_proj, v_proj, o_proj")
    torch.manual_seed(config.seed)  # LoRA's A init is random: same seed, same adapter
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_targets),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(student.model, lora)


def run(
    project: Project,
    run_name: str | None = None,
    resume: bool = False,
    merge: bool = False,
    max_steps: int | None = None,
    *,
    stop_at: int | None = None,
) -> Path:
    """Train the project's student on train.jsonl; returns the run folder (artifacts/models/<run>)."""
    import warnings

    import torch

    # transformers deprecation notices about its own internals say nothing a user can act on.
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")

    from protege.console import err
    from protege.train.data import read_dataset
    from protege.train.loop import oom_error, total_steps, train
    from protege.train.precision import plan
    from protege.train.student import load_student

    config = project.config.train
    rows, _ = read_dataset(project.paths)
    run_dir = _pick_run_dir(project, run_name, resume)
    if (run_dir / "run.json").is_file():
        raise ProtegeError(f"{run_dir}: run already finished", hint="choose another --run name")
    started_for = trained_for(run_dir, STARTED_FILE)
    if resume and started_for not in (None, project.config.student.ref):
        raise ProtegeError(
            f"{run_dir}: its checkpoints are for student {started_for}, not {project.config.student.ref}",
            hint="resume with the student it started with, or start a new run without --resume",
        )
    if not torch.cuda.is_available():
        torch.set_num_threads(os.cpu_count() or 1)
    precision = plan(config.precision, config.method, "cuda" if torch.cuda.is_available() else "cpu")
    student = load_student(project.config.student.ref, dtype=precision.base_dtype)
    examples, data_info = encode_dataset(rows, student.tokenizer, config.max_seq_len)
    err.print(
        f"[dim]{len(examples)} examples, {data_info['label_tokens']:,} answer tokens, "
        f"distillation: {data_info['distillation']} ({data_info['distillation_reason']}), "
        f"precision: {precision.precision}[/]"
    )
    model = build_model(student, config)
    if torch.cuda.is_available():
        model = model.to("cuda")
    steps = total_steps(len(examples), config, max_steps)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / STARTED_FILE).write_text(json.dumps({"student": student.ref}), encoding="utf-8")
    try:
        result = train(
            model,
            examples,
            config,
            pad_id=student.tokenizer.pad_token_id,
            steps=steps,
            checkpoint_dir=run_dir / "checkpoints",
            resume=resume,
            stop_at=stop_at,
            autocast_bf16=precision.autocast_bf16,
        )
    except MemoryError as exc:
        raise oom_error(exc, config) from None
    if stop_at is not None and stop_at < steps:
        return run_dir
    from accelerate import PartialState

    if PartialState().is_main_process:
        _export(project, run_dir, student, model, rows, examples, {**data_info, "precision": precision.precision}, result, merge)
    return run_dir


def _export(project, run_dir, student, model, rows, examples, data_info, result, merge) -> None:  # noqa: ANN001
    from protege.console import err
    from protege.dataset import training_files
    from protege.train.data import dataset_digest, render
    from protege.train.export import greedy_agreement, write_gguf_adapter, write_modelfile

    config = project.config.train
    metrics: dict[str, Any] = {
        "steps": result.steps,
        "resumed_from": result.resumed_from,
        "examples": len(examples),
        "train_tokens": result.tokens,
        "seconds": round(result.seconds, 2),
        "tokens_per_s": round(result.tokens_per_s, 1),
        "final_loss": result.history[-1]["loss"] if result.history else None,
        "loss_curve": result.history,
        **data_info,
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    if config.method == "lora":
        model.save_pretrained(run_dir / "adapter")
        student.tokenizer.save_pretrained(run_dir / "adapter")
        write_gguf_adapter(model, run_dir / "adapter.gguf")
        if student.base_gguf:
            write_modelfile(run_dir / "Modelfile", student.base_gguf)
            err.print("[dim]checking adapter.gguf against PyTorch with llama.cpp ...[/]")
            texts = [render(student.tokenizer, r["messages"]) for r in rows[:4]]
            try:
                metrics["export_agreement"] = greedy_agreement(model, student.tokenizer, student.base_gguf, run_dir / "adapter.gguf", texts)
            except ProtegeError as exc:
                # A check, not the product: on a machine busy enough that llama-server cannot answer
                # in time, the trained adapter is still written and the run goes on.
                metrics["export_agreement"] = {"error": str(exc)}
                err.print(f"[yellow]warning:[/] adapter.gguf not checked against PyTorch: {exc}")
    if merge or config.method == "full":
        merged = _merged(student.ref, run_dir / "adapter") if config.method == "lora" else model
        merged.save_pretrained(run_dir / "merged")
        student.tokenizer.save_pretrained(run_dir / "merged")
    files = training_files(project.paths)
    data_hash = dataset_digest(files)
    run_info = {
        "run": run_dir.name,
        "student": student.ref,
        "base_gguf": str(student.base_gguf) if student.base_gguf else None,
        "adapter_gguf": str(run_dir / "adapter.gguf") if config.method == "lora" else None,
        "method": config.method,
        "train_config": config.model_dump(mode="json"),
        "dataset": [str(f) for f in files],
        "dataset_sha256": data_hash,
        "rows": len(rows),
        "code_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    (run_dir / "run.json").write_text(json.dumps(run_info, indent=2), encoding="utf-8")
    project.paths.latest.write_text(run_dir.name + "\n", encoding="utf-8")


def _merged(ref: str, adapter: Any) -> Any:
    """The adapter merged into a full-precision copy of the base (the trained base may be bf16)."""
    from peft import PeftModel

    from protege.train.student import load_student

    return PeftModel.from_pretrained(load_student(ref).model, adapter).merge_and_unload()
