"""Charts for the owner's page as inline SVG, drawn on the server.

No JavaScript library and nothing fetched at run time: the page stays one request, works with a
strict Content-Security-Policy (colours are attributes, never inline styles) and prints as it
looks. Every label is XML-escaped, since questions and names come from users and owners.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 270  # the default size; a chart scales to its box, so text scales with it
LEFT, RIGHT, TOP, BOTTOM = 52, 14, 58, 40  # plot margins: ticks, title and legend rows, x labels
CHAR_PX = 6.4  # rough width of one 11px character, for laying out the legend and skipping x labels

Fmt = Callable[[float], str]


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    color: str
    dashed: bool = False
    width: float = 2.0


@dataclass(frozen=True)
class Marker:
    """One labelled point drawn over a line chart (e.g. the router's operating point)."""

    x: float
    y: float
    label: str
    color: str = "#c0392b"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]: steps of 1, 2, 2.5 or 5 times a power of ten."""
    if not math.isfinite(low) or not math.isfinite(high):
        low, high = 0.0, 1.0
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step + 1e-9) * step
    ticks, t = [], first
    while t < high + step * 0.999:
        ticks.append(round(t, 12))
        t += step
    return ticks


class _Frame:
    """The plot area: data-to-pixel mapping, grid, axes, title and legend."""

    def __init__(self, title: str, chart_id: str, x_range: tuple[float, float], y_ticks: list[float], width: int):
        self.title, self.id, self.width = title, chart_id, width
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_ticks[0], y_ticks[-1]
        self.y_ticks = y_ticks
        self.parts: list[str] = []

    def px(self, x: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return LEFT + (x - self.x0) / span * (self.width - LEFT - RIGHT)

    def py(self, y: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return HEIGHT - BOTTOM - (y - self.y0) / span * (HEIGHT - TOP - BOTTOM)

    def grid(self, fmt_y: Fmt, y_label: str) -> None:
        for t in self.y_ticks:
            y = self.py(t)
            self.parts.append(f'<line class="gridline" x1="{LEFT}" x2="{self.width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
            self.parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt_y(t))}</text>')
        bottom = HEIGHT - BOTTOM
        self.parts.append(f'<line class="axis" x1="{LEFT}" x2="{self.width - RIGHT}" y1="{bottom}" y2="{bottom}"/>')
        mid = (TOP + bottom) / 2
        self.parts.append(f'<text x="12" y="{mid:.0f}" text-anchor="middle" transform="rotate(-90 12 {mid:.0f})">{escape(y_label)}</text>')

    def x_label(self, text: str) -> None:
        self.parts.append(f'<text x="{(LEFT + self.width - RIGHT) / 2:.0f}" y="{HEIGHT - 4}" text-anchor="middle">{escape(text)}</text>')

    def legend(self, items: Sequence[tuple[str, str, bool]]) -> None:
        """(name, colour, dashed) swatches in a row under the title."""
        x = float(LEFT)
        for name, color, dashed in items:
            dash = ' stroke-dasharray="4 3"' if dashed else ""
            self.parts.append(f'<line x1="{x:.0f}" x2="{x + 16:.0f}" y1="34" y2="34" stroke="{color}" stroke-width="3"{dash}/>')
            self.parts.append(f'<text x="{x + 20:.0f}" y="38">{escape(name)}</text>')
            x += len(name) * CHAR_PX + 34

    def svg(self) -> str:
        head = (f'<svg class="chart" id="{escape(self.id)}" viewBox="0 0 {self.width} {HEIGHT}" role="img" '
                f'aria-labelledby="{escape(self.id)}-t" xmlns="http://www.w3.org/2000/svg">'
                f'<title id="{escape(self.id)}-t">{escape(self.title)}</title>'
                f'<text class="title" x="{LEFT}" y="18">{escape(self.title)}</text>')  # fmt: skip
        return head + "".join(self.parts) + "</svg>"


def line_chart(x: Sequence[float], series: Sequence[Series], *, title: str, chart_id: str, x_label: str,
               y_label: str, fmt_x: Fmt, fmt_y: Fmt, markers: Sequence[Marker] = (), width: int = WIDTH) -> str:  # fmt: skip
    """Lines over a shared x; the y axis spans every series (and marker) with round ticks."""
    values = [v for s in series for v in s.values if math.isfinite(v)] + [m.y for m in markers]
    frame = _Frame(title, chart_id, (min(x), max(x)), nice_ticks(min(values, default=0), max(values, default=1)), width)
    frame.grid(fmt_y, y_label)
    for t in nice_ticks(min(x), max(x)):
        if frame.x0 - 1e-9 <= t <= frame.x1 + 1e-9:
            frame.parts.append(f'<text x="{frame.px(t):.1f}" y="{HEIGHT - BOTTOM + 15}" text-anchor="middle">{escape(fmt_x(t))}</text>')
    frame.x_label(x_label)
    for s in series:
        points = " ".join(f"{frame.px(a):.1f},{frame.py(b):.1f}" for a, b in zip(x, s.values) if math.isfinite(b))
        dash = ' stroke-dasharray="5 4"' if s.dashed else ""
        frame.parts.append(f'<polyline data-series="{escape(s.name)}" fill="none" stroke="{s.color}" '
                           f'stroke-width="{s.width}"{dash} points="{points}"/>')  # fmt: skip
    for m in markers:
        cx, cy = frame.px(m.x), frame.py(m.y)
        anchor = "end" if cx > width / 2 else "start"
        dx = -8 if anchor == "end" else 8
        frame.parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{m.color}"/>'
                           f'<text x="{cx + dx:.1f}" y="{cy - 8:.1f}" text-anchor="{anchor}">{escape(m.label)}</text>')  # fmt: skip
    frame.legend([(s.name, s.color, s.dashed) for s in series])
    return frame.svg()


def bar_chart(labels: Sequence[str], stacks: Sequence[Series], *, title: str, chart_id: str, y_label: str,
              fmt_y: Fmt, x_label: str = "", width: int = WIDTH) -> str:  # fmt: skip
    """Stacked bars, one per label (e.g. requests per day, stacked by who answered)."""
    totals = [sum(s.values[i] for s in stacks) for i in range(len(labels))]
    frame = _Frame(title, chart_id, (0.0, float(max(len(labels), 1))), nice_ticks(0, max(totals, default=0) or 1), width)
    frame.grid(fmt_y, y_label)
    slot = (width - LEFT - RIGHT) / max(len(labels), 1)
    every = max(1, math.ceil(max((len(t) for t in labels), default=1) * CHAR_PX / slot))
    for i, label in enumerate(labels):
        bottom = 0.0
        for s in stacks:
            v = s.values[i]
            if v > 0:
                y_top, y_bottom = frame.py(bottom + v), frame.py(bottom)
                frame.parts.append(f'<rect data-series="{escape(s.name)}" x="{frame.px(i) + slot * 0.12:.1f}" y="{y_top:.1f}" '
                                   f'width="{slot * 0.76:.1f}" height="{y_bottom - y_top:.1f}" fill="{s.color}">'
                                   f"<title>{escape(label)}: {escape(fmt_y(v))} {escape(s.name)}</title></rect>")  # fmt: skip
            bottom += v
        if i % every == 0:
            frame.parts.append(f'<text x="{frame.px(i) + slot / 2:.1f}" y="{HEIGHT - BOTTOM + 15}" text-anchor="middle">{escape(label)}</text>')
    if x_label:
        frame.x_label(x_label)
    frame.legend([(s.name, s.color, False) for s in stacks])
    return frame.svg()
