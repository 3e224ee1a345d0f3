"""The few numbers protege needs from a GGUF header, read without llama.cpp or the gguf package.

The KV cache of one token costs 2 (K and V) x layers x kv_heads x head_dim x 2 bytes (f16); the
server pool sizes its parallel slots from that, the context per slot and the RAM available.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from protege.errors import ProtegeError

# GGUF value types -> struct format of the scalars (8 = string, 9 = array are read apart).
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


@dataclass(frozen=True)
class ModelShape:
    architecture: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int

    @property
    def kv_bytes_per_token(self) -> int:
        return 2 * self.n_layers * self.n_kv_heads * self.head_dim * 2


def _read(f: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize("<" + fmt)
    data = f.read(size)
    if len(data) != size:
        raise EOFError
    return struct.unpack("<" + fmt, data)[0]


def _value(f: BinaryIO, kind: int, keep: bool) -> Any:
    if kind in _SCALARS:
        return _read(f, _SCALARS[kind])
    if kind == 8:
        n = _read(f, "Q")
        data = f.read(n)
        return data.decode("utf-8", "replace") if keep else None
    if kind == 9:
        item, n = _read(f, "I"), _read(f, "Q")
        if item in _SCALARS:  # skipped whole: only the tokenizer has arrays, and none is needed
            f.seek(n * struct.calcsize("<" + _SCALARS[item]), 1)
        else:
            for _ in range(n):
                _value(f, item, False)
        return None
    raise ValueError(f"unknown GGUF value type {kind}")


def read_shape(path: Path) -> ModelShape:
    """Architecture, layers and attention heads of a GGUF model (stops reading once it has them)."""
    wanted = ("block_count", "attention.head_count", "attention.head_count_kv", "attention.key_length", "embedding_length")
    found: dict[str, Any] = {}
    arch = ""
    try:
        with Path(path).open("rb") as f:
            if f.read(4) != b"GGUF":
                raise ValueError("not a GGUF file")
            _read(f, "I")  # version
            _read(f, "Q")  # tensor count
            for _ in range(_read(f, "Q")):
                key = f.read(_read(f, "Q")).decode("utf-8", "replace")
                kind = _read(f, "I")
                value = _value(f, kind, key == "general.architecture" or bool(arch) and key.startswith(arch + "."))
                if key == "general.architecture":
                    arch = value
                elif arch and key.startswith(arch + "."):
                    found[key[len(arch) + 1 :]] = value
                if arch and all(k in found for k in wanted):
                    break
    except (OSError, EOFError, ValueError) as exc:
        raise ProtegeError(f"cannot read the GGUF header of {path}: {exc or 'truncated'}") from None
    if not arch or "block_count" not in found or "attention.head_count" not in found:
        raise ProtegeError(f"{path}: GGUF header has no architecture, layer or head count")
    heads = int(found["attention.head_count"])
    head_dim = int(found.get("attention.key_length") or int(found.get("embedding_length", 0)) // max(heads, 1))
    return ModelShape(arch, int(found["block_count"]), heads, int(found.get("attention.head_count_kv", heads)), head_dim)
