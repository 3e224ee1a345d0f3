"""The gateway: an OpenAI-compatible FastAPI app in front of each project's student and teacher.

Per chat request: authenticate, admit (bounded queue), read a bounded body, validate, moderate
the input, route (router or student), answer (with fallback to the other model), moderate the
output, log to the traffic log, count in the metrics. Every error is OpenAI-shaped JSON.

Gateway-wide limits (body size, queue, default rate limit) come from the first project's
`serve:` section; per-agent settings (retrieval, timeouts, max_tokens) from each project's own.
"""

from __future__ import annotations

from __future__ import annotations
import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from concurrent.futures import Future
from contextlib import asynccontextmanager
from typing import Any
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from protege.console import err
from protege.errors import ProtegeError
from protege.project import Project
from protege.serve.admin import admin_router
from protege.serve.agent import Agent, load_agents
from protege.serve.auth import Caller
from protege.serve.metrics import Metrics
from protege.serve.pages import pages_router
from protege.serve.pipeline import REFUSAL, Answer, Gateway, one_text, verdict_json
from protege.serve.profile import sources_for
from protege.serve.schema import APIError, ChatRequest, FeedbackRequest, bad_request, public_ref
from protege.traffic import TrafficLog, TrafficRecord, database_url
from protege.serve.widget import WidgetCORS, WidgetOrigins

def _protege_info(answer: Answer, request_id: str, sources: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The `protege` field: who answered and why; with `sources`, the excerpts that model was shown."""
    info = {"id": request_id, "route": answer.route, "reason": answer.reason,
            "model": public_ref(answer.backend.ref) if answer.backend else None}  # fmt: skip
    return info if sources is None else {**info, "sources": sources}


def _error_response(exc: APIError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


class _CountRequests:
    """ASGI middleware: requests by route template and status (pure ASGI: no per-request task)."""

    def __init__(self, app: Any, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = {"code": 500}

        async def capture(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.metrics.http_requests.labels(path, str(status["code"])).inc()


def open_logs(projects: list[Project], db: str | None) -> dict[str, TrafficLog]:
    """Each project logs to its own artifacts/traffic.db, or all to the one `--db` database."""
    if db:
        shared = TrafficLog(database_url(db, projects[0].paths.traffic_db))
        return {p.name: shared for p in projects}
    return {p.name: TrafficLog(database_url(None, p.paths.traffic_db)) for p in projects}


def published_contacts(agent: Agent) -> frozenset[str]:
    """The e-mail addresses and phone numbers the project's own documents publish: not redacted."""
    from protege.corpus import load_chunks
    from protege.guard import published_pii

    try:
        chunks = agent.retriever.chunks if agent.retriever else load_chunks(agent.project)
    except ProtegeError:  # no documents: nothing is published
        return frozenset()
    return published_pii(c.text for c in chunks)


def create_app(projects: list[Project], db: str | None = None, *, exposed: bool = False) -> FastAPI:
    """The app for these projects; agents (llama.cpp servers included) start in its lifespan.

    `exposed`: bound to an address others can reach, so API keys are required (see serve.auth).
    Building the app reads every project's keys.db: a damaged one fails here, before serving.
    """
    gw = Gateway(projects, db, projects[0].config.serve, exposed=exposed)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        gw.logs = open_logs(projects, db)
        agents: list[Agent] = []
        try:
            agents = await load_agents(projects)
            gw.agents = {a.name: a for a in agents}
            for agent in agents:
                gw.published[agent.name] = await asyncio.to_thread(published_contacts, agent)
                for note in agent.notes:
                    err.print(f"[dim]{note}[/]", highlight=False)
            yield
        finally:
            for agent in agents:
                await agent.close()
            for log in set(gw.logs.values()):
                log.close()

    app = FastAPI(title="protege gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.gateway = gw
    app.add_middleware(WidgetCORS, origins=WidgetOrigins(gw.auth.keys.widget_origins))
    app.add_middleware(_CountRequests, metrics=gw.metrics)

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        gw.metrics.errors.labels(exc.code or exc.type).inc()
        return _error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found" if exc.status_code == 404 else "invalid_request"
        return _error_response(APIError(exc.status_code, str(exc.detail), type="invalid_request_error", code=kind))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        gw.metrics.errors.labels("internal_error").inc()
        return _error_response(APIError(500, f"Internal error: {type(exc).__name__}", type="server_error",
                                        code="internal_error"))  # fmt: skip

    app.include_router(pages_router())
    app.include_router(admin_router())

    @app.get("/health")
    async def health() -> dict[str, Any]:
        agents = {
            a.name: {"student": public_ref(a.student.ref), "teacher": public_ref(a.teacher.ref) if a.teacher.client else None,
                     "router": a.router is not None, "guard": a.guard is not None}  # fmt: skip
            for a in gw.agents.values()
        }
        return {"status": "ok", "in_flight": gw.in_flight, "agents": agents}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(gw.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/models")
    async def list_models(request: Request) -> dict[str, Any]:
        caller = gw.authenticate(request)
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "protege"}
            for a in gw.agents.values() if caller.project in (None, a.name)
            for name in a.model_names
        ]  # fmt: skip
        return {"object": "list", "data": data}

    @app.post("/v1/feedback")
    async def feedback(request: Request) -> dict[str, Any]:
        caller = gw.authenticate(request)
        body = await gw.read_json(request)
        try:
            fb = FeedbackRequest.model_validate(body)
        except ValidationError as exc:
            raise _validation_error(exc) from None
        for log in set(gw.logs.values()):
            row = await asyncio.to_thread(log.get, fb.id)
            # A key rates only its own requests; an unknown id and someone else's look the same.
            if row is not None and caller.key_id in (None, row["key_id"]):
                await asyncio.to_thread(log.feedback, fb.id, fb.rating, fb.comment)
                break
        else:
            raise APIError(404, f"No request with id '{fb.id}'.", type="invalid_request_error",
                           code="not_found", param="id")  # fmt: skip
        return {"id": fb.id, "rating": fb.rating, "status": "recorded"}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        caller = gw.authenticate(request)
        gw.admit()
        handed_off = False
        try:
            body = await gw.read_json(request)
            try:
                req = ChatRequest.model_validate(body)
            except ValidationError as exc:
                raise _validation_error(exc) from None
            agent, mode = gw.agent_for(req.model, caller)
            response = await _answer(gw, agent, mode, req, caller)
            handed_off = isinstance(response, StreamingResponse)
            return response
        finally:
            if not handed_off:
                gw.release()

    return app


def _validation_error(exc: ValidationError) -> APIError:
    first = exc.errors()[0]
    param = ".".join(str(p) for p in first["loc"]) or None
    msg = first["msg"].removeprefix("Value error, ")
    return bad_request(f"Invalid '{param}': {msg}" if param else msg, param=param)


async def _answer(gw: Gateway, agent: Agent, mode: str, req: ChatRequest, caller: Caller) -> Response:
    request_id = "chatcmpl-" + secrets.token_hex(12)
    created = int(time.time())
    t0 = time.perf_counter()
    messages = [m.plain() for m in req.messages]

    def log(answer: Answer, status: str, text: str | None, prompt_tokens: int | None,
            completion_tokens: int | None, guard: dict[str, Any] | None) -> Future:  # fmt: skip
        latency = time.perf_counter() - t0
        cost = answer.completion.cost_usd if answer.completion else 0.0
        if status == "ok":
            gw.metrics.completions.labels(req.model, answer.route).inc()
            gw.metrics.latency.labels(req.model, answer.route).observe(latency)
            gw.metrics.tokens.labels(req.model, "prompt").inc(prompt_tokens or 0)
            gw.metrics.tokens.labels(req.model, "completion").inc(completion_tokens or 0)
        return gw.write(agent, TrafficRecord(request_id, agent.name, req.model, answer.route, answer.reason, messages,
                                             text, latency, prompt_tokens, completion_tokens, cost, guard,
                                             caller.key_id, status))  # fmt: skip

    async def logged(*args: Any) -> None:
        """Log, and wait until the row is committed: a request is answered only once it is durable."""
        await asyncio.wrap_future(await asyncio.to_thread(log, *args))

    async def failed(exc: APIError, route: str, reason: str) -> APIError:
        await logged(Answer("", route, reason, None), "error", None, None, None, verdicts if agent.guard else None)
        exc.headers["x-protege-id"] = request_id
        return exc

    verdicts: dict[str, Any] = {}
    verdict, blocked = await gw.moderate(agent, messages, "user")
    verdicts["input"] = verdict_json(verdict)
    input_blocked = blocked
    if input_blocked and not req.stream:
        answer = Answer(REFUSAL, "guard", "input blocked by the guard", None)
        await logged(answer, "blocked", REFUSAL, None, None, verdicts)
        return _reply(gw, req, answer, request_id, created, REFUSAL, None)
    chunks: list[Any] = []
    if not input_blocked:
        route, reason = await gw.plan(agent, mode, messages)
        prompt, chunks = await asyncio.to_thread(gw.prompt, agent, messages) if agent.retriever else gw.prompt(agent, messages)

    if not req.stream:
        try:
            answer = await gw.complete(agent, mode, route, reason, prompt, req)
        except APIError as exc:
            raise await failed(exc, route, reason) from None
        c = answer.completion
        assert c is not None
        text = c.text
        verdict, blocked = await gw.moderate(agent, [*messages, {"role": "assistant", "content": text}], "assistant")
        verdicts["output"] = verdict_json(verdict)
        guard_log = verdicts if agent.guard is not None else None
        if blocked:
            text = REFUSAL
            answer.reason += "; output blocked by the guard"
        await logged(answer, "blocked" if blocked else "ok", text, c.prompt_tokens, c.completion_tokens, guard_log)
        usage = {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
                 "total_tokens": c.prompt_tokens + c.completion_tokens}  # fmt: skip
        shown = None if blocked else sources_for(answer.route, chunks, agent.project.config.serve)
        return _reply(gw, req, answer, request_id, created, text, usage, c.finish_reason, shown)

    if input_blocked:
        answer, deltas = Answer(REFUSAL, "guard", "input blocked by the guard", None), one_text(REFUSAL)
    else:
        try:
            answer, deltas = await gw.open_stream(agent, mode, route, reason, prompt, req)
        except APIError as exc:
            raise await failed(exc, route, reason) from None
    info = _protege_info(answer, request_id)
    opening = _protege_info(answer, request_id, sources_for(answer.route, chunks, agent.project.config.serve))
    limit = req.token_limit(agent.project.config.serve.max_tokens)
    final: dict[str, Any] = {}
    guarded = not input_blocked and agent.guard is not None and agent.project.config.guard.policy == "block"
    if guarded:
        from protege.guard import guarded_stream

        # Checked while it streams: an unsafe answer is cut off and ends with the refusal.
        deltas = guarded_stream(deltas, agent.guard, messages, refusal=REFUSAL, on_verdict=lambda v: final.update(v=v))

    def chunk(delta: dict[str, Any], finish: str | None = None, extra: dict[str, Any] | None = None) -> str:
        body = {"id": request_id, "object": "chat.completion.chunk", "created": created, "model": req.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **(extra or {})}  # fmt: skip
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    async def events() -> AsyncIterator[str]:
        parts: list[str] = []
        status = "cancelled"  # the client went away before the end
        try:
            yield chunk({"role": "assistant", "content": ""}, extra={"protege": opening})
            async for delta in deltas:
                parts.append(delta)
                yield chunk({"content": delta})
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
                verdict, blocked = await gw.moderate(agent, [*messages, {"role": "assistant", "content": text}], "assistant")
            verdicts["output"] = verdict_json(verdict)
            if blocked and not input_blocked:
                answer.reason += "; output cut off by the guard"
            finish = (c.finish_reason if c else None) or ("length" if n_tokens >= limit else "stop")
            status = "blocked" if blocked else "ok"
            await logged(answer, status, text, prompt_tokens, n_tokens, verdicts if agent.guard is not None else None)
            yield chunk({}, finish, {"protege": info})
            if req.stream_options and req.stream_options.include_usage:
                usage = {"prompt_tokens": prompt_tokens or 0, "completion_tokens": n_tokens,
                         "total_tokens": (prompt_tokens or 0) + n_tokens}  # fmt: skip
                yield f"data: {json.dumps({'id': request_id, 'object': 'chat.completion.chunk', 'created': created, 'model': req.model, 'choices': [], 'usage': usage})}\n\n"
            yield "data: [DONE]\n\n"
        except Exception as exc:  # the model died mid-answer (any transport error): end the stream cleanly
            status = "error"
            gw.metrics.errors.labels("stream_interrupted").inc()
            if answer.backend is not None:
                gw.lost(agent, answer.backend, exc)
            err_body = APIError(502, f"The answer stream broke ({answer.route} failed); please retry.",
                                type="server_error", code="upstream_error")  # fmt: skip
            yield f"data: {json.dumps(err_body.body())}\n\n"
        finally:
            if status in ("error", "cancelled"):
                log(answer, status, "".join(parts), None, None, None)
            await deltas.aclose()
            gw.release()

    headers = {"x-protege-route": answer.route, "x-protege-id": request_id, "cache-control": "no-cache"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def _reply(gw: Gateway, req: ChatRequest, answer: Answer, request_id: str, created: int, text: str,
           usage: dict[str, int] | None, finish: str | None = "stop",
           sources: list[dict[str, str]] | None = None) -> JSONResponse:  # fmt: skip
    body = {
        "id": request_id, "object": "chat.completion", "created": created, "model": req.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish or "stop"}],
        "usage": usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "protege": _protege_info(answer, request_id, sources),
    }  # fmt: skip
    return JSONResponse(body, headers={"x-protege-route": answer.route, "x-protege-id": request_id})
