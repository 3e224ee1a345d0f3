"""Local GGUF models behind llama.cpp's OpenAI-compatible server, as managed subprocesses.

A server is started on demand on a free 127.0.0.1 port, health-checked, reused while alive,
restarted if it died, and stopped when protege exits: normally, on Ctrl-C, on error, and even
when protege itself is killed (the child, `protege.models.llama_launch`, watches its parent and
stops when it is gone).
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from protege.errors import ProtegeError


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class ServerSpec:
    """What to serve: a GGUF file, optionally with a LoRA adapter, at a context size."""

    model: Path
    lora: Path | None = None
    n_ctx: int = 4096
    n_threads: int | None = None
    alias: str = "local"
    # llama.cpp returns logprobs only when it keeps logits for every position, which costs
    # n_ctx x vocab floats (0.4 GB for the student at 2k, 2.5 GB for the teacher at 4k).
    logprobs: bool = False

    def command(self, port: int) -> list[str]:
        threads = self.n_threads or max(1, os.cpu_count() or 1)
        cmd = [
            sys.executable, "-m", "protege.models.llama_launch",  # llama_cpp.server, base kept mmapped
            "--model", str(self.model),
            "--model_alias", self.alias,
            "--host", "127.0.0.1",
            "--port", str(port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(threads),
            "--n_threads_batch", str(threads),
            "--logits_all", "true" if self.logprobs else "false",
            "--verbose", "false",
        ]  # fmt: skip
        if self.lora:
            cmd += ["--lora_path", str(self.lora)]
        return cmd


class LlamaServer:
    """One llama.cpp server process."""

    def __init__(self, spec: ServerSpec, log_dir: Path):
        self.spec = spec
        self.port = 0
        self.process: subprocess.Popen | None = None
        self.log_path = log_dir / f"llama-server-{os.getpid()}-{id(self)}.log"
        self.started_in_s = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def is_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def healthy(self, timeout: float = 2.0) -> bool:
        if not self.is_alive():
            return False
        try:
            return httpx.get(f"{self.base_url}/models", timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self, timeout: float = 180.0) -> None:
        for path, what in ((self.spec.model, "model"), (self.spec.lora, "LoRA adapter")):
            if path is not None and not Path(path).is_file():
                raise ProtegeError(f"{what} file not found: {path}")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        self.port = free_port()
        log = self.log_path.open("wb")
        try:
            self.process = subprocess.Popen(
                self.spec.command(self.port),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PROTEGE_PARENT_PID": str(os.getpid())},
            )
        finally:
            log.close()
        while time.monotonic() - t0 < timeout:
            if not self.is_alive():
                raise ProtegeError(
                    f"llama.cpp server for {self.spec.model.name} exited at start: {self._log_tail()}",
                    hint="is the file a valid GGUF model (and the adapter made for this base)?",
                )
            if self.healthy(timeout=1.0):
                self.started_in_s = time.monotonic() - t0
                return
            time.sleep(0.2)
        self.stop()
        raise ProtegeError(f"llama.cpp server for {self.spec.model.name} not ready after {timeout:.0f}s")

    def _log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        useful = [t for t in text if t.strip()][-lines:]
        return " | ".join(useful) or "(empty log)"

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


class ServerPool:
    """Servers keyed by spec: started on demand, reused while alive, restarted when dead."""

    def __init__(self) -> None:
        self._servers: dict[ServerSpec, LlamaServer] = {}
        self._lock = threading.Lock()

    def get(self, spec: ServerSpec) -> LlamaServer:
        from protege.models.embedded import cache_dir

        with self._lock:
            server = self._servers.get(spec)
            if server is not None and server.healthy():
                return server
            if server is not None:
                server.stop()
            server = LlamaServer(spec, cache_dir() / "logs")
            server.start()
            self._servers[spec] = server
            return server

    def running(self) -> list[LlamaServer]:
        return [s for s in self._servers.values() if s.is_alive()]

    def stop(self, spec: ServerSpec) -> None:
        with self._lock:
            server = self._servers.pop(spec, None)
        if server:
            server.stop()

    def stop_all(self) -> None:
        with self._lock:
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.stop()


POOL = ServerPool()
atexit.register(POOL.stop_all)


def _stop_on_sigterm(signum, frame):  # noqa: ANN001
    POOL.stop_all()
    raise SystemExit(128 + signum)


if threading.current_thread() is threading.main_thread():
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
