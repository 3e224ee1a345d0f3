"""Sliding-window counters: limits per bucket, with memory bounded however many buckets callers make."""

from __future__ import annotations

from protege.serve.limits import SlidingWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limit_per_bucket_and_the_wait_until_a_slot_frees():
    clock = Clock()
    w = SlidingWindow(window_s=60, max_buckets=100, clock=clock)
    assert [w.hit("a", 3) for _ in range(3)] == [None, None, None]
    wait = w.hit("a", 3)
    assert wait is not None and 59 < wait <= 60
    assert w.hit("b", 3) is None  # buckets are independent
    clock.now += 30
    assert 29 < w.hit("a", 3) <= 30
    clock.now += 31
    assert w.hit("a", 3) is None  # the first hits left the window


def test_idle_buckets_expire_and_the_count_is_bounded():
    clock = Clock()
    w = SlidingWindow(window_s=60, max_buckets=1000, clock=clock)
    for i in range(500):
        w.hit(f"ip-{i}", 10)
    assert len(w) == 500
    clock.now += 61
    w.hit("fresh", 10)
    assert len(w) == 1  # every idle bucket went when its window passed

    for i in range(50_000):  # a flood of distinct addresses inside one window
        w.hit(f"flood-{i}", 10)
    assert len(w) <= 1000


def test_counting_failures_without_recording_a_hit():
    clock = Clock()
    w = SlidingWindow(window_s=60, max_buckets=10, clock=clock)
    assert w.blocked("addr", 2) is None
    w.record("addr", 2)
    w.record("addr", 2)
    w.record("addr", 2)
    assert w.blocked("addr", 2) is not None
    clock.now += 61
    assert w.blocked("addr", 2) is None
