"""API keys for the gateway, stored hashed in `artifacts/keys.db`.

A key reads `pk-<id>-<secret>`. Only the id and sha256(id:secret) are stored, so the key is
shown once, at creation, and can never be read back; the id is what logs and metrics name.

Three kinds: `api` (the OpenAI-compatible API, for the owner's apps), `widget` (sits in a web
page's source: chat and feedback with its own agent, only from its `origin`) and `admin` (the
owner's page, /admin, and nothing of the API). Only api and widget keys turn the API's keys on.
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
from typing import Literal
from urllib.parse import urlsplit

from protege.errors import ProtegeError

PREFIX = "pk-"
KINDS = ("api", "widget", "admin")
API_KINDS = ("api", "widget")  # the kinds that open the API (and so make keys required)
WIDGET_VISITOR_PER_MINUTE = 20  # requests per minute per visitor of a widget key without its own limit
Kind = Literal["api", "widget", "admin"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    revoked REAL,
    rate_limit_per_minute INTEGER,
    kind TEXT NOT NULL DEFAULT 'api',
    origin TEXT
)
"""
# keys.db files made before key kinds existed get the two columns (their keys are api keys).
_ADDED_COLUMNS = {"kind": "ALTER TABLE keys ADD COLUMN kind TEXT NOT NULL DEFAULT 'api'",
                  "origin": "ALTER TABLE keys ADD COLUMN origin TEXT"}  # fmt: skip
_COLUMNS = "id, name, created, revoked, rate_limit_per_minute, kind, origin"


@dataclass(frozen=True)
class KeyRecord:
    id: str
    name: str
    created: float
    revoked: float | None
    rate_limit_per_minute: int | None  # for a widget key: per visitor (client address)
    kind: Kind = "api"
    origin: str | None = None  # a widget key's web origin, e.g. https://shop.example

    @property
    def active(self) -> bool:
        return self.revoked is None


def _digest(key_id: str, secret: str) -> str:
    return hashlib.sha256(f"{key_id}:{secret}".encode()).hexdigest()


def normalize_origin(text: str) -> str:
    """A web origin as browsers send it in the Origin header: scheme://host[:port], lower case,
    no default port, no path. Anything else is a ProtegeError naming the problem."""
    parts = urlsplit(text.strip())
    problem = None
    if parts.scheme not in ("http", "https"):
        problem = "it must start with https:// (or http:// for a local test page)"
    elif not parts.hostname or parts.username or parts.password:
        problem = "it needs a host name and nothing before it"
    elif parts.path not in ("", "/") or parts.query or parts.fragment:
        problem = "an origin has no path, query or fragment"
    if problem is None:
        try:
            port = parts.port
        except ValueError:
            problem = "its port is not a number from 0 to 65535"
    if problem is not None:
        raise ProtegeError(f"--origin '{text}' is not a web origin: {problem} (e.g. https://shop.example)")
    hostname = parts.hostname or ""
    host = hostname if ":" not in hostname else f"[{hostname}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


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
                    have = {row[1] for row in conn.execute("PRAGMA table_info(keys)")}
                    for column, alter in _ADDED_COLUMNS.items():
                        if column not in have:
                            conn.execute(alter)
                    yield conn
            finally:
                conn.close()
        except (sqlite3.DatabaseError, OSError) as exc:
            raise ProtegeError(
                f"{self.path}: the API key store cannot be read ({exc})",
                hint=f"move it aside (mv {self.path} {self.path}.bad) and create new keys with `protege keys create`",
            ) from None

    def create(self, name: str, rate_limit_per_minute: int | None = None, *, kind: Kind = "api",
               origin: str | None = None) -> tuple[str, KeyRecord]:  # fmt: skip
        """A new key and its record. The key itself is returned here and never again."""
        if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
            raise ProtegeError(f"rate limit must be at least 1 request per minute (got {rate_limit_per_minute})")
        if kind not in KINDS:
            raise ProtegeError(f"unknown key kind '{kind}' (one of {', '.join(KINDS)})")
        if (kind == "widget") != (origin is not None):
            raise ProtegeError("a widget key needs --origin, the web site it works from (e.g. https://shop.example)"
                               if kind == "widget" else "--origin is only for widget keys (--widget)")  # fmt: skip
        origin = normalize_origin(origin) if origin is not None else None
        key_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(24).replace("-", "_")
        record = KeyRecord(key_id, name, time.time(), None, rate_limit_per_minute, kind, origin)
        with self._connect() as conn:
            conn.execute(
                f"INSERT INTO keys (hash, {_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
                (_digest(key_id, secret), key_id, name, record.created, None, rate_limit_per_minute, kind, origin),
            )
        return f"{PREFIX}{key_id}-{secret}", record

    def list(self) -> list[KeyRecord]:
        if not self.path.is_file():
            return []
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM keys ORDER BY created").fetchall()
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
        """Whether an active key opens the API here (admin keys open only /admin)."""
        return any(k.active and k.kind in API_KINDS for k in self.list())

    def has_keys(self) -> bool:
        """Whether a key that opens the API was ever created here (revoked ones included)."""
        return any(k.kind in API_KINDS for k in self.list())

    def has_admin(self) -> bool:
        return any(k.active and k.kind == "admin" for k in self.list())

    def widget_origins(self) -> set[str]:
        """The origins of the active widget keys: the web pages allowed to call the gateway."""
        return {k.origin for k in self.list() if k.active and k.kind == "widget" and k.origin}

    def verify(self, key: str) -> KeyRecord | None:
        """The record of a valid, unrevoked key; None for anything else."""
        parts = split_key(key)
        if parts is None or not self.path.is_file():
            return None
        key_id, secret = parts
        with self._connect() as conn:
            row = conn.execute(f"SELECT hash, {_COLUMNS} FROM keys WHERE id = ?", (key_id,)).fetchone()
        if row is None or row[4] is not None:
            return None
        if not hmac.compare_digest(row[0], _digest(key_id, secret)):
            return None
        return KeyRecord(*row[1:])
