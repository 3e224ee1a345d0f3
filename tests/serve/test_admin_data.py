"""The owner's page's figures, read from a real traffic log (SQLite) and real route artifacts."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from protege.project import Project
from protege.route.curve import RANDOM_LINE, SHARE, write_csv
from protege.route.router import Router, save
from protege.route.routers import Random
from protege.serve.admin_data import curve, percentile, rated_down, student_misses, traffic
from protege.traffic import TrafficLog, TrafficRecord

DAY = 86400


def _rec(i: int, route: str, created: float, *, status: str = "ok", latency: float = 1.0, cost: float = 0.0,
         project: str = "shop") -> TrafficRecord:  # fmt: skip
    return TrafficRecord(f"r{i}", project, project, route, "why", [{"role": "user", "content": f"question {i}?"}],
                         f"answer {i}", latency, None, 5, cost, None, None, status, created=created)  # fmt: skip


@pytest.fixture
def log(tmp_path):
    log = TrafficLog(f"sqlite:///{tmp_path / 'traffic.db'}")
    yield log
    log.close()


def test_traffic_counts_per_day_and_route_with_latency_cost_and_ratings(log):
    now = time.time()
    rows = [
        _rec(0, "student", now - 60, latency=0.2, cost=0.001),
        _rec(1, "student", now - 120, latency=0.4, cost=0.001),
        _rec(2, "student", now - 2 * DAY, latency=0.6, cost=0.001),
        _rec(3, "teacher", now - 2 * DAY, latency=5.0, cost=0.01),
        _rec(4, "guard", now - 3 * DAY, status="blocked", latency=0.01),
        _rec(5, "student", now - 30, status="cancelled", latency=9.0),
        _rec(6, "student", now - 40 * DAY),  # outside a 30-day window
        _rec(7, "student", now - 60, project="other"),  # another project in a shared database
    ]
    for r in rows:
        log.record(r)
    log.feedback("r0", 1, None)
    log.feedback("r3", -1, "wrong price")
    log.flush()
    t = traffic(log.engine, "shop", now, 30)
    assert t.total == 6 and t.failed == 1
    assert len(t.labels) == 30 and sum(sum(c) for c in t.counts.values()) == 6
    assert t.counts["student"][-1] == 3 and t.counts["student"][-3] == 1  # today (cancelled one included) and two days ago
    assert t.counts["teacher"][-3] == 1 and t.counts["guard"][-4] == 1
    student = t.route("student")
    assert student.requests == 4 and student.answered == 3
    assert student.p50_s == pytest.approx(0.4)  # of the answered ones: 0.2, 0.4, 0.6
    assert t.student_share == pytest.approx(3 / 4)  # 3 of the 4 model answers
    assert t.cost_usd == pytest.approx(0.013)
    assert t.ratings == (1, 1) and t.route("teacher").down == 1
    hourly = traffic(log.engine, "shop", now, 1)
    assert len(hourly.labels) == 24 and hourly.bucket_s == 3600 and hourly.total == 3

    down = rated_down(log.engine, "shop", now - 30 * DAY)
    assert [(d.id, d.question, d.comment, d.route) for d in down] == [("r3", "question 3?", "wrong price", "teacher")]


def test_percentile_interpolates():
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([0.0, 10.0], 0.95) == pytest.approx(9.5)


def _results_row(i: int, question: str, student: int, teacher: int) -> dict:
    answer = {"text": f"student answer {i}", "rubric": student, "pairwise": "loss" if teacher - student > 1 else "tie",
              "mean_logprob": -1.0, "min_logprob": -4.0, "latency_s": 0.3, "judge_errors": []}  # fmt: skip
    return {"id": f"q-{i}", "type": "factual", "question": question,
            "messages": [{"role": "user", "content": question}],
            "answers": {"trained": answer, "teacher": {"text": "t", "rubric": teacher, "judge_errors": []}}}  # fmt: skip


def test_student_misses_use_the_routers_label_over_eval_and_labelled_traffic(project_dir):
    project = Project.load(project_dir)
    assert student_misses(project)[1].startswith("no eval results yet")
    report = project.paths.reports / "run-1" / "results.jsonl"
    report.parent.mkdir(parents=True)
    rows = [_results_row(0, "When do you open?", 8, 8), _results_row(1, "Fix my hub?", 2, 9), _results_row(2, "Price?", 7, 8)]
    report.write_text("".join(json.dumps(r) + "\n" for r in rows))
    project.paths.router.mkdir(parents=True)
    traffic_row = dict(_results_row(3, "Bleed my brakes?", 4, 8), route_source="traffic")
    (project.paths.router / "labelled.jsonl").write_text(json.dumps(traffic_row) + "\n")
    misses, note = student_misses(project)
    assert note is None
    # margin 1.0 (the default): 8 vs 8 and 7 vs 8 are enough; the worst shortfall first
    assert [(m.id, m.source, m.question, m.student_answer) for m in misses] == [
        ("q-1", "eval", "Fix my hub?", "student answer 1"), ("q-3", "traffic", "Bleed my brakes?", "student answer 3")]


def test_curve_reads_the_fitted_curve_and_the_operating_point(project_dir):
    project = Project.load(project_dir)
    fitted, note = curve(project)
    assert fitted is None and "protege route fit" in note
    shares = np.linspace(0, 1, 5)
    project.paths.router.mkdir(parents=True)
    write_csv(project.paths.router / "curve.csv", shares, {"random_expected": 4 + 4 * shares, "sw_ranking": np.array([4, 6.5, 7.5, 7.9, 8.0])})
    save(project.paths.router, Router(Random(), 0.5, {"target": {"teacher_share": 0.5, "expected_quality": 7.5},
                                                      "quality": {"measure": "rubric score"}}))  # fmt: skip
    fitted, note = curve(project)
    assert note is None and fitted.shares == pytest.approx(list(shares))
    assert list(fitted.lines) == [RANDOM_LINE, "sw_ranking"] and SHARE not in fitted.lines
    assert fitted.lines["sw_ranking"][2] == 7.5
    assert fitted.operating == (0.5, 7.5) and fitted.chosen == "random" and fitted.measure == "rubric score"
