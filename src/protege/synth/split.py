"""Holding out eval BY SOURCE CHUNK, so no eval question is about a chunk the student trained on."""

from __future__ import annotations

import random
from typing import Any

Row = dict[str, Any]


def row_chunks(row: Row) -> list[str]:
    return list(row["source"]["chunks"])


def split_by_chunk(rows: list[Row], eval_fraction: float, seed: int) -> tuple[list[Row], list[Row]]:
    """(train, eval), each in the input order. Deterministic for a seed.

    Chunks are drawn in a seeded order into the eval set until their single-chunk rows reach
    `eval_fraction` of all rows. A row whose chunks are not all eval chunks (a multi-hop row
    across the boundary) goes to train, and its chunks become train chunks; this is repeated
    until nothing moves, so afterwards no chunk has rows on both sides. At least one chunk
    stays in train.
    """
    chunk_ids = sorted({c for row in rows for c in row_chunks(row)})
    if eval_fraction <= 0 or len(chunk_ids) < 2:
        return list(rows), []
    random.Random(seed).shuffle(chunk_ids)
    singles: dict[str, int] = {}
    for row in rows:
        if len(row_chunks(row)) == 1:
            singles[row_chunks(row)[0]] = singles.get(row_chunks(row)[0], 0) + 1
    target = eval_fraction * len(rows)
    eval_chunks: set[str] = set()
    counted = 0
    for chunk in chunk_ids[:-1]:
        if counted >= target:
            break
        eval_chunks.add(chunk)
        counted += singles.get(chunk, 0)
    moved = True
    while moved:
        moved = False
        for row in rows:
            chunks = set(row_chunks(row))
            if chunks & eval_chunks and not chunks <= eval_chunks:
                eval_chunks -= chunks
                moved = True
    train = [r for r in rows if not set(row_chunks(r)) <= eval_chunks]
    held_out = [r for r in rows if set(row_chunks(r)) <= eval_chunks]
    return train, held_out
