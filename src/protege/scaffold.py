"""`protege init`: a new project folder with protege.yaml and the owner's documents, or more documents
for an existing one (with --force), never losing a setting or a file."""

from __future__ import annotations

import filecmp
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from protege.config import CONFIG_FILE, DEFAULT_STUDENT, DEFAULT_TEACHER, UniqueKeyLoader, load_config, parse_config
from protege.errors import ProtegeError
from protege.project import ArtifactPaths

TEMPLATE = """\
# protege project. Every key and its default: protege/config.py. Model references: README.
name: {name}
docs: {docs}                      # the owner's documents (.md .txt .html .pdf .csv .jsonl)
# persona: "You are the support agent of ..."   # default: artifacts/data/persona.md
teacher: {teacher}
student: {student}
# A hosted teacher (the key comes from an environment variable, never from this file):
# teacher:
#   ref: openai:meta-llama/Meta-Llama-3.1-405B-Instruct@https://api.together.xyz/v1
#   api_key_env: TOGETHER_API_KEY
#   price_input: 3.5               # USD per million tokens
#   price_output: 3.5
synth:
  questions_per_chunk: 4
  format: closed-book             # or raft (the student is given retrieved context)
train:
  epochs: 3
"""


@dataclass
class InitResult:
    config_path: Path
    docs_dir: Path
    created: bool  # a new protege.yaml (else the existing one was kept or updated)
    copied: int = 0  # documents added or replaced
    unchanged: int = 0  # documents already there with the same content
    backed_up: list[Path] = field(default_factory=list)  # files replaced, as copied into the backup folder
    settings: list[str] = field(default_factory=list)  # protege.yaml keys changed
    backup_dir: Path | None = None  # artifacts/backups/<time>/ when something was replaced


def _doc_files(source: Path) -> list[tuple[Path, Path]]:
    """(file, path relative to the docs folder) for a file or a folder of documents."""
    if not source.exists():
        raise ProtegeError(f"--docs: not found: {source}")
    if source.is_file():
        return [(source, Path(source.name))]
    return [(f, f.relative_to(source)) for f in sorted(source.rglob("*")) if f.is_file()]


def _backup(root: Path, files: list[Path]) -> tuple[Path | None, list[Path]]:
    """Copy each file (inside root) to a new artifacts/backups/<time>/ before it is replaced."""
    if not files:
        return None, []
    base = ArtifactPaths(root).backups / time.strftime("%Y%m%d-%H%M%S")
    folder, n = base, 1
    while folder.exists():  # two runs in one second never share (and overwrite) a backup
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    out = []
    for f in files:
        dest = folder / (f.relative_to(root) if f.is_relative_to(root) else Path("outside") / f.name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest)
        out.append(dest)
    return folder, out


def _updated_config(config_path: Path, changes: dict[str, str]) -> tuple[str, dict]:
    """The existing protege.yaml with only `changes` applied, validated; (text, parsed data)."""
    data = yaml.load(config_path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader) or {}
    if not isinstance(data, dict):
        raise ProtegeError(f"{config_path}: expected a mapping of keys at the top level")
    data.update(changes)
    parse_config(data, str(config_path))
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True), data


def init_project(
    directory: Path,
    *,
    docs: Path | None = None,
    teacher: str | None = None,
    student: str | None = None,
    name: str | None = None,
    force: bool = False,
) -> InitResult:
    """Create a project, or (with force) add documents to one. Nothing is ever lost.

    On an existing project, protege.yaml keeps every setting: only teacher, student and name
    given here change. A document with the name of a different existing one replaces it only
    with force. Every file replaced is first copied to artifacts/backups/<time>/.
    """
    directory = directory.expanduser().resolve()
    if directory.exists() and not directory.is_dir():
        raise ProtegeError(f"{directory}: is a file; `protege init` needs a folder (new or existing)")
    config_path = directory / CONFIG_FILE
    exists = config_path.is_file()
    if exists and not force:
        raise ProtegeError(f"{config_path} already exists",
                           hint="use --force to add documents or change teacher/student/name; other settings are kept "
                                "and anything replaced is backed up")  # fmt: skip
    changes = {k: v for k, v in (("name", name), ("teacher", teacher), ("student", student)) if v is not None}
    if exists:
        text, data = _updated_config(config_path, changes) if changes else (None, load_config(config_path).model_dump())
    else:
        text = TEMPLATE.format(name=name or directory.name, docs="docs", teacher=teacher or DEFAULT_TEACHER,
                               student=student or DEFAULT_STUDENT)  # fmt: skip
        data = yaml.safe_load(text)
        parse_config(data, str(config_path))  # validate refs and name before writing
    docs_dir = directory / data.get("docs", "docs")

    incoming = _doc_files(docs.expanduser().resolve()) if docs else []
    new, same, replaced = [], 0, []
    for src, rel in incoming:
        dest = docs_dir / rel
        if not dest.exists():
            new.append((src, dest))
        elif dest.is_file() and filecmp.cmp(src, dest, shallow=False):
            same += 1
        elif dest.is_file():
            replaced.append((src, dest))
        else:
            raise ProtegeError(f"{dest}: a folder is in the way of document {src}")
    if replaced and not force:
        names = ", ".join(str(d.relative_to(docs_dir)) for _, d in replaced[:5])
        raise ProtegeError(f"{len(replaced)} document(s) in {docs_dir} have the same name but other content ({names})",
                           hint="use --force to replace them (the old ones are backed up first)")  # fmt: skip

    result = InitResult(config_path, docs_dir, created=not exists, unchanged=same, settings=sorted(changes) if exists else [])
    result.backup_dir, result.backed_up = _backup(directory, [d for _, d in replaced] + ([config_path] if exists and changes else []))
    docs_dir.mkdir(parents=True, exist_ok=True)
    for src, dest in new + replaced:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    result.copied = len(new) + len(replaced)
    if text is not None:
        tmp = config_path.with_name(CONFIG_FILE + ".partial")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(config_path)
    return result
