"""router.json and curve.csv as rows for the terminal: `protege route fit|curve` and `protege run`."""

from __future__ import annotations

from typing import Any

import numpy as np

from protege.route.curve import RANDOM_LINE, SHARE

METRIC_HEADER = ("router", "APGR [95% CI]", "CPT(50%)", "CPT(80%)", "student share at target")


def _pct(d: dict[str, Any] | None, interval: bool = False) -> str:
    if not d or d.get("value") is None:
        return "n/a"
    text = f"{d['value']:.0%}"
    if not interval:
        return text
    return text + (f" [{d['low']:.0%}, {d['high']:.0%}]" if d.get("low") is not None else " (no interval)")


def _num(d: dict[str, Any] | None) -> str:
    if not d or d.get("value") is None:
        return "n/a"
    if d.get("low") is None:
        return f"{d['value']:.3f} (no interval)"
    return f"{d['value']:.3f} [{d['low']:.3f}, {d['high']:.3f}]"


def metric_rows(router: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per router: the cross-validated metrics (the chosen one marked)."""
    rows: list[tuple[str, ...]] = []
    for kind, m in (router.get("metrics") or {}).items():
        name = kind + (" (chosen)" if kind == router.get("kind") else "")
        rows.append((name, _num(m.get("apgr")), _pct(m.get("cpt50")), _pct(m.get("cpt80")), _pct(m.get("student_share_at_target"))))
    for kind, why in (router.get("unavailable") or {}).items():
        rows.append((kind, f"unavailable: {why}", "", "", ""))
    return rows


def curve_rows(curve: dict[str, np.ndarray], points: int = 11) -> tuple[list[str], list[list[str]]]:
    """The curve at evenly spaced teacher shares (nearest computed point), for a text table."""
    names = [n for n in curve if n != SHARE]
    shares = curve[SHARE]
    rows = []
    for target in np.linspace(0, 1, points):
        i = int(np.argmin(np.abs(shares - target)))
        rows.append([f"{shares[i]:.0%}", *(f"{curve[n][i]:.2f}" for n in names)])
    return ["teacher calls", *[("random (expected)" if n == RANDOM_LINE else n) for n in names]], rows


def headline(router: dict[str, Any], ev: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(figure, value) rows for `protege run`'s closing table."""
    if router.get("degenerate"):
        return [("router", "none needed: " + router["degenerate"])]
    kind = router["kind"]
    m = (router.get("metrics") or {}).get(kind, {})
    target = router.get("target") or {}
    rows = [
        ("router (chosen by cross-validated APGR)", f"{kind}; APGR {_num(m.get('apgr'))}"),
        ("router vs random APGR", f"{m.get('apgr', {}).get('value', float('nan')):.3f} vs "
                                  f"{(router['metrics'].get('random') or {}).get('apgr', {}).get('value', float('nan')):.3f}"),
        ("teacher calls for 50% / 80% of the gap", f"{_pct(m.get('cpt50'))} / {_pct(m.get('cpt80'))}"),
        (f"student answers (threshold, {target.get('by', 'target')})", f"{target.get('student_share', 0):.0%} of queries"),
    ]  # fmt: skip
    costs = (ev or {}).get("cost_per_1k_queries_usd") or {}
    student = costs.get("trained") or costs.get("untrained")
    teacher = costs.get("teacher")
    if student and teacher and student.get("value") is not None and teacher.get("value") is not None:
        share = target.get("teacher_share", 0.0)
        # The cascade always pays for the student's answer; other routers only when it answers.
        student_part = 1.0 if kind == "cascade" else 1.0 - share
        routed = student_part * student["value"] + share * teacher["value"]
        rows.append(("cost per 1,000 queries, routed", f"${routed:.4f} (teacher-only ${teacher['value']:.4f})"))
    return rows
