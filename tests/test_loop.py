"""protege run's bookkeeping: which stage is up to date, and what a change re-runs."""

import json

import pytest

from protege import loop
from protege.config import DEFAULT_STUDENT, QUICK_STUDENT, load_config
from protege.errors import ProtegeError
from protege.project import Project


def _fake_synth_outputs(project: Project) -> None:
    project.paths.data.mkdir(parents=True, exist_ok=True)
    project.paths.train_jsonl.write_text('{"id": "a"}\n')
    project.paths.eval_jsonl.write_text('{"id": "b"}\n')


def test_stage_is_up_to_date_until_its_inputs_change(project_dir):
    project = Project.load(project_dir)
    assert not loop.up_to_date(project, "synth")  # no outputs yet
    _fake_synth_outputs(project)
    assert not loop.up_to_date(project, "synth")  # outputs, but never recorded
    loop.record(project, "synth", 1.0)
    assert loop.up_to_date(project, "synth")

    (project_dir / "docs" / "hours.md").write_text("# Hours\n\nNow open on Sundays.\n")
    assert not loop.up_to_date(project, "synth")  # a document changed
    loop.record(project, "synth", 1.0)

    text = (project_dir / "protege.yaml").read_text().replace("questions_per_chunk: 4", "questions_per_chunk: 5")
    (project_dir / "protege.yaml").write_text(text)
    changed = Project.load(project_dir)
    assert not loop.up_to_date(changed, "synth")  # its config section changed
    assert load_config(project_dir).synth.questions_per_chunk == 5

    state = json.loads(project.paths.state.read_text())
    assert set(state) == {"synth"} and state["synth"]["seconds"] == 1.0


def test_train_fingerprint_follows_the_dataset_not_other_sections(project_dir):
    project = Project.load(project_dir)
    _fake_synth_outputs(project)
    before = loop.fingerprint(project, "train")
    other = Project(project.root, project.config.model_copy(update={"route": project.config.route.model_copy(update={"margin": 2.0})}))
    assert loop.fingerprint(other, "train") == before
    project.paths.train_jsonl.write_text('{"id": "changed"}\n')
    assert loop.fingerprint(project, "train") != before


def test_quick_overrides_sizes_in_memory_only(project_dir):
    project = Project.load(project_dir)
    quick = loop.quick_project(project)
    assert quick.config.synth.max_chunks == loop.QUICK["synth"]["max_chunks"]
    assert quick.config.train.max_steps == loop.QUICK["train"]["max_steps"]
    assert quick.config.synth.format == project.config.synth.format  # the rest is the project's own
    assert Project.load(project_dir).config.synth.max_chunks is None
    assert loop.fingerprint(quick, "synth") != loop.fingerprint(project, "synth")
    # The small student, whatever the project trains: a quick run is a smoke test of every stage.
    assert project.config.student.ref == DEFAULT_STUDENT and quick.config.student.ref == QUICK_STUDENT
    assert quick.config.student.n_ctx == project.config.student.n_ctx
    assert loop.fingerprint(quick, "train") != loop.fingerprint(project, "train")


def test_unknown_forced_stage_is_a_clear_error(project_dir):
    with pytest.raises(ProtegeError, match="unknown stage"):
        loop.run_loop(Project.load(project_dir), force=["deploy"])


def test_closing_table_shows_both_metrics_and_the_judge_agreement(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "evaluate"))
    from eval_builders import make_info, make_results

    from protege.evaluate.metrics import summarize

    recall = ([0.0, 0.5, 0.0, 0.5], [0.5, 1.0, 0.5, 1.0], [1.0, 1.0, 1.0, 1.0])
    ev = summarize(make_results([2, 3, 2, 4], [5, 6, 4, 7], [8, 9, 8, 9], recall=recall), make_info(trained=True))
    rows = dict(loop.summary_rows({"eval": ev}))
    assert rows["fact recall, trained (key facts stated)"].startswith("75% [")
    assert rows["gap recovered, fact recall (paired)"].startswith("67% [")
    assert rows["gap recovered, rubric (paired, of teacher)"].startswith("48% [")
    assert rows["judge vs fact recall (Spearman, per answer)"].startswith("0.92 [")
