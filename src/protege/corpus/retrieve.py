"""Top-k document chunks for a question (MiniLM cosine similarity over the project's chunks).

One retriever for every place that puts documents in a prompt: the gateway (the student when
`serve.retrieval` is on; the teacher when `serve.teacher_retrieval` is on) and eval, which gives
the teacher the same excerpts it gets when serving. A frontier teacher knows nothing of the
owner's documents: without excerpts it would make up the shop's prices and hours.
"""

from __future__ import annotations

from typing import Any

EXCERPTS_INTRO = "Use these excerpts from our documents when they help:"


def context_turn(question: str, chunks: list[tuple[str, str]]) -> str:
    """The user turn of the RAFT format: retrieved (id, text) chunks, then the question. synth
    writes training rows this way and the gateway asks a RAFT-trained student the same way."""
    shown = "\n\n".join(f"[{cid}]\n{text}" for cid, text in chunks) or "(no context found)"
    return f"Context:\n{shown}\n\nQuestion: {question}"


def question_of_turn(turn: str) -> str:
    """The question inside a user turn: the turn itself, or the part after `context_turn`'s context."""
    if turn.startswith("Context:\n") and "\n\nQuestion: " in turn:
        return turn.rsplit("\n\nQuestion: ", 1)[1]
    return turn


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
        return self.excerpts_of(self.top(query, k))

    @staticmethod
    def excerpts_of(chunks: list[Any]) -> str:
        notes = "\n\n".join(f"[{c.id}]\n{c.text}" for c in chunks)
        return f"\n\n{EXCERPTS_INTRO}\n\n{notes}"
