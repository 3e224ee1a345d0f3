"""The agent's system prompt: the config's `persona`, else artifacts/data/persona.md.

persona.md is written by protege (a voice profile from the creator's posts, or a default
prompt from the project name) and then belongs to the owner: protege records the sha256 of
what it wrote and what it was made from, and rewrites the file only when it is missing, or when
it is still exactly as protege wrote it and its inputs changed. An edited file is always kept.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from protege.corpus import approx_tokens
from protege.project import DEFAULT_SYSTEM
from protege.synth import prompts

if TYPE_CHECKING:
    from protege.corpus import Corpus
    from protege.models.client import ChatClient
    from protege.project import Project

VOICE_SAMPLE_TOKENS = 1800
VOICE_MAX_TOKENS = 450
Source = Literal["config", "edited by owner", "generated", "unchanged", "default"]


@dataclass
class Persona:
    text: str
    source: Source


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _state_path(project: "Project") -> Path:
    return project.paths.data / ".persona.json"


def voice_sample(posts: list[str], seed: int) -> list[str]:
    """Posts for the voice profile: all when they fit the prompt, else a seeded sample in post order."""
    if sum(approx_tokens(p) for p in posts) <= VOICE_SAMPLE_TOKENS:
        return list(posts)
    order = list(range(len(posts)))
    random.Random(seed).shuffle(order)
    chosen, used = [], 0
    for i in order:
        cost = approx_tokens(posts[i])
        if used + cost > VOICE_SAMPLE_TOKENS:
            continue
        chosen.append(i)
        used += cost
    return [posts[i] for i in sorted(chosen)]


def _recipe(project: "Project", corpus: "Corpus") -> tuple[str, str | None]:
    """(inputs fingerprint, voice prompt or None for the default prompt)."""
    name = project.name
    if corpus.posts:
        sample = voice_sample(corpus.posts, project.config.synth.seed)
        prompt = prompts.VOICE_PROFILE.format(name=name, posts="\n\n".join(f"- {p}" for p in sample))
        return _sha(json.dumps([project.config.teacher.ref, prompt])), prompt
    text = DEFAULT_SYSTEM.format(name=name)
    return _sha(text), None


def pending_call(project: "Project", corpus: "Corpus") -> str | None:
    """The voice-profile prompt when resolving the persona needs a teacher call (for --dry-run)."""
    if project.config.persona:
        return None
    inputs, prompt = _recipe(project, corpus)
    return prompt if _must_write(project, inputs) else None


def _must_write(project: "Project", inputs: str) -> bool:
    path = project.paths.persona
    if not path.exists():
        return True
    state = _load_state(project)
    if state.get("written") != _sha(path.read_text(encoding="utf-8")):
        return False  # the owner edited it (or wrote it): theirs now
    return state.get("inputs") != inputs


def _load_state(project: "Project") -> dict:
    try:
        return json.loads(_state_path(project).read_text())
    except (OSError, ValueError):
        return {}


async def resolve_persona(project: "Project", corpus: "Corpus", teacher: "ChatClient") -> Persona:
    if project.config.persona:
        return Persona(project.config.persona.strip(), "config")
    path = project.paths.persona
    inputs, prompt = _recipe(project, corpus)
    if not _must_write(project, inputs):
        text = path.read_text(encoding="utf-8").strip()
        edited = _load_state(project).get("written") != _sha(path.read_text(encoding="utf-8"))
        return Persona(text, "edited by owner" if edited else "unchanged")
    if prompt is None:
        text, source = DEFAULT_SYSTEM.format(name=project.name), "default"
    else:
        reply = await teacher.complete([{"role": "user", "content": prompt}], temperature=0.0, max_tokens=VOICE_MAX_TOKENS)
        # An empty reply (a weak local teacher) falls back to the default rather than a blank prompt.
        text = reply.text.strip() or DEFAULT_SYSTEM.format(name=project.name)
        source = "generated" if reply.text.strip() else "default"
    path.parent.mkdir(parents=True, exist_ok=True)
    content = text + "\n"
    path.write_text(content, encoding="utf-8")
    _state_path(project).write_text(json.dumps({"written": _sha(content), "inputs": inputs}))
    return Persona(text, source)  # type: ignore[arg-type]
