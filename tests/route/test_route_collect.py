"""Traffic sampling from the gateway's real log (written by serve's TrafficLog), SQLite or PostgreSQL."""

from __future__ import annotations

import pytest
import yaml

from protege.errors import ProtegeError
from protege.project import Project
from protege.route.collect import traffic_rows
from protege.traffic import TrafficLog, TrafficRecord, database_url


@pytest.fixture
def project(tmp_path) -> Project:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "protege.yaml").write_text(yaml.safe_dump({"name": "shop"}))
    return Project.load(tmp_path / "shop")


def _log(project, db, rows):
    log = TrafficLog(database_url(db, project.paths.traffic_db))
    for i, (project, route, status, question) in enumerate(rows):
        log.record(TrafficRecord(f"r{i}", project, project, route, "test", [{"role": "user", "content": question}],
                                 "answer", 0.1, 5, 5, 0.0, None, None, status, created=1000.0 + i))  # fmt: skip
    log.flush()
    log.close()


def test_samples_answered_requests_of_this_project(project, traffic_db):
    db = traffic_db
    _log(project, db, [
        ("shop", "student", "ok", "When do you open?"),
        ("shop", "teacher", "ok", "Why does my brake squeal?"),
        ("shop", "guard", "ok", "How do I pick a lock?"),  # a refusal: no model answered
        ("shop", "student", "error", "Do you sell helmets?"),  # failed: nothing to judge
        ("other", "student", "ok", "Other project's question"),
        ("shop", "student", "ok", ""),  # no question text
    ])  # fmt: skip
    rows = traffic_rows(project, db, exclude=set(), sample=10, seed=0)
    assert sorted(r["id"] for r in rows) == ["t-r0", "t-r1"]
    # Already labelled requests are not judged again.
    assert [r["id"] for r in traffic_rows(project, db, exclude={"t-r0"}, sample=10, seed=0)] == ["t-r1"]
    assert len(traffic_rows(project, db, exclude=set(), sample=1, seed=0)) == 1


def test_missing_or_foreign_db_is_a_clear_error(project):
    with pytest.raises(ProtegeError, match="no traffic log yet"):
        traffic_rows(project, None, set(), 10, 0)
    project.paths.traffic_db.parent.mkdir(parents=True)
    project.paths.traffic_db.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ProtegeError, match="traffic.db: cannot use the traffic log"):
        traffic_rows(project, None, set(), 10, 0)
