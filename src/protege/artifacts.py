"""Reading and writing artifact files: atomic writes, and every bad line or file one ProtegeError
that names it (never a JSONDecodeError traceback), so any stage reads what another wrote safely."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from protege.errors import ProtegeError


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ProtegeError(f"{path}: not UTF-8 text (a damaged or foreign file)") from None


def read_json(path: Path, hint: str | None = None) -> Any:
    """A JSON file's content; a damaged file is an error naming it (with `hint`: how to recover)."""
    try:
        return json.loads(_text(path))
    except (ValueError, RecursionError) as exc:
        raise ProtegeError(f"{path}: not valid JSON ({getattr(exc, 'msg', None) or str(exc)[:120]})", hint=hint) from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every object in a JSONL file (none if it is absent); a bad line is an error naming it."""
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise ProtegeError(f"{path}:{number}: not valid JSON ({getattr(exc, 'msg', exc)})") from None
        if not isinstance(row, dict):
            raise ProtegeError(f"{path}:{number}: expected a JSON object")
        rows.append(row)
    return rows


def write_text(path: Path, text: str) -> None:
    """Through a temporary file, so a crash never leaves a half-written artifact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
