"""Cross-validated scores, the router choice, and the threshold for a quality target or a budget.

Every figure a router is judged by comes from out-of-fold scores: each query is scored by a
router fitted on the other folds, so no query ever helps grade itself. The threshold is taken
from those same out-of-fold scores, since they are distributed like the scores the final
router (fitted on everything) will give to queries it has not seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from protege.config import RouteConfig
from protege.route.metrics import pgr_curve, share_to_reach, target_level
from protege.route.routers import SCORERS, Queries


def fold_ids(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold number per example; stratified by label when each label has enough examples."""
    from sklearn.model_selection import KFold, StratifiedKFold

    counts = np.bincount(y, minlength=2)
    if counts.min() >= folds:
        splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    else:
        splits = KFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)))
    ids = np.empty(len(y), dtype=np.int64)
    for f, (_, test) in enumerate(splits):
        ids[test] = f
    return ids


def _subset(q: Queries, idx: np.ndarray) -> Queries:
    pick = lambda a: None if a is None else a[idx]  # noqa: E731
    return Queries([q.texts[i] for i in idx], pick(q.emb), pick(q.mean_logprob), pick(q.min_logprob))


def out_of_fold_scores(kind: str, queries: Queries, y: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each example scored by a `kind` router fitted without its fold."""
    scores = np.empty(len(y), dtype=np.float64)
    for f in np.unique(folds):
        train, test = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
        scorer = SCORERS[kind].fit(_subset(queries, train), y[train])
        scores[test] = scorer.score(_subset(queries, test))
    return scores


@dataclass(frozen=True)
class Calibration:
    threshold: float
    teacher_share: float  # share of the labelled queries at or above the threshold
    expected_quality: float  # out-of-fold mean quality at that share
    by: str  # "target_quality" or "teacher_budget"


def threshold_for(scores: np.ndarray, teachers: int) -> float:
    """A threshold sending the `teachers` highest-scored queries to the teacher (score >= it).

    Between two scores it is their midpoint; queries tied at the cut all go to the teacher.
    """
    s = np.sort(scores)[::-1]
    if teachers <= 0:
        return float(s[0] + 1.0)  # above every score seen: all to the student
    if teachers >= len(s):
        return float(s[-1])
    return float((s[teachers - 1] + s[teachers]) / 2)


def calibrate(scores: np.ndarray, q_student: np.ndarray, q_teacher: np.ndarray, config: RouteConfig) -> Calibration:
    """The fewest teacher calls reaching target_quality x teacher-only quality; or, when
    teacher_budget is set, that share of calls (the owner's cap on cost comes first)."""
    n = len(scores)
    pgr = pgr_curve(scores, q_student, q_teacher)
    if config.teacher_budget is not None:
        teachers, by = int(math.floor(config.teacher_budget * n + 1e-9)), "teacher_budget"
    else:
        share = share_to_reach(pgr, target_level(q_student, q_teacher, config.target_quality))
        teachers, by = int(math.ceil(share * n - 1e-9)), "target_quality"
    threshold = threshold_for(scores, teachers)
    chosen = scores >= threshold
    quality = float(np.mean(np.where(chosen, q_teacher, q_student)))
    return Calibration(threshold, float(chosen.mean()), quality, by)
