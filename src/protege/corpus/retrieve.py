"""Top-k document chunks for a question (MiniLM cosine similarity over the project's chunks).

One retriever for every place that puts documents in a prompt: the gateway (the student when
`serve.retrieval` is on; the teacher when `serve.teacher_retrieval` is on) and eval, which gives
the teacher the same excerpts it gets when serving. A frontier teacher knows nothing of the
owner's documents: without excerpts it would make up the shop's prices and hours.
"""

from __future__ import annotations

from typing import Any

EXCERPTS_INTRO = "Use these excerpts from our documents when they help:"


class Retriever:
    def __init__(self, chunks: list[Any]):
        from protege.models.embeddings import encode

        self.chunks = chunks
        self.vectors = encode([c.text for c in chunks])

    def top(self, query: str, k: int) -> list[Any]:
        from protege.models.embeddings import encode

        scores = self.vectors @ encode([query])[0]
        return [self.chunks[i] for i in scores.argsort()[::-1][:k]]

    def excerpts(self, query: str, k: int) -> str:
        """The text appended to a system prompt: the top-k chunks, each under its id."""
        notes = "\n\n".join(f"[{c.id}]\n{c.text}" for c in self.top(query, k))
        return f"\n\n{EXCERPTS_INTRO}\n\n{notes}"
