"""The llama.cpp server pool: start, reuse, restart after a kill, and no orphans."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from protege.models.endpoint import server_spec
from protege.models.server import POOL, ServerPool

pytestmark = pytest.mark.slow


def _llama_servers() -> set[int]:
    found = set()
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = p.info["cmdline"] or []
        if "protege.models.llama_launch" in cmd:
            found.add(p.info["pid"])
    return found


def test_start_reuse_restart_stop(student_model):
    pool = ServerPool()
    spec = server_spec(student_model)
    try:
        a = pool.get(spec)
        assert a.healthy()
        assert pool.get(spec) is a  # reused while alive
        pid = a.pid
        os.kill(pid, signal.SIGKILL)
        psutil.Process(pid).wait(timeout=10) if psutil.pid_exists(pid) else None
        b = pool.get(spec)  # the dead one is detected and replaced
        b_pid = b.pid
        assert b.healthy() and b_pid != pid
    finally:
        pool.stop_all()
    assert not psutil.pid_exists(b_pid) or psutil.Process(b_pid).status() == psutil.STATUS_ZOMBIE


SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from protege.config import ModelConfig
    from protege.models.endpoint import server_spec
    from protege.models.server import POOL
    server = POOL.get(server_spec(ModelConfig(ref="embedded:smollm2-135m-instruct", n_ctx=512)))
    print(server.pid, flush=True)
    if sys.argv[1] == "error":
        raise RuntimeError("boom")
    time.sleep(60)
    """
)


@pytest.mark.parametrize("ending", ["error", "sigkill", "sigint"])
def test_no_orphan_server_however_protege_ends(ending, student_model):
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, ending], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    server_pid = int(proc.stdout.readline())
    assert psutil.pid_exists(server_pid)
    if ending == "sigkill":
        proc.kill()
    elif ending == "sigint":
        proc.send_signal(signal.SIGINT)  # Ctrl-C
    proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while psutil.pid_exists(server_pid) and time.monotonic() < deadline:
        try:
            if psutil.Process(server_pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    alive = psutil.pid_exists(server_pid) and psutil.Process(server_pid).status() != psutil.STATUS_ZOMBIE
    assert not alive, f"llama.cpp server {server_pid} outlived protege ({ending})"


def test_server_outlives_the_thread_that_started_it(student_model):
    """Stages and the gateway start servers from worker threads; a thread's end must not stop one."""
    import threading

    pool = ServerPool()
    started = []
    try:
        thread = threading.Thread(target=lambda: started.append(pool.get(server_spec(student_model))))
        thread.start()
        thread.join()
        time.sleep(2)  # longer than the orphan watch's period
        assert started[0].healthy()
        assert pool.get(server_spec(student_model)) is started[0]  # reused, not restarted
    finally:
        pool.stop_all()


def test_bad_model_file_is_a_clear_error(tmp_path):
    from protege.errors import ProtegeError
    from protege.models.server import ServerSpec

    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a model")
    with pytest.raises(ProtegeError, match="exited at start"):
        ServerPool().get(ServerSpec(model=bad, n_ctx=256))
    assert not [p for p in _llama_servers() if str(bad) in " ".join(psutil.Process(p).cmdline())]


def test_session_pool_is_the_shared_one():
    assert POOL is __import__("protege.models.server", fromlist=["POOL"]).POOL


def test_base_stays_memory_mapped_under_a_lora_adapter(tmp_path, student_model):
    """Agents over one base share its pages: with an adapter the base GGUF is still mmapped."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "serve"))
    from gateway_kit import write_lora_adapter

    base = server_spec(student_model).model
    adapter = write_lora_adapter(base, tmp_path / "adapter.gguf")
    pool = ServerPool()
    try:
        server = pool.get(server_spec(student_model, lora=adapter))
        maps = Path(f"/proc/{server.pid}/maps").read_text()
        assert str(base.resolve()) in maps
    finally:
        pool.stop_all()
