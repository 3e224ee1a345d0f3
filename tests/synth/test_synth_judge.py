"""Judge answers as small local models really write them, and the one retry on a malformed one."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from protege.config import ModelConfig
from protege.models.endpoint import open_client
from protege.synth.judge import judge_pair, parse_scores

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
import canned_endpoint  # noqa: E402


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"groundedness": 9, "helpfulness": 8, "reason": "ok"}', (9, 8, "ok")),
        ('Here you go:\n```json\n{"groundedness": 7, "helpfulness": 6, "reason": "fine"}\n```\nHope it helps!', (7, 6, "fine")),
        ("{'groundedness': 5, 'helpfulness': 10, 'reason': 'single quotes'}", (5, 10, "single quotes")),
        ('{"Groundedness": "8/10", "Helpfulness": "9 out of 10"}', (8, 9, "")),
        ('{"scores": {"x": 1}} then {"groundedness": 4.5, "helpfulness": 3}', (4.5, 3, "")),
        ("Groundedness: 6\nHelpfulness: 7\nReason: the price is right", (6, 7, "the price is right")),
        ('```\n{"groundedness": 8, "helpfulness": 8, "reason": "trailing comma",}\n```\n**groundedness**: 8, **helpfulness**: 8', (8, 8, "trailing comma")),
    ],
)
def test_parse_scores_accepts_what_local_judges_write(reply: str, expected: tuple) -> None:
    assert parse_scores(reply) == expected


@pytest.mark.parametrize(
    "reply",
    ["The answer is good.", '{"groundedness": 11, "helpfulness": 5}', '{"groundedness": true, "helpfulness": 5}',
     '{"helpfulness": 5}', "", "```json\n{\"groundedness\": \n```"],  # fmt: skip
)
def test_parse_scores_rejects_what_holds_no_valid_scores(reply: str) -> None:
    assert parse_scores(reply) is None


def judge_once(tmp_path: Path, malformed: bool):
    server, url = canned_endpoint.start(malformed_judge=malformed)

    async def go():
        async with open_client(ModelConfig(ref=f"openai:canned@{url}", max_retries=0), cache_path=tmp_path / "c.db") as client:
            return await judge_pair(client, reference="Tune-up: $79.", qtype="factual", question="How much?", answer="$79."), client.stats.calls

    try:
        return asyncio.run(go()), server.RequestHandlerClass.served
    finally:
        server.shutdown()


def test_malformed_judge_answer_is_asked_again_once(tmp_path: Path) -> None:
    (verdict, calls), served = judge_once(tmp_path, malformed=True)
    assert verdict.parsed and (verdict.groundedness, verdict.helpfulness) == (8, 7)
    assert verdict.attempts == 2 and calls == 2 and served == 2


def test_wellformed_judge_answer_needs_one_call(tmp_path: Path) -> None:
    (verdict, calls), served = judge_once(tmp_path, malformed=False)
    assert verdict.attempts == 1 and calls == 1 and served == 1
    assert verdict.reason == "supported by the reference"
