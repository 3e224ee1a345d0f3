"""Chunking by structure to a token budget, with overlap inside long sections."""

from __future__ import annotations

from protege.corpus.chunk import approx_tokens, chunk_document, sections_of
from protege.corpus.load import Document


def sentences(prefix: str, n: int) -> str:
    return " ".join(f"{prefix} fact number {i} is stated here." for i in range(n))


def test_small_sections_merge_and_headings_start_sections() -> None:
    text = "# Shop\n\nWe fix bikes.\n\n## Hours\n\nNine to five.\n\n## Prices\n\nA tune-up is $79."
    assert [s.heading for s in sections_of(text)] == ["# Shop", "## Hours", "## Prices"]
    chunks = chunk_document(Document("shop.md", "text", text=text), budget=300, overlap=30)
    assert len(chunks) == 1 and chunks[0].id == "shop.md#0"
    assert "## Hours" in chunks[0].text and "$79" in chunks[0].text


def test_sections_that_do_not_fit_together_stay_apart() -> None:
    a, b = sentences("alpha", 8), sentences("beta", 8)  # ~73 tokens each
    text = f"# A\n\n{a}\n\n# B\n\n{b}"
    chunks = chunk_document(Document("d.md", "text", text=text), budget=100, overlap=10)
    assert [c.id for c in chunks] == ["d.md#0", "d.md#1"]
    assert chunks[0].text.startswith("# A") and chunks[1].text.startswith("# B")
    assert "beta" not in chunks[0].text


def test_long_section_splits_to_budget_with_heading_and_overlap() -> None:
    body = "\n\n".join(sentences(f"p{k}", 6) for k in range(8))  # 8 paragraphs, ~55 tokens each
    doc = Document("long.md", "text", text=f"## Warranty\n\n{body}")
    chunks = chunk_document(doc, budget=120, overlap=20)
    assert len(chunks) > 3
    assert [c.position for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.tokens <= 120, (c.id, c.tokens)
        assert c.text.startswith("## Warranty")
    for before, after in zip(chunks, chunks[1:]):
        tail = before.text.split()[-5:]
        assert " ".join(tail) in after.text  # the overlap repeats the end of the previous piece
    every_fact = " ".join(c.text for c in chunks)
    assert all(f"p{k} fact number 5" in every_fact for k in range(8))


def test_one_huge_paragraph_is_cut_at_sentences_then_words() -> None:
    run_on = " ".join(["word"] * 500)  # a single 650-token sentence
    chunks = chunk_document(Document("wall.txt", "text", text=run_on), budget=100, overlap=0)
    assert all(c.tokens <= 100 for c in chunks)
    assert sum(len(c.text.split()) for c in chunks) == 500


def test_posts_are_whole_units_packed_to_budget() -> None:
    posts = [sentences(f"post{i}", 2) for i in range(10)]  # ~18 tokens each
    chunks = chunk_document(Document("posts.jsonl", "posts", rows=posts), budget=60, overlap=30)
    assert all(c.tokens <= 60 for c in chunks)
    joined = [c.text for c in chunks]
    for p in posts:  # no post is cut between chunks
        assert sum(p in t for t in joined) == 1


def test_approx_tokens_is_words_times_1_3() -> None:
    assert approx_tokens("one two three four five six seven eight nine ten") == 13
    assert approx_tokens("") == 0


def test_text_without_spaces_is_counted_and_cut_to_the_budget() -> None:
    blob = "x" * 4_000_000  # minified code, base64, a CJK page: one "word" of 4 MB
    assert approx_tokens(blob) >= 600_000  # not ~1 token because it has no whitespace
    assert approx_tokens("a few plain words here") == approx_tokens("a few plain words here".upper())
    chunks = chunk_document(Document("blob.txt", "text", text=f"# Blob\n\n{blob}"), budget=300, overlap=30)
    assert len(chunks) > 2000
    assert max(c.tokens for c in chunks) <= 300
    assert sum(c.text.count("x") for c in chunks) >= len(blob)  # nothing dropped (overlap repeats some)
    cjk = "日本語の文章には空白がありません。" * 200
    assert approx_tokens(cjk) >= len(cjk) // 2
