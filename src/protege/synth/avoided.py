"""The topics the agent must not discuss, read from its system prompt, for avoided-topic questions.

A creator's voice profile has a "Topics they avoid" section that the teacher writes in prose
("avoids discussing politics, religion and brand recommendations"); an owner's own persona may
say the same in any words. So the teacher lists the topics as JSON (one call, cached), and each
planned avoided-topic question takes one in turn. When the system prompt names none, those
questions are asked as out-of-scope ones instead: their teacher calls still buy declines.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from protege.config import AVOIDED_TOPIC
from protege.corpus.facts import tokens
from protege.replies import ReplyParseError, json_format, parse_json_object
from protege.synth import prompts
from protege.synth.grounded import STOPWORDS

if TYPE_CHECKING:
    from protege.config import SynthConfig
    from protege.models.client import ChatClient
    from protege.synth.questions import PlannedQuestion

MAX_TOPICS = 12
MAX_TOPIC_CHARS = 60
TOPICS_MAX_TOKENS = 400  # room for MAX_TOPICS of MAX_TOPIC_CHARS each: a cut reply would read as none
TOPICS_SCHEMA = {
    "type": "object",
    "properties": {"topics": {"type": "array", "items": {"type": "string", "minLength": 2, "maxLength": MAX_TOPIC_CHARS},
                              "maxItems": MAX_TOPICS}},  # fmt: skip
    "required": ["topics"],
    "additionalProperties": False,
}


def planned(synth: "SynthConfig", questions: int) -> int:
    """How many avoided-topic questions to plan beside the plan's `questions`: as configured, at
    most a third as many as the rest (a --quick run of a project that sets 24 plans 6).

    None by default. Measured on the creator example (24 planned, 17 kept, 9 of 34 training rows):
    the trained student declined 8 of 8 held-out ones (untrained 6 of 8), but its style similarity
    to her posts fell by 0.047 [0.011, 0.086] against the untrained student's, where without them
    it rose by 0.011 [-0.022, 0.040]: the teacher's declines repeat one stock phrase, and a quarter
    of the training set saying it pulls every answer away from her voice. So it is the owner's
    choice, with the measurement to make it by."""
    if not synth.avoided_topic_questions:
        return 0
    return min(synth.avoided_topic_questions, max(1, questions // 3))


def parse_topics(text: str) -> list[str] | None:
    """The topics from the teacher's JSON reply, trimmed and without repeats; None when the reply
    holds no list of topics to read (not JSON, or cut off), which is not the same as naming none."""
    try:
        data = parse_json_object(text)
    except ReplyParseError:
        return None
    raw = data.get("topics")
    if not isinstance(raw, list):
        return None
    topics: list[str] = []
    for t in raw:
        t = " ".join(t.split()).strip(" .;,-") if isinstance(t, str) else ""
        if 2 <= len(t) <= MAX_TOPIC_CHARS and t.lower() not in {x.lower() for x in topics}:
            topics.append(t)
    return topics[:MAX_TOPICS]


async def avoided_topics(client: "ChatClient", system: str) -> list[str] | None:
    reply = await client.complete(
        [{"role": "user", "content": prompts.AVOIDED_TOPICS.format(system=system)}], temperature=0.0,
        max_tokens=TOPICS_MAX_TOKENS, response_format=json_format(client.config.ref, TOPICS_SCHEMA),
    )  # fmt: skip
    return parse_topics(reply.text)


# Beyond the stopwords, words that say nothing of what a topic is: "medical advice" is about "medical".
_GENERIC = frozenset("advice tip recommendation opinion view discussing discussion question topic personal thing".split())


def on_topic(question: str, topic: str) -> bool:
    """Whether the question names its topic: one of the topic's telling words (stems of 5 letters,
    so "political" matches "politics") appears in it. A question off its topic would teach the
    student to decline something it may answer."""
    words = [w for w in tokens(topic, number_words=False) if len(w) >= 3 and w not in STOPWORDS | _GENERIC]
    asked = tokens(question, number_words=False)
    return any(a.startswith(w[:5]) for w in words for a in asked)


def assign(plan: list["PlannedQuestion"], topics: list[str]) -> list["PlannedQuestion"]:
    """The plan with a topic on each avoided-topic question, in turn; with no topics, those
    questions become out-of-scope ones."""
    out, k = [], 0
    for q in plan:
        if q.type == AVOIDED_TOPIC:
            q = dataclasses.replace(q, topic=topics[k % len(topics)]) if topics else dataclasses.replace(q, type="out-of-scope")
            k += 1
        out.append(q)
    return out
