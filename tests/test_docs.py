"""The docs cannot rot: every `protege ...` command in README.md and docs/*.md must parse against
the real CLI (its subcommands, arguments and options exist), and the cheap ones are run."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from protege.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def documented_commands() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", text, flags=re.S)  # output blocks are untagged
        lines = [line for block in blocks for line in block.splitlines()]
        lines += re.findall(r"`(protege [^`]+)`", text)
        for line in lines:
            line = line.split("#")[0].strip()
            if line.startswith("protege ") and not line.split()[1].endswith(":"):
                found.append((doc.name, line))
    return sorted(set(found))


COMMANDS = documented_commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 15
    shown = {c.split()[1] for _, c in COMMANDS}
    assert {"init", "synth", "train", "eval", "route", "serve", "harvest", "run", "keys", "guard"} <= shown


@pytest.mark.parametrize(("doc", "command"), COMMANDS)
def test_documented_command_parses(doc, command):
    """Parsed by the real CLI: an unknown command or option fails (`--help` stops before running)."""
    args = [a for a in shlex.split(command)[1:] if a not in ("...", "DIR...")]
    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, f"{doc}: `{command}`: {result.output[-400:]}"
    assert "Usage:" in result.output


def test_a_wrong_command_or_option_would_be_caught():
    assert CliRunner().invoke(app, ["serve", "x", "--bogus", "--help"]).exit_code != 0
    assert CliRunner().invoke(app, ["route", "fitt", "x", "--help"]).exit_code != 0


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "protege.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_cheap_documented_commands_run(tmp_path):
    """init, the dry run and the rules-only guard run for real, as a reader would type them."""
    shop = run("init", "my-shop", "--docs", str(ROOT / "examples" / "riverbend-bikes" / "docs"), cwd=tmp_path)
    assert shop.returncode == 0, shop.stderr
    dry = run("synth", "my-shop", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "calls" in dry.stdout.lower() and not (tmp_path / "my-shop" / "artifacts" / "data" / "train.jsonl").exists()
    creator = run("init", "maya", "--docs", str(ROOT / "examples" / "creator" / "docs" / "posts.jsonl"), cwd=tmp_path)
    assert creator.returncode == 0 and (tmp_path / "maya" / "docs" / "posts.jsonl").is_file()
    guard = run("guard", "check", "Mail me at jo@example.com", "--rules-only", cwd=tmp_path)
    assert "[EMAIL]" in guard.stdout and "jo@example.com" not in guard.stdout
    key = run("keys", "create", "my-shop", "--name", "website", cwd=tmp_path)
    assert key.returncode == 0, key.stderr
