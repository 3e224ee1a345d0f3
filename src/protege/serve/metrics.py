"""Prometheus metrics of one gateway (its own registry, so several apps in a process never mix)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "protege_http_requests", "HTTP requests by path and status", ["path", "status"], registry=r
        )
        self.completions = Counter(
            "protege_completions", "chat completions answered, by model name and who answered",
            ["model", "route"], registry=r,
        )  # fmt: skip
        self.routes = Counter(
            "protege_route_decisions", "router decisions before fallback", ["model", "route"], registry=r
        )
        self.latency = Histogram(
            "protege_completion_latency_seconds", "time to the full answer", ["model", "route"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.tokens = Counter("protege_tokens", "tokens by model and kind", ["model", "kind"], registry=r)
        self.errors = Counter("protege_errors", "error answers by code", ["code"], registry=r)
        self.fallbacks = Counter(
            "protege_fallbacks", "answers given by the other model after a failure", ["model", "failed"], registry=r
        )
        self.guard = Counter("protege_guard_verdicts", "unsafe guard verdicts", ["model", "role", "action"], registry=r)
        self.in_flight = Gauge("protege_in_flight", "chat requests being answered", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
