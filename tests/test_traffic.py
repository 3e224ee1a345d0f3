"""The traffic log through SQLAlchemy, on SQLite (WAL) and on a real PostgreSQL server: batched
writes acknowledged once committed, feedback, restart, harvest filter, redaction."""

from __future__ import annotations

import sqlite3

import pytest

from protege.traffic import TrafficLog, TrafficRecord, database_url, harvestable, redact_record


def record(i: int, route: str = "teacher", status: str = "ok", project: str = "shop") -> TrafficRecord:
    return TrafficRecord(f"id-{i}", project, project, route, "why", [{"role": "user", "content": f"q{i}"}],
                         f"a{i}", 0.1, 10, 5, 0.0, None, "k1", status)  # fmt: skip


def test_writes_survive_restart_and_take_feedback(traffic_db, tmp_path):
    url = database_url(traffic_db, tmp_path / "unused.db")
    log = TrafficLog(url)
    done = [log.record(record(i)) for i in range(300)]
    assert all(d.result(timeout=30) for d in done)  # each write says when it is committed
    assert log.count() == 300
    assert log.feedback("id-7", -1, "wrong hours")
    assert not log.feedback("id-missing", 1, None)
    log.close()

    again = TrafficLog(url)
    assert again.count() == 300
    row = again.get("id-7")
    assert (row["rating"], row["comment"], row["key_id"]) == (-1, "wrong hours", "k1")
    again.close()
    if traffic_db.startswith("sqlite"):
        assert sqlite3.connect(tmp_path / "traffic.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_harvestable_keeps_teacher_answers_not_rated_down(traffic_db, tmp_path):
    log = TrafficLog(database_url(traffic_db, tmp_path / "unused.db"))
    log.record(record(1))  # teacher, unrated: kept
    log.record(record(2, route="student"))  # student: not harvested
    log.record(record(3, status="error"))  # failed: not harvested
    log.record(record(4))  # rated down below: not harvested
    log.record(record(5))  # rated up: kept
    log.record(record(6, project="other"))  # another project's traffic
    log.flush()
    log.feedback("id-4", -1, None)
    log.feedback("id-5", 1, None)
    assert [r["id"] for r in harvestable(log.engine, "shop")] == ["id-1", "id-5"]
    log.close()


def test_redaction_keeps_the_kinds_and_the_owners_contacts():
    rec = record(1)
    rec.messages = [{"role": "user", "content": "Mail me at jane@example.com or call shop@riverbend.example"}]
    rec.answer = "Sure, jane@example.com, your key sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c is noted."
    out = redact_record(rec, keep={"shop@riverbend.example"})
    assert out.messages[0]["content"] == "Mail me at [EMAIL] or call shop@riverbend.example"
    assert out.answer == "Sure, [EMAIL], your key [SECRET] is noted."
    assert out.guard == {"redacted": {"EMAIL": 2, "SECRET": 1}}
    assert redact_record(record(2)) == record(2) or redact_record(record(2)).guard is None


def test_an_unreachable_database_is_one_clear_error(tmp_path):
    from protege.errors import ProtegeError

    bad = tmp_path / "traffic.db"
    bad.write_bytes(b"not a database" * 100)
    with pytest.raises(ProtegeError, match=r"traffic.db: cannot use the traffic log .*mv .*traffic.db.bad"):
        TrafficLog(database_url(None, bad))
    with pytest.raises(ProtegeError, match=r"postgresql:///none\?host=.*: cannot use the traffic log"):
        TrafficLog(database_url(f"postgresql://nobody@/none?host={tmp_path}", bad))
