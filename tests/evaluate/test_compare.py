import pytest
from eval_builders import make_info, make_results

from protege.errors import ProtegeError
from protege.evaluate.compare import compare
from protege.evaluate.metrics import summarize
from protege.evaluate.report import write_report
from protege.project import Project


def _report(project, name, trained_scores):
    results = make_results([2, 3, 2, 4], trained_scores, [8, 9, 8, 8])
    info = make_info(trained=trained_scores is not None) | {"run": name}
    write_report(project.paths.report(name), results, summarize(results, info))


def test_compare_two_runs_side_by_side_with_a_paired_difference(project_dir):
    project = Project.load(project_dir)
    _report(project, "run-a", [4, 5, 4, 6])
    _report(project, "run-b", [6, 7, 5, 7])
    c = compare(project, "run-a", "run-b")
    assert c.header == ["figure", "run-a", "run-b"]
    rows = {r[0]: r[1:] for r in c.rows}
    assert rows["mean rubric: student"][0].startswith("4.75 [") and rows["mean rubric: student"][1].startswith("6.25 [")
    assert c.difference["value"] == pytest.approx(1.5) and c.difference["n"] == 4
    md = c.md_path.read_text()
    assert c.md_path.name == "compare-run-a-vs-run-b.md" and "Paired difference" in md and "(n=4)" in md
    assert "<table>" in c.html_path.read_text()


def test_compare_with_the_untrained_report(project_dir):
    project = Project.load(project_dir)
    _report(project, "untrained", None)
    _report(project, "run-b", [6, 7, 5, 7])
    rows = {r[0]: r[1:] for r in compare(project, "untrained", "run-b").rows}
    assert rows["student compared"] == ["untrained (no trained run)", "trained"]
    assert rows["gap recovered"][0].startswith("n/a")


def test_compare_a_run_without_a_report_is_a_clear_error(project_dir):
    project = Project.load(project_dir)
    _report(project, "run-a", [4, 5, 4, 6])
    with pytest.raises(ProtegeError, match="no eval report for run 'run-x'") as exc:
        compare(project, "run-a", "run-x")
    assert "run-a" in str(exc.value)  # the hint lists the reports there are


def test_compare_from_the_cli_prints_the_table_and_the_files(project_dir):
    from typer.testing import CliRunner

    from protege.cli import app

    project = Project.load(project_dir)
    _report(project, "run-a", [4, 5, 4, 6])
    _report(project, "run-b", [6, 7, 5, 7])
    res = CliRunner().invoke(app, ["eval", str(project_dir), "--compare", "run-a", "run-b"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "mean rubric: student" in res.output and "compare-run-a-vs-run-b.html" in res.output
