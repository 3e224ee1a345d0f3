"""`protege init`: a new project, or more documents for an existing one, never losing a setting or a file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from protege.errors import ProtegeError
from protege.scaffold import init_project


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    first = tmp_path / "first"
    first.mkdir()
    (first / "hours.md").write_text("# Hours\n\nNine to five.\n")
    root = tmp_path / "shop"
    init_project(root, docs=first, name="shop")
    config = yaml.safe_load((root / "protege.yaml").read_text())
    config.update(persona="You are the Riverbend bike shop.", synth={"questions_per_chunk": 7})
    (root / "protege.yaml").write_text(yaml.safe_dump(config))
    return root


def test_force_docs_adds_documents_and_keeps_every_setting(project: Path, tmp_path: Path):
    more = tmp_path / "more"
    more.mkdir()
    (more / "repairs.md").write_text("# Repairs\n\nA tune-up is $79.\n")
    (more / "hours.md").write_text("# Hours\n\nNine to five.\n")  # the same document again
    before = (project / "protege.yaml").read_bytes()
    result = init_project(project, docs=more, force=True)
    assert (project / "protege.yaml").read_bytes() == before
    assert (result.copied, result.unchanged, result.backed_up) == (1, 1, [])
    assert (project / "docs" / "repairs.md").is_file() and (project / "docs" / "hours.md").is_file()


def test_a_same_name_document_is_replaced_only_with_force_and_backed_up(project: Path, tmp_path: Path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "hours.md").write_text("# Hours\n\nWe moved: ten to six.\n")
    before = tree(project)
    with pytest.raises(ProtegeError, match="already exists"):
        init_project(project, docs=other)  # no --force
    assert tree(project) == before
    fresh = tmp_path / "fresh"  # a folder with documents but no project yet
    (fresh / "docs").mkdir(parents=True)
    (fresh / "docs" / "hours.md").write_text("mine")
    with pytest.raises(ProtegeError, match=r"1 document\(s\) .* same name but other content \(hours.md\)"):
        init_project(fresh, docs=other)
    assert tree(fresh) == {"docs/hours.md": b"mine"}
    result = init_project(project, docs=other, force=True)
    assert (project / "docs" / "hours.md").read_text().endswith("ten to six.\n")
    [backup] = result.backed_up
    assert backup.read_bytes() == before["docs/hours.md"] and backup.is_relative_to(project / "artifacts" / "backups")
    assert (project / "protege.yaml").read_bytes() == before["protege.yaml"]


def test_force_with_a_setting_changes_only_that_setting(project: Path):
    before = (project / "protege.yaml").read_bytes()
    result = init_project(project, student="embedded:gemma3-270m", force=True)
    config = yaml.safe_load((project / "protege.yaml").read_text())
    assert config["student"] == "embedded:gemma3-270m"
    assert config["persona"] == "You are the Riverbend bike shop." and config["synth"] == {"questions_per_chunk": 7}
    assert result.settings == ["student"] and result.backed_up[0].read_bytes() == before
    again = init_project(project, student="embedded:gemma3-270m", force=True)
    assert again.backup_dir != result.backup_dir  # a second run never overwrites the first backup


def test_init_on_a_file_is_one_clear_error(tmp_path: Path):
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    with pytest.raises(ProtegeError, match="is a file"):
        init_project(f)
    assert f.read_text() == "hello"
