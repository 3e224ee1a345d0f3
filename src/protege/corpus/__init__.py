"""The owner's documents as chunks: what synth writes questions about and the gateway retrieves.

    corpus = load_corpus(project)      # chunks + the files that could not be read, and why
    chunks = load_chunks(project)      # just the chunks (raises on an empty corpus)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from protege.corpus.chunk import Chunk, approx_tokens, chunk_document
from protege.corpus.load import Document, Skipped, load_documents
from protege.errors import ProtegeError

if TYPE_CHECKING:
    from protege.project import Project

__all__ = ["Chunk", "Corpus", "Document", "Skipped", "approx_tokens", "load_chunks", "load_corpus"]


@dataclass
class Corpus:
    documents: list[Document]
    chunks: list[Chunk]
    skipped: list[Skipped]
    notes: list[str]

    @property
    def posts(self) -> list[str]:
        """Rows of .jsonl/.csv documents: a creator's posts, when there are any (the voice flow)."""
        return [row for d in self.documents if d.kind == "posts" for row in d.rows]


def load_corpus(project: "Project") -> Corpus:
    """Read and chunk the project's docs folder; an empty corpus is an error naming the folder."""
    synth = project.config.synth
    docs_dir = project.docs_dir
    loaded = load_documents(docs_dir, synth.text_field)
    chunks = [c for d in loaded.documents for c in chunk_document(d, synth.chunk_tokens, synth.chunk_overlap)]
    if not chunks:
        detail = "; ".join(f"{s.file}: {s.reason}" for s in loaded.skipped[:5])
        raise ProtegeError(
            f"{docs_dir}: no usable documents" + (f" ({len(loaded.skipped)} skipped: {detail})" if detail else " (folder is empty)"),
            hint="add .md, .txt, .html, .pdf, .csv or .jsonl files",
        )
    return Corpus(loaded.documents, chunks, loaded.skipped, loaded.notes)


def load_chunks(project: "Project") -> list[Chunk]:
    return load_corpus(project).chunks
