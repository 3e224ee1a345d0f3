"""Harvest: teacher-answered, not-rated-down traffic -> redacted, deduplicated training rows."""

from __future__ import annotations

import json

import pytest
import yaml

from protege.errors import ProtegeError
from protege.project import Project
from protege.serve.harvest import run
from protege.serve.traffic import TrafficLog, TrafficRecord, database_url


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


def log_traffic(project: Project) -> None:
    log = TrafficLog(database_url(None, project.paths.traffic_db))
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


def test_harvest_writes_a_new_redacted_deduplicated_version(project):
    from protege.train.data import read_rows

    log_traffic(project)
    result = run(project)
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

    train = read_rows(project.paths.train_jsonl)  # the train stage accepts the appended rows
    assert len(train) == 2 and train[-1]["id"] == row["id"]
    version = json.loads((project.paths.data / "versions.jsonl").read_text())
    assert version["version"] == 1 and version["traffic_ids"] == ["r1"] and version["train_rows"] == 2
    assert "## Harvest 1" in project.paths.card.read_text()

    again = run(project)  # nothing new: the same traffic is never harvested twice
    assert again.path is None and again.added == 0
    assert len(read_rows(project.paths.train_jsonl)) == 2


def test_harvest_without_traffic_says_what_to_run(project):
    with pytest.raises(ProtegeError, match="no traffic log yet"):
        run(project)
