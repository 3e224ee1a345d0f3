"""Export a trained LoRA: PEFT folder, GGUF adapter for llama.cpp, Ollama Modelfile, merged model.

The GGUF adapter is checked, not trusted: llama.cpp (quantized base + adapter) and PyTorch
(full-precision base + adapter) must agree on the greedy next token at most positions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from protege.errors import ProtegeError
from protege.train.student import PERMUTED_QK, gguf_arch


def _permute_rows(weights: Any, n_head: int) -> Any:
    """llama.cpp's converter reorders q/k rows for its rotary layout (convert_hf_to_gguf.py, LlamaModel.permute)."""
    return weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def write_gguf_adapter(model: Any, path: Path) -> int:
    """Write the LoRA A/B matrices of a PEFT model as a llama.cpp GGUF adapter; returns tensor pairs written."""
    import gguf
    from peft import get_peft_model_state_dict

    config = model.get_base_model().config
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    peft_config = model.peft_config["default"]
    arch = gguf_arch(config.model_type)
    names = gguf.get_tensor_name_map(arch, text_config.num_hidden_layers)
    n_head = text_config.num_attention_heads
    n_kv = getattr(text_config, "num_key_value_heads", None) or n_head
    state = {k: v.detach().float().cpu().numpy() for k, v in get_peft_model_state_dict(model).items()}

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    writer = gguf.GGUFWriter(str(partial), gguf.MODEL_ARCH_NAMES[arch])
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(peft_config.lora_alpha))
    pairs = 0
    for key in sorted(state):
        if ".lora_A." not in key:
            continue
        module = key.removeprefix("base_model.model.").split(".lora_A.")[0]
        name = names.get_name(module)
        if name is None:
            raise ProtegeError(f"cannot map LoRA target '{module}' to a llama.cpp tensor name; adjust train.lora_targets")
        a = state[key]
        b = state[key.replace(".lora_A.", ".lora_B.")]
        if config.model_type in PERMUTED_QK and module.endswith("q_proj"):
            b = _permute_rows(b, n_head)
        elif config.model_type in PERMUTED_QK and module.endswith("k_proj"):
            b = _permute_rows(b, n_kv)
        writer.add_tensor(f"{name}.weight.lora_a", a)
        writer.add_tensor(f"{name}.weight.lora_b", b.copy())
        pairs += 1
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(path)
    return pairs


def write_modelfile(path: Path, base_gguf: Path) -> None:
    path.write_text(f"FROM {base_gguf}\nADAPTER ./adapter.gguf\n", encoding="utf-8")


def greedy_agreement(model: Any, tokenizer: Any, base_gguf: Path, adapter: Path, texts: list[str], max_tokens: int = 192) -> dict[str, float]:
    """Share of positions where llama.cpp (base + adapter) and PyTorch pick the same next token.

    Also measures how often the adapter changes llama.cpp's own greedy choice, which shows the
    adapter was applied at all.
    """
    import numpy as np
    import torch
    from llama_cpp import Llama

    seqs = [tokenizer(t, add_special_tokens=False)["input_ids"][:max_tokens] for t in texts]
    n_ctx = max(len(s) for s in seqs) + 8
    threads = max(1, torch.get_num_threads())
    model.eval()
    with torch.no_grad():
        ref = [model(input_ids=torch.tensor([s], device=model.device)).logits[0].argmax(-1).cpu().numpy() for s in seqs]

    def cpp_argmax(lora: Path | None) -> list[Any]:
        kwargs = {"lora_path": str(lora)} if lora else {}
        llm = Llama(model_path=str(base_gguf), n_ctx=n_ctx, logits_all=True, n_threads=threads, verbose=False, **kwargs)
        try:
            out = []
            for s in seqs:
                llm.reset()
                llm.eval(s)
                out.append(np.asarray(llm.scores[: len(s)]).argmax(-1))
            return out
        finally:
            llm.close()

    with _quiet_stderr():
        adapted, plain = cpp_argmax(adapter), cpp_argmax(None)
    total = sum(len(s) for s in seqs)
    return {
        "positions": total,
        "agreement": sum(int((a == r).sum()) for a, r in zip(adapted, ref)) / total,
        "base_agreement": sum(int((p == r).sum()) for p, r in zip(plain, ref)) / total,
        "adapter_changed": sum(int((a != p).sum()) for a, p in zip(adapted, plain)) / total,
    }


class _quiet_stderr:
    """llama.cpp prints load logs on fd 2 even with verbose=False; keep the progress display clean."""

    def __enter__(self) -> None:
        self.saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)

    def __exit__(self, *exc: object) -> None:
        os.dup2(self.saved, 2)
        os.close(self.saved)
