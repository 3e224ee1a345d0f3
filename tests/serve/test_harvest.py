"""Harvest: teacher-answered, not-rated-down traffic -> redacted, deduplicated training rows."""

from __future__ import annotations

import json

import pytest
import yaml

from protege.errors import ProtegeError
from protege.project import Project
from protege.serve.harvest import run
from protege.traffic import TrafficLog, TrafficRecord, database_url


def dataset_row(question: str, answer: str) -> dict:
    return {"id": f"q-{abs(hash(question))}", "messages": [
        {"role": "system", "content": "You help."}, {"role": "user", "content": question},
        {"role": "assistant", "content": answer}]}  # fmt: skip


@pytest.fixture
def project(tmp_path) -> Project:
    root = tmp_path / "shop"
    (root / "docs").mkdir(parents=True)
    (root / "protege.yaml").write_text(yaml.safe_dump({"name": "shop", "persona": "You are the Riverbend bike shop."}))
    data = root / "artifacts" / "data"
    data.mkdir(parents=True)
    (data / "train.jsonl").write_text(json.dumps(dataset_row("When does the Riverbend store open on Saturday?", "10:00.")) + "\n")
    (data / "eval.jsonl").write_text(json.dumps(dataset_row("How much does a basic tune-up cost?", "$79.")) + "\n")
    (data / "card.md").write_text("# Data card\n")
    return Project.load(root)


def log_traffic(project: Project, db: str | None = None) -> None:
    log = TrafficLog(database_url(db, project.paths.traffic_db))
    def rec(i, question, answer, route="teacher"):  # noqa: E306
        log.record(TrafficRecord(f"r{i}", "shop", "shop", route, "router", [{"role": "user", "content": question}],
                                 answer, 1.0, 20, 10, 0.001, None, None, "ok"))  # fmt: skip
    rec(1, "Can I rent an e-bike for a day? Reach me at jane.doe@example.com", "Yes, e-bikes rent for $40 a day.")
    rec(2, "when does the riverbend store open on saturday", "At 10:00.")  # repeats train
    rec(3, "How much does a basic tune-up cost?", "It is $79.")  # repeats eval: must never leak into train
    rec(4, "Do you sell helmets for kids?", "No.")  # rated down below
    rec(5, "Do you fix carbon frames?", "We do.", route="student")  # the student answered: nothing to learn
    rec(6, "Can I rent an e-bike for a day? Reach me at jane.doe@example.com", "Yes, $40 a day.")  # repeats r1
    log.flush()
    log.feedback("r4", -1, "we do sell them")
    log.close()


def test_harvest_writes_a_new_redacted_deduplicated_version(project, traffic_db):
    from protege.train.data import read_dataset

    synth_train = project.paths.train_jsonl.read_bytes()
    log_traffic(project, traffic_db)
    result = run(project, db=traffic_db)
    assert (result.added, result.candidates, result.version) == (1, 4, 1)
    assert result.duplicates == 3 and result.redactions >= 1
    rows = [json.loads(line) for line in result.path.read_text().splitlines()]
    assert len(rows) == 1
    row = rows[0]
    text = json.dumps(row)
    assert "jane.doe@example.com" not in text
    assert row["messages"][0] == {"role": "system", "content": "You are the Riverbend bike shop."}
    assert row["messages"][-1] == {"role": "assistant", "content": "Yes, e-bikes rent for $40 a day."}
    assert row["source"]["traffic_id"] == "r1" and row["guard"]["redactions"] == result.redactions

    assert project.paths.train_jsonl.read_bytes() == synth_train  # synth's file is synth's alone
    train, files = read_dataset(project.paths)  # the train stage composes both parts
    assert files == [project.paths.train_jsonl, result.path]
    assert len(train) == 2 and train[-1]["id"] == row["id"]
    version = json.loads((project.paths.data / "versions.jsonl").read_text())
    assert version["version"] == 1 and version["traffic_ids"] == ["r1"] and version["rows"] == 1
    card = project.paths.card.read_text()
    assert card.startswith("# Data card") and "## Harvested from live traffic" in card and "`harvest-1.jsonl` | 1 |" in card

    again = run(project, db=traffic_db)  # nothing new: the same traffic is never harvested twice
    assert again.path is None and again.added == 0
    assert len(read_dataset(project.paths)[0]) == 2


def test_a_new_synth_keeps_every_harvested_row_and_the_card_section(project):
    """What synth does to the data folder (preserve, rewrite train.jsonl and card.md) loses nothing."""
    from protege import artifacts, dataset
    from protege.synth.card import CardData, GroundingCounts, KeyFactCounts, render_card
    from protege.synth.pipeline import _written_by_synth
    from protege.train.data import read_dataset

    log_traffic(project)
    harvested = run(project)
    legacy = dataset_row("Hand-written: do you rent tandems?", "Yes, $60 a day.")  # added to train.jsonl by hand
    legacy["id"] = "hand-1"
    with project.paths.train_jsonl.open("a") as f:
        f.write(json.dumps(legacy) + "\n")
    synth_row = dataset_row("Where is the store?", "On River Road.") | {"id": "q-0123456789", "meta": {"config_hash": "x"}}

    preserved = dataset.preserve_foreign_rows(project.paths, _written_by_synth)
    assert preserved is not None and preserved.rows == 2  # the hand row and the fixture's row (no synth id)
    artifacts.write_jsonl(project.paths.train_jsonl, [synth_row])
    card = CardData(project="shop", docs_dir="docs", config_hash="x", code_version="0", format="closed-book", wall_s=1,
                    files_read=1, skipped=[], notes=[], chunks_total=1, chunks_used=1, persona_source="config", steps=[],
                    dropped={}, planned_types={}, train_types={}, eval_types={}, usage=[], licenses=[], logprobs_note="",
                    redactions=0, judge_retries=0, judge_threshold=6, grounding=GroundingCounts(0.5, 0, None),
                    key_facts=KeyFactCounts(1, 0, 0, 0, 0, 0, 0, 0), harvest=dataset.parts(project.paths))  # fmt: skip
    artifacts.write_text(project.paths.card, render_card(card))

    ids = {r["id"] for r in read_dataset(project.paths)[0]}
    assert {"q-0123456789", "hand-1", json.loads(harvested.path.read_text())["id"]} <= ids
    text = project.paths.card.read_text()
    assert "`harvest-1.jsonl` | 1 | live traffic" in text and "`preserved-2.jsonl` | 2 | kept from train.jsonl" in text
    assert dataset.preserve_foreign_rows(project.paths, _written_by_synth) is None  # nothing twice


def test_a_missing_part_is_an_error_not_a_silent_loss(project):
    from protege.train.data import read_dataset

    log_traffic(project)
    run(project).path.unlink()
    with pytest.raises(ProtegeError, match="harvest-1.jsonl: listed in .*versions.jsonl but missing"):
        read_dataset(project.paths)


def test_redaction_off_keeps_the_text_as_written(project):
    config = yaml.safe_load((project.root / "protege.yaml").read_text())
    (project.root / "protege.yaml").write_text(yaml.safe_dump({**config, "guard": {"redact_pii": False}}))
    log_traffic(project)
    result = run(Project.load(project.root))
    assert result.redactions == 0 and "jane.doe@example.com" in result.path.read_text()


def test_harvest_without_traffic_says_what_to_run(project):
    with pytest.raises(ProtegeError, match="no traffic log yet"):
        run(project)


def test_a_harvest_makes_protege_runs_train_stage_out_of_date(project):
    from protege.loop import fingerprint

    before = fingerprint(project, "train")
    log_traffic(project)
    run(project)
    assert fingerprint(project, "train") != before  # the new part is part of the training set
