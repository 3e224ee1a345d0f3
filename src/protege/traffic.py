"""The traffic log: every chat request the gateway answered, in SQLite (WAL) or PostgreSQL.

One code path (SQLAlchemy Core) for both. Writes go through one background thread that inserts
in batches (a group commit), and order is kept. `record()` returns a future that is done once
the row is committed: the gateway answers a request only after its row is durable, so killing
the gateway never loses a request it acknowledged. `flush()` waits for everything queued.

Messages and answers are redacted (`redact_record`) before they are queued: no e-mail address,
phone number or pasted secret reaches the disk, only its kind in brackets ("[EMAIL]").
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Collection
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from protege.errors import ProtegeError
from protege.guard.rules import PII_KINDS

metadata = sa.MetaData()

requests_table = sa.Table(
    "requests",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("created", sa.Float, nullable=False, index=True),
    sa.Column("project", sa.String(128), nullable=False),
    sa.Column("model", sa.String(160), nullable=False),
    sa.Column("route", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("messages", sa.Text, nullable=False),
    sa.Column("answer", sa.Text),
    sa.Column("latency_s", sa.Float),
    sa.Column("prompt_tokens", sa.Integer),
    sa.Column("completion_tokens", sa.Integer),
    sa.Column("cost_usd", sa.Float),
    sa.Column("guard", sa.Text),
    sa.Column("key_id", sa.String(32)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("rating", sa.Integer),
    sa.Column("comment", sa.Text),
)


@dataclass
class TrafficRecord:
    """One answered request. `route` is who answered: student, teacher, or guard (a refusal)."""

    id: str
    project: str
    model: str
    route: str
    reason: str
    messages: list[dict[str, Any]]
    answer: str | None
    latency_s: float
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float
    guard: dict[str, Any] | None
    key_id: str | None
    status: str
    created: float = field(default_factory=time.time)

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id, "created": self.created, "project": self.project, "model": self.model,
            "route": self.route, "reason": self.reason, "messages": json.dumps(self.messages, ensure_ascii=False),
            "answer": self.answer, "latency_s": self.latency_s, "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "cost_usd": self.cost_usd,
            "guard": json.dumps(self.guard) if self.guard is not None else None, "key_id": self.key_id,
            "status": self.status, "rating": None, "comment": None,
        }  # fmt: skip


def redact_record(rec: TrafficRecord, keep: Collection[str] = ()) -> TrafficRecord:
    """The record with PII and secrets in its messages and answer replaced by their kinds.

    What was redacted is kept as counts per kind in `guard["redacted"]`, so an owner sees that
    something was taken out, never what. `keep`: the owner's own published contacts.
    """
    from protege.guard import redact

    kinds: dict[str, int] = {}

    def clean(text: str | None) -> str | None:
        if not text:
            return text
        redacted, n = redact(text, keep=keep)
        if n:
            for kind in PII_KINDS:
                added = redacted.count(f"[{kind}]") - text.count(f"[{kind}]")
                if added > 0:
                    kinds[kind] = kinds.get(kind, 0) + added
        return redacted

    messages = [{**m, "content": clean(m.get("content"))} for m in rec.messages]
    answer = clean(rec.answer)
    if not kinds:
        return rec
    return replace(rec, messages=messages, answer=answer, guard={**(rec.guard or {}), "redacted": kinds})


def database_url(db: str | None, default_path: Path) -> str:
    """`--db` as given (postgresql://..., sqlite:///...), or the project's traffic.db."""
    if db:
        if "://" not in db:
            raise ProtegeError(f"--db '{db}' is not a database URL; use e.g. postgresql://user@host/db")
        scheme, rest = db.split("://", 1)
        # SQLAlchemy's plain postgresql:// means psycopg2; the maintained driver is psycopg (3).
        return f"postgresql+psycopg://{rest}" if scheme in ("postgresql", "postgres") else db
    default_path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{default_path}"


def shown(url: str) -> str:
    """A database URL as it may be printed: a SQLite file's path, else the URL without credentials."""
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///")
    scheme, _, rest = url.partition("://")
    return f"{scheme.split('+')[0]}://{rest.rpartition('@')[2]}"


def store_error(url: str, exc: BaseException) -> ProtegeError:
    """A traffic database that cannot be opened or read, as one line saying how to recover."""
    detail = getattr(exc, "orig", None) or exc
    where = shown(url)
    if url.startswith("sqlite:///"):
        hint = f"if the file is damaged, move it aside (mv {where} {where}.bad); protege serve starts a new log"
    else:
        hint = "check that the server is up and the URL, user and database are right"
    return ProtegeError(f"{where}: cannot use the traffic log ({str(detail).strip().splitlines()[0][:200]})", hint=hint)


def make_engine(url: str) -> sa.Engine:
    try:
        engine = sa.create_engine(url, pool_pre_ping=True)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise ProtegeError(f"cannot open traffic database {shown(url)}: {exc}") from None
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _wal(dbapi_conn, _record):  # noqa: ANN001
            # WAL lets `protege harvest` read while the gateway writes; with synchronous=NORMAL a
            # commit survives the process being killed (not a power cut, which would need FULL).
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")
            dbapi_conn.execute("PRAGMA busy_timeout=10000")

    try:
        metadata.create_all(engine)
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise store_error(url, exc) from None
    return engine


class TrafficLog:
    """Append-only request log with a feedback column, written by one background thread."""

    def __init__(self, url: str, batch: int = 256):
        self.url = url
        self.engine = make_engine(url)
        self._queue: queue.Queue[tuple[TrafficRecord, Future] | None] = queue.Queue()
        self._batch = batch
        self.errors = 0
        self._thread = threading.Thread(target=self._writer, name="traffic-log", daemon=True)
        self._thread.start()

    def record(self, rec: TrafficRecord) -> Future:
        """Queue a record; never blocks. The future is True once the row is committed, False if
        the write failed (counted in `errors`; the answer was already given)."""
        done: Future = Future()
        self._queue.put((rec, done))
        return done

    def _writer(self) -> None:
        while True:
            first = self._queue.get()
            items = [first]
            while len(items) < self._batch:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            pending = [i for i in items if i is not None]
            ok = True
            try:
                if pending:
                    with self.engine.begin() as conn:
                        conn.execute(requests_table.insert(), [rec.row() for rec, _ in pending])
            except sa.exc.SQLAlchemyError as exc:
                ok = False
                self.errors += len(pending)
                from protege.console import err

                err.print(f"[red]traffic log:[/] {len(pending)} row(s) not written: {store_error(self.url, exc)}",
                          highlight=False, soft_wrap=True)  # fmt: skip
            finally:
                for _, done in pending:
                    done.set_result(ok)
                for _ in items:
                    self._queue.task_done()
            if None in items:
                return

    def flush(self) -> None:
        self._queue.join()

    def feedback(self, request_id: str, rating: int, comment: str | None) -> bool:
        """Attach a rating (+1/-1) to a logged request; False if no such request."""
        self.flush()
        with self.engine.begin() as conn:
            res = conn.execute(
                requests_table.update()
                .where(requests_table.c.id == request_id)
                .values(rating=rating, comment=comment)
            )
        return res.rowcount > 0

    def get(self, request_id: str) -> dict[str, Any] | None:
        self.flush()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(requests_table).where(requests_table.c.id == request_id)).mappings().first()
        return dict(row) if row else None

    def count(self) -> int:
        self.flush()
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(requests_table)).scalar_one()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)
        self.engine.dispose()


def harvestable(engine: sa.Engine, project: str) -> list[dict[str, Any]]:
    """Requests of a project that the teacher answered, finished well, and no one rated down."""
    t = requests_table
    query = (
        sa.select(t)
        .where(t.c.project == project, t.c.route == "teacher", t.c.status == "ok")
        .where(sa.or_(t.c.rating.is_(None), t.c.rating > 0))
        .order_by(t.c.created)
    )
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]
    except sa.exc.SQLAlchemyError as exc:
        raise store_error(str(engine.url), exc) from None


def answered(engine: sa.Engine, project: str, limit: int) -> list[tuple[str, str]]:
    """(id, messages as JSON) of a project's newest requests a model answered (route student or
    teacher, status ok): what the router is recalibrated on."""
    t = requests_table
    query = (
        sa.select(t.c.id, t.c.messages)
        .where(t.c.project == project, t.c.route.in_(("student", "teacher")), t.c.status == "ok")
        .order_by(t.c.created.desc())
        .limit(limit)
    )
    try:
        with engine.connect() as conn:
            return [(r.id, r.messages) for r in conn.execute(query)]
    except sa.exc.SQLAlchemyError as exc:
        raise store_error(str(engine.url), exc) from None
