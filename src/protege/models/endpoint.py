"""From a model reference to a ready chat client: local GGUF models get a llama.cpp server."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from protege.config import ModelConfig
from protege.errors import ProtegeError
from protege.models.cache import ResponseCache
from protege.models.client import ChatClient
from protege.models.refs import ModelRef, parse_ref
from protege.models.server import POOL, ServerSpec


def gguf_path(ref: ModelRef) -> Path:
    """The GGUF file behind an embedded: or gguf: reference (assembled/verified if embedded)."""
    if ref.kind == "embedded":
        from protege.models.embedded import get

        model = get(ref.name)
        if model.format != "gguf":
            raise ProtegeError(f"{ref} is an embedding model, not a chat model")
        return model.path()
    if ref.kind == "gguf":
        path = ref.path
        if not path.is_file():
            raise ProtegeError(f"{ref}: file not found: {path}")
        return path
    raise ProtegeError(f"{ref} is not a local GGUF model")


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()[:16]


SMALL_MODEL_BYTES = 600_000_000


def server_spec(model: ModelConfig, lora: Path | None = None, logprobs: bool | None = None) -> ServerSpec:
    """How to serve a local model. logprobs=None: on for small models (students), where
    keeping every position's logits is cheap; big ones (the teacher) only when asked."""
    ref = parse_ref(model.ref)
    path = gguf_path(ref)
    if logprobs is None:
        logprobs = path.stat().st_size < SMALL_MODEL_BYTES
    return ServerSpec(model=path, lora=Path(lora) if lora else None, n_ctx=model.n_ctx, logprobs=logprobs)


def api_key_for(model: ModelConfig, ref: ModelRef) -> str:
    if model.api_key_env:
        key = os.environ.get(model.api_key_env)
        if not key:
            raise ProtegeError(
                f"{ref}: environment variable {model.api_key_env} is not set",
                hint=f"export {model.api_key_env}=... (keys never go in protege.yaml)",
            )
        return key
    # Local engines (vLLM, llama.cpp, Ollama) accept any key; hosted ones need api_key_env.
    return os.environ.get("OPENAI_API_KEY") or "sk-no-key"


def open_client(
    model: ModelConfig,
    *,
    cache_path: Path | None = None,
    lora: Path | None = None,
    logprobs: bool | None = None,
) -> ChatClient:
    """A client for any reference. Local models are served (or reused) by the server pool;
    pass logprobs=True to get top-k logprobs from a big local model (see server_spec)."""
    ref = parse_ref(model.ref)
    cache = ResponseCache(cache_path) if cache_path else None
    if ref.is_local_gguf:
        spec = server_spec(model, lora, logprobs)
        server = POOL.get(spec)
        identity = str(ref) + (f"+lora:{file_digest(Path(lora))}" if lora else "")
        client = ChatClient(base_url=server.base_url, model="local", api_key="sk-local", config=model, cache=cache, identity=identity)
        client.logprobs_known = spec.logprobs
        return client
    if lora:
        raise ProtegeError(f"{ref}: a LoRA adapter can only be attached to a local GGUF model")
    if ref.kind == "hf":
        raise ProtegeError(
            f"{ref}: hf: references are for training; to chat, use a GGUF file (gguf:PATH) "
            "or serve it with vLLM and use openai:MODEL@URL"
        )
    return ChatClient(base_url=ref.base_url or "", model=ref.name, api_key=api_key_for(model, ref), config=model, cache=cache, identity=str(ref))
