"""The chat client against real endpoints: a llama.cpp server and a tiny flaky HTTP server."""

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from protege.config import ModelConfig
from protege.errors import ProtegeError
from protege.models.cache import ResponseCache
from protege.models.client import ChatClient
from protege.models.endpoint import open_client, server_spec
from protege.models.server import POOL

HELLO = [{"role": "user", "content": "Name one colour of the rainbow. One word."}]


def _answer(text: str) -> dict:
    return {
        "id": "x", "object": "chat.completion", "created": 0, "model": "flaky",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500},
    }  # fmt: skip


class FlakyEndpoint:
    """Answers the first `failures` requests with `status` (and Retry-After), then 200."""

    def __init__(self, failures: int, status: int = 429, retry_after: str | None = "1"):
        self.requests: list[float] = []
        self.bodies: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                outer.bodies.append(json.loads(self.rfile.read(int(self.headers.get("content-length", 0)))))
                outer.requests.append(time.monotonic())
                if len(outer.requests) <= failures:
                    self.send_response(status)
                    if retry_after:
                        self.send_header("Retry-After", retry_after)
                    body = json.dumps({"error": {"message": "slow down", "type": "rate_limit"}}).encode()
                else:
                    self.send_response(200)
                    body = json.dumps(_answer("ok")).encode()
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_retry_honours_retry_after_then_succeeds(tmp_path):
    flaky = FlakyEndpoint(failures=2, retry_after="1")
    try:
        model = ModelConfig(ref=f"openai:flaky@{flaky.url}", max_retries=3, price_input=2.0, price_output=10.0)

        async def go():
            async with open_client(model, cache_path=tmp_path / "cache.db") as client:
                return await client.complete(HELLO), client.stats

        c, stats = asyncio.run(go())
        assert c.text == "ok"
        assert len(flaky.requests) == 3
        gaps = [b - a for a, b in zip(flaky.requests, flaky.requests[1:])]
        assert min(gaps) >= 0.9  # waited as the server asked
        assert c.cost_usd == pytest.approx((1000 * 2.0 + 500 * 10.0) / 1e6)
        assert stats.cost_usd == pytest.approx(c.cost_usd)
    finally:
        flaky.close()


def test_retries_exhausted_is_one_clear_error():
    flaky = FlakyEndpoint(failures=10, status=503, retry_after="0")
    try:
        model = ModelConfig(ref=f"openai:flaky@{flaky.url}", max_retries=1)

        async def go():
            async with open_client(model) as client:
                await client.complete(HELLO)

        with pytest.raises(ProtegeError, match="HTTP 503"):
            asyncio.run(go())
        assert len(flaky.requests) == 2
    finally:
        flaky.close()


def test_unreachable_endpoint_is_a_clear_error():
    model = ModelConfig(ref="openai:m@http://127.0.0.1:9/v1", max_retries=0, timeout_s=5)

    async def go():
        async with open_client(model) as client:
            await client.complete(HELLO)

    with pytest.raises(ProtegeError, match="cannot connect"):
        asyncio.run(go())


def test_missing_api_key_env_is_named(monkeypatch):
    monkeypatch.delenv("PROTEGE_TEST_KEY", raising=False)
    model = ModelConfig(ref="openai:m@https://example.invalid/v1", api_key_env="PROTEGE_TEST_KEY")
    with pytest.raises(ProtegeError, match="PROTEGE_TEST_KEY is not set"):
        open_client(model)


@pytest.mark.slow
def test_real_llama_server_completion_stream_logprobs_and_cache(student_model, tmp_path):
    cache_path = tmp_path / "cache.db"

    async def first():
        async with open_client(student_model, cache_path=cache_path) as client:
            c = await client.complete(HELLO, max_tokens=8, top_logprobs=3)
            streamed = [d async for d in client.stream(HELLO, max_tokens=8)]
            probe = await client.supports_logprobs()
            return c, streamed, probe

    c, streamed, probe = asyncio.run(first())
    assert c.text.strip() and c.completion_tokens > 0 and not c.cached
    assert c.logprobs and len(c.logprobs[0].top) == 3
    assert all(t.logprob <= 0 for t in c.logprobs)
    assert len(streamed) > 1 and "".join(streamed).strip()  # arrived in pieces
    assert probe is True

    # Stop the server: the identical request must come from the cache, with no HTTP call.
    POOL.stop(server_spec(student_model))
    cache = ResponseCache(cache_path)
    client = ChatClient(base_url="http://127.0.0.1:9/v1", model="local", api_key="x", config=student_model,
                        cache=cache, identity="embedded:smollm2-135m-instruct")  # fmt: skip

    async def again():
        async with client:
            hit = await client.complete(HELLO, max_tokens=8, top_logprobs=3)
            with pytest.raises(ProtegeError):  # a different request does need the (stopped) server
                await client.complete(HELLO, max_tokens=9)
            return hit

    hit = asyncio.run(again())
    assert hit.cached and hit.text == c.text and client.stats.cache_hits == 1
    assert [t.token for t in hit.logprobs] == [t.token for t in c.logprobs]


@pytest.mark.slow
def test_stream_reports_the_usage_the_server_counted(student_model):
    """A streamed answer's prompt and completion tokens are llama-server's own counts."""

    async def go():
        async with open_client(student_model) as client:
            stream = client.stream(HELLO, max_tokens=6)
            parts = [d async for d in stream]
            plain = await client.complete(HELLO, max_tokens=6, use_cache=False)
            return parts, stream.completion, plain

    parts, done, plain = asyncio.run(go())
    assert done is not None and done.text == "".join(parts)
    assert done.prompt_tokens == plain.prompt_tokens > 5  # the chat template's tokens included
    assert done.completion_tokens == plain.completion_tokens > 0
    assert done.finish_reason in ("stop", "length")


@pytest.mark.slow
def test_json_schema_constrains_a_small_local_model(student_model):
    """SmolLM2-135M, asked for a rubric, answers in the schema: llama-server turns it into a grammar.
    (The grammar fixes the form, not the length: max_tokens must leave room to close the object.)"""
    schema = {"type": "object", "properties": {"score": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
              "reason": {"type": "string", "maxLength": 20}}, "required": ["score", "reason"]}  # fmt: skip
    fmt = {"type": "json_schema", "json_schema": {"name": "rubric", "schema": schema}}
    ask = [{"role": "user", "content": "Rate this answer to 'What is 2+2?': '4'."}]

    async def go():
        async with open_client(student_model) as client:
            return await asyncio.gather(*(client.complete(ask, max_tokens=80, temperature=0.8, sample=i,
                                                          response_format=fmt) for i in range(4)))  # fmt: skip

    for c in asyncio.run(go()):
        data = json.loads(c.text)
        assert set(data) == {"score", "reason"} and data["score"] in range(1, 6), c.text


@pytest.mark.slow
def test_local_client_concurrency_is_the_servers_slot_count(student_model):
    async def go():
        async with open_client(student_model) as client:
            got = await asyncio.gather(*(client.complete([{"role": "user", "content": f"Say {i}."}], max_tokens=4)
                                         for i in range(12)))  # fmt: skip
            return client.concurrency, got

    concurrency, got = asyncio.run(go())
    server = next(s for s in POOL.running() if s.spec.key == server_spec(student_model).key)
    assert concurrency == server.slots == 8
    assert all(c.completion_tokens > 0 for c in got)


@pytest.mark.slow
def test_server_killed_mid_request_is_one_clean_error_then_it_recovers(student_model):
    """llama-server killed while it answers: that call fails with one readable error, and the
    next call gets a new server (the client finds the pool's live one per request)."""
    import os
    import signal

    model = student_model.model_copy(update={"n_ctx": 1280, "max_retries": 0})  # a server of its own
    long_answer = [{"role": "user", "content": "Write a long story about a bicycle."}]

    async def go():
        async with open_client(model) as client:
            server = POOL.get(server_spec(model))
            call = asyncio.create_task(client.complete(long_answer, max_tokens=400, use_cache=False))
            await asyncio.sleep(0.5)  # the answer is being generated
            os.kill(server.engine_pid, signal.SIGKILL)
            with pytest.raises(ProtegeError) as failed:
                await call
            after = await client.complete(HELLO, max_tokens=4, use_cache=False)
            return server, failed.value, after

    try:
        old, error, after = asyncio.run(go())
        assert "\n" not in str(error) and "Traceback" not in str(error)
        assert after.text.strip()
        assert POOL.get(server_spec(model)).pid != old.pid
    finally:
        POOL.stop(server_spec(model))


def test_response_format_passes_through_to_a_hosted_endpoint():
    flaky = FlakyEndpoint(failures=0)
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    try:
        model = ModelConfig(ref=f"openai:flaky@{flaky.url}")

        async def go():
            async with open_client(model) as client:
                await client.complete(HELLO, response_format=fmt)

        asyncio.run(go())
        assert flaky.bodies[0]["response_format"] == fmt
        assert "lora" not in flaky.bodies[0]  # only local servers get an adapter field
    finally:
        flaky.close()


def test_logprob_probe_asks_once_and_remembers(tmp_path):
    flaky = FlakyEndpoint(failures=0)  # answers without logprobs
    try:
        model = ModelConfig(ref=f"openai:flaky@{flaky.url}")

        async def go():
            async with open_client(model, cache_path=tmp_path / "c.db") as client:
                return [await client.supports_logprobs() for _ in range(3)]

        assert asyncio.run(go()) == [False, False, False]
        assert len(flaky.requests) == 1
        assert ResponseCache(tmp_path / "c.db").get_probe(f"openai:flaky@{flaky.url}", "logprobs") is False
    finally:
        flaky.close()


def test_temperature_samples_are_cached_apart(tmp_path):
    """With temperature > 0 the sample index is part of the key; at 0 it is not."""
    from protege.models.cache import request_key

    base = {"model": "m", "messages": HELLO, "temperature": 0.8}
    assert request_key("e", dict(base, sample=0)) != request_key("e", dict(base, sample=1))
    flaky = FlakyEndpoint(failures=0)
    try:
        model = ModelConfig(ref=f"openai:flaky@{flaky.url}")

        async def go():
            async with open_client(model, cache_path=tmp_path / "c.db") as client:
                for s in (0, 1, 0, 1):
                    await client.complete(HELLO, temperature=0.8, sample=s)
                await client.complete(HELLO, temperature=0.0, sample=5)
                await client.complete(HELLO, temperature=0.0, sample=6)
                return client.stats

        stats = asyncio.run(go())
        assert len(flaky.requests) == 3  # two samples + one greedy call
        assert stats.cache_hits == 3
    finally:
        flaky.close()
