"""Shared fixtures. Real components: llama.cpp servers on loopback serving the embedded models.

The server pool is process-wide, so every test that asks for the same model reuses one server.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from protege.config import ModelConfig
from protege.models.embedded import REGISTRY

TEACHER_REF = "embedded:qwen2.5-coder-1.5b-instruct"
STUDENT_REF = "embedded:smollm2-135m-instruct"


def _require_embedded(name: str) -> None:
    missing = REGISTRY[name].missing_packages()
    if missing:
        # Not a skip: CI must have the models (make setup installs them); a gap is a failure.
        pytest.fail(f"embedded model {name} missing packages {missing}: run make setup")


@pytest.fixture(scope="session")
def teacher_model() -> ModelConfig:
    _require_embedded("qwen2.5-coder-1.5b-instruct")
    return ModelConfig(ref=TEACHER_REF, n_ctx=4096)


@pytest.fixture(scope="session")
def student_model() -> ModelConfig:
    _require_embedded("smollm2-135m-instruct")
    return ModelConfig(ref=STUDENT_REF, n_ctx=2048)


@pytest.fixture(scope="session", autouse=True)
def _stop_servers_at_end():
    yield
    from protege.models.server import POOL

    POOL.stop_all()


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A minimal project folder with two small documents."""
    from protege.scaffold import init_project

    docs = tmp_path / "src-docs"
    docs.mkdir()
    (docs / "hours.md").write_text(
        "# Opening hours\n\nThe Riverbend store opens 9:00-18:00 Monday to Friday and 10:00-16:00 on Saturday. "
        "It is closed on Sunday.\n"
    )
    (docs / "repairs.md").write_text(
        "# Repairs\n\nA basic tune-up costs $79 and takes two working days. "
        "A flat tyre repair costs $15 while you wait.\n"
    )
    root = tmp_path / "proj"
    init_project(root, docs=docs, name="proj")
    return root


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def browser():
    """Headless Debian Chromium driven by playwright (no playwright browser download).

    Function-scoped on purpose: playwright's sync API keeps an event loop running in the main
    thread while it is open, which would break every later test that calls asyncio.run()."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not found: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


def pytest_configure(config):  # noqa: ANN001
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
