"""The chat page in headless Chromium (Debian's): empty state, streamed answers with sources,
the route badge, feedback into traffic.db, keyboard-only use, a phone-sized viewport."""

from __future__ import annotations

import sqlite3

import pytest
from face_kit import DESKTOP, PHONE, QUESTIONS, no_horizontal_scroll, screenshot, shop_project, tab_to
from gateway_kit import start_gateway

from protege.corpus import load_chunks
from protege.serve.keys import KeyStore
from protege.serve.profile import example_questions, tagline

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shop(tmp_path_factory, student_model):  # noqa: ANN001
    project = shop_project(tmp_path_factory.mktemp("chat") / "riverbend-bikes")
    key, _ = KeyStore(project.paths.keys_db).create("tests")
    gw = start_gateway([project])
    gw.key, gw.project = key, project  # type: ignore[attr-defined]
    yield gw
    gw.stop()


def _open(browser, shop, viewport):  # noqa: ANN001, ANN202
    page = browser.new_context(viewport=viewport, device_scale_factor=2 if viewport is PHONE else 1).new_page()
    page.goto(shop.url + "/")
    page.wait_for_selector("#keyform:not([hidden])")  # keys exist: the page asks for one
    page.fill("#key", shop.key)
    page.press("#key", "Enter")
    page.wait_for_selector(".empty .examples button")
    return page


def _ask_by_keyboard(page) -> str:  # noqa: ANN001
    """Ask the last example question with the keyboard only; returns the question."""
    tab_to(page, ".examples li:last-child button", back=True)
    question = page.evaluate("document.activeElement.textContent")
    page.keyboard.press("Enter")
    page.wait_for_selector(".msg.assistant[data-done='true']", timeout=120_000)
    return question


def test_empty_state_is_built_from_the_project(browser, shop):  # noqa: ANN001
    page = browser.new_page()
    page.goto(shop.url + "/")
    alert = page.wait_for_selector(".msg.error")
    assert "API key" in alert.inner_text()  # the key box explains itself, and no agent is shown without a key
    page.close()
    for viewport, name in ((DESKTOP, "chat-empty-desktop"), (PHONE, "chat-empty-phone")):
        page = _open(browser, shop, viewport)
        assert page.inner_text(".empty h2") == "Riverbend Bikes" == page.title()
        assert page.inner_text(".empty .tagline") == tagline(shop.project.system_prompt())
        assert page.inner_text(".empty .tagline").startswith("The customer support assistant of Riverbend Bikes")
        shown = page.eval_on_selector_all(".empty .examples button", "bs => bs.map(b => b.textContent)")
        assert shown == example_questions(shop.project.paths.train_jsonl) and set(shown) <= set(QUESTIONS)
        assert page.eval_on_selector_all("#model option", "os => os.map(o => o.value)") == [
            "riverbend-bikes", "riverbend-bikes-student", "riverbend-bikes-teacher"]  # fmt: skip
        assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Your question"
        assert no_horizontal_scroll(page)
        screenshot(page, name)
        page.context.close()


def test_streamed_answer_with_sources_and_badge_by_keyboard(browser, shop):  # noqa: ANN001
    page = _open(browser, shop, DESKTOP)
    page.evaluate("""window.__updates = 0; new MutationObserver((ms) => { for (const m of ms)
        if (m.target.classList && m.target.classList.contains('body')) window.__updates++; })
        .observe(document.querySelector('.pc-log'), {subtree: true, childList: true});""")
    question = _ask_by_keyboard(page)
    assert page.inner_text(".msg.user .body") == question
    answer = page.query_selector(".msg.assistant[data-done='true']")
    assert answer.query_selector(".body").inner_text().strip()
    assert page.evaluate("window.__updates") >= 3  # the text arrived in pieces, as it streamed
    badge = answer.query_selector(".badge")
    assert badge.get_attribute("data-route") == "student" and badge.inner_text() == "local model"
    chunks = {c.id: c for c in load_chunks(shop.project)}
    summaries = answer.query_selector_all(".sources details summary")
    assert len(summaries) == 2  # serve.retrieval_k
    excerpt = answer.query_selector(".sources details .excerpt")
    assert not excerpt.is_visible()
    tab_to(page, ".sources details summary")
    page.keyboard.press("Enter")  # expands the first source
    assert excerpt.is_visible()
    text = excerpt.inner_text().rstrip("…")
    assert any(c.text.startswith(text[:200]) and c.file in summaries[0].inner_text() for c in chunks.values())
    page.evaluate("document.querySelector('.pc-log').scrollTop = 1e9")  # the badge and thumbs in view
    screenshot(page, "chat-desktop")
    page.context.close()


def test_thumbs_down_and_comment_by_keyboard_reach_traffic_db(browser, shop):  # noqa: ANN001
    page = _open(browser, shop, PHONE)
    _ask_by_keyboard(page)
    answer = page.query_selector(".msg.assistant[data-done='true']")
    request_id = answer.get_attribute("data-id")
    tab_to(page, "button[data-rating='-1']")
    page.keyboard.press("Enter")
    page.wait_for_selector(".meta[data-rated='-1'] .comment input")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Comment (optional)"
    page.keyboard.type("The Saturday hours are wrong.")
    page.keyboard.press("Enter")
    page.wait_for_selector(".meta[data-commented='true'] .thanks")
    assert no_horizontal_scroll(page)
    screenshot(page, "chat-phone")
    page.context.close()
    row = sqlite3.connect(shop.project.paths.traffic_db).execute(
        "SELECT rating, comment, route, answer FROM requests WHERE id = ?", (request_id,)
    ).fetchone()
    assert row[:3] == (-1, "The Saturday hours are wrong.", "student") and row[3].strip()


def test_the_api_carries_the_sources_and_keeps_the_openai_shape(shop):  # noqa: ANN001
    from openai import OpenAI

    client = OpenAI(base_url=shop.url + "/v1", api_key=shop.key)
    messages = [{"role": "user", "content": "How much does a basic tune-up cost?"}]
    reply = client.chat.completions.create(model="riverbend-bikes", messages=messages, max_tokens=8)
    assert reply.choices[0].message.content is not None
    sources = reply.model_extra["protege"]["sources"]
    assert len(sources) == 2 and all(set(s) == {"id", "file", "text"} for s in sources)
    stream = client.chat.completions.create(model="riverbend-bikes", messages=messages, max_tokens=8, stream=True)
    chunks = list(stream)
    assert [s["id"] for s in chunks[0].model_extra["protege"]["sources"]] == [s["id"] for s in sources]
    assert all("sources" not in (c.model_extra.get("protege") or {}) for c in chunks[1:])  # once, in the first chunk
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
