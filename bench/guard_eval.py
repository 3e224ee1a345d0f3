"""The distilled guard against the teacher-guard it learned from, and every layer, on the labelled set.

    .venv/bin/python bench/guard_eval.py            # every configuration; the teacher-guard answers each row of the split (cached)
    .venv/bin/python bench/guard_eval.py --quick    # the teacher-guard is NOT run: its rows replay the verdicts the
                                                    # last full run recorded (tests/data/guard/teacher_verdicts.jsonl)
    .venv/bin/python bench/guard_eval.py --llm ollama:llama-guard3   # another LLM guard in the teacher's place

Configurations, scored on the held-out split (--split): the rule layer; the teacher-guard (the LLM
guard on the embedded teacher, constrained output); rules + teacher-guard (`Guard.check` with
guard.llm); the distilled guard (the shipped classifier, or --classifier DIR); rules + distilled
(`Guard.check` with guard.classifier). Per category group (metrics.GROUPS): recall over the
group's unsafe rows, precision over the rows flagged under the group's categories; then every
unsafe row against every safe row, and latency p50/p99 per check. Rules and the distilled guard
are timed here; the teacher's time is what its call took when it was made (a cached call keeps it).
Run it under the CPU lock: the figures are timings.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time
from pathlib import Path

import record

from protege.config import DEFAULT_TEACHER, ModelConfig
from protege.guard import Guard
from protege.guard.classifier import DEFAULT_DIR, load
from protege.guard.llm import VERDICT_FORMAT, GuardFormatError, LLMGuard, conversation_for
from protege.guard.metrics import GROUPS, Prediction, group_scores, injection_score, load_labeled, percentile, pii_score

DATA = Path(__file__).parents[1] / "tests" / "data" / "guard"
LABELED, RECORDED = DATA / "labeled.jsonl", DATA / "teacher_verdicts.jsonl"


def conversation(row: dict) -> list[dict[str, str]]:
    context = [{"role": "user", "content": "(question)"}] if row["role"] == "assistant" else []
    return conversation_for([*context, {"role": row["role"], "content": row["text"]}], row["role"])


def prompt_sha(guard: LLMGuard) -> str:
    """What the recorded verdicts were asked with: the model, the prompt around a turn, the schema."""
    shape = [guard.model.ref, guard._messages([{"role": "user", "content": "{turn}"}]), VERDICT_FORMAT if guard.constrained else None]
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()


async def ask_teacher(rows: list[dict], guard: LLMGuard) -> list[tuple[str, float]]:
    """(answer, seconds) per row, asked live (through the cache); prints progress."""
    out, t0 = [], time.perf_counter()
    for i, r in enumerate(rows, 1):
        c = await guard.answer(conversation(r))
        out.append((c.text, c.latency_s))
        if i % 25 == 0:
            print(f"  teacher-guard {i}/{len(rows)} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr, flush=True)
    await guard.aclose()
    return out


def recorded(path: Path, sha: str) -> dict[tuple[str, str], tuple[str, float]] | None:
    """The recorded (answer, seconds) by (role, text), or None when they were asked another way."""
    if not path.is_file():
        return None
    header, *lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if header.get("prompt_sha256") != sha:
        return None
    return {(r["role"], r["text"]): (r["answer"], r["latency_s"]) for r in lines}


def record_verdicts(path: Path, guard: LLMGuard, rows: list[dict], answers: list[tuple[str, float]]) -> None:
    """Write the teacher's (answer, seconds) per row, beside those recorded before with the same prompt."""
    header = {"model": guard.model.ref, "prompt_sha256": prompt_sha(guard), "note": "written by bench/guard_eval.py"}
    merged = (recorded(path, header["prompt_sha256"]) or {}) | {(r["role"], r["text"]): a for r, a in zip(rows, answers)}
    lines = [header] + [{"role": role, "text": text, "answer": a, "latency_s": round(s, 4)} for (role, text), (a, s) in merged.items()]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    tmp.replace(path)


def teacher_predictions(guard: LLMGuard, answers: list[tuple[str, float]]) -> list[Prediction]:
    preds = []
    for raw, seconds in answers:
        try:
            v = guard.read(raw)
            preds.append(Prediction(not v.safe, tuple(v.categories), seconds * 1000))
        except GuardFormatError:
            preds.append(Prediction(True, ("guard-error",), seconds * 1000))  # fail closed, as Guard.check does
    return preds


def timed_checks(guard: Guard, rows: list[dict]) -> list[Prediction]:
    """Guard.check on each row, timed (rules, and the classifier when the guard has one)."""
    preds = []
    for r in rows:
        messages = [{"role": "user", "content": "(question)"}] * (r["role"] == "assistant") + [{"role": r["role"], "content": r["text"]}]
        t0 = time.perf_counter()
        v = asyncio.run(guard.check(messages, role=r["role"]))
        preds.append(Prediction(not v.safe, tuple(v.categories), (time.perf_counter() - t0) * 1000))
    return preds


def timed_classifier(clf, rows: list[dict]) -> list[Prediction]:
    preds = []
    for r in rows:
        t0 = time.perf_counter()
        v = clf.check(r["text"])
        preds.append(Prediction(v.unsafe, (v.category,) * v.unsafe, (time.perf_counter() - t0) * 1000))
    return preds


def then(first: list[Prediction], second: list[Prediction]) -> list[Prediction]:
    """Layers in order: the first's flag stands (and the second is not asked), else the second decides."""
    return [a if a.unsafe else Prediction(b.unsafe, b.categories, a.ms + b.ms) for a, b in zip(first, second)]


def fmt(x: float | None) -> str:
    return "  n/a" if x is None else f"{x:.3f}"


def table(rows: list[dict], configs: dict[str, list[Prediction]]) -> None:
    print("\n| configuration | precision | recall | p50 ms | p99 ms |\n| --- | --- | --- | --- | --- |")
    scores = {name: group_scores(rows, preds) for name, preds in configs.items()}
    for name, preds in configs.items():
        s = scores[name]["all unsafe"]
        ms = [p.ms for p in preds]
        print(f"| {name} | {fmt(s.precision)} ({s.right}/{s.flagged}) | {fmt(s.recall)} ({s.caught}/{s.total}) "
              f"| {percentile(ms, 0.5):.2f} | {percentile(ms, 0.99):.2f} |")  # fmt: skip
    print("\nper category group: recall (caught/unsafe rows) / precision (unsafe among rows flagged in the group)\n")
    print("| configuration | " + " | ".join(GROUPS) + " |\n| --- |" + " --- |" * len(GROUPS))
    for name in configs:
        cells = [f"{fmt(g.recall)} ({g.caught}/{g.total}) / {fmt(g.precision)}" for g in (scores[name][k] for k in GROUPS)]
        print(f"| {name} | " + " | ".join(cells) + " |")


def compare(run: record.BenchRun, rows: list[dict], ours: list[Prediction], peer: list[Prediction], peer_name: str) -> None:
    """The distilled guard's figures beside the teacher-guard's, on every unsafe row against every safe one."""
    mine, theirs = group_scores(rows, ours)["all unsafe"], group_scores(rows, peer)["all unsafe"]
    for figure, a, b in (("recall on unsafe rows", mine.recall, theirs.recall), ("precision", mine.precision, theirs.precision)):
        run.compare(figure, ours=a or 0.0, peer=b or 0.0, peer_name=peer_name, unit="", better="higher")
    for q in (0.5, 0.99):
        run.compare(f"p{round(q * 100)} ms per check", ours=percentile([p.ms for p in ours], q),
                    peer=percentile([p.ms for p in peer], q), peer_name=peer_name, unit="ms", better="lower")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["heldout", "train", "all"], default="heldout")
    ap.add_argument("--llm", default=DEFAULT_TEACHER, help="the LLM guard's model reference (default: the embedded teacher)")
    ap.add_argument("--classifier", type=Path, default=DEFAULT_DIR, help="the distilled guard's folder")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/protege-guard-eval-cache.db"))
    args = record.parse(ap, quick={})
    with record.BenchRun("guard_eval", args) as run:
        evaluate(run, args)


def evaluate(run: record.BenchRun, args: argparse.Namespace) -> None:
    every = load_labeled(LABELED)
    rows = every if args.split == "all" else [r for r in every if r["split"] == args.split]
    sizes = (f"the {args.split} split of the labelled set: {len(rows)} rows, {sum(r['label'] == 'unsafe' for r in rows)} "
             f"unsafe ({sum(r['injection'] for r in rows)} of them injections)")  # fmt: skip
    print(sizes)
    run.note(sizes + f"; distilled guard: {args.classifier.name}; teacher-guard: {args.llm}, constrained output")
    print(f"rule layer  PII spans (kind+text exact)  {pii_score(rows).row()}")
    print(f"rule layer  injection (user turns)      {injection_score(rows).row()}")

    clf = load(args.classifier)
    clf.check("warm-up: load the encoder and pick its threads")
    rules = timed_checks(Guard(), rows)
    configs: dict[str, list[Prediction]] = {"rules": rules}
    llm = LLMGuard(ModelConfig(ref=args.llm, concurrency=1), cache_path=args.cache)
    answers = None
    if args.quick:
        replay = recorded(RECORDED, prompt_sha(llm)) if args.llm == DEFAULT_TEACHER else None
        if replay is not None and all((r["role"], r["text"]) in replay for r in rows):
            answers = [replay[(r["role"], r["text"])] for r in rows]
            run.note(f"--quick: the teacher-guard was NOT run; its figures replay {RECORDED.name}, the answers and "
                     "times of the last full run")  # fmt: skip
    else:  # the split's rows only (--split all: every row); the record keeps earlier runs' other rows
        answers = asyncio.run(ask_teacher(rows, llm))
        if args.llm == DEFAULT_TEACHER:
            record_verdicts(RECORDED, llm, rows, answers)
    distilled = timed_classifier(clf, rows)
    if answers is not None:
        teacher = teacher_predictions(llm, answers)
        configs |= {"teacher-guard": teacher, "rules + teacher-guard": then(rules, teacher)}
    configs |= {"distilled": distilled, "rules + distilled": timed_checks(Guard(classifier=clf), rows)}
    table(rows, configs)
    covered = [i for i, r in enumerate(rows) if not r["injection"]]
    s = group_scores([rows[i] for i in covered], [distilled[i] for i in covered])["all unsafe"]
    line = (f"distilled, on the rows it is trained for (S1-S14; injection rows left to the rules): precision "
            f"{fmt(s.precision)} ({s.right}/{s.flagged}), recall {fmt(s.recall)} ({s.caught}/{s.total})")  # fmt: skip
    print("\n" + line)
    run.note(line)
    if answers is None:
        run.peer_missing("teacher-guard", f"{RECORDED.name} has no verdicts for this prompt and set: run without --quick")
    else:
        compare(run, rows, distilled, configs["teacher-guard"], f"teacher-guard ({args.llm.split(':')[-1]})")


if __name__ == "__main__":
    main()
