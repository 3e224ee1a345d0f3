"""Holding out eval BY SOURCE CHUNK, so no eval question is about a chunk the student trained on."""

from __future__ import annotations

import random
from typing import Any

Row = dict[str, Any]


def row_chunks(row: Row) -> list[str]:
    return list(row["source"]["chunks"])


def _components(rows: list[Row]) -> list[list[str]]:
    """Chunks joined by multi-hop rows (union-find), each group sorted, groups sorted."""
    parent: dict[str, str] = {}

    def root(c: str) -> str:
        while parent.setdefault(c, c) != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for row in rows:
        first, *rest = row_chunks(row)
        for other in rest:
            parent[root(other)] = root(first)
    groups: dict[str, list[str]] = {}
    for c in sorted({c for row in rows for c in row_chunks(row)}):
        groups.setdefault(root(c), []).append(c)
    return sorted(groups.values())


def split_by_chunk(rows: list[Row], eval_fraction: float, seed: int) -> tuple[list[Row], list[Row]]:
    """(train, eval), each in the input order. Deterministic for a seed.

    A multi-hop row may go to eval only if all its chunks are eval chunks, else it trains and
    its chunks are train chunks. So chunks joined by multi-hop rows move together: the groups
    are drawn in a seeded order into eval until eval holds `eval_fraction` of the rows. A group
    larger than 1.5 times that target stays in train (one big web of multi-hop questions must
    not swallow the eval set) unless every group is that large, then the smallest is held out;
    at least one group always stays in train.
    """
    groups = _components(rows)
    if eval_fraction <= 0 or len(groups) < 2:
        return list(rows), []
    random.Random(seed).shuffle(groups)
    size = dict.fromkeys(map(tuple, groups), 0)
    group_of = {c: tuple(g) for g in groups for c in g}
    for row in rows:
        size[group_of[row_chunks(row)[0]]] += 1
    target = eval_fraction * len(rows)
    eval_chunks: set[str] = set()
    held = 0
    for group in map(tuple, groups):
        if held >= target:
            break
        if size[group] > max(1.5 * target, 1) or len(eval_chunks) + len(group) == len(group_of):
            continue
        eval_chunks.update(group)
        held += size[group]
    if not eval_chunks:  # every group is big (a tiny corpus): the smallest one still gives an eval set
        smallest: tuple[str, ...] = min(size, key=lambda g: size[g])
        eval_chunks.update(smallest)
    train = [r for r in rows if not set(row_chunks(r)) <= eval_chunks]
    held_out = [r for r in rows if set(row_chunks(r)) <= eval_chunks]
    return train, held_out
