"""`protege init`: a new project folder with protege.yaml and the owner's documents."""

from __future__ import annotations

import shutil
from pathlib import Path

from protege.config import CONFIG_FILE, DEFAULT_STUDENT, DEFAULT_TEACHER, parse_config
from protege.errors import ProtegeError

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


def copy_docs(source: Path, target: Path) -> int:
    """Copy a file or a folder of documents; returns the number of files copied."""
    if not source.exists():
        raise ProtegeError(f"--docs: not found: {source}")
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    for f in files:
        dest = target / (f.name if source.is_file() else f.relative_to(source))
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest)
    return len(files)


def init_project(
    directory: Path,
    *,
    docs: Path | None = None,
    teacher: str = DEFAULT_TEACHER,
    student: str = DEFAULT_STUDENT,
    name: str | None = None,
    force: bool = False,
) -> tuple[Path, int]:
    directory = directory.expanduser().resolve()
    config_path = directory / CONFIG_FILE
    if config_path.exists() and not force:
        raise ProtegeError(f"{config_path} already exists", hint="use --force to overwrite it")
    name = name or directory.name
    text = TEMPLATE.format(name=name, docs="docs", teacher=teacher, student=student)
    import yaml

    parse_config(yaml.safe_load(text), f"{config_path}")  # validate refs and name before writing
    docs_dir = directory / "docs"
    docs_dir.mkdir(parents=True, exist_ok=True)
    copied = copy_docs(docs.expanduser().resolve(), docs_dir) if docs else 0
    config_path.write_text(text, encoding="utf-8")
    return config_path, copied
