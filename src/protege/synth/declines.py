"""Training rows that teach a RAFT student to decline when the excerpts it is shown lack the answer.

RAFT shows a question with distractor excerpts only on (1 - raft_oracle_fraction) of rows, and
the right answer then says the documents do not cover it. Drawn per question, that share is
noisy on a small set, and a student learns to decline only from enough examples: on the demo 4
of 45 training rows declined, and the trained student declined none of the 18 held-out questions
that needed it (it answered from the distractors instead). So after the split, training gets
copies of some of its answered rows with the answer's excerpts taken out and the decline as the
answer, until excerpt-less rows are (1 - raft_oracle_fraction) of its RAFT rows, or the share
`synth.raft_train_declines` sets.

A copy costs no teacher call and is right by construction: the only excerpts left are ones the
row's own draw showed as distractors. It has no teacher tokens (KD skips it, cross-entropy
trains it) and it never goes to eval, whose share stays the one RAFT drew.
"""

from __future__ import annotations

import copy
import math
import random
from typing import Any

from protege.config import REFUSAL_TYPES
from protege.corpus.retrieve import context_turn, question_of_turn
from protege.synth import prompts

Row = dict[str, Any]
COPY_SUFFIX = "-no-excerpt"  # a copy's id is its row's id plus this


def _excerptless(row: Row) -> bool:
    return not any(c.get("oracle") for c in row["context"])


def _eligible(row: Row) -> bool:
    """An answered RAFT row with at least one distractor to keep, whose right answer states facts."""
    context = row.get("context")
    if not context or row.get("type") in REFUSAL_TYPES or _excerptless(row):
        return False
    return any(not c.get("oracle") for c in context)


def needed(rows: list[Row], share: float) -> int:
    """How many excerpt-less copies bring the excerpt-less rows to `share` of the RAFT rows."""
    raft = [r for r in rows if r.get("context") is not None and r.get("type") not in REFUSAL_TYPES]
    have = sum(1 for r in raft if _excerptless(r))
    if share <= 0 or share >= 1 or have >= share * len(raft):
        return 0
    return math.ceil((share * len(raft) - have) / (1 - share))


def excerptless_copy(row: Row, name: str) -> Row:
    """The row with its oracle excerpts removed and the decline as its answer."""
    out = copy.deepcopy(row)
    out["id"] = row["id"] + COPY_SUFFIX
    out["context"] = [c for c in row["context"] if not c.get("oracle")]
    system, user = row["messages"][0], row["messages"][1]
    question = question_of_turn(user["content"])
    out["messages"] = [
        system,
        {"role": "user", "content": context_turn(question, [(c["chunk"], c["text"]) for c in out["context"]])},
        {"role": "assistant", "content": prompts.NO_EXCERPT_DECLINE.format(name=name)},
    ]
    out["key_facts"] = []
    out["teacher"] = {**row["teacher"], "logprobs": None}
    out["scores"] = None
    out["meta"] = {**row["meta"], "excerptless_copy_of": row["id"]}
    out["meta"].pop("declined_for_the_teacher", None)
    return out


def add_excerptless_declines(train: list[Row], *, share: float, seed: int, name: str) -> list[Row]:
    """Copies to append to `train` (see the module docstring); deterministic for a seed."""
    eligible = [r for r in train if _eligible(r)]
    random.Random(f"{seed}:excerptless").shuffle(eligible)
    return [excerptless_copy(r, name) for r in eligible[: needed(train, share)]]
