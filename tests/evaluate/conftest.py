"""Fixtures for the eval tests: constructed results (see eval_builders.py)."""

from __future__ import annotations

import pytest
from eval_builders import make_info, make_results


@pytest.fixture
def constructed():
    """(results, summary) for a small trained run with a judge failure and an inconsistent verdict."""
    from protege.evaluate.metrics import summarize

    verdicts = [(["loss", "loss"], "loss"), (["win", "loss"], None), (["tie", "win"], "tie"), (["win", "win"], "win"),
                (["loss", None], None), (["loss", "loss"], "loss")]  # fmt: skip
    results = make_results([2, 3, 1, 4, 2, 3], [5, None, 4, 7, 6, 5], [8, 9, 7, 8, 9, 8], verdicts)
    return results, summarize(results, make_info(trained=True))
