"""Faults with the real components: a llama.cpp server killed mid-answer, `protege serve` killed
while it writes the traffic log, and a burst of 500 requests over the queue limit.

The processes are found from the outside (the port a client talks to, the children of the
gateway), so these tests hold whatever runs a local model behind the gateway.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil
import pytest
import yaml
from gateway_kit import STUDENT, make_project, start_gateway

pytestmark = pytest.mark.slow
ASK = [{"role": "user", "content": "Tell me about the Riverbend store and its opening hours, in detail."}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_of(path: Path) -> psutil.Process:
    """The model server (a child of this process) that was started with this file: the student's adapter.

    A launcher may sit between the gateway and the model server with the same arguments; the
    server is the innermost of them, the one no other match is a parent of."""
    found = [p for p in psutil.Process().children(recursive=True) if str(path) in " ".join(p.cmdline())]
    parents = {p.ppid() for p in found}
    leaves = [p for p in found if p.pid not in parents]
    assert len(leaves) == 1, f"{len(leaves)} processes serve {path}: {[p.name() for p in found]}"
    return leaves[0]


def test_killing_the_student_mid_stream_ends_the_stream_cleanly_and_the_next_request_works(tmp_path, student_model):
    project = make_project(tmp_path / "kill", "kill", serve={"max_tokens": 400})
    gw = start_gateway([project])
    try:
        server = server_of(project.paths.model_run("run-1") / "adapter.gguf")
        body = {"model": "kill-student", "messages": ASK, "max_tokens": 400, "temperature": 0.8, "stream": True}
        with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body, timeout=120) as resp:
            assert resp.status_code == 200
            lines = resp.iter_lines()
            seen = []
            for line in lines:  # wait for real tokens, then kill the server producing them
                seen.append(line)
                if '"content": "' in line and '"content": ""' not in line:
                    break
            server.kill()
            rest = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
        errors = [e["error"] for e in rest if "error" in e]
        assert len(errors) == 1, rest[-3:]
        assert errors[0]["code"] == "upstream_error" and "student failed" in errors[0]["message"]
        assert "127.0.0.1" not in errors[0]["message"] and "\n" not in errors[0]["message"]
        gw.gateway.logs["kill"].flush()
        rid = json.loads(seen[0][6:])["id"]
        row = sqlite3.connect(project.paths.traffic_db).execute("SELECT status FROM requests WHERE id = ?", (rid,)).fetchone()
        assert row == ("error",)

        # The next request is answered: by the teacher while the student restarts, then by the student.
        again = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "kill", "messages": ASK, "max_tokens": 4}, timeout=120)
        assert again.status_code == 200 and again.json()["protege"]["route"] in ("student", "teacher")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            reply = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "kill", "messages": ASK, "max_tokens": 2}, timeout=120)
            if reply.json()["protege"]["route"] == "student":
                break
            time.sleep(1)
        else:
            pytest.fail("the student was not restarted")
        print(f"\nkilled student server pid {server.pid} mid-stream after {len(seen)} event(s); stream ended with upstream_error; "
              f"next request {again.status_code} by {again.json()['protege']['route']}")  # fmt: skip
    finally:
        gw.stop()


def serve_project(root: Path, **serve) -> Path:
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "hours.md").write_text("# Hours\n\nThe Riverbend store opens 9:00-18:00 on weekdays.\n")
    config = {"name": "shop", "student": STUDENT, "teacher": STUDENT, "serve": {"max_tokens": 2, **serve}}
    (root / "protege.yaml").write_text(yaml.safe_dump(config))
    return root


def start_serve(root: Path) -> tuple[subprocess.Popen, str]:
    """`protege serve` as a user runs it, in its own process; returns it and its URL once healthy."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "protege.cli", "serve", str(root), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"protege serve exited: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("protege serve did not start")


def test_killing_protege_serve_loses_no_acknowledged_row(tmp_path, student_model):
    root = serve_project(tmp_path / "shop", rate_limit_per_minute=100_000)
    proc, url = start_serve(root)
    acknowledged: list[str] = []
    stop = threading.Event()

    def client(i: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    r = c.post("/v1/chat/completions", json={"model": "shop", "max_tokens": 1,
                                                             "messages": [{"role": "user", "content": f"q {i}.{n}"}]})  # fmt: skip
                except httpx.HTTPError:
                    return  # the gateway is gone
                if r.status_code == 200:
                    acknowledged.append(r.json()["id"])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    children = psutil.Process(proc.pid).children(recursive=True)  # the model servers it started, once it has answered
    proc.send_signal(signal.SIGKILL)  # mid-write: requests are in flight and rows are being committed
    proc.wait()
    stop.set()
    for t in threads:
        t.join(timeout=60)
    proc.stderr.close()

    assert len(acknowledged) >= 40
    db = root / "artifacts" / "traffic.db"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    logged = {r[0] for r in conn.execute("SELECT id FROM requests")}
    lost = [i for i in acknowledged if i not in logged]
    assert not lost, f"{len(lost)} acknowledged request(s) missing from the traffic log"
    conn.close()
    # The llama.cpp server it started goes with it (no orphan holding memory).
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, [p.pid for p in alive]
    print(f"\nkilled protege serve after {len(acknowledged)} acknowledged answers: {len(logged)} rows in traffic.db, "
          f"0 acknowledged rows lost, integrity ok, {len(children)} child process(es) gone")  # fmt: skip


def test_a_burst_over_the_queue_limit_gets_only_429_and_503_and_memory_stays_bounded(tmp_path, student_model):
    root = serve_project(tmp_path / "shop", max_queue=8, rate_limit_per_minute=300)
    proc, url = start_serve(root)
    gateway = psutil.Process(proc.pid)
    baseline = gateway.memory_info().rss
    peak = {"rss": baseline}
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            peak["rss"] = max(peak["rss"], gateway.memory_info().rss)
            time.sleep(0.02)

    async def burst(n: int) -> Counter:
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as c:
            async def one(i: int) -> int:
                try:
                    r = await c.post("/v1/chat/completions", json={"model": "shop", "max_tokens": 2, "stream": i % 2 == 0,
                                                                   "messages": [{"role": "user", "content": f"burst {i}"}]})  # fmt: skip
                    return r.status_code
                except httpx.HTTPError as exc:
                    return f"{type(exc).__name__}"  # type: ignore[return-value]

            return Counter(await asyncio.gather(*(one(i) for i in range(n))))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        t0 = time.perf_counter()
        statuses = asyncio.run(burst(500))
        elapsed = time.perf_counter() - t0
        after = httpx.post(f"{url}/v1/chat/completions", json={"model": "shop", "messages": ASK}, timeout=60)
    finally:
        sampling.set()
        sampler.join()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        proc.stderr.close()
    growth_mb = (peak["rss"] - baseline) / 2**20
    print(f"\nburst: 500 requests sent in {elapsed:.1f}s, statuses {dict(sorted(statuses.items(), key=str))}, "
          f"gateway RSS {baseline / 2**20:.0f} MiB before, peak {peak['rss'] / 2**20:.0f} MiB (+{growth_mb:.0f} MiB)")  # fmt: skip
    assert sum(statuses.values()) == 500
    assert set(statuses) <= {200, 429, 503}, statuses
    assert statuses[503] > 0 and statuses[200] > 0  # the queue limit was reached, and some were answered
    assert after.status_code in (200, 429)  # it still answers (or says retry) after the burst
    assert growth_mb < 200
