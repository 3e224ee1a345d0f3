"""API keys for the gateway, stored hashed in `artifacts/keys.db`.

A key reads `pk-<id>-<secret>`. Only the id and sha256(id:secret) are stored, so the key is
shown once, at creation, and can never be read back; the id is what logs and metrics name.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from protege.errors import ProtegeError

PREFIX = "pk-"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    revoked REAL,
    rate_limit_per_minute INTEGER
)
"""


@dataclass(frozen=True)
class KeyRecord:
    id: str
    name: str
    created: float
    revoked: float | None
    rate_limit_per_minute: int | None

    @property
    def active(self) -> bool:
        return self.revoked is None


def _digest(key_id: str, secret: str) -> str:
    return hashlib.sha256(f"{key_id}:{secret}".encode()).hexdigest()


def split_key(key: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed key, else None."""
    if not key.startswith(PREFIX):
        return None
    key_id, sep, secret = key[len(PREFIX) :].partition("-")
    if not sep or not key_id or not secret:
        return None
    return key_id, secret


class KeyStore:
    """The keys of one project. Each call opens its own short connection (safe across threads)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One transaction; a damaged or unreadable keys.db is one ProtegeError naming it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10)
            try:
                with conn:
                    conn.execute(_SCHEMA)
                    yield conn
            finally:
                conn.close()
        except (sqlite3.DatabaseError, OSError) as exc:
            raise ProtegeError(
                f"{self.path}: the API key store cannot be read ({exc})",
                hint=f"move it aside (mv {self.path} {self.path}.bad) and create new keys with `protege keys create`",
            ) from None

    def create(self, name: str, rate_limit_per_minute: int | None = None) -> tuple[str, KeyRecord]:
        """A new key and its record. The key itself is returned here and never again."""
        if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
            raise ProtegeError(f"rate limit must be at least 1 request per minute (got {rate_limit_per_minute})")
        key_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(24).replace("-", "_")
        record = KeyRecord(key_id, name, time.time(), None, rate_limit_per_minute)
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO keys (id, hash, name, created, revoked, rate_limit_per_minute) VALUES (?,?,?,?,?,?)",
                (key_id, _digest(key_id, secret), name, record.created, None, rate_limit_per_minute),
            )
        return f"{PREFIX}{key_id}-{secret}", record

    def list(self) -> list[KeyRecord]:
        if not self.path.is_file():
            return []
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id, name, created, revoked, rate_limit_per_minute FROM keys ORDER BY created"
            ).fetchall()
        return [KeyRecord(*row) for row in rows]

    def revoke(self, key_id: str) -> KeyRecord:
        with self._connect() as conn:
            cur = conn.execute("UPDATE keys SET revoked = ? WHERE id = ? AND revoked IS NULL", (time.time(), key_id))
            if cur.rowcount == 0:
                known = conn.execute("SELECT revoked FROM keys WHERE id = ?", (key_id,)).fetchone()
                if known is None:
                    raise ProtegeError(f"no key with id '{key_id}' in {self.path}", hint="see `protege keys list`")
                raise ProtegeError(f"key '{key_id}' is already revoked")
        return next(k for k in self.list() if k.id == key_id)

    def has_active(self) -> bool:
        return any(k.active for k in self.list())

    def has_keys(self) -> bool:
        """Whether a key was ever created here (revoked ones included)."""
        return bool(self.list())

    def verify(self, key: str) -> KeyRecord | None:
        """The record of a valid, unrevoked key; None for anything else."""
        parts = split_key(key)
        if parts is None or not self.path.is_file():
            return None
        key_id, secret = parts
        with self._connect() as conn:
            row = conn.execute(
                "SELECT hash, name, created, revoked, rate_limit_per_minute FROM keys WHERE id = ?", (key_id,)
            ).fetchone()
        if row is None or row[3] is not None:
            return None
        if not hmac.compare_digest(row[0], _digest(key_id, secret)):
            return None
        return KeyRecord(key_id, row[1], row[2], row[3], row[4])
