"""Near-duplicate questions, found with MinHash LSH (datasketch) over lower-cased words."""

from __future__ import annotations

import re
from typing import Any


def _minhash(text: str, num_perm: int):
    from datasketch import MinHash

    m = MinHash(num_perm=num_perm, seed=1)
    for word in set(re.findall(r"\w+", text.lower())):
        m.update(word.encode())
    return m


def near_duplicates(texts: list[str], threshold: float, num_perm: int = 128) -> dict[int, int]:
    """Map the index of each near-duplicate to the index of the earlier text it repeats.

    Texts are visited in order, so the first of a group is kept: with inputs in a fixed order
    the result is the same on every run. A candidate from the LSH index counts only when its
    estimated Jaccard similarity really reaches `threshold` (LSH buckets are approximate).
    """
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    hashes: dict[int, Any] = {}
    duplicates: dict[int, int] = {}
    for i, text in enumerate(texts):
        m = _minhash(text, num_perm)
        matches = [int(key) for key in lsh.query(m) if hashes[int(key)].jaccard(m) >= threshold]
        if matches:
            duplicates[i] = min(matches)
            continue
        lsh.insert(str(i), m)
        hashes[i] = m
    return duplicates
