"""The judge's retry path against a real HTTP endpoint that answers like a sloppy small judge."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from protege.config import ModelConfig
from protege.evaluate import prompts
from protege.evaluate.judge import RUBRIC_SCHEMA, ask, pairwise, parse_score
from protege.models.cache import ResponseCache
from protege.models.client import ChatClient


class SloppyJudge(BaseHTTPRequestHandler):
    """OpenAI chat completions; the reply depends on the prompt, as scripted by the test."""

    script: dict[str, str] = {}
    requests: list[list[dict]] = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(body["messages"])
        last = body["messages"][-1]["content"]
        reply = next((r for key, r in self.script.items() if key in last), "no idea")
        payload = {"id": "x", "object": "chat.completion", "created": 0, "model": "judge",
                   "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": reply}}],
                   "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}  # fmt: skip
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def judge_endpoint(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), SloppyJudge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    SloppyJudge.requests = []
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"

    def client() -> ChatClient:
        cfg = ModelConfig(ref=f"openai:judge@{url}", max_retries=0)
        return ChatClient(base_url=url, model="judge", api_key="sk-test", config=cfg, cache=ResponseCache(tmp_path / "cache.db"))

    yield client
    server.shutdown()


ROW = {"question": "When do you open?", "reference": "9:00.", "type": "factual", "source": {"text": "Opens 9:00."},
       "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "When do you open?"}]}  # fmt: skip


def test_a_malformed_reply_is_retried_once_as_a_follow_up(judge_endpoint):
    retry_marker = prompts.RETRY.split("(")[0]
    SloppyJudge.script = {retry_marker: '{"score": 6, "reason": "ok"}', "CANDIDATE": "I would give it a good grade."}

    async def go():
        async with judge_endpoint() as c:
            return await ask(c, [{"role": "user", "content": "CANDIDATE ANSWER: x"}], parse_score, RUBRIC_SCHEMA)

    j = asyncio.run(go())
    assert j.value == 6
    assert len(j.errors) == 1 and "attempt 1" in j.errors[0]
    retry = SloppyJudge.requests[-1]
    assert [m["role"] for m in retry] == ["user", "assistant", "user"]
    assert retry[1]["content"] == "I would give it a good grade."
    # A re-run is served from the cache: no new request reaches the endpoint.
    before = len(SloppyJudge.requests)
    assert asyncio.run(go()).value == 6 and len(SloppyJudge.requests) == before


def test_a_judge_that_fails_twice_gives_none_with_both_errors(judge_endpoint):
    SloppyJudge.script = {"": "```json\n{score: seven}\n```"}

    async def go():
        async with judge_endpoint() as c:
            return await ask(c, [{"role": "user", "content": "grade this"}], parse_score, RUBRIC_SCHEMA)

    j = asyncio.run(go())
    assert j.value is None and len(j.errors) == 2
    assert len(SloppyJudge.requests) == 2


def test_a_judge_endpoint_that_is_down_is_an_error_not_a_crash(judge_endpoint):
    async def go():
        cfg = ModelConfig(ref="openai:judge@http://127.0.0.1:9/v1", max_retries=0, timeout_s=2)
        async with ChatClient(base_url="http://127.0.0.1:9/v1", model="judge", api_key="k", config=cfg) as c:
            return await ask(c, [{"role": "user", "content": "grade"}], parse_score, RUBRIC_SCHEMA)

    j = asyncio.run(go())
    assert j.value is None and "judge call failed" in j.errors[0]


def test_pairwise_asks_both_orders_and_reconciles(judge_endpoint):
    # A judge that always prefers the first answer: its two verdicts contradict each other.
    SloppyJudge.script = {"": '{"winner": "A"}'}

    async def go():
        async with judge_endpoint() as c:
            return await pairwise(c, ROW, "student text", "teacher text")

    orders, j = asyncio.run(go())
    assert orders == ["win", "loss"] and j.value is None and not j.errors
    firsts = [m[-1]["content"] for m in SloppyJudge.requests]
    assert firsts[0].index("student text") < firsts[0].index("teacher text")
    assert firsts[1].index("teacher text") < firsts[1].index("student text")
