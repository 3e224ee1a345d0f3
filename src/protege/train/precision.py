"""Which float type to train in: bf16 where this machine multiplies it fast, else fp32.

On CPUs with AMX or AVX512-BF16, torch's bf16 matmul runs several times faster than fp32
(about 1,000 vs 156 GFLOPS on two Sapphire Rapids cores); elsewhere bf16 is emulated and
slower than fp32. So the CPU is asked once, by timing one matmul in each type, and the answer is
cached per CPU model, core count and torch version ($PROTEGE_CACHE/cpu-bf16.json).
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from typing import Literal

import torch

Precision = Literal["bf16", "fp32"]
BF16_SPEEDUP = 1.5  # bf16 must beat fp32 by this much to be worth its coarser rounding
_SIZE, _REPS = 1024, 4


@dataclass(frozen=True)
class Plan:
    """How a run uses its precision. bf16 always runs the matmuls under bf16 autocast. LoRA on
    a CPU also loads the frozen base in bf16 (half the memory, no per-step weight casts), while
    peft keeps the adapter in fp32 for the optimizer. Full training keeps fp32 master weights,
    and so do GPUs (FSDP wants one dtype per wrapped unit)."""

    precision: Precision
    base_dtype: torch.dtype  # what the student is loaded in
    autocast_bf16: bool


def plan(setting: str, method: str, device: torch.device | str = "cpu") -> Plan:
    precision = resolve(setting, device)
    frozen_bf16 = precision == "bf16" and method == "lora" and torch.device(device).type == "cpu"
    return Plan(precision, torch.bfloat16 if frozen_bf16 else torch.float32, precision == "bf16")


def resolve(setting: str, device: torch.device | str = "cpu") -> Precision:
    """"auto" -> "bf16" where it is fast on `device`, else "fp32"; "bf16"/"fp32" stay as given."""
    if setting in ("bf16", "fp32"):
        return setting  # type: ignore[return-value]
    if torch.device(device).type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_bf16_fast() else "fp32"


def _cpu_key() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return f"{model}|{torch.get_num_threads()} threads|torch {torch.__version__}"


def cpu_bf16_fast() -> bool:
    """True when a bf16 matmul on this CPU is at least BF16_SPEEDUP times faster than fp32."""
    from protege.models.embedded import cache_dir

    path = cache_dir() / "cpu-bf16.json"
    key = _cpu_key()
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
        if known.get("key") == key:
            return bool(known["bf16"])
    except (OSError, ValueError, KeyError):
        pass
    fp32_s, bf16_s = time_matmuls()
    flops = 2 * _SIZE**3
    bf16 = fp32_s / bf16_s >= BF16_SPEEDUP
    record = {
        "key": key,
        "fp32_gflops": round(flops / fp32_s / 1e9, 1),
        "bf16_gflops": round(flops / bf16_s / 1e9, 1),
        "bf16": bf16,
    }
    partial = path.with_suffix(f".{os.getpid()}.partial")
    partial.write_text(json.dumps(record), encoding="utf-8")
    partial.replace(path)
    return bf16


def time_matmuls() -> tuple[float, float]:
    """Best seconds for one _SIZE² matmul in fp32 and in bf16, timed alternately so that
    other work on the machine slows both alike."""
    a = torch.randn(_SIZE, _SIZE)
    pairs = {torch.float32: (a, a.t().contiguous()), torch.bfloat16: (a.bfloat16(), a.t().contiguous().bfloat16())}
    best = {dtype: float("inf") for dtype in pairs}
    for _ in range(_REPS + 1):  # the first round warms up (thread pool, kernel selection)
        for dtype, (x, y) in pairs.items():
            t0 = time.perf_counter()
            torch.mm(x, y)
            best[dtype] = min(best[dtype], time.perf_counter() - t0)
    return best[torch.float32], best[torch.bfloat16]
