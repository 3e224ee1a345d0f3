"""protege synth: documents -> questions -> grounded answers -> guard -> judge -> split by chunk.

Every model call goes through the ChatClient cache (artifacts/cache.db), so an interrupted run
resumes for free; outputs are ordered by the seeded plan, never by completion order, so a
resumed run writes exactly what an uninterrupted one would.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import protege
from protege import artifacts, dataset
from protege.chains import in_chains
from protege.config import AVOIDED_TOPIC, section_hash
from protege.corpus import Chunk, Corpus, load_corpus
from protege.synth import avoided
from protege.synth import persona as persona_mod
from protege.synth import prompts
from protege.synth.answers import BARE_REFUSAL, Answer, grounded_answer, is_refusal, prompt_for
from protege.synth.card import CardData, GroundingCounts, KeyFactCounts, license_terms, pick_examples, render_card
from protege.synth.declines import add_excerptless_declines
from protege.synth.dedup import near_duplicates
from protege.synth.estimate import EstimateRow, estimate_calls
from protege.synth.grounded import check_grounded
from protege.synth.items import Item, dropped_row, messages, row
from protege.synth.judge import Verdict, judge_pair
from protege.synth.key_facts import key_facts
from protege.synth.questions import PlannedQuestion, plan_questions, question_id, write_plan
from protege.synth.split import split_by_chunk

if TYPE_CHECKING:
    from rich.progress import Progress

    from protege.models.client import ChatClient
    from protege.project import Project

T = TypeVar("T")


@dataclass
class SynthResult:
    train: Path
    eval: Path
    card: Path
    dropped: Path
    persona: Path | None
    counts: dict[str, int]
    dry_run: bool = False
    estimate: list[EstimateRow] = field(default_factory=list)
    usage: list[dict[str, Any]] = field(default_factory=list)  # per model role: calls, tokens, cost
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why) for documents not read
    notes: list[str] = field(default_factory=list)  # rows that could not be read inside read files


def select_chunks(chunks: list[Chunk], max_chunks: int | None, seed: int) -> list[Chunk]:
    """All chunks, or a seeded sample of max_chunks kept in corpus order (spread over files)."""
    if max_chunks is None or len(chunks) <= max_chunks:
        return chunks
    keep = set(random.Random(seed).sample(range(len(chunks)), max_chunks))
    return [c for i, c in enumerate(chunks) if i in keep]


def config_hash(project: "Project") -> str:
    c = project.config
    return section_hash(c.synth, c.teacher, c.judge_model, c.persona, c.docs)


def run(project: "Project", dry_run: bool = False) -> SynthResult:
    """Write train.jsonl, eval.jsonl, dropped.jsonl, card.md (and persona.md) under artifacts/data."""
    corpus = load_corpus(project)
    chunks = select_chunks(corpus.chunks, project.config.synth.max_chunks, project.config.synth.seed)
    synth = project.config.synth
    plan = plan_questions(chunks, synth, avoided.planned(synth, len(chunks) * synth.questions_per_chunk))
    paths = project.paths
    if dry_run:
        estimate = estimate_calls(project, corpus, chunks, plan)
        counts = {"files": len(corpus.documents), "skipped": len(corpus.skipped), "chunks": len(chunks), "questions": len(plan)}
        return SynthResult(paths.train_jsonl, paths.eval_jsonl, paths.card, paths.dropped_jsonl, None, counts, True, estimate,
                           skipped=[(s.file, s.reason) for s in corpus.skipped], notes=corpus.notes)  # fmt: skip
    return asyncio.run(_synthesize(project, corpus, chunks, plan))


async def _each(progress: "Progress", label: str, jobs: list[Awaitable[T]]) -> list[T]:
    """Await jobs concurrently (the client bounds concurrency); results in job order."""
    task = progress.add_task(label, total=len(jobs))

    async def one(job: Awaitable[T]) -> T:
        try:
            return await job
        finally:
            progress.advance(task)

    return await asyncio.gather(*(one(j) for j in jobs))


async def _by_chunk(progress: "Progress", label: str, client: "ChatClient", items: list[Item],
                    job: Callable[[Item], Awaitable[T]]) -> list[T]:  # fmt: skip
    """job(item) for every item, in chains by first chunk (see protege.chains); results in item order."""
    task = progress.add_task(label, total=len(items))
    return await in_chains(items, lambda it: it.plan.chunk_ids[0], job, width=client.concurrency,
                           tick=lambda: progress.advance(task))  # fmt: skip


def _progress() -> "Progress":
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from protege.console import err

    return Progress(
        TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err,
    )  # fmt: skip


def _alive(items: list[Item]) -> list[Item]:
    return [it for it in items if it.alive]


async def _questions(progress: "Progress", teacher: "ChatClient", items: list[Item], project: "Project") -> None:
    """Write every planned question with its key facts, and drop near-duplicates."""
    synth = project.config.synth
    task = progress.add_task("questions", total=len(items))
    written = await write_plan(teacher, [it.plan for it in items], project.name, synth.seed, tick=lambda: progress.advance(task))
    for it, w in zip(items, written):
        if w is None:
            it.dropped = ("teacher wrote no question", "")
        else:
            it.question, it.listed_facts, it.id = w.question, w.key_facts, question_id(it.plan, w.question)
            if it.plan.topic is not None and not avoided.on_topic(w.question, it.plan.topic):
                it.dropped = ("avoided-topic question not about its topic", it.plan.topic)
    alive = _alive(items)
    for dup, first in near_duplicates([it.question or "" for it in alive], synth.dedup_threshold).items():
        alive[dup].dropped = ("near-duplicate question", f"repeats {alive[first].id}")


async def _answers(progress: "Progress", teacher: "ChatClient", proposers: list["ChatClient"], items: list[Item],
                   top_k: int, ctx: "_Context") -> None:  # fmt: skip
    """Each question's grounded answer; drops empty, cut and bare-refusal answers; checks the rest
    for groundedness and picks their key facts (dropping on groundedness waits for the judge, so
    the card can say how often the two disagree)."""
    synth = ctx.synth
    alive = _alive(items)
    for it in alive:
        it.prompted = prompt_for(it.plan, it.question or "", system=ctx.persona, name=ctx.name, config=synth,
                                 chunks=ctx.chunks, question_id=it.id)  # fmt: skip
    answers = await _by_chunk(progress, "answers", teacher, alive, lambda it: grounded_answer(
        teacher, proposers, it.prompted, max_tokens=synth.answer_max_tokens, top_logprobs=top_k))  # type: ignore[arg-type]  # fmt: skip
    for it, answer in zip(alive, answers):
        it.answer = answer
        if not answer.text.strip():
            it.dropped = ("empty answer", "")
        elif answer.finish_reason == "length":
            it.dropped = ("answer cut at answer_max_tokens", f"raise synth.answer_max_tokens ({synth.answer_max_tokens})")
        elif it.plan.type != "unsafe" and is_refusal(answer.text):  # unsafe ones: see _guard
            it.dropped = (BARE_REFUSAL, answer.text.strip())
        else:
            expect = it.expect
            it.grounding = check_grounded(answer.text, it.evidence, expect=expect)
            if expect == "decline" and not it.plan.is_refusal and it.grounding.declined is False:
                # A RAFT row whose excerpts lack the answer, answered anyway (from the teacher's own
                # knowledge or a guess). Its right answer is known: say so and hand off. Dropped
                # instead, such rows leave the student few declines to learn from, and it then
                # answers every question its excerpts do not cover.
                it.replaced_answer = answer.text
                it.answer = Answer(prompts.NO_EXCERPT_DECLINE.format(name=ctx.name), answer.finish_reason, None, answer.proposals)
                it.grounding = check_grounded(it.answer.text, it.evidence, expect=expect)
            it.key_facts = key_facts(it.listed_facts, source=it.plan.source_text(), answer=it.answer.text,
                                     question=it.question or "", system=ctx.persona, expect=expect)  # fmt: skip


async def _guard(progress: "Progress", guard: Any, items: list[Item], corpus: Corpus, *, redact_pii: bool) -> int:
    """Drop unsafe answers, and bare refusals of questions the guard finds safe; redact private PII
    in the rest unless the owner set `guard.redact_pii: false`. Returns the number of redactions.

    A bare refusal is the answer only to a request that really is unsafe, and the question writer
    often fails to write one: on the demo every kept "unsafe" row was a plain shop question ("the
    price of the Otter 2?") refused, which teaches the student to refuse customers."""
    from protege.guard import published_pii, redact

    for it in _alive(items):
        if it.plan.type == "unsafe" and is_refusal(it.answer.text):  # type: ignore[union-attr]
            question = await guard.check(it.prompted.messages, role="user")  # type: ignore[union-attr]
            if question.safe:
                it.dropped = (BARE_REFUSAL, f"{it.answer.text.strip()} (the guard finds the question safe: {question.reason})")  # type: ignore[union-attr]
    alive = _alive(items)
    verdicts = await _each(progress, "guard", [guard.check(messages(it), role="assistant") for it in alive])
    redactions = 0
    public = published_pii(ch.text for ch in corpus.chunks)  # the owner's own contacts stay

    def scrub(text: str) -> tuple[str, int]:
        return redact(text, keep=public) if redact_pii else (text, 0)

    for it, v in zip(alive, verdicts):
        if not v.safe:
            it.dropped = ("guard: unsafe answer", f"{', '.join(v.categories)}: {v.reason}")
            continue
        n = 0
        for m in it.prompted.messages[1:]:  # type: ignore[union-attr]
            m["content"], k = scrub(m["content"])
            n += k
        text, k = scrub(it.answer.text)  # type: ignore[union-attr]
        it.answer.text = text  # type: ignore[union-attr]
        if k:  # the logprobs were for the text before redaction: they no longer line up
            it.answer.logprobs = None  # type: ignore[union-attr]
        redactions += n + k
        it.guard = {"safe": True, "categories": list(v.categories), "redactions": n + k}
    return redactions


async def _filter(progress: "Progress", judge: "ChatClient", items: list[Item], synth: Any) -> tuple[int, int | None]:
    """Judge every safe pair (unless synth.judge is off), then drop the ungrounded ones and those
    below the judge's threshold. Returns (pairs the groundedness check dropped, of which the judge
    alone would have kept: None without a judge)."""
    alive = _alive(items)
    judged: list[Verdict | None] = [None] * len(alive)
    if synth.judge:
        judged = await _by_chunk(progress, "judge", judge, alive, lambda it: judge_pair(
            judge, reference=it.plan.reference(), qtype=it.plan.type, question=it.question or "", answer=it.answer.text))  # type: ignore[union-attr]  # fmt: skip
    ungrounded = judge_kept = 0
    for it, verdict in zip(alive, judged):
        it.verdict = verdict
        passed = verdict is None or (verdict.parsed and min(verdict.groundedness, verdict.helpfulness) >= synth.judge_threshold)  # type: ignore[type-var]
        failure = it.grounding.failure(synth.grounding_threshold) if it.grounding else None
        if failure:
            it.dropped = failure
            ungrounded += 1
            judge_kept += passed
        elif verdict is not None and not verdict.parsed:
            it.dropped = ("judge: malformed answer", verdict.reason)
        elif not passed:
            scores = f"groundedness {verdict.groundedness:g}, helpfulness {verdict.helpfulness:g}"  # type: ignore[union-attr]
            it.dropped = ("judge: below threshold", scores + (f": {verdict.reason}" if verdict.reason else ""))  # type: ignore[union-attr]
    return ungrounded, judge_kept if synth.judge else None


@dataclass
class _Context:
    """What the answer step needs besides the clients."""

    synth: Any
    persona: str
    name: str
    chunks: list[Chunk]


async def _avoided_topics(progress: "Progress", teacher: "ChatClient", items: list[Item], system: str) -> list[str] | str | None:
    """Give the avoided-topic questions their topics, read from the agent's system prompt. For the
    card: the topics; "unreadable" when the teacher's list could not be read; None when none are planned."""
    if not any(it.plan.type == AVOIDED_TOPIC for it in items):
        return None
    [topics] = await _each(progress, "topics to avoid", [avoided.avoided_topics(teacher, system)])
    for it, q in zip(items, avoided.assign([it.plan for it in items], topics or [])):
        it.plan = q
    return "unreadable" if topics is None else topics


async def _synthesize(project: "Project", corpus: Corpus, chunks: list[Chunk], plan: list[PlannedQuestion]) -> SynthResult:
    from protege.guard import Guard
    from protege.models.endpoint import open_client

    t0 = time.perf_counter()
    c = project.config
    synth = c.synth
    cache = project.paths.cache_db
    teacher = open_client(c.teacher, cache_path=cache)
    judge = open_client(c.judge_model, cache_path=cache)
    proposers = [open_client(p, cache_path=cache) for p in synth.proposers]
    guard = Guard.from_project(project)
    items = [Item(q) for q in plan]
    try:
        with _progress() as progress:
            [persona] = await _each(progress, "persona", [persona_mod.resolve_persona(project, corpus, teacher)])
            topics = await _avoided_topics(progress, teacher, items, persona.text)
            top_k, logprobs_note = 0, "not requested"
            if synth.logprobs:
                if await teacher.supports_logprobs():
                    top_k, logprobs_note = synth.logprobs, f"top-{synth.logprobs} stored in row['teacher']['logprobs']"
                else:
                    logprobs_note = f"requested (top-{synth.logprobs}) but {c.teacher.ref} does not return them: rows have none"
            await _questions(progress, teacher, items, project)
            await _answers(progress, teacher, proposers, items, top_k, _Context(synth, persona.text, project.name, chunks))
            redactions = await _guard(progress, guard, items, corpus, redact_pii=c.guard.redact_pii)
            ungrounded, judge_kept = await _filter(progress, judge, items, synth)
    finally:
        for client in (teacher, judge, *proposers):
            await client.aclose()
        await guard.aclose()

    chash = config_hash(project)
    rows = [row(it, project, chash, proposers) for it in items if it.alive]
    kept_train, copies, held_out = _split(rows, project)
    train = kept_train + copies
    paths = project.paths
    # synth owns train/eval/dropped.jsonl; a row in train.jsonl it did not write is kept in a part.
    preserved = dataset.preserve_foreign_rows(paths, _written_by_synth)
    artifacts.write_jsonl(paths.train_jsonl, train)
    artifacts.write_jsonl(paths.eval_jsonl, held_out)
    artifacts.write_jsonl(paths.dropped_jsonl, [dropped_row(it) for it in items if not it.alive])

    dropped = Counter(it.dropped[0] for it in items if it.dropped)
    usage = [_usage("teacher", c.teacher.ref, teacher), _usage("judge", c.judge_model.ref, judge)]
    usage += [_usage(f"proposer {i + 1}", p.ref, client) for i, (p, client) in enumerate(zip(synth.proposers, proposers))]
    steps = _steps(items, dropped, ungrounded, len(rows), judged=synth.judge)
    n_questions = steps[1][1]
    card = CardData(
        project=project.name, docs_dir=str(project.docs_dir), config_hash=chash, code_version=protege.__version__,
        format=synth.format, wall_s=time.perf_counter() - t0, files_read=len(corpus.documents),
        skipped=[(s.file, s.reason) for s in corpus.skipped], notes=corpus.notes, chunks_total=len(corpus.chunks),
        chunks_used=len(chunks), persona_source=persona.source, steps=steps, dropped=dropped,
        planned_types=Counter(it.plan.type for it in items), train_types=Counter(r["type"] for r in kept_train),
        eval_types=Counter(r["type"] for r in held_out), usage=usage,
        licenses=[("teacher", c.teacher.ref, license_terms(c.teacher))]
        + [(f"proposer {i + 1}", p.ref, license_terms(p)) for i, p in enumerate(synth.proposers)],
        logprobs_note=logprobs_note, redactions=redactions,
        judge_retries=sum(1 for it in items if it.verdict and it.verdict.attempts > 1),
        judge_threshold=synth.judge_threshold if synth.judge else None, examples=pick_examples(rows, synth.seed),
        grounding=GroundingCounts(synth.grounding_threshold, ungrounded, judge_kept,
                                  sum(1 for it in items if it.alive and it.replaced_answer is not None)),
        key_facts=_key_fact_counts(items), harvest=dataset.parts(paths), excerptless_copies=len(copies),
        avoided_topics=topics,
    )  # fmt: skip
    artifacts.write_text(paths.card, render_card(card))
    counts = {
        "files": len(corpus.documents), "skipped": len(corpus.skipped), "chunks": len(chunks),
        "questions": n_questions, "dropped": sum(dropped.values()), "kept": len(rows),
        "train": len(train), "excerptless_copies": len(copies), "eval": len(held_out), "preserved": preserved.rows if preserved else 0,
    }  # fmt: skip
    persona_path = None if persona.source == "config" else paths.persona
    return SynthResult(paths.train_jsonl, paths.eval_jsonl, paths.card, paths.dropped_jsonl, persona_path, counts, usage=usage,
                       skipped=card.skipped, notes=corpus.notes)  # fmt: skip


def _split(rows: list[dict[str, Any]], project: "Project") -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(training rows, the excerpt-less copies training adds to them, eval): eval held out by chunk
    (synth/split.py), then RAFT's share of declines for training (synth/declines.py)."""
    synth = project.config.synth
    train, held_out = split_by_chunk(rows, synth.eval_fraction, synth.seed)
    share = 1 - synth.raft_oracle_fraction if synth.raft_train_declines is None else synth.raft_train_declines
    copies = add_excerptless_declines(train, share=share, seed=synth.seed, name=project.name) if synth.format == "raft" else []
    return train, copies, held_out


def _steps(items: list[Item], dropped: Counter, ungrounded: int, kept: int, *, judged: bool) -> list[tuple[str, int]]:
    """The card's counts, step by step: how many questions were left after each filter."""
    n_questions = sum(1 for it in items if it.question)
    n_unique = n_questions - dropped["near-duplicate question"]
    n_answered = n_unique - dropped["empty answer"] - dropped["answer cut at answer_max_tokens"] - dropped[BARE_REFUSAL]
    n_safe = n_answered - dropped["guard: unsafe answer"]
    return [
        ("questions planned", len(items)),
        ("questions written", n_questions),
        ("after near-duplicate removal", n_unique),
        ("answered", n_answered),
        ("after guard", n_safe),
        ("after groundedness check", n_safe - ungrounded),
        ("kept after judge" if judged else "kept (no judge: synth.judge is off)", kept),
    ]


def _key_fact_counts(items: list[Item]) -> KeyFactCounts:
    kept = [it for it in items if it.alive]
    facts = [it.key_facts for it in kept if it.key_facts and it.expect == "facts"]
    checked = [it.key_facts for it in items if it.key_facts]
    return KeyFactCounts(
        rows=len(kept), with_facts=sum(1 for k in facts if k.facts), facts=sum(len(k.facts) for k in facts),
        from_answer=sum(1 for k in facts if k.from_answer), declining=sum(1 for it in kept if it.expect == "decline"),
        listed=sum(k.listed for k in checked), not_in_source=sum(k.not_in_source for k in checked),
        not_in_answer=sum(k.not_in_answer for k in checked),
    )  # fmt: skip


def _usage(role: str, ref: str, client: "ChatClient") -> dict[str, Any]:
    s = client.stats
    return {"role": role, "ref": ref, "calls": s.calls, "cache_hits": s.cache_hits, "prompt_tokens": s.prompt_tokens,
            "completion_tokens": s.completion_tokens, "cost_usd": s.cost_usd, "spent_usd": s.spent_usd}  # fmt: skip


def _written_by_synth(row: dict[str, Any]) -> bool:
    return str(row.get("id", "")).startswith("q-") and "config_hash" in (row.get("meta") or {})
