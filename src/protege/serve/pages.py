"""The gateway's own pages: the chat page, its static files, the widget script, agent profiles.

Static files are read once from the package and served from memory with a strict
Content-Security-Policy on the HTML pages: scripts and styles only from the gateway itself, no
inline code, no framing. `/widget.js` is the shared chat code followed by the widget's own.
"""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from protege.serve.profile import Profile, profile
from protege.serve.schema import APIError

TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")  # fmt: skip


def _static_files() -> dict[str, bytes]:
    folder = resources.files("protege.serve").joinpath("static")
    return {f.name: f.read_bytes() for f in folder.iterdir() if f.is_file() and f.name[f.name.rfind(".") :] in TYPES}


FILES = _static_files()


def static_response(name: str, body: bytes | None = None) -> Response:
    """A static file (by name) with its type; HTML pages get the CSP and are never framed."""
    content = FILES[name] if body is None else body
    headers = {"x-content-type-options": "nosniff", "cache-control": "no-cache"}
    if name.endswith(".html"):
        headers |= {"content-security-policy": PAGE_CSP, "referrer-policy": "no-referrer"}
    return Response(content, media_type=TYPES[name[name.rfind(".") :]], headers=headers)


def _profiles(request: Request) -> dict[str, Profile]:
    state = request.app.state
    if not hasattr(state, "profiles"):
        state.profiles = {}
    return state.profiles


def pages_router() -> APIRouter:
    router = APIRouter()
    widget_js = FILES["chat.js"] + b"\n" + FILES["widget.js"]

    @router.get("/", include_in_schema=False)
    async def chat_page() -> Response:
        return static_response("index.html")

    @router.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in FILES:
            raise APIError(404, f"No static file '{name}'.", type="invalid_request_error", code="not_found")
        return static_response(name)

    @router.get("/widget.js", include_in_schema=False)
    async def widget_script() -> Response:
        return static_response("widget.js", widget_js)

    @router.get("/v1/agents")
    async def agents(request: Request) -> dict[str, Any]:
        """The agents this caller may talk to, each with what its empty state shows and its model names.
        A widget key sees only its own agent, under its routed name."""
        gw = request.app.state.gateway
        caller = gw.authenticate(request)
        cache = _profiles(request)
        data = []
        for agent in gw.agents.values():
            if caller.project not in (None, agent.name):
                continue
            if agent.name not in cache:
                cache[agent.name] = await asyncio.to_thread(profile, agent.project, agent.persona)
            models = [agent.name] if caller.kind == "widget" else agent.model_names
            data.append(cache[agent.name].to_dict(models))
        return {"object": "list", "data": data}

    return router
