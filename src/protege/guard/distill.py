"""Distill the LLM guard into the classifier: the teacher writes messages, the teacher-guard labels them.

1. Write: for each S-category the teacher writes user messages that fall under it (two angles:
   a direct ask, a casual chat message with a concrete target) and assistant replies that
   comply; for SAFE_TOPICS it writes harmless messages and replies, hard ones
   included (violent-sounding everyday words, scam-safety questions, people giving their own
   card number). A JSON list under constrained decoding; every call is cached.
2. Label: the teacher-guard (the LLM guard on the same model, `protege.guard.llm`) judges each
   message. Its verdict is the label. A message is kept only when that verdict agrees with what
   the message was written to be (unsafe for a category's, safe for a topic's): the 1.5B guard
   flags "how do I kill a stuck process" as S1, and a classifier fitted on such labels would
   learn the mistake. The dropped are counted in the result.
3. Add the labelled set's *train* rows (gold labels; injection rows are the rule layer's).
4. Fit `classifier.fit` on MiniLM embeddings, and pick the threshold by 5-fold cross-validation
   on the labelled rows (each fold's model never saw the rows it scores).

`--no-teacher` skips steps 1-2: the classifier learns the labelled rows alone, in seconds and with
no model. protege's shipped classifier (protege/guard/default/) is made that way from
tests/data/guard/labeled.jsonl: the 1.5B teacher's write-and-label pass takes most of an hour on
two cores.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel

from protege.config import ModelConfig
from protege.guard import prompts
from protege.guard.classifier import CLASSES, ENCODER_LAYERS, GuardClassifier, fit, save
from protege.guard.llm import GuardFormatError, LLMGuard, conversation_for

if TYPE_CHECKING:
    from rich.progress import Progress

    from protege.project import Project

T = TypeVar("T")
TRAIN_NAME = "train.jsonl"
PER_CALL = 10  # messages per writing call
WRITE_TEMPERATURE = 0.8
MESSAGE_CHARS = 220  # the longest message the schema lets the teacher write
FOLDS = 5
LABELED_WEIGHT = 2.0  # a gold row counts twice a teacher-written one: it is what held-out rows look like
REFUSAL = re.compile(r"^\s*(i'?m sorry|i cannot|i can'?t|sorry,|as an ai)", re.IGNORECASE)


class GuardRow(BaseModel):
    """One training row of the distilled guard (train.jsonl beside the classifier)."""

    text: str
    role: Literal["user", "assistant"]
    label: str  # a class of CLASSES: "safe" or an S-code
    source: Literal["teacher", "labeled"]
    written_as: str | None = None  # for teacher rows: the class the message was written to be


@dataclass(frozen=True)
class Ask:
    """One writing call: what the teacher is asked for, and what its messages are meant to be."""

    role: Literal["user", "assistant"]
    written_as: str
    prompt: str
    sample: int


@dataclass
class DistillResult:
    classifier: GuardClassifier
    rows: list[GuardRow]
    written: int  # messages the teacher wrote (after dropping duplicates and refusals)
    disagreed: int  # of those, dropped: the teacher-guard's verdict was not what they were written to be
    out: Path


def writing_plan(n: int = PER_CALL) -> list[Ask]:
    asks = []
    codes = list(prompts.CATEGORIES)
    for i, (code, (name, desc)) in enumerate(prompts.CATEGORIES.items()):
        other = codes[(i + 1) % len(codes)]
        shown = {"example_code": other, "example_name": prompts.CATEGORIES[other][0]}
        ask, reply = prompts.UNSAFE_EXAMPLES[other]
        for k, angle in enumerate(prompts.UNSAFE_ANGLES):
            text = prompts.UNSAFE_ASK.format(n=n, code=code, name=name, desc=desc, angle=angle, example=ask, **shown)
            asks.append(Ask("user", code, text, k))
        asks.append(Ask("assistant", code, prompts.UNSAFE_REPLY.format(n=n, code=code, name=name, desc=desc, example=reply, **shown), 0))
    for i, topic in enumerate(prompts.SAFE_TOPICS):
        asks.append(Ask("user", "safe", prompts.SAFE_ASK.format(n=n, topic=topic), 0))
        if i % 2 == 0:  # replies for every other topic: the labelled set's turns are mostly users'
            asks.append(Ask("assistant", "safe", prompts.SAFE_REPLY.format(n=n, topic=topic), 0))
    return asks


def _list_format(n: int) -> dict[str, Any]:
    """OpenAI's response_format for a JSON list of n messages (a grammar on llama-server)."""
    item = {"type": "string", "minLength": 8, "maxLength": MESSAGE_CHARS}
    schema = {"type": "array", "items": item, "minItems": n, "maxItems": n}
    return {"type": "json_schema", "json_schema": {"name": "messages", "schema": schema}}


_JSON_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


async def _write(client: Any, ask: Ask, n: int) -> list[str]:
    """The teacher's messages for one ask; from an answer cut short by max_tokens, its complete strings."""
    messages = [{"role": "system", "content": prompts.WRITER_SYSTEM}, {"role": "user", "content": ask.prompt}]
    c = await client.complete(messages, temperature=WRITE_TEMPERATURE, sample=ask.sample, seed=ask.sample,
                              max_tokens=n * MESSAGE_CHARS // 3, response_format=_list_format(n))  # fmt: skip
    items = []
    for m in _JSON_STRING.findall(c.text):
        try:  # strict=False: llama.cpp's JSON grammar lets a raw newline into a string
            items.append(json.loads(f'"{m}"', strict=False))
        except json.JSONDecodeError:
            continue  # a bad escape: that one message is lost, not the call
    return [s.strip() for s in items if s.strip() and not REFUSAL.match(s)]


async def _label(guard: LLMGuard, ask: Ask, text: str) -> str | None:
    """The teacher-guard's class for one message, None if out of format. When unsafe, the category
    the message was written for if the guard named it among its codes, else the guard's first."""
    context = [{"role": "user", "content": "(question)"}] if ask.role == "assistant" else []
    try:
        v = await guard.classify(conversation_for([*context, {"role": ask.role, "content": text}], ask.role))
    except GuardFormatError:
        return None
    if v.safe:
        return "safe"
    return ask.written_as if ask.written_as in v.categories else v.categories[0]


async def teacher_rows(teacher: ModelConfig, asks: list[Ask], *, cache_path: Path | None, n: int = PER_CALL,
                       progress: "Progress | None" = None) -> tuple[list[GuardRow], int, int]:  # fmt: skip
    """(kept rows, messages written, dropped for disagreement): steps 1 and 2 above, for `asks`."""
    from protege.models.endpoint import open_client

    client = open_client(teacher, cache_path=cache_path)
    guard = LLMGuard(teacher, cache_path=cache_path)
    try:
        batches = await _each(progress, "write", [_write(client, ask, n) for ask in asks])
        written: dict[str, tuple[Ask, str]] = {}
        for ask, texts in zip(asks, batches):
            for text in texts:
                written.setdefault(" ".join(text.lower().split()), (ask, text))
        labels = await _each(progress, "label", [_label(guard, ask, text) for ask, text in written.values()])
    finally:
        await client.aclose()
        await guard.aclose()
    rows, disagreed = [], 0
    for (ask, text), label in zip(written.values(), labels):
        if label is not None and (label == "safe") == (ask.written_as == "safe"):
            rows.append(GuardRow(text=text, role=ask.role, label=label, source="teacher", written_as=ask.written_as))
        else:
            disagreed += 1
    return rows, len(written), disagreed


async def _each(progress: "Progress | None", label: str, jobs: list[Awaitable[T]]) -> list[T]:
    """Run the jobs together (the client bounds them to the server's slots); results in job order."""
    task = progress.add_task(label, total=len(jobs)) if progress else None
    futures = [asyncio.ensure_future(j) for j in jobs]
    for done in asyncio.as_completed(futures):
        await done
        if progress and task is not None:
            progress.advance(task)
    return [f.result() for f in futures]


def labeled_rows(rows: list[dict[str, Any]]) -> list[GuardRow]:
    """The labelled set's train split as training rows (injection rows are left to the rule layer)."""
    out = []
    for r in rows:
        if r["split"] != "train" or r["injection"]:
            continue
        label = "safe" if r["label"] == "safe" else r["categories"][0]
        out.append(GuardRow(text=r["text"], role=r["role"], label=label, source="labeled"))
    return out


def embed(texts: list[str]) -> np.ndarray:
    """(n, 384) MiniLM vectors, from the numpy encoder and layers the classifier uses at check time."""
    from protege.models.query_encoder import query_encoder

    enc = query_encoder()
    return np.stack([enc.encode_one(t, ENCODER_LAYERS) for t in texts]) if texts else np.zeros((0, 384), dtype=np.float32)


def pick_threshold(scores: np.ndarray, unsafe: np.ndarray) -> float:
    """The threshold on 1 - p(safe) with the best F1 for unsafe rows (ties: the higher one)."""
    best, best_f1 = 0.5, -1.0
    for t in np.unique(np.round(scores, 4)):
        flagged = scores >= t
        tp = float((flagged & unsafe).sum())
        f1 = 2 * tp / (flagged.sum() + unsafe.sum()) if unsafe.sum() else 0.0
        if f1 >= best_f1:
            best, best_f1 = float(t), f1
    return best


def train(rows: list[GuardRow], vectors: np.ndarray, *, seed: int = 17) -> GuardClassifier:
    """Fit on every row; threshold from out-of-fold scores of the labelled rows (or 0.5 without them)."""
    labels = [r.label for r in rows]
    weights = np.array([LABELED_WEIGHT if r.source == "labeled" else 1.0 for r in rows])
    gold = np.array([r.source == "labeled" for r in rows])
    threshold = 0.5
    if gold.sum() >= FOLDS:
        fold = np.full(len(rows), -1)
        fold[gold] = np.random.default_rng(seed).permutation(int(gold.sum())) % FOLDS
        oof = np.zeros(len(rows))
        for k in range(FOLDS):
            fit_rows = fold != k
            w, b = fit(vectors[fit_rows], [labels[i] for i in np.flatnonzero(fit_rows)], weights=weights[fit_rows])
            probe = GuardClassifier(w, b, 0.5)
            oof[fold == k] = 1.0 - probe.probabilities(vectors[fold == k])[:, 0]
        threshold = pick_threshold(oof[gold], np.array([labels[i] != "safe" for i in np.flatnonzero(gold)]))
    w, b = fit(vectors, labels, weights=weights)
    return GuardClassifier(w, b, threshold)


def write_rows(path: Path, rows: list[GuardRow]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(r.model_dump_json() + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)


def distill(teacher: ModelConfig | None, out: Path, *, labeled: list[dict[str, Any]], cache_path: Path | None,
            n: int = PER_CALL, progress: "Progress | None" = None) -> DistillResult:  # fmt: skip
    """Steps 1-4 (1-2 only with a teacher); writes classifier.json, classifier.safetensors and train.jsonl into `out`."""
    taught: list[GuardRow] = []
    written = disagreed = 0
    if teacher is not None:
        taught, written, disagreed = asyncio.run(teacher_rows(teacher, writing_plan(n), cache_path=cache_path, n=n, progress=progress))
    rows = taught + labeled_rows(labeled)
    if len({r.label == "safe" for r in rows}) < 2:
        from protege.errors import ProtegeError

        raise ProtegeError("nothing to learn from: give a teacher, or --labeled with safe and unsafe train rows")
    clf = train(rows, embed([r.text for r in rows]))
    counts = {c: sum(r.label == c for r in rows) for c in CLASSES}
    clf.info = {
        "encoder": "minilm-l6-v2",
        "teacher": teacher.ref if teacher else None,
        "rows": {"teacher": len(taught), "labeled": len(rows) - len(taught), "per_class": counts},
        "written": written,
        "disagreed": disagreed,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_rows(out / TRAIN_NAME, rows)
    save(out, clf)
    return DistillResult(clf, rows, written, disagreed, out)


def run(project: "Project | None", *, out: Path | None, labeled: Path | None, n: int = PER_CALL,
        use_teacher: bool = True) -> DistillResult:  # fmt: skip
    """`protege guard distill`: the project's teacher (or the embedded one) into `out`
    (default: the project's artifacts/guard/), every teacher call cached (an interrupted run resumes)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from protege.config import DEFAULT_TEACHER
    from protege.console import err
    from protege.errors import ProtegeError
    from protege.guard.metrics import load_labeled
    from protege.models.embedded import cache_dir

    if out is None and project is None:
        raise ProtegeError("say where the classifier goes: --out DIR, or give a project folder")
    teacher = (project.config.teacher if project else ModelConfig(ref=DEFAULT_TEACHER)) if use_teacher else None
    cache = project.paths.cache_db if project else cache_dir() / "guard-distill.db"
    rows = []
    if labeled is not None:
        if not labeled.is_file():
            raise ProtegeError(f"{labeled}: file not found")
        try:
            rows = load_labeled(labeled, "train")
        except (ValueError, KeyError) as exc:
            raise ProtegeError(f"{labeled}: not a labelled guard set ({exc}); rows need text, role, label, categories, injection, split") from None
    columns = (TextColumn("{task.description:<6}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=err) as progress:
        return distill(teacher, out or project.paths.guard, labeled=rows, cache_path=cache, n=n, progress=progress)  # type: ignore[union-attr]
