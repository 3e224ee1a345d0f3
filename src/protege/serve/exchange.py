"""One chat request through the gateway, after it is admitted and validated: moderate the input,
route, answer (whole or streamed), moderate the output, log it durably, reply OpenAI-shaped.

An `Exchange` holds what every step of one request shares (its id, clock, messages and guard
verdicts), so the whole and the streamed answer are two short methods over the same steps.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from concurrent.futures import Future
from typing import Any

from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse

from protege.serve.agent import Agent
from protege.serve.auth import Caller
from protege.serve.pipeline import REFUSAL, Answer, Gateway, one_text, verdict_json
from protege.serve.profile import sources_for
from protege.serve.prompts import Prompts
from protege.serve.schema import APIError, ChatRequest, public_ref
from protege.traffic import TrafficRecord

INPUT_BLOCKED = "input blocked by the guard"


def protege_info(answer: Answer, request_id: str, sources: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The `protege` field: who answered and why; with `sources`, the excerpts that model was shown."""
    info = {"id": request_id, "route": answer.route, "reason": answer.reason,
            "model": public_ref(answer.backend.ref) if answer.backend else None}  # fmt: skip
    return info if sources is None else {**info, "sources": sources}


class Exchange:
    def __init__(self, gw: Gateway, agent: Agent, mode: str, req: ChatRequest, caller: Caller):
        self.gw, self.agent, self.mode, self.req, self.caller = gw, agent, mode, req, caller
        self.request_id = "chatcmpl-" + secrets.token_hex(12)
        self.created = int(time.time())
        self.t0 = time.perf_counter()
        self.messages = [m.plain() for m in req.messages]
        self.verdicts: dict[str, Any] = {}

    @property
    def guard_log(self) -> dict[str, Any] | None:
        return self.verdicts if self.agent.guard is not None else None

    def log(self, answer: Answer, status: str, text: str | None, prompt_tokens: int | None,
            completion_tokens: int | None, guard: dict[str, Any] | None) -> Future:  # fmt: skip
        gw, req = self.gw, self.req
        latency = time.perf_counter() - self.t0
        cost = answer.completion.cost_usd if answer.completion else 0.0
        if status == "ok":
            gw.metrics.completions.labels(req.model, answer.route).inc()
            gw.metrics.latency.labels(req.model, answer.route).observe(latency)
            gw.metrics.tokens.labels(req.model, "prompt").inc(prompt_tokens or 0)
            gw.metrics.tokens.labels(req.model, "completion").inc(completion_tokens or 0)
        return gw.write(self.agent, TrafficRecord(self.request_id, self.agent.name, req.model, answer.route, answer.reason,
                                                  self.messages, text, latency, prompt_tokens, completion_tokens, cost,
                                                  guard, self.caller.key_id, status))  # fmt: skip

    async def logged(self, *args: Any) -> None:
        """Log, and wait until the row is committed: a request is answered only once it is durable."""
        await asyncio.wrap_future(await asyncio.to_thread(self.log, *args))

    async def failed(self, exc: APIError, route: str, reason: str) -> APIError:
        await self.logged(Answer("", route, reason, None), "error", None, None, None, self.guard_log)
        exc.headers["x-protege-id"] = self.request_id
        return exc

    async def respond(self) -> Response:
        verdict, input_blocked = await self.gw.moderate(self.agent, self.messages, "user")
        self.verdicts["input"] = verdict_json(verdict)
        if input_blocked:
            if not self.req.stream:
                answer = Answer(REFUSAL, "guard", INPUT_BLOCKED, None)
                await self.logged(answer, "blocked", REFUSAL, None, None, self.verdicts)
                return self.reply(answer, REFUSAL, None)
            return await self.stream(None)
        route, reason = await self.gw.plan(self.agent, self.mode, self.messages)
        planned = (route, reason, Prompts(self.agent, self.messages))
        return await (self.stream(planned) if self.req.stream else self.whole(planned))

    async def whole(self, planned: tuple[str, str, Prompts]) -> Response:
        route, reason, prompt = planned
        try:
            answer = await self.gw.complete(self.agent, self.mode, route, reason, prompt, self.req)
        except APIError as exc:
            raise await self.failed(exc, route, reason) from None
        c = answer.completion
        assert c is not None
        text = c.text
        verdict, blocked = await self.gw.moderate(self.agent, [*self.messages, {"role": "assistant", "content": text}], "assistant")
        self.verdicts["output"] = verdict_json(verdict)
        if blocked:
            text = REFUSAL
            answer.reason += "; output blocked by the guard"
        await self.logged(answer, "blocked" if blocked else "ok", text, c.prompt_tokens, c.completion_tokens, self.guard_log)
        usage = {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
                 "total_tokens": c.prompt_tokens + c.completion_tokens}  # fmt: skip
        shown = None if blocked else sources_for(answer.route, prompt.chunks, self.agent.project.config.serve)
        return self.reply(answer, text, usage, c.finish_reason, shown)

    def reply(self, answer: Answer, text: str, usage: dict[str, int] | None, finish: str | None = "stop",
              sources: list[dict[str, str]] | None = None) -> JSONResponse:  # fmt: skip
        body = {
            "id": self.request_id, "object": "chat.completion", "created": self.created, "model": self.req.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish or "stop"}],
            "usage": usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "protege": protege_info(answer, self.request_id, sources),
        }  # fmt: skip
        return JSONResponse(body, headers={"x-protege-route": answer.route, "x-protege-id": self.request_id})

    def chunk(self, delta: dict[str, Any], finish: str | None = None, extra: dict[str, Any] | None = None) -> str:
        """One `chat.completion.chunk` as JSON: the data of one server-sent event."""
        body = {"id": self.request_id, "object": "chat.completion.chunk", "created": self.created, "model": self.req.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **(extra or {})}  # fmt: skip
        return json.dumps(body, ensure_ascii=False)

    async def stream(self, planned: tuple[str, str, Prompts] | None) -> Response:
        """The answer as server-sent events; `planned` is None when the guard blocked the input."""
        agent = self.agent
        chunks: list[Any] = []
        if planned is None:
            answer, deltas = Answer(REFUSAL, "guard", INPUT_BLOCKED, None), one_text(REFUSAL)
        else:
            route, reason, prompt = planned
            try:
                answer, deltas = await self.gw.open_stream(agent, self.mode, route, reason, prompt, self.req)
            except APIError as exc:
                raise await self.failed(exc, route, reason) from None
            chunks = prompt.chunks
        final: dict[str, Any] = {}
        guarded = planned is not None and agent.guard is not None and agent.project.config.guard.policy == "block"
        if guarded:
            from protege.guard import guarded_stream

            # Checked while it streams: an unsafe answer is cut off and ends with the refusal.
            deltas = guarded_stream(deltas, agent.guard, self.messages, refusal=REFUSAL, on_verdict=lambda v: final.update(v=v))
        # Both taken before the stream: the closing chunk says who answered as the request was planned.
        info = protege_info(answer, self.request_id)
        opening = protege_info(answer, self.request_id, sources_for(answer.route, chunks, agent.project.config.serve))
        limit = self.req.token_limit(agent.project.config.serve.max_tokens)
        events = self._events(answer, deltas, (opening, info), input_blocked=planned is None, guarded=guarded, final=final,
                              limit=limit)  # fmt: skip
        headers = {"x-protege-route": answer.route, "x-protege-id": self.request_id, "cache-control": "no-cache"}
        # sse-starlette frames each yielded text as one event (`data: ...`, blank line), sends a
        # comment line every 15 s while the model is silent (proxies keep the connection), and
        # watches for the client's disconnect, which closes `_events` so its slot is released.
        return EventSourceResponse(events, headers=headers, sep="\n")

    async def _events(self, answer: Answer, deltas: Any, infos: tuple[dict[str, Any], dict[str, Any]], *,
                      input_blocked: bool, guarded: bool, final: dict[str, Any], limit: int) -> AsyncIterator[str]:  # fmt: skip
        gw, agent = self.gw, self.agent
        opening, info = infos
        parts: list[str] = []
        status = "cancelled"  # the client went away before the end
        try:
            yield self.chunk({"role": "assistant", "content": ""}, extra={"protege": opening})
            async for delta in deltas:
                parts.append(delta)
                yield self.chunk({"content": delta})
            text = "".join(parts)
            if answer.stream is not None:  # what upstream reported (None if the guard cut it off)
                answer.completion = answer.stream.completion
            c = answer.completion
            prompt_tokens = c.prompt_tokens if c else None
            n_tokens = c.completion_tokens if c and c.completion_tokens else len(parts)  # else one token a delta
            if input_blocked:
                verdict, blocked = None, True
            elif guarded:
                verdict = final.get("v")
                blocked = gw.unsafe(agent, verdict, "assistant")
            else:
                verdict, blocked = await gw.moderate(agent, [*self.messages, {"role": "assistant", "content": text}], "assistant")
            self.verdicts["output"] = verdict_json(verdict)
            if blocked and not input_blocked:
                answer.reason += "; output cut off by the guard"
            finish = (c.finish_reason if c else None) or ("length" if n_tokens >= limit else "stop")
            status = "blocked" if blocked else "ok"
            await self.logged(answer, status, text, prompt_tokens, n_tokens, self.guard_log)
            yield self.chunk({}, finish, {"protege": info})
            if self.req.stream_options and self.req.stream_options.include_usage:
                usage = {"prompt_tokens": prompt_tokens or 0, "completion_tokens": n_tokens,
                         "total_tokens": (prompt_tokens or 0) + n_tokens}  # fmt: skip
                body = {"id": self.request_id, "object": "chat.completion.chunk", "created": self.created,
                        "model": self.req.model, "choices": [], "usage": usage}  # fmt: skip
                yield json.dumps(body)
            yield "[DONE]"
        except Exception as exc:  # the model died mid-answer (any transport error): end the stream cleanly
            status = "error"
            gw.metrics.errors.labels("stream_interrupted").inc()
            if answer.backend is not None:
                gw.lost(agent, answer.backend, exc)
            err_body = APIError(502, f"The answer stream broke ({answer.route} failed); please retry.",
                                type="server_error", code="upstream_error")  # fmt: skip
            yield json.dumps(err_body.body())
        finally:
            if status in ("error", "cancelled"):
                self.log(answer, status, "".join(parts), None, None, None)
            await deltas.aclose()
            gw.release()
