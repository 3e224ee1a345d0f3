"""Grounded answers in the agent's persona, closed-book or RAFT, optionally Mixture-of-Agents.

closed-book: the student is asked the bare question and must know the answer.
raft: the student's message carries retrieved context: the right chunk(s) most of the time
(`raft_oracle_fraction`) plus distractor chunks, sometimes distractors only, and then the
right answer says the context does not cover it (Zhang et al., RAFT, 2024).
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from protege.corpus import Chunk
from protege.corpus.retrieve import context_turn
from protege.synth import prompts
from protege.synth.questions import PlannedQuestion

if TYPE_CHECKING:
    from protege.config import SynthConfig
    from protege.models.client import ChatClient

Messages = list[dict[str, Any]]

# A bare refusal ("I'm sorry, but I can't assist with that.") and nothing else: no answer, no
# hand-off. The answer prompts ask for a hand-off that says what the agent can help with, yet a
# small teacher gives the bare sentence now and then, often to a question its own question
# writer meant as out-of-scope but made in-scope ("Could you provide more information about the
# electric e-bikes?"). In the demo 2 of 27 train rows were such, and the trained student learned
# to refuse ("Can you provide me with a list of repair prices?" -> the same sentence).
_REFUSAL = re.compile(
    r"(?:(?:i'?m|i am) sorry|i apologi[sz]e|sorry|unfortunately)?[,.]?\s*(?:but\s+)?i\s+"
    r"(?:can(?:no|')t|am unable to|'m unable to|am not able to|'m not able to|won't)\s+"
    r"(?:assist|help)(?:\s+you)?\s+with\s+(?:that|this|your|the)(?:\s+(?:request|question|one))?\s*[.!]?",
    re.IGNORECASE,
)


BARE_REFUSAL = "bare refusal (no answer, no hand-off)"  # the drop reason synth gives such an answer


def is_refusal(text: str) -> bool:
    """True for a bare refusal and nothing more (not for a hand-off, nor "the documents do not cover this")."""
    return bool(_REFUSAL.fullmatch(text.strip().replace("\u2019", "'")))


@dataclass
class Prompted:
    """What the student will see (`messages`) and what the teacher is asked (`teacher_messages`)."""

    messages: Messages
    teacher_messages: Messages
    context: list[dict[str, Any]] | None


def raft_context(q: PlannedQuestion, chunks: list[Chunk], config: "SynthConfig", question_id: str) -> list[dict[str, Any]]:
    """The chunks shown with a RAFT question, seeded by the question id so a re-run shows the same."""
    rng = random.Random(f"{config.seed}:{question_id}")
    with_oracle = rng.random() < config.raft_oracle_fraction
    pool = [c for c in chunks if c.id not in q.chunk_ids]
    distractors = rng.sample(pool, min(config.raft_distractors, len(pool)))
    shown = [{"chunk": c.id, "text": c.text, "oracle": True} for c in q.chunks] if with_oracle else []
    shown += [{"chunk": c.id, "text": c.text, "oracle": False} for c in distractors]
    rng.shuffle(shown)
    return shown


def prompt_for(q: PlannedQuestion, question: str, *, system: str, name: str, config: "SynthConfig",
               chunks: list[Chunk], question_id: str) -> Prompted:  # fmt: skip
    reference = q.reference()
    if q.is_refusal:
        teacher_system = prompts.ANSWER_REFUSAL_SYSTEM.format(
            system=system, type_description=q.description, reference=reference
        )
    else:
        teacher_system = prompts.ANSWER_SYSTEM.format(system=system, reference=reference)
    context = None
    user = question
    if config.format == "raft":
        context = raft_context(q, chunks, config, question_id)
        user = context_turn(question, [(c["chunk"], c["text"]) for c in context])
        if not q.is_refusal and not any(c["oracle"] for c in context):
            teacher_system = prompts.ANSWER_NO_EXCERPT_SYSTEM.format(system=system, name=name)
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    teacher_messages = [{"role": "system", "content": teacher_system}, {"role": "user", "content": user}]
    return Prompted(messages, teacher_messages, context)


@dataclass
class Answer:
    text: str
    finish_reason: str | None
    logprobs: list[dict[str, Any]] | None
    proposals: list[str]


async def grounded_answer(teacher: "ChatClient", proposers: list["ChatClient"], prompted: Prompted, *,
                          max_tokens: int, top_logprobs: int) -> Answer:  # fmt: skip
    """The teacher's answer; with proposers, each proposes and the teacher synthesizes (MoA)."""
    messages = prompted.teacher_messages
    proposals: list[str] = []
    if proposers:
        import asyncio

        replies = await asyncio.gather(*(p.complete(messages, temperature=0.0, max_tokens=max_tokens) for p in proposers))
        proposals = [r.text.strip() for r in replies]
        candidates = "\n\n".join(f"Candidate {i + 1}:\n{text}" for i, text in enumerate(proposals))
        system = messages[0]["content"] + "\n\n" + prompts.AGGREGATE.format(candidates=candidates)
        messages = [{"role": "system", "content": system}, *messages[1:]]
    reply = await teacher.complete(messages, temperature=0.0, max_tokens=max_tokens, top_logprobs=top_logprobs)
    logprobs = [asdict(t) for t in reply.logprobs] if top_logprobs and reply.logprobs else None
    # With logprobs the text stays exactly as generated, so its tokens line up with them.
    text = reply.text if logprobs else reply.text.strip()
    return Answer(text, reply.finish_reason, logprobs, proposals)
