"""The gateway's key policy over the real HTTP stack (FastAPI app through httpx's ASGI transport).

No model is needed: /v1/models and the edge of /v1/chat/completions answer before any agent.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import yaml

from protege.project import Project
from protege.serve.app import create_app
from protege.serve.keys import KeyStore


def project(root, name: str = "shop") -> Project:
    (root / "docs").mkdir(parents=True)
    (root / "protege.yaml").write_text(yaml.safe_dump({"name": name}))
    return Project.load(root)


def get(app, path: str, key: str | None = None, client: str = "10.0.0.1") -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(client, 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
            headers = {"authorization": f"Bearer {key}"} if key else {}
            return await c.get(path, headers=headers)

    return asyncio.run(go())


def test_revoking_the_last_key_never_opens_the_gateway(tmp_path):
    p = project(tmp_path / "shop")
    store = KeyStore(p.paths.keys_db)
    key, record = store.create("only")
    app = create_app([p])
    assert get(app, "/v1/models", key).status_code == 200
    assert get(app, "/v1/models").status_code == 401

    store.revoke(record.id)
    time.sleep(5.2)  # longer than any key cache
    assert get(app, "/v1/models").status_code == 401
    assert get(app, "/v1/models", key).status_code == 401


def test_an_exposed_gateway_requires_keys_even_with_none_created(tmp_path):
    p = project(tmp_path / "shop")
    closed = create_app([p], exposed=True)
    refused = get(closed, "/v1/models")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "missing_api_key"
    assert get(create_app([p]), "/v1/models").status_code == 200  # loopback, no keys: open


def test_a_key_created_while_running_turns_keys_on_never_off(tmp_path):
    p = project(tmp_path / "shop")
    app = create_app([p])
    assert get(app, "/v1/models").status_code == 200
    key, record = KeyStore(p.paths.keys_db).create("late")
    time.sleep(5.2)
    assert get(app, "/v1/models").status_code == 401
    assert get(app, "/v1/models", key).status_code == 200


def test_failed_key_attempts_are_throttled_per_address(tmp_path):
    p = project(tmp_path / "shop")
    key, _ = KeyStore(p.paths.keys_db).create("good")
    app = create_app([p])
    codes = [get(app, "/v1/models", f"pk-abcd1234-guess{i}").status_code for i in range(12)]
    assert codes[:10] == [401] * 10
    throttled = get(app, "/v1/models", "pk-abcd1234-guess-more")
    assert throttled.status_code == 429 and throttled.json()["error"]["code"] == "too_many_failed_keys"
    assert int(throttled.headers["retry-after"]) >= 1
    # Even the right key waits from that address; another address is not affected.
    assert get(app, "/v1/models", key).status_code == 429
    assert get(app, "/v1/models", key, client="10.0.0.2").status_code == 200


def test_a_corrupt_keys_db_fails_closed(tmp_path):
    p = project(tmp_path / "shop")
    KeyStore(p.paths.keys_db).create("x")
    app = create_app([p])
    p.paths.keys_db.write_bytes(b"this is not a database" * 100)
    time.sleep(5.2)
    resp = get(app, "/v1/models", "pk-abcd1234-secret")
    assert resp.status_code == 503 and resp.json()["error"]["code"] == "auth_unavailable"
    assert "keys.db" not in resp.text  # the file is named in the server's log, not to clients


@pytest.mark.parametrize("exposed", [False, True])
def test_a_corrupt_keys_db_at_start_is_one_clear_error(tmp_path, exposed):
    from protege.errors import ProtegeError

    p = project(tmp_path / "shop")
    p.paths.keys_db.parent.mkdir(parents=True)
    p.paths.keys_db.write_bytes(b"garbage" * 1000)
    with pytest.raises(ProtegeError, match="keys.db") as info:
        create_app([p], exposed=exposed)
    assert "protege keys create" in str(info.value)
