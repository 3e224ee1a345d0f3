"""The owner's page's HTML: every section present, user text escaped, charts inline."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

from protege.serve.admin_data import Curve, Miss, Rated, RouteStats, Traffic
from protege.serve.admin_view import HarvestPreview, Panel, render

EVIL = '<script>alert("x")</script>'


def _traffic() -> Traffic:
    routes = [RouteStats("student", 8, 7, 0.4, 0.9, 0.002, 300, 3, 1), RouteStats("teacher", 2, 2, 4.0, 6.0, 0.02, 120, 0, 1),
              RouteStats("guard", 1, 0, None, None, 0.0, 0, 0, 0)]  # fmt: skip
    counts = {"student": [1, 3, 4], "teacher": [0, 1, 1], "guard": [0, 0, 1]}
    return Traffic(3, 86400, ["Nov 23", "Nov 24", "Nov 25"], counts, routes, 11, 1)


def _panel(**changes) -> Panel:
    now = time.time()
    base = dict(
        project="shop", root="/srv/shop", now=now, traffic=_traffic(),
        rated_down=[Rated("r1", now, "teacher", EVIL, "an answer", "wrong " + EVIL)],
        misses=[Miss("q-1", "eval", "Fix my hub?", EVIL, 2.0, 9.0)], misses_note=None,
        harvest=HarvestPreview([("When do you open?", "At 9.")], 1, 2, 1, 0),
        curve=Curve([0.0, 0.5, 1.0], {"random_expected": [4, 6, 8], "cascade": [4, 7.5, 8]}, "cascade", "rubric score", (0.5, 7.5)),
        curve_note=None,
    )  # fmt: skip
    return Panel(**{**base, **changes})


def test_every_section_renders_and_user_text_is_escaped():
    html = render(_panel())
    assert EVIL not in html and "&lt;script&gt;" in html
    for section in ("traffic", "cost", "ratings", "rated-down", "misses", "harvest", "curve"):
        assert f'data-section="{section}"' in html
    assert ">78%<" in html.replace("</span>", "<")  # 7 of 9 model answers by the local model (7 student, 2 teacher)
    assert "protege harvest /srv/shop" in html
    for chart in ("chart-traffic", "chart-curve"):
        start = html.index(f'<svg class="chart" id="{chart}"')
        ET.fromstring(html[start : html.index("</svg>", start) + 6])  # each chart is well-formed SVG
    assert "cascade (chosen)" in html and "threshold: 50% to the big model" in html
    assert "<script" not in html and "style=" not in html  # nothing the page's CSP would block


def test_missing_artifacts_are_said_not_hidden():
    html = render(_panel(misses=[], misses_note="no eval results yet: run `protege eval /srv/shop`", curve=None,
                         curve_note="no router fitted yet", harvest=HarvestPreview([], 0, 0, 0, 0, note="no traffic log yet")))  # fmt: skip
    assert "no eval results yet" in html and "no router fitted yet" in html and "no traffic log yet" in html
