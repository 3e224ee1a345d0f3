"""The widget: its snippet, the CORS policy that lets only widget origins call the gateway, and the
widget itself in Chromium on a page of another origin (and refused from a third)."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import sys

import httpx
import pytest
from face_kit import DESKTOP, PHONE, SHOP_PAGE, Site, no_horizontal_scroll, screenshot, shop_project, tab_to
from gateway_kit import start_gateway
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from protege.config import ServeConfig
from protege.errors import ProtegeError
from protege.project import Project
from protege.serve.auth import Auth
from protege.serve.keys import KeyStore, normalize_origin
from protege.serve.schema import APIError
from protege.serve.widget import WidgetCORS, WidgetOrigins, snippet, widget_tag

SHOP = "https://shop.example"


def _app(origins: set[str]) -> WidgetCORS:
    async def ok(request):  # noqa: ANN001, ANN202
        return JSONResponse({"ok": True})

    inner = Starlette(routes=[Route(p, ok, methods=["GET", "POST"]) for p in ("/v1/chat/completions", "/v1/models", "/admin/panel", "/")])
    return WidgetCORS(inner, WidgetOrigins(lambda: set(origins)))


def _send(app: WidgetCORS, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.local:8000") as c:
            return await c.request(method, path, headers=headers)

    return asyncio.run(go())


PREFLIGHT = {"access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type"}


def test_a_widget_origin_gets_cors_on_the_widget_paths_only():
    app = _app({SHOP})
    pre = _send(app, "OPTIONS", "/v1/chat/completions", {"origin": SHOP, **PREFLIGHT})
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == SHOP and "authorization" in pre.headers["access-control-allow-headers"]
    real = _send(app, "POST", "/v1/chat/completions", {"origin": SHOP})
    assert real.status_code == 200 and real.headers["access-control-allow-origin"] == SHOP
    assert "x-protege-id" in real.headers["access-control-expose-headers"]
    for path in ("/v1/models", "/admin/panel"):  # not what a widget needs
        refused = _send(app, "POST", path, {"origin": SHOP})
        assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers


def test_other_origins_are_refused_even_without_a_preflight():
    app = _app({SHOP})
    for method, headers in (("OPTIONS", PREFLIGHT), ("POST", {"content-type": "text/plain"})):
        r = _send(app, method, "/v1/chat/completions", {"origin": "https://evil.example", **headers})
        assert r.status_code == 403 and r.json()["error"]["code"] == "origin_not_allowed"
        assert "access-control-allow-origin" not in r.headers
    assert _send(app, "POST", "/v1/chat/completions", {"origin": "null"}).status_code == 403


def test_same_origin_and_non_browser_requests_pass_untouched():
    app = _app(set())
    same = _send(app, "POST", "/v1/chat/completions", {"origin": "http://gw.local:8000"})
    assert same.status_code == 200 and "access-control-allow-origin" not in same.headers
    assert _send(app, "POST", "/v1/chat/completions", {}).status_code == 200  # an SDK sends no Origin
    assert _send(app, "GET", "/", {"origin": "https://evil.example"}).status_code == 200  # pages are not API


@pytest.mark.parametrize(("given", "origin"), [("https://Shop.Example/", "https://shop.example"),
                                               ("https://shop.example:443", "https://shop.example"),
                                               ("http://127.0.0.1:8123", "http://127.0.0.1:8123")])  # fmt: skip
def test_origins_are_kept_as_browsers_send_them(given, origin):
    assert normalize_origin(given) == origin


@pytest.mark.parametrize("bad", ["shop.example", "ftp://shop.example", "https://shop.example/page", "https://", "*",
                                 "https://shop.example:99999", "https://user@shop.example"])  # fmt: skip
def test_a_bad_origin_is_one_clear_error(bad):
    with pytest.raises(ProtegeError, match="is not a web origin"):
        normalize_origin(bad)


def _request(key: str | None, origin: str | None = None, address: str = "10.0.0.7") -> Request:
    headers = [(b"authorization", f"Bearer {key}".encode())] if key else []
    headers += [(b"origin", origin.encode())] if origin else []
    return Request({"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": headers, "client": (address, 5000)})


def test_a_widget_key_answers_only_from_its_origin_and_per_visitor(project_dir):
    project = Project.load(project_dir)
    store = KeyStore(project.paths.keys_db)
    with pytest.raises(ProtegeError, match="needs --origin"):
        store.create("w", kind="widget")
    with pytest.raises(ProtegeError, match="only for widget keys"):
        store.create("a", origin=SHOP)
    key, record = store.create("w", 3, kind="widget", origin=SHOP + "/")
    assert record.origin == SHOP and store.widget_origins() == {SHOP}
    auth = Auth([project], ServeConfig(), exposed=False)
    assert auth.required  # a widget key turns keys on, as an API key does
    caller = auth.caller(_request(key, SHOP))
    assert (caller.kind, caller.project, caller.key_id) == ("widget", project.name, record.id)
    for origin in (None, "https://evil.example", SHOP + ":8443"):
        with pytest.raises(APIError) as refused:
            auth.caller(_request(key, origin))
        assert refused.value.status == 403 and refused.value.code == "origin_not_allowed"
    auth.caller(_request(key, SHOP))
    auth.caller(_request(key, SHOP))
    with pytest.raises(APIError) as limited:
        auth.caller(_request(key, SHOP))  # the 4th request this minute from one visitor
    assert limited.value.status == 429
    assert auth.caller(_request(key, SHOP, address="10.0.0.8")).kind == "widget"  # another visitor is not held up
    store.revoke(record.id)
    assert store.widget_origins() == set()


def test_protege_widget_prints_a_tag_only_for_a_widget_key(project_dir):
    project = Project.load(project_dir)
    tag, record, notes = widget_tag(project, origin=SHOP, key=None, url="https://agent.shop.example", rate_limit=None)
    assert tag.startswith('<script src="https://agent.shop.example/widget.js"') and record.kind == "widget"
    assert notes == []
    key = re.search(r'data-key="([^"]+)"', tag).group(1)
    assert widget_tag(project, origin=None, key=key, url="https://agent.shop.example", rate_limit=None)[0] == tag
    api_key, _ = KeyStore(project.paths.keys_db).create("app")
    with pytest.raises(ProtegeError, match="an api key: a web page's source is public"):
        widget_tag(project, origin=None, key=api_key, url=None, rate_limit=None)
    _, _, notes = widget_tag(project, origin=SHOP, key=None, url=None, rate_limit=None)
    assert "loopback" in notes[0]  # the default 127.0.0.1:8000 is unreachable for the site's visitors


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "protege.cli", *args], capture_output=True, text=True, timeout=60, env=env)


def test_keys_create_makes_widget_and_admin_keys_and_list_shows_their_kind(project_dir):
    both = _cli("keys", "create", str(project_dir), "--widget", "--admin", "--origin", SHOP)
    assert both.returncode != 0 and "either --widget or --admin" in both.stderr and "Traceback" not in both.stderr
    made = _cli("keys", "create", str(project_dir), "--widget", "--origin", SHOP + "/")
    key = made.stdout.splitlines()[0]
    assert made.returncode == 0 and key.startswith("pk-") and "Next: protege widget" in made.stdout
    assert _cli("keys", "create", str(project_dir), "--admin").returncode == 0
    listed = _cli("keys", "list", str(project_dir)).stdout
    assert f"widget ({SHOP})" in listed and "20/min per visitor" in listed and "admin" in listed
    store = KeyStore(Project.load(project_dir).paths.keys_db)
    assert store.verify(key).origin == SHOP and store.has_admin()


def test_snippet_is_one_escaped_script_tag():
    tag = snippet("https://agent.example.com/", 'pk-ab-"x"', "shop")
    assert tag == ('<script src="https://agent.example.com/widget.js" data-agent="shop" '
                   'data-key="pk-ab-&quot;x&quot;" async></script>')  # fmt: skip


# -- in Chromium, against the real gateway -------------------------------------------------------


@pytest.fixture(scope="module")
def sites(tmp_path_factory, student_model):  # noqa: ANN001
    """The gateway, the shop's site (the widget key's origin) and a third site that copies the snippet."""
    shop_site, other_site = Site(), Site()
    project = shop_project(tmp_path_factory.mktemp("widget") / "riverbend-bikes")
    api_key, _ = KeyStore(project.paths.keys_db).create("tests")
    gw = start_gateway([project])
    made = subprocess.run([sys.executable, "-m", "protege.cli", "widget", str(project.root), "--origin", shop_site.origin,
                           "--url", gw.url], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert made.returncode == 0, made.stderr
    tag = made.stdout.strip()
    assert tag.startswith("<script ") and tag.endswith("</script>") and "\n" not in tag
    shop_site.html = other_site.html = SHOP_PAGE.format(snippet=tag)
    gw.project, gw.api_key = project, api_key  # type: ignore[attr-defined]
    gw.widget_key = re.search(r'data-key="([^"]+)"', tag).group(1)  # type: ignore[attr-defined]
    yield gw, shop_site, other_site
    gw.stop()
    shop_site.stop()
    other_site.stop()


def _widget_page(browser, site: Site, viewport):  # noqa: ANN001, ANN202
    page = browser.new_context(viewport=viewport, device_scale_factor=2 if viewport is PHONE else 1).new_page()
    page.goto(site.origin + "/")
    page.wait_for_selector("#protege-widget .launcher")
    return page


@pytest.mark.slow
def test_widget_on_its_origin_chats_and_rates_by_keyboard(browser, sites):  # noqa: ANN001
    gw, shop_site, _ = sites
    for viewport, name in ((DESKTOP, "widget-desktop"), (PHONE, "widget-phone")):
        page = _widget_page(browser, shop_site, viewport)
        launcher = page.locator("#protege-widget .launcher")
        assert launcher.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(36, 82, 184)"  # the host's CSS stays out
        tab_to(page, ".launcher")
        page.keyboard.press("Enter")
        page.wait_for_selector("#protege-widget .empty .examples button")
        assert page.locator("#protege-widget .bar strong").inner_text() == "Riverbend Bikes"
        assert page.evaluate("document.activeElement.shadowRoot.activeElement.getAttribute('aria-label')") == "Your question"
        page.keyboard.type("Can I rent an e-bike for a day?")
        page.keyboard.press("Enter")
        answer = page.wait_for_selector("#protege-widget .msg.assistant[data-done='true']", timeout=120_000)
        assert answer.query_selector(".body").inner_text().strip()
        assert answer.query_selector(".badge").get_attribute("data-route") == "student"
        assert len(answer.query_selector_all(".sources details")) == 2
        request_id = answer.get_attribute("data-id")
        answer.query_selector("button[data-rating='1']").click()
        page.wait_for_selector("#protege-widget .meta[data-rated='1']")
        assert no_horizontal_scroll(page)
        screenshot(page, name)
        page.keyboard.press("Escape")  # the comment box has focus, inside the panel
        assert page.locator("#protege-widget .panel").is_hidden()
        page.context.close()
        row = sqlite3.connect(gw.project.paths.traffic_db).execute(
            "SELECT rating, key_id FROM requests WHERE id = ?", (request_id,)).fetchone()  # fmt: skip
        widget_id = gw.widget_key.split("-")[1]
        assert row == (1, widget_id)


@pytest.mark.slow
def test_widget_is_refused_from_a_third_origin_and_unlocks_nothing_else(browser, sites):  # noqa: ANN001
    gw, shop_site, other_site = sites
    before = sqlite3.connect(gw.project.paths.traffic_db).execute("SELECT count(*) FROM requests").fetchone()[0]
    page = _widget_page(browser, other_site, DESKTOP)
    page.locator("#protege-widget .launcher").click()
    note = page.wait_for_selector("#protege-widget .msg.error")
    assert "not available on this site" in note.inner_text()
    page.context.close()

    key = {"authorization": f"Bearer {gw.widget_key}", "content-type": "application/json"}
    body = {"model": "riverbend-bikes", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    post = lambda path, headers, json=body: httpx.post(gw.url + path, headers=headers, json=json, timeout=60)  # noqa: E731
    third = post("/v1/chat/completions", {**key, "origin": other_site.origin})
    assert third.status_code == 403 and third.json()["error"]["code"] == "origin_not_allowed"
    no_origin = post("/v1/chat/completions", key)  # a script off the page: the key is only for its origin
    assert no_origin.status_code == 403 and "origin" in no_origin.json()["error"]["message"]
    mine = {**key, "origin": shop_site.origin}
    assert post("/v1/chat/completions", mine, {**body, "model": "riverbend-bikes-teacher"}).status_code == 404
    assert httpx.get(gw.url + "/v1/models", headers=mine).status_code == 403  # not a widget path
    assert httpx.get(gw.url + "/v1/models", headers=key).status_code == 403  # nor an API key
    assert httpx.get(gw.url + "/admin/panel", headers=key).status_code == 403
    assert [a["models"] for a in httpx.get(gw.url + "/v1/agents", headers=mine).json()["data"]] == [["riverbend-bikes"]]
    after = sqlite3.connect(gw.project.paths.traffic_db).execute("SELECT count(*) FROM requests").fetchone()[0]
    assert after == before  # nothing refused was answered
