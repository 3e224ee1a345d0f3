"""The llama-server pool: start, reuse, restart after a kill, no orphans, one server per base."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from protege.models.endpoint import server_spec
from protege.models.server import POOL, LlamaServer, ServerPool, slots_for

sys.path.insert(0, str(Path(__file__).parents[1] / "serve"))
from gateway_kit import write_lora_adapter  # noqa: E402


def _gone(pid: int | None, within_s: float = 15) -> bool:
    deadline = time.monotonic() + within_s
    while pid is not None and time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.2)
    return pid is None


def _engines(model: Path) -> list[psutil.Process]:
    """Running llama-server processes serving `model`."""
    found = []
    for p in psutil.process_iter(["name", "cmdline"]):
        cmd = p.info["cmdline"] or []
        if cmd and cmd[0].endswith("llama-server") and str(model) in cmd:
            found.append(p)
    return found


@pytest.mark.slow
def test_start_reuse_restart_stop(student_model, tmp_path):
    # Its own servers folder: a server another test left running (the session pool's student at a
    # larger context) would be leased instead of started, and then killed here as if it were ours.
    pool = ServerPool(tmp_path / "servers")
    spec = server_spec(student_model.model_copy(update={"n_ctx": 1792}))
    c = None
    try:
        a = pool.get(spec)
        assert a.healthy() and a.process is not None  # started here, not leased: ours to kill
        assert pool.get(spec) is a  # reused while alive
        os.kill(a.engine_pid, signal.SIGKILL)  # llama-server dies: its launcher exits with it
        assert _gone(a.pid)
        b = pool.get(spec)
        assert b.healthy() and b.process is not None and b.pid != a.pid
        b_engine = b.engine_pid
        assert b_engine is not None
        os.kill(b.pid, signal.SIGKILL)  # the launcher dies: llama-server dies with it (PDEATHSIG)
        assert _gone(b_engine)
        # The engine can die (PDEATHSIG fires as the launcher's main thread ends) before the launcher
        # can be reaped; a get() in that instant still sees it alive, and the first failed call
        # would then restart it (ServerPool.check). Wait until the kill is visible to this process.
        deadline = time.monotonic() + 15
        while b.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        c = pool.get(spec)
        assert c.healthy() and c.process is not None and c.pid != b.pid
    finally:
        pool.stop_all()
    assert c is not None and _gone(c.pid)


SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    # Ctrl-C as in a terminal, whatever SIGINT disposition the test runner passed down.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from protege.config import ModelConfig
    from protege.models.endpoint import server_spec
    from protege.models.server import POOL
    server = POOL.get(server_spec(ModelConfig(ref="embedded:smollm2-135m-instruct", n_ctx=int(sys.argv[2]))))
    print(server.pid, server.engine_pid, server.port, flush=True)
    if sys.argv[1] == "error":
        raise RuntimeError("boom")
    time.sleep(60)
    """
)


def _start_script(ending: str, n_ctx: int, env: dict | None = None) -> tuple[subprocess.Popen, list[int]]:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, ending, str(n_ctx)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env={**os.environ, **(env or {})})  # fmt: skip
    return proc, [int(x) for x in proc.stdout.readline().split()]


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["error", "sigkill", "sigint"])
def test_no_orphan_server_however_protege_ends(ending, student_model, tmp_path):
    # Its own server registry: in this test process's, the script would lease a running server.
    proc, (launcher, engine, _) = _start_script(ending, 512, {"PROTEGE_CACHE": str(tmp_path)})
    assert psutil.pid_exists(launcher) and psutil.pid_exists(engine)
    if ending == "sigkill":
        proc.kill()
    elif ending == "sigint":
        proc.send_signal(signal.SIGINT)  # Ctrl-C
    # LlamaServer.stop may take 10 s to terminate and 10 s more to kill, then the interpreter
    # tears down: room for that on a loaded machine.
    proc.wait(timeout=60)
    assert _gone(launcher) and _gone(engine), f"llama-server outlived protege ({ending})"


@pytest.mark.slow
def test_processes_share_one_server_and_it_stops_with_its_last_user(student_model):
    """A second protege process leases the running server; it outlives the first user (killed
    with -9) while the second still holds it, and stops once that one lets go."""
    model = server_spec(student_model).model
    proc, (launcher, engine, port) = _start_script("sigkill", 640)  # a context no other test uses
    pool = ServerPool()
    try:
        server = pool.get(server_spec(student_model.model_copy(update={"n_ctx": 640})))
        assert (server.pid, server.port, server.process) == (launcher, port, None)  # leased, not started
        assert [p.pid for p in _engines(model) if f"{port}" in p.cmdline()] == [engine]
        proc.kill()
        proc.wait(timeout=30)
        time.sleep(1.5)  # the launcher looks at its leases every 0.5 s
        assert server.healthy()
    finally:
        pool.stop_all()
        proc.kill()
    assert _gone(launcher) and _gone(engine)


@pytest.mark.slow
def test_server_outlives_the_thread_that_started_it(student_model):
    """Stages and the gateway start servers from worker threads; a thread's end must not stop one."""
    pool = ServerPool()
    started = []
    try:
        thread = threading.Thread(target=lambda: started.append(pool.get(server_spec(student_model))))
        thread.start()
        thread.join()
        time.sleep(2)  # longer than the launcher's watch period
        assert started[0].healthy()
        assert pool.get(server_spec(student_model)) is started[0]  # reused, not restarted
    finally:
        pool.stop_all()


@pytest.mark.slow
def test_one_slow_start_blocks_no_other_model(student_model, teacher_model, monkeypatch, tmp_path):
    """A model whose start takes long (the teacher can take minutes on a cold disk) must not hold
    up a request for another model: each (base, context) has its own lock."""
    real_start = LlamaServer.start.__func__
    slow_model = server_spec(teacher_model).model
    release = threading.Event()

    def start(cls, spec, *args, **kwargs):
        if spec.model == slow_model:
            release.wait(60)
        return real_start(cls, spec, *args, **kwargs)

    monkeypatch.setattr(LlamaServer, "start", classmethod(start))
    pool = ServerPool(tmp_path / "servers")  # its own servers: a running teacher elsewhere would be found, not started
    slow = threading.Thread(target=lambda: pool.get(server_spec(teacher_model)), daemon=True)
    try:
        slow.start()
        time.sleep(0.5)  # the teacher's start is under way
        fast: list = []
        other = threading.Thread(target=lambda: fast.append(pool.get(server_spec(student_model))), daemon=True)
        other.start()
        other.join(30)
        assert fast and fast[0].healthy(), "the student waited for the teacher's start"
        assert slow.is_alive()
    finally:
        release.set()
        slow.join(120)
        pool.stop_all()


def test_bad_model_file_is_a_clear_error(tmp_path):
    from protege.errors import ProtegeError
    from protege.models.server import ServerSpec

    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a model")
    with pytest.raises(ProtegeError, match="exited at start"):
        ServerPool(tmp_path / "servers").get(ServerSpec(model=bad, n_ctx=256, slots=1))
    assert not _engines(bad)


def test_session_pool_is_the_shared_one():
    assert POOL is __import__("protege.models.server", fromlist=["POOL"]).POOL


def test_slots_follow_model_size_and_ram(student_model, teacher_model, monkeypatch):
    small, big = server_spec(student_model).model, server_spec(teacher_model).model
    assert slots_for(small, 2048) == 8
    assert slots_for(big, 4096) == 4
    # 1 GiB available: a quarter of it holds the teacher's 4096-token KV cache (112 MiB a slot) twice.
    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("M", (), {"available": 1 << 30})())
    assert slots_for(big, 4096) == 2
    assert slots_for(big, 32768) == 1


@pytest.mark.slow
def test_adapters_share_one_server_and_the_base_answers_as_without_them(tmp_path, student_model):
    """Base + two adapters: one llama-server process (the base mmapped once); each client picks
    its adapter per request, and the base client's answer is that of a server with no adapter."""
    import asyncio

    from protege.models.endpoint import open_client

    base = server_spec(student_model).model
    a = write_lora_adapter(base, tmp_path / "a.gguf", rank=8, seed=1)
    b = write_lora_adapter(base, tmp_path / "b.gguf", rank=8, seed=2)
    ask = [{"role": "user", "content": "What is the capital of France?"}]
    alone = student_model.model_copy(update={"n_ctx": 768})  # another context: its own, adapter-free server
    shared = student_model.model_copy(update={"n_ctx": 1024})

    async def answers() -> list[str]:
        plain = await asyncio.to_thread(open_client, alone)
        clients = [await asyncio.to_thread(open_client, shared, lora=lora) for lora in (None, a, b)]
        # Concurrently: requests with different adapters run side by side on one server.
        got = await asyncio.gather(*(c.complete(ask, max_tokens=16, use_cache=False) for c in clients * 2))
        return [(await plain.complete(ask, max_tokens=16)).text] + [g.text for g in got]

    try:
        alone_text, *texts = asyncio.run(answers())
        servers = [s for s in POOL.running() if s.spec.n_ctx == 1024]
        assert len(servers) == 1 and servers[0].adapter_paths == sorted([a.resolve(), b.resolve()])
        assert texts[:3] == texts[3:]  # the same answer each time, whatever ran beside it
        assert texts[0] == alone_text  # no adapter applied to the base client's requests
        assert texts[1] != texts[0] and texts[2] != texts[0]
        maps = Path(f"/proc/{servers[0].engine_pid}/maps").read_text()
        assert str(base) in maps  # the base is memory-mapped: its pages are shared, not copied
    finally:
        POOL.stop(server_spec(shared))
        POOL.stop(server_spec(alone))
