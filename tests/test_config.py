"""protege.yaml errors: each bad input gives one line naming the file and the key."""

from pathlib import Path

import pytest

from protege.config import ProjectConfig, load_config, parse_config, section_hash
from protege.errors import ProtegeError

BAD_CONFIGS = [
    ("name: x\ntecher: embedded:smollm2-135m-instruct\n", "unknown key 'techer'"),
    ("name: x\nsynth:\n  questions_per_chunk: lots\n", "'synth.questions_per_chunk'"),
    ("name: x\nsynth:\n  questions_per_chunk: 0\n", "greater than or equal to 1"),
    ("docs: docs\n", "missing key 'name'"),
    ("name: x\nteacher: gpt4\n", "no known scheme"),
    ("name: x\nteacher: embedded:llama-9000\n", "unknown embedded model 'llama-9000'"),
    ("name: x\nstudent:\n  ref: openai:gpt-4o\n", "must be openai:MODEL@BASE_URL"),
    ("name: x\nsynth:\n  type_mix: {factual: 1, gossip: 1}\n", "unknown question type(s) ['gossip']"),
    ("name: x\ntrain:\n  method: qlora\n", "'train.method'"),
    ("name: x\nserve: [1, 2]\n", "'serve'"),
    ("- just\n- a list\n", "expected a mapping"),
    ("name: x\n  bad: indent\n", "not valid YAML"),
    ("name: 'has spaces'\n", "'name'"),
    ("name: x\nteacher: embedded:smollm2-135m-instruct\nteacher: ollama:llama3.1\n", "line 3: not valid YAML: duplicate key 'teacher'"),
    ("name: x\nsynth:\n  seed: 1\n  seed: 2\n", "duplicate key 'seed'"),
    ("name: x\nsynth:\n  chunk_tokens: 100\n  chunk_overlap: 100\n", "chunk_overlap (100) must be at most a quarter of chunk_tokens (100)"),
    ("name: x\nteacher: openai:x@http://\n", "names no host"),
    ("name: x\nteacher: openai:x@https:///v1\n", "names no host"),
    ("name: x\nsynth:\n  type_mix: {factual: 1, avoided-topic: 1}\n", "set by synth.avoided_topic_questions, not type_mix"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_CONFIGS)
def test_bad_config_gives_one_clear_line(tmp_path: Path, text: str, expected: str):
    path = tmp_path / "protege.yaml"
    path.write_text(text)
    with pytest.raises(ProtegeError) as info:
        load_config(path)
    message = str(info.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message and "Traceback" not in message


def test_the_default_overlap_fits_any_chunk_size():
    assert parse_config({"name": "x", "synth": {"chunk_tokens": 40}}).synth.chunk_overlap == 30  # the chunker caps it


def test_missing_file_names_the_file(tmp_path: Path):
    with pytest.raises(ProtegeError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


def test_plain_string_and_mapping_model_forms_agree():
    a = parse_config({"name": "x", "teacher": "ollama:llama3.1"})
    b = parse_config({"name": "x", "teacher": {"ref": "ollama:llama3.1"}})
    assert a.teacher == b.teacher
    assert a.judge_model == a.teacher  # the judge defaults to the teacher


def test_section_hash_follows_changes():
    a = ProjectConfig(name="x")
    b = ProjectConfig(name="x", synth={"questions_per_chunk": 7})
    assert section_hash(a.synth) == section_hash(ProjectConfig(name="y").synth)
    assert section_hash(a.synth) != section_hash(b.synth)
