"""The owner's page as HTML: tiles, tables and SVG charts, every value escaped here.

The fragment is fetched by static/admin.js with the admin key and placed into the page; it holds
no script and no inline style (the page's Content-Security-Policy forbids both).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

from protege.serve.admin_data import Curve, Miss, Rated, Traffic
from protege.serve.charts import Marker, Series, bar_chart, line_chart

COLORS = {"student": "#1f7a4d", "teacher": "#8a4f12", "guard": "#9b1c1c"}
WHO = {"student": "local model", "teacher": "big model", "guard": "safety filter"}
ROUTER_COLORS = ["#2452b8", "#7b3fb5", "#0f8b8d", "#c76b00", "#5d6672"]
CLIP = 280  # characters of a question or answer shown in a table cell
WIDE = 1000  # chart width for a full-width card (charts scale to their box: this keeps their text small)


@dataclass(frozen=True)
class HarvestPreview:
    rows: list[tuple[str, str]]  # (question, teacher's answer) of the rows harvest would add
    total: int
    candidates: int
    duplicates: int
    redactions: int
    note: str | None = None


@dataclass(frozen=True)
class Panel:
    project: str
    root: str
    now: float
    traffic: Traffic
    rated_down: list[Rated]
    misses: list[Miss]
    misses_note: str | None
    harvest: HarvestPreview
    curve: Curve | None
    curve_note: str | None


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return escape(text if len(text) <= CLIP else text[: CLIP - 1] + "…")


def _secs(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f} s"


def _usd(v: float) -> str:
    return "$0" if v == 0 else f"${v:,.4f}" if v < 1 else f"${v:,.2f}"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.0%}"


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%b %d %H:%M")


def _pill(route: str) -> str:
    return f'<span class="pill {escape(route)}">{escape(WHO.get(route, route))}</span>'


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], empty: str, numeric: frozenset[int] | set[int] = frozenset()) -> str:
    """A table from already-escaped cells; `numeric` columns are right-aligned."""
    body = ["<tr>" + "".join(f'<td class="{"num" if i in numeric else ""}">{c}</td>' for i, c in enumerate(r)) + "</tr>" for r in rows]
    if not body:
        return f'<p class="empty">{escape(empty)}</p>'
    th = "".join(f'<th class="{"num" if i in numeric else ""}">{escape(h)}</th>' for i, h in enumerate(head))
    return f'<div class="scroll"><table><thead><tr>{th}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _card(title: str, body: str, *, wide: bool = False, section: str = "") -> str:
    return (f'<section class="card{" wide" if wide else ""}" data-section="{escape(section)}">'
            f"<h3>{escape(title)}</h3>{body}</section>")  # fmt: skip


def _tiles(t: Traffic) -> str:
    up, down = t.ratings
    tiles = [
        ("requests", f"{t.total:,}"),
        ("answered by the local model", _pct(t.student_share)),
        ("median latency, local model", _secs(t.route("student").p50_s)),
        ("median latency, big model", _secs(t.route("teacher").p50_s)),
        ("cost", _usd(t.cost_usd)),
        ("rated up / down", f"{up} / {down}"),
        ("failed or cut off", f"{t.failed:,}"),
    ]
    return '<div class="tiles">' + "".join(
        f'<div class="tile" data-tile="{escape(k)}"><span class="v">{escape(v)}</span><span class="k">{escape(k)}</span></div>'
        for k, v in tiles
    ) + "</div>"  # fmt: skip


def _traffic_chart(t: Traffic) -> str:
    stacks = [Series(WHO[r], t.counts[r], COLORS[r]) for r in ("student", "teacher", "guard")]
    unit = "hour" if t.bucket_s == 3600 else "day"
    svg = bar_chart(t.labels, stacks, title=f"Requests per {unit}, by who answered", chart_id="chart-traffic",
                    y_label="requests", fmt_y=lambda v: f"{v:g}", width=WIDE)  # fmt: skip
    return f'<div class="scroll">{svg}</div>'


def _cost_table(t: Traffic) -> str:
    rows = []
    for r in t.routes:
        if not r.requests:
            continue
        per_1k = _usd(1000 * r.cost_usd / r.answered) if r.answered else "–"
        rows.append([_pill(r.route), f"{r.requests:,}", _secs(r.p50_s), _secs(r.p95_s), escape(_usd(r.cost_usd)), escape(per_1k)])
    head = ["answered by", "requests", "latency p50", "latency p95", "cost", "per 1,000"]
    note = ('<p class="note">Latency: the gateway\'s wall time per answered request. Cost: tokens at the prices set on '
            "each model in protege.yaml (price_input, price_output; a local model is free unless priced).</p>")  # fmt: skip
    return _table(head, rows, "No requests in this period.", {1, 2, 3, 4, 5}) + note


def _ratings_table(t: Traffic) -> str:
    rows = [[_pill(r.route), f"{r.up}", f"{r.down}", _pct((r.up + r.down) / r.answered if r.answered else None)]
            for r in t.routes if r.requests]  # fmt: skip
    return _table(["answered by", "rated up", "rated down", "share rated"], rows, "No requests in this period.", {1, 2, 3})


def _curve_chart(c: Curve) -> str:
    from protege.route.curve import RANDOM_LINE

    series, colors = [], iter(ROUTER_COLORS)
    for name, values in c.lines.items():
        if name == RANDOM_LINE:
            series.append(Series("random (expected)", values, "#9aa1ab", dashed=True, width=1.5))
        else:
            chosen = name == c.chosen
            series.append(Series(name + (" (chosen)" if chosen else ""), values, next(colors, "#5d6672"), width=3 if chosen else 1.4))
    markers = [Marker(c.operating[0], c.operating[1], f"threshold: {c.operating[0]:.0%} to the big model")] if c.operating else []
    svg = line_chart(c.shares, series, title="Quality against teacher calls (the router's fit)", chart_id="chart-curve",
                     x_label="teacher calls (share of queries): the cost", y_label=c.measure,
                     fmt_x=lambda v: f"{v:.0%}", fmt_y=lambda v: f"{v:g}", markers=markers, width=WIDE)  # fmt: skip
    note = ('<p class="note">Out-of-fold quality of each router on the judged questions, against the share sent to the big '
            "model. The dot is where the fitted threshold sits.</p>" if c.operating else "")  # fmt: skip
    return f'<div class="scroll">{svg}</div>{note}'


def _harvest(h: HarvestPreview, root: str) -> str:
    if h.note:
        return f'<p class="empty">{escape(h.note)}</p>'
    rows = [[_clip(q), _clip(a)] for q, a in h.rows]
    intro = (f'<p class="note">{h.total} new row(s) from {h.candidates} request(s) the big model answered and no one rated down; '
             f"{h.duplicates} near-duplicate(s) of the dataset left out, {h.redactions} PII span(s) redacted. "
             f"Add them with <code>protege harvest {escape(root)}</code>, then <code>protege train {escape(root)}</code>.</p>")  # fmt: skip
    return _table(["question", "answer (big model)"], rows, "Nothing new to harvest yet.") + intro


def render(p: Panel) -> str:
    t = p.traffic
    rated = [[escape(_when(r.created)), _pill(r.route), _clip(r.question), _clip(r.answer), _clip(r.comment or "")]
             for r in p.rated_down]  # fmt: skip
    misses = [[escape(m.source), _clip(m.question), _clip(m.student_answer), f"{m.q_student:g} vs {m.q_teacher:g}"] for m in p.misses]
    curve = _curve_chart(p.curve) if p.curve else f'<p class="empty">{escape(p.curve_note or "no curve")}</p>'
    parts = [
        f'<h2 data-project="{escape(p.project)}">{escape(p.project)}</h2>',
        f'<p class="sub">Last {t.days} day(s), as of {escape(_when(p.now))}.</p>',
        _tiles(t),
        '<div class="grid">',
        _card("Traffic over time", _traffic_chart(t), wide=True, section="traffic"),
        _card("Latency and cost", _cost_table(t), section="cost"),
        _card("Ratings", _ratings_table(t), section="ratings"),
        _card("Rated down by people", _table(["when", "answered by", "question", "answer", "comment"], rated,
                                             "No answer was rated down in this period."), wide=True, section="rated-down"),  # fmt: skip
        _card("Where the local model fell short of the big one (judged)",
              _table(["from", "question", "local model's answer", "score vs big model"], misses, p.misses_note or "None."),
              wide=True, section="misses"),  # fmt: skip
        _card("Rows the next harvest would add", _harvest(p.harvest, p.root), wide=True, section="harvest"),
        _card("Cost-quality curve", curve, wide=True, section="curve"),
        "</div>",
    ]
    return "".join(parts)
