"""Serve test kit: a live gateway (uvicorn in a thread on a free loopback port) over real llama.cpp.

To keep tests fast the teacher is the embedded student base (`teacher: embedded:smollm2-135m-
instruct`) and the student is that base plus a tiny random LoRA adapter. The teacher is served at
another context size, so the two are distinct llama-server processes (killing the student leaves
the teacher up; one base at one context would share a server) and the adapter path is exercised.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from protege.project import Project

STUDENT = {"ref": "embedded:smollm2-135m-instruct", "n_ctx": 2048}
TEACHER = {"ref": "embedded:smollm2-135m-instruct", "n_ctx": 1536}


def write_lora_adapter(base_gguf: Path, out: Path, rank: int = 2, seed: int = 0) -> Path:
    """A small random LoRA on attn_q/attn_v in llama.cpp's adapter format (as train exports it)."""
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(base_gguf)
    n_layers = int(reader.fields["llama.block_count"].parts[-1][0])
    dim = int(reader.fields["llama.embedding_length"].parts[-1][0])
    heads = int(reader.fields["llama.attention.head_count"].parts[-1][0])
    kv_dim = dim // heads * int(reader.fields["llama.attention.head_count_kv"].parts[-1][0])
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(rank))
    for layer in range(n_layers):
        for name, out_dim in (("attn_q", dim), ("attn_v", kv_dim)):
            a = rng.normal(0, 0.01, (rank, dim)).astype(np.float32)
            b = rng.normal(0, 0.01, (out_dim, rank)).astype(np.float32)
            writer.add_tensor(f"blk.{layer}.{name}.weight.lora_a", a)
            writer.add_tensor(f"blk.{layer}.{name}.weight.lora_b", b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def make_project(root: Path, name: str, *, adapter: bool = True, serve: dict | None = None,
                 teacher: dict | str | None = None, persona: str | None = None) -> Project:  # fmt: skip
    """A project folder whose student (and, unless told, teacher) is the embedded SmolLM2."""
    from protege.models.embedded import get

    (root / "docs").mkdir(parents=True, exist_ok=True)
    (root / "docs" / "hours.md").write_text("# Hours\n\nThe Riverbend store opens 9:00-18:00 on weekdays.\n")
    config = {"name": name, "docs": "docs", "student": STUDENT, "teacher": teacher or TEACHER,
              "serve": {"rate_limit_per_minute": 10_000, "max_tokens": 8, **(serve or {})}}  # fmt: skip
    if persona:
        config["persona"] = persona
    (root / "protege.yaml").write_text(yaml.safe_dump(config))
    if adapter:
        run_dir = root / "artifacts" / "models" / "run-1"
        run_dir.mkdir(parents=True, exist_ok=True)
        write_lora_adapter(get("smollm2-135m-instruct").path(), run_dir / "adapter.gguf", seed=len(name))
        (root / "artifacts" / "models" / "LATEST").write_text("run-1\n")
    return Project.load(root)


@dataclass
class LiveGateway:
    url: str
    app: object
    server: object
    thread: threading.Thread

    @property
    def gateway(self):  # noqa: ANN201
        return self.app.state.gateway

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start_gateway(projects: list[Project], db: str | None = None, *, exposed: bool = False) -> LiveGateway:
    """The gateway as `protege serve` runs it (serve.serve_app), in a thread; a startup error is raised here."""
    import asyncio

    import uvicorn

    from protege.serve import listen, serve_app
    from protege.serve.app import create_app

    app = create_app(projects, db, exposed=exposed)
    sock = listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            asyncio.run(serve_app(app, server, sock))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread below
            failure.append(exc)
        finally:
            sock.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    deadline = time.monotonic() + 240
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            thread.join(timeout=1)
            if failure:
                raise failure[0]
            raise RuntimeError("gateway did not start")
        time.sleep(0.05)
    return LiveGateway(f"http://127.0.0.1:{sock.getsockname()[1]}", app, server, thread)
