"""`protege serve`: the OpenAI-compatible gateway, its keys and chat page (the traffic log is protege.traffic).

    run([Path("my-agent")], host="127.0.0.1", port=8000)   # blocks until Ctrl-C

FastAPI, uvicorn and SQLAlchemy are imported only here and below (the `serve` extra).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from protege.errors import ProtegeError
from protege.project import Project


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_projects(dirs: list[Path]) -> list[Project]:
    """The projects to serve; their names become model names, so they must differ."""
    projects = [Project.load(d) for d in dirs or [Path(".")]]
    seen: dict[str, Path] = {}
    for p in projects:
        if p.name in seen:
            raise ProtegeError(f"two projects are both named '{p.name}' ({seen[p.name]} and {p.root}): "
                               "model names must be unique; rename one in its protege.yaml")  # fmt: skip
        seen[p.name] = p.root
    return projects


def check_exposure(projects: list[Project], host: str) -> None:
    """Anything but loopback is reachable by others: refuse to start without API keys."""
    from protege.serve.keys import KeyStore

    if is_loopback(host):
        return
    if not any(KeyStore(p.paths.keys_db).has_active() for p in projects):
        raise ProtegeError(
            f"refusing to serve on {host} without API keys: anyone who can reach it could use your models",
            hint=f"create one with `protege keys create {projects[0].root}`, or serve on 127.0.0.1",
        )


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a taken or impossible address is one clear error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        hint = "another program (perhaps another protege serve) listens there: pick another --port"
        if exc.errno != errno.EADDRINUSE:
            hint = "use an address of this machine, e.g. 127.0.0.1 (loopback) or 0.0.0.0 (all interfaces)"
        raise ProtegeError(f"cannot listen on {host}:{port}: {reason}", hint=hint) from None
    except (OverflowError, socket.gaierror) as exc:
        raise ProtegeError(f"cannot listen on {host}:{port}: {exc}") from None
    # Accepted connections inherit this. asyncio sets it only on sockets made with
    # proto=IPPROTO_TCP, and create_server makes proto 0: without it, a reply written as headers
    # then body waits on the client's delayed ACK (about 40 ms on Linux) before its body is sent.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


async def serve_app(app: Any, server: Any, sock: socket.socket) -> None:
    """Start the app (agents, llama.cpp servers), serve on `sock` until stopped, then shut down.

    The app's startup runs here rather than inside uvicorn, so a failure in it (a missing model
    file, a damaged store) reaches the caller as the ProtegeError it is, not as uvicorn's log.
    """
    async with app.router.lifespan_context(app):
        await server.serve(sockets=[sock])


def run(dirs: list[Path], *, host: str | None = None, port: int | None = None, db: str | None = None) -> None:
    """Serve the projects until interrupted."""
    import asyncio

    import uvicorn

    from protege.config import ServeConfig, describe_validation_error
    from protege.console import err
    from protege.serve.app import create_app
    from protege.serve.keys import KeyStore

    projects = load_projects(dirs)
    settings = projects[0].config.serve
    try:
        settings = ServeConfig.model_validate({**settings.model_dump(), "host": host or settings.host,
                                               "port": settings.port if port is None else port})  # fmt: skip
    except ValidationError as exc:
        raise ProtegeError(describe_validation_error(exc, "serve")) from None
    check_exposure(projects, settings.host)
    exposed = not is_loopback(settings.host)
    app = create_app(projects, db, exposed=exposed)
    sock = listen(settings.host, settings.port)
    bound = sock.getsockname()[1]
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    keyed = app.state.gateway.auth.required
    err.print(f"[bold]protege serve[/]: starting {', '.join(p.name for p in projects)} on http://{shown}:{bound}")
    err.print(f"  chat page  http://{shown}:{bound}/    API  http://{shown}:{bound}/v1    metrics  /metrics")
    models = ", ".join(n for p in projects for n in (p.name, f"{p.name}-student", f"{p.name}-teacher"))
    err.print(f"  models     {models}")
    err.print(f"  keys       {'required' if keyed else 'not required (loopback, no keys created)'}")
    admins = [p.name for p in projects if KeyStore(p.paths.keys_db).has_admin()]
    err.print(f"  admin      http://{shown}:{bound}/admin  " + (f"(admin key of {', '.join(admins)})" if admins else
              f"(needs an admin key: `protege keys create {projects[0].root} --admin`)"))  # fmt: skip
    logs = db.split("@")[-1] if db else ", ".join(str(p.paths.traffic_db) for p in projects)
    err.print(f"  traffic    {logs}")
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    try:
        asyncio.run(serve_app(app, server, sock))
    finally:
        sock.close()
    err.print(f"Stopped. Next: rate answers on the chat page, then `protege harvest {projects[0].root}`")
