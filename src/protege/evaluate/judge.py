"""The LLM judge: a 1-10 rubric score, and (eval.pairwise) a position-swapped pairwise verdict.

A local judge answers under constrained decoding (RUBRIC_SCHEMA, PAIRWISE_SCHEMA), so a small
model answers in the format. Hosted judges answer unconstrained, and their replies are parsed
robustly (prose around the JSON, code fences, single quotes, trailing commas, a verdict outside
JSON); one that still cannot be read is retried once as a follow-up turn that quotes the problem
(a different request, so the cache does not just return the same bad reply). A judgment that
fails twice is returned as None with its error, so the report can count it: nothing is dropped
silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from protege.errors import ProtegeError
from protege.evaluate import prompts
from protege.models.client import ChatClient
from protege.replies import ReplyParseError, json_format, parse_json_object, score_schema

Verdict = Literal["win", "tie", "loss"]
T = TypeVar("T")
RUBRIC_SCHEMA = score_schema("score")
PAIRWISE_SCHEMA = {"type": "object", "properties": {"winner": {"enum": ["A", "B", "tie"]}}, "required": ["winner"],
                   "additionalProperties": False}  # fmt: skip


def parse_score(text: str) -> int:
    """A 1-10 rubric score from a judge reply."""
    try:
        raw = parse_json_object(text).get("score")
    except ReplyParseError as exc:
        # A reply cut off by max_tokens, or prose like `"score": 7` without a closing brace.
        m = re.search(r"""["']?score["']?\s*[:=]\s*["']?(\d+(?:\.\d+)?)""", text, re.I)
        if not m:
            raise exc
        raw = m.group(1)
    if isinstance(raw, str):
        m = re.match(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*10)?\s*$", raw)
        raw = float(m.group(1)) if m else None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ReplyParseError("no numeric 'score'")
    if not 1 <= raw <= 10:
        raise ReplyParseError(f"score {raw} outside 1-10")
    return int(round(raw))


def parse_winner(text: str) -> Literal["A", "B", "tie"]:
    """'A', 'B' or 'tie' from a pairwise reply."""
    try:
        raw = parse_json_object(text).get("winner")
    except ReplyParseError as exc:
        m = re.search(r"""["']?winner["']?\s*[:=]\s*["']?(answer\s*)?([AB]|tie)\b""", text, re.I)
        if not m:
            raise exc
        raw = m.group(2)
    if not isinstance(raw, str):
        raise ReplyParseError("no 'winner'")
    word = re.sub(r"^(answer|assistant)\s*", "", raw.strip(), flags=re.I).strip().strip(".")
    if word.upper() in ("A", "B"):
        return word.upper()  # type: ignore[return-value]
    if word.lower() in ("tie", "draw", "equal", "both"):
        return "tie"
    raise ReplyParseError(f"winner {raw!r} is not A, B or tie")


@dataclass
class Judgment:
    """One judgment: its parsed value or None, and every problem met on the way."""

    value: Any = None
    errors: list[str] = field(default_factory=list)


async def ask(client: ChatClient, messages: list[dict[str, str]], parse: Callable[[str], T], schema: dict[str, Any]) -> Judgment:
    """Ask the judge (a local one held to `schema`); retry once as a follow-up turn if the reply cannot be parsed."""
    result = Judgment()
    for attempt in range(2):
        try:
            reply = await client.complete(messages, max_tokens=prompts.JUDGE_MAX_TOKENS, temperature=0.0,
                                          response_format=json_format(client.config.ref, schema))  # fmt: skip
        except ProtegeError as exc:
            result.errors.append(f"judge call failed: {exc}")
            return result
        try:
            result.value = parse(reply.text)
            return result
        except ReplyParseError as exc:
            result.errors.append(f"attempt {attempt + 1}: {exc}: {reply.text[:160]!r}")
            messages = messages + [
                {"role": "assistant", "content": reply.text},
                {"role": "user", "content": prompts.RETRY.format(problem=exc)},
            ]
    return result


def _fields(row: dict[str, Any]) -> dict[str, str]:
    msgs = row["messages"]
    return {
        "persona": next((m["content"] for m in msgs if m["role"] == "system"), "(none)"),
        "question": row["question"],
        "source": (row.get("source") or {}).get("text") or "(no source text)",
        "scope_note": prompts.SCOPE_NOTES.get(row.get("type", ""), ""),
    }


def rubric_messages(row: dict[str, Any], answer: str) -> list[dict[str, str]]:
    user = prompts.RUBRIC_USER.format(**_fields(row), reference=row["reference"], answer=answer or "(empty answer)")
    return [{"role": "system", "content": prompts.RUBRIC_SYSTEM}, {"role": "user", "content": user}]


def pairwise_messages(row: dict[str, Any], answer_a: str, answer_b: str) -> list[dict[str, str]]:
    user = prompts.PAIRWISE_USER.format(
        **_fields(row), answer_a=answer_a or "(empty answer)", answer_b=answer_b or "(empty answer)"
    )
    return [{"role": "system", "content": prompts.PAIRWISE_SYSTEM}, {"role": "user", "content": user}]


async def rubric(client: ChatClient, row: dict[str, Any], answer: str) -> Judgment:
    return await ask(client, rubric_messages(row, answer), parse_score, RUBRIC_SCHEMA)


def student_verdict(winner: str | None, student_is_a: bool) -> Verdict | None:
    """The judge's 'A'/'B'/'tie' as the student's win/tie/loss against the teacher."""
    if winner is None:
        return None
    if winner == "tie":
        return "tie"
    return "win" if (winner == "A") == student_is_a else "loss"


def reconcile(first: Verdict | None, second: Verdict | None) -> Verdict | None:
    """One verdict from the two orders, so position bias cancels.

    Agreement stands. A tie in one order and a win or loss in the other is a tie: the preference
    did not survive the swap. A win in one order and a loss in the other is None: the judge
    preferred a position, not an answer (reported as inconsistent). A failed order gives None.
    """
    if first is None or second is None:
        return None
    if first == second:
        return first
    if "tie" in (first, second):
        return "tie"
    return None


async def pairwise(client: ChatClient, row: dict[str, Any], student: str, teacher: str) -> tuple[list[Verdict | None], Judgment]:
    """Ask twice, student first then teacher first; the orders' verdicts and the reconciled one."""
    a = await ask(client, pairwise_messages(row, student, teacher), parse_winner, PAIRWISE_SCHEMA)
    b = await ask(client, pairwise_messages(row, teacher, student), parse_winner, PAIRWISE_SCHEMA)
    orders = [student_verdict(a.value, True), student_verdict(b.value, False)]
    errors = [f"pairwise student-first: {e}" for e in a.errors] + [f"pairwise teacher-first: {e}" for e in b.errors]
    return orders, Judgment(reconcile(*orders), errors)
