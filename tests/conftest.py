"""Shared fixtures. Real components: llama.cpp servers on loopback serving the embedded models.

The server pool is process-wide, so every test that asks for the same model reuses one server.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from protege.config import ModelConfig
from protege.models.embedded import REGISTRY

TEACHER_REF = "embedded:qwen2.5-coder-1.5b-instruct"
STUDENT_REF = "embedded:smollm2-135m-instruct"


def _require_embedded(name: str) -> None:
    missing = REGISTRY[name].missing_packages()
    if missing:
        # Not a skip: CI must have the models (make setup installs them); a gap is a failure.
        pytest.fail(f"embedded model {name} missing packages {missing}: run make setup")


@pytest.fixture(scope="session")
def teacher_model() -> ModelConfig:
    _require_embedded("qwen2.5-coder-1.5b-instruct")
    return ModelConfig(ref=TEACHER_REF, n_ctx=4096)


@pytest.fixture(scope="session")
def student_model() -> ModelConfig:
    _require_embedded("smollm2-135m-instruct")
    return ModelConfig(ref=STUDENT_REF, n_ctx=2048)


@pytest.fixture(scope="session", autouse=True)
def _stop_servers_at_end():
    yield
    from protege.models.server import POOL

    POOL.stop_all()


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A minimal project folder with two small documents."""
    from protege.scaffold import init_project

    docs = tmp_path / "src-docs"
    docs.mkdir()
    (docs / "hours.md").write_text(
        "# Opening hours\n\nThe Riverbend store opens 9:00-18:00 Monday to Friday and 10:00-16:00 on Saturday. "
        "It is closed on Sunday.\n"
    )
    (docs / "repairs.md").write_text(
        "# Repairs\n\nA basic tune-up costs $79 and takes two working days. "
        "A flat tyre repair costs $15 while you wait.\n"
    )
    root = tmp_path / "proj"
    init_project(root, docs=docs, name="proj")
    return root


def _postgres_bin(tool: str) -> str:
    """Debian keeps the server tools (initdb, pg_ctl) off PATH, under /usr/lib/postgresql/<major>/bin."""
    found = shutil.which(tool) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"), reverse=True)), None)
    if found is None:
        # Not a skip: `make test` installs PostgreSQL (make postgres); a gap is a failure.
        pytest.fail(f"PostgreSQL's {tool} not found: run `make postgres` (apt-get install postgresql)")
    return found


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server on a Unix socket in a private folder, for the whole session.

    It runs as the `postgres` system user (Debian's package makes it; the server refuses root)
    and trusts local connections, so `postgresql://postgres@/DB?host=<folder>` connects."""
    folder = Path(tempfile.mkdtemp(prefix="protege-pg-"))
    data, log = folder / "data", folder / "server.log"
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(folder, "postgres", "postgres")
    quiet = {"check": True, "capture_output": True, "timeout": 120}
    subprocess.run([*as_postgres, _postgres_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                    "--no-sync", "-E", "UTF8"], **quiet)  # fmt: skip
    options = f"-k {folder} -c listen_addresses='' -c fsync=off -c max_connections=200"
    subprocess.run([*as_postgres, _postgres_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"], **quiet)
    try:
        yield folder
    finally:
        subprocess.run([*as_postgres, _postgres_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


_databases = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def traffic_db(request, tmp_path) -> str:
    """A traffic-log database URL, as `--db` takes it: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'traffic.db'}"
    import psycopg

    folder = request.getfixturevalue("postgres_server")
    name = f"traffic_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(f"host={folder} user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql://postgres@/{name}?host={folder}"


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def browser():
    """Headless Debian Chromium driven by playwright (no playwright browser download).

    Function-scoped on purpose: playwright's sync API keeps an event loop running in the main
    thread while it is open, which would break every later test that calls asyncio.run()."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not found: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


def pytest_configure(config):  # noqa: ANN001
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
