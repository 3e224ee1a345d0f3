"""Does a creator's agent sound like the creator? Style similarity to the creator's held-out posts.

It is measured when the project's documents are posts (rows of .jsonl/.csv files: the voice
flow, where synth writes persona.md from them). An answer's style similarity is the cosine
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

from protege.evaluate.stats import bootstrap_ci, mean_difference

GENERIC_SYSTEM = "You are a helpful assistant."
GENERIC = "generic"  # the generic assistant's key in each result's answers
STUDENTS = ("untrained", "trained")


def is_voice_project(project: Any) -> bool:
    """True when the project's documents include posts (the creator flow); False without readable docs."""
    from protege.corpus.load import load_documents
    from protege.errors import ProtegeError

    try:
        loaded = load_documents(project.docs_dir, project.config.synth.text_field)
    except ProtegeError:
        return False
    return any(d.kind == "posts" and d.rows for d in loaded.documents)


def generic_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The eval items with the creator's persona replaced by a plain assistant's system prompt."""
    out = []
    for item in items:
        messages = [dict(m) for m in item["messages"] if m["role"] != "system"]
        out.append({**item, "messages": [{"role": "system", "content": GENERIC_SYSTEM}, *messages]})
    return out


def held_out_posts(items: list[dict[str, Any]]) -> list[str]:
    """The eval questions' source posts, each once, in eval order."""
    return list(dict.fromkeys(t for it in items if (t := (it.get("source") or {}).get("text"))))


def style_scores(items: list[dict[str, Any]], answers: dict[str, list[dict[str, Any]]]) -> int:
    """Store each answer's style similarity in its "style" field; returns the held-out posts used.

    Needs at least two held-out posts (one besides a question's own); with fewer every style is None.
    """
    from protege.models.embeddings import encode

    posts = held_out_posts(items)
    for col in answers.values():
        for a in col:
            a["style"] = None
    if len(posts) < 2:
        return len(posts)
    post_vecs = encode(posts)
    index = {p: k for k, p in enumerate(posts)}
    slots = [(m, i) for m, col in answers.items() for i, a in enumerate(col) if a.get("text")]
    vecs = encode([answers[m][i]["text"] for m, i in slots])
    total = post_vecs.sum(axis=0)
    for (m, i), v in zip(slots, vecs):
        own = index.get((items[i].get("source") or {}).get("text"))
        centroid = total - post_vecs[own] if own is not None else total
        norm = float(np.linalg.norm(centroid) * np.linalg.norm(v))
        answers[m][i]["style"] = round(float(centroid @ v) / norm, 4) if norm else None
    return len(posts)


def voice_summary(results: list[dict[str, Any]], posts: int, boot: dict[str, int]) -> dict[str, Any]:
    """Style similarity per model, and the paired differences that say whether training moved it."""

    def col(m: str) -> list[float | None]:
        return [r["answers"].get(m, {}).get("style") for r in results]

    models = [m for m in (*STUDENTS, GENERIC, "teacher") if any(m in r["answers"] for r in results)]
    out: dict[str, Any] = {"held_out_posts": posts, "generic_system": GENERIC_SYSTEM,
                           "style": {m: bootstrap_ci(col(m), **boot).to_dict() for m in models}, "paired": {}}  # fmt: skip
    if "trained" in models:
        out["paired"]["trained - untrained"] = mean_difference(col("untrained"), col("trained"), **boot).to_dict()
        if GENERIC in models:
            out["paired"]["trained - generic"] = mean_difference(col(GENERIC), col("trained"), **boot).to_dict()
    if GENERIC in models:
        out["paired"]["untrained - generic"] = mean_difference(col(GENERIC), col("untrained"), **boot).to_dict()
    if GENERIC in models:
        recall = [r["answers"][GENERIC].get("fact_recall") for r in results if GENERIC in r["answers"]]
        out["generic_fact_recall"] = bootstrap_ci(recall, **boot).to_dict()
    return out
