"""Figures with honest intervals: bootstrap, Wilson, the headline gap recovered, paired
differences, and rank agreement between two scores of the same answers.

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
    """mean(trained - untrained) / mean(teacher - untrained) over paired questions, with a
    paired bootstrap interval.

    The three sequences are per question, aligned; only questions where all three have a score
    count (n). The ratio is of the mean per-question differences (the same number as the ratio of
    differences of means on those questions). Resampling draws questions, so a question's three
    scores move together: what one question finds hard for every model cancels in its differences,
    and the interval is as narrow as the pairing makes it. Resamples whose denominator is zero are
    left out and counted in `undefined_resamples`.
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


def mean_difference(
    before: Sequence[float | None],
    after: Sequence[float | None],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> Estimate:
    """Mean of the per-question differences after - before, with a paired bootstrap interval.

    The sequences are per question, aligned; questions missing either value are left out (n
    counts the pairs). An interval above 0 says `after` is better on questions like these.
    """
    if len(before) != len(after):
        raise ValueError("before and after must be aligned per question")
    diffs = [a - b for b, a in zip(before, after) if a is not None and b is not None and not (math.isnan(a) or math.isnan(b))]
    return bootstrap_ci(diffs, n_resamples=n_resamples, seed=seed, confidence=confidence)


def _missing(v: float | None) -> bool:
    return v is None or math.isnan(v)


NO_CORRELATION = "one of the scores is constant: no rank correlation"


def _rank_correlations(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spearman's rho and Kendall's tau-b of each row pair of x and y (shape (B, n)); NaN where
    a row is constant. Both come from the pairwise sign matrices: a rank is the count of smaller
    values plus half the ties, and tau-b is the signed concordance over the untied pairs."""
    sx = np.sign(x[:, :, None] - x[:, None, :]).astype(np.int8)
    sy = np.sign(y[:, :, None] - y[:, None, :]).astype(np.int8)
    rx = (sx > 0).sum(2) + ((sx == 0).sum(2) + 1) / 2
    ry = (sy > 0).sum(2) + ((sy == 0).sum(2) + 1) / 2
    rx -= rx.mean(1, keepdims=True)
    ry -= ry.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (rx * ry).sum(1) / np.sqrt((rx * rx).sum(1) * (ry * ry).sum(1))
        concordance = (sx.astype(np.int32) * sy).sum((1, 2))
        tau = concordance / np.sqrt(np.abs(sx).sum((1, 2), dtype=np.int64) * np.abs(sy).sum((1, 2), dtype=np.int64))
    return rho, tau


def rank_agreement(
    x: Sequence[float | None],
    y: Sequence[float | None],
    groups: Sequence[str] | None = None,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> dict[str, Estimate]:
    """Spearman's rho and Kendall's tau-b between two scores of the same items, with intervals.

    Items missing either score are left out. `groups` (say, the question each answer belongs to)
    makes the bootstrap draw whole groups, since answers to one question are not independent of
    each other; without it each item is drawn on its own. Resamples in which a score is constant
    have no correlation and are left out of the interval (and counted in the note).
    """
    if len(x) != len(y) or (groups is not None and len(groups) != len(x)):
        raise ValueError("x, y and groups must be aligned")
    keep = [i for i in range(len(x)) if not _missing(x[i]) and not _missing(y[i])]
    xs = np.asarray([x[i] for i in keep], dtype=float)
    ys = np.asarray([y[i] for i in keep], dtype=float)
    n = len(xs)
    names = ("spearman", "kendall")
    if n < 3:
        return {k: Estimate(None, None, None, n, "fewer than 3 scored items") for k in names}
    if np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return {k: Estimate(None, None, None, n, NO_CORRELATION) for k in names}
    points = [float(v[0]) for v in _rank_correlations(xs[None], ys[None])]
    members: dict[str, list[int]] = {}
    for j, i in enumerate(keep):
        members.setdefault(groups[i] if groups is not None else str(i), []).append(j)
    blocks = [np.asarray(b) for b in members.values()]
    if len(blocks) < 2:
        return {k: Estimate(p, None, None, n, "one group") for k, p in zip(names, points)}
    rng = np.random.default_rng(seed)
    draws = [np.concatenate([blocks[b] for b in row]) for row in rng.integers(0, len(blocks), size=(n_resamples, len(blocks)))]
    resampled: list[list[float]] = [[], []]
    size = max(1, 2_000_000 // max(len(d) for d in draws) ** 2)  # resamples per batch: bounded memory
    for start in range(0, n_resamples, size):
        for d_len in sorted({len(d) for d in draws[start : start + size]}):  # equal lengths stack (groups differ in size)
            idx = np.stack([d for d in draws[start : start + size] if len(d) == d_len])
            for k, values in enumerate(_rank_correlations(xs[idx], ys[idx])):
                resampled[k] += [v for v in values.tolist() if not math.isnan(v)]
    out = {}
    alpha = (1 - confidence) / 2
    for name, point, stats in zip(names, points, resampled):
        skipped = n_resamples - len(stats)
        if len(stats) < n_resamples / 2:
            out[name] = Estimate(point, None, None, n, f"constant in {skipped}/{n_resamples} resamples")
            continue
        low, high = np.quantile(stats, [alpha, 1 - alpha])
        out[name] = Estimate(point, float(low), float(high), n, f"{skipped} constant resamples left out" if skipped else None)
    return out


def percentile(q: float) -> Callable[[np.ndarray], float]:
    """A statistic for bootstrap_ci: the q-th percentile (0-100)."""

    def stat(x: np.ndarray) -> float:
        return float(np.percentile(x, q))

    stat.__name__ = f"p{q:g}"
    return stat
