"""The traffic log through SQLAlchemy on SQLite (WAL): batched writes, feedback, restart, harvest filter."""

from __future__ import annotations

import sqlite3

from protege.serve.traffic import TrafficLog, TrafficRecord, database_url, harvestable


def record(i: int, route: str = "teacher", status: str = "ok", project: str = "shop") -> TrafficRecord:
    return TrafficRecord(f"id-{i}", project, project, route, "why", [{"role": "user", "content": f"q{i}"}],
                         f"a{i}", 0.1, 10, 5, 0.0, None, "k1", status)  # fmt: skip


def test_writes_survive_restart_and_take_feedback(tmp_path):
    db = tmp_path / "traffic.db"
    log = TrafficLog(database_url(None, db))
    for i in range(300):
        log.record(record(i))
    assert log.count() == 300
    assert log.feedback("id-7", -1, "wrong hours")
    assert not log.feedback("id-missing", 1, None)
    log.close()

    again = TrafficLog(database_url(None, db))
    assert again.count() == 300
    row = again.get("id-7")
    assert (row["rating"], row["comment"], row["key_id"]) == (-1, "wrong hours", "k1")
    again.close()
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_harvestable_keeps_teacher_answers_not_rated_down(tmp_path):
    log = TrafficLog(database_url(None, tmp_path / "traffic.db"))
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
