"""The owner's page, /admin, in headless Chromium over real traffic: refused without the admin
key (even on loopback), and with it: traffic, who answered, latency and cost, ratings, the
student's misses, what harvest would add and the router's cost-quality curve."""

from __future__ import annotations

import json
import sqlite3

import httpx
import pytest
from face_kit import DESKTOP, PHONE, no_horizontal_scroll, screenshot, shop_project
from gateway_kit import start_gateway
from starlette.requests import Request

from protege.config import ServeConfig
from protege.project import Project
from protege.route.curve import read_csv
from protege.serve.auth import Auth
from protege.serve.harvest import select
from protege.serve.keys import KeyStore
from protege.serve.schema import APIError

EASY = ["What time do you open on {}?", "Are you open on {}?", "When do you close on {}?"]
HARD = ["My rear derailleur clicks uphill after a {} ride, what should I check first?",
        "How do I bleed a hydraulic disc brake at home before a {} trip?"]  # fmt: skip
WEAK = {HARD[0]: "A derailleur is a part of the bike.", HARD[1]: "Brakes stop the bike. Please visit us."}
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _judged_rows() -> list[dict]:
    """Eval results as `protege eval` writes them: the student is as good on hours, short on repairs."""
    rows = []
    for i, day in enumerate(DAYS * 2):
        hard = i % 2 == 1
        template = HARD[i % 4 // 2] if hard else EASY[i % 3]
        question = template.format(day)
        student, teacher = (3, 8) if hard else (8, 8)
        answer = {"text": WEAK.get(template, "We open at 10:00."), "rubric": student, "pairwise": "loss" if hard else "tie",
                  "mean_logprob": -1.0, "min_logprob": -5.0, "latency_s": 0.4, "judge_errors": []}  # fmt: skip
        rows.append({"id": f"q-{i:03d}", "type": "factual", "question": question,
                     "messages": [{"role": "user", "content": question}],
                     "answers": {"trained": answer, "teacher": {"text": "big answer", "rubric": teacher, "judge_errors": []}}})  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def owner(tmp_path_factory, student_model):  # noqa: ANN001
    """A served shop with a fitted router, an API key, an admin key and some real traffic."""
    from openai import OpenAI

    from protege.route import fit

    project = shop_project(tmp_path_factory.mktemp("admin") / "riverbend-bikes")
    results = project.paths.reports / "run-1" / "results.jsonl"
    results.parent.mkdir(parents=True)
    results.write_text("".join(json.dumps(r) + "\n" for r in _judged_rows()))
    fit(project)
    store = KeyStore(project.paths.keys_db)
    api_key, _ = store.create("tests")
    admin_key, _ = store.create("owner", kind="admin")
    gw = start_gateway([project])
    client = OpenAI(base_url=gw.url + "/v1", api_key=api_key)
    ids = {}
    for model, question in [("riverbend-bikes", "When does the Downtown store open on Saturday?"),
                            ("riverbend-bikes", "How much is a basic tune-up?"),
                            ("riverbend-bikes-teacher", "Can I rent a cargo bike for a week?"),
                            ("riverbend-bikes-teacher", "Do you price-match online shops?"),
                            ("riverbend-bikes-student", "Where is the Eastbank store?")]:  # fmt: skip
        reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}], max_tokens=48)
        ids[question] = reply.id
    rate = lambda q, r, c=None: httpx.post(gw.url + "/v1/feedback", headers={"authorization": f"Bearer {api_key}"},  # noqa: E731
                                           json={"id": ids[q], "rating": r, **({"comment": c} if c else {})}).raise_for_status()  # fmt: skip
    rate("How much is a basic tune-up?", -1, "It did not give the price.")
    rate("Do you price-match online shops?", 1)
    gw.project, gw.api_key, gw.admin_key = project, api_key, admin_key  # type: ignore[attr-defined]
    yield gw
    gw.stop()


def _request(key: str | None) -> Request:
    headers = [(b"authorization", f"Bearer {key}".encode())] if key else []
    return Request({"type": "http", "method": "GET", "path": "/admin/panel", "headers": headers, "client": ("127.0.0.1", 5000)})


def test_admin_needs_an_admin_key_even_on_loopback_without_keys(project_dir):
    project = Project.load(project_dir)
    auth = Auth([project], ServeConfig(), exposed=False)
    assert not auth.required  # loopback, no keys: the API is open ...
    with pytest.raises(APIError) as refused:
        auth.admin(_request(None))  # ... and the owner's page is not
    assert refused.value.status == 401 and "protege keys create DIR --admin" in refused.value.message
    store = KeyStore(project.paths.keys_db)
    admin_key, _ = store.create("owner", kind="admin")
    assert not store.has_keys() and not Auth([project], ServeConfig(), exposed=False).required  # admin keys gate /admin only
    assert auth.admin(_request(admin_key)) == project.name
    api_key, _ = store.create("app")
    with pytest.raises(APIError) as not_admin:
        auth.admin(_request(api_key))
    assert not_admin.value.status == 403 and not_admin.value.code == "not_an_admin_key"
    with pytest.raises(APIError) as wrong:
        auth.admin(_request(admin_key[:-2] + "xx"))
    assert wrong.value.status == 401


@pytest.mark.slow
def test_admin_is_refused_without_the_admin_key(owner):  # noqa: ANN001
    panel = owner.url + "/admin/panel"
    missing = httpx.get(panel)
    assert missing.status_code == 401 and "--admin" in missing.json()["error"]["message"]
    api = httpx.get(panel, headers={"authorization": f"Bearer {owner.api_key}"})
    assert api.status_code == 403 and api.json()["error"]["code"] == "not_an_admin_key"
    assert httpx.get(panel, headers={"authorization": "Bearer pk-nope-nope"}).status_code == 401
    admin = {"authorization": f"Bearer {owner.admin_key}"}
    chat = httpx.post(owner.url + "/v1/chat/completions", headers=admin,
                      json={"model": "riverbend-bikes", "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
    assert chat.status_code == 403  # an admin key opens the owner's page, not the API
    shell = httpx.get(owner.url + "/admin")
    assert shell.status_code == 200 and "traffic" not in shell.text.lower()  # the shell holds no data
    assert "frame-ancestors 'none'" in shell.headers["content-security-policy"]


@pytest.mark.slow
def test_admin_shows_the_real_traffic_with_the_admin_key(browser, owner):  # noqa: ANN001
    db = sqlite3.connect(owner.project.paths.traffic_db)
    total = db.execute("SELECT count(*) FROM requests").fetchone()[0]
    by_route = dict(db.execute("SELECT route, count(*) FROM requests WHERE status = 'ok' GROUP BY route").fetchall())
    share = by_route.get("student", 0) / (by_route.get("student", 0) + by_route.get("teacher", 0))
    would_add = len(select(owner.project).rows)
    for viewport, name in ((DESKTOP, "admin-desktop"), (PHONE, "admin-phone")):
        page = browser.new_context(viewport=viewport, device_scale_factor=2 if viewport is PHONE else 1).new_page()
        page.goto(owner.url + "/admin")
        page.fill("#key", owner.api_key)  # a working API key is still not an admin key
        page.press("#key", "Enter")
        assert "admin key" in page.wait_for_selector(".refused").inner_text()
        page.fill("#key", owner.admin_key)
        page.press("#key", "Enter")
        page.wait_for_selector("#panel[data-loaded='true']")
        tile = lambda k: page.inner_text(f"[data-tile='{k}'] .v")  # noqa: E731
        assert page.inner_text("#panel h2") == "riverbend-bikes"
        assert tile("requests") == str(total) == "5"
        assert tile("answered by the local model") == f"{share:.0%}"
        assert tile("rated up / down") == "1 / 1"
        rated = page.inner_text("[data-section='rated-down']")
        assert "How much is a basic tune-up?" in rated and "It did not give the price." in rated
        assert f"{would_add} new row(s)" in page.inner_text("[data-section='harvest']") and would_add >= 1
        assert "Do you price-match online shops?" in page.inner_text("[data-section='harvest']")
        misses = page.query_selector_all("[data-section='misses'] tbody tr")
        assert len(misses) == 7 and "derailleur" in page.inner_text("[data-section='misses']")  # the 7 hard questions
        curve = read_csv(owner.project.paths.router / "curve.csv")
        assert len(page.query_selector_all("#chart-curve polyline")) == len(curve) - 1
        assert page.query_selector("#chart-curve circle") is not None  # the router's operating point
        assert len(page.query_selector_all("#chart-traffic rect")) >= 1
        assert "latency p50" in page.inner_text("[data-section='cost']")
        assert no_horizontal_scroll(page)
        screenshot(page, name, full_page=True)
        page.context.close()
