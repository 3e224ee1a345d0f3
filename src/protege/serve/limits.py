"""Sliding-window counters for the gateway's limits: requests per key or address, failed keys.

Memory is bounded whatever callers do: a bucket idle for a whole window is dropped, and past
`max_buckets` the least recently used buckets go first. A bucket holds at most `limit` times,
since a hit over the limit is refused, not recorded.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_BUCKETS = 100_000  # distinct keys/addresses tracked at once (a few MB at most)


class SlidingWindow:
    """Hits per bucket within the last `window_s` seconds."""

    def __init__(self, window_s: float = 60.0, max_buckets: int = MAX_BUCKETS,
                 clock: Callable[[], float] = time.monotonic):  # fmt: skip
        self.window_s = window_s
        self.max_buckets = max_buckets
        self._clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._hits)

    def _bucket(self, bucket: str, now: float) -> deque[float]:
        """The bucket's hits inside the window (made if new), marked most recently used."""
        self._expire(now)
        hits = self._hits.get(bucket)
        if hits is None:
            hits = self._hits[bucket] = deque()
            while len(self._hits) > self.max_buckets:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(bucket)
        while hits and now - hits[0] >= self.window_s:
            hits.popleft()
        return hits

    def _expire(self, now: float) -> None:
        # The front is the least recently used bucket: stop at the first one still in its window.
        while self._hits:
            hits = next(iter(self._hits.values()))
            if hits and now - hits[-1] < self.window_s:
                return
            self._hits.popitem(last=False)

    def _wait(self, hits: deque[float], limit: int, now: float) -> float | None:
        return self.window_s - (now - hits[-limit]) if len(hits) >= limit else None

    def hit(self, bucket: str, limit: int) -> float | None:
        """Record a hit unless the bucket is at its limit; then return the seconds to wait."""
        now = self._clock()
        hits = self._bucket(bucket, now)
        wait = self._wait(hits, limit, now)
        if wait is None:
            hits.append(now)
        return wait

    def blocked(self, bucket: str, limit: int) -> float | None:
        """Seconds to wait if the bucket is at its limit, else None; records nothing."""
        now = self._clock()
        hits = self._hits.get(bucket)
        if not hits:
            return None
        while hits and now - hits[0] >= self.window_s:
            hits.popleft()
        return self._wait(hits, limit, now)

    def record(self, bucket: str, limit: int) -> None:
        """Count an event (a failed key) even past the limit, keeping only the newest `limit`."""
        now = self._clock()
        hits = self._bucket(bucket, now)
        hits.append(now)
        while len(hits) > limit:
            hits.popleft()
