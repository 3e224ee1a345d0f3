"""Eval held out by source chunk: no chunk ever has rows on both sides."""

from __future__ import annotations

import random

from protege.synth.split import split_by_chunk


def row(i: int, *chunks: str) -> dict:
    return {"id": f"q{i}", "source": {"chunks": list(chunks)}}


def assert_no_leak(train: list[dict], held: list[dict]) -> None:
    train_chunks = {c for r in train for c in r["source"]["chunks"]}
    eval_chunks = {c for r in held for c in r["source"]["chunks"]}
    assert not train_chunks & eval_chunks


def test_random_corpora_never_leak_and_are_deterministic() -> None:
    rng = random.Random(7)
    for trial in range(200):
        chunks = [f"f{rng.randrange(4)}.md#{k}" for k in range(rng.randrange(2, 15))]
        rows = []
        for i in range(rng.randrange(1, 60)):
            if rng.random() < 0.2:
                rows.append(row(i, *rng.sample(chunks, 2)))
            else:
                rows.append(row(i, rng.choice(chunks)))
        train, held = split_by_chunk(rows, 0.25, seed=trial)
        assert_no_leak(train, held)
        assert len(train) + len(held) == len(rows)
        assert [r["id"] for r in train + held] != [] and train  # something always trains
        assert (train, held) == split_by_chunk(list(rows), 0.25, seed=trial)


def test_size_follows_eval_fraction() -> None:
    rows = [row(i, f"c{i % 20}") for i in range(200)]
    _, held = split_by_chunk(rows, 0.2, seed=0)
    assert len(held) == 40  # 4 of 20 chunks, 10 rows each
    assert split_by_chunk(rows, 0.2, seed=0)[1] != split_by_chunk(rows, 0.2, seed=1)[1]


def test_multi_hop_across_the_boundary_pulls_its_chunks_into_train() -> None:
    rows = [row(0, "a"), row(1, "b"), row(2, "c"), row(3, "a", "b"), row(4, "c"), row(5, "d")]
    for seed in range(30):
        train, held = split_by_chunk(rows, 0.5, seed=seed)
        assert_no_leak(train, held)
        multi = rows[3]
        assert multi in train or {"a", "b"} <= {c for r in held for c in r["source"]["chunks"]}


def test_no_eval_when_fraction_zero_or_one_chunk() -> None:
    rows = [row(0, "a"), row(1, "a")]
    assert split_by_chunk(rows, 0.5, seed=0) == (rows, [])
    assert split_by_chunk([row(0, "a"), row(1, "b")], 0.0, seed=0)[1] == []
