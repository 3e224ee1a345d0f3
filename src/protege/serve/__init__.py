"""`protege serve`: the OpenAI-compatible gateway, its keys, traffic log and chat page.

    run([Path("my-agent")], host="127.0.0.1", port=8000)   # blocks until Ctrl-C

FastAPI, uvicorn and SQLAlchemy are imported only here and below (the `serve` extra).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

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


def run(dirs: list[Path], *, host: str | None = None, port: int | None = None, db: str | None = None) -> None:
    """Serve the projects until interrupted."""
    import uvicorn

    from protege.console import err
    from protege.serve.app import create_app
    from protege.serve.keys import KeyStore

    projects = load_projects(dirs)
    settings = projects[0].config.serve
    host = host or settings.host
    port = settings.port if port is None else port
    check_exposure(projects, host)
    app = create_app(projects, db)
    keyed = any(KeyStore(p.paths.keys_db).has_active() for p in projects)
    shown = f"[{host}]" if ":" in host else host
    err.print(f"[bold]protege serve[/]: starting {', '.join(p.name for p in projects)} on http://{shown}:{port}")
    err.print(f"  chat page  http://{shown}:{port}/    API  http://{shown}:{port}/v1    metrics  /metrics")
    models = ", ".join(n for p in projects for n in (p.name, f"{p.name}-student", f"{p.name}-teacher"))
    err.print(f"  models     {models}")
    err.print(f"  keys       {'required' if keyed else 'not required (loopback, no keys created)'}")
    logs = db.split("@")[-1] if db else ", ".join(str(p.paths.traffic_db) for p in projects)
    err.print(f"  traffic    {logs}")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    err.print(f"Stopped. Next: rate answers on the chat page, then `protege harvest {projects[0].root}`")
