"""The judge: groundedness and helpfulness of each pair, from a JSON answer parsed robustly.

A local judge answers under constrained decoding (VERDICT_SCHEMA). Hosted ones, unconstrained,
wrap their JSON in prose or code fences, use single quotes, or write "8/10";
`parse_scores` accepts all of that. A reply with no usable scores is asked again once, with a
follow-up turn (a new request, so the cache does not hand back the same bad answer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from protege.replies import json_format, json_objects, score_schema
from protege.synth import prompts

if TYPE_CHECKING:
    from protege.models.client import ChatClient

SCORE_KEYS = ("groundedness", "helpfulness")
# Scores only: no reason is asked for (a sentence is ~25 tokens, ~1.7 s per pair on a CPU teacher, and
# the scores alone decide); a hosted judge that gives one anyway has it kept.
VERDICT_SCHEMA = score_schema(*SCORE_KEYS)
JUDGE_MAX_TOKENS = 32
_FENCE = re.compile(r"```(?:json)?", re.IGNORECASE)


@dataclass
class Verdict:
    groundedness: float | None
    helpfulness: float | None
    reason: str
    attempts: int

    @property
    def parsed(self) -> bool:
        return self.groundedness is not None and self.helpfulness is not None


def _score(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and (m := re.match(r"\s*(\d+(?:\.\d+)?)", value)):
        number = float(m.group(1))
    else:
        return None
    return number if 0 <= number <= 10 else None


def parse_scores(text: str) -> tuple[float, float, str] | None:
    """(groundedness, helpfulness, reason) from a judge reply, or None when it holds no scores."""
    for data in json_objects(text):
        lowered = {str(k).lower(): v for k, v in data.items()}
        g, h = (_score(lowered.get(k)) for k in SCORE_KEYS)
        if g is not None and h is not None:
            return g, h, str(lowered.get("reason", ""))[:300]
    cleaned = _FENCE.sub("", text)
    found = [re.search(rf"{k}\W{{0,4}}(\d+(?:\.\d+)?)", cleaned, re.IGNORECASE) for k in SCORE_KEYS]
    if all(found):
        g, h = (_score(m.group(1)) for m in found)  # type: ignore[union-attr]
        if g is not None and h is not None:
            reason = re.search(r"reason\W{0,4}([^\n\"]+)", cleaned, re.IGNORECASE)
            return g, h, reason.group(1).strip()[:300] if reason else ""
    return None


async def judge_pair(client: "ChatClient", *, reference: str, qtype: str, question: str, answer: str) -> Verdict:
    messages = [{"role": "user", "content": prompts.JUDGE.format(reference=reference, qtype=qtype, question=question, answer=answer)}]
    fmt = json_format(client.config.ref, VERDICT_SCHEMA)
    reply = await client.complete(messages, temperature=0.0, max_tokens=JUDGE_MAX_TOKENS, response_format=fmt)
    parsed = parse_scores(reply.text)
    attempts = 1
    if parsed is None:
        retry = messages + [{"role": "assistant", "content": reply.text}, {"role": "user", "content": prompts.JUDGE_RETRY}]
        reply = await client.complete(retry, temperature=0.0, max_tokens=JUDGE_MAX_TOKENS, response_format=fmt)
        parsed = parse_scores(reply.text)
        attempts = 2
    if parsed is None:
        return Verdict(None, None, f"malformed judge answer twice: {reply.text[:120]!r}", attempts)
    return Verdict(parsed[0], parsed[1], parsed[2], attempts)
