"""Learned routing between the student and the teacher (see router.py for the gateway API).

    router = protege.route.load("artifacts/router")
    router.decide(messages)  # Decision(route="student" | "teacher", score, reason)
"""

from protege.route.router import Decision, Router, load

__all__ = ["Decision", "Router", "load"]
