"""Load the student into PyTorch: from GGUF (dequantized once, cached as safetensors) or a local HF dir."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protege.errors import ProtegeError
from protege.refs import parse_ref


@dataclass
class Student:
    model: Any  # transformers PreTrainedModel
    tokenizer: Any
    ref: str
    base_gguf: Path | None  # what llama.cpp serves with adapter.gguf (None for hf: students)
    source_dir: Path  # a from_pretrained()-able folder holding the full-precision weights


def _cache_key(path: Path, ref: str) -> str:
    from protege.models.embedded import REGISTRY

    ref_ = parse_ref(ref)
    if ref_.kind == "embedded" and REGISTRY[ref_.name].sha256:
        return REGISTRY[ref_.name].sha256[:16]  # type: ignore[index]
    from protege.models.endpoint import file_digest

    return file_digest(path)


def load_student(ref: str, dtype: Any = None) -> Student:
    """The student's model and tokenizer; a GGUF is dequantized on first use and cached."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from protege.models.embedded import cache_dir
    from protege.models.endpoint import gguf_path

    hf_logging.disable_progress_bar()  # our own progress display is the one the user reads
    dtype = dtype or torch.float32
    parsed = parse_ref(ref)
    if parsed.kind == "hf":
        folder = Path(parsed.name).expanduser()
        if not (folder / "config.json").is_file():
            raise ProtegeError(
                f"{ref}: not a local Hugging Face model folder (no config.json)",
                hint="offline, hf: needs a downloaded model directory",
            )
        base_gguf = None
    elif parsed.is_local_gguf:
        base_gguf = gguf_path(parsed).resolve()
        folder = cache_dir() / "students" / _cache_key(base_gguf, ref)
        if not (folder / "config.json").is_file():
            _dequantize(base_gguf, folder)
    else:
        raise ProtegeError(f"{ref}: a student must be embedded:, gguf: or hf: (a model protege can train)")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return Student(model=model, tokenizer=tokenizer, ref=ref, base_gguf=base_gguf, source_dir=folder)


def _dequantize(gguf: Path, folder: Path) -> None:
    """GGUF -> safetensors via transformers, written through a temporary folder (never half-written)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from protege.console import err

    err.print(f"[dim]converting {gguf.name} to PyTorch (once; cached in {folder})[/]")
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except Exception as exc:  # transformers raises ValueError/KeyError/RuntimeError for unsupported GGUFs
        raise ProtegeError(f"{gguf}: transformers cannot load this GGUF for training: {exc}") from None
    # The weights are already dequantized to float32; drop the GGUF marker that blocks saving.
    setattr(model, "hf_quantizer", None)  # typed as a module attribute by torch's __setattr__ stubs
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    (partial / "source.txt").write_text(f"{gguf}\n")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


# transformers model_type -> llama.cpp architecture name (gguf.MODEL_ARCH_NAMES values).
_ARCH_NAMES = {"mistral": "llama", "gemma3_text": "gemma3"}
# Architectures whose q/k weights llama.cpp's converter permutes (rotary layout), so LoRA B must be too.
PERMUTED_QK = {"llama", "mistral"}


def gguf_arch(model_type: str) -> Any:
    """The gguf.MODEL_ARCH for a transformers model_type (llama, qwen2, gemma3, ...)."""
    import gguf

    name = _ARCH_NAMES.get(model_type, model_type)
    for arch, arch_name in gguf.MODEL_ARCH_NAMES.items():
        if arch_name == name:
            return arch
    raise ProtegeError(f"no llama.cpp architecture known for model type '{model_type}'; cannot export adapter.gguf")
