"""Checking a streamed answer while it streams, so an unsafe answer is cut off, not delivered whole."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from protege.guard.guard import Verdict

REFUSAL = "I'm sorry, but I can't help with that."


class Checker(Protocol):
    async def check(self, messages: list[dict[str, Any]], role: str = ...) -> Verdict: ...


async def guarded_stream(
    deltas: AsyncIterator[str],
    guard: Checker,
    messages: list[dict[str, Any]],
    *,
    window: int = 200,
    stream_first: bool = True,
    refusal: str = REFUSAL,
    on_verdict: Callable[[Verdict], None] | None = None,
) -> AsyncIterator[str]:
    """Pass an assistant answer's deltas through, checking the accumulated answer every `window` chars.

    `messages` is the conversation the answer replies to; each check sees it plus the answer so
    far, as an assistant turn. Only one check runs at a time.

    - stream_first=True: deltas go out as they arrive and the check runs alongside them; an
      unsafe answer is cut within one check's latency of the unsafe text arriving. The whole
      answer is checked once more at its end.
    - stream_first=False: text is held until the window holding it has been checked safe, so
      nothing unchecked is delivered, at the cost of the guard's latency per window.

    When a check says unsafe the upstream is closed (the model stops generating), `refusal` is
    yielded (after a blank line if text already went out) and the stream ends. `on_verdict`
    receives the deciding verdict: the unsafe one, or the final check of a safe answer.
    """
    text, delivered, checked = "", 0, 0
    pending: tuple[asyncio.Task[Verdict], int] | None = None
    last: Verdict | None = None

    async def check(upto: int) -> Verdict:
        return await guard.check([*messages, {"role": "assistant", "content": text[:upto]}], role="assistant")

    try:
        async for delta in deltas:
            text += delta
            if pending and pending[0].done():
                (task, checked), pending = pending, None
                last = task.result()
                if not last.safe:
                    break
            if stream_first:
                yield delta
                delivered = len(text)
            if pending is None and len(text) - checked >= window:
                pending = (asyncio.create_task(check(len(text))), len(text))
                if not stream_first:
                    (task, checked), pending = pending, None
                    last = await task
                    if not last.safe:
                        break
                    yield text[delivered:]
                    delivered = len(text)
        else:
            if pending:
                (task, checked), pending = pending, None
                last = await task
            if (last is None or last.safe) and checked < len(text):
                last = await check(len(text))
                checked = len(text)
            if last is not None and last.safe and delivered < len(text):
                yield text[delivered:]
                delivered = len(text)
        if last is not None and not last.safe:
            yield ("\n\n" if delivered else "") + refusal
    finally:
        if pending:
            pending[0].cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending[0]
        aclose = getattr(deltas, "aclose", None)
        if aclose is not None:
            await aclose()
    if on_verdict is not None and last is not None:
        on_verdict(last)
