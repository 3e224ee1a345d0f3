"""The distillation ablation: SFT only, KD only and SFT+KD, on the same rows, steps and seed.

Run it on a project that `protege run` has finished (it reads that run's eval report). The trained
run in the report is one arm (its `train.kd_weight`, 0.5 by default: SFT+KD); the other arms are
trained here with only `kd_weight` changed (0 = cross-entropy on the teacher's answer alone, 1 =
the KD term alone, on the teacher's top-k logprobs). Each arm answers the same held-out questions
with greedy decoding through llama-server, and is scored by fact recall, which needs no judge: the
untrained student's and the teacher's answers come from the report, so every arm is compared
with them question by question (paired differences, paired bootstrap intervals).

Each arm is trained in its own scratch project under artifacts/ablation/, so the project's own
runs, LATEST and reports are never touched.

    .venv/bin/python bench/kd_ablation.py --project examples/riverbend-bikes [--judge]
    .venv/bin/python bench/kd_ablation.py --project DIR --quick    # the --quick sizes (tests)

--judge also scores each arm with the project's judge (the rubric; one call per answer).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ARMS = {0.0: "SFT only", 1.0: "KD only", 0.5: "SFT+KD"}


def _arm_name(weight: float) -> str:
    return ARMS.get(weight, f"kd_weight {weight:g}")


def _report_results(project: Any) -> tuple[Any, list[dict[str, Any]]]:
    """The trained run the project's report evaluated, and that report's per-question results."""
    from protege.artifacts import read_jsonl
    from protege.evaluate.stage import find_trained_run

    trained = find_trained_run(project, None)
    if trained is None:
        sys.exit(f"error: {project.root}: no trained run; run `protege run {project.root}` first")
    results = project.paths.report(trained.name) / "results.jsonl"
    if not results.is_file():
        sys.exit(f"error: {results} not found; run `protege eval {project.root}` first")
    return trained, read_jsonl(results)


def _scratch(project: Any, weight: float) -> Any:
    """A project folder of its own for one arm: the same config with kd_weight changed, the same rows."""
    from protege.project import Project

    root = project.paths.artifacts / "ablation" / f"kd-{weight:g}"
    data = root / "artifacts" / "data"
    shutil.copytree(project.paths.data, data, dirs_exist_ok=True)  # synth's rows and every harvested part
    cfg = project.config.model_copy(update={"train": project.config.train.model_copy(update={"kd_weight": weight})})
    (root / "protege.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude_none=True)), encoding="utf-8")
    return Project(root=root, config=cfg)


def _distillation(run_dir: Path) -> tuple[str, str]:
    """What the run's training did: token-kd, or sequence (cross-entropy alone) and why."""
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "unknown", f"no metrics.json in {run_dir}"
    return metrics.get("distillation", "unknown"), metrics.get("distillation_reason", "")


def _train(arm: Any) -> Path:
    from protege.train import latest_run
    from protege.train.stage import run as train_run

    done = latest_run(arm)
    if done is not None and (done / "adapter.gguf").is_file():
        return done / "adapter.gguf"  # an interrupted ablation resumes with the arms it finished
    return train_run(arm) / "adapter.gguf"


async def _answers(arm: Any, adapter: Path, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from protege.evaluate.stage import _answer_all
    from protege.models.endpoint import open_client

    client = open_client(arm.config.student, cache_path=arm.paths.cache_db, lora=adapter)
    try:
        return await _answer_all(client, items, arm.config.eval.max_tokens, False, lambda: None)
    finally:
        await client.aclose()


async def _rubric(project: Any, items: list[dict[str, Any]], answers: list[dict[str, Any]]) -> list[float | None]:
    from protege.evaluate import judge
    from protege.models.endpoint import open_client

    client = open_client(project.config.judge_model, cache_path=project.paths.cache_db)
    try:
        out = []
        for item, a in zip(items, answers):
            out.append(None if a["text"] is None else (await judge.rubric(client, item, a["text"])).value)
        return out
    finally:
        await client.aclose()


def _fmt(e: Any, pct: bool = False) -> str:
    if e.value is None:
        return f"n/a ({e.note})" if e.note else "n/a"
    if pct:
        ci = f" [{e.low * 100:.0f}%, {e.high * 100:.0f}%]" if e.low is not None else ""
        return f"{e.value * 100:.0f}%{ci}"
    ci = f" [{e.low:+.3f}, {e.high:+.3f}]" if e.low is not None else ""
    return f"{e.value:+.3f}{ci}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", required=True, type=Path)
    parser.add_argument("--quick", action="store_true", help="the --quick sizes and student, as `protege run --quick`")
    parser.add_argument("--judge", action="store_true", help="also score every arm with the project's judge")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    from protege.errors import ProtegeError
    from protege.evaluate.facts import fact_recall
    from protege.evaluate.stage import load_eval_rows
    from protege.evaluate.stats import gap_recovered, mean_difference
    from protege.loop import quick_project
    from protege.project import Project

    try:
        project = Project.load(args.project)
    except ProtegeError as exc:
        sys.exit(f"error: {exc}")
    if args.quick:
        project = quick_project(project)
    reported, results = _report_results(project)
    by_id = {it["id"]: it for it in load_eval_rows(project.paths.eval_jsonl)}  # prompts without the reference answer
    results = [r for r in results if r["id"] in by_id]
    items = [by_id[r["id"]] for r in results]
    untrained = [r["answers"]["untrained"]["fact_recall"] for r in results]
    teacher = [r["answers"]["teacher"]["fact_recall"] for r in results]
    rubric = {m: [r["answers"][m].get("rubric") for r in results] for m in ("untrained", "teacher")}

    configured = project.config.train.kd_weight
    arms: dict[float, dict[str, Any]] = {configured: {"source": f"the run evaluated in the report ({reported.name})",
                                                       "fact_recall": [r["answers"]["trained"]["fact_recall"] for r in results],
                                                       "rubric": [r["answers"]["trained"].get("rubric") for r in results],
                                                       "distillation": _distillation(reported.dir)}}  # fmt: skip
    for weight in sorted({0.0, 1.0, 0.5} - {configured}):
        t0 = time.monotonic()
        arm = _scratch(project, weight)
        print(f"== {_arm_name(weight)} (kd_weight {weight:g}): training in {arm.root}", flush=True)
        adapter = _train(arm)
        answers = asyncio.run(_answers(arm, adapter, items))
        arms[weight] = {"source": str(adapter.parent), "fact_recall": [fact_recall(a["text"], it)[0] for a, it in zip(answers, items)],
                        "rubric": asyncio.run(_rubric(project, items, answers)) if args.judge else None,
                        "distillation": _distillation(adapter.parent),
                        "seconds": round(time.monotonic() - t0, 1)}  # fmt: skip

    print(f"\nKD ablation on {project.root} ({len(items)} held-out questions; same rows, steps and seed per arm)")
    print("fact recall: mean | vs untrained, paired mean difference [95% CI] | gap recovered [95% CI]")
    rows = []
    for weight in sorted(arms, key=lambda w: list(ARMS).index(w) if w in ARMS else 9):
        fr = arms[weight]["fact_recall"]
        scored = [v for v in fr if v is not None]
        diff, gap = mean_difference(untrained, fr), gap_recovered(untrained, fr, teacher)
        row = {"arm": _arm_name(weight), "kd_weight": weight, "n": len(scored), "fact_recall": sum(scored) / len(scored) if scored else None,
               "vs_untrained": diff.to_dict(), "gap_recovered": gap.to_dict(), "source": arms[weight]["source"],
               "distillation": arms[weight]["distillation"][0]}  # fmt: skip
        line = f"  {row['arm']:<9} {row['fact_recall'] if row['fact_recall'] is not None else float('nan'):.3f} | {_fmt(diff)} | {_fmt(gap, pct=True)}"
        if args.judge and arms[weight].get("rubric") is not None:
            rgap = gap_recovered(rubric["untrained"], arms[weight]["rubric"], rubric["teacher"])
            row["gap_recovered_rubric"] = rgap.to_dict()
            line += f" | rubric gap recovered {_fmt(rgap, pct=True)}"
        print(line, flush=True)
        rows.append(row)
    for name, col in (("untrained", untrained), ("teacher", teacher)):
        scored = [v for v in col if v is not None]
        print(f"  {name:<9} {sum(scored) / len(scored) if scored else float('nan'):.3f} (from the report)")
    if any(a["distillation"][0] != "token-kd" for a in arms.values()):
        why = "; ".join(sorted({a["distillation"][1] for a in arms.values() if a["distillation"][0] != "token-kd"}))
        print(f"  note: KD did not run in every arm ({why}): such an arm trained on cross-entropy alone, "
              "so it measures the same objective as SFT only", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"project": str(project.root), "n": len(items), "arms": rows}, indent=1, default=str))
    print(f"\nArms' runs are in {project.paths.artifacts / 'ablation'}; the project's own runs are untouched.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
