"""guarded_stream: an unsafe answer is cut off mid-stream and the model's stream is closed."""

import asyncio

from protege.guard import Guard, Verdict, guarded_stream
from protege.guard.stream import REFUSAL


class KeywordChecker:
    """A guard stand-in with a known verdict: unsafe once the answer mentions 'detonator'.

    The stream logic is what is under test here; the real guards are tested in their own files.
    """

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.seen: list[str] = []

    async def check(self, messages, role="assistant"):
        await asyncio.sleep(self.delay)
        text = messages[-1]["content"]
        self.seen.append(text)
        bad = "detonator" in text
        return Verdict(not bad, ["S9"] if bad else [], "llm", "test")


class Upstream:
    """An async iterator of deltas that records whether it was closed early."""

    def __init__(self, deltas):
        self.deltas = deltas
        self.sent = 0
        self.closed = False

    def __aiter__(self):
        return self._gen()

    async def _gen(self):
        try:
            for d in self.deltas:
                self.sent += 1
                await asyncio.sleep(0.001)
                yield d
        finally:
            self.closed = True


UNSAFE = ["Sure. ", "First get a ", "detonator", " and then "] + ["more steps. "] * 200
SAFE = ["The tune-up ", "costs $79 ", "and takes ", "two days. "] * 30


def collect(deltas, checker, **kw):
    async def go():
        return [d async for d in guarded_stream(deltas, checker, [{"role": "user", "content": "q"}], **kw)]

    return asyncio.run(go())


def test_unsafe_answer_is_cut_off_while_streaming():
    upstream = Upstream(UNSAFE)
    verdicts = []
    got = collect(upstream.__aiter__(), KeywordChecker(delay=0.005), window=40, on_verdict=verdicts.append)
    text = "".join(got)
    assert text.endswith(REFUSAL)
    assert len(text) < len("".join(UNSAFE)) / 3  # cut early, not delivered whole
    assert upstream.sent < len(UNSAFE)  # the model's stream was stopped
    assert verdicts and not verdicts[-1].safe and verdicts[-1].categories == ["S9"]


def test_hold_back_mode_never_delivers_unchecked_unsafe_text():
    got = collect(Upstream(UNSAFE).__aiter__(), KeywordChecker(), window=20, stream_first=False)
    assert "detonator" not in "".join(got)
    assert got[-1].endswith(REFUSAL)


def test_safe_answer_passes_whole_and_is_checked_at_the_end():
    checker = KeywordChecker()
    for stream_first in (True, False):
        got = collect(Upstream(SAFE).__aiter__(), checker, window=100, stream_first=stream_first)
        assert "".join(got) == "".join(SAFE)
    assert checker.seen[-1] == "".join(SAFE)  # the complete answer was checked


def test_unsafe_tail_after_the_last_window_is_caught_at_the_end():
    got = collect(Upstream(["All good here. "] * 3 + ["detonator"]).__aiter__(), KeywordChecker(), window=1000)
    assert "".join(got).endswith(REFUSAL)


def test_rules_only_guard_passes_a_safe_stream():
    got = collect(Upstream(SAFE).__aiter__(), Guard(), window=50)
    assert "".join(got) == "".join(SAFE)
