"""Reading the owner's documents: .md .txt .html .pdf, and .csv/.jsonl with one post or FAQ entry a row.

A file that cannot be read is never dropped silently: it is returned as `Skipped` with the reason,
and the synth card lists it. Rows that cannot be read inside an otherwise good file are counted
in a note for the same reason.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Literal

TEXT_SUFFIXES = {".md", ".markdown", ".txt", ".html", ".htm", ".pdf"}
ROW_SUFFIXES = {".csv", ".jsonl"}
SUPPORTED = TEXT_SUFFIXES | ROW_SUFFIXES


@dataclass
class Document:
    """One readable file. `kind="posts"` holds rows (posts or FAQ entries); else markdown-ish text."""

    file: str  # path relative to the docs folder, with forward slashes
    kind: Literal["text", "posts"]
    text: str = ""
    rows: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Skipped:
    file: str
    reason: str


class Unreadable(Exception):
    """A file protege cannot use; the message is the reason shown to the owner."""


class _HTMLText(HTMLParser):
    """HTML to markdown-ish text: headings become `#` lines and block elements paragraph breaks,
    so the chunker can cut an HTML page along its structure like a markdown one."""

    BLOCKS = {"p", "div", "section", "article", "li", "tr", "table", "ul", "ol", "br", "pre", "blockquote", "header", "footer"}
    SKIP = {"script", "style", "head", "noscript", "template", "svg"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:  # noqa: ARG002
        if tag in self.SKIP:
            self.skip_depth += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self.parts.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")
        elif tag in ("td", "th"):
            self.parts.append(" | ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif re.fullmatch(r"h[1-6]", tag) or tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.parts.append(re.sub(r"\s+", " ", data))

    def text(self) -> str:
        joined = "".join(self.parts)
        paragraphs = [re.sub(r" +", " ", p).strip() for p in re.split(r"\n\s*\n", joined)]
        return "\n\n".join(p for p in paragraphs if p)


def _read_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise Unreadable("not UTF-8 text") from None
    if "\x00" in text:  # valid UTF-8, yet no text file holds NUL bytes
        raise Unreadable("binary file (NUL bytes), not text")
    return text


def _read_pdf(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            raise Unreadable("encrypted PDF")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise Unreadable(f"not a readable PDF ({type(exc).__name__}: {str(exc)[:80]})") from None
    text = "\n\n".join(p for p in pages if p)
    if not text.strip():
        raise Unreadable("no extractable text (a scanned PDF needs OCR first)")
    return text


# A row file's rows: the texts, and (line number, problem) for each row that could not be used.
Rows = tuple[list[str], list[tuple[int, str]]]


def _rows_jsonl(path: Path, text_field: str) -> Rows:
    rows, bad = [], []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            bad.append((number, "not JSON"))
            continue
        value = obj.get(text_field) if isinstance(obj, dict) else None
        if isinstance(value, str) and value.strip():
            rows.append(value.strip())
        else:
            bad.append((number, f"no '{text_field}'"))
    return rows, bad


def _rows_csv(path: Path, text_field: str) -> Rows:
    reader = csv.DictReader(_read_text(path).splitlines())
    if reader.fieldnames is None or text_field not in reader.fieldnames:
        raise Unreadable(f"no '{text_field}' column (name the text column in synth.text_field)")
    rows, bad = [], []
    for record in reader:
        value = record.get(text_field)
        if isinstance(value, str) and value.strip():
            rows.append(value.strip())
        else:
            bad.append((reader.line_num, f"no '{text_field}'"))
    return rows, bad


def _bad_rows_note(name: str, text_field: str, n_rows: int, bad: list[tuple[int, str]], shown: int = 5) -> str:
    lines = [f"line {number}: {problem}" for number, problem in bad[:shown]]
    if len(bad) > shown:
        lines.append(f"+{len(bad) - shown} more")
    return f"{name}: {len(bad)} of {len(bad) + n_rows} rows unreadable or without '{text_field}' ({'; '.join(lines)})"


def read_document(path: Path, name: str, text_field: str) -> tuple[Document, str | None]:
    """Read one file; returns the document and a note about unreadable rows, or raises Unreadable."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise Unreadable(f"unsupported file type '{suffix or path.name}' (use {', '.join(sorted(SUPPORTED))})")
    if suffix in ROW_SUFFIXES:
        rows, bad = (_rows_jsonl if suffix == ".jsonl" else _rows_csv)(path, text_field)
        if not rows:
            raise Unreadable(f"no row with a non-empty '{text_field}' field (name it in synth.text_field)")
        note = _bad_rows_note(name, text_field, len(rows), bad) if bad else None
        return Document(name, "posts", rows=rows), note
    if suffix == ".pdf":
        text = _read_pdf(path)
    elif suffix in (".html", ".htm"):
        parser = _HTMLText()
        parser.feed(_read_text(path))
        text = parser.text()
    else:
        text = _read_text(path)
    if not text.strip():
        raise Unreadable("empty file")
    return Document(name, "text", text=text), None


@dataclass
class Loaded:
    documents: list[Document]
    skipped: list[Skipped]
    notes: list[str]


def load_documents(docs_dir: Path, text_field: str = "text") -> Loaded:
    """Every file under docs_dir in path order; dotfiles (.gitkeep, .DS_Store) are not documents."""
    documents, skipped, notes = [], [], []
    files = sorted(
        p for p in docs_dir.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(docs_dir).parts)
    )  # fmt: skip
    for path in files:
        name = path.relative_to(docs_dir).as_posix()
        try:
            doc, note = read_document(path, name, text_field)
        except Unreadable as exc:
            skipped.append(Skipped(name, str(exc)))
            continue
        except OSError as exc:
            skipped.append(Skipped(name, f"cannot read ({exc.strerror or exc})"))
            continue
        documents.append(doc)
        if note:
            notes.append(note)
    return Loaded(documents, skipped, notes)
