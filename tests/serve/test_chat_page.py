"""The chat page in headless Chromium (Debian's, never a downloaded browser): type, stream, rate."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")


def test_chat_page_streams_an_answer_and_records_the_rating(live, tmp_path):
    if not CHROMIUM.is_file():
        pytest.fail("Debian's chromium is missing: apt-get install -y chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(live.url + "/")
            page.fill("#key", live.key)
            page.dispatch_event("#key", "change")
            page.wait_for_function("document.querySelectorAll('#model option').length === 3")
            page.fill("#input", "When do you open?")
            page.press("#input", "Enter")
            answer = page.wait_for_selector(".msg.assistant[data-done='true']", timeout=60_000)
            assert answer.query_selector(".body").inner_text().strip()
            assert answer.query_selector(".badge").inner_text() == "student"
            request_id = answer.get_attribute("data-id")
            answer.query_selector("button[data-rating='-1']").click()
            page.wait_for_selector(".meta[data-rated='-1']")
            page.screenshot(path=str(tmp_path / "chat.png"))
        finally:
            browser.close()
    row = sqlite3.connect(live.project.paths.traffic_db).execute(
        "SELECT rating, route, answer FROM requests WHERE id = ?", (request_id,)
    ).fetchone()
    assert row[0] == -1 and row[1] == "student" and row[2].strip()
