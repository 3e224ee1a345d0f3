"""`protege keys`, `protege serve` and `protege harvest` as a user runs them (subprocesses)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml


def protege(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="250")
    return subprocess.run([sys.executable, "-m", "protege.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)  # fmt: skip


def project(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    (root / "docs").mkdir(parents=True)
    (root / "protege.yaml").write_text(yaml.safe_dump({"name": "shop"}))
    return root


def test_keys_are_shown_once_listed_by_id_and_revoked(tmp_path):
    root = project(tmp_path)
    created = protege("keys", "create", str(root), "--name", "web", "--rate-limit", "30")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[0]
    key_id = re.fullmatch(r"pk-([0-9a-f]{8})-\S+", key).group(1)
    assert "shown only this once" in created.stderr
    listed = protege("keys", "list", str(root))
    assert key_id in listed.stdout and "web" in listed.stdout and "30/min" in listed.stdout
    assert key not in listed.stdout
    assert key.encode() not in (root / "artifacts" / "keys.db").read_bytes()
    assert protege("keys", "revoke", key_id, str(root)).returncode == 0
    assert "revoked" in protege("keys", "list", str(root)).stdout
    again = protege("keys", "revoke", key_id, str(root))
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "already revoked" in again.stderr


def test_serve_refuses_a_public_address_without_keys(tmp_path):
    root = project(tmp_path)
    result = protege("serve", str(root), "--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 2
    assert "refusing to serve on 0.0.0.0 without API keys" in result.stderr and "Traceback" not in result.stderr


def test_serve_refuses_two_projects_with_one_name(tmp_path):
    a, b = project(tmp_path / "a"), project(tmp_path / "b")
    result = protege("serve", str(a), str(b))
    assert result.returncode == 2 and "both named 'shop'" in result.stderr


def test_harvest_reports_in_one_line(tmp_path):
    root = project(tmp_path)
    result = protege("harvest", str(root))
    assert result.returncode == 2 and "no traffic log yet" in result.stderr and "Traceback" not in result.stderr
    from protege.traffic import database_url, make_engine

    make_engine(database_url(None, root / "artifacts" / "traffic.db")).dispose()  # an empty log
    empty = protege("harvest", str(root))
    assert empty.returncode == 0 and "Nothing new to harvest" in empty.stdout
