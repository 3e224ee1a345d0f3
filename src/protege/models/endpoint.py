"""From a model reference to a ready chat client: local GGUF models get a llama.cpp server."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from protege.config import ModelConfig
from protege.errors import ProtegeError
from protege.models.cache import ResponseCache
from protege.models.client import ChatClient
from protege.refs import ModelRef, parse_ref
from protege.models.server import POOL, Adapter, ServerPool, ServerSpec


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


def server_spec(model: ModelConfig, lora: Path | None = None) -> ServerSpec:
    """How to serve a local model (with this adapter among the server's). An explicit
    `concurrency` in the config sets the slot count; otherwise the pool sizes it."""
    ref = parse_ref(model.ref)
    slots = model.concurrency if "concurrency" in model.model_fields_set else None
    adapters = (Adapter.of(Path(lora)),) if lora else ()
    return ServerSpec(model=gguf_path(ref).resolve(), n_ctx=model.n_ctx, adapters=adapters, slots=slots)


class LocalRoute:
    """How a client reaches a local model: the pool's live server for its base, and the `lora`
    field that picks this client's adapter (or none: the untrained base) in each request."""

    def __init__(self, spec: ServerSpec, pool: ServerPool = POOL):
        self.spec = spec
        self.pool = pool
        self.adapter = spec.adapters[0] if spec.adapters else None
        # A server found already running may have more slots than this config asked for: an
        # explicit `concurrency` still caps how many requests this client has in flight.
        served = pool.get(spec).slots
        self.slots = min(served, spec.slots or served)

    def resolve(self) -> tuple[str, dict[str, Any]]:
        """(base_url, extra request fields); starts or restarts the server when needed."""
        server = self.pool.get(self.spec)
        return server.base_url, {"lora": server.lora_for(self.adapter)}

    def failed(self) -> None:
        """A call could not reach the server: health-check it, so a dead one is replaced."""
        self.pool.check(self.spec)


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
) -> ChatClient:
    """A client for any reference. Local models are served by the shared server pool: one
    llama-server per base, the adapter chosen per request; their calls run up to the slot count."""
    ref = parse_ref(model.ref)
    cache = ResponseCache(cache_path) if cache_path else None
    if ref.is_local_gguf:
        route = LocalRoute(server_spec(model, lora))
        identity = str(ref) + (f"+lora:{file_digest(Path(lora))}" if lora else "")
        return ChatClient(base_url="", model="local", api_key="sk-local", config=model, cache=cache, identity=identity, local=route)
    if lora:
        raise ProtegeError(f"{ref}: a LoRA adapter can only be attached to a local GGUF model")
    if ref.kind == "hf":
        raise ProtegeError(
            f"{ref}: hf: references are for training; to chat, use a GGUF file (gguf:PATH) "
            "or serve it with vLLM and use openai:MODEL@URL"
        )
    return ChatClient(base_url=ref.base_url or "", model=ref.name, api_key=api_key_for(model, ref), config=model, cache=cache, identity=str(ref))
