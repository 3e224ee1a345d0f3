"""`protege route ...`: fit, calibrate and inspect the router (a sub-app of protege.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from protege.console import err, next_steps, out
from protege.errors import ProtegeError

ProjectDir = Annotated[Path, typer.Argument(help="project folder (holds protege.yaml)")]

route_app = typer.Typer(help="Learn when the student is enough: fit, calibrate and inspect the router.", no_args_is_help=True)


def _print_router(router_dir: Path) -> dict:
    """The chosen router, every router's cross-validated metrics, and the curve, as tables."""
    from rich.table import Table

    from protege.route.curve import read_csv
    from protege.route.router import read_info
    from protege.route.summary import METRIC_HEADER, curve_rows, metric_rows

    info = read_info(router_dir)
    if info.get("degenerate"):
        out.print(f"[yellow]{escape(info['degenerate'])}[/]: the router sends every query to the student")
        return info
    table = Table(*METRIC_HEADER, title=f"routers on {info['data']['n']} labelled queries ({info['data']['sources']})")
    for row in metric_rows(info):
        table.add_row(*row)
    out.print(table)
    if (router_dir / "curve.csv").is_file():
        header, rows = curve_rows(read_csv(router_dir / "curve.csv"))
        curve_table = Table(*header, title=f"quality ({info['quality']['measure']}) against teacher calls, out-of-fold")
        for line in rows:
            curve_table.add_row(*line)
        out.print(curve_table)
    t = info["target"]
    out.print(
        f"[bold]{info['kind']}[/] chosen; threshold {info['threshold']:.4f} ({t['by']}): the student answers "
        f"{t['student_share']:.0%} of queries, expected quality {t['expected_quality']:.2f} "
        f"(student-only {info['quality']['student_only']:.2f}, teacher-only {info['quality']['teacher_only']:.2f})"
    )
    if info.get("cascade"):
        c = info["cascade"]
        out.print(f"cascade: escalates {c['escalated_share']:.0%}; student time spent before escalating: "
                  f"{c['extra_latency_s_per_escalation']:.2f} s per escalation, {c['extra_latency_s_per_query']:.2f} s per query on average")  # fmt: skip
    return info


@route_app.command("fit")
def route_fit(
    directory: ProjectDir = Path("."),
    extra: Annotated[int, typer.Option(help="also label N new queries written by the teacher from the docs")] = 0,
    traffic: Annotated[bool, typer.Option(help="also label a sample of logged gateway traffic (recalibration)")] = False,
    db: Annotated[Optional[str], typer.Option(help="with --traffic: the gateway's --db URL (default: artifacts/traffic.db)")] = None,
) -> None:
    """Cross-validate four routers on judged queries, keep the best by APGR, calibrate its threshold."""
    from protege.project import Project
    from protege.route import fit

    if extra < 0:
        raise ProtegeError(f"--extra must be 0 or more (got {extra})")
    if db and not traffic:
        raise ProtegeError("--db names the traffic log: use it with --traffic")
    result = fit(Project.load(directory), extra=extra, traffic=traffic, db=db)
    for note in result.notes:
        err.print(f"[dim]{escape(note)}[/]")
    info = _print_router(result.router_dir)
    if result.previous:
        p = result.previous
        apgr = (p.get("apgr") or {}).get("value")
        new = (info.get("metrics") or {}).get(info["kind"], {}).get("apgr", {}).get("value")
        out.print(f"previous fit ({p.get('created')}): {p.get('kind')} on {p.get('n')} queries, APGR "
                  f"{apgr if apgr is None else f'{apgr:.3f}'} -> now {info['kind']} APGR {new if new is None else f'{new:.3f}'}")  # fmt: skip
    next_steps(
        f"[green]Wrote[/] {result.router_dir}/router.json, router.npz, curve.csv, curve.png",
        f"Next: [bold]protege serve {directory}[/] routes with it; later, [bold]protege route fit {directory} --traffic[/] recalibrates on real queries",
    )


@route_app.command("curve")
def route_curve(directory: ProjectDir = Path(".")) -> None:
    """Show the fitted router's metrics and its cost-quality curve."""
    from protege.project import Project

    router_dir = Project.load(directory).paths.router
    _print_router(router_dir)
    next_steps(f"Plot: {router_dir / 'curve.png'}   Data: {router_dir / 'curve.csv'}", f"Next: [bold]protege serve {directory}[/]")
