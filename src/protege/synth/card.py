"""card.md: what synth generated, what it dropped and why, what it cost, and on whose terms."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from protege.config import ModelConfig
from protege.dataset import Part, with_harvest_section

UNKNOWN_LICENSE = "unknown"


def license_terms(model: ModelConfig) -> str:
    """The config's `license`, else the embedded registry's, else "unknown"."""
    if model.license:
        return model.license
    from protege.refs import parse_ref

    ref = parse_ref(model.ref)
    if ref.kind == "embedded":
        from protege.models.embedded import get

        return get(ref.name).license
    return UNKNOWN_LICENSE


@dataclass
class GroundingCounts:
    threshold: float  # synth.grounding_threshold
    dropped: int  # pairs the groundedness check dropped
    judge_kept: int | None  # of those, pairs the judge passed (None: no judge)
    declined_for_teacher: int = 0  # kept rows whose excerpts lack the answer, given the decline the teacher did not write


@dataclass
class KeyFactCounts:
    rows: int  # kept rows
    with_facts: int  # kept rows that state facts and have key facts
    facts: int  # key facts in those rows
    from_answer: int  # rows whose key facts are the answer's numbers from the source (none listed survived)
    declining: int  # kept rows whose right answer declines (no key facts)
    listed: int  # facts the teacher listed, over every checked pair
    not_in_source: int  # listed facts found nowhere in the source: dropped
    not_in_answer: int  # listed facts in the source that the teacher's answer does not state: dropped


@dataclass
class CardData:
    project: str
    docs_dir: str
    config_hash: str
    code_version: str
    format: str
    wall_s: float
    files_read: int
    skipped: list[tuple[str, str]]
    notes: list[str]
    chunks_total: int
    chunks_used: int
    persona_source: str
    steps: list[tuple[str, int]]  # (step, count after it), in pipeline order
    dropped: Counter
    planned_types: Counter
    train_types: Counter
    eval_types: Counter
    usage: list[dict[str, Any]]  # one per model role: role, ref, calls, cache_hits, tokens, cost
    licenses: list[tuple[str, str, str]]  # (role, ref, terms)
    logprobs_note: str
    redactions: int
    judge_retries: int
    judge_threshold: float | None  # None: synth.judge is off
    grounding: GroundingCounts
    key_facts: KeyFactCounts
    examples: list[dict[str, Any]] = field(default_factory=list)
    harvest: list[Part] = field(default_factory=list)  # the dataset's parts beyond synth's (protege.dataset)
    excerptless_copies: int = 0  # training rows copied with the answer's excerpts removed, to be declined (synth.declines)
    avoided_topics: list[str] | str | None = None  # the system prompt's topics to avoid (synth/avoided.py); "unreadable"; None: none asked


def pick_examples(rows: list[dict[str, Any]], seed: int, n: int = 10) -> list[dict[str, Any]]:
    """n rows drawn with the seed, shown in dataset order."""
    chosen = sorted(random.Random(seed).sample(range(len(rows)), min(n, len(rows))))
    return [rows[i] for i in chosen]


def _clip(text: str, limit: int = 500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _grounding_lines(g: GroundingCounts, k: KeyFactCounts) -> list[str]:
    share = f"{k.not_in_source / k.listed:.0%}" if k.listed else "n/a"
    return [
        "## Groundedness and key facts",
        "",
        f"The groundedness check reads the text, not the teacher's opinion: every number in an answer must occur in what "
        f"the answer may draw on (the source, the excerpts shown, the system prompt, the question), and at least "
        f"{g.threshold:.0%} of its content words; an answer that should decline must decline. It dropped **{g.dropped}** "
        f"pair(s)" + (f"; the judge alone would have kept **{g.judge_kept}** of them." if g.judge_kept is not None else
                      " (no judge ran: synth.judge is off).")
        + (f" In **{g.declined_for_teacher}** kept RAFT row(s) none of the excerpts answers the question and the teacher "
           "answered anyway; each was given the decline it should have written (`NO_EXCERPT_DECLINE` in synth/prompts.py; "
           "the teacher's answer is in the row's `meta.declined_for_the_teacher`)." if g.declined_for_teacher else ""),
        "",
        f"Key facts (what a correct answer must state, for eval's fact recall): {k.with_facts} of {k.rows} kept rows have "
        f"them ({k.facts} facts; {k.from_answer} rows use the answer's numbers from the source because no fact the "
        f"teacher listed survived); {k.declining} rows are to be declined and have none. Of {k.listed} facts the teacher "
        f"listed, {k.not_in_source} ({share}) were not in the source and {k.not_in_answer} were not in its own answer: "
        "both left out.",
        "",
    ]  # fmt: skip


def render_card(d: CardData) -> str:
    lines = [
        f"# Dataset card: {d.project}",
        "",
        f"Made by protege {d.code_version} from `{d.docs_dir}`, config hash `{d.config_hash}`, "
        f"format `{d.format}`, in {d.wall_s:.1f} s.",
        "",
        "## Counts",
        "",
        "| step | count |",
        "| --- | ---: |",
        f"| files read | {d.files_read} |",
        f"| files skipped | {len(d.skipped)} |",
        f"| chunks | {d.chunks_total} |",
        f"| chunks used (`max_chunks`) | {d.chunks_used} |",
    ]
    lines += [f"| {step} | {count} |" for step, count in d.steps]
    lines += [f"| of which eval (held out by chunk) | {sum(d.eval_types.values())} |"]
    if d.excerptless_copies:
        lines += [f"| training rows added: excerpts removed, answer declines | {d.excerptless_copies} |"]
    lines += [""]
    if d.excerptless_copies:
        lines += [f"{d.excerptless_copies} training row(s) are copies of answered RAFT rows with the answer's excerpts "
                  "taken out and the decline as the answer (id ending `-no-excerpt`, `meta.excerptless_copy_of`), so "
                  "training declines as often as RAFT's oracle fraction asks; eval has none (synth/declines.py).", ""]
    if d.skipped:
        lines += ["### Files skipped", ""] + [f"- `{f}`: {reason}" for f, reason in d.skipped] + [""]
    if d.notes:
        lines += ["### Rows skipped inside read files", ""] + [f"- {n}" for n in d.notes] + [""]
    lines += ["### Dropped, by reason", ""]
    lines += [f"- {reason}: {n}" for reason, n in sorted(d.dropped.items())] or ["- none"]
    lines += [
        "",
        (f"Judge threshold: groundedness and helpfulness both >= {d.judge_threshold:g} (judge re-asked {d.judge_retries} "
         "time(s) after a malformed answer)." if d.judge_threshold is not None else "Judge: off (synth.judge).")
        + f" Guard: PII redactions in kept pairs: {d.redactions}. Every dropped pair is in `dropped.jsonl` with its reason.",
        "",
        *_grounding_lines(d.grounding, d.key_facts),
        "## Type mix",
        "",
        "| type | planned | train | eval |",
        "| --- | ---: | ---: | ---: |",
    ]
    for t in sorted(set(d.planned_types) | set(d.train_types) | set(d.eval_types)):
        lines.append(f"| {t} | {d.planned_types[t]} | {d.train_types[t]} | {d.eval_types[t]} |")
    lines += ["", f"System prompt: {d.persona_source} (`persona.md`, or `persona` in protege.yaml).", ""]
    if isinstance(d.avoided_topics, str):
        lines += ["The teacher's list of the topics to avoid could not be read (not JSON, or cut off at "
                  "`TOPICS_MAX_TOKENS` in synth/avoided.py): the planned avoided-topic questions were asked as "
                  "out-of-scope ones.", ""]  # fmt: skip
    elif d.avoided_topics is not None:
        lines += [(f"Topics to avoid, as the teacher read them from the system prompt: {', '.join(d.avoided_topics)}. "
                   "avoided-topic questions are about these and are to be declined in the agent's voice.")
                  if d.avoided_topics else "The system prompt names no topics to avoid: the planned avoided-topic "
                  "questions were asked as out-of-scope ones.", ""]  # fmt: skip
    return with_harvest_section("\n".join(lines + _usage_and_examples(d)).rstrip() + "\n", d.harvest)


def _usage_and_examples(d: CardData) -> list[str]:
    lines = [
        "## Teacher calls, tokens and cost",
        "",
        "| role | model | calls | cache hits | prompt tokens | completion tokens | cost (USD) | paid this run (USD) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for u in d.usage:
        lines.append(
            f"| {u['role']} | `{u['ref']}` | {u['calls']} | {u['cache_hits']} | {u['prompt_tokens']:,} | "
            f"{u['completion_tokens']:,} | {u['cost_usd']:.4f} | {u['spent_usd']:.4f} |"
        )
    lines += ["", f"Logprobs: {d.logprobs_note}", "", "## Licence of the teacher's outputs", ""]
    for role, ref, terms in d.licenses:
        if terms == UNKNOWN_LICENSE:
            lines.append(
                f"- **WARNING** {role} `{ref}`: licence unknown. Check the provider's terms on training other "
                "models with its outputs before you train on this dataset (set `license:` on the model in protege.yaml)."
            )
        else:
            lines.append(f"- {role} `{ref}`: {terms}")
    lines += ["", f"## {len(d.examples)} random examples", ""]
    for row in d.examples:
        question = row["messages"][-2]["content"]
        if row.get("context") is not None:
            question = question.rsplit("Question:", 1)[-1]
        scores = row.get("scores")
        judged = f"scores {scores['groundedness']:g}/{scores['helpfulness']:g}" if scores else "not judged"
        lines += [
            f"**{row['id']}** ({row['type']}, {row['persona']}; from {', '.join(row['source']['chunks'])}; {judged})",
            "",
            f"> **Q:** {_clip(question)}",
            ">",
            f"> **A:** {_clip(row['messages'][-1]['content'])}",
            "",
        ]
    return lines
