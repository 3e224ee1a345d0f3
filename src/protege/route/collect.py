"""More labelled queries for the router: teacher-written ones (--extra N) and logged traffic (--traffic).

Each new query is answered by the student the router is for and by the teacher, and both answers
are judged with the eval stage's judge (rubric; position-swapped pairwise too when the router
learns from it, route.label `pairwise`), giving rows in
the results.jsonl format plus `route_source`. They are kept in artifacts/router/labelled.jsonl
and used by every later fit. All model calls go through the project's cache, so a re-run costs
nothing and an interrupted one resumes.

Extra queries are written from the documents with the synth stage's question writer, under a
seed of their own, so they are new questions about the same material. Traffic rows are the
gateway's answered requests (route student or teacher, status ok) from artifacts/traffic.db or
the gateway's `--db` database (SQLite or PostgreSQL, read through protege.traffic), newest first, a seeded sample of those not labelled yet: the threshold then follows the
owner's real queries as they drift.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from pathlib import Path
from typing import Any

from protege.errors import ProtegeError
from protege.project import Project
from protege.route.labels import query_text, read_jsonl

TRAFFIC_SAMPLE = 50  # traffic queries judged per --traffic run
TRAFFIC_WINDOW = 1000  # newest answered requests the sample is drawn from
SOURCE_CHUNKS = 2  # document chunks shown to the judge as the SOURCE of a traffic query
EXTRA_SEED_OFFSET = 7919  # extra questions differ from synth's for the same config seed
NO_REFERENCE = "(no reference answer for this question: judge against the SOURCE)"


def _system(project: Project) -> str:
    return project.system_prompt()


async def _extra_items(project: Project, n: int, teacher: Any) -> list[dict[str, Any]]:
    from protege.corpus import load_chunks
    from protege.synth.questions import plan_questions, question_id, write_plan

    cfg = project.config
    chunks = load_chunks(project)
    seed = cfg.route.seed + EXTRA_SEED_OFFSET
    synth = cfg.synth.model_copy(update={"questions_per_chunk": max(1, math.ceil(n / len(chunks))), "seed": seed})
    plan = plan_questions(chunks, synth)
    plan = sorted(random.Random(seed).sample(plan, min(n, len(plan))), key=lambda q: q.index)
    written = await write_plan(teacher, plan, project.name, seed)
    questions = [w.question if w else None for w in written]
    system = _system(project)
    return [
        {"id": "x-" + question_id(q, text).removeprefix("q-"), "type": q.type, "question": text,
         "messages": [{"role": "system", "content": system}, {"role": "user", "content": text}],
         "reference": NO_REFERENCE, "source": {"chunks": q.chunk_ids, "text": "\n\n".join(c.text for c in q.chunks)},
         "route_source": "extra"}
        for q, text in zip(plan, questions) if text
    ]  # fmt: skip


def traffic_rows(project: Project, db: str | None, exclude: set[str], sample: int, seed: int) -> list[dict[str, Any]]:
    """A seeded sample of the newest answered requests not labelled yet, read through the
    gateway's own traffic log code (artifacts/traffic.db, or the `--db` database)."""
    from protege.traffic import answered, database_url, make_engine

    if db is None and not project.paths.traffic_db.is_file():
        raise ProtegeError(f"{project.paths.traffic_db}: no traffic log yet",
                           hint="serve the project (`protege serve DIR`) and let it answer some requests")  # fmt: skip
    engine = make_engine(database_url(db, project.paths.traffic_db))
    try:
        rows = answered(engine, project.name, TRAFFIC_WINDOW)
    finally:
        engine.dispose()
    fresh = [(i, m) for i, m in rows if f"t-{i}" not in exclude]
    picked = random.Random(seed).sample(fresh, min(sample, len(fresh)))
    out = []
    for request_id, raw in picked:
        try:
            messages = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(messages, list) and query_text(messages).strip():
            out.append({"id": f"t-{request_id}", "messages": messages})
    return out


def _traffic_items(project: Project, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Traffic rows as judge-ready items: the persona if the client sent none, and the chunks
    most similar to the query as the judge's SOURCE."""
    from protege.corpus import load_chunks
    from protege.models.embeddings import encode

    if not rows:
        return []
    chunks = load_chunks(project)
    questions = [query_text(r["messages"]) for r in rows]
    sims = encode(questions) @ encode([c.text for c in chunks]).T
    system = _system(project)
    items = []
    for row, question, sim in zip(rows, questions, sims):
        msgs = row["messages"]
        if not any(m.get("role") == "system" for m in msgs):
            msgs = [{"role": "system", "content": system}, *msgs]
        top = [chunks[i] for i in sim.argsort()[::-1][:SOURCE_CHUNKS]]
        items.append({"id": row["id"], "type": "traffic", "question": question, "messages": msgs, "reference": NO_REFERENCE,
                      "source": {"chunks": [c.id for c in top], "text": "\n\n".join(c.text for c in top)},
                      "route_source": "traffic"})  # fmt: skip
    return items


async def _label(project: Project, items: list[dict[str, Any]], clients: dict[str, Any], progress: Any) -> list[dict[str, Any]]:
    """Answer with the student and the teacher, then judge: results.jsonl rows."""
    from protege.evaluate.stage import answer_fields, judge_all, judges_pairwise

    max_tokens = project.config.eval.max_tokens
    student_logprobs = await clients["student"].supports_logprobs()

    async def answer(name: str, item: dict[str, Any], task: Any) -> dict[str, Any]:
        try:
            c = await clients[name].complete(item["messages"], max_tokens=max_tokens, temperature=0.0,
                                             top_logprobs=1 if name == "student" and student_logprobs else 0)  # fmt: skip
            fields = answer_fields(c, None)
        except ProtegeError as exc:
            fields = answer_fields(None, str(exc))
        progress.advance(task)
        return fields

    answers: dict[str, list[dict[str, Any]]] = {}
    for name in ("student", "teacher"):  # one model at a time, so latencies measure the model
        task = progress.add_task(f"answers: {name}", total=len(items))
        answers[name] = [await answer(name, it, task) for it in items]

    await judge_all(clients["judge"], items, answers, pairwise=judges_pairwise(project.config), progress=progress)
    return [{**it, "answers": {"student": answers["student"][i], "teacher": answers["teacher"][i]}} for i, it in enumerate(items)]


async def _collect(project: Project, *, extra: int, traffic_found: list[dict[str, Any]], student_key: str, progress: Any) -> list[dict[str, Any]]:
    from protege.evaluate.stage import find_trained_run
    from protege.models.endpoint import open_client

    cfg = project.config
    cache = project.paths.cache_db
    trained = find_trained_run(project, None) if student_key == "trained" else None
    if student_key == "trained" and trained is None:
        raise ProtegeError("the eval results are for a trained student, but artifacts/models/LATEST names none", hint="run `protege train DIR`")
    clients = {
        "teacher": open_client(cfg.teacher, cache_path=cache),
        "student": open_client(cfg.student, cache_path=cache, lora=trained.adapter if trained else None),
        "judge": open_client(cfg.judge_model, cache_path=cache),
    }
    try:
        items = []
        if extra:
            task = progress.add_task(f"writing {extra} extra questions", total=None)
            items += await _extra_items(project, extra, clients["teacher"])
            progress.update(task, total=1, completed=1)
        items += _traffic_items(project, traffic_found)
        rows = await _label(project, items, clients, progress) if items else []
    finally:
        for c in clients.values():
            await c.aclose()
    for row in rows:  # store under the student's key, as the eval stage does
        row["answers"] = {student_key: row["answers"]["student"], "teacher": row["answers"]["teacher"]}
    return rows


def collect(project: Project, path: Path, *, extra: int, traffic: bool, student_key: str, db: str | None = None) -> list[str]:
    """Label new queries into `path` (merged by id); returns notes for the terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from protege.console import err

    stored = read_jsonl(path) if path.is_file() else []
    found = []
    if traffic:
        found = traffic_rows(project, db, {str(r.get("id")) for r in stored}, TRAFFIC_SAMPLE,
                             project.config.route.seed + len(stored))  # fmt: skip
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=err) as progress:
        rows = asyncio.run(_collect(project, extra=extra, traffic_found=found, student_key=student_key, progress=progress))
    merged = {str(r.get("id")): r for r in stored} | {r["id"]: r for r in rows}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in merged.values()), encoding="utf-8")
    tmp.replace(path)
    notes = []
    if extra:
        notes.append(f"labelled {sum(r['route_source'] == 'extra' for r in rows)} extra teacher-written queries (asked for {extra})")
    if traffic:
        notes.append(f"labelled {len(found)} logged traffic queries (sample of up to {TRAFFIC_SAMPLE} not labelled before)")
    notes.append(f"{len(merged)} labelled queries kept in {path}")
    return notes
