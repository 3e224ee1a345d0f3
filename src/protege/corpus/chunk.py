"""Chunking along the document's own structure, to a token budget, with overlap.

Token counts are an approximation (`approx_tokens`): words * 1.3, close enough for English with
the BPE tokenizers of the embedded models, and free, so chunking needs no tokenizer at all. Text
with few spaces (minified code, base64, a CJK page) is counted at one token per 6 UTF-8 bytes at
least, so a 4 MB string without whitespace is about 700k tokens, not 2, and is cut to the budget.

The rules, in order:
1. A document is cut into sections at markdown headings (HTML headings arrive as `#` lines).
   A post or FAQ row is a section of its own.
2. A section that fits the budget stays whole. Consecutive small sections are merged while the
   sum fits, so a page of short headings does not become a pile of tiny chunks.
3. A section over budget is cut at paragraphs, a paragraph over budget at sentences, a sentence
   over budget at words, a word over budget at characters. Every continuation repeats the section heading and the last
   `overlap` tokens of the piece before it, so a fact cut in two is still whole in one chunk.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from protege.corpus.load import Document

TOKENS_PER_WORD = 1.3
BYTES_PER_TOKEN = 6  # a floor: BPE tokens of any script hold fewer bytes than this on average
_HEADING = re.compile(r"^#{1,6}\s+\S")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _estimate(words: int, nbytes: int) -> int:
    return max(math.ceil(words * TOKENS_PER_WORD), math.ceil(nbytes / BYTES_PER_TOKEN))


def approx_tokens(text: str) -> int:
    return _estimate(len(text.split()), len(text.encode()))


def _words_for(tokens: int) -> int:
    return max(1, int(tokens / TOKENS_PER_WORD))


def _cut(word: str, limit: int) -> list[str]:
    """A word as pieces of at most `limit` UTF-8 bytes, cut between characters."""
    data = word.encode()
    if len(data) <= limit:
        return [word]
    pieces, start = [], 0
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a continuation byte: not mid-character
            end -= 1
        pieces.append(data[start:end].decode())
        start = end
    return pieces


def _word_pieces(sentence: str, budget: int) -> list[str]:
    """A sentence over budget as runs of whole words (a word over budget cut), each within budget."""
    pieces: list[str] = []
    words: list[str] = []
    nbytes = 0
    for word in sentence.split():
        for part in _cut(word, budget * BYTES_PER_TOKEN):
            size = len(part.encode()) + bool(words)
            if words and _estimate(len(words) + 1, nbytes + size) > budget:
                pieces.append(" ".join(words))
                words, nbytes, size = [], 0, size - 1
            words.append(part)
            nbytes += size
    if words:
        pieces.append(" ".join(words))
    return pieces


def _tail(text: str, overlap: int) -> str:
    """The last `overlap` tokens of a text: its last words, or its last bytes if they are one long word."""
    tail = " ".join(text.split()[-_words_for(overlap) :])
    if approx_tokens(tail) <= overlap:
        return tail
    return tail.encode()[-overlap * BYTES_PER_TOKEN :].decode(errors="ignore")


@dataclass(frozen=True)
class Chunk:
    """A piece of one source file; `id` is `<file>#<position>`, position counting from 0 per file."""

    id: str
    file: str
    position: int
    text: str

    @property
    def tokens(self) -> int:
        return approx_tokens(self.text)


@dataclass
class _Section:
    heading: str | None
    paragraphs: list[str]

    def text(self) -> str:
        return "\n\n".join(([self.heading] if self.heading else []) + self.paragraphs)


def sections_of(text: str) -> list[_Section]:
    """Markdown-ish text to sections: a heading line opens one; blank lines separate paragraphs."""
    sections = [_Section(None, [])]
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        lines = [line.rstrip() for line in block.strip("\n").split("\n")]
        paragraph: list[str] = []
        for line in lines:
            if _HEADING.match(line.strip()):
                if paragraph:
                    sections[-1].paragraphs.append("\n".join(paragraph).strip())
                    paragraph = []
                sections.append(_Section(line.strip(), []))
            elif line.strip():
                paragraph.append(line)
        if paragraph:
            sections[-1].paragraphs.append("\n".join(paragraph).strip())
    return [s for s in sections if s.heading or s.paragraphs]


def _split_to_fit(text: str, budget: int) -> list[str]:
    """Cut one paragraph at sentences, then words, into pieces of at most `budget` tokens."""
    if approx_tokens(text) <= budget:
        return [text]
    pieces: list[str] = []
    current: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        parts = [sentence] if approx_tokens(sentence) <= budget else _word_pieces(sentence, budget)
        for part in parts:
            if current and approx_tokens(" ".join(current + [part])) > budget:
                pieces.append(" ".join(current))
                current = []
            current.append(part)
    if current:
        pieces.append(" ".join(current))
    return pieces


def _split_section(section: _Section, budget: int, overlap: int) -> list[str]:
    """An oversized section as several pieces, each repeating the heading and an overlap tail."""
    head_tokens = approx_tokens(section.heading or "")
    overlap = min(overlap, budget // 4)
    room = max(8, budget - head_tokens - overlap)
    units = [piece for p in section.paragraphs for piece in _split_to_fit(p, room)]
    bodies: list[list[str]] = [[]]
    for unit in units:
        if bodies[-1] and approx_tokens("\n\n".join(bodies[-1] + [unit])) > room:
            bodies.append([])
        bodies[-1].append(unit)
    pieces = []
    previous = ""
    for body in bodies:
        tail = _tail(previous, overlap) if previous and overlap else ""
        parts = ([section.heading] if section.heading else []) + ([f"... {tail}"] if tail else []) + body
        pieces.append("\n\n".join(parts))
        previous = "\n\n".join(body)
    return pieces


def chunk_document(doc: Document, budget: int, overlap: int) -> list[Chunk]:
    sections = [_Section(None, [row]) for row in doc.rows] if doc.kind == "posts" else sections_of(doc.text)
    units: list[str] = []
    for section in sections:
        text = section.text()
        units.extend([text] if approx_tokens(text) <= budget else _split_section(section, budget, overlap))
    merged: list[str] = []
    for unit in units:
        if merged and approx_tokens(merged[-1]) + approx_tokens(unit) <= budget:
            merged[-1] = merged[-1] + "\n\n" + unit
        else:
            merged.append(unit)
    return [Chunk(f"{doc.file}#{i}", doc.file, i, text) for i, text in enumerate(merged)]
