"""Who uses a llama-server: one lease file per protege process, in the server's own folder.

A shared server lives in `<cache>/servers/<id>/` with `server.json` (how to reach it, what it
serves) and `leases/<pid>-<start time>-<tag>`. Any protege process that uses the server holds a
lease (one per use in that process, told apart by the tag); the server's launcher stops it once
no lease names a live process. A lease names the process by pid *and* start time, so a reused pid
never keeps a server alive.

Only the standard library and psutil: the launcher imports this, and it must start fast.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import psutil


def _name(tag: str) -> str:
    pid = os.getpid()
    return f"{pid}-{int(psutil.Process(pid).create_time() * 1000)}-{tag}"


def add_lease(server_dir: Path, tag: str) -> Path:
    """Mark this process as a user of the server in `server_dir` (for the use named `tag`)."""
    leases = server_dir / "leases"
    leases.mkdir(parents=True, exist_ok=True)
    path = leases / _name(tag)
    path.touch()
    return path


def drop_lease(server_dir: Path, tag: str) -> None:
    (server_dir / "leases" / _name(tag)).unlink(missing_ok=True)


def _alive(name: str) -> bool:
    try:
        pid, started_ms = (int(x) for x in name.split("-")[:2])
        proc = psutil.Process(pid)
        return abs(proc.create_time() * 1000 - started_ms) < 1000 and proc.status() != psutil.STATUS_ZOMBIE
    except (ValueError, psutil.Error):
        return False


def live_leases(server_dir: Path) -> list[str]:
    """The leases whose process still runs; the others are deleted."""
    live = []
    try:
        names = [p.name for p in (server_dir / "leases").iterdir()]
    except OSError:
        return []
    for name in names:
        if _alive(name):
            live.append(name)
        else:
            (server_dir / "leases" / name).unlink(missing_ok=True)
    return live


def write_record(path: Path, data: dict[str, Any]) -> None:
    """Atomically: a reader sees the whole record or none."""
    tmp = path.with_name(path.name + f".{os.getpid()}.partial")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    tmp.replace(path)


def read_record(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
