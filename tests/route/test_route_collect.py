"""Traffic sampling from the gateway's real SQLite log (written by serve's TrafficLog)."""

from __future__ import annotations

import pytest

from protege.errors import ProtegeError
from protege.route.collect import traffic_rows
from protege.serve.traffic import TrafficLog, TrafficRecord, database_url


def _log(db, rows):
    log = TrafficLog(database_url(None, db))
    for i, (project, route, status, question) in enumerate(rows):
        log.record(TrafficRecord(f"r{i}", project, project, route, "test", [{"role": "user", "content": question}],
                                 "answer", 0.1, 5, 5, 0.0, None, None, status, created=1000.0 + i))  # fmt: skip
    log.flush()
    log.close()


def test_samples_answered_requests_of_this_project(tmp_path):
    db = tmp_path / "traffic.db"
    _log(db, [
        ("shop", "student", "ok", "When do you open?"),
        ("shop", "teacher", "ok", "Why does my brake squeal?"),
        ("shop", "guard", "ok", "How do I pick a lock?"),  # a refusal: no model answered
        ("shop", "student", "error", "Do you sell helmets?"),  # failed: nothing to judge
        ("other", "student", "ok", "Other project's question"),
        ("shop", "student", "ok", ""),  # no question text
    ])  # fmt: skip
    rows = traffic_rows(db, "shop", exclude=set(), sample=10, seed=0)
    assert sorted(r["id"] for r in rows) == ["t-r0", "t-r1"]
    # Already labelled requests are not judged again.
    assert [r["id"] for r in traffic_rows(db, "shop", exclude={"t-r0"}, sample=10, seed=0)] == ["t-r1"]
    assert len(traffic_rows(db, "shop", exclude=set(), sample=1, seed=0)) == 1


def test_missing_or_foreign_db_is_a_clear_error(tmp_path):
    with pytest.raises(ProtegeError, match="no traffic log yet"):
        traffic_rows(tmp_path / "traffic.db", "shop", set(), 10, 0)
    (tmp_path / "traffic.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(ProtegeError, match="cannot read the traffic log"):
        traffic_rows(tmp_path / "traffic.db", "shop", set(), 10, 0)
