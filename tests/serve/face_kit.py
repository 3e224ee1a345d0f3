"""Kit for the chat page, widget and /admin tests: the demo bike shop as a served project, a
web page on another origin, keyboard helpers, and screenshots (written only when asked).

Screenshots: `PROTEGE_SCREENSHOTS=docs` (a folder) makes the tests write their PNGs there;
without it nothing outside the test's temporary folders is written.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from gateway_kit import make_project

from protege.project import Project

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "riverbend-bikes"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Questions the dataset holds (as synth would have written them), so the empty state has examples.
QUESTIONS = [
    "What are the opening hours of the Downtown store on Saturday?",
    "How much does a basic tune-up cost?",
    "Can I rent an e-bike at Eastbank for a whole day?",
    "What does the warranty cover on a new frame?",
    "Do you repair e-bike motors at the Downtown store?",
    "How long does a wheel truing take?",
]


def shop_project(root: Path, name: str = "riverbend-bikes") -> Project:
    """The demo shop: its persona and documents, retrieval on, a small train.jsonl, SmolLM2 for both models."""
    import yaml

    persona = yaml.safe_load((EXAMPLE / "protege.yaml").read_text())["persona"]
    project = make_project(root, name, persona=persona, serve={"retrieval": True, "retrieval_k": 2, "max_tokens": 80})
    shutil.copytree(EXAMPLE / "docs", root / "docs", dirs_exist_ok=True)
    rows = [{"id": f"q-{i}", "type": "factual", "messages": [
        {"role": "system", "content": persona}, {"role": "user", "content": q}, {"role": "assistant", "content": "..."}]}
        for i, q in enumerate(QUESTIONS)]  # fmt: skip
    rows.insert(2, {"id": "q-x", "type": "out-of-scope", "messages": [{"role": "user", "content": "Can you write me a poem?"},
                                                                        {"role": "assistant", "content": "..."}]})  # fmt: skip
    project.paths.data.mkdir(parents=True, exist_ok=True)
    project.paths.train_jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return Project.load(root)


def screenshot(page, name: str, *, full_page: bool = False) -> None:  # noqa: ANN001
    folder = os.environ.get("PROTEGE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=full_page)


def tab_to(page, selector: str, limit: int = 60, back: bool = False) -> None:  # noqa: ANN001
    """Press Tab (or Shift+Tab) until the focused element matches `selector`: reachable by keyboard."""
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        if page.evaluate("(s) => { let a = document.activeElement; while (a && a.shadowRoot && a.shadowRoot.activeElement) "
                         "a = a.shadowRoot.activeElement; return !!a && a.matches(s); }", selector):  # fmt: skip
            return
    raise AssertionError(f"{selector} is not reachable with the keyboard ({limit} presses)")


def no_horizontal_scroll(page) -> bool:  # noqa: ANN001
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


class Site:
    """One HTML page served on its own loopback port: a web site of another origin."""

    def __init__(self) -> None:
        self.html = "<!doctype html><title>empty</title>"
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = site.html.encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


SHOP_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Riverbend Bikes</title>
<style>
  body {{ margin: 0; font: 16px/1.6 Georgia, serif; color: #222; background: #faf7f0; }}
  header {{ background: #20372b; color: #fff; padding: 1.2rem 2rem; }} header h1 {{ margin: 0; }}
  main {{ max-width: 44rem; padding: 1.5rem 2rem; }}
  button {{ background: red !important; font-size: 40px !important; }}  /* a host page's rules must not reach the widget */
</style></head>
<body><header><h1>Riverbend Bikes</h1><p>Two stores on the Calloway River.</p></header>
<main><h2>Service and repairs</h2><p>Book a tune-up, rent an e-bike for the river trail, or ask us anything.</p></main>
{snippet}
</body></html>"""
