"""The whole synth pipeline against a canned OpenAI-compatible endpoint (fast, deterministic):
files in the documented format, every number on the card, dry-run calling nothing, re-runs free."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from protege.cli import app
from protege.config import QUESTION_TYPES
from protege.project import Project
from protege.synth import prompts, run

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
import canned_endpoint  # noqa: E402


def configure(project_dir: Path, url: str, **synth) -> Project:
    cfg = project_dir / "protege.yaml"
    data = yaml.safe_load(cfg.read_text())
    data["teacher"] = {"ref": f"openai:canned@{url}", "max_retries": 0, "price_input": 2.0, "price_output": 6.0}
    data["synth"] = {"questions_per_chunk": 3, "seed": 1, **synth}
    cfg.write_text(yaml.safe_dump(data))
    docs = project_dir / "docs"
    (docs / "contact.md").write_text("# Contact\n\nEmail dee@riverbend-bikes.com or call the shop for help.\n")
    (docs / "rentals.md").write_text("# Rentals\n\nA city bike rents for $20 a day; e-bikes are $45.\n")
    (docs / "broken.txt").write_bytes(b"\xff\xfe\x00 not utf-8")
    return Project.load(project_dir)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_raft_moa_logprobs_run_writes_the_documented_format(project_dir: Path, endpoint) -> None:
    server, url = endpoint
    project = configure(
        project_dir, url, format="raft", raft_distractors=1, logprobs=2, eval_fraction=0.3,
        proposers=[{"ref": f"openai:canned@{url}", "max_retries": 0}],
        type_mix={t: 1.0 for t in QUESTION_TYPES},
    )  # fmt: skip
    result = run(project)
    train, held = read_jsonl(result.train), read_jsonl(result.eval)
    # Training's excerpt-less copies (synth/declines.py) are checked in their own test.
    copies = [r for r in train if "excerptless_copy_of" in r["meta"]]
    rows = [r for r in train if r not in copies] + held
    assert result.counts["kept"] == len(rows) > 0 and result.counts["train"] == len(train) and held
    assert result.counts["excerptless_copies"] == len(copies)
    assert result.counts["files"] == 4 and result.counts["skipped"] == 1 and result.counts["chunks"] == 4

    for r in rows:
        assert re.fullmatch(r"q-[0-9a-f]{10}", r["id"]) and r["type"] in QUESTION_TYPES
        assert [m["role"] for m in r["messages"]] == ["system", "user", "assistant"]
        assert r["messages"][0]["content"].startswith("You are the assistant of proj")
        assert r["messages"][1]["content"].startswith("Context:") and "Question:" in r["messages"][1]["content"]
        assert len(r["source"]["chunks"]) == (2 if r["type"] == "multi-hop" else 1)
        assert r["source"]["files"] == list(dict.fromkeys(c.split("#")[0] for c in r["source"]["chunks"]))
        oracle = [c["chunk"] for c in r["context"] if c["oracle"]]
        assert oracle in ([], r["source"]["chunks"]) or sorted(oracle) == sorted(r["source"]["chunks"])
        assert r["teacher"]["proposers"] == [f"openai:canned@{url}"]
        lp = r["teacher"]["logprobs"]
        if "[EMAIL]" in r["messages"][2]["content"]:
            assert lp is None  # redaction changed the answer the logprobs were for
        else:
            assert lp and set(lp[0]) == {"token", "logprob", "bytes", "top"} and len(lp[0]["top"]) == 2
        assert r["scores"] == {"groundedness": 8, "helpfulness": 7, "judge": f"openai:canned@{url}"}
        # The canned teacher lists the start of the source's last line and an invented "open 24/7" as key facts.
        declines = r["type"] in ("out-of-scope", "unsafe") or not oracle
        assert (r["key_facts"] == []) if declines else ("open 24/7" not in r["key_facts"])
        assert r["guard"]["safe"] is True
        assert r["meta"]["format"] == "raft" and r["meta"]["code_version"] and len(r["meta"]["config_hash"]) == 12
        assert "@mail.example" not in json.dumps(r["messages"])  # customers' PII redacted by the guard
        assert "[EMAIL]" in r["messages"][1]["content"]
    assert not {c for r in train for c in r["source"]["chunks"]} & {c for r in held for c in r["source"]["chunks"]}
    assert sum(r["guard"]["redactions"] for r in rows) > 0
    # The shop's own published address is a fact the agent must be able to give: never redacted.
    assert any("dee@riverbend-bikes.com" in json.dumps(r["messages"]) for r in rows)
    assert any(r["teacher"]["logprobs"] for r in rows)
    assert any(r["key_facts"] for r in rows)

    card = result.card.read_text()
    for needle in ("| files read | 4 |", "| files skipped | 1 |", "`broken.txt`: not UTF-8 text", "| chunks | 4 |",
                   "| questions planned | 12 |", "| kept after judge |", "## Type mix", "| multi-hop |",
                   "| teacher | `openai:canned@", "| proposer 1 |", "prompt tokens", "Logprobs: top-2 stored",
                   "**WARNING** teacher", "licence unknown", rows[0]["meta"]["config_hash"], "random examples",
                   "PII redactions in kept pairs", "## Groundedness and key facts", "| after groundedness check |"):  # fmt: skip
        assert needle in card, needle
    assert re.search(r"in \d+\.\d s\.", card)
    assert card.count("> **Q:**") == min(10, len(rows))


def test_rerun_is_free_and_identical_and_dry_run_calls_nothing(project_dir: Path, endpoint) -> None:
    server, url = endpoint
    project = configure(project_dir, url, type_mix={"factual": 1, "how-to": 1, "unsafe": 1})
    first = run(project)
    files = {p: p.read_bytes() for p in (first.train, first.eval, first.dropped)}
    served = server.RequestHandlerClass.served
    assert served > 0

    second = run(project)
    assert server.RequestHandlerClass.served == served  # all from artifacts/cache.db
    assert {p: p.read_bytes() for p in files} == files
    assert "| teacher | `openai:canned@" in second.card.read_text()

    out = CliRunner().invoke(app, ["synth", str(project_dir), "--dry-run"])
    assert out.exit_code == 0, out.output
    assert "questions" in out.output and "judge" in out.output and "total" in out.output
    assert "12 question(s) planned" in " ".join(out.output.split())
    assert server.RequestHandlerClass.served == served


def test_duplicates_and_judge_failures_are_dropped_with_reasons(project_dir: Path) -> None:
    server, url = canned_endpoint.start(malformed_judge=True)
    try:
        # the canned questions share half their words: a low dedup threshold must catch some
        project = configure(project_dir, url, questions_per_chunk=12, type_mix={"factual": 1}, judge_threshold=7.5,
                            dedup_threshold=0.45)  # fmt: skip
        result = run(project)
    finally:
        server.shutdown()
    dropped = read_jsonl(result.dropped)
    reasons = {d["reason"] for d in dropped}
    assert reasons == {"judge: below threshold", "near-duplicate question"}  # helpfulness 7 < 7.5
    assert all(d["detail"] for d in dropped)
    card = result.card.read_text()
    assert "- judge: below threshold:" in card and "re-asked" in card
    assert result.counts["kept"] == 0 and result.counts["dropped"] == len(dropped) == 48


@pytest.mark.parametrize("qtype", ["factual", "out-of-scope", "unsafe"])
def test_bare_refusals_are_dropped(project_dir: Path, qtype: str) -> None:
    """A few "I can't assist with that" rows teach a small student to refuse real customers. To an
    "unsafe" question it stays only if the guard finds the question unsafe (none is configured here)."""
    server, url = canned_endpoint.start(refusing=True)
    try:
        project = configure(project_dir, url, questions_per_chunk=6, type_mix={qtype: 1})
        result = run(project)
    finally:
        server.shutdown()
    refused = [d for d in read_jsonl(result.dropped) if d["reason"] == "bare refusal (no answer, no hand-off)"]
    kept = read_jsonl(result.train) + read_jsonl(result.eval)
    assert refused and kept  # the canned teacher refuses about a third of its answers
    assert all(d["detail"].startswith(canned_endpoint.REFUSAL) for d in refused)
    if qtype == "unsafe":
        assert all("the guard finds the question safe" in d["detail"] for d in refused)
    assert not [r for r in kept if r["messages"][-1]["content"] == canned_endpoint.REFUSAL]
    card = " ".join(result.card.read_text().split())
    assert f"- bare refusal (no answer, no hand-off): {len(refused)}" in card
    answered = int(re.search(r"\| answered \| (\d+) \|", card).group(1))
    unique = int(re.search(r"\| after near-duplicate removal \| (\d+) \|", card).group(1))
    assert answered == unique - len(refused)


def test_invented_facts_are_dropped_by_the_groundedness_check_even_when_the_judge_keeps_them(project_dir: Path) -> None:
    server, url = canned_endpoint.start(inventing=True)
    try:
        project = configure(project_dir, url, questions_per_chunk=6, type_mix={"factual": 1})
        result = run(project)
    finally:
        server.shutdown()
    kept = read_jsonl(result.train) + read_jsonl(result.eval)
    ungrounded = [d for d in read_jsonl(result.dropped) if d["reason"] == "groundedness: numbers not in the source"]
    assert ungrounded and kept  # the canned teacher invents a price in about a third of its answers
    assert all(canned_endpoint.INVENTED in d["answer"] and d["detail"] == "999" for d in ungrounded)
    assert all(d["scores"] == {"groundedness": 8, "helpfulness": 7} for d in ungrounded)  # the judge passed them
    assert all(d["grounding"]["unsupported_numbers"] == ["999"] for d in ungrounded)
    assert not [r for r in kept if canned_endpoint.INVENTED in r["messages"][-1]["content"]]
    card = " ".join(result.card.read_text().split())
    n = len(ungrounded)
    assert f"It dropped **{n}** pair(s); the judge alone would have kept **{n}** of them." in card
    assert f"- groundedness: numbers not in the source: {n}" in card
    # Key facts: the start of the source's last line, as the teacher listed it and its answer states it (not the
    # invented "open 24/7"; none from contact.md, whose line starts with an e-mail address, no short fact).
    with_facts = [r for r in kept if r["key_facts"]]
    assert len(with_facts) >= len(kept) / 2 and {r["source"]["chunks"][0] for r in kept if not r["key_facts"]} <= {"contact.md#0"}
    assert all(f in r["messages"][-1]["content"] and f != "open 24/7" for r in with_facts for f in r["key_facts"])


def test_without_the_judge_no_judge_call_is_made_and_the_check_still_drops(project_dir: Path) -> None:
    server, url = canned_endpoint.start(inventing=True)
    try:
        project = configure(project_dir, url, questions_per_chunk=3, type_mix={"factual": 1}, judge=False)
        result = run(project)
    finally:
        server.shutdown()
    kept = read_jsonl(result.train) + read_jsonl(result.eval)
    assert kept and all(r["scores"] is None for r in kept)
    assert {d["reason"] for d in read_jsonl(result.dropped)} == {"groundedness: numbers not in the source"}
    judge = next(u for u in result.usage if u["role"] == "judge")
    assert judge["calls"] == 0
    card = " ".join(result.card.read_text().split())
    assert "Judge: off (synth.judge)." in card and "(no judge ran: synth.judge is off)" in card and "not judged)" in card
    assert "| kept (no judge: synth.judge is off) |" in card


def test_an_excerpt_less_raft_question_the_teacher_answers_gets_the_decline_instead(project_dir: Path) -> None:
    """RAFT rows whose excerpts lack the answer teach the student to decline; when the teacher
    answers one anyway, the row keeps the decline it should have had (no teacher tokens: KD skips
    it) instead of being dropped, and the teacher's answer stays on record."""
    server, url = canned_endpoint.start(guessing=True)
    try:
        project = configure(project_dir, url, format="raft", raft_distractors=1, raft_oracle_fraction=0.5, logprobs=2,
                            questions_per_chunk=4, type_mix={"factual": 1})  # fmt: skip
        result = run(project)
    finally:
        server.shutdown()
    rows = read_jsonl(result.train) + read_jsonl(result.eval)
    excerpt_less = [r for r in rows if not any(c["oracle"] for c in r["context"]) and "excerptless_copy_of" not in r["meta"]]
    answered = [r for r in rows if any(c["oracle"] for c in r["context"])]
    assert excerpt_less and answered
    decline = prompts.NO_EXCERPT_DECLINE.format(name="proj")
    for r in excerpt_less:
        assert r["messages"][-1]["content"] == decline and r["teacher"]["logprobs"] is None
        assert r["meta"]["declined_for_the_teacher"] == canned_endpoint.GUESS and r["key_facts"] == []
    assert all(r["messages"][-1]["content"] != decline and "declined_for_the_teacher" not in r["meta"] for r in answered)
    assert not [d for d in read_jsonl(result.dropped) if d["reason"] == "groundedness: answers instead of declining"]
    card = " ".join(result.card.read_text().split())
    assert f"In **{len(excerpt_less)}** kept RAFT row(s) none of the excerpts answers the question" in card


def test_training_gets_raft_s_share_of_excerpt_less_declines_and_eval_none_added(project_dir: Path) -> None:
    """After the split, copies of answered training rows with their excerpts removed bring the
    training set's excerpt-less share up to 1 - raft_oracle_fraction; eval keeps what RAFT drew."""
    server, url = canned_endpoint.start(guessing=True)
    try:
        project = configure(project_dir, url, format="raft", raft_distractors=1, raft_oracle_fraction=0.9,
                            questions_per_chunk=4, type_mix={"factual": 1}, logprobs=2)  # fmt: skip
        result = run(project)
    finally:
        server.shutdown()
    train, held_out = read_jsonl(result.train), read_jsonl(result.eval)
    copies = [r for r in train if "excerptless_copy_of" in r["meta"]]
    assert copies and not [r for r in held_out if "excerptless_copy_of" in r["meta"]]
    assert sum(1 for r in train if not any(c["oracle"] for c in r["context"])) >= 0.1 * len(train)
    sources = {r["id"]: r for r in train}
    decline = prompts.NO_EXCERPT_DECLINE.format(name="proj")
    for c in copies:
        assert c["meta"]["excerptless_copy_of"] in sources and c["messages"][-1]["content"] == decline
        assert not any(x["oracle"] for x in c["context"]) and c["teacher"]["logprobs"] is None
    assert result.counts["excerptless_copies"] == len(copies)
    card = " ".join(result.card.read_text().split())
    assert f"| training rows added: excerpts removed, answer declines | {len(copies)} |" in card

    # synth.raft_train_declines sets another share: more copies, the same eval
    server, url = canned_endpoint.start(guessing=True)
    try:
        project = configure(project_dir, url, format="raft", raft_distractors=1, raft_oracle_fraction=0.9, raft_train_declines=0.5,
                            questions_per_chunk=4, type_mix={"factual": 1}, logprobs=2)  # fmt: skip
        more = run(project)
    finally:
        server.shutdown()
    train2 = read_jsonl(more.train)
    assert more.counts["excerptless_copies"] > len(copies)
    assert [(r["id"], r["messages"]) for r in read_jsonl(more.eval)] == [(r["id"], r["messages"]) for r in held_out]
    assert sum(1 for r in train2 if not any(c["oracle"] for c in r["context"])) >= 0.5 * len(train2)
