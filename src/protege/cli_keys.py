"""`protege keys ...` (API, widget and admin keys) and `protege widget` (the tag for a web site).

Sub-app and command of protege.cli. Keys are shown once, at creation: only their hashes are stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from protege.cli_route import ProjectDir
from protege.console import err, next_steps, out
from protege.errors import ProtegeError

keys_app = typer.Typer(help="Create, list and revoke the gateway's API keys (stored hashed).", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    directory: Annotated[Path, typer.Argument(help="project folder")] = Path("."),
    name: Annotated[str, typer.Option(help="who or what the key is for")] = "default",
    rate_limit: Annotated[Optional[int], typer.Option(help="requests per minute (default: serve.rate_limit_per_minute; widget: per visitor, 20)")] = None,
    widget: Annotated[bool, typer.Option("--widget", help="a widget key: chat with this agent only, from --origin only")] = False,
    origin: Annotated[Optional[str], typer.Option(help="the web site a widget key works from, e.g. https://shop.example")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="an admin key: opens the owner's page /admin, not the API")] = False,
) -> None:
    """Create a key (API, widget or admin). It is shown once: only its hash is stored."""
    from protege.project import Project
    from protege.serve.keys import KeyStore, Kind

    if widget and admin:
        raise ProtegeError("a key is either --widget or --admin, not both")
    project = Project.load(directory)
    kind: Kind = "widget" if widget else "admin" if admin else "api"
    key, record = KeyStore(project.paths.keys_db).create(name, rate_limit, kind=kind, origin=origin)
    out.print(key, highlight=False, soft_wrap=True)
    err.print(f"[green]Created[/] {kind} key {record.id} ('{name}') in {project.paths.keys_db}. It is shown only this once: store it now.")
    next_steps({
        "api": f"Next: protege serve {directory}  (clients send 'Authorization: Bearer <key>')",
        "widget": f"Next: protege widget {directory} --key <key>  prints the <script> tag for pages of {record.origin}",
        "admin": f"Next: protege serve {directory}, open /admin on the gateway and enter this key",
    }[kind])  # fmt: skip


@keys_app.command("list")
def keys_list(directory: Annotated[Path, typer.Argument(help="project folder")] = Path(".")) -> None:
    """List keys by id (the keys themselves cannot be shown: only hashes are stored)."""
    import datetime as dt

    from rich.table import Table

    from protege.project import Project
    from protege.serve.keys import WIDGET_VISITOR_PER_MINUTE, KeyStore

    project = Project.load(directory)
    table = Table("id", "kind", "name", "created", "status", "rate limit")
    for k in KeyStore(project.paths.keys_db).list():
        when = dt.datetime.fromtimestamp(k.created).strftime("%Y-%m-%d %H:%M")
        status = "[green]active[/]" if k.active else "[red]revoked[/]"
        kind = f"widget ({k.origin})" if k.kind == "widget" else k.kind
        if k.kind == "widget":  # counted per visitor (client address)
            limit = f"{k.rate_limit_per_minute or WIDGET_VISITOR_PER_MINUTE}/min per visitor"
        else:
            limit = f"{k.rate_limit_per_minute}/min" if k.rate_limit_per_minute else "default"
        table.add_row(k.id, kind, k.name, when, status, limit)
    out.print(table)
    next_steps(f"Keys live in {project.paths.keys_db}. Revoke one with: protege keys revoke ID {directory}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id (see `protege keys list`)")],
    directory: Annotated[Path, typer.Argument(help="project folder")] = Path("."),
) -> None:
    """Revoke a key; a running gateway stops accepting it within seconds."""
    from protege.project import Project
    from protege.serve.keys import KeyStore

    project = Project.load(directory)
    KeyStore(project.paths.keys_db).revoke(key_id)
    next_steps(f"[green]Revoked[/] key {key_id} in {project.paths.keys_db}.")


def widget(
    directory: ProjectDir = Path("."),
    origin: Annotated[Optional[str], typer.Option(help="the web site it goes on, e.g. https://shop.example: makes a widget key for it")] = None,
    key: Annotated[Optional[str], typer.Option(help="an existing widget key (protege keys create DIR --widget --origin URL)")] = None,
    url: Annotated[Optional[str], typer.Option(help="the gateway as the site's visitors reach it (default: http://serve.host:serve.port)")] = None,
    rate_limit: Annotated[Optional[int], typer.Option(help="requests per minute per visitor, for a new key (default 20)")] = None,
) -> None:
    """Print the <script> tag that puts a chat button for this agent on a web site."""
    from protege.project import Project
    from protege.serve.keys import WIDGET_VISITOR_PER_MINUTE
    from protege.serve.widget import widget_tag

    project = Project.load(directory)
    tag, record, notes = widget_tag(project, origin=origin, key=key, url=url, rate_limit=rate_limit)
    out.print(tag, markup=False, highlight=False, soft_wrap=True)
    for note in notes:
        err.print(f"[yellow]{escape(note)}[/]")
    # On stderr: stdout is the tag alone, ready to redirect into a file.
    err.print(f"Paste it just before </body> on pages of {record.origin}. Its key ({record.id}) chats with {project.name} only, "
              f"from that origin only, {record.rate_limit_per_minute or WIDGET_VISITOR_PER_MINUTE} requests/min per visitor. "
              f"Revoke it with: protege keys revoke {record.id} {directory}", highlight=False)  # fmt: skip
