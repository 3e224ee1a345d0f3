"""Local GGUF models behind llama.cpp's llama-server: one process per base model per machine.

A server is started on demand on a free 127.0.0.1 port, health-checked, and restarted if it
died. It has parallel slots with continuous batching, and every LoRA adapter wanted over its
base is loaded at start without being applied: each request names its adapter (see
`LlamaServer.lora_for`), and a request naming none is the untrained base.

Servers are shared by every protege process on the machine: each one is recorded in
`<cache>/servers/<id>/server.json`, and a process that needs the same base at no larger a
context, with adapters the server already has, leases it instead of starting another. The
server's launcher (`protege.models.llama_launch`) stops it once no live process holds a lease:
normally, on Ctrl-C, on error, and even when protege was killed with -9. A process that needs an
adapter the shared server lacks starts its own server with every adapter it wants over that base.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import psutil

from protege.errors import ProtegeError
from protege.models.leases import add_lease, drop_lease, live_leases, read_record, write_record
from protege.models.llama_bin import server_binary
from protege.models.llama_launch import RECORD

RAM_SHARE = 0.25  # the KV cache of all slots may take at most this share of the available RAM
CACHE_RAM_MIB = 512  # llama-server's host-memory prompt cache (its default, 8 GiB, is too much here)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True, order=True)
class Adapter:
    """A LoRA adapter file as it is now: a rewritten file is a different adapter."""

    path: Path
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> "Adapter":
        path = Path(path).resolve()
        try:
            st = path.stat()
        except OSError:
            raise ProtegeError(f"LoRA adapter file not found: {path}") from None
        return cls(path, st.st_size, st.st_mtime_ns)

    def is_current(self) -> bool:
        try:
            return Adapter.of(self.path) == self
        except ProtegeError:
            return False

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "size": self.size, "mtime_ns": self.mtime_ns}


@dataclass(frozen=True)
class ServerSpec:
    """What to serve: a GGUF base, the context of one request (per slot), the adapters wanted.

    slots=None lets the pool choose from the model's size and the RAM (`slots_for`)."""

    model: Path
    n_ctx: int = 4096
    adapters: tuple[Adapter, ...] = ()
    slots: int | None = None
    n_threads: int | None = None

    @property
    def key(self) -> tuple[Path, int]:
        return (self.model, self.n_ctx)

    @property
    def tag(self) -> str:
        """Names this use of a server in its lease: one process may lease one server for two keys."""
        return hashlib.sha256(f"{self.model}:{self.n_ctx}".encode()).hexdigest()[:12]

    def args(self, port: int) -> list[str]:
        threads = str(self.n_threads or max(1, os.cpu_count() or 1))
        slots = self.slots or 1
        args = [
            "-m", str(self.model), "--host", "127.0.0.1", "--port", str(port), "--alias", "local",
            "-c", str(self.n_ctx * slots), "-np", str(slots), "-t", threads, "-tb", threads,
            "--cache-ram", str(CACHE_RAM_MIB), "--reasoning-format", "none", "--no-webui", "--no-slots",
        ]  # fmt: skip
        for a in self.adapters:
            args += ["--lora", str(a.path)]
        return args + (["--lora-init-without-apply"] if self.adapters else [])


def slots_for(model: Path, n_ctx: int) -> int:
    """Parallel slots: more for small models (the 2-core throughput gain flattens near 8 for a
    0.5B, 4 for a 1.5B), never more than RAM_SHARE of the available RAM holds in KV cache."""
    from protege.models.gguf_meta import read_shape

    size = model.stat().st_size
    slots = 8 if size < 700_000_000 else 4 if size < 2_500_000_000 else 2
    try:
        per_slot = read_shape(model).kv_bytes_per_token * n_ctx
    except ProtegeError:
        return slots
    return max(1, min(slots, int(psutil.virtual_memory().available * RAM_SHARE // per_slot)))


class LlamaServer:
    """One llama-server: started by this process (`process` set) or leased from another."""

    def __init__(self, spec: ServerSpec, server_dir: Path, port: int, pid: int, process: subprocess.Popen | None = None):
        self.spec = spec
        self.server_dir = server_dir
        self.port = port
        self.pid = pid  # the launcher's
        self.process = process
        self.log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def slots(self) -> int:
        return self.spec.slots or 1

    @property
    def engine_pid(self) -> int | None:
        """The llama-server process itself (the launcher's child)."""
        try:
            children = psutil.Process(self.pid).children()
        except psutil.Error:
            return None
        return children[0].pid if children else None

    @property
    def adapter_paths(self) -> list[Path]:
        return [a.path for a in self.spec.adapters]

    def serves(self, adapters: tuple[Adapter, ...]) -> bool:
        return set(adapters) <= set(self.spec.adapters)

    def lora_for(self, adapter: Adapter | None) -> list[dict[str, Any]]:
        """The request's `lora` field: this adapter at full scale and every other one at 0,
        all of them named (an empty list did not reliably mean "none" in llama-server)."""
        return [{"id": i, "scale": 1.0 if a == adapter else 0.0} for i, a in enumerate(self.spec.adapters)]

    def is_alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return psutil.pid_exists(self.pid) and (self.server_dir / RECORD).exists()

    def healthy(self, timeout: float = 2.0) -> bool:
        if not self.is_alive():
            return False
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    @classmethod
    def start(cls, spec: ServerSpec, root: Path, log_dir: Path, timeout: float = 180.0) -> "LlamaServer":
        if not spec.model.is_file():
            raise ProtegeError(f"model file not found: {spec.model}")
        binary = server_binary()
        server_dir = root / f"{spec.model.stem}-{uuid.uuid4().hex[:8]}"
        add_lease(server_dir, spec.tag)
        port = free_port()
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"llama-server-{spec.model.stem}-{port}.log"
        t0 = time.monotonic()
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "protege.models.llama_launch", str(server_dir), str(binary), *spec.args(port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        server = cls(spec, server_dir, port, process.pid, process)
        server.log_path = log_path
        while time.monotonic() - t0 < timeout:
            if not server.is_alive():
                raise ProtegeError(
                    f"llama-server for {spec.model.name} exited at start: {_log_tail(log_path)}",
                    hint="is the file a valid GGUF model (and each adapter made for this base)?",
                )
            if server.healthy(timeout=1.0):
                write_record(server_dir / RECORD, {"pid": process.pid, "port": port, "model": str(spec.model),
                                                   "n_ctx": spec.n_ctx, "slots": spec.slots, "binary": str(binary),
                                                   "adapters": [a.to_json() for a in spec.adapters]})  # fmt: skip
                return server
            time.sleep(0.1)
        server.stop()
        raise ProtegeError(f"llama-server for {spec.model.name} not ready after {timeout:.0f}s (log: {log_path})")

    @classmethod
    def attach(cls, server_dir: Path, spec: ServerSpec) -> "LlamaServer | None":
        """Lease the server recorded in `server_dir` if it serves `spec`; None if it does not."""
        record = read_record(server_dir / RECORD)
        if record is not None and not psutil.pid_exists(int(record.get("pid") or 0)):
            shutil.rmtree(server_dir, ignore_errors=True)  # its launcher was killed: a stale record
            return None
        if record is None or Path(record.get("model", "")) != spec.model or record.get("n_ctx", 0) < spec.n_ctx:
            return None
        try:
            if record["binary"] != str(server_binary()):
                return None
            adapters = tuple(Adapter(Path(a["path"]), a["size"], a["mtime_ns"]) for a in record["adapters"])
            server = cls(replace(spec, slots=record["slots"], adapters=adapters), server_dir, int(record["port"]), int(record["pid"]))
        except (KeyError, TypeError, ValueError):
            return None
        if not server.serves(spec.adapters):
            return None
        add_lease(server_dir, spec.tag)
        # Looked at again after the lease: a launcher retiring the server meanwhile took the record away.
        if server.healthy() and (server_dir / RECORD).exists():
            return server
        drop_lease(server_dir, spec.tag)
        return None

    def release(self) -> None:
        """This process no longer uses the server; its launcher stops it when nobody does."""
        drop_lease(self.server_dir, self.spec.tag)
        if self.process is not None and self.process.poll() is None and not live_leases(self.server_dir):
            self.stop()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop a server this process started now, whoever else leased it (tests, benchmarks);
        one leased from another process is only released: it is not ours to stop."""
        drop_lease(self.server_dir, self.spec.tag)
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    useful = [t for t in text if t.strip()][-lines:]
    return " | ".join(useful) or "(empty log)"


class ServerPool:
    """This process's servers, one per (base, context): found or started on demand, restarted
    when dead. Each (base, context) has its own lock, so one slow start blocks no other model."""

    def __init__(self, root: Path | None = None) -> None:
        self._root = root
        self._servers: dict[tuple[Path, int], LlamaServer] = {}
        self._wanted: dict[tuple[Path, int], set[Adapter]] = {}
        self._locks: dict[tuple[Path, int], threading.Lock] = {}
        self._lock = threading.Lock()  # guards the three dicts, never held through a start

    @property
    def root(self) -> Path:
        from protege.models.embedded import cache_dir

        return self._root or cache_dir() / "servers"

    def get(self, spec: ServerSpec) -> LlamaServer:
        """A live server for spec.model at spec.n_ctx or more, with every adapter in spec."""
        with self._lock:
            lock = self._locks.setdefault(spec.key, threading.Lock())
        with lock:
            with self._lock:
                server = self._servers.get(spec.key)
                wanted = {a for a in self._wanted.get(spec.key, set()) if a.is_current()} | set(spec.adapters)
                self._wanted[spec.key] = wanted
                spec = replace(spec, adapters=tuple(sorted(wanted)))
            if server is not None and server.is_alive() and server.serves(spec.adapters):
                return server
            if server is not None:
                server.release()
            server = self._find_or_start(spec)
            with self._lock:
                self._servers[spec.key] = server
            return server

    def want(self, spec: ServerSpec) -> None:
        """Declare adapters that will be asked for over spec's base, so the server starts with
        all of them instead of restarting once for each (the gateway, before its agents open)."""
        with self._lock:
            self._wanted.setdefault(spec.key, set()).update(spec.adapters)

    def _find_or_start(self, spec: ServerSpec) -> LlamaServer:
        from protege.models.embedded import cache_dir

        self.root.mkdir(parents=True, exist_ok=True)
        # One process starts a given base at a time; the others then find its record.
        with (self.root / f"{spec.tag}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for record in sorted(self.root.glob(f"*/{RECORD}")):
                server = LlamaServer.attach(record.parent, spec)
                if server is not None:
                    return server
            slots = spec.slots or slots_for(spec.model, spec.n_ctx)
            return LlamaServer.start(replace(spec, slots=slots), self.root, cache_dir() / "logs")

    def check(self, spec: ServerSpec) -> None:
        """After a failed call: if the server does not answer its health check, drop it, so the
        next `get` starts a fresh one."""
        with self._lock:
            server = self._servers.get(spec.key)
        if server is not None and not server.healthy(timeout=2.0):
            with self._lock:
                if self._servers.get(spec.key) is server:
                    del self._servers[spec.key]
            server.stop()

    def running(self) -> list[LlamaServer]:
        with self._lock:
            return [s for s in self._servers.values() if s.is_alive()]

    def stop(self, spec: ServerSpec) -> None:
        with self._lock:
            server = self._servers.pop(spec.key, None)
            self._wanted.pop(spec.key, None)
        if server:
            server.stop()

    def stop_all(self) -> None:
        """Let go of every server: the ones only this process used stop now."""
        with self._lock:
            servers, self._servers, self._wanted = list(self._servers.values()), {}, {}
        for server in servers:
            server.release()


POOL = ServerPool()
atexit.register(POOL.stop_all)


def _stop_on_sigterm(signum, frame):  # noqa: ANN001
    POOL.stop_all()
    raise SystemExit(128 + signum)


if threading.current_thread() is threading.main_thread():
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
