"""Calls that share a prompt prefix, run one after another; the rest concurrently.

A llama.cpp server keeps each slot's last prompt and computes only what a new request adds to
it. Synth's prompts for one chunk (its questions, answers, judgments) begin with that chunk, so
when one chunk's calls follow each other in a chain, the chunk is computed once per chain, not
once per call; different chunks' chains run side by side on the server's slots. For a hosted
endpoint the order costs nothing: the client's concurrency bound is the same either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")
I = TypeVar("I")


async def in_chains(items: Sequence[I], key: Callable[[I], Hashable], job: Callable[[I], Awaitable[T]],
                    tick: Callable[[], None] | None = None) -> list[T]:  # fmt: skip
    """job(item) for every item, results in item order: items with the same key one after
    another (in their order), different keys concurrently. `tick` runs after each job."""
    chains: dict[Hashable, list[int]] = {}
    for i, item in enumerate(items):
        chains.setdefault(key(item), []).append(i)
    results: list[T | None] = [None] * len(items)

    async def chain(indices: list[int]) -> None:
        for i in indices:
            results[i] = await job(items[i])
            if tick:
                tick()

    await asyncio.gather(*(chain(c) for c in chains.values()))
    return results  # type: ignore[return-value]
