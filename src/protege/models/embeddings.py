"""Sentence embeddings with the embedded MiniLM (retrieval, dedup, routing).

Loaded once per process; vectors are L2-normalized so a dot product is the cosine similarity.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

EMBEDDING_MODEL = "minilm-l6-v2"


@lru_cache(maxsize=1)
def _model():
    import torch
    from sentence_transformers import SentenceTransformer

    from protege.models.embedded import get

    torch.set_num_threads(max(1, torch.get_num_threads()))
    return SentenceTransformer(str(get(EMBEDDING_MODEL).path()), device="cpu")


def encode(texts: list[str], batch_size: int = 32) -> "np.ndarray":
    """float32 array of shape (len(texts), 384), rows L2-normalized."""
    import numpy as np

    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    vecs = _model().encode(list(texts), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vecs, dtype=np.float32)
