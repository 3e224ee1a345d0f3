"""Figures with honest intervals: bootstrap, Wilson, and the headline gap recovered.

Every function takes plain sequences so it works on constructed data as well as on
`results.jsonl`. An interval that cannot be computed (too few values, a zero denominator) is
None together with the reason, never a made-up number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval and the number of values behind it."""

    value: float | None
    low: float | None
    high: float | None
    n: int
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def fmt(self, digits: int = 2, scale: float = 1.0, unit: str = "") -> str:
        """`7.10 [6.50, 7.70] (n=40)`; `n/a (n=0: reason)` when there is no value."""
        if self.value is None:
            return f"n/a (n={self.n}{': ' + self.note if self.note else ''})"
        def num(x: float) -> str:
            text = f"{x * scale:.{digits}f}"
            return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no "-0.00"

        v = f"{num(self.value)}{unit}"
        if self.low is None or self.high is None:
            return f"{v} (n={self.n}, no interval{': ' + self.note if self.note else ''})"
        return f"{v} [{num(self.low)}, {num(self.high)}] (n={self.n}{'; ' + self.note if self.note else ''})"


def _clean(values: Sequence[float | None]) -> np.ndarray:
    return np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)


def bootstrap_ci(
    values: Sequence[float | None],
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> Estimate:
    """Percentile bootstrap interval of `statistic` over `values` (None/NaN values are left out
    and not counted in n). Fewer than two values give the estimate without an interval."""
    x = _clean(values)
    n = len(x)
    if n == 0:
        return Estimate(None, None, None, 0, "no values")
    point = float(statistic(x))
    if n < 2:
        return Estimate(point, None, None, n, "one value")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    if statistic is np.mean:
        stats = x[idx].mean(axis=1)
    else:
        stats = np.array([statistic(x[row]) for row in idx])
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return Estimate(point, float(low), float(high), n)


def wilson_ci(k: int, n: int, confidence: float = CONFIDENCE) -> Estimate:
    """Share k/n with the Wilson score interval (sensible at 0, n and small n)."""
    if n == 0:
        return Estimate(None, None, None, 0, "no values")
    z = _z(confidence)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if k == 0 else max(0.0, centre - half)  # exact at the edges, not 1e-17 off
    high = 1.0 if k == n else min(1.0, centre + half)
    return Estimate(p, low, high, n)


def _z(confidence: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2)


UNDEFINED_GAP = "teacher and untrained student score equal: gap recovered undefined"


@dataclass(frozen=True)
class GapRecovered(Estimate):
    """Gap recovered with the share of bootstrap resamples where it was undefined."""

    undefined_resamples: int = 0


def gap_recovered(
    untrained: Sequence[float | None],
    trained: Sequence[float | None],
    teacher: Sequence[float | None],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> GapRecovered:
    """(trained - untrained) / (teacher - untrained) on mean scores, with a paired bootstrap.

    The three sequences are per question, aligned; only questions where all three have a score
    count (n). Resampling draws questions, so the three means move together, as they should.
    Resamples whose denominator is zero are left out and counted in `undefined_resamples`.
    """
    if not (len(untrained) == len(trained) == len(teacher)):
        raise ValueError("untrained, trained and teacher must be aligned per question")
    rows = [
        (u, s, t)
        for u, s, t in zip(untrained, trained, teacher)
        if all(v is not None and not math.isnan(v) for v in (u, s, t))
    ]
    n = len(rows)
    if n == 0:
        return GapRecovered(None, None, None, 0, "no question scored for all three models")
    m = np.asarray(rows, dtype=float)
    u, s, t = m.mean(axis=0)
    if math.isclose(t, u, abs_tol=1e-9):
        return GapRecovered(None, None, None, n, UNDEFINED_GAP)
    point = float((s - u) / (t - u))
    below = "the teacher scored below the untrained student: there is no gap to recover" if t < u else None
    if n < 2:
        return GapRecovered(point, None, None, n, "one question")
    rng = np.random.default_rng(seed)
    means = m[rng.integers(0, n, size=(n_resamples, n))].mean(axis=1)  # (B, 3)
    denom = means[:, 2] - means[:, 0]
    ok = ~np.isclose(denom, 0.0, atol=1e-9)
    undefined = int((~ok).sum())
    if ok.sum() < n_resamples / 2:
        return GapRecovered(point, None, None, n, f"undefined in {undefined}/{n_resamples} resamples", undefined)
    ratios = (means[ok, 1] - means[ok, 0]) / denom[ok]
    alpha = (1 - confidence) / 2
    low, high = np.quantile(ratios, [alpha, 1 - alpha])
    notes = [below] + ([f"undefined in {undefined}/{n_resamples} resamples, left out"] if undefined else [])
    return GapRecovered(point, float(low), float(high), n, "; ".join(x for x in notes if x) or None, undefined)


def percentile(q: float) -> Callable[[np.ndarray], float]:
    """A statistic for bootstrap_ci: the q-th percentile (0-100)."""

    def stat(x: np.ndarray) -> float:
        return float(np.percentile(x, q))

    stat.__name__ = f"p{q:g}"
    return stat
