"""A SQLite cache of model calls keyed by the full request: a re-run costs nothing and an
interrupted stage resumes where it stopped (every finished call is already on disk)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from protege.errors import ProtegeError

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS probes (
    endpoint TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (endpoint, name)
);
"""


def request_key(endpoint: str, request: dict[str, Any]) -> str:
    blob = json.dumps({"endpoint": endpoint, "request": request}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ProtegeError(
                f"{self.path}: the response cache cannot be read ({exc})",
                hint=f"move it aside (mv {self.path} {self.path}.bad); calls it held are made again",
            ) from None

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT response FROM calls WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, endpoint: str, request: dict[str, Any], response: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO calls VALUES (?,?,?,?,?)",
                (key, endpoint, json.dumps(request, ensure_ascii=False), json.dumps(response, ensure_ascii=False), time.time()),
            )
            self._db.commit()

    def get_probe(self, endpoint: str, name: str) -> Any:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM probes WHERE endpoint=? AND name=?", (endpoint, name)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def put_probe(self, endpoint: str, name: str, value: Any) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO probes VALUES (?,?,?)", (endpoint, name, json.dumps(value)))
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
