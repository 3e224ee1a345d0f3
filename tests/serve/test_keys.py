"""API keys: shown once, stored only as a hash, verified in constant time, revocable."""

from __future__ import annotations

import pytest

from protege.errors import ProtegeError
from protege.serve.keys import KeyStore


def test_key_is_stored_hashed_and_verifies(tmp_path):
    store = KeyStore(tmp_path / "keys.db")
    key, record = store.create("ci", rate_limit_per_minute=5)
    assert key.startswith(f"pk-{record.id}-")
    secret = key.split("-", 2)[2]
    raw = (tmp_path / "keys.db").read_bytes()
    assert secret.encode() not in raw and key.encode() not in raw
    assert store.verify(key).id == record.id
    assert store.verify(key + "x") is None
    assert store.verify(f"pk-{record.id}-wrong") is None
    assert store.verify("sk-not-ours") is None
    assert [k.rate_limit_per_minute for k in store.list()] == [5]


def test_revoked_key_stops_verifying(tmp_path):
    store = KeyStore(tmp_path / "keys.db")
    key, record = store.create("a")
    other, _ = store.create("b")
    assert store.has_active()
    assert store.revoke(record.id).revoked is not None
    assert store.verify(key) is None
    assert store.verify(other) is not None
    with pytest.raises(ProtegeError, match="already revoked"):
        store.revoke(record.id)
    with pytest.raises(ProtegeError, match="no key with id"):
        store.revoke("nope")


def test_no_keys_file_means_no_active_keys(tmp_path):
    store = KeyStore(tmp_path / "absent.db")
    assert store.list() == [] and not store.has_active()
    assert store.verify("pk-abc-def") is None


def test_a_keys_db_from_before_key_kinds_keeps_working(tmp_path):
    import sqlite3

    path = tmp_path / "keys.db"
    key, record = KeyStore(path).create("old")
    with sqlite3.connect(path) as conn:  # back to the table as it was before kinds and origins
        conn.executescript(
            "CREATE TABLE old AS SELECT id, hash, name, created, revoked, rate_limit_per_minute FROM keys;"
            "DROP TABLE keys; ALTER TABLE old RENAME TO keys;"
        )
    store = KeyStore(path)
    assert store.verify(key) == record  # an api key, as every key was then
    assert store.has_active() and not store.has_admin() and store.widget_origins() == set()
    store.create("site", kind="widget", origin="https://shop.example")
    assert store.widget_origins() == {"https://shop.example"}
