"""How fast a local model runs here, measured once on its llama-server and cached.

The synth dry-run turns its token estimates into a wall time with these figures. They are
measured, not guessed, because they depend on the CPU, the build and the model: prompt
processing (tokens/s, one long prompt) and generation with every slot busy (aggregate tokens/s),
which is how the stages run. Cached in `<cache>/speed.json`, keyed by the model file, the
llama-server binary, the slot count and the threads; a new build or model is measured anew, and
so is a measure taken on a busy machine once the machine is quiet (`usable`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from protege.config import ModelConfig
from protege.errors import ProtegeError

PROMPT_TOKENS = 400  # about: the measuring prompt (a repeated sentence, so no tokenizer is needed)
GEN_TOKENS = 48


@dataclass(frozen=True)
class Speed:
    prompt_tps: float  # prompt processing, tokens/s
    gen_tps: float  # generation, one stream
    batch_gen_tps: float  # generation, every slot busy, all streams together
    slots: int
    load_1m: float | None = None  # the machine's load average when measured (None: not recorded)

    def seconds(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Wall time for this much work sent concurrently up to the slot count."""
        return prompt_tokens / self.prompt_tps + completion_tokens / self.batch_gen_tps


def _cache_path() -> Path:
    from protege.models.embedded import cache_dir

    return cache_dir() / "speed.json"


def _key(model: Path, slots: int, threads: int) -> str:
    from protege.models.llama_bin import server_binary

    binary = server_binary()
    parts = [model, model.stat().st_size, model.stat().st_mtime_ns, binary, binary.stat().st_mtime_ns, slots, threads]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _complete(port: int, prompt: str, n: int) -> dict:
    body = {"prompt": prompt, "n_predict": n, "temperature": 0.0, "ignore_eos": True, "cache_prompt": False}
    reply = httpx.post(f"http://127.0.0.1:{port}/completion", json=body, timeout=600)
    reply.raise_for_status()
    return reply.json()


def busy(load_1m: float, cores: int) -> bool:
    """More runnable work than half the cores: other jobs take enough CPU to slow a measure."""
    return load_1m > cores / 2


def usable(entry: object, load_now: float, cores: int) -> Speed | None:
    """A cached measure, unless it was taken on a busy machine (or when nobody noted the load) and
    the machine is quiet now: a measure under load makes every later estimate too pessimistic."""
    if not isinstance(entry, dict):
        return None
    try:
        speed = Speed(**entry)
    except TypeError:
        return None
    if (speed.load_1m is None or busy(speed.load_1m, cores)) and not busy(load_now, cores):
        return None
    return speed


def _measure(port: int, slots: int) -> Speed:
    sentence = "The quick brown fox jumps over the lazy dog near the river bank. "
    prompt = sentence * (PROMPT_TOKENS // 14)
    _complete(port, "Hello", 4)  # warm up
    one = _complete(port, prompt, GEN_TOKENS)["timings"]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(slots) as pool:  # distinct prompts: no slot reuses another's cache
        batch = list(pool.map(lambda i: _complete(port, f"{i}. Write a story.", GEN_TOKENS), range(slots)))
    wall = time.perf_counter() - t0
    generated = sum(b["timings"]["predicted_n"] for b in batch)
    return Speed(round(one["prompt_per_second"], 1), round(one["predicted_per_second"], 1), round(generated / wall, 1), slots,
                 round(os.getloadavg()[0], 2))


def measured_speed(model: ModelConfig) -> Speed:
    """The speed of a local model (reference embedded: or gguf:), measured on first use."""
    from protege.models.endpoint import server_spec
    from protege.models.server import POOL

    spec = server_spec(model)
    server = POOL.get(spec)
    key = _key(spec.model, server.slots, spec.n_threads or os.cpu_count() or 1)
    path = _cache_path()
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    cores = os.cpu_count() or 1
    cached = usable(known.get(key) if isinstance(known, dict) else None, os.getloadavg()[0], cores)
    if cached is not None:
        return cached
    try:
        speed = _measure(server.port, server.slots)
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        raise ProtegeError(f"{model.ref}: could not measure its speed: {exc}") from exc
    known = known if isinstance(known, dict) else {}
    known[key] = asdict(speed)
    tmp = path.with_name(f"speed.json.{os.getpid()}.partial")
    tmp.write_text(json.dumps(known, indent=1), encoding="utf-8")
    tmp.replace(path)
    return speed


def estimated_seconds(model: ModelConfig, prompt_tokens: int, completion_tokens: int) -> float | None:
    """Wall time of this work on a local model (its speed measured once); None for hosted
    models, whose speed protege cannot know, or when the local model cannot be measured."""
    from protege.refs import parse_ref

    if not parse_ref(model.ref).is_local_gguf:
        return None
    try:
        return measured_speed(model).seconds(prompt_tokens, completion_tokens)
    except ProtegeError:
        return None


def duration(seconds: float | None) -> str:
    """12 s, 7 min, 2.1 h; '-' for unknown."""
    if seconds is None:
        return "-"
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
