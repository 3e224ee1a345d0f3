"""Two eval runs side by side: `protege eval --compare RUN_A RUN_B`.

Reads each run's summary.json; where both runs' results.jsonl share questions, the difference
in the student's rubric score gets a paired bootstrap interval (the same questions, resampled
together), which the two summaries alone could not give.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protege.errors import ProtegeError
from protege.evaluate.metrics import read_results
from protege.evaluate.report import Block, Heading, Para, Table, est, main_student, render_html, render_md
from protege.evaluate.stats import mean_difference
from protege.project import Project


@dataclass
class Comparison:
    md_path: Path
    html_path: Path
    header: list[str]
    rows: list[list[str]]
    difference: dict[str, Any]


def _load(project: Project, run: str) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    folder = project.paths.report(run)
    path = folder / "summary.json"
    if not path.is_file():
        known = sorted(p.parent.name for p in project.paths.reports.glob("*/summary.json"))
        raise ProtegeError(
            f"{path}: not found (no eval report for run '{run}')",
            hint=f"run `protege eval {project.root} --run {run}` first; reports: {', '.join(known) or 'none'}",
        )
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ProtegeError(f"{path}: not valid JSON ({exc.msg})") from None
    results = folder / "results.jsonl"
    return summary, read_results(results) if results.is_file() else None


def paired_difference(a: list[dict[str, Any]], model_a: str, b: list[dict[str, Any]], model_b: str, metric: str = "rubric",
                      n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Mean of (B's score - A's score) over the questions both scored, with a paired bootstrap interval."""
    scores_a = {r["id"]: r["answers"][model_a].get(metric) for r in a}
    common = [r for r in b if r["id"] in scores_a]
    diff = mean_difference([scores_a[r["id"]] for r in common], [r["answers"][model_b].get(metric) for r in common],
                           n_resamples=n_resamples, seed=seed)  # fmt: skip
    return diff.to_dict() | {"common_questions": len(common)}


def compare(project: Project, run_a: str, run_b: str) -> Comparison:
    sa, ra = _load(project, run_a)
    sb, rb = _load(project, run_b)
    ma, mb = main_student(sa), main_student(sb)

    def both(fn) -> list[str]:  # noqa: ANN001
        return [fn(sa, ma), fn(sb, mb)]

    rows = [
        ["questions"] + both(lambda s, m: str(s["n_questions"])),
        ["student compared"] + both(lambda s, m: m + (" (no trained run)" if m == "untrained" else "")),
        ["gap recovered"] + both(lambda s, m: est(s["gap_recovered"])),
        ["mean rubric: student"] + both(lambda s, m: est(s["rubric"][m])),
        ["mean rubric: untrained"] + both(lambda s, m: est(s["rubric"]["untrained"])),
        ["mean rubric: teacher"] + both(lambda s, m: est(s["rubric"]["teacher"])),
        ["judge failures: student"] + both(lambda s, m: str(s["rubric"][m]["judge_failures"])),
        ["gap recovered, fact recall"] + both(lambda s, m: est(s.get("gap_recovered_fact_recall"), 0, 100, "%")),
        ["fact recall: student"] + both(lambda s, m: est(s.get("fact_recall", {}).get(m), 0, 100, "%")),
        ["fact recall: teacher"] + both(lambda s, m: est(s.get("fact_recall", {}).get("teacher"), 0, 100, "%")),
        ["win vs teacher"] + both(lambda s, m: est(s["pairwise"].get(m, {}).get("win"), 0, 100, "%")),
        ["loss vs teacher"] + both(lambda s, m: est(s["pairwise"].get(m, {}).get("loss"), 0, 100, "%")),
        ["similarity to reference"] + both(lambda s, m: est(s["similarity"][m], 3)),
        ["latency p50"] + both(lambda s, m: est(s["latency_s"][m]["p50"], 2, unit=" s")),
        ["tokens/s"] + both(lambda s, m: est(s["tokens_per_s"][m], 1)),
        ["cost per 1,000 queries (USD)"] + both(lambda s, m: est(s["cost_per_1k_queries_usd"][m], 4)),
        ["judge"] + both(lambda s, m: s["judge"]),
    ]
    header = ["figure", run_a, run_b]
    if ra is not None and rb is not None:
        diff = paired_difference(ra, ma, rb, mb)
        facts = paired_difference(ra, ma, rb, mb, "fact_recall")
        diff_text = (f"{run_b} - {run_a}, student's mean rubric on the {diff['n']} questions both scored "
                     f"({diff['common_questions']} in common): {est(diff)}; fact recall: {est(facts, 1, 100, ' pts')}")  # fmt: skip
    else:
        diff = {"value": None, "note": "results.jsonl missing for one run"}
        diff_text = "No paired difference: results.jsonl is missing for one of the runs."
    blocks: list[Block] = [
        Heading(f"protege eval: {run_a} vs {run_b}", 1),
        Para("Figures from each run's summary.json; intervals are 95%."),
        Table(header, rows),
        Para(f"**Paired difference:** {diff_text}"),
    ]
    if sa["n_questions"] != sb["n_questions"] or (diff.get("common_questions") not in (None, sa["n_questions"])):
        blocks.append(Para("**Note:** the two runs were not evaluated on the same questions; compare their figures with care."))
    stem = f"compare-{run_a}-vs-{run_b}"
    project.paths.reports.mkdir(parents=True, exist_ok=True)
    md_path = project.paths.reports / f"{stem}.md"
    html_path = project.paths.reports / f"{stem}.html"
    md_path.write_text(render_md(blocks), encoding="utf-8")
    html_path.write_text(render_html(blocks, project.paths.reports, f"protege eval: {run_a} vs {run_b}"), encoding="utf-8")
    return Comparison(md_path, html_path, header, rows, diff)
