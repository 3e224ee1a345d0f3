"""Server-rendered SVG charts: well-formed, escaped, and drawn where the numbers say."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from protege.serve.charts import HEIGHT, Marker, Series, bar_chart, line_chart, nice_ticks

NS = {"s": "http://www.w3.org/2000/svg"}


@pytest.mark.parametrize(("low", "high"), [(0, 1), (0, 7), (3.2, 8.9), (0, 1234), (5, 5), (0, 0.013)])
def test_ticks_are_round_and_cover_the_range(low, high):
    ticks = nice_ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:])}
    assert len(steps) == 1
    step = steps.pop()
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in (1, 2, 2.5, 5)
    assert 2 <= len(ticks) <= 12


def _points(svg: ET.Element, name: str) -> list[tuple[float, float]]:
    line = svg.find(f".//s:polyline[@data-series='{name}']", NS)
    return [tuple(map(float, p.split(","))) for p in line.get("points").split()]


def test_line_chart_puts_higher_values_higher_and_escapes_labels():
    x = [0.0, 0.5, 1.0]
    svg_text = line_chart(
        x, [Series("rising", [1, 2, 3], "#000"), Series("<b>flat</b> & co", [2, 2, 2], "#111", dashed=True)],
        title="Q <vs> cost", chart_id="c1", x_label="share", y_label="quality",
        fmt_x=lambda v: f"{v:.0%}", fmt_y=lambda v: f"{v:g}", markers=[Marker(0.5, 2.5, "here")],
    )
    svg = ET.fromstring(svg_text)  # well-formed XML, or this raises
    assert "<b>" not in svg_text and "&lt;b&gt;flat&lt;/b&gt; &amp; co" in svg_text
    assert svg.find("s:title", NS).text == "Q <vs> cost"
    rising = _points(svg, "rising")
    assert rising[0][0] < rising[1][0] < rising[2][0]  # x grows to the right
    assert rising[0][1] > rising[1][1] > rising[2][1]  # larger y is drawn higher (smaller pixel y)
    assert all(0 <= py <= HEIGHT for _, py in rising)
    flat = _points(svg, "<b>flat</b> & co")
    assert len({py for _, py in flat}) == 1
    dot = svg.find(".//s:circle", NS)
    assert rising[2][1] < float(dot.get("cy")) < rising[1][1]  # 2.5 is drawn between 2 and 3


def test_bar_chart_stacks_in_proportion_and_skips_zero_bars():
    labels = ["Mon", "Tue", "Wed"]
    svg = ET.fromstring(bar_chart(labels, [Series("student", [2, 0, 4], "#0a0"), Series("teacher", [2, 1, 0], "#a00")],
                                  title="Requests", chart_id="c2", y_label="requests", fmt_y=lambda v: f"{v:g}"))
    rects = svg.findall(".//s:rect", NS)
    assert len(rects) == 4  # the two zero counts draw nothing
    height = {(r.get("data-series"), round(float(r.get("x")))): float(r.get("height")) for r in rects}
    by_series = {}
    for (series, x), h in height.items():
        by_series.setdefault(series, []).append((x, h))
    student = sorted(by_series["student"])
    assert student[1][1] == pytest.approx(2 * student[0][1], rel=0.01)  # 4 is twice as tall as 2
    monday_student, monday_teacher = (next(r for r in rects if r.get("data-series") == s) for s in ("student", "teacher"))
    assert float(monday_teacher.get("y")) + float(monday_teacher.get("height")) == pytest.approx(float(monday_student.get("y")), abs=0.2)
    assert [t.text for t in svg.findall("s:text", NS) if t.text in labels] == labels


def test_bar_chart_thins_out_crowded_labels():
    labels = [f"Nov {d:02d}" for d in range(1, 61)]
    svg = ET.fromstring(bar_chart(labels, [Series("student", [1] * 60, "#0a0")], title="t", chart_id="c3",
                                  y_label="n", fmt_y=lambda v: f"{v:g}"))
    shown = [t.text for t in svg.findall("s:text", NS) if t.text in labels]
    assert shown[0] == "Nov 01" and 5 <= len(shown) < 60
