"""What to ask about each chunk (a seeded plan) and the teacher's questions themselves."""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from protege.config import AVOIDED_TOPIC, REFUSAL_TYPES
from protege.corpus import Chunk
from protege.chains import in_chains
from protege.replies import ReplyParseError, json_format, parse_json_object
from protege.synth import prompts

if TYPE_CHECKING:
    from protege.config import SynthConfig
    from protege.models.client import ChatClient

QUESTION_MAX_TOKENS = 150  # the question and its key facts, as JSON
QUESTION_TEMPERATURE = 0.8
DEFAULT_ASKER = "a customer"


@dataclass(frozen=True)
class PlannedQuestion:
    """One question to write: its place in the plan (the order of every output), type, persona, chunks."""

    index: int
    type: str
    persona: str
    chunks: tuple[Chunk, ...]
    topic: str | None = None  # avoided-topic questions: the topic, from the agent's system prompt (synth/avoided.py)

    @property
    def chunk_ids(self) -> list[str]:
        return [c.id for c in self.chunks]

    @property
    def is_refusal(self) -> bool:
        return self.type in REFUSAL_TYPES

    @property
    def description(self) -> str:
        """What the question is, as the question and answer prompts say it."""
        return prompts.QUESTION_TYPES[self.type].format(topic=self.topic or "a topic they avoid")

    def reference(self) -> str:
        """The chunks as the teacher and the judge are shown them, each under its id."""
        return "\n\n---\n\n".join(f"[{c.id}]\n{c.text}" for c in self.chunks)

    def source_text(self) -> str:
        """The chunks' text alone (row['source']['text'])."""
        return "\n\n".join(c.text for c in self.chunks)


def apportion(mix: dict[str, float], total: int) -> list[str]:
    """`total` type labels in the proportions of `mix` (largest remainder), in mix order."""
    weight = sum(mix.values())
    exact = {t: w / weight * total for t, w in mix.items() if w > 0}
    counts = {t: int(x) for t, x in exact.items()}
    for t in sorted(exact, key=lambda t: counts[t] - exact[t])[: total - sum(counts.values())]:
        counts[t] += 1
    return [t for t in exact for _ in range(counts[t])]


def plan_questions(chunks: list[Chunk], config: "SynthConfig", avoided: int = 0) -> list[PlannedQuestion]:
    """questions_per_chunk questions per chunk, with the type mix exact over the whole plan, then
    `avoided` avoided-topic questions on chunks drawn in a seeded order (their topics are set once
    the agent's system prompt is known: synth/avoided.py). Appended last, so the rest of the plan,
    and the cache of its calls, is the same with or without them.

    Multi-hop questions pair their chunk with a second one, from another file when there is one.
    With a single chunk there is nothing to hop to, so its share goes to the other types.
    """
    rng = random.Random(config.seed)
    mix = dict(config.type_mix)
    if len(chunks) < 2:
        mix.pop("multi-hop", None)
    if not any(w > 0 for w in mix.values()):
        mix = {"factual": 1.0}
    types = apportion(mix, len(chunks) * config.questions_per_chunk)
    rng.shuffle(types)
    personas = config.personas or [DEFAULT_ASKER]
    plan = []
    for i, qtype in enumerate(types):
        chunk = chunks[i // config.questions_per_chunk]
        group: tuple[Chunk, ...] = (chunk,)
        if qtype == "multi-hop":
            others = [c for c in chunks if c.file != chunk.file] or [c for c in chunks if c.id != chunk.id]
            group = (chunk, rng.choice(others))
        plan.append(PlannedQuestion(i, qtype, personas[rng.randrange(len(personas))], group))
    if chunks and avoided:
        order = random.Random(f"{config.seed}:avoided").sample(range(len(chunks)), len(chunks))
        for j in range(avoided):
            chunk = chunks[order[j % len(order)]]
            plan.append(PlannedQuestion(len(plan), AVOIDED_TOPIC, personas[rng.randrange(len(personas))], (chunk,)))
    return plan


def question_prompt(q: PlannedQuestion, name: str) -> str:
    if q.type == AVOIDED_TOPIC and q.topic:
        return prompts.AVOIDED_QUESTION.format(name=name, topic=q.topic, persona=q.persona)
    text = q.chunks[0].text if len(q.chunks) == 1 else "\n\n".join(f"Text {i + 1}:\n{c.text}" for i, c in enumerate(q.chunks))
    return prompts.QUESTION.format(name=name, text=text, persona=q.persona, type_description=q.description)


_PREFIX = re.compile(r"^\s*(?:\*\*)?(?:question|q)\s*\d*\s*[:.)-]\s*(?:\*\*)?\s*|^\s*(?:\d+[.)]|[-*])\s+", re.IGNORECASE)


def clean_question(text: str) -> str | None:
    """The question from a teacher reply: its first real line, without labels, list marks or quotes."""
    lines = [line.strip() for line in text.replace("```", "").splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.endswith(":") and i + 1 < len(lines):
            continue  # a lead-in such as "Here is a question:"
        line = _PREFIX.sub("", line).strip().strip('"“”\'').strip()
        return line if len(line) >= 8 else None
    return None


@dataclass(frozen=True)
class WrittenQuestion:
    """A question as the teacher wrote it, with the key facts it listed (not yet checked)."""

    question: str
    key_facts: tuple[str, ...]


MAX_KEY_FACTS = 5
MAX_FACT_CHARS = 120
QUESTION_SCHEMA = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "minLength": 8, "maxLength": 300},
        "key_facts": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 60}, "maxItems": 3},
    },
    "required": ["question", "key_facts"],
    "additionalProperties": False,
}
_QUESTION_FIELD = re.compile(r'"question"\s*:\s*"((?:[^"\\]|\\.)*)"')


def parse_question(text: str) -> WrittenQuestion | None:
    """The question and its key facts from the teacher's JSON reply; a reply that is not JSON
    (an endpoint without JSON mode) still gives its question, without key facts."""
    try:
        data = parse_json_object(text)
    except ReplyParseError:
        # JSON cut short by max_tokens (a long list of facts) still holds its question; prose is the question.
        m = _QUESTION_FIELD.search(text)
        question = clean_question(json.loads(f'"{m.group(1)}"') if m else text) if m or "{" not in text else None
        return WrittenQuestion(question, ()) if question else None
    if isinstance(data.get("questions"), list) and data["questions"]:  # one question asked, a list written
        data = data["questions"][0] if isinstance(data["questions"][0], dict) else {"question": data["questions"][0]}
    raw, facts = data.get("question"), data.get("key_facts")
    question = clean_question(raw) if isinstance(raw, str) else None
    if not question:
        return None
    facts = [f.strip() for f in facts if isinstance(f, str) and 0 < len(f.strip()) <= MAX_FACT_CHARS] if isinstance(facts, list) else []
    return WrittenQuestion(question, tuple(facts[:MAX_KEY_FACTS]))


async def write_question(client: "ChatClient", q: PlannedQuestion, name: str, seed: int) -> WrittenQuestion | None:
    reply = await client.complete(
        [{"role": "user", "content": question_prompt(q, name)}], response_format=json_format(client.config.ref, QUESTION_SCHEMA),
        temperature=QUESTION_TEMPERATURE, max_tokens=QUESTION_MAX_TOKENS, sample=q.index, seed=seed * 1_000_003 + q.index,
    )  # fmt: skip
    return parse_question(reply.text)


async def write_plan(client: "ChatClient", plan: list[PlannedQuestion], name: str, seed: int,
                     tick: Callable[[], None] | None = None) -> list[WrittenQuestion | None]:  # fmt: skip
    """Every planned question, in plan order; one chunk's questions one after another, since their
    prompts begin with the chunk (see protege.chains). `tick` after each call."""
    return await in_chains(plan, lambda q: q.chunk_ids[0], lambda q: write_question(client, q, name, seed),
                           width=client.concurrency, tick=tick)  # fmt: skip


def question_id(q: PlannedQuestion, question: str) -> str:
    blob = "|".join([*q.chunk_ids, q.type, q.persona, str(q.index), question])
    return "q-" + hashlib.sha256(blob.encode()).hexdigest()[:10]
