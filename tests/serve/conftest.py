"""Serve fixtures: one live gateway per module (see gateway_kit for how it is built)."""

from __future__ import annotations

import pytest
from gateway_kit import LiveGateway, make_project, start_gateway


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, student_model) -> LiveGateway:  # noqa: ANN001
    """One gateway for a module: project 'shop' with a trained-looking student and an API key."""
    from protege.serve.keys import KeyStore

    project = make_project(tmp_path_factory.mktemp("serve") / "shop", "shop")
    key, _ = KeyStore(project.paths.keys_db).create("tests")
    gw = start_gateway([project])
    gw.key = key  # type: ignore[attr-defined]
    gw.project = project  # type: ignore[attr-defined]
    yield gw
    gw.stop()
