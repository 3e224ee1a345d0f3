"""Does a creator's agent sound like the creator? Style similarity to the creator's held-out posts.

It is measured when the project's documents include posts (rows of .jsonl/.csv files) and the
persona is the voice profile synth writes from them, or when eval.voice says so. An answer's style similarity is the cosine
between its MiniLM embedding and the mean embedding of the held-out posts (the sources of the
eval questions) other than its own question's, so an answer does not score for repeating the
post it was asked about.

MiniLM embeds what a text is about more than how it is written, so on its own the figure mixes
topic and voice. The control is a generic assistant: the teacher asked the same questions, with
the same excerpts, under a plain assistant's system prompt instead of the creator's persona. It
knows the same facts, so what the trained agent scores above it is voice. The figures are paired
per question (trained - untrained, trained - generic), with bootstrap intervals.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from protege.evaluate.metrics import by_type, column
from protege.evaluate.stats import bootstrap_ci, mean_difference

GENERIC_SYSTEM = "You are a helpful assistant."
GENERIC = "generic"  # the generic assistant's key in each result's answers
STUDENTS = ("untrained", "trained")


def post_chunks(project: Any) -> dict[str, str]:
    """{chunk id: text} of the project's post chunks; empty when voice is not measured.

    eval.voice decides; by default it is measured when the docs include posts (rows of .jsonl/.csv
    files) and the persona is the voice profile synth writes from them (no `persona:` in the
    config): a shop's FAQ export with a written persona is not a creator's voice.
    """
    from protege.corpus import load_corpus
    from protege.errors import ProtegeError

    wanted = project.config.eval.voice
    if wanted is False or (wanted is None and project.config.persona):
        return {}
    try:
        corpus = load_corpus(project)
    except ProtegeError:
        return {}
    posts = {d.file for d in corpus.documents if d.kind == "posts"}
    return {c.id: c.text for c in corpus.chunks if c.file in posts}


def generic_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The eval items with the creator's persona replaced by a plain assistant's system prompt."""
    out = []
    for item in items:
        messages = [dict(m) for m in item["messages"] if m["role"] != "system"]
        out.append({**item, "messages": [{"role": "system", "content": GENERIC_SYSTEM}, *messages]})
    return out


def held_out_posts(items: list[dict[str, Any]], posts: dict[str, str]) -> list[str]:
    """The post chunks the eval questions were written from, each once, in eval order."""
    return list(dict.fromkeys(c for it in items for c in (it.get("source") or {}).get("chunks", []) if c in posts))


def style_scores(items: list[dict[str, Any]], answers: dict[str, list[dict[str, Any]]], posts: dict[str, str]) -> int:
    """Store each answer's style similarity in its "style" field; returns how many held-out posts it used.

    `posts` is {chunk id: text} of the post chunks (`post_chunks`). An answer is compared with the
    held-out posts other than its own question's (every one of them, for a multi-hop question);
    with no other post to compare with, its style is None.
    """
    from protege.models.embeddings import encode

    held = held_out_posts(items, posts)
    for col in answers.values():
        for a in col:
            a["style"] = None
    if len(held) < 2:
        return len(held)
    post_vecs = encode([posts[c] for c in held])
    index = {c: k for k, c in enumerate(held)}
    slots = [(m, i) for m, col in answers.items() for i, a in enumerate(col) if a.get("text")]
    vecs = encode([answers[m][i]["text"] for m, i in slots])
    for (m, i), v in zip(slots, vecs):
        own = [index[c] for c in (items[i].get("source") or {}).get("chunks", []) if c in index]
        if len(own) == len(held):
            continue
        centroid = post_vecs.sum(axis=0) - post_vecs[own].sum(axis=0)
        norm = float(np.linalg.norm(centroid) * np.linalg.norm(v))
        answers[m][i]["style"] = round(float(centroid @ v) / norm, 4) if norm else None
    return len(held)


def voice_summary(results: list[dict[str, Any]], posts: int, boot: dict[str, Any]) -> dict[str, Any]:
    """Style similarity per model, and the paired differences that say whether training moved it."""

    def col(m: str) -> list[float | None]:
        return column(results, m, "style")

    models = [m for m in (*STUDENTS, GENERIC, "teacher") if any(m in r["answers"] for r in results)]
    out: dict[str, Any] = {"held_out_posts": posts, "generic_system": GENERIC_SYSTEM,
                           "style": {m: bootstrap_ci(col(m), **boot).to_dict() for m in models}, "paired": {}}  # fmt: skip
    if "trained" in models:
        out["paired"]["trained - untrained"] = mean_difference(col("untrained"), col("trained"), **boot).to_dict()
        if GENERIC in models:
            out["paired"]["trained - generic"] = mean_difference(col(GENERIC), col("trained"), **boot).to_dict()
    if GENERIC in models:
        out["paired"]["untrained - generic"] = mean_difference(col(GENERIC), col("untrained"), **boot).to_dict()
        out["generic_fact_recall"] = bootstrap_ci(column(results, GENERIC, "fact_recall"), **boot).to_dict()
    out["style_by_type"] = by_type(results, models, "style", boot)  # e.g. whether declines sound like her too
    return out
