"""Learned routing between the student and the teacher (see router.py for the gateway API).

    router = protege.route.load("artifacts/router")
    router.decide(messages)  # Decision(route="student" | "teacher", score, reason)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protege.route.router import Decision, Router, load

if TYPE_CHECKING:
    from protege.project import Project
    from protege.route.stage import FitResult

__all__ = ["Decision", "Router", "fit", "load"]


def fit(project: "Project", *, extra: int = 0, traffic: bool = False, db: str | None = None) -> "FitResult":
    """The route stage (see stage.py): fit, choose, calibrate and save artifacts/router/."""
    from protege.route.stage import run

    return run(project, extra=extra, traffic=traffic, db=db)
