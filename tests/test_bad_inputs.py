"""Bad input, as a new user gives it: the CLI, protege.yaml, documents, corrupt stores, HTTP requests.

Every case asserts the exit code (or HTTP status), one readable error line with no traceback,
and that no file that existed before was changed or lost. The CLI runs in-process through the
real entry point (`protege.cli.main`); the HTTP cases go through a real uvicorn gateway whose
upstream models are on a closed port (no model is needed to reject a bad request).
"""

from __future__ import annotations

import hashlib
import json
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from protege.cli import main

sys.path.insert(0, str(Path(__file__).parent / "serve"))
from gateway_kit import start_gateway  # noqa: E402

DEAD = "openai:gone@http://127.0.0.1:9/v1"  # nothing listens on the discard port
GARBAGE = b"SQLite format 2\x00 this is not a database " * 64
ROW = {"id": "q-0000000001", "messages": [{"role": "user", "content": "When do you open?"},
                                         {"role": "assistant", "content": "At nine."}]}  # fmt: skip


def base_project(root: Path, **config) -> Path:
    (root / "docs").mkdir(parents=True, exist_ok=True)
    (root / "docs" / "hours.md").write_text("# Hours\n\nThe Riverbend store opens 9:00-18:00 on weekdays.\n")
    (root / "protege.yaml").write_text(yaml.safe_dump({"name": "shop", "teacher": DEAD, "student": DEAD, **config}))
    return root


def artifact(root: Path, rel: str, content: bytes | str) -> Path:
    path = root / "artifacts" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def config(root: Path, text: str) -> None:
    (root / "protege.yaml").write_text(text)


def broken_jsonl(root: Path) -> None:
    lines = [json.dumps({"text": "Low and slow."}), "{oops", "[1]", json.dumps({"text": ""}), "no", "{", "}",
             json.dumps({"text": "Pantry math."})]  # fmt: skip
    (root / "docs" / "posts.jsonl").write_text("\n".join(lines))


def broken_train(root: Path) -> None:
    rows = [json.dumps(ROW), "{", json.dumps({"messages": []}), json.dumps({**ROW, "id": "q-2"}), "null",
            json.dumps({"messages": [{"role": "user", "content": "hi"}]}), "[]", json.dumps({"messages": "x"})]  # fmt: skip
    artifact(root, "data/train.jsonl", "\n".join(rows) + "\n")


def damaged_run(root: Path) -> None:
    artifact(root, "data/eval.jsonl", json.dumps(ROW) + "\n")
    artifact(root, "models/LATEST", "run-1\n")
    artifact(root, "models/run-1/adapter.gguf", b"")
    artifact(root, "models/run-1/run.json", "{half a file")


def damaged_results(root: Path) -> None:
    for run in ("a", "b"):
        artifact(root, f"reports/{run}/summary.json", json.dumps({"n": 1}))
        artifact(root, f"reports/{run}/results.jsonl", '{"id": "q-1", "answers": {\n')


def listening(holder: list) -> int:
    sock = socket.create_server(("127.0.0.1", 0))
    holder.append(sock)  # kept open for the case: the port is taken
    return sock.getsockname()[1]


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]  # "{p}": the project folder, "{tmp}": the test's folder, "{port}": a taken port
    says: str  # in the one error line (or, for code 0, in one line of the output)
    code: int = 2
    setup: Callable[[Path], None] | None = None


def same_name_twin(root: Path) -> None:
    base_project(root.parent / "twin")


CASES: dict[str, Case] = {
    # The command line itself.
    "unknown command": Case(("nope",), "No such command 'nope'"),
    "option of the wrong type": Case(("serve", "{p}", "--port", "abc"), "Invalid value for '--port'"),
    "port out of range": Case(("serve", "{p}", "--port", "99999"), "'--port': Input should be less than or equal to 65535"),
    "port in use": Case(("serve", "{p}", "--port", "{port}"), "cannot listen on 127.0.0.1:"),
    "public address without keys": Case(("serve", "{p}", "--host", "0.0.0.0", "--port", "0"), "refusing to serve on 0.0.0.0"),
    "two projects with one name": Case(("serve", "{p}", "{tmp}/twin"), "both named 'shop'", setup=same_name_twin),
    "--db that is not a URL": Case(("serve", "{p}", "--db", "traffic", "--port", "0"), "is not a database URL"),
    "negative --extra": Case(("route", "fit", "{p}", "--extra", "-1"), "--extra must be 0 or more"),
    "rate limit of zero": Case(("keys", "create", "{p}", "--rate-limit", "0"), "at least 1 request per minute"),
    "revoking an unknown key": Case(("keys", "revoke", "nope", "{p}"), "no key with id 'nope'"),
    "guard check of nothing": Case(("guard", "check", ""), "nothing to check: the text is empty"),
    "guard check of a missing file": Case(("guard", "check", "--file", "{tmp}/none.txt"), "none.txt: file not found"),
    "guard check of text and file": Case(("guard", "check", "hi", "--file", "{tmp}/x"), "either as an argument or with --file"),
    "chat with an hf: model": Case(("chat", "hf:HuggingFaceTB/SmolLM2-135M", "-m", "hi"), "hf: references are for training"),
    "chat with a missing gguf": Case(("chat", "gguf:{tmp}/none.gguf", "-m", "hi"), "file not found"),
    # init.
    "init on a file": Case(("init", "{p}/docs/hours.md"), "is a file; `protege init` needs a folder"),
    "init over a project": Case(("init", "{p}"), "already exists"),
    "init with missing docs": Case(("init", "{tmp}/new", "--docs", "{tmp}/none"), "--docs: not found"),
    "init with a bad teacher": Case(("init", "{tmp}/new", "--teacher", "gpt-4"), "no known scheme"),
    "init with a bad name": Case(("init", "{tmp}/new", "--name", "bad name!"), "'name'"),
    # protege.yaml.
    "no protege.yaml": Case(("synth", "{tmp}"), "no protege.yaml here"),
    "invalid YAML": Case(("synth", "{p}", "--dry-run"), "not valid YAML", setup=lambda r: config(r, "name: x\n  bad: indent\n")),
    "duplicate key": Case(("synth", "{p}", "--dry-run"), "duplicate key 'teacher'",
                          setup=lambda r: config(r, f"name: shop\nteacher: {DEAD}\nteacher: {DEAD}\n")),
    "unknown key": Case(("synth", "{p}", "--dry-run"), "unknown key 'techer'", setup=lambda r: config(r, "name: x\ntecher: x\n")),
    "overlap past the chunk": Case(("synth", "{p}", "--dry-run"), "chunk_overlap (300) must be at most",
                                   setup=lambda r: config(r, "name: x\nsynth: {chunk_tokens: 300, chunk_overlap: 300}\n")),
    "URL without a host": Case(("synth", "{p}", "--dry-run"), "names no host", setup=lambda r: config(r, "name: x\nteacher: openai:x@http://\n")),
    "protege.yaml not UTF-8": Case(("synth", "{p}", "--dry-run"), "not UTF-8",
                                   setup=lambda r: (r / "protege.yaml").write_bytes(b"name: caf\xe9\n")),
    "missing gguf found in the dry run": Case(("synth", "{p}", "--dry-run"), "file not found",
                                              setup=lambda r: config(r, f"name: shop\nteacher: {DEAD}\nstudent: gguf:{r}/none.gguf\n")),
    "missing gguf before protege run": Case(("run", "{p}"), "model(s) cannot be used",
                                            setup=lambda r: config(r, f"name: shop\nteacher: gguf:{r}/t.gguf\nstudent: {DEAD}\n")),
    # Documents.
    "docs folder missing": Case(("synth", "{p}", "--dry-run"), "'docs': folder not found",
                                setup=lambda r: config(r, f"name: shop\ndocs: nowhere\nteacher: {DEAD}\nstudent: {DEAD}\n")),
    "only a file of NUL bytes": Case(("synth", "{p}", "--dry-run"), "zeros.txt: binary file (NUL bytes)",
                                     setup=lambda r: ((r / "docs" / "hours.md").unlink(), (r / "docs" / "zeros.txt").write_bytes(b"\0" * 999))),
    "a .jsonl with 6 of 8 rows broken": Case(("synth", "{p}", "--dry-run"), "6 of 8 rows unreadable", code=0, setup=broken_jsonl),
    "an image among the docs": Case(("synth", "{p}", "--dry-run"), "photo.png: unsupported file type", code=0,
                                    setup=lambda r: (r / "docs" / "photo.png").write_bytes(b"\x89PNG\r\n")),
    "train rows broken": Case(("train", "{p}"), "6 bad row(s): line 2: not JSON", setup=broken_train),
    "eval without a held-out set": Case(("eval", "{p}"), "eval.jsonl: file not found"),
    # Damaged stores.
    "corrupt keys.db: keys list": Case(("keys", "list", "{p}"), "keys.db: the API key store cannot be read",
                                       setup=lambda r: artifact(r, "keys.db", GARBAGE)),
    "corrupt keys.db: keys create": Case(("keys", "create", "{p}"), "keys.db: the API key store cannot be read",
                                         setup=lambda r: artifact(r, "keys.db", GARBAGE)),
    "corrupt keys.db: serve": Case(("serve", "{p}", "--port", "0"), "keys.db: the API key store cannot be read",
                                   setup=lambda r: artifact(r, "keys.db", GARBAGE)),
    "corrupt traffic.db: harvest": Case(("harvest", "{p}"), "traffic.db: cannot use the traffic log",
                                        setup=lambda r: artifact(r, "traffic.db", GARBAGE)),
    "corrupt traffic.db: serve": Case(("serve", "{p}", "--port", "0"), "traffic.db: cannot use the traffic log",
                                      setup=lambda r: artifact(r, "traffic.db", GARBAGE)),
    "no traffic log to harvest": Case(("harvest", "{p}"), "no traffic log yet"),
    "corrupt run.json: eval": Case(("eval", "{p}"), "run.json: not valid JSON", setup=damaged_run),
    "corrupt results.jsonl: eval --compare": Case(("eval", "{p}", "--compare", "a", "b"), "results.jsonl:1: not valid JSON",
                                                  setup=damaged_results),
    "corrupt cache.db: synth": Case(("synth", "{p}"), "cache.db: the response cache cannot be read",
                                    setup=lambda r: artifact(r, "cache.db", GARBAGE)),
    "corrupt router.json: route curve": Case(("route", "curve", "{p}"), "router.json: unreadable router file",
                                             setup=lambda r: artifact(r, "router/router.json", "{not json")),
    "corrupt router.json: serve": Case(("serve", "{p}", "--port", "0"), "router.json: unreadable router file",
                                       setup=lambda r: artifact(r, "router/router.json", "{not json")),
    "LATEST names a run without its adapter: serve": Case(("serve", "{p}", "--port", "0"), "adapter.gguf: not found",
                                                          setup=lambda r: artifact(r, "models/LATEST", "run-1\n")),
    "a missing gguf student: serve start-up": Case(("serve", "{p}", "--port", "0"), "file not found",
                                                   setup=lambda r: config(r, f"name: shop\nteacher: {DEAD}\nstudent: gguf:{r}/s.gguf\n")),
}


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_loses_nothing(name, tmp_path, capsys):
    case = CASES[name]
    root = base_project(tmp_path / "shop")
    held: list = []
    if case.setup:
        case.setup(root)
    before = snapshot(tmp_path)
    fill = {"p": str(root), "tmp": str(tmp_path)}
    argv = [a.format(**fill, port=listening(held) if "{port}" in a else 0) for a in case.argv]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    for sock in held:
        sock.close()
    out, err = capsys.readouterr()
    assert exit_info.value.code == case.code, f"{name}: exit {exit_info.value.code}\n{err[-1500:]}"
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if case.says in line]
    assert len(lines) == 1, f"{name}: {case.says!r} not in exactly one line of:\n{err[-1500:]}"
    if case.code:
        assert lines[0].startswith("error: ") and [ln for ln in err.splitlines() if ln.startswith("error:")] == lines
    after = snapshot(tmp_path)
    changed = [f for f, digest in before.items() if after.get(f) != digest]
    assert not changed, f"{name}: changed or lost {changed}"


# -- HTTP ---------------------------------------------------------------------------------------

ASK = [{"role": "user", "content": "When do you open?"}]


@dataclass(frozen=True)
class Request:
    status: int
    code: str
    body: object = None  # JSON (dict/list), raw bytes, or a callable making a chunked body
    path: str = "/v1/chat/completions"
    method: str = "POST"
    auth: str | None = "key"  # "key": the gateway's key; None: no header; anything else: sent as is


def chat(**fields) -> dict:
    return {"model": "shop", "messages": ASK, **fields}


BIG = json.dumps(chat(messages=[{"role": "user", "content": "x" * 1_100_000}])).encode()

HTTP: dict[str, Request] = {
    "no API key": Request(401, "missing_api_key", chat(), auth=None),
    "a wrong API key": Request(401, "invalid_api_key", chat(), auth="Bearer pk-abcd1234-wrong"),
    "a bearer with no key": Request(401, "missing_api_key", chat(), auth="Bearer"),
    "a key in the wrong scheme": Request(401, "missing_api_key", chat(), auth="Basic cGstYWJjOmRlZg=="),
    "an empty body": Request(400, "invalid_json", b""),
    "truncated JSON": Request(400, "invalid_json", b'{"model": "shop", "messages": ['),
    "a JSON array": Request(400, "invalid_json", b"[1, 2]"),
    "200,000 levels of nesting": Request(400, "invalid_json", b'{"model": "shop", "messages": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"),
    "bytes that are not UTF-8": Request(400, "invalid_json", b'{"model": "\xff\xfe"}'),
    "no model": Request(400, "invalid_request", {"messages": ASK}),
    "no messages": Request(400, "invalid_request", chat(messages=[])),
    "messages as a string": Request(400, "invalid_request", chat(messages="hi")),
    "a message without a role": Request(400, "invalid_request", chat(messages=[{"content": "hi"}])),
    "only a system message": Request(400, "invalid_request", chat(messages=[{"role": "system", "content": "hi"}])),
    "n = 2": Request(400, "invalid_request", chat(n=2)),
    "temperature 5": Request(400, "invalid_request", chat(temperature=5)),
    "max_tokens 0": Request(400, "invalid_request", chat(max_tokens=0)),
    "five stop sequences": Request(400, "invalid_request", chat(stop=list("abcde"))),
    "an image part": Request(400, "invalid_request", chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}])),
    "stream as a list": Request(400, "invalid_request", chat(stream=[1])),
    "an unknown model": Request(404, "model_not_found", chat(model="nope")),
    "a body over the limit": Request(413, "request_too_large", BIG),
    "a chunked body over the limit": Request(413, "request_too_large", lambda: iter([BIG[:600_000], BIG[600_000:]])),
    "a rating of 5": Request(400, "invalid_request", {"id": "x", "rating": 5}, path="/v1/feedback"),
    "a rating for no request": Request(404, "not_found", {"id": "nope", "rating": 1}, path="/v1/feedback"),
    "feedback with an unknown field": Request(400, "invalid_request", {"id": "x", "rating": 1, "stars": 3}, path="/v1/feedback"),
    "an unknown path": Request(404, "not_found", path="/v1/nope", method="GET"),
    "the wrong method": Request(405, "invalid_request", path="/v1/models"),
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    from protege.project import Project
    from protege.serve.keys import KeyStore

    root = base_project(tmp_path_factory.mktemp("http") / "shop")
    project = Project.load(root)
    key, _ = KeyStore(project.paths.keys_db).create("tests")
    gw = start_gateway([project], exposed=True)
    gw.key, gw.root = key, root  # type: ignore[attr-defined]
    with httpx.Client(base_url=gw.url, timeout=60) as client:
        gw.client = client  # type: ignore[attr-defined]  # one keep-alive connection for every case
        yield gw
    gw.stop()


@pytest.mark.parametrize("name", list(HTTP))
def test_bad_request_is_one_openai_error_and_loses_nothing(name, gateway, capsys):
    r = HTTP[name]
    logs = {"artifacts/traffic.db", "artifacts/traffic.db-wal", "artifacts/traffic.db-shm"}
    before = {f: d for f, d in snapshot(gateway.root).items() if f not in logs}
    headers = {"content-type": "application/json"}
    if r.auth == "key":
        headers["authorization"] = f"Bearer {gateway.key}"
    elif r.auth is not None:
        headers["authorization"] = r.auth
    body = r.body() if callable(r.body) else r.body
    content = body if isinstance(body, bytes) or body is None or callable(r.body) else json.dumps(body).encode()
    resp = gateway.client.request(r.method, r.path, content=content, headers=headers)
    assert resp.status_code == r.status, f"{name}: {resp.text[:500]}"
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == r.code
    assert error["message"] and "\n" not in error["message"] and "Traceback" not in resp.text
    assert "Traceback" not in "".join(capsys.readouterr())
    assert gateway.client.get("/health").status_code == 200  # the connection is still good
    after = snapshot(gateway.root)
    assert all(after.get(f) == d for f, d in before.items()), f"{name}: a file changed"


def test_the_table_is_big_enough():
    assert len(CASES) + len(HTTP) >= 40
