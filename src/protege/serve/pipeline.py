"""The gateway's per-request pipeline, without HTTP: moderate the input, route (router or
student), answer with fallback to the other model, moderate the output, log and count. `app.py`
puts the OpenAI framing around it.
"""

from __future__ import annotations
import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from concurrent.futures import Future
from typing import Any
from fastapi import Request
from rich.markup import escape
from protege.config import ServeConfig
from protege.console import err
from protege.errors import ProtegeError
from protege.guard import redact
from protege.models.client import Completion, TextStream
from protege.project import Project
from protege.serve.agent import Agent, Backend
from protege.serve.auth import Auth, Caller
from protege.serve.metrics import Metrics
from protege.serve.prompts import Prompts
from protege.serve.schema import APIError, ChatRequest, bad_request
from protege.traffic import TrafficLog, TrafficRecord, redact_record

REFUSAL = "Sorry, I can't help with that. Please rephrase, or ask about something else."


@dataclasses.dataclass
class Answer:
    text: str
    route: str
    reason: str
    backend: Backend | None
    completion: Completion | None = None
    stream: Any = None  # a streamed answer's upstream stream: its `completion` has the usage once it ended


def verdict_json(verdict: Any) -> dict[str, Any] | None:
    return verdict.to_dict() if verdict is not None else None


class Gateway:
    """State shared by the routes of one app."""

    def __init__(self, projects: list[Project], db: str | None, settings: ServeConfig, *, exposed: bool):
        self.projects = projects
        self.settings = settings
        self.db = db
        self.logs: dict[str, TrafficLog] = {}
        self.auth = Auth(projects, settings, exposed=exposed)
        self.metrics = Metrics()
        self.agents: dict[str, Agent] = {}
        self.published: dict[str, frozenset[str]] = {}  # per agent: contacts its own documents publish
        self.in_flight = 0

    def agent_for(self, model: str, caller: Caller) -> tuple[Agent, str]:
        """(agent, mode) for a model name; mode is routed, student or teacher."""
        for agent in self.agents.values():
            for name, mode in zip(agent.model_names, ("routed", "student", "teacher")):
                # A widget key (public, in a web page) may not pick the big model itself.
                if model == name and caller.project in (None, agent.name) and (mode == "routed" or caller.kind != "widget"):
                    return agent, mode
        raise APIError(404, f"The model `{model}` does not exist or you do not have access to it.",
                       type="invalid_request_error", code="model_not_found", param="model")  # fmt: skip

    # -- the edge: auth, limits, body ------------------------------------------------------------

    def authenticate(self, request: Request) -> Caller:
        return self.auth.caller(request)

    def admit(self) -> None:
        if self.in_flight >= self.settings.max_queue:
            raise APIError(503, f"The server is busy ({self.in_flight} requests in progress); retry shortly.",
                           type="server_error", code="overloaded", headers={"retry-after": "1"})  # fmt: skip
        self.in_flight += 1
        self.metrics.in_flight.set(self.in_flight)

    def release(self) -> None:
        self.in_flight -= 1
        self.metrics.in_flight.set(self.in_flight)

    async def read_json(self, request: Request) -> dict[str, Any]:
        limit = self.settings.max_body_bytes
        too_large = APIError(413, f"Request body larger than {limit} bytes.", type="invalid_request_error",
                             code="request_too_large")  # fmt: skip
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise too_large
        body = bytearray()
        async for part in request.stream():  # the real size: a client can lie in Content-Length
            body += part
            if len(body) > limit:
                raise too_large
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise bad_request(f"Could not parse the JSON body: {exc}", code="invalid_json") from None
        except RecursionError:
            raise bad_request("The JSON body is nested too deeply.", code="invalid_json") from None
        if not isinstance(data, dict):
            raise bad_request("The JSON body must be an object.", code="invalid_json")
        return data

    # -- answering -------------------------------------------------------------------------------

    async def plan(self, agent: Agent, mode: str, messages: list[dict[str, str]]) -> tuple[str, str]:
        """(route, reason) before any fallback."""
        if mode != "routed":
            return mode, f"requested {agent.name}-{mode}"
        if agent.teacher.client is None:
            return "student", "teacher unavailable at start-up"
        if agent.router is None:
            return "student", "no router: the student answers"
        decision = await asyncio.to_thread(agent.router.decide, messages)
        self.metrics.routes.labels(agent.name, decision.route).inc()
        return decision.route, f"router: {decision.reason}"

    def cascades(self, agent: Agent, mode: str) -> bool:
        """A cascade router: the student answers first and the teacher only if it was unsure."""
        return mode == "routed" and agent.router is not None and agent.router.answer_first and agent.teacher.client is not None

    def backends(self, agent: Agent, route: str, mode: str) -> list[Backend]:
        """Who answers, in order: the routed model, then (for the routed name) the other one."""
        first, other = (agent.student, agent.teacher) if route == "student" else (agent.teacher, agent.student)
        order = [first] if mode != "routed" else [first, other]
        return [b for b in order if b.client is not None]

    def _timeout(self, agent: Agent, backend: Backend) -> float | None:
        return agent.project.config.serve.student_timeout_s if backend is agent.student else None

    def _failed(self, agent: Agent, backend: Backend, exc: BaseException) -> str:
        """A failure the other model answers for: counted, and `lost`; returns what the client may see."""
        self.metrics.fallbacks.labels(agent.name, backend.label).inc()
        return self.lost(agent, backend, exc)

    def lost(self, agent: Agent, backend: Backend, exc: BaseException) -> str:
        """Restart a local student and log the failure's detail here; returns what the client may
        see: who failed, never the upstream's address or error text."""
        if backend is agent.student:
            backend.revive()
        timed_out = isinstance(exc, TimeoutError)
        detail = "timed out" if timed_out else redact(str(exc) or type(exc).__name__)[0]
        err.print(f"[yellow]{agent.name}: {backend.label} failed:[/] {escape(detail[:500])}", highlight=False, soft_wrap=True)
        return f"{backend.label} failed ({'timed out' if timed_out else 'unavailable'})"

    def write(self, agent: Agent, rec: TrafficRecord) -> Future:
        """Queue a traffic row, redacted first unless the owner turned `guard.redact_pii` off."""
        if agent.project.config.guard.redact_pii:
            rec = redact_record(rec, self.published.get(agent.name, frozenset()))
        return self.logs[agent.name].record(rec)

    async def _call(self, agent: Agent, backend: Backend, prompt: Prompts, req: ChatRequest,
                    logprobs: bool = False) -> Completion:  # fmt: skip
        call = backend.client.complete(  # type: ignore[union-attr]
            await prompt.for_route(backend.label), temperature=req.temperature, max_tokens=req.token_limit(agent.project.config.serve.max_tokens),
            stop=req.stops(), seed=req.seed, use_cache=False, top_logprobs=1 if logprobs else 0,
        )  # fmt: skip
        return await asyncio.wait_for(call, self._timeout(agent, backend))

    async def complete(self, agent: Agent, mode: str, route: str, reason: str,
                       prompt: Prompts, req: ChatRequest) -> Answer:  # fmt: skip
        cascade = self.cascades(agent, mode)
        failures: list[str] = []
        for backend in self.backends(agent, route, mode):
            try:
                c = await self._call(agent, backend, prompt, req, logprobs=cascade and backend is agent.student)
            except (ProtegeError, TimeoutError) as exc:
                failures.append(self._failed(agent, backend, exc))
                continue
            why = reason if not failures else "; ".join(failures) + f"; {backend.label} answered"
            answer = Answer(c.text, backend.label, why, backend, c)
            if cascade and backend is agent.student:
                return await self.escalate(agent, answer, prompt, req)
            return answer
        raise no_answer(failures)

    async def escalate(self, agent: Agent, student: Answer, prompt: Prompts, req: ChatRequest) -> Answer:
        """Cascade: keep the student's answer unless its token logprobs say it was unsure."""
        lps = [t.logprob for t in (student.completion.logprobs if student.completion else None) or []]
        mean, low = (sum(lps) / len(lps), min(lps)) if lps else (None, None)
        shown = f"mean logprob {mean:.2f}, min {low:.2f}" if lps else "no logprobs"
        if not agent.router.escalate(mean, low):
            student.reason = f"cascade: student confident ({shown})"
            return student
        self.metrics.routes.labels(agent.name, "teacher").inc()
        try:
            c = await self._call(agent, agent.teacher, prompt, req)
        except (ProtegeError, TimeoutError) as exc:
            student.reason = f"cascade: student unsure ({shown}); {self._failed(agent, agent.teacher, exc)}; student's answer kept"
            return student
        return Answer(c.text, "teacher", f"cascade: student unsure ({shown}); escalated", agent.teacher, c)

    async def open_stream(self, agent: Agent, mode: str, route: str, reason: str,
                          prompt: Prompts, req: ChatRequest) -> tuple[Answer, AsyncIterator[str]]:  # fmt: skip
        """Start streaming; falls back while nothing was sent, so the headers name who answers.

        A cascade needs the student's whole answer before it can decide, so it is answered in
        full and then sent as one delta.
        """
        if self.cascades(agent, mode):
            answer = await self.complete(agent, mode, route, reason, prompt, req)
            return answer, one_text(answer.text)
        failures: list[str] = []
        for backend in self.backends(agent, route, mode):
            stream = backend.client.stream(  # type: ignore[union-attr]
                await prompt.for_route(backend.label), temperature=req.temperature, stop=req.stops(),
                max_tokens=req.token_limit(agent.project.config.serve.max_tokens),
            )  # fmt: skip
            try:
                first = await asyncio.wait_for(anext(stream), self._timeout(agent, backend))
            except StopAsyncIteration:
                first = ""
            except (ProtegeError, TimeoutError) as exc:
                await stream.aclose()
                failures.append(self._failed(agent, backend, exc))
                continue
            why = reason if not failures else "; ".join(failures) + f"; {backend.label} answered"
            return Answer("", backend.label, why, backend, stream=stream), prepend(first, stream)
        raise no_answer(failures)

    def unsafe(self, agent: Agent, verdict: Any, role: str) -> bool:
        """Count an unsafe verdict; True when the policy blocks it ('block'), False to only log ('flag')."""
        if verdict is None or verdict.safe:
            return False
        action = agent.project.config.guard.policy
        self.metrics.guard.labels(agent.name, role, action).inc()
        return action == "block"

    async def moderate(self, agent: Agent, messages: list[dict[str, str]], role: str) -> tuple[Any, bool]:
        """(verdict, blocked) for the last turn of `role`; (None, False) without a guard."""
        if agent.guard is None:
            return None, False
        verdict = await agent.guard.check(messages, role=role)
        return verdict, self.unsafe(agent, verdict, role)


def no_answer(failures: list[str]) -> APIError:
    return APIError(502, "No model could answer: " + "; ".join(failures or ["no model is available"]),
                    type="server_error", code="upstream_error")  # fmt: skip


async def one_text(text: str) -> AsyncIterator[str]:
    yield text


async def prepend(first: str, rest: TextStream) -> AsyncIterator[str]:
    try:
        if first:
            yield first
        async for delta in rest:
            yield delta
    finally:
        await rest.aclose()
