"""Where the llama-server binary is and how it was built (`make setup` writes both into .venv/bin)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from protege.errors import ProtegeError

REBUILD = "make setup (builds llama-server from source into .venv/bin)"


def server_binary() -> Path:
    """PROTEGE_LLAMA_SERVER if set, else the one beside this Python (the venv), else on PATH."""
    override = os.environ.get("PROTEGE_LLAMA_SERVER")
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ProtegeError(f"PROTEGE_LLAMA_SERVER={override} is not an executable file")
        return path
    beside = Path(sys.prefix) / "bin" / "llama-server"
    if beside.is_file():
        return beside
    found = shutil.which("llama-server")
    if found:
        return Path(found)
    raise ProtegeError("llama-server not found: local GGUF models need it", hint=REBUILD)


def build_info(binary: Path) -> dict[str, Any]:
    """What `make setup` recorded beside the binary ({} for a llama-server built elsewhere)."""
    try:
        data = json.loads(binary.with_name(binary.name + ".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def amx_kernels(info: dict[str, Any]) -> bool | None:
    """Whether the build may hold AMX kernels: None when unknown (a binary from elsewhere)."""
    if not info:
        return None
    flags = f"{info.get('cmake_args', '')} {info.get('cflags', '')}"
    return "-mno-amx-int8" not in flags and ("GGML_NATIVE=ON" in flags or "GGML_AMX_INT8=ON" in flags)
