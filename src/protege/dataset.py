"""The training set's files, each with one owner, and the manifest that lists them.

    artifacts/data/train.jsonl, eval.jsonl   synth's: rewritten by every synth run
    artifacts/data/harvest-<n>.jsonl          harvest's: one file per harvest, never rewritten
    artifacts/data/preserved-<n>.jsonl        rows synth found in train.jsonl that it did not write
    artifacts/data/versions.jsonl             the manifest: one line per part beyond synth's, appended

`protege train` learns from `training_files()`: train.jsonl, then every part in the manifest, so
a new synth run never loses a harvested row, and a harvest never touches synth's files. card.md
is synth's file with one section derived from the manifest (`with_harvest_section`), which
harvest refreshes: rewriting either side loses nothing, since the manifest is the record.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protege import __version__
from protege.artifacts import read_jsonl, write_jsonl
from protege.errors import ProtegeError
from protege.project import ArtifactPaths

MANIFEST = "versions.jsonl"
HARVEST_HEADING = "## Harvested from live traffic"


@dataclass(frozen=True)
class Part:
    """One line of the manifest: a file of rows in the train.jsonl format."""

    version: int
    file: str
    source: str  # "harvest" or "preserved"
    rows: int
    created: float
    record: dict[str, Any]  # the line as written (harvest adds duplicates, redactions, traffic ids)


def parts(paths: ArtifactPaths) -> list[Part]:
    """The manifest's parts in order; a listed file that is gone is an error (its rows would be lost)."""
    manifest = paths.data / MANIFEST
    out = []
    for i, r in enumerate(read_jsonl(manifest), start=1):
        if not isinstance(r.get("file"), str) or not isinstance(r.get("version"), int):
            raise ProtegeError(f"{manifest}:{i}: needs a 'file' name and an integer 'version'")
        if not (paths.data / r["file"]).is_file():
            raise ProtegeError(f"{paths.data / r['file']}: listed in {manifest} but missing",
                               hint="restore the file, or remove its line from the manifest to drop its rows")  # fmt: skip
        rows = r.get("rows", r.get("added", 0))  # "added": what harvest wrote before parts had "rows"
        out.append(Part(r["version"], r["file"], r.get("source", "harvest"), rows, r.get("created", 0.0), r))
    return out


def training_files(paths: ArtifactPaths) -> list[Path]:
    """What train learns from, in order: synth's train.jsonl, then every part."""
    return [paths.train_jsonl, *(paths.data / p.file for p in parts(paths))]


def _next_version(paths: ArtifactPaths) -> int:
    listed = [p.version for p in parts(paths)]
    on_disk = [int(m.group(1)) for f in paths.data.glob("*-*.jsonl") if (m := re.fullmatch(r"\w+-(\d+)\.jsonl", f.name))]
    return max(listed + on_disk, default=0) + 1


def add_part(paths: ArtifactPaths, rows: list[dict[str, Any]], source: str, **record: Any) -> Part:
    """Write rows as a new part file and list it in the manifest (file first: a listed file exists)."""
    version = _next_version(paths)
    name = f"{source}-{version}.jsonl"
    write_jsonl(paths.data / name, rows)
    line = {"version": version, "file": name, "source": source, "rows": len(rows), "created": time.time(),
            **record, "code_version": __version__}  # fmt: skip
    with (paths.data / MANIFEST).open("a", encoding="utf-8") as f:
        f.write(json.dumps(line, ensure_ascii=False) + "\n")
    return Part(version, name, source, len(rows), line["created"], line)


def preserve_foreign_rows(paths: ArtifactPaths, written_by_synth: Callable[[dict[str, Any]], bool]) -> Part | None:
    """Before synth rewrites train.jsonl: rows in it that synth did not write and no part holds
    (added by hand, or harvested by an older protege that appended to train.jsonl) go to a part."""
    held = {r.get("id") for p in parts(paths) for r in read_jsonl(paths.data / p.file)}
    foreign = [r for r in read_jsonl(paths.train_jsonl) if not written_by_synth(r) and r.get("id", object()) not in held]
    if not foreign:
        return None
    return add_part(paths, foreign, "preserved", note="rows found in train.jsonl that synth did not write")


def harvest_section(found: list[Part]) -> str:
    """The card's section on the parts beyond synth's, from the manifest."""
    lines = [HARVEST_HEADING, ""]
    if not found:
        return "\n".join(lines + ["None yet: `protege harvest DIR` adds teacher-answered traffic here.", ""])
    lines += ["| part | file | rows | from | when |", "| ---: | --- | ---: | --- | --- |"]
    for p in found:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(p.created)) if p.created else "?"
        origin = "live traffic" if p.source == "harvest" else "kept from train.jsonl"
        lines.append(f"| {p.version} | `{p.file}` | {p.rows} | {origin} | {when} |")
    harvested = [p.record for p in found if p.source == "harvest"]
    if harvested:
        lines += ["", f"Harvest dropped {sum(r.get('duplicates', 0) for r in harvested)} near-duplicate(s) of the dataset "
                  f"and redacted {sum(r.get('redactions', 0) for r in harvested)} PII span(s); rated-down answers are "
                  "never harvested."]  # fmt: skip
    total = sum(p.rows for p in found)
    lines += ["", f"`protege train` learns from train.jsonl plus these {total} row(s) (listed in `{MANIFEST}`).", ""]
    return "\n".join(lines)


def with_harvest_section(card: str, found: list[Part]) -> str:
    """A card with its harvest section replaced by one made from `found` (added if absent)."""
    head = card.split(f"\n{HARVEST_HEADING}\n", 1)[0].rstrip("\n") if card else ""
    return (head + "\n\n" if head else "") + harvest_section(found)
