"""One planned question on its way through synth (`Item`), and the rows it becomes: a train or
eval row when it is kept, a `dropped.jsonl` row with its reason when it is not (docs/formats.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import protege
from protege.synth.answers import Answer, Prompted
from protege.synth.grounded import Grounding
from protege.synth.judge import Verdict
from protege.synth.key_facts import KeyFacts
from protege.synth.questions import PlannedQuestion

if TYPE_CHECKING:
    from protege.models.client import ChatClient
    from protege.project import Project


@dataclass
class Item:
    """One planned question on its way through the pipeline; `dropped` ends its journey."""

    plan: PlannedQuestion
    question: str | None = None
    id: str = ""
    prompted: Prompted | None = None
    listed_facts: tuple[str, ...] = ()  # key facts as the teacher listed them with the question
    answer: Answer | None = None
    grounding: Grounding | None = None
    replaced_answer: str | None = None  # the teacher's answer to an excerpt-less question, when declined for it
    key_facts: KeyFacts | None = None
    guard: dict[str, Any] | None = None
    verdict: Verdict | None = None
    dropped: tuple[str, str] | None = None  # (reason category, detail)

    @property
    def alive(self) -> bool:
        return self.dropped is None

    @property
    def expect(self) -> Literal["facts", "decline"]:
        """What a right answer does: a refusal type, or a RAFT row whose excerpts lack the answer, declines."""
        context = self.prompted.context if self.prompted else None
        no_oracle = context is not None and not any(c["oracle"] for c in context)
        return "decline" if self.plan.is_refusal or no_oracle else "facts"

    @property
    def evidence(self) -> str:
        """What the answer may draw on: everything the student is shown (the agent's system prompt, the
        question, any excerpts) and, closed-book, the source the teacher answered from."""
        shown = "\n\n".join(m["content"] for m in self.prompted.messages)  # type: ignore[union-attr]
        return shown if self.prompted.context is not None else shown + "\n\n" + self.plan.source_text()  # type: ignore[union-attr]


def messages(it: Item) -> list[dict[str, Any]]:
    return [*it.prompted.messages, {"role": "assistant", "content": it.answer.text}]  # type: ignore[union-attr]


def row(it: Item, project: "Project", chash: str, proposers: list["ChatClient"]) -> dict[str, Any]:
    c = project.config
    chunks = it.plan.chunks
    teacher: dict[str, Any] = {"ref": c.teacher.ref, "logprobs": it.answer.logprobs}  # type: ignore[union-attr]
    if proposers:
        teacher["proposers"] = [p.ref for p in c.synth.proposers]
    row: dict[str, Any] = {
        "id": it.id,
        "type": it.plan.type,
        "persona": it.plan.persona,
        "messages": messages(it),
        "source": {"chunks": it.plan.chunk_ids, "files": list(dict.fromkeys(ch.file for ch in chunks)), "text": it.plan.source_text()},
    }
    if it.prompted.context is not None:  # type: ignore[union-attr]
        row["context"] = it.prompted.context  # type: ignore[union-attr]
    row["key_facts"] = it.key_facts.facts if it.key_facts else []
    row.update(
        teacher=teacher,
        scores={"groundedness": it.verdict.groundedness, "helpfulness": it.verdict.helpfulness, "judge": c.judge_model.ref}
        if it.verdict else None,
        guard=it.guard,
        meta={"config_hash": chash, "code_version": protege.__version__, "format": c.synth.format},
    )
    if it.plan.topic is not None:
        row["meta"]["topic"] = it.plan.topic  # avoided-topic: what the question is about (synth/avoided.py)
    if it.replaced_answer is not None:  # no teacher tokens: the row trains by cross-entropy alone
        row["meta"]["declined_for_the_teacher"] = it.replaced_answer
    return row


def dropped_row(it: Item) -> dict[str, Any]:
    reason, detail = it.dropped  # type: ignore[misc]
    return {
        "id": it.id or f"plan-{it.plan.index}", "type": it.plan.type, "chunks": it.plan.chunk_ids,
        "reason": reason, "detail": detail, "question": it.question,
        "answer": it.answer.text if it.answer else None,
        "scores": {"groundedness": it.verdict.groundedness, "helpfulness": it.verdict.helpfulness} if it.verdict else None,
        "grounding": it.grounding.to_dict() if it.grounding else None,
    }  # fmt: skip
