"""The route stage end to end: errors on too little data, the no-gap case, and (slow) a real fit
with real MiniLM embeddings, the CLI, and the gateway API on the saved artifact."""

from __future__ import annotations

import csv

import pytest
from route_builders import bike_shop_results, results_row, write_results
from typer.testing import CliRunner

from protege.cli import app
from protege.errors import ProtegeError
from protege.project import Project
from protege.route import fit, load


def test_no_results_says_run_eval(project_dir):
    with pytest.raises(ProtegeError, match="no eval results") as info:
        fit(Project.load(project_dir))
    assert "protege eval" in str(info.value)


def test_too_few_questions_is_a_clear_error(project_dir):
    write_results(project_dir, [results_row(i, f"q{i}?", 5, 8) for i in range(4)])
    with pytest.raises(ProtegeError, match="only 4 usable labelled queries"):
        fit(Project.load(project_dir))


def test_student_as_good_as_teacher_routes_everything_to_the_student(project_dir):
    write_results(project_dir, [results_row(i, f"question number {i}?", 8, 8) for i in range(12)])
    result = fit(Project.load(project_dir))
    assert "no quality gap" in result.degenerate
    router = load(project_dir / "artifacts" / "router")
    assert router.info["degenerate"] == result.degenerate
    for i in range(20):
        assert router.decide([{"role": "user", "content": f"anything {i}"}]).route == "student"


@pytest.mark.slow
def test_fit_on_realistic_results_with_minilm(project_dir, tmp_path):
    """~30 real-sentence questions, real MiniLM embeddings: every artifact, the CLI, decide()."""
    from protege.models.embeddings import encode
    from protege.models.query_encoder import query_encoder

    write_results(project_dir, bike_shop_results(32, seed=3))
    result = CliRunner().invoke(app, ["route", "fit", str(project_dir)])
    assert result.exit_code == 0, result.output
    assert "chosen" in result.output and "APGR" in result.output and "Next:" in result.output

    router_dir = project_dir / "artifacts" / "router"
    router = load(router_dir)
    info = router.info
    assert set(info["metrics"]) == {"sw_ranking", "classifier", "cascade", "random"}
    assert info["chosen_by"]["chosen"] == router.kind
    assert info["metrics"][router.kind]["apgr"]["value"] == max(m["apgr"]["value"] for m in info["metrics"].values())
    assert info["metrics"][router.kind]["apgr"]["value"] > info["metrics"]["random"]["apgr"]["value"]
    with (router_dir / "curve.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 33 and float(rows[-1]["random_expected"]) == pytest.approx(info["quality"]["teacher_only"])
    assert (router_dir / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The numpy query encoder used per request gives the vectors fit used (sentence-transformers).
    texts = ["When do you open on Sunday?", "My disc brake squeals after a brake service, what now?"]
    for text, ref in zip(texts, encode(texts)):
        assert float(query_encoder().encode_one(text) @ ref) > 0.9999

    result = CliRunner().invoke(app, ["route", "curve", str(project_dir)])
    shown = "".join(result.output.split())  # rich wraps lines at the terminal width
    assert result.exit_code == 0 and "curve.png" in shown and "quality(rubricscore)againstteachercalls" in shown

    # An embedding router, saved and loaded, deciding from raw messages: repairs go to the teacher.
    from protege.config import RouteConfig
    from protege.route.labels import build_examples
    from protege.route.router import Router, save
    from protege.route.routers import Queries, SwRanking

    examples = build_examples([("eval", bike_shop_results(32, seed=3))], RouteConfig(), "trained")
    sw = SwRanking.fit(Queries(examples.queries, encode(examples.queries)), examples.y)
    save(tmp_path / "sw", Router(sw, 0.5))
    router = load(tmp_path / "sw")
    easy = router.decide([{"role": "system", "content": "You help."}, {"role": "user", "content": "Are you open on Sunday?"}])
    hard = router.decide([{"role": "user", "content": "My rear derailleur makes a clicking noise uphill, what should I check?"}])
    assert (easy.route, hard.route) == ("student", "teacher"), (easy, hard)
    assert hard.score > easy.score and hard.reason.startswith("sw_ranking: score")


@pytest.mark.slow
def test_route_fit_labels_traffic_read_from_the_gateways_db(project_dir, traffic_db):
    """`route fit --traffic --db URL`: the sample comes from that database (SQLite or PostgreSQL),
    real models answer and judge it, and the labelled rows join the fit."""
    import json

    import yaml

    from protege.traffic import TrafficLog, TrafficRecord, database_url

    small = {"ref": "embedded:smollm2-135m-instruct", "n_ctx": 2048}
    config = yaml.safe_load((project_dir / "protege.yaml").read_text())
    (project_dir / "protege.yaml").write_text(yaml.safe_dump({**config, "teacher": small, "student": small, "eval": {"max_tokens": 16}}))
    rows = bike_shop_results(24, seed=3)
    for r in rows:  # results of the untrained student: no trained run is needed to label more
        r["answers"]["untrained"] = r["answers"].pop("trained")
    write_results(project_dir, rows)
    log = TrafficLog(database_url(traffic_db, project_dir / "unused.db"))
    for i, q in enumerate(["Do you rent tandems?", "When do you open on Sunday?", "Can you fix a carbon frame?"]):
        log.record(TrafficRecord(f"r{i}", "proj", "proj", "teacher", "router", [{"role": "user", "content": q}], "Yes.",
                                 0.5, 10, 2, 0.0, None, None, "ok")).result(timeout=30)  # fmt: skip
    log.close()

    result = CliRunner().invoke(app, ["route", "fit", str(project_dir), "--traffic", "--db", traffic_db])
    assert result.exit_code == 0, result.output[-2000:]
    assert "labelled 3 logged traffic queries" in "".join(result.output.split("\n"))
    labelled = [json.loads(line) for line in (project_dir / "artifacts" / "router" / "labelled.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in labelled) == ["t-r0", "t-r1", "t-r2"] and {r["route_source"] for r in labelled} == {"traffic"}
