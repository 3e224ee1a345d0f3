"""What the owner's page shows, read from the traffic log and the project's artifacts.

Traffic figures come from the `requests` table through SQLAlchemy Core (SQLite or PostgreSQL,
like the log itself); the questions the student got wrong from the judged rows the router was
fitted on (eval results and labelled traffic); the rows harvest would add from harvest's own
selection; the cost-quality curve from artifacts/router/curve.csv.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from protege.errors import ProtegeError
from protege.project import Project
from protege.traffic import requests_table

ROUTES = ("student", "teacher", "guard")
LIST_LIMIT = 20  # rows per table on the page


@dataclass(frozen=True)
class RouteStats:
    route: str
    requests: int
    answered: int  # status ok
    p50_s: float | None
    p95_s: float | None
    cost_usd: float
    completion_tokens: int
    up: int
    down: int


@dataclass(frozen=True)
class Traffic:
    days: int
    bucket_s: int
    labels: list[str]
    counts: dict[str, list[int]]  # per route, one count per bucket
    routes: list[RouteStats]
    total: int
    failed: int  # status error or cancelled

    def route(self, name: str) -> RouteStats:
        return next(r for r in self.routes if r.route == name)

    @property
    def student_share(self) -> float | None:
        """Of the answers a model gave (status ok), the share the student gave."""
        s, t = self.route("student").answered, self.route("teacher").answered
        return s / (s + t) if s + t else None

    @property
    def cost_usd(self) -> float:
        return sum(r.cost_usd for r in self.routes)

    @property
    def ratings(self) -> tuple[int, int]:
        return sum(r.up for r in self.routes), sum(r.down for r in self.routes)


@dataclass(frozen=True)
class Rated:
    id: str
    created: float
    route: str
    question: str
    answer: str
    comment: str | None


@dataclass(frozen=True)
class Miss:
    id: str
    source: str  # eval, extra or traffic
    question: str
    student_answer: str
    q_student: float
    q_teacher: float


@dataclass(frozen=True)
class Curve:
    shares: list[float]
    lines: dict[str, list[float]]  # router kind (and random_expected) -> quality per share
    chosen: str | None
    measure: str
    operating: tuple[float, float] | None  # (teacher share, expected quality) at the threshold


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in [0, 1]) of unsorted values; None when empty."""
    if not values:
        return None
    v = sorted(values)
    pos = q * (len(v) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def _buckets(now: float, days: int) -> tuple[int, list[float], list[str]]:
    """(bucket size, bucket starts, labels) over the window: hours for a day or two, else days (local time)."""
    if days <= 2:
        end = dt.datetime.fromtimestamp(now).replace(minute=0, second=0, microsecond=0)
        starts = [end - dt.timedelta(hours=h) for h in range(24 * days - 1, -1, -1)]
        return 3600, [s.timestamp() for s in starts], [s.strftime("%H:00") for s in starts]
    end = dt.datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
    starts = [end - dt.timedelta(days=d) for d in range(days - 1, -1, -1)]
    return 86400, [s.timestamp() for s in starts], [s.strftime("%b %d") for s in starts]


def traffic(engine: sa.Engine, project: str, now: float, days: int) -> Traffic:
    """Requests per bucket and per route, latency percentiles, cost and ratings over the last `days`."""
    bucket_s, starts, labels = _buckets(now, days)
    t = requests_table
    query = sa.select(t.c.created, t.c.route, t.c.status, t.c.latency_s, t.c.cost_usd, t.c.completion_tokens, t.c.rating).where(
        t.c.project == project, t.c.created >= starts[0]
    )
    counts = {r: [0] * len(starts) for r in ROUTES}
    per: dict[str, dict[str, Any]] = {r: {"n": 0, "ok": 0, "lat": [], "cost": 0.0, "tok": 0, "up": 0, "down": 0} for r in ROUTES}
    total = failed = 0
    with engine.connect() as conn:
        for created, route, status, latency, cost, tokens, rating in conn.execute(query):
            if route not in per:
                continue
            total += 1
            counts[route][max(0, bisect.bisect_right(starts, created) - 1)] += 1
            p = per[route]
            p["n"] += 1
            if status == "ok":
                p["ok"] += 1
                if latency is not None:
                    p["lat"].append(latency)
            failed += status in ("error", "cancelled")
            p["cost"] += cost or 0.0
            p["tok"] += tokens or 0
            p["up"] += rating == 1
            p["down"] += rating == -1
    routes = [RouteStats(r, p["n"], p["ok"], percentile(p["lat"], 0.5), percentile(p["lat"], 0.95), p["cost"], p["tok"],
                         p["up"], p["down"]) for r, p in per.items()]  # fmt: skip
    return Traffic(days, bucket_s, labels, counts, routes, total, failed)


def _question(messages_json: str) -> str:
    try:
        messages = json.loads(messages_json)
    except (TypeError, ValueError):
        return ""
    return next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), "")


def rated_down(engine: sa.Engine, project: str, since: float, limit: int = LIST_LIMIT) -> list[Rated]:
    """The newest answers people rated down, with their comment."""
    t = requests_table
    query = (
        sa.select(t.c.id, t.c.created, t.c.route, t.c.messages, t.c.answer, t.c.comment)
        .where(t.c.project == project, t.c.rating == -1, t.c.created >= since)
        .order_by(t.c.created.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [Rated(r.id, r.created, r.route, _question(r.messages), r.answer or "", r.comment) for r in rows]


def student_misses(project: Project, limit: int = LIST_LIMIT) -> tuple[list[Miss], str | None]:
    """(judged questions where the student fell short of the teacher, why none are shown).

    "Fell short" is the router's own label (route.labels): rubric more than `route.margin` below
    the teacher's, or a pairwise loss. The rows are the ones the router was fitted on: the
    latest eval results plus the queries labelled by `route fit --extra/--traffic`."""
    from protege.route.labels import example_from_row, read_jsonl, student_key
    from protege.route.stage import LABELLED, find_results

    try:
        results = find_results(project)
    except ProtegeError:
        return [], f"no eval results yet: run `protege eval {project.root}`"
    rows = [("eval", r) for r in read_jsonl(results)]
    labelled = project.paths.router / LABELLED
    if labelled.is_file():
        rows += [(str(r.get("route_source", "extra")), r) for r in read_jsonl(labelled)]
    key = student_key([r for _, r in rows])
    misses = []
    for source, row in rows:
        ex = example_from_row(row, project.config.route, source, key)
        if isinstance(ex, str) or not ex.teacher_needed:
            continue
        answer = str(((row.get("answers") or {}).get(key) or {}).get("text") or "")
        misses.append(Miss(ex.id, source, ex.query, answer, ex.q_student, ex.q_teacher))
    misses.sort(key=lambda m: m.q_student - m.q_teacher)
    note = None if misses else f"the {key} student matched the teacher on all {len(rows)} judged questions"
    return misses[:limit], note


def curve(project: Project) -> tuple[Curve | None, str | None]:
    """(the curve the router was fitted on, why it is missing)."""
    from protege.route.curve import RANDOM_LINE, SHARE, read_csv
    from protege.route.router import read_info

    path = project.paths.router / "curve.csv"
    if not path.is_file():
        return None, f"no router fitted yet: run `protege route fit {project.root}`"
    try:
        columns = read_csv(path)
        info = read_info(project.paths.router)
    except ProtegeError as exc:
        return None, str(exc)
    target = info.get("target") or {}
    operating = (target["teacher_share"], target["expected_quality"]) if "teacher_share" in target else None
    lines = {name: [float(v) for v in values] for name, values in columns.items() if name != SHARE}
    lines = dict(sorted(lines.items(), key=lambda kv: kv[0] != RANDOM_LINE))  # the random line first, under the rest
    measure = (info.get("quality") or {}).get("measure", "quality")
    return Curve([float(s) for s in columns[SHARE]], lines, info.get("kind"), measure, operating), None
