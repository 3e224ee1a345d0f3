"""Reading every supported format, and reporting (never hiding) what cannot be read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protege.corpus import load_chunks, load_corpus
from protege.corpus.load import load_documents
from protege.errors import ProtegeError
from protege.project import Project


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with one line of text, built by hand (no PDF writer library needed)."""
    stream = f"BT /F1 12 Tf 20 50 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 100] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    (d / "sub").mkdir(parents=True)
    (d / "guide.md").write_text("# Guide\n\nThe shop opens at nine.\n\n## Returns\n\nReturns within 30 days.\n")
    (d / "notes.txt").write_text("Plain notes about tyres.\n")
    (d / "sub" / "page.html").write_text(
        "<html><head><style>p{color:red}</style><script>var x=1;</script></head>"
        "<body><h1>Rentals</h1><p>Bikes rent for &pound;20 a day.</p><ul><li>Helmets included</li></ul></body></html>"
    )
    (d / "manual.pdf").write_bytes(minimal_pdf("The warranty lasts seven years."))
    (d / "posts.jsonl").write_text(
        "\n".join([json.dumps({"text": "Low and slow, friends."}), "{broken json", json.dumps({"body": "no text field"}),
                   json.dumps({"text": "Pantry math again."})])  # fmt: skip
    )
    (d / "faq.csv").write_text('question,answer\n"Do you ship?","Yes"\n')
    (d / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (d / "scan.pdf").write_bytes(b"%PDF-1.4 garbage that is not a pdf")
    (d / "photo.png").write_bytes(b"\x89PNG\r\n")
    (d / "empty.md").write_text("   \n")
    (d / "zeros.txt").write_bytes(b"\0" * 4096)
    (d / ".DS_Store").write_bytes(b"\0\0")
    return d


def test_every_format_is_read_and_every_failure_named(docs: Path) -> None:
    loaded = load_documents(docs)
    by_file = {d.file: d for d in loaded.documents}
    assert sorted(by_file) == ["guide.md", "manual.pdf", "notes.txt", "posts.jsonl", "sub/page.html"]
    assert "The warranty lasts seven years." in by_file["manual.pdf"].text
    html = by_file["sub/page.html"].text
    assert html.startswith("# Rentals") and "£20 a day" in html and "Helmets included" in html
    assert "var x" not in html and "color:red" not in html
    assert by_file["posts.jsonl"].kind == "posts"
    assert by_file["posts.jsonl"].rows == ["Low and slow, friends.", "Pantry math again."]
    assert loaded.notes == ["posts.jsonl: 2 of 4 rows unreadable or without 'text' (line 2: not JSON; line 3: no 'text')"]

    reasons = {s.file: s.reason for s in loaded.skipped}
    assert set(reasons) == {"faq.csv", "latin1.txt", "scan.pdf", "photo.png", "empty.md", "zeros.txt"}  # .DS_Store is not a doc
    assert reasons["zeros.txt"] == "binary file (NUL bytes), not text"
    assert "no 'text' column" in reasons["faq.csv"]
    assert reasons["latin1.txt"] == "not UTF-8 text"
    assert "not a readable PDF" in reasons["scan.pdf"]
    assert "unsupported file type '.png'" in reasons["photo.png"]
    assert reasons["empty.md"] == "empty file"


def test_text_field_names_the_column(docs: Path) -> None:
    loaded = load_documents(docs, text_field="answer")
    faq = next(d for d in loaded.documents if d.file == "faq.csv")
    assert faq.rows == ["Yes"]
    assert any(s.file == "posts.jsonl" for s in loaded.skipped)  # no row has an 'answer' field


def test_project_chunks_keep_file_and_position(project_dir: Path) -> None:
    chunks = load_chunks(Project.load(project_dir))
    assert [c.id for c in chunks] == ["hours.md#0", "repairs.md#0"]
    assert chunks[1].file == "repairs.md" and chunks[1].position == 0 and "$79" in chunks[1].text


def test_empty_corpus_is_one_clear_error(project_dir: Path) -> None:
    for f in (project_dir / "docs").iterdir():
        f.unlink()
    (project_dir / "docs" / "bad.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ProtegeError, match=r"no usable documents \(1 skipped: bad.txt: not UTF-8 text\)"):
        load_corpus(Project.load(project_dir))


def test_a_mostly_broken_jsonl_names_its_bad_lines(tmp_path: Path) -> None:
    rows = [json.dumps({"text": "good one"}), "{oops", "[1, 2]", json.dumps({"text": ""}), "nope", "{", "}",
            json.dumps({"text": "good two"})]  # fmt: skip
    (tmp_path / "posts.jsonl").write_text("\n".join(rows))
    [note] = load_documents(tmp_path).notes
    assert note.startswith("posts.jsonl: 6 of 8 rows unreadable or without 'text' (line 2: not JSON; line 3: no 'text';")
    assert note.endswith("; line 6: not JSON; +1 more)")
