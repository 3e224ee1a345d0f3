"""Cost-quality curves and the RouteLLM metrics: APGR, CPT(x%), and the share of calls saved.

A router orders queries by score; sending the top share c of them to the teacher gives a
quality q(c) between student-only q(0) and teacher-only q(1). The performance gap recovered
is PGR(c) = (q(c) - q_student) / (q_teacher - q_student).

- APGR: the area under PGR(c) for c from 0 to 1 (the curve is piecewise linear between the
  n + 1 points where k of n queries go to the teacher, so the trapezoid rule is exact).
  Random routing gives exactly 0.5.
- CPT(x%): the smallest share of teacher calls with PGR >= x (linear between points).
- student share at a target: 1 - the smallest share of teacher calls reaching that quality.

Tied scores are resolved as a random tie-break would be on average, so a router that cannot
tell queries apart scores like random routing, not like a lucky or unlucky order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from protege.errors import ProtegeError
from protege.evaluate.stats import Estimate

BOOTSTRAP = 1000
GAP_EPS = 1e-9


class NoGapError(ProtegeError):
    """Student-only quality already matches teacher-only quality: there is nothing to route."""


def check_gap(q_student: np.ndarray, q_teacher: np.ndarray, measure: str) -> float:
    """The teacher's mean advantage; a NoGapError that says so when there is none."""
    s, t = float(np.mean(q_student)), float(np.mean(q_teacher))
    if t - s <= GAP_EPS:
        raise NoGapError(
            f"the student matches the teacher on these {len(q_student)} questions "
            f"(mean {measure} {s:.2f} vs {t:.2f}): there is no quality gap for a router to recover",
            hint="every query can go to the student; add harder questions (--extra N) to check",
        )
    return t - s


def gain_curve(scores: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Summed quality gain when the k highest-scored queries go to the teacher, k = 0..n.

    `gains[i]` = teacher quality - student quality on query i. Within a run of tied scores the
    gain grows linearly: the expectation over the order a random tie-break would pick.
    """
    order = np.argsort(-scores, kind="stable")
    s, g = scores[order], gains[order]
    n = len(s)
    if n == 0:
        return np.zeros(1)
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    sizes = np.diff(np.r_[starts, n])
    group_gain = np.add.reduceat(g, starts)
    before = np.r_[0.0, np.cumsum(group_gain)]
    k = np.arange(n + 1)
    # The group holding the k-th query; k = n belongs to the last group, fully taken.
    group = np.minimum(np.searchsorted(starts, k, side="right") - 1, len(starts) - 1)
    inside = np.clip(k - starts[group], 0, sizes[group])
    return before[group] + inside / sizes[group] * group_gain[group]


def pgr_curve(scores: np.ndarray, q_student: np.ndarray, q_teacher: np.ndarray) -> np.ndarray:
    """PGR at teacher shares k/n, k = 0..n (caller ensures a positive gap)."""
    gains = q_teacher - q_student
    return gain_curve(scores, gains) / gains.sum()


def apgr(pgr: np.ndarray) -> float:
    shares = np.linspace(0.0, 1.0, len(pgr))
    return float(np.sum((pgr[1:] + pgr[:-1]) / 2 * np.diff(shares)))


def share_to_reach(pgr: np.ndarray, level: float) -> float:
    """Smallest teacher share with PGR >= level, linear between points; 1.0 if never reached."""
    if level <= pgr[0]:
        return 0.0
    shares = np.linspace(0.0, 1.0, len(pgr))
    above = np.flatnonzero(pgr >= level)
    if not len(above):
        return 1.0
    i = above[0]
    p0, p1 = pgr[i - 1], pgr[i]
    return float(shares[i - 1] + (level - p0) / (p1 - p0) * (shares[i] - shares[i - 1]))


def target_level(q_student: np.ndarray, q_teacher: np.ndarray, target: float) -> float:
    """The PGR at which quality reaches `target` x teacher-only quality."""
    s, t = float(np.mean(q_student)), float(np.mean(q_teacher))
    return (target * t - s) / (t - s)


@dataclass(frozen=True)
class RouterMetrics:
    apgr: Estimate
    cpt50: Estimate
    cpt80: Estimate
    student_share: Estimate  # share of queries the student answers at the target quality

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {
            "apgr": self.apgr.to_dict(),
            "cpt50": self.cpt50.to_dict(),
            "cpt80": self.cpt80.to_dict(),
            "student_share_at_target": self.student_share.to_dict(),
        }


def _point(scores: np.ndarray, qs: np.ndarray, qt: np.ndarray, target: float) -> tuple[float, float, float, float]:
    pgr = pgr_curve(scores, qs, qt)
    level = target_level(qs, qt, target)
    return apgr(pgr), share_to_reach(pgr, 0.5), share_to_reach(pgr, 0.8), 1.0 - share_to_reach(pgr, level)


def router_metrics(
    scores: np.ndarray, q_student: np.ndarray, q_teacher: np.ndarray, *, target: float, seed: int = 0
) -> RouterMetrics:
    """Point estimates plus 95% intervals from a bootstrap over questions.

    `scores` are out-of-fold: each one comes from a router that never saw that question.
    Resamples where the student happens to match the teacher have no PGR and are skipped.
    """
    point = _point(scores, q_student, q_teacher, target)
    rng = np.random.default_rng(seed)
    n = len(scores)
    draws = []
    for _ in range(BOOTSTRAP):
        idx = rng.integers(0, n, n)
        qs, qt = q_student[idx], q_teacher[idx]
        if qt.mean() - qs.mean() > GAP_EPS:
            draws.append(_point(scores[idx], qs, qt, target))
    if not draws:
        return RouterMetrics(*(Estimate(p, None, None, n, "no resample had a quality gap") for p in point))
    low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    return RouterMetrics(*(Estimate(p, float(lo), float(hi), n) for p, lo, hi in zip(point, low, high)))
