"""What the chat page and the widget show of an agent, and the sources of an answer.

Before anyone asks, the empty state shows the agent's name, one line of what it answers (the
persona's first sentence) and a few example questions from its own training set, so a visitor
sees at once what it is for. Each answer then carries the excerpts retrieved for it, bounded in
size, in the `protege` field of the response (a normal OpenAI client ignores that field).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protege.config import ServeConfig
from protege.corpus.retrieve import question_of_turn
from protege.project import Project

EXAMPLES = 4
TAGLINE_CHARS = 220
EXCERPT_CHARS = 700  # per source: enough to check an answer, small enough for a first stream chunk
SCAN_ROWS = 2000  # example questions come from the first rows of train.jsonl (it can be large)
QUESTION_CHARS = (12, 110)  # example questions that fit on one button


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    tagline: str
    examples: list[str]

    def to_dict(self, models: list[str]) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "tagline": self.tagline, "examples": self.examples, "models": models}


def tagline(persona: str) -> str:
    """The persona's first sentence, as a description: "You are the support assistant of X." ->
    "The support assistant of X." """
    first = re.split(r"(?<=[.!?])\s+", " ".join(persona.split()), maxsplit=1)[0]
    first = re.sub(r"^(you are|you're)\s+", "", first, flags=re.IGNORECASE)
    if len(first) > TAGLINE_CHARS:
        first = first[: TAGLINE_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return first[:1].upper() + first[1:]


def title(name: str) -> str:
    """A project name as a heading: riverbend-bikes -> Riverbend Bikes (an already-styled name is kept)."""
    if name != name.lower():
        return name
    return " ".join(w.capitalize() for w in re.split(r"[-_\s]+", name) if w) or name


def example_questions(train_jsonl: Path, n: int = EXAMPLES) -> list[str]:
    """Up to n distinct in-scope questions from the dataset, spread over it (the same ones every time)."""
    from protege.synth.questions import REFUSAL_TYPES

    if not train_jsonl.is_file():
        return []
    found: list[str] = []
    seen: set[str] = set()
    with train_jsonl.open(encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f):
            if i >= SCAN_ROWS:
                break
            try:
                row = json.loads(line)
                users = [m["content"] for m in row["messages"] if m["role"] == "user"]
            except (ValueError, KeyError, TypeError):
                continue  # a damaged row is the dataset's problem, not the chat page's
            if row.get("type") in (*REFUSAL_TYPES, "traffic") or not users or not isinstance(users[-1], str):
                continue
            question = " ".join(question_of_turn(users[-1]).split())
            if QUESTION_CHARS[0] <= len(question) <= QUESTION_CHARS[1] and question.casefold() not in seen:
                seen.add(question.casefold())
                found.append(question)
    if len(found) <= n:
        return found
    return [found[round(i * (len(found) - 1) / (n - 1))] for i in range(n)] if n > 1 else found[:1]


def profile(project: Project, persona: str) -> Profile:
    return Profile(project.name, title(project.name), tagline(persona), example_questions(project.paths.train_jsonl))


def sources_for(route: str, chunks: list[Any], serve: ServeConfig) -> list[dict[str, str]] | None:
    """The sources of an answer: the chunks the model that answered was shown, None if it was
    shown none (its retrieval is off, or the guard answered)."""
    return sources(chunks) if serve.retrieves(route) and chunks else None


def sources(chunks: list[Any]) -> list[dict[str, str]]:
    """The retrieved chunks as the answer's sources: id, file and text (cut at EXCERPT_CHARS)."""
    out = []
    for c in chunks:
        text = c.text if len(c.text) <= EXCERPT_CHARS else c.text[: EXCERPT_CHARS - 1].rsplit(" ", 1)[0] + "…"
        out.append({"id": c.id, "file": c.file, "text": text})
    return out
