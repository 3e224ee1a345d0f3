"""Export a trained LoRA: PEFT folder, GGUF adapter for llama.cpp, Ollama Modelfile, merged model.

The GGUF adapter is checked, not trusted: llama.cpp (quantized base + adapter) and PyTorch
(full-precision base + adapter) must agree on the greedy next token at most positions.
"""

from __future__ import annotations

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

    llama-server returns no logits for prompt positions, so the check follows llama.cpp's own
    greedy path: the first half of each text is the prompt, llama-server continues it greedily,
    and PyTorch, fed the same tokens, says at every generated position which token it would pick.
    `base_agreement` does the same along the path of the base without the adapter, and
    `adapter_changed` is the share of generated positions where the adapter changed
    llama.cpp's own token, which shows the adapter was applied at all.
    """
    import torch

    from protege.models.server import POOL, Adapter, ServerSpec

    seqs = [tokenizer(t, add_special_tokens=False)["input_ids"][:max_tokens] for t in texts]
    prompts = [s[: max(1, len(s) // 2)] for s in seqs]
    spec = ServerSpec(model=Path(base_gguf).resolve(), n_ctx=max(len(s) for s in seqs) + 16,
                      adapters=(Adapter.of(adapter),), slots=1)  # fmt: skip
    server = POOL.get(spec)
    try:
        adapted = [_greedy(server, p, len(s) - len(p), spec.adapters[0]) for p, s in zip(prompts, seqs)]
        plain = [_greedy(server, p, len(s) - len(p), None) for p, s in zip(prompts, seqs)]
    finally:
        POOL.stop(spec)
    model.eval()

    def torch_picks(prompt: list[int], generated: list[int]) -> list[int]:
        if not generated:
            return []
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([prompt + generated], device=model.device)).logits[0]
        return logits[len(prompt) - 1 : -1].argmax(-1).tolist()

    def agree(paths: list[list[int]]) -> tuple[int, int]:
        pairs = [(g, torch_picks(p, g)) for p, g in zip(prompts, paths)]
        return sum(sum(a == b for a, b in zip(g, t)) for g, t in pairs), sum(len(g) for g in paths)

    same, total = agree(adapted)
    base_same, base_total = agree(plain)
    changed = sum(sum(a != b for a, b in zip(x, y)) + abs(len(x) - len(y)) for x, y in zip(adapted, plain))
    return {
        "positions": total,
        "agreement": same / max(total, 1),
        "base_agreement": base_same / max(base_total, 1),
        "adapter_changed": changed / max(total, base_total, 1),
    }


def _greedy(server: Any, prompt: list[int], n: int, adapter: Any) -> list[int]:
    """llama-server's greedy continuation of a token prompt (token ids, EOS not included)."""
    import httpx

    body = {"prompt": prompt, "n_predict": max(1, n), "temperature": 0.0, "repeat_penalty": 1.0, "return_tokens": True,
            "cache_prompt": False, "lora": server.lora_for(adapter)}  # fmt: skip
    try:
        reply = httpx.post(f"http://127.0.0.1:{server.port}/completion", json=body, timeout=300)
        reply.raise_for_status()
    except httpx.HTTPError as exc:
        raise ProtegeError(f"llama-server could not continue a prompt for the agreement check: {exc}") from exc
    return list(reply.json().get("tokens") or [])
