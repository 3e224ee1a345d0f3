"""`protege run`: synth -> train -> eval -> route, each stage skipped when up to date.

A stage is up to date when its outputs exist and the fingerprint of its inputs (the config
sections it reads, the files it consumes, the code version) equals the one recorded in
artifacts/state.json when it last finished. Changing a config section re-runs that stage and
everything after it; an interrupted run resumes (synth and eval from the call cache, train from
its last checkpoint).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protege import __version__
from protege.config import QUICK_STUDENT, section_hash
from protege.console import err
from protege.project import Project

STAGES = ("synth", "train", "eval", "route")

# --quick: the smallest loop that still exercises every stage with real models (CI runs it),
# with the small student whatever protege.yaml names. Its run.json records that student, so
# eval, serve and resume never take a quick adapter for one of the configured student's.
# The router is fitted on a handful of queries here: a smoke test of the stage, not a router.
QUICK = {
    "synth": {"max_chunks": 6, "questions_per_chunk": 3, "answer_max_tokens": 64, "eval_fraction": 0.5},
    "train": {"max_steps": 8, "batch_size": 4, "checkpoint_every": 4},
    "eval": {"max_questions": 6, "max_tokens": 64, "bootstrap": 500},
    "route": {"folds": 2, "min_examples": 4},
}


def files_digest(*paths: Path) -> str:
    """Hash of file names and contents (folders recursively); missing paths count as absent."""
    h = hashlib.sha256()
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            if f.is_file():
                h.update(str(f.relative_to(path.parent)).encode())
                h.update(f.read_bytes())
            else:
                h.update(f"absent:{f.name}".encode())
    return h.hexdigest()[:16]


def quick_project(project: Project) -> Project:
    """The same project with the --quick sizes applied in memory (protege.yaml is untouched)."""
    cfg = project.config
    update: dict[str, Any] = {name: getattr(cfg, name).model_copy(update=values) for name, values in QUICK.items()}
    update["student"] = cfg.student.model_copy(update={"ref": QUICK_STUDENT})
    return Project(root=project.root, config=cfg.model_copy(update=update))


def _latest_report(project: Project) -> Path | None:
    from protege.train import latest_run

    run = latest_run(project)
    return project.paths.report(run.name if run else "untrained")


def fingerprint(project: Project, stage: str) -> str:
    cfg, paths = project.config, project.paths
    if stage == "synth":
        parts: list[Any] = [cfg.synth, cfg.teacher, cfg.judge_model, cfg.persona, cfg.guard, files_digest(project.docs_dir, paths.persona)]
    elif stage == "train":
        from protege.dataset import training_files

        parts = [cfg.train, cfg.student, files_digest(*training_files(paths))]  # synth's rows and every harvest
    elif stage == "eval":
        from protege.train import latest_run

        run = latest_run(project)
        retrieval = [cfg.serve.teacher_retrieval, cfg.serve.retrieval_k, files_digest(project.docs_dir)]
        parts = [cfg.eval, cfg.judge_model, cfg.teacher, cfg.student, cfg.persona, retrieval,
                 files_digest(paths.eval_jsonl), files_digest(run / "adapter.gguf") if run else None]  # fmt: skip
    elif stage == "route":
        report = _latest_report(project)
        parts = [cfg.route, files_digest(report / "results.jsonl") if report else None]
    else:
        raise ValueError(stage)
    return section_hash(*parts, __version__)


def outputs_exist(project: Project, stage: str) -> bool:
    paths = project.paths
    if stage == "synth":
        return paths.train_jsonl.is_file() and paths.eval_jsonl.is_file()
    if stage == "train":
        from protege.train import latest_run

        run = latest_run(project)
        return run is not None and (run / "adapter.gguf").is_file()
    if stage == "eval":
        report = _latest_report(project)
        return report is not None and (report / "summary.json").is_file()
    return (paths.router / "router.json").is_file()


def read_state(project: Project) -> dict[str, Any]:
    try:
        return json.loads(project.paths.state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def record(project: Project, stage: str, seconds: float) -> None:
    state = read_state(project)
    state[stage] = {"fingerprint": fingerprint(project, stage), "seconds": round(seconds, 1), "finished": time.time()}
    project.paths.state.parent.mkdir(parents=True, exist_ok=True)
    tmp = project.paths.state.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
    tmp.replace(project.paths.state)


def up_to_date(project: Project, stage: str) -> bool:
    recorded = read_state(project).get(stage, {}).get("fingerprint")
    return outputs_exist(project, stage) and recorded == fingerprint(project, stage)


def _unfinished_training(project: Project) -> bool:
    from protege.train import unfinished_runs

    return bool(unfinished_runs(project))


def _run_synth(project: Project) -> None:
    from protege.console import err
    from protege.models.speed import duration
    from protege.synth import run

    timed = [r.seconds for r in run(project, dry_run=True).estimate if r.seconds is not None]
    if timed:  # at most: calls already in the cache are free
        err.print(f"[dim]synth: about {duration(sum(timed))} of local model calls at most (speeds measured here)[/]")
    run(project)


def _run_train(project: Project) -> None:
    from protege.train import run

    run(project, resume=_unfinished_training(project))


def _run_eval(project: Project) -> None:
    from protege.evaluate import run

    run(project)


def _run_route(project: Project) -> None:
    from protege.route import fit

    fit(project)


RUNNERS: dict[str, Callable[[Project], None]] = {
    "synth": _run_synth, "train": _run_train, "eval": _run_eval, "route": _run_route,
}  # fmt: skip


@dataclass
class LoopResult:
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def run_loop(project: Project, *, quick: bool = False, force: list[str] | None = None) -> LoopResult:
    """Run every stage that is not up to date, in order; a re-run stage re-runs what follows."""
    if quick:
        project = quick_project(project)
    forced = set(force or [])
    unknown = forced - set(STAGES)
    if unknown:
        from protege.errors import ProtegeError

        raise ProtegeError(f"--force: unknown stage(s) {sorted(unknown)}; stages: {', '.join(STAGES)}")
    result = LoopResult()
    dirty = False
    for i, stage in enumerate(STAGES, 1):
        if not dirty and stage not in forced and up_to_date(project, stage):
            err.print(f"[dim][{i}/{len(STAGES)}] {stage}: up to date, skipped[/]")
            result.skipped.append(stage)
            continue
        err.rule(f"[bold][{i}/{len(STAGES)}] {stage}[/]")
        t0 = time.monotonic()
        RUNNERS[stage](project)
        seconds = time.monotonic() - t0
        record(project, stage, seconds)
        result.ran.append(stage)
        result.seconds[stage] = seconds
        dirty = True
    result.summary = loop_summary(project)
    return result


def loop_summary(project: Project) -> dict[str, Any]:
    """The headline figures of the latest eval report and router, for the closing table."""
    report = _latest_report(project)
    summary: dict[str, Any] = {}
    if report and (report / "summary.json").is_file():
        summary["eval"] = json.loads((report / "summary.json").read_text(encoding="utf-8"))
        summary["report"] = str(report / "report.html")
    router = project.paths.router / "router.json"
    if router.is_file():
        summary["router"] = json.loads(router.read_text(encoding="utf-8"))
        summary["router_dir"] = str(project.paths.router)
    return summary


def _est(d: dict[str, Any] | None, digits: int = 2, unit: str = "", scale: float = 1.0) -> str:
    if not d or d.get("value") is None:
        return "n/a" + (f" ({d['note']})" if d and d.get("note") else "")
    text = f"{d['value'] * scale:.{digits}f}{unit}"
    if d.get("low") is not None and d.get("high") is not None:
        text += f" [{d['low'] * scale:.{digits}f}{unit}, {d['high'] * scale:.{digits}f}{unit}]"
    return text + (f" (n={d['n']})" if d.get("n") is not None else "")


def summary_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """(figure, value) rows for the closing table: what a person needs to decide to ship."""
    rows: list[tuple[str, str]] = []
    ev = summary.get("eval")
    if ev:
        for m in ("untrained", "trained", "teacher"):
            if m in ev["rubric"]:
                rows.append((f"quality, {m} (rubric 1-10, 95% CI)", _est(ev["rubric"][m])))
        for m in ("untrained", "trained", "teacher"):
            if m in ev.get("fact_recall", {}):
                rows.append((f"fact recall, {m} (key facts stated)", _est(ev["fact_recall"][m], 0, "%", 100.0)))
        rows.append(("gap recovered, rubric (paired, of teacher)", _est(ev["gap_recovered"], 0, "%", 100.0)))
        if "gap_recovered_fact_recall" in ev:
            rows.append(("gap recovered, fact recall (paired)", _est(ev["gap_recovered_fact_recall"], 0, "%", 100.0)))
        if "judge_agreement" in ev:
            rows.append(("judge vs fact recall (Spearman, per answer)", _est(ev["judge_agreement"]["spearman"])))
        voice = ev.get("voice")
        if voice:  # the creator flow: evaluate/voice.py
            for m, what in (("untrained", "untrained"), ("trained", "trained"), ("generic", "generic assistant")):
                if m in voice["style"]:
                    rows.append((f"style similarity to held-out posts, {what}", _est(voice["style"][m], 3)))
            for pair, d in voice["paired"].items():
                rows.append((f"style similarity, {pair} (paired)", _est(d, 3)))
        for m in ("trained", "teacher"):
            if m in ev["latency_s"]:
                rows.append((f"latency p50, {m}", _est(ev["latency_s"][m]["p50"], 2, " s")))
        for m in ("trained", "teacher"):
            if m in ev["cost_per_1k_queries_usd"]:
                rows.append((f"cost per 1,000 queries, {m}-only", "$" + _est(ev["cost_per_1k_queries_usd"][m], 4)))
    router = summary.get("router")
    if router:
        for label, value in router_rows(router, ev):
            rows.append((label, value))
    return rows


def router_rows(router: dict[str, Any], ev: dict[str, Any] | None) -> list[tuple[str, str]]:
    from protege.route.summary import headline

    return headline(router, ev)
