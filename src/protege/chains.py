"""Calls that share a prompt prefix, run one after another; the rest side by side.

A llama.cpp server keeps each slot's last prompt and computes only what a new request adds to
it. Synth's prompts for one chunk (its question, answer and judge calls) begin with that chunk,
and eval's judgments of one question's answers share everything before the answer. When such
calls follow each other in a chain, the shared part is computed once per chain, not once per
call. Callers pass the client's concurrency as `width` (for a local model, llama-server's slot
count): each slot then holds one chain, and llama-server gives a request the slot whose cached
prompt it shares most. Each chain runs to its end before a worker takes the next: were every
chain started at once, the client's semaphore would hand out the first call of every chain
before any second one, and each slot would have moved on to other prompts by then. For a hosted
endpoint the order costs nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")
I = TypeVar("I")


async def in_chains(items: Sequence[I], key: Callable[[I], Hashable], job: Callable[[I], Awaitable[T]], *,
                    width: int, tick: Callable[[], None] | None = None) -> list[T]:  # fmt: skip
    """job(item) for every item, results in item order: items with the same key one after
    another (in their order), `width` keys at a time. `tick` runs after each job."""
    chains: dict[Hashable, list[int]] = {}
    for i, item in enumerate(items):
        chains.setdefault(key(item), []).append(i)
    results: list[T | None] = [None] * len(items)
    pending = iter(chains.values())  # shared by the workers: each takes the next chain when it is free

    async def worker() -> None:
        for indices in pending:
            for i in indices:
                results[i] = await job(items[i])
                if tick:
                    tick()

    await asyncio.gather(*(worker() for _ in range(max(1, min(width, len(chains))))))
    return results  # type: ignore[return-value]
