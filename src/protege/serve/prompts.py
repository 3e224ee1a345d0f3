"""The messages each route is sent for one request, built when that route is first called.

Retrieval embeds the question with MiniLM, about 9 ms of CPU on two cores: a request the
student answers without excerpts (the default: only the teacher gets them) never pays it, and
one that falls back or escalates to the teacher pays it once, however many routes use it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from protege.corpus.retrieve import context_turn

if TYPE_CHECKING:
    from protege.serve.agent import Agent


class Prompts:
    """Per route: the persona (unless the client sent a system message) plus, where that route
    has retrieval on, the top-k document chunks for the last user turn. A student trained in the
    RAFT format is asked as it was trained: chunks and question in the user turn."""

    def __init__(self, agent: Agent, messages: list[dict[str, str]]):
        self.agent = agent
        sent = next((m["content"] for m in messages if m["role"] == "system"), None)
        self.system = sent if sent is not None else agent.persona
        self.rest = [m for m in messages if m["role"] != "system"]
        self.last = max(i for i, m in enumerate(self.rest) if m["role"] == "user")  # retrieval answers it; the schema requires one
        self.chunks: list[Any] = []  # what was retrieved (the answer's sources); empty until a route needed it
        self._retrieved = False

    def retrieves(self, route: str) -> bool:
        return self.agent.retriever is not None and self.agent.project.config.serve.retrieves(route)

    def _retrieve(self) -> None:
        if not self._retrieved:
            assert self.agent.retriever is not None
            self.chunks = self.agent.retriever.top(self.rest[self.last]["content"], self.agent.project.config.serve.retrieval_k)
            self._retrieved = True

    def messages(self, route: str) -> list[dict[str, str]]:
        """The messages for `route` ("student" or "teacher"), retrieving first if it needs excerpts."""
        if not self.retrieves(route):
            return [{"role": "system", "content": self.system}, *self.rest]
        self._retrieve()
        assert self.agent.retriever is not None
        if route == "student" and self.agent.project.config.synth.format == "raft":
            last = self.last
            turn = {"role": "user", "content": context_turn(self.rest[last]["content"], [(c.id, c.text) for c in self.chunks])}
            return [{"role": "system", "content": self.system}, *self.rest[:last], turn, *self.rest[last + 1 :]]
        return [{"role": "system", "content": self.system + self.agent.retriever.excerpts_of(self.chunks)}, *self.rest]

    async def for_route(self, route: str) -> list[dict[str, str]]:
        """`messages`, with the embedding (when it is needed) in a worker thread, off the event loop."""
        if self.retrieves(route) and not self._retrieved:
            await asyncio.to_thread(self._retrieve)
        return self.messages(route)
