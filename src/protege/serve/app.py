"""The gateway: an OpenAI-compatible FastAPI app in front of each project's student and teacher.

Per chat request: authenticate, admit (bounded queue), read a bounded body, validate, moderate
the input, route (router or student), answer (with fallback to the other model), moderate the
output, log to the traffic log, count in the metrics. Every error is OpenAI-shaped JSON.

Gateway-wide limits (body size, queue, default rate limit) come from the first project's
`serve:` section; per-agent settings (retrieval, timeouts, max_tokens) from each project's own.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse
from sse_starlette.sse import AppStatus
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from protege.console import err
from protege.errors import ProtegeError
from protege.project import Project
from protege.serve.admin import admin_router
from protege.serve.agent import Agent, load_agents
from protege.serve.exchange import Exchange
from protege.serve.metrics import Metrics
from protege.serve.pages import pages_router
from protege.serve.pipeline import Gateway
from protege.serve.schema import APIError, ChatRequest, FeedbackRequest, bad_request, public_ref
from protege.serve.widget import WidgetCORS, WidgetOrigins
from protege.traffic import TrafficLog, database_url

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
    # sse-starlette would cut every open stream within half a second of Ctrl-C or SIGTERM; an
    # answer is finite, so let uvicorn's graceful shutdown wait for it to end, as for any request.
    AppStatus.disable_automatic_graceful_drain()

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

    _add_error_handlers(app, gw)
    app.include_router(pages_router())
    app.include_router(admin_router())

    app.include_router(_api_router(gw))
    return app


def _add_error_handlers(app: FastAPI, gw: Gateway) -> None:
    """Every error, expected or not, leaves as OpenAI-shaped JSON and is counted."""

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


def _api_router(gw: Gateway) -> APIRouter:
    """/health, /metrics and the OpenAI-compatible API: /v1/models, /v1/chat/completions, /v1/feedback."""
    api = APIRouter()

    @api.get("/health")
    async def health() -> dict[str, Any]:
        agents = {
            a.name: {"student": public_ref(a.student.ref), "teacher": public_ref(a.teacher.ref) if a.teacher.client else None,
                     "router": a.router is not None, "guard": a.guard is not None}  # fmt: skip
            for a in gw.agents.values()
        }
        return {"status": "ok", "in_flight": gw.in_flight, "agents": agents}

    @api.get("/metrics")
    async def metrics() -> Response:
        return Response(gw.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @api.get("/v1/models")
    async def list_models(request: Request) -> dict[str, Any]:
        caller = gw.authenticate(request)
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "protege"}
            for a in gw.agents.values() if caller.project in (None, a.name)
            for name in a.model_names
        ]  # fmt: skip
        return {"object": "list", "data": data}

    @api.post("/v1/feedback")
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

    @api.post("/v1/chat/completions")
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
            response = await Exchange(gw, agent, mode, req, caller).respond()
            handed_off = isinstance(response, EventSourceResponse)  # its stream releases the slot when it ends
            return response
        finally:
            if not handed_off:
                gw.release()

    return api


def _validation_error(exc: ValidationError) -> APIError:
    first = exc.errors()[0]
    param = ".".join(str(p) for p in first["loc"]) or None
    msg = first["msg"].removeprefix("Value error, ")
    return bad_request(f"Invalid '{param}': {msg}" if param else msg, param=param)
