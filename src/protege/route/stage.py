"""The route stage: label queries, cross-validate four routers, keep the best, calibrate, save.

    result = run(project, extra=0, traffic=False, db=None)

Reads the eval results (artifacts/reports/<run>/results.jsonl) plus any labelled extra or
traffic queries (artifacts/router/labelled.jsonl, grown by --extra and --traffic, the traffic read
from artifacts/traffic.db or the gateway's `db`), and writes
artifacts/router/: router.json, router.npz, curve.csv, curve.png.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from protege import __version__
from protege.config import RouteConfig, section_hash
from protege.errors import ProtegeError
from protege.project import Project
from protege.route import curve as curves
from protege.route.calibrate import Calibration, calibrate, fold_ids, out_of_fold_scores
from protege.route.labels import Examples, build_examples, read_jsonl, student_key
from protege.route.metrics import NoGapError, RouterMetrics, check_gap, router_metrics
from protege.route.router import Router, read_info, save
from protege.route.routers import KINDS, SCORERS, Queries, Random

LABELLED = "labelled.jsonl"
PREVIOUS_CURVE = "curve.previous.csv"


@dataclass
class Evaluation:
    """Out-of-fold scores and metrics of every router, the choice and its calibration."""

    q_student: np.ndarray
    q_teacher: np.ndarray
    scores: dict[str, np.ndarray]
    metrics: dict[str, RouterMetrics]
    unavailable: dict[str, str]
    chosen: str
    calibration: Calibration
    cascade_latency: dict[str, float] | None


@dataclass
class FitResult:
    router_dir: Path
    n: int
    sources: dict[str, int]
    skipped: dict[str, int]
    measure: str
    q_student: float
    q_teacher: float
    evaluation: Evaluation | None = None
    degenerate: str | None = None
    previous: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def evaluate_routers(examples: Examples, emb: np.ndarray | None, config: RouteConfig) -> Evaluation:
    """Cross-validate every available router on the examples and pick the best by APGR.

    Ties go to the earlier kind in KINDS (learned before random, embedding routers before the
    cascade, whose escalations cost the student's generation time).
    """
    qs, qt, y = examples.q_student, examples.q_teacher, examples.y
    mean_lp, min_lp = examples.logprobs("mean_logprob"), examples.logprobs("min_logprob")
    queries = Queries(examples.queries, emb, mean_lp, min_lp)
    folds = fold_ids(y, config.folds, config.seed)
    unavailable: dict[str, str] = {}
    if emb is None:
        unavailable["sw_ranking"] = unavailable["classifier"] = "no embeddings"
    missing = int(np.isnan(mean_lp).sum() + np.isnan(min_lp).sum())
    if missing:
        unavailable["cascade"] = f"{missing} student logprob value(s) missing (the endpoint gave none)"
    scores, metrics = {}, {}
    for kind in KINDS:
        if kind in unavailable:
            continue
        scores[kind] = out_of_fold_scores(kind, queries, y, folds)
        metrics[kind] = router_metrics(scores[kind], qs, qt, target=config.target_quality, seed=config.seed)
    chosen = max(metrics, key=lambda k: (metrics[k].apgr.value, -KINDS.index(k)))
    cal = calibrate(scores[chosen], qs, qt, config)
    cascade_latency = None
    if "cascade" in scores:
        cc = calibrate(scores["cascade"], qs, qt, config)
        escalated = scores["cascade"] >= cc.threshold
        wasted = examples.student_latency_s * escalated
        cascade_latency = {
            "escalated_share": round(float(escalated.mean()), 4),
            "extra_latency_s_per_query": round(float(wasted.mean()), 4),
            "extra_latency_s_per_escalation": round(float(wasted.sum() / max(escalated.sum(), 1)), 4),
        }
    return Evaluation(qs, qt, scores, metrics, unavailable, chosen, cal, cascade_latency)


def find_results(project: Project) -> Path:
    """results.jsonl of the latest trained run's report, else the newest report's."""
    reports = project.paths.reports
    latest = project.paths.latest_run()
    if latest is not None and (named := reports / latest / "results.jsonl").is_file():
        return named
    found = sorted(reports.glob("*/results.jsonl"), key=lambda p: p.stat().st_mtime) if reports.is_dir() else []
    if not found:
        raise ProtegeError(f"no eval results in {reports}", hint="run `protege eval DIR` first")
    return found[-1]


def _stored_rows(router_dir: Path) -> list[tuple[str, list[dict[str, Any]]]]:
    path = router_dir / LABELLED
    if not path.is_file():
        return []
    by_source: dict[str, list[dict[str, Any]]] = {}
    for row in read_jsonl(path):
        by_source.setdefault(str(row.get("route_source", "extra")), []).append(row)
    return list(by_source.items())


def _previous(router_dir: Path) -> dict[str, Any] | None:
    """What the last fit said, kept for the report; a damaged old router is simply not shown."""
    try:
        old = read_info(router_dir)
    except ProtegeError:
        return None
    if (router_dir / "curve.csv").is_file():
        shutil.copyfile(router_dir / "curve.csv", router_dir / PREVIOUS_CURVE)
    chosen = old.get("kind")
    return {
        "kind": chosen,
        "threshold": old.get("threshold"),
        "n": (old.get("data") or {}).get("n"),
        "apgr": ((old.get("metrics") or {}).get(chosen) or {}).get("apgr"),
        "teacher_share": (old.get("target") or {}).get("teacher_share"),
        "created": (old.get("meta") or {}).get("created"),
    }


def run(project: Project, *, extra: int = 0, traffic: bool = False, db: str | None = None) -> FitResult:
    """Fit, choose, calibrate and save the router; see the module docstring."""
    cfg = project.config.route
    router_dir = project.paths.router
    results_path = find_results(project)
    eval_rows = read_jsonl(results_path)
    key = student_key(eval_rows)
    notes = []
    if extra or traffic:
        from protege.route.collect import collect

        notes += collect(project, router_dir / LABELLED, extra=extra, traffic=traffic, student_key=key, db=db)
    examples = build_examples([("eval", eval_rows), *_stored_rows(router_dir)], cfg, key)
    measure = "rubric score" if cfg.label == "margin" else "share not worse than the teacher"
    if len(examples) < cfg.min_examples:
        raise ProtegeError(
            f"only {len(examples)} usable labelled queries ({results_path}); a router needs at least {cfg.min_examples}"
            + (f"; skipped: {dict(examples.skipped)}" if examples.skipped else ""),
            hint="evaluate more questions, or add some with `protege route fit DIR --extra 40`",
        )
    if len(examples) < 2 * cfg.folds:
        raise ProtegeError(f"{len(examples)} labelled queries are too few for {cfg.folds}-fold cross-validation", hint="lower route.folds or add --extra N")
    result = FitResult(router_dir, len(examples), examples.sources(), dict(examples.skipped), measure,
                       float(examples.q_student.mean()), float(examples.q_teacher.mean()), notes=notes)  # fmt: skip
    info: dict[str, Any] = {
        "label": {"rule": cfg.label, "margin": cfg.margin, "student": key},
        "quality": {"measure": measure, "student_only": round(result.q_student, 4), "teacher_only": round(result.q_teacher, 4)},
        "data": {"n": len(examples), "sources": result.sources, "skipped": result.skipped, "results": str(results_path)},
        "embedding": "minilm-l6-v2",
        "meta": {"config_hash": section_hash(cfg), "code_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
    }
    router_dir.mkdir(parents=True, exist_ok=True)
    result.previous = _previous(router_dir)
    info["previous"] = result.previous
    try:
        check_gap(examples.q_student, examples.q_teacher, measure)
    except NoGapError as exc:
        # Still a valid router: every query goes to the student (random scores are < 1.0).
        result.degenerate = str(exc)
        save(router_dir, Router(Random(), 1.0, {**info, "degenerate": result.degenerate}))
        return result

    from protege.models.embeddings import encode

    emb = encode(examples.queries)
    ev = evaluate_routers(examples, emb, cfg)
    result.evaluation = ev
    final = SCORERS[ev.chosen].fit(Queries(examples.queries, emb, examples.logprobs("mean_logprob"), examples.logprobs("min_logprob")), examples.y)
    cal = ev.calibration
    info.update(
        target={"quality": cfg.target_quality, "teacher_budget": cfg.teacher_budget, "by": cal.by,
                "teacher_share": round(cal.teacher_share, 4), "student_share": round(1 - cal.teacher_share, 4),
                "expected_quality": round(cal.expected_quality, 4)},  # fmt: skip
        metrics={k: m.as_dict() for k, m in ev.metrics.items()},
        unavailable=ev.unavailable,
        chosen_by={"metric": "APGR", "how": f"{cfg.folds}-fold cross-validation, out-of-fold scores; 95% intervals by bootstrap over queries",
                   "apgr": {k: m.apgr.value for k, m in ev.metrics.items()}, "chosen": ev.chosen},  # fmt: skip
        cascade=ev.cascade_latency,
    )
    save(router_dir, Router(final, cal.threshold, info))
    n = len(examples)
    shares = np.arange(n + 1) / n
    columns = {k: curves.quality_curve(s, ev.q_student, ev.q_teacher) for k, s in ev.scores.items()}
    columns[curves.RANDOM_LINE] = ev.q_student.mean() + shares * (ev.q_teacher.mean() - ev.q_student.mean())
    curves.write_csv(router_dir / "curve.csv", shares, columns)
    previous_curve = router_dir / PREVIOUS_CURVE
    curves.plot(
        router_dir / "curve.png", {curves.SHARE: shares, **columns}, chosen=ev.chosen, measure=measure,
        target=cfg.target_quality,
        previous=curves.read_csv(previous_curve) if result.previous and previous_curve.is_file() else None,
        previous_kind=(result.previous or {}).get("kind"),
    )  # fmt: skip
    return result

