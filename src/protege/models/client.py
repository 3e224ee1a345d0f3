"""One async chat client for every endpoint, local or hosted (the official openai SDK).

It bounds concurrency, retries 429/5xx/timeouts with backoff honouring Retry-After (the SDK's
retry loop, sized from config), asks for top-k logprobs when told, accounts tokens and cost,
and caches every finished call in SQLite keyed by the full request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any

import openai

from protege.config import ModelConfig
from protege.errors import ProtegeError
from protege.models.cache import ResponseCache, request_key

Messages = list[dict[str, Any]]


@dataclass
class TopLogprob:
    token: str
    logprob: float
    bytes: list[int] | None = None


@dataclass
class TokenLogprob:
    token: str
    logprob: float
    bytes: list[int] | None = None
    top: list[TopLogprob] = field(default_factory=list)


@dataclass
class Completion:
    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    cost_usd: float
    model: str
    logprobs: list[TokenLogprob] | None = None
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("cached")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], cached: bool = False) -> "Completion":
        lps = data.get("logprobs")
        logprobs = None
        if lps is not None:
            logprobs = [
                TokenLogprob(t["token"], t["logprob"], t.get("bytes"), [TopLogprob(**x) for x in t.get("top", [])])
                for t in lps
            ]
        fields = {k: v for k, v in data.items() if k != "logprobs"}
        return cls(**fields, logprobs=logprobs, cached=cached)

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.latency_s if self.latency_s > 0 else 0.0


@dataclass
class ClientStats:
    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0  # what the calls cost, cached ones included (the dataset's price)
    spent_usd: float = 0.0  # what this run paid (cache hits are free)
    retries_exhausted: int = 0

    def add(self, c: Completion) -> None:
        self.calls += 1
        self.cache_hits += c.cached
        self.prompt_tokens += c.prompt_tokens
        self.completion_tokens += c.completion_tokens
        self.cost_usd += c.cost_usd
        if not c.cached:
            self.spent_usd += c.cost_usd


def _parse_logprobs(choice: Any) -> list[TokenLogprob] | None:
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if not content:
        return None
    out = []
    for t in content:
        top = [TopLogprob(x.token, float(x.logprob), list(x.bytes) if x.bytes else None) for x in (t.top_logprobs or [])]
        out.append(TokenLogprob(t.token, float(t.logprob), list(t.bytes) if t.bytes else None, top))
    return out


def describe_api_error(exc: Exception, endpoint: str) -> str:
    if isinstance(exc, openai.APITimeoutError):
        return f"{endpoint}: request timed out"
    if isinstance(exc, openai.APIConnectionError):
        return f"{endpoint}: cannot connect ({exc.__cause__ or exc})"
    if isinstance(exc, openai.AuthenticationError):
        return f"{endpoint}: the API key was rejected (401)"
    if isinstance(exc, openai.NotFoundError):
        return f"{endpoint}: model or route not found (404)"
    if isinstance(exc, openai.RateLimitError):
        return f"{endpoint}: still rate limited (429) after retries"
    if isinstance(exc, openai.APIStatusError) and "logits_all" in str(exc.message):
        return f"{endpoint}: this local server was started without logprobs (open_client(..., logprobs=True))"
    if isinstance(exc, openai.APIStatusError):
        return f"{endpoint}: HTTP {exc.status_code}: {str(exc.message)[:300]}"
    return f"{endpoint}: {exc}"


class ChatClient:
    """Chat completions against one endpoint. Use `async with` or call `aclose()`."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str,
        config: ModelConfig,
        cache: ResponseCache | None = None,
        identity: str | None = None,
    ):
        self.base_url = base_url
        self.model = model
        self.config = config
        self.cache = cache
        # The cache identity names the model, not the port it happens to be served on today.
        self.identity = identity or f"{config.ref}"
        self.stats = ClientStats()
        # Set for local servers, where protege chose whether logprobs are on: no probe needed.
        self.logprobs_known: bool | None = None
        self._sem = asyncio.Semaphore(config.concurrency)
        self._sdk = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key, max_retries=config.max_retries, timeout=config.timeout_s
        )

    async def __aenter__(self) -> "ChatClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._sdk.close()

    def price(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.config.price_input + completion_tokens * self.config.price_output) / 1e6

    def _request(self, messages: Messages, *, temperature: float, max_tokens: int, top_logprobs: int,
                 stop: list[str] | None, json_mode: bool, sample: int, seed: int | None,
                 response_format: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
        req: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": temperature, "max_tokens": max_tokens}
        if top_logprobs:
            req["logprobs"] = True
            req["top_logprobs"] = top_logprobs
        if stop:
            req["stop"] = stop
        if json_mode:
            req["response_format"] = {"type": "json_object"}
        if response_format is not None:
            req["response_format"] = response_format
        if seed is not None:
            req["seed"] = seed
        return req

    async def complete(
        self,
        messages: Messages,
        *,
        temperature: float = 0.0,
        max_tokens: int = 256,
        top_logprobs: int = 0,
        stop: list[str] | None = None,
        json_mode: bool = False,
        sample: int = 0,
        seed: int | None = None,
        use_cache: bool = True,
        response_format: dict[str, Any] | None = None,
    ) -> Completion:
        """One chat completion. With temperature > 0, `sample` tells cached samples apart.
        `response_format` is sent as given: constrained output (a JSON schema) for servers that take it."""
        req = self._request(messages, temperature=temperature, max_tokens=max_tokens, top_logprobs=top_logprobs,
                            stop=stop, json_mode=json_mode, sample=sample, seed=seed, response_format=response_format)  # fmt: skip
        key_req = dict(req, sample=sample) if temperature > 0 else req
        key = request_key(self.identity, key_req)
        if use_cache and self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                c = Completion.from_dict(hit, cached=True)
                self.stats.add(c)
                return c
        async with self._sem:
            t0 = time.perf_counter()
            try:
                resp = await self._sdk.chat.completions.create(**req)
            except openai.OpenAIError as exc:
                self.stats.retries_exhausted += isinstance(exc, openai.RateLimitError)
                raise ProtegeError(describe_api_error(exc, self.identity)) from exc
            latency = time.perf_counter() - t0
        if not resp.choices:
            raise ProtegeError(f"{self.identity}: the endpoint answered with no choices")
        choice = resp.choices[0]
        usage = resp.usage
        pt = usage.prompt_tokens if usage else 0
        ct = usage.completion_tokens if usage else 0
        c = Completion(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason,
            prompt_tokens=pt,
            completion_tokens=ct,
            latency_s=latency,
            cost_usd=self.price(pt, ct),
            model=resp.model or self.model,
            logprobs=_parse_logprobs(choice),
        )
        if use_cache and self.cache is not None:
            self.cache.put(key, self.identity, key_req, c.to_dict())
        self.stats.add(c)
        return c

    async def stream(
        self, messages: Messages, *, temperature: float = 0.0, max_tokens: int = 256, stop: list[str] | None = None
    ) -> AsyncIterator[str]:
        """Yield text deltas as they arrive (never cached: a stream is for a person watching)."""
        async with self._sem:
            try:
                stream = await self._sdk.chat.completions.create(
                    model=self.model, messages=messages, temperature=temperature, max_tokens=max_tokens,
                    stop=stop, stream=True,
                )  # fmt: skip
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta and chunk.choices[0].delta.content:
                        yield chunk.choices[0].delta.content
            except openai.OpenAIError as exc:
                raise ProtegeError(describe_api_error(exc, self.identity)) from exc

    async def supports_logprobs(self) -> bool:
        """Ask the endpoint once whether it returns top-k logprobs; remember the answer."""
        if self.logprobs_known is not None:
            return self.logprobs_known
        if self.cache is not None:
            known = self.cache.get_probe(self.identity, "logprobs")
            if known is not None:
                return bool(known)
        try:
            c = await self.complete([{"role": "user", "content": "Say OK."}], max_tokens=2, top_logprobs=2, use_cache=False)
            ok = bool(c.logprobs) and bool(c.logprobs[0].top)
        except ProtegeError:
            ok = False
        if self.cache is not None:
            self.cache.put_probe(self.identity, "logprobs", ok)
        return ok
