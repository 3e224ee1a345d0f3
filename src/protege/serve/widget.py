"""The embeddable widget: the <script> snippet, and which web pages may call the gateway.

A widget key (`protege keys create DIR --widget --origin https://shop.example`) sits in the
snippet, in the page's source for anyone to read, so it unlocks nothing else: it answers only
for its own agent's routed model, from its own origin, rate limited per visitor (serve.auth).

Browsers enforce the origin part through CORS, answered here: a request to the API from a page
of another origin gets CORS headers only when that origin belongs to an active widget key, and
only on the paths a widget uses. Any other cross-origin request is refused outright, so a page
the owner never allowed cannot make the gateway answer (or rate answers) even in a form post a
browser sends without asking first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from html import escape
from typing import Any
from urllib.parse import urlsplit

from protege.errors import ProtegeError
from protege.project import Project
from protege.serve.keys import KeyRecord, KeyStore

WIDGET_PATHS = frozenset({"/v1/chat/completions", "/v1/feedback", "/v1/agents"})
GUARDED_PREFIXES = ("/v1/", "/admin")
ORIGINS_CACHE_S = 5.0  # a new or revoked widget key takes effect within this long
PREFLIGHT_MAX_AGE_S = 600


def snippet(gateway_url: str, key: str, agent: str) -> str:
    """The tag an owner pastes into their site, just before </body>."""
    base = gateway_url.rstrip("/")
    return (f'<script src="{escape(base)}/widget.js" data-agent="{escape(agent)}" '
            f'data-key="{escape(key)}" async></script>')  # fmt: skip


def widget_tag(project: Project, *, origin: str | None, key: str | None, url: str | None,
               rate_limit: int | None) -> tuple[str, KeyRecord, list[str]]:  # fmt: skip
    """(the tag, its key's record, warnings) for `protege widget`: a new widget key for `origin`,
    or an existing one given as `key`. Never any other kind: a web page's source is public."""
    store = KeyStore(project.paths.keys_db)
    if (origin is None) == (key is None):
        raise ProtegeError("give --origin (the web site: a new widget key for it) or --key (an existing widget key), one of them")
    if key is not None:
        record = store.verify(key)
        if record is None:
            raise ProtegeError(f"--key is not an active key of {project.name} ({store.path})", hint="see `protege keys list`")
        if record.kind != "widget":
            raise ProtegeError(f"--key is an {record.kind} key: a web page's source is public, so it may only hold a widget key",
                               hint=f"make one with `protege widget {project.root} --origin https://your.site`")  # fmt: skip
    else:
        key, record = store.create(f"widget for {origin}", rate_limit, kind="widget", origin=origin)
    serve = project.config.serve
    base = url or f"http://{serve.host}:{serve.port}"
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProtegeError(f"--url '{base}' is not an http(s) address of the gateway (e.g. https://agent.shop.example)")
    notes = []
    if parts.hostname in ("127.0.0.1", "localhost", "::1") and urlsplit(record.origin or "").hostname not in ("127.0.0.1", "localhost", "::1"):
        notes.append(f"{base} is this machine's loopback address: visitors of {record.origin} cannot reach it; "
                     "pass --url with the gateway's public address")  # fmt: skip
    elif parts.scheme == "http" and (record.origin or "").startswith("https://"):
        notes.append(f"{record.origin} is https: browsers block an http:// gateway on its pages; serve the gateway over https")
    return snippet(base, key, project.name), record, notes


def _same_origin(origin: str, host: str | None) -> bool:
    """Whether the page's origin is the gateway itself (the chat page, /admin)."""
    return host is not None and host != "" and urlsplit(origin).netloc.lower() == host.lower()


class WidgetOrigins:
    """The origins of every active widget key of the served projects, re-read every few seconds."""

    def __init__(self, read: Callable[[], set[str]]):
        self._read = read
        self._at = -ORIGINS_CACHE_S
        self._origins: set[str] = set()

    def __contains__(self, origin: str) -> bool:
        if time.monotonic() - self._at > ORIGINS_CACHE_S:
            try:
                self._origins = self._read()
            except ProtegeError:  # an unreadable key store allows no origin: fails closed
                self._origins = set()
            self._at = time.monotonic()
        return origin in self._origins


class WidgetCORS:
    """ASGI middleware: CORS for widget origins on the widget's paths; other origins refused."""

    def __init__(self, app: Any, origins: WidgetOrigins):
        self.app = app
        self.origins = origins

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(GUARDED_PREFIXES):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        if origin is None or _same_origin(origin, headers.get("host")):
            return await self.app(scope, receive, send)
        if scope["path"] not in WIDGET_PATHS or origin not in self.origins:
            return await _refuse(send, origin)
        cors = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
        if scope["method"] == "OPTIONS":
            allow = cors + [
                (b"access-control-allow-methods", b"GET, POST"),
                (b"access-control-allow-headers", b"authorization, content-type"),
                (b"access-control-max-age", str(PREFLIGHT_MAX_AGE_S).encode()),
            ]
            await send({"type": "http.response.start", "status": 204, "headers": allow})
            return await send({"type": "http.response.body", "body": b""})

        async def with_cors(message: dict) -> None:
            if message["type"] == "http.response.start":
                extra = cors + [(b"access-control-expose-headers", b"x-protege-id, x-protege-route")]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_cors)


async def _refuse(send: Any, origin: str) -> None:
    body = json.dumps({"error": {
        "message": f"Requests from {origin} are not allowed: only the origins of this agent's widget keys may call it "
                   "from a browser (protege keys create DIR --widget --origin ORIGIN).",
        "type": "permission_error", "param": None, "code": "origin_not_allowed"}}).encode()  # fmt: skip
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"vary", b"Origin")]
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": body})
