"""One async chat client for every endpoint, local or hosted (the official openai SDK).

It bounds concurrency (for a local model: the server's slot count, so concurrent callers fill
its batch), retries 429/5xx/timeouts with backoff honouring Retry-After (the SDK's retry loop,
sized from config), asks for top-k logprobs and JSON-schema constrained output when told,
accounts tokens and cost, and caches every finished call in SQLite keyed by the full request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

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
        local: LocalTarget | None = None,
    ):
        self.base_url = base_url
        self.model = model
        self.config = config
        self.cache = cache
        # The cache identity names the model (and adapter), not the port it is served on today.
        self.identity = identity or f"{config.ref}"
        self.stats = ClientStats()
        self.local = local
        # llama-server returns top-n logprobs natively: no probe needed for a local model.
        self.logprobs_known: bool | None = True if local else None
        self.concurrency = local.slots if local else config.concurrency
        self._sem = asyncio.Semaphore(self.concurrency)
        self._api_key = api_key
        self._sdks: dict[str, openai.AsyncOpenAI] = {}
        self._sdk = self._sdk_for(base_url)

    async def __aenter__(self) -> "ChatClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for sdk in self._sdks.values():
            await sdk.close()

    def _sdk_for(self, base_url: str) -> openai.AsyncOpenAI:
        sdk = self._sdks.get(base_url)
        if sdk is None:
            sdk = openai.AsyncOpenAI(base_url=base_url or None, api_key=self._api_key,
                                     max_retries=self.config.max_retries, timeout=self.config.timeout_s)  # fmt: skip
            self._sdks[base_url] = sdk
        return sdk

    async def _target(self) -> tuple[openai.AsyncOpenAI, dict[str, Any] | None]:
        """The SDK for where the call goes, and the extra fields it carries (a local model's
        adapter); a local server that died is restarted here, before the call."""
        if self.local is None:
            return self._sdk, None
        try:
            base_url, extra = await asyncio.to_thread(self.local.resolve)
        except ProtegeError as exc:
            raise ProtegeError(f"{self.identity}: {exc.message}", hint=exc.hint) from exc
        return self._sdk_for(base_url), extra

    async def _failed(self, exc: openai.OpenAIError) -> ProtegeError:
        if self.local is not None and isinstance(exc, openai.APIConnectionError):
            await asyncio.to_thread(self.local.failed)
        self.stats.retries_exhausted += isinstance(exc, openai.RateLimitError)
        return ProtegeError(describe_api_error(exc, self.identity))

    def price(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.config.price_input + completion_tokens * self.config.price_output) / 1e6

    def _request(self, messages: Messages, *, temperature: float, max_tokens: int, top_logprobs: int,
                 stop: list[str] | None, response_format: dict[str, Any] | None,
                 seed: int | None) -> dict[str, Any]:  # fmt: skip
        req: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": temperature, "max_tokens": max_tokens}
        if top_logprobs:
            req["logprobs"] = True
            req["top_logprobs"] = top_logprobs
        if stop:
            req["stop"] = stop
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
        response_format: dict[str, Any] | None = None,
        sample: int = 0,
        seed: int | None = None,
        use_cache: bool = True,
    ) -> Completion:
        """One chat completion. With temperature > 0, `sample` tells cached samples apart.

        response_format is OpenAI's, e.g. {"type": "json_schema", "json_schema": {"name": ...,
        "schema": {...}}}: a local model is constrained to it by llama-server's grammar; a hosted
        endpoint gets it as it is (llama.cpp's {"type": "json_object", "schema": {...}} works
        locally too)."""
        req = self._request(messages, temperature=temperature, max_tokens=max_tokens, top_logprobs=top_logprobs,
                            stop=stop, response_format=response_format, seed=seed)  # fmt: skip
        key_req = dict(req, sample=sample) if temperature > 0 else req
        key = request_key(self.identity, key_req)
        if use_cache and self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                c = Completion.from_dict(hit, cached=True)
                self.stats.add(c)
                return c
        async with self._sem:
            sdk, extra = await self._target()
            t0 = time.perf_counter()
            try:
                resp = await sdk.chat.completions.create(**req, extra_body=extra)
            except openai.OpenAIError as exc:
                raise await self._failed(exc) from exc
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

    def stream(
        self, messages: Messages, *, temperature: float = 0.0, max_tokens: int = 256, stop: list[str] | None = None
    ) -> "TextStream":
        """Text deltas as they arrive (never cached: a stream is for a person watching); once it
        has ended, its `completion` holds the usage the endpoint reported."""
        req = {"model": self.model, "messages": messages, "temperature": temperature, "max_tokens": max_tokens, "stop": stop}
        return TextStream(self, req)

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
            ok = bool(c.logprobs and c.logprobs[0].top)
        except ProtegeError:
            ok = False
        if self.cache is not None:
            self.cache.put_probe(self.identity, "logprobs", ok)
        return ok


class LocalTarget(Protocol):
    """Where a local model's calls go (protege.models.endpoint.LocalRoute)."""

    slots: int

    def resolve(self) -> tuple[str, dict[str, Any]]: ...

    def failed(self) -> None: ...


class TextStream:
    """An async iterator of text deltas from one streamed chat completion.

    Asks the endpoint for usage (`stream_options.include_usage`); when the stream has ended,
    `completion` is the whole answer with the token counts the endpoint reported (0 if it
    reported none, as some servers do)."""

    def __init__(self, client: ChatClient, request: dict[str, Any]):
        self.completion: Completion | None = None
        self._client = client
        self._gen = self._run(request)

    def __aiter__(self) -> "TextStream":
        return self

    async def __anext__(self) -> str:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        await self._gen.aclose()

    async def _run(self, req: dict[str, Any]) -> AsyncGenerator[str, None]:
        client = self._client
        parts: list[str] = []
        usage, finish, model = None, None, client.model
        async with client._sem:
            sdk, extra = await client._target()
            t0 = time.perf_counter()
            stream = None
            try:
                stream = await sdk.chat.completions.create(
                    **req, stream=True, stream_options={"include_usage": True}, extra_body=extra
                )
                async for chunk in stream:
                    usage = chunk.usage or usage
                    model = chunk.model or model
                    if chunk.choices:
                        finish = chunk.choices[0].finish_reason or finish
                        delta = chunk.choices[0].delta
                        if delta and delta.content:
                            parts.append(delta.content)
                            yield delta.content
            except openai.OpenAIError as exc:
                raise await client._failed(exc) from exc
            finally:
                if stream is not None:  # a reader that stopped early also stops the generation upstream
                    await stream.close()
        pt = usage.prompt_tokens if usage else 0
        ct = usage.completion_tokens if usage else 0
        self.completion = Completion("".join(parts), finish, pt, ct, time.perf_counter() - t0, client.price(pt, ct), model)
        client.stats.add(self.completion)
