"""The protege command as a user runs it: a subprocess, its exit code and what it prints."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HEAVY = ("torch", "transformers", "llama_cpp", "sentence_transformers", "sklearn", "matplotlib", "fastapi", "peft")


def protege(*args: str, cwd: Path | None = None, stdin: str | None = None, timeout: float = 120):
    env = dict(os.environ, COLUMNS="250")  # wide enough that tables are not cut
    return subprocess.run(
        [sys.executable, "-m", "protege.cli", *args], capture_output=True, text=True, cwd=cwd, input=stdin,
        timeout=timeout, env=env,
    )  # fmt: skip


@pytest.mark.parametrize("argv", [["--help"], ["init", "--help"], ["models"], ["doctor"]])
def test_light_commands_never_import_heavy_libraries(argv):
    code = (
        "import sys\nfrom protege.cli import app\n"
        f"try:\n    app({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in result.stdout, result.stdout[-500:] + result.stderr[-500:]


def test_help_lists_the_foundation_commands():
    out = protege("--help").stdout
    for command in ("init", "models", "chat", "doctor"):
        assert command in out


def test_init_writes_a_valid_project(tmp_path):
    docs = tmp_path / "mydocs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("# A\n")
    (docs / "sub" / "b.txt").write_text("b\n")
    result = protege("init", str(tmp_path / "shop"), "--docs", str(docs), "--student", "embedded:gemma3-270m")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((tmp_path / "shop" / "protege.yaml").read_text())
    assert config["name"] == "shop" and config["student"] == "embedded:gemma3-270m"
    assert (tmp_path / "shop" / "docs" / "sub" / "b.txt").read_text() == "b\n"
    assert "Next:" in result.stdout and "protege synth" in result.stdout

    again = protege("init", str(tmp_path / "shop"))
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["init", "X", "--teacher", "gpt-4"], "no known scheme"),
        (["init", "X", "--student", "embedded:nope"], "unknown embedded model 'nope'"),
        (["init", "X", "--docs", "/nonexistent/docs"], "--docs: not found"),
        (["chat", "openai:gpt-4o"], "must be openai:MODEL@BASE_URL"),
        (["chat", "hf:HuggingFaceTB/SmolLM2-135M"], "hf: references are for training"),
    ],
)
def test_errors_are_one_line_without_traceback(tmp_path, args, expected):
    args = [str(tmp_path / a) if a == "X" else a for a in args]
    result = protege(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1


def test_models_lists_every_embedded_model_and_the_default_student():
    result = protege("models")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if "embedded:" in line}
    assert set(rows) == {"embedded:qwen2.5-coder-1.5b-instruct", "embedded:qwen2.5-coder-0.5b-instruct",
                         "embedded:smollm2-135m-instruct", "embedded:gemma3-270m", "embedded:minilm-l6-v2"}  # fmt: skip
    student = rows["embedded:qwen2.5-coder-0.5b-instruct"]
    assert "default student" in student and "491 MB" in student and "yes" in student
    assert "--quick" in rows["embedded:smollm2-135m-instruct"]


def test_init_defaults_to_the_0_5b_student(tmp_path):
    result = protege("init", str(tmp_path / "shop"))
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((tmp_path / "shop" / "protege.yaml").read_text())
    assert config["student"] == "embedded:qwen2.5-coder-0.5b-instruct"
    assert config["teacher"] == "embedded:qwen2.5-coder-1.5b-instruct"


def test_doctor_reports_every_check():
    result = protege("doctor")
    for name in ("python", "llama.cpp", "embedded:qwen2.5-coder-1.5b-instruct", "free disk", "available RAM"):
        assert name in result.stdout
    assert result.returncode in (0, 1)


@pytest.mark.slow
def test_chat_streams_an_answer_from_a_real_model():
    result = protege("chat", "embedded:smollm2-135m-instruct", "--temperature", "0", "--max-tokens", "20",
                     stdin="What is the capital of France? Answer in one word.\n")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    assert "1 answer(s)" in result.stderr
