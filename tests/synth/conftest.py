"""A real HTTP endpoint with canned teacher answers (bench/canned_endpoint.py) for fast synth tests."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
import canned_endpoint  # noqa: E402


@pytest.fixture
def endpoint():
    server, url = canned_endpoint.start()
    yield server, url
    server.shutdown()
