"""Chains: calls sharing a prefix one after another, `width` chains at a time, each to its end."""

import asyncio

import pytest

from protege.chains import in_chains


def test_chains_run_in_order_width_at_a_time_each_to_its_end():
    items = ["a1", "a2", "a3", "b1", "b2", "c1", "d1"]
    events, running, peak = [], 0, 0

    async def job(item: str) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        events.append(("start", item))
        await asyncio.sleep(0.01)
        events.append(("end", item))
        running -= 1
        return item.upper()

    results = asyncio.run(in_chains(items, lambda s: s[0], job, width=2))
    assert results == [s.upper() for s in items]  # in item order
    assert peak == 2
    at = events.index
    assert at(("end", "a1")) < at(("start", "a2")) and at(("end", "a2")) < at(("start", "a3"))  # a chain in order
    # Two workers take A and B; B ends first and its worker takes C, then the first one free takes D.
    assert at(("start", "c1")) > at(("end", "b2"))
    assert at(("start", "d1")) > min(at(("end", "a3")), at(("end", "c1")))


@pytest.mark.parametrize("width", [1, 8])
def test_any_width_gives_every_result(width):
    async def job(x: int) -> int:
        await asyncio.sleep(0)
        return x * x

    assert asyncio.run(in_chains(range(10), lambda x: x % 3, job, width=width)) == [x * x for x in range(10)]

