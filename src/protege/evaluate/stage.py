"""The eval stage: answer every held-out question with three models, judge, write the report.

Answers are collected one model at a time and one request at a time, so a latency measures the
model, not a queue or a neighbour on the same cores; judging runs concurrently afterwards.
Every call goes through the project's cache, so a re-run is free and an interrupted run resumes.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protege import __version__
from protege.artifacts import read_json
from protege.chains import in_chains
from protege.config import ModelConfig, section_hash
from protege.errors import ProtegeError
from protege.evaluate import judge
from protege.evaluate import voice as voice_mod
from protege.evaluate.facts import expectation, fact_recall
from protege.models.client import ChatClient, Completion
from protege.models.endpoint import open_client
from protege.project import Project

UNTRAINED_RUN = "untrained"  # the report folder's name when no trained run exists yet


@dataclass(frozen=True)
class TrainedRun:
    name: str
    dir: Path

    @property
    def adapter(self) -> Path:
        return self.dir / "adapter.gguf"


@dataclass
class EvalResult:
    """What `run` made: the report folder, the headline figures, and the gate's verdict."""

    report_dir: Path
    summary: dict[str, Any]
    gate_failure: str | None = None

    @property
    def passed(self) -> bool:
        return self.gate_failure is None


def load_eval_rows(path: Path, max_questions: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """Rows of eval.jsonl turned into eval items: the prompt (messages up to the last assistant
    turn), the question and the reference answer. `max_questions` takes a seeded sample, kept in
    file order so that a larger sample contains a smaller one's questions only by chance."""
    if not path.is_file():
        raise ProtegeError(f"{path}: file not found", hint="make the held-out set with `protege synth DIR`")
    items = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ProtegeError(f"{where}: not valid JSON ({exc.msg})") from None
        msgs = row.get("messages") if isinstance(row, dict) else None
        if not isinstance(msgs, list) or not all(isinstance(m, dict) and "role" in m and "content" in m for m in msgs):
            raise ProtegeError(f"{where}: 'messages' must be a list of {{role, content}} objects")
        last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=None)
        if last is None:
            raise ProtegeError(f"{where}: no assistant turn (the reference answer) in 'messages'")
        prompt = msgs[:last]
        users = [m for m in prompt if m["role"] == "user"]
        if not users:
            raise ProtegeError(f"{where}: no user turn before the reference answer")
        items.append({
            "id": str(row.get("id") or f"line-{lineno}"),
            "type": row.get("type", "unknown"),
            "question": users[-1]["content"],
            "reference": msgs[last]["content"],
            "messages": prompt,
            "source": row.get("source") or {},
            "context": row.get("context"),
            "key_facts": [f for f in row.get("key_facts") or [] if isinstance(f, str) and f.strip()],
        })  # fmt: skip
    if not items:
        raise ProtegeError(f"{path}: no questions in the file", hint="run `protege synth DIR` to make some")
    if max_questions and len(items) > max_questions:
        keep = set(random.Random(seed).sample(range(len(items)), max_questions))
        items = [it for i, it in enumerate(items) if i in keep]
    return items


def find_trained_run(project: Project, run: str | None) -> TrainedRun | None:
    """The named run, else the one in models/LATEST, else None (eval untrained vs teacher)."""
    paths = project.paths
    if run is None:
        run = paths.latest_run()
        if run is None:
            return None
    found = TrainedRun(run, paths.model_run(run))
    if not found.dir.is_dir():
        known = sorted(p.name for p in paths.models.iterdir() if p.is_dir()) if paths.models.is_dir() else []
        raise ProtegeError(f"no trained run '{run}' in {paths.models}", hint=f"runs: {', '.join(known) or 'none; run `protege train DIR`'}")
    if not found.adapter.is_file():
        raise ProtegeError(f"{found.adapter}: not found", hint="the run did not finish its GGUF export; run `protege train DIR` again")
    run_json = found.dir / "run.json"
    if run_json.is_file():
        info = read_json(run_json, hint="run `protege train DIR` again to rewrite the run")
        student = info.get("student") if isinstance(info, dict) else None
        ref = student.get("ref") if isinstance(student, dict) else student
        if isinstance(ref, str) and ref != project.config.student.ref:
            raise ProtegeError(
                f"{run_json}: trained for student {ref}, but protege.yaml's student is {project.config.student.ref}",
                hint="an adapter only fits the base it was trained on",
            )
    return found


def answer_fields(c: Completion | None, error: str | None) -> dict[str, Any]:
    """An answer as results.jsonl stores it (judgments are added later)."""
    if c is None:
        return {"text": None, "latency_s": None, "completion_tokens": None, "cost_usd": None,
                "mean_logprob": None, "min_logprob": None, "error": error, "judge_errors": []}  # fmt: skip
    lps = [t.logprob for t in c.logprobs or []]
    return {
        "text": c.text,
        "latency_s": round(c.latency_s, 4),
        "completion_tokens": c.completion_tokens,
        "cost_usd": c.cost_usd,
        "mean_logprob": round(sum(lps) / len(lps), 4) if lps else None,
        "min_logprob": round(min(lps), 4) if lps else None,
        "error": None,
        "judge_errors": [],
    }


async def _answer_all(client: ChatClient, items: list[dict[str, Any]], max_tokens: int, logprobs: bool, tick) -> list[dict[str, Any]]:  # noqa: ANN001
    out = []
    for item in items:
        try:
            c = await client.complete(item["messages"], max_tokens=max_tokens, temperature=0.0, top_logprobs=1 if logprobs else 0)
            out.append(answer_fields(c, None))
            out[-1]["_cached"] = c.cached
        except ProtegeError as exc:
            # One bad question (say, longer than the context) must not sink the whole eval.
            out.append(answer_fields(None, str(exc)))
        tick()
    return out


def teacher_prompts(project: Project, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The teacher is asked as the gateway asks it: with the top-k document excerpts in its
    system prompt when serve.teacher_retrieval is on (it does not know the owner's docs)."""
    cfg = project.config.serve
    if not cfg.teacher_retrieval or all(item.get("context") is not None for item in items):
        return items  # RAFT rows carry their context: no retriever to build (it embeds every chunk)
    from protege.corpus import load_chunks
    from protege.corpus.retrieve import Retriever

    retriever = Retriever(load_chunks(project))
    out = []
    for item in items:
        if item.get("context") is not None:  # a RAFT row: its user turn already carries the context
            out.append(item)
            continue
        messages = [dict(m) for m in item["messages"]]
        question = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        excerpts = retriever.excerpts(question, cfg.retrieval_k)
        if messages and messages[0]["role"] == "system":
            messages[0]["content"] += excerpts
        else:
            messages.insert(0, {"role": "system", "content": excerpts.strip()})
        out.append({**item, "messages": messages})
    return out


async def _collect(project: Project, items: list[dict[str, Any]], trained: TrainedRun | None, progress, voice: bool = False) -> dict[str, Any]:  # noqa: ANN001
    cfg = project.config
    cache = project.paths.cache_db
    models: dict[str, tuple[ModelConfig, Path | None]] = {"untrained": (cfg.student, None)}
    if trained:
        models["trained"] = (cfg.student, trained.adapter)
    models["teacher"] = (cfg.teacher, None)

    answers: dict[str, list[dict[str, Any]]] = {}
    logprobs: dict[str, bool] = {}
    clients: dict[str, ChatClient] = {}
    # The teacher's prompts, and with voice the generic assistant's (evaluate/voice.py: same
    # questions and excerpts, no persona), in one pass: one retriever for both.
    asked_teacher = teacher_prompts(project, items + (voice_mod.generic_items(items) if voice else []))
    try:
        for name, (model, lora) in models.items():
            task = progress.add_task(f"answers: {name}", total=len(items))
            clients[name] = open_client(model, cache_path=cache, lora=lora)
            logprobs[name] = name != "teacher" and await clients[name].supports_logprobs()
            asked = asked_teacher[: len(items)] if name == "teacher" else items
            answers[name] = await _answer_all(clients[name], asked, cfg.eval.max_tokens, logprobs[name], lambda t=task: progress.advance(t))

        clients["judge"] = open_client(cfg.judge_model, cache_path=cache)
        await judge_all(clients["judge"], items, answers, pairwise=judges_pairwise(cfg), progress=progress)
        if voice:
            task = progress.add_task("answers: generic assistant", total=len(items))
            answers[voice_mod.GENERIC] = await _answer_all(clients["teacher"], asked_teacher[len(items) :], cfg.eval.max_tokens,
                                                           False, lambda t=task: progress.advance(t))  # fmt: skip
    finally:
        for c in clients.values():
            await c.aclose()
    # Cached answers keep the latency measured when first asked; the report says how many.
    cached = {m: sum(bool(a.pop("_cached", False)) for a in col) for m, col in answers.items()}
    return {"answers": answers, "logprobs": logprobs, "models": models, "cached_answers": cached}


def judges_pairwise(cfg: Any) -> bool:
    """Whether eval asks the pairwise judge: when eval.pairwise says so, or the router learns from it."""
    return cfg.eval.pairwise or cfg.route.label == "pairwise"


async def judge_all(client: ChatClient, items: list[dict[str, Any]], answers: dict[str, list[dict[str, Any]]], *,
                    pairwise: bool, progress: Any) -> None:  # fmt: skip
    """The rubric for every answer (and, with `pairwise`, each student against the teacher in both
    orders), stored in the answers. A question's judgments run one after another and questions
    concurrently: its prompts share everything before the answer (instructions, persona, question,
    source, reference), which a server's prompt cache then computes once per question."""
    students = [m for m in answers if m != "teacher"]
    task = progress.add_task("judging", total=len(items) * (len(answers) + (len(students) if pairwise else 0)))

    async def question(i: int) -> None:  # a chain: its judgments one after another (see protege.chains)
        for name, col in answers.items():
            ans = col[i]
            ans["rubric"] = None
            if ans["text"] is not None:
                j = await judge.rubric(client, items[i], ans["text"])
                ans["rubric"] = j.value
                ans["judge_errors"] += [f"rubric: {e}" for e in j.errors]
            progress.advance(task)
        for name in students if pairwise else []:
            ans, teacher = answers[name][i], answers["teacher"][i]
            ans["pairwise"], ans["pairwise_orders"] = None, [None, None]
            if ans["text"] is not None and teacher["text"] is not None:
                orders, j = await judge.pairwise(client, items[i], ans["text"], teacher["text"])
                ans["pairwise"], ans["pairwise_orders"] = j.value, orders
                ans["judge_errors"] += j.errors
            progress.advance(task)

    await in_chains(range(len(items)), lambda i: i, question, width=client.concurrency)


def _similarities(items: list[dict[str, Any]], answers: dict[str, list[dict[str, Any]]]) -> None:
    """Cosine similarity of every answer to the reference (teacher) answer, in one batch."""
    from protege.models.embeddings import encode

    texts = [it["reference"] for it in items]
    slots = [(name, i) for name, col in answers.items() for i, a in enumerate(col) if a["text"] is not None]
    vecs = encode(texts + [answers[name][i]["text"] for name, i in slots])
    refs, outs = vecs[: len(texts)], vecs[len(texts) :]
    for name, col in answers.items():
        for a in col:
            a["similarity"] = None
    for (name, i), v in zip(slots, outs):
        answers[name][i]["similarity"] = round(float(v @ refs[i]), 4)


def _fact_recall(items: list[dict[str, Any]], answers: dict[str, list[dict[str, Any]]]) -> None:
    """Every answer's fact recall and the key facts it missed (see evaluate/facts.py)."""
    for col in answers.values():
        for item, a in zip(items, col):
            a["fact_recall"], a["facts_missing"] = fact_recall(a["text"], item)


def _run_async(coro: Any) -> Any:
    """asyncio.run, also from a caller that already runs an event loop (a notebook, a server,
    playwright's sync API): then the coroutine gets its own loop in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def run(project: Project, run: str | None = None, fail_under: float | None = None) -> EvalResult:
    """Evaluate the trained student (or, without one, the untrained student) against the teacher.

    Writes artifacts/reports/<run>/ (results.jsonl, summary.json, report.md, report.html, PNGs).
    With `fail_under`, the result's `gate_failure` says why the trained student's mean rubric
    score is below it (the CLI exits 1 on it).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from protege.console import err
    from protege.evaluate.metrics import summarize
    from protege.evaluate.report import write_report

    cfg = project.config
    items = load_eval_rows(project.paths.eval_jsonl, cfg.eval.max_questions, cfg.eval.seed)
    trained = find_trained_run(project, run)
    name = trained.name if trained else UNTRAINED_RUN
    t0 = time.monotonic()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    load_before = os.getloadavg()[0]
    posts = voice_mod.post_chunks(project)
    voice = bool(posts)
    with Progress(*columns, console=err, transient=False) as progress:
        collected = _run_async(_collect(project, items, trained, progress, voice))
    load_after = os.getloadavg()[0]
    answers = collected["answers"]
    _similarities(items, answers)
    _fact_recall(items, answers)
    held_posts = voice_mod.style_scores(items, answers, posts) if voice else 0

    results = [
        {**{k: it[k] for k in ("id", "type", "question", "reference", "messages", "key_facts")},
         "expect": expectation(it), "answers": {m: answers[m][i] for m in answers}}
        for i, it in enumerate(items)
    ]  # fmt: skip
    info = {
        "run": name,
        "trained_run": str(trained.dir) if trained else None,
        "models": {m: {"ref": mc.ref, "lora": str(lora) if lora else None} for m, (mc, lora) in collected["models"].items()},
        "judge": cfg.judge_model.ref,
        "logprobs": collected["logprobs"],
        "prices": {m: {"input": mc.price_input, "output": mc.price_output, "local": mc.ref.startswith(("embedded:", "gguf:"))}
                   for m, (mc, _) in collected["models"].items()},  # fmt: skip
        "eval_config": cfg.eval.model_dump(mode="json"),
        "meta": {
            "config_hash": section_hash(cfg.eval, cfg.student, cfg.teacher, cfg.judge_model, cfg.serve.teacher_retrieval),
            "code_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "wall_s": round(time.monotonic() - t0, 1),
            # Latencies of local models are only as good as the machine was quiet: say how busy it was.
            "cpus": os.cpu_count(),
            "load_avg_1m": [round(load_before, 2), round(load_after, 2)],
            "cached_answers": collected["cached_answers"],
        },
    }
    summary = summarize(results, info)
    if voice:
        summary["voice"] = voice_mod.voice_summary(results, held_posts, {"n_resamples": cfg.eval.bootstrap, "seed": cfg.eval.seed})
    gate = None
    if fail_under is not None:
        gate = gate_failure(summary, fail_under)
        summary["gate"] = {"fail_under": fail_under, "passed": gate is None, "reason": gate}
    report_dir = project.paths.report(name)
    write_report(report_dir, results, summary)
    return EvalResult(report_dir, summary, gate)


def gate_failure(summary: dict[str, Any], fail_under: float) -> str | None:
    """Why the regression gate fails, or None when the trained student's mean rubric >= fail_under."""
    if not summary["trained"]:
        return f"no trained student to check against --fail-under {fail_under:g} (run `protege train DIR` first)"
    score = summary["rubric"]["trained"]
    if score["value"] is None:
        return f"the trained student has no rubric score (judge failures: {score['judge_failures']}); cannot pass --fail-under {fail_under:g}"
    if score["value"] < fail_under:
        return f"trained student's mean rubric {score['value']:.2f} (n={score['n']}) is below --fail-under {fail_under:g}"
    return None
