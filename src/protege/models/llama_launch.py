"""Runs one llama-server for protege and stops it once no protege process uses it.

    python -m protege.models.llama_launch SERVER_DIR llama-server ARGS...

llama-server is a C++ binary that knows nothing of protege, so this small process sits between
them. It stops llama-server when the last lease in SERVER_DIR/leases is gone (the processes
that held them exited, however: normally, on Ctrl-C, on error, or killed with -9), and it exits
as soon as llama-server does, so protege sees a dead server at once and restarts it.

llama-server gets PR_SET_PDEATHSIG from this process's main thread, which lives as long as this
process: killing the launcher kills llama-server too. protege itself cannot use PDEATHSIG, since
the kernel sends it when the *thread* that started the child exits, and protege starts servers
from worker threads (asyncio.to_thread in the gateway and the stages).
"""

from __future__ import annotations

import ctypes
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from protege.models.leases import live_leases

RECORD = "server.json"


def _die_with_launcher() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _retire(server_dir: Path) -> bool:
    """Take the record away so no new user finds the server, unless a lease came meanwhile."""
    record, retired = server_dir / RECORD, server_dir / (RECORD + ".retired")
    moved = record.exists()
    if moved:
        record.replace(retired)
    if live_leases(server_dir):  # a user leased it between our two looks: keep serving
        if moved:
            retired.replace(record)
        return False
    return True


def _watch(server_dir: Path, child: subprocess.Popen, every_s: float = 0.5) -> None:
    while child.poll() is None:
        time.sleep(every_s)
        if not live_leases(server_dir) and _retire(server_dir):
            child.terminate()
            time.sleep(10)
            child.kill()  # llama-server did not stop in time
            return


def main(argv: list[str]) -> int:
    server_dir, cmd = Path(argv[0]), argv[1:]
    child = subprocess.Popen(cmd, preexec_fn=_die_with_launcher)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: child.terminate())
    threading.Thread(target=_watch, args=(server_dir, child), daemon=True).start()
    code = child.wait()
    shutil.rmtree(server_dir, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
