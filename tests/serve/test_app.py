"""The gateway's HTTP edge with no local model: real uvicorn, real httpx, and upstreams on a closed port.

Both the student and the teacher are `openai:` endpoints nobody listens on, so every answer
fails the way a dead provider fails, fast, and the edge (body, JSON, auth, 502, logging) is
exercised end to end without llama.cpp.
"""

from __future__ import annotations

import json
import sqlite3

import httpx
import pytest
import yaml
from gateway_kit import start_gateway

from protege.errors import ProtegeError
from protege.models.server import free_port
from protege.project import Project

ASK = [{"role": "user", "content": "When do you open?"}]


def dead_project(root, name: str = "dead", **extra) -> Project:
    (root / "docs").mkdir(parents=True, exist_ok=True)
    (root / "docs" / "contact.md").write_text("# Contact\n\nWrite to shop@riverbend.example for repairs.\n")
    dead = f"openai:gone@http://127.0.0.1:{free_port()}/v1"
    config = {"name": name, "student": dead, "teacher": dead, **extra}
    (root / "protege.yaml").write_text(yaml.safe_dump(config))
    return Project.load(root)


@pytest.fixture(scope="module")
def dead_gateway(tmp_path_factory):
    project = dead_project(tmp_path_factory.mktemp("edge") / "dead")
    gw = start_gateway([project])
    gw.project = project  # type: ignore[attr-defined]
    yield gw
    gw.stop()


def test_deeply_nested_json_is_a_clean_400_and_the_connection_stays_usable(dead_gateway):
    deep = b'{"model": "dead", "messages": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with httpx.Client(base_url=dead_gateway.url, timeout=30) as client:
        resp = client.post("/v1/chat/completions", content=deep, headers={"content-type": "application/json"})
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["code"] == "invalid_json" and "nested" in resp.json()["error"]["message"]
        assert client.get("/health").status_code == 200  # same keep-alive connection


def test_a_502_names_no_upstream_url(dead_gateway):
    resp = httpx.post(f"{dead_gateway.url}/v1/chat/completions", json={"model": "dead", "messages": ASK}, timeout=30)
    assert resp.status_code == 502
    error = resp.json()["error"]
    assert error["code"] == "upstream_error" and "student" in error["message"]
    assert "127.0.0.1" not in resp.text and "http" not in resp.text and "gone" not in resp.text
    streamed = httpx.post(f"{dead_gateway.url}/v1/chat/completions", timeout=30,
                          json={"model": "dead", "messages": ASK, "stream": True})  # fmt: skip
    assert streamed.status_code == 502 and "127.0.0.1" not in streamed.text
    health = httpx.get(f"{dead_gateway.url}/health").text  # no key needed: it must not map the upstreams
    assert "127.0.0.1" not in health and "http" not in health


def test_pii_and_secrets_never_reach_the_traffic_log(dead_gateway):
    secret = "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"
    said = [{"role": "user", "content": f"I am jane.doe@example.com, my key is {secret}. Email shop@riverbend.example?"}]
    resp = httpx.post(f"{dead_gateway.url}/v1/chat/completions", json={"model": "dead", "messages": said}, timeout=30)
    assert resp.status_code == 502
    rid = resp.headers.get("x-protege-id")
    rows = sqlite3.connect(dead_gateway.project.paths.traffic_db).execute("SELECT id, messages, guard FROM requests").fetchall()
    row = next(r for r in rows if "EMAIL" in r[1])
    assert rid is None or row[0] == rid
    stored = row[1] + (row[2] or "")
    assert "jane.doe@example.com" not in stored and secret not in stored
    assert "[EMAIL]" in row[1] and "[SECRET]" in row[1]
    assert "shop@riverbend.example" in row[1]  # the owner's published address is not private data
    assert json.loads(row[2])["redacted"] == {"EMAIL": 1, "SECRET": 1}
    raw = dead_gateway.project.paths.traffic_db.read_bytes()
    wal = dead_gateway.project.paths.traffic_db.with_name("traffic.db-wal")
    raw += wal.read_bytes() if wal.is_file() else b""
    assert b"jane.doe" not in raw and secret.encode() not in raw


def test_redaction_can_be_turned_off_by_the_owner(tmp_path):
    project = dead_project(tmp_path / "raw", "raw", guard={"redact_pii": False})
    gw = start_gateway([project])
    try:
        said = [{"role": "user", "content": "I am jane.doe@example.com"}]
        assert httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "raw", "messages": said}, timeout=30).status_code == 502
    finally:
        gw.stop()
    stored = sqlite3.connect(project.paths.traffic_db).execute("SELECT messages FROM requests").fetchone()[0]
    assert "jane.doe@example.com" in stored


def test_a_run_without_its_adapter_is_refused_not_served_as_the_base(tmp_path):
    project = dead_project(tmp_path / "half", "half")
    run = project.paths.model_run("run-1")
    run.mkdir(parents=True)
    (project.paths.models / "LATEST").write_text("run-1\n")
    with pytest.raises(ProtegeError, match="adapter.gguf") as info:
        start_gateway([project])
    assert "protege train" in str(info.value)
