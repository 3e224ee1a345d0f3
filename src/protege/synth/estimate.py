"""`protege synth --dry-run`: calls, tokens and cost before any call is made."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from protege.config import AVOIDED_TOPIC, ModelConfig
from protege.corpus import Chunk, Corpus, approx_tokens
from protege.models.speed import estimated_seconds
from protege.project import DEFAULT_SYSTEM
from protege.synth import persona as persona_mod
from protege.synth import prompts
from protege.synth.avoided import TOPICS_MAX_TOKENS
from protege.synth.questions import PlannedQuestion, question_prompt

if TYPE_CHECKING:
    from protege.project import Project

# Guesses for --dry-run only: completion lengths the teacher and judge typically write.
EST_QUESTION_TOKENS = 30
EST_QUESTION_REPLY_TOKENS = 50  # a question and its key facts, as JSON
EST_JUDGE_TOKENS = 50
EST_ANSWER_SHARE = 0.5
EST_VOICE_PROFILE_TOKENS = 300


@dataclass
class EstimateRow:
    step: str
    ref: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    seconds: float | None = None  # local models only: from their measured speed (models/speed.py)


def estimate_calls(project: "Project", corpus: Corpus, chunks: list[Chunk], plan: list[PlannedQuestion]) -> list[EstimateRow]:
    """Calls, tokens and cost before any call is made (upper bounds on calls; tokens estimated)."""
    c = project.config
    synth = c.synth

    def row(step: str, model: ModelConfig, calls: int, prompt: int, completion: int) -> EstimateRow:
        cost = (prompt * model.price_input + completion * model.price_output) / 1e6
        return EstimateRow(step, model.ref, calls, prompt, completion, cost)

    rows = []
    voice_prompt = persona_mod.pending_call(project, corpus)
    if voice_prompt:
        rows.append(row("voice profile", c.teacher, 1, approx_tokens(voice_prompt), persona_mod.VOICE_MAX_TOKENS))
        system_tokens = EST_VOICE_PROFILE_TOKENS
    else:
        path = project.paths.persona
        existing = path.read_text(encoding="utf-8") if path.is_file() else None
        system_tokens = approx_tokens(c.persona or existing or DEFAULT_SYSTEM.format(name=project.name))
    if any(q.type == AVOIDED_TOPIC for q in plan):
        rows.append(row("topics to avoid", c.teacher, 1, system_tokens + approx_tokens(prompts.AVOIDED_TOPICS), TOPICS_MAX_TOKENS))
    if synth.logprobs:
        rows.append(row("logprobs probe", c.teacher, 1, 10, 2))
    n = len(plan)
    rows.append(row("questions", c.teacher, n, sum(approx_tokens(question_prompt(q, project.name)) for q in plan),
                    n * EST_QUESTION_REPLY_TOKENS))  # fmt: skip
    answer_out = int(synth.answer_max_tokens * EST_ANSWER_SHARE)
    answer_in = sum(system_tokens + 60 + approx_tokens(q.reference()) + EST_QUESTION_TOKENS for q in plan)
    if synth.format == "raft":
        answer_in += n * synth.raft_distractors * synth.chunk_tokens
    for p in synth.proposers:
        rows.append(row("proposals (MoA)", p, n, answer_in, n * answer_out))
    aggregate_in = answer_in + n * len(synth.proposers) * answer_out
    rows.append(row("answers", c.teacher, n, aggregate_in, n * answer_out))
    judge_in = sum(150 + approx_tokens(q.reference()) + EST_QUESTION_TOKENS + answer_out for q in plan)
    if synth.judge:
        rows.append(row("judge", c.judge_model, n, judge_in, n * EST_JUDGE_TOKENS))
    models = {m.ref: m for m in (c.teacher, c.judge_model, *synth.proposers)}
    for r in rows:
        r.seconds = estimated_seconds(models[r.ref], r.prompt_tokens, r.completion_tokens)
    return rows
