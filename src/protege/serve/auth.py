"""Who is calling the gateway: API keys under a policy fixed at start, and the limits per caller.

The policy fails closed. Keys are required when the gateway is exposed (bound to anything but
loopback) or when any served project has ever had a key; once required they stay required for
the life of the process, so revoking the last key leaves a gateway that refuses everyone, never
an open one. A loopback gateway started without keys turns them on when one is created (a
one-way switch, checked every KEY_CACHE_S).

Failed key attempts are counted per client address and throttled; requests are rate limited
per key (or per address without keys). Every counter lives in a bounded SlidingWindow.

Key kinds (serve.keys): a widget key answers only from its own web origin (the Origin header
its page sends), for its own agent's routed model, rate limited per visitor as well as in
total. An admin key opens /admin (`Auth.admin`), which always needs one, and never the API.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from fastapi import Request

from protege.config import ServeConfig
from protege.console import err
from protege.errors import ProtegeError
from protege.project import Project
from protege.serve.keys import WIDGET_VISITOR_PER_MINUTE, KeyRecord, KeyStore
from protege.serve.limits import SlidingWindow
from protege.serve.schema import APIError

KEY_CACHE_S = 5.0  # a revoked key stops working within this long
FAILED_KEYS_PER_MINUTE = 10  # wrong keys one address may send before it has to wait


@dataclass
class Caller:
    key_id: str | None
    project: str | None  # the project a key belongs to; None = open access
    kind: str = "api"  # the key's kind (serve.keys); "api" for open access too


class KeyRing:
    """The keys of every served project; a key opens only its own project's models."""

    def __init__(self, projects: list[Project]):
        self.stores = {p.name: KeyStore(p.paths.keys_db) for p in projects}
        self._verified: dict[str, tuple[float, str, KeyRecord]] = {}

    def any_keys(self) -> bool:
        return any(s.has_keys() for s in self.stores.values())

    def widget_origins(self) -> set[str]:
        return set().union(*(s.widget_origins() for s in self.stores.values()))

    def verify(self, key: str) -> tuple[str, KeyRecord] | None:
        # Cached by digest, never by the key itself: no key is kept in memory past the request.
        digest = hashlib.sha256(key.encode()).hexdigest()
        hit = self._verified.get(digest)
        if hit and time.monotonic() - hit[0] < KEY_CACHE_S:
            return hit[1], hit[2]
        self._verified.pop(digest, None)
        for project, store in self.stores.items():
            record = store.verify(key)
            if record is not None:
                self._verified[digest] = (time.monotonic(), project, record)
                return project, record
        return None


class Auth:
    """Authenticates and rate limits each request; see the module docstring for the policy."""

    def __init__(self, projects: list[Project], settings: ServeConfig, *, exposed: bool):
        self.keys = KeyRing(projects)
        self.settings = settings
        had_keys = self.keys.any_keys()  # read even when exposed: a damaged store fails at start
        self._required = exposed or had_keys
        self._checked = time.monotonic()
        self.failures = SlidingWindow()
        self.requests = SlidingWindow()

    @property
    def required(self) -> bool:
        if not self._required and time.monotonic() - self._checked > KEY_CACHE_S:
            self._checked = time.monotonic()
            try:
                self._required = self.keys.any_keys()
            except ProtegeError:
                self._required = True  # a key store that cannot be read: keys on, and verify fails closed
        return self._required

    def caller(self, request: Request) -> Caller:
        """The caller of a request, or an OpenAI-shaped 401/429/503 (APIError)."""
        address = request.client.host if request.client else "?"
        if not self.required:
            self.rate_limit(f"addr:{address}", self.settings.rate_limit_per_minute)
            return Caller(None, None)
        project, record = self._record(request, address, "Missing API key: send it as 'Authorization: Bearer pk-...'.")
        if record.kind == "admin":
            raise APIError(403, "This is an admin key: it opens the owner's page (/admin) only; use an API key.",
                           type="permission_error", code="admin_key_not_for_api")  # fmt: skip
        if record.kind == "widget":
            origin = request.headers.get("origin")
            if origin != record.origin:
                raise APIError(403, f"This widget key works only from pages of {record.origin} (this request's origin: "
                               f"{origin or 'none'}).", type="permission_error", code="origin_not_allowed")  # fmt: skip
            self.rate_limit(f"visitor:{record.id}:{address}", record.rate_limit_per_minute or WIDGET_VISITOR_PER_MINUTE)
            self.rate_limit(f"key:{record.id}", self.settings.rate_limit_per_minute)
        else:
            self.rate_limit(f"key:{record.id}", record.rate_limit_per_minute or self.settings.rate_limit_per_minute)
        return Caller(record.id, project, record.kind)

    def admin(self, request: Request) -> str:
        """The project whose owner's page an admin key opens. Always needs one, keys on or not."""
        address = request.client.host if request.client else "?"
        missing = "The owner's page needs an admin key: create one with `protege keys create DIR --admin`."
        project, record = self._record(request, address, missing)
        if record.kind != "admin":
            raise APIError(403, "This key is not an admin key; create one with `protege keys create DIR --admin`.",
                           type="permission_error", code="not_an_admin_key")  # fmt: skip
        self.rate_limit(f"key:{record.id}", self.settings.rate_limit_per_minute)
        return project

    def _record(self, request: Request, address: str, missing: str) -> tuple[str, KeyRecord]:
        """(project, record) of the request's valid key, or a 401/429/503 APIError."""
        header = request.headers.get("authorization", "")
        key = header[7:].strip() if header[:7].lower() == "bearer " else ""
        if not key:
            raise APIError(401, missing, type="authentication_error", code="missing_api_key")
        wait = self.failures.blocked(address, FAILED_KEYS_PER_MINUTE)
        if wait is not None:
            raise APIError(429, f"Too many failed API key attempts from this address; retry in {wait:.0f}s.",
                           type="rate_limit_error", code="too_many_failed_keys", headers=_retry_after(wait))  # fmt: skip
        try:
            found = self.keys.verify(key)
        except ProtegeError as exc:
            err.print(f"[red]auth unavailable:[/] {exc}", highlight=False, soft_wrap=True)
            raise APIError(503, "API keys cannot be checked right now; the gateway refuses requests until they can.",
                           type="server_error", code="auth_unavailable") from None  # fmt: skip
        if found is None:
            self.failures.record(address, FAILED_KEYS_PER_MINUTE)
            raise APIError(401, "Invalid or revoked API key.", type="authentication_error", code="invalid_api_key")
        return found

    def rate_limit(self, bucket: str, limit: int) -> None:
        wait = self.requests.hit(bucket, limit)
        if wait is not None:
            raise APIError(429, f"Rate limit reached ({limit} requests per minute); retry in {wait:.0f}s.",
                           type="rate_limit_error", code="rate_limit_exceeded", headers=_retry_after(wait))  # fmt: skip


def _retry_after(wait: float) -> dict[str, str]:
    return {"retry-after": str(max(1, round(wait)))}
