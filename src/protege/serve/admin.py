"""The owner's page, /admin: traffic over time, who answered, latency, cost, ratings, the
questions the student got wrong or people rated down, what harvest would add, and the
cost-quality curve the router was fitted on.

Always behind an admin key, even on loopback with no other key (`protege keys create DIR
--admin`; it opens only its own project's page and nothing of the API). /admin itself is a
static shell; the figures come from /admin/panel, fetched with the key and never cached.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from protege.errors import ProtegeError
from protege.serve.admin_data import LIST_LIMIT, curve, rated_down, student_misses, traffic
from protege.serve.admin_view import HarvestPreview, Panel, render
from protege.serve.pages import static_response
from protege.serve.schema import bad_request

PERIODS_DAYS = (1, 7, 30, 365)


def harvest_preview(agent: Any, db_url: str) -> HarvestPreview:
    """What `protege harvest` would add now, from harvest's own selection (nothing is written)."""
    from protege.serve.harvest import select

    try:
        sel = select(agent.project, db_url)
    except ProtegeError as exc:
        return HarvestPreview([], 0, 0, 0, 0, note=str(exc))
    shown = []
    for row in sel.rows[:LIST_LIMIT]:
        question = next((m["content"] for m in reversed(row["messages"]) if m["role"] == "user"), "")
        shown.append((question, row["messages"][-1]["content"]))
    return HarvestPreview(shown, len(sel.rows), len(sel.requests), sel.duplicates, sel.redactions)


def build_panel(gw: Any, name: str, days: int) -> str:
    """The panel's HTML for one project over the last `days` (blocking: run it in a thread)."""
    agent = gw.agents[name]
    log = gw.logs[name]
    log.flush()  # the rows queued a moment ago count too
    now = time.time()
    try:
        misses, misses_note = student_misses(agent.project)
    except ProtegeError as exc:
        misses, misses_note = [], str(exc)
    fitted, curve_note = curve(agent.project)
    panel = Panel(
        project=name, root=str(agent.project.root), now=now,
        traffic=traffic(log.engine, name, now, days),
        rated_down=rated_down(log.engine, name, now - days * 86400),
        misses=misses, misses_note=misses_note,
        harvest=harvest_preview(agent, log.url),
        curve=fitted, curve_note=curve_note,
    )  # fmt: skip
    return render(panel)


def admin_router() -> APIRouter:
    router = APIRouter()

    @router.get("/admin", include_in_schema=False)
    async def admin_page() -> Response:
        return static_response("admin.html")

    @router.get("/admin/panel", include_in_schema=False)
    async def admin_panel(request: Request, days: str = "30") -> HTMLResponse:
        gw = request.app.state.gateway
        name = gw.auth.admin(request)
        if days not in map(str, PERIODS_DAYS):
            raise bad_request(f"'days' must be one of {', '.join(map(str, PERIODS_DAYS))} (got '{days[:20]}')", param="days")
        html = await asyncio.to_thread(build_panel, gw, name, int(days))
        # A fragment for admin.js to place; opened on its own it may run and load nothing.
        headers = {"cache-control": "no-store", "x-content-type-options": "nosniff", "content-security-policy": "default-src 'none'"}
        return HTMLResponse(html, headers=headers)

    return router
