"""protege.yaml as pydantic models: one place for every default.

The file is validated once, at the edge (`load_config`), and a bad file produces one line that
names the file and the key, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from protege.errors import ProtegeError

CONFIG_FILE = "protege.yaml"
DEFAULT_TEACHER = "embedded:qwen2.5-coder-1.5b-instruct"
DEFAULT_STUDENT = "embedded:qwen2.5-coder-0.5b-instruct"
QUICK_STUDENT = "embedded:smollm2-135m-instruct"  # protege run --quick and fast tests


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load, except that a key given twice in one mapping is an error, not "last wins"."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}' (the first value would be silently lost)", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class Strict(BaseModel):
    """Unknown keys are errors: a typo must not silently fall back to a default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(Strict):
    """A model endpoint: a reference (see protege.refs) plus how to call and price it.

    Written either as a plain reference string or as a mapping with `ref` and options.
    """

    ref: str
    price_input: float = Field(0.0, ge=0, description="USD per million input tokens")
    price_output: float = Field(0.0, ge=0, description="USD per million output tokens")
    api_key_env: str | None = Field(None, description="environment variable holding the API key")
    concurrency: int = Field(4, ge=1, le=256)
    timeout_s: float = Field(300.0, gt=0)
    max_retries: int = Field(4, ge=0, le=20)
    n_ctx: int = Field(4096, ge=256, description="context size for locally served GGUF models")
    license: str | None = Field(None, description="terms on training other models with its outputs")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"ref": value} if isinstance(value, str) else value

    @field_validator("ref")
    @classmethod
    def _valid_ref(cls, value: str) -> str:
        from protege.refs import parse_ref

        try:
            parse_ref(value)
        except ProtegeError as exc:
            raise ValueError(exc.message) from None
        return value


QUESTION_TYPES = (
    "factual",
    "how-to",
    "troubleshooting",
    "comparison",
    "multi-hop",
    "out-of-scope",
    "unsafe",
)  # the types of synth.type_mix
# A question on a topic the agent's system prompt says it avoids (a creator's "Topics they
# avoid"), declined in its own voice: planned apart (synth.avoided_topic_questions, synth/avoided.py).
AVOIDED_TOPIC = "avoided-topic"
# Question types whose right answer declines or hands off.
REFUSAL_TYPES = ("out-of-scope", "unsafe", AVOIDED_TOPIC)


class SynthConfig(Strict):
    chunk_tokens: int = Field(300, ge=32)
    chunk_overlap: int = Field(30, ge=0, description="tokens a continuation chunk repeats; at most chunk_tokens / 4")
    text_field: str = Field("text", description="field holding the text in .jsonl/.csv docs")
    questions_per_chunk: int = Field(4, ge=1, le=50)
    type_mix: dict[str, float] = Field(
        default_factory=lambda: {
            "factual": 0.4,
            "how-to": 0.2,
            "troubleshooting": 0.1,
            "comparison": 0.1,
            "multi-hop": 0.1,
            "out-of-scope": 0.07,
            "unsafe": 0.03,
        }
    )
    personas: list[str] = Field(
        default_factory=lambda: [
            "a first-time customer",
            "a busy regular who writes tersely",
            "someone comparing options before buying",
        ]
    )
    format: Literal["closed-book", "raft"] = "closed-book"
    raft_distractors: int = Field(2, ge=0)
    raft_oracle_fraction: float = Field(0.8, ge=0, le=1)
    avoided_topic_questions: int = Field(
        0, ge=0, le=1000, description="questions on the topics the persona says to avoid, on top of questions_per_chunk (declined in voice; held out like the rest; at most a third of the other questions); 0 = none (synth/avoided.py says what they cost the voice)"
    )
    raft_train_declines: float | None = Field(
        None, ge=0, lt=1, description="share of training's RAFT rows whose excerpts lack the answer: excerpt-less copies are added to reach it (synth/declines.py); default 1 - raft_oracle_fraction"
    )
    proposers: list[ModelConfig] = Field(
        default_factory=list, description="Mixture-of-Agents proposers; the teacher aggregates"
    )
    logprobs: int = Field(
        10, ge=0, le=20, description="store the teacher's top-k logprobs (token KD) when it returns them; 0 = off"
    )
    answer_max_tokens: int = Field(256, ge=16)
    judge: bool = Field(True, description="ask the judge to score every pair; pairs below judge_threshold are dropped")
    judge_threshold: float = Field(6.0, ge=0, le=10)
    grounding_threshold: float = Field(
        0.7, ge=0, le=1, description="share of an answer's content words that must occur in its source"
    )
    dedup_threshold: float = Field(0.8, gt=0, le=1)
    eval_fraction: float = Field(0.2, ge=0, lt=1)
    max_chunks: int | None = Field(None, ge=1, description="cap on chunks used (quick runs)")
    seed: int = 0

    @model_validator(mode="after")
    def _overlap_fits(self) -> "SynthConfig":
        # The chunker repeats the overlap in every continuation chunk and caps it at a quarter
        # of the budget (past that a chunk is mostly repetition). The default is capped quietly;
        # a value the owner wrote is never changed behind their back.
        if "chunk_overlap" in self.model_fields_set and self.chunk_overlap > self.chunk_tokens // 4:
            raise ValueError(f"chunk_overlap ({self.chunk_overlap}) must be at most a quarter of chunk_tokens "
                             f"({self.chunk_tokens}), i.e. {self.chunk_tokens // 4} or less")  # fmt: skip
        return self

    @field_validator("type_mix")
    @classmethod
    def _known_types(cls, mix: dict[str, float]) -> dict[str, float]:
        if AVOIDED_TOPIC in mix:  # their topics come from the persona, and their count is its own setting
            raise ValueError("avoided-topic questions are set by synth.avoided_topic_questions, not type_mix")
        unknown = sorted(set(mix) - set(QUESTION_TYPES))
        if unknown:
            raise ValueError(f"unknown question type(s) {unknown}; known: {list(QUESTION_TYPES)}")
        if any(v < 0 for v in mix.values()) or sum(mix.values()) <= 0:
            raise ValueError("weights must be non-negative and not all zero")
        return mix


class TrainConfig(Strict):
    method: Literal["lora", "full"] = "lora"
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    lora_targets: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    epochs: float = Field(3.0, gt=0)
    max_steps: int | None = Field(None, ge=1)
    learning_rate: float = Field(3e-4, gt=0)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    batch_size: int = Field(8, ge=1)
    max_seq_len: int = Field(512, ge=32)
    kd_weight: float = Field(0.5, ge=0, le=1)
    kd_temperature: float = Field(1.0, gt=0)
    checkpoint_every: int = Field(50, ge=1)
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="auto: bf16 where this machine runs it fast (AMX/AVX512-BF16 CPUs, GPUs), else fp32"
    )
    seed: int = 0


class EvalConfig(Strict):
    judge: ModelConfig | None = Field(None, description="defaults to the project's judge or teacher")
    max_questions: int | None = Field(None, ge=1)
    max_tokens: int = Field(256, ge=16)
    bootstrap: int = Field(2000, ge=100)
    pairwise: bool = Field(
        False, description="also judge each student against the teacher in both orders (2 calls per answer)"
    )
    seed: int = 0
    local_usd_per_hour: float = Field(
        0.10, ge=0, description="price of the machine a local model runs on (default: a 2-vCPU cloud VM)"
    )
    voice: bool | None = Field(
        None, description="measure style similarity to held-out posts against a generic assistant (evaluate/voice.py); "
        "default: when the docs include posts and the persona is written from them (no `persona:` in the config)",
    )


class RouteConfig(Strict):
    label: Literal["margin", "pairwise"] = "margin"
    margin: float = Field(1.0, ge=0, description="student is enough within this rubric margin")
    target_quality: float = Field(0.95, gt=0, le=1, description="share of teacher-only quality")
    teacher_budget: float | None = Field(None, gt=0, le=1, description="max share of teacher calls")
    folds: int = Field(5, ge=2)
    min_examples: int = Field(10, ge=4, description="fewest labelled queries a router is fitted on")
    seed: int = 0


class GuardConfig(Strict):
    llm: ModelConfig | Literal["teacher"] | None = Field(
        None, description="an LLM guard (Llama Guard compatible); 'teacher' uses the teacher"
    )
    policy: Literal["block", "flag"] = "block"
    redact_pii: bool = True
    classifier: str | None = Field(
        None,
        description="the distilled guard, checked before the LLM guard in a few ms: 'default' (shipped with "
        "protege) or a folder with classifier.json, relative to the project (e.g. artifacts/guard)",
    )


class ServeConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    retrieval: bool = Field(False, description="add the top-k doc chunks to the student's prompt")
    teacher_retrieval: bool = Field(
        True, description="add them to the teacher's prompt: a frontier model does not know the owner's docs"
    )
    retrieval_k: int = Field(3, ge=1)
    max_body_bytes: int = Field(1_000_000, ge=1024)
    max_queue: int = Field(64, ge=1)
    rate_limit_per_minute: int = Field(120, ge=1)
    student_timeout_s: float = Field(60.0, gt=0)
    max_tokens: int = Field(512, ge=1)

    def retrieves(self, route: str) -> bool:
        """Whether the model on `route` ("student" or "teacher") is shown document excerpts."""
        return {"student": self.retrieval, "teacher": self.teacher_retrieval}.get(route, False)


class ProjectConfig(Strict):
    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    docs: str = "docs"
    persona: str | None = Field(None, description="system prompt; default: artifacts/data/persona.md")
    teacher: ModelConfig = Field(default_factory=lambda: ModelConfig(ref=DEFAULT_TEACHER))
    student: ModelConfig = Field(default_factory=lambda: ModelConfig(ref=DEFAULT_STUDENT))
    judge: ModelConfig | None = Field(None, description="defaults to the teacher")
    synth: SynthConfig = Field(default_factory=SynthConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    route: RouteConfig = Field(default_factory=RouteConfig)
    guard: GuardConfig = Field(default_factory=GuardConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)

    @property
    def judge_model(self) -> ModelConfig:
        return self.eval.judge or self.judge or self.teacher


def section_hash(*parts: Any) -> str:
    """A short stable hash of config sections, so stages know when their inputs changed."""
    payload = [p.model_dump(mode="json") if isinstance(p, BaseModel) else p for p in parts]
    blob = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def describe_validation_error(exc: ValidationError, source: str) -> str:
    """One line naming the file and every offending key."""
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key '{loc}'")
        elif err["type"] == "missing":
            problems.append(f"missing key '{loc}'")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            got = err.get("input")
            shown = f" (got {got!r})" if got is not None and not isinstance(got, dict | list) else ""
            problems.append(f"'{loc}': {msg}{shown}")
    return f"{source}: " + "; ".join(problems)


def parse_config(data: Any, source: str = CONFIG_FILE) -> ProjectConfig:
    if not isinstance(data, dict):
        raise ProtegeError(f"{source}: expected a mapping of keys at the top level")
    try:
        return ProjectConfig.model_validate(data)
    except ValidationError as exc:
        raise ProtegeError(describe_validation_error(exc, source)) from None


def load_config(path: Path) -> ProjectConfig:
    """Read and validate a protege.yaml; every failure is one readable ProtegeError."""
    if path.is_dir():
        path = path / CONFIG_FILE
    if not path.is_file():
        raise ProtegeError(f"{path}: file not found", hint="create a project with `protege init DIR`")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ProtegeError(f"{path}{where}: not valid YAML: {problem}") from None
    except UnicodeDecodeError:
        raise ProtegeError(f"{path}: not UTF-8 text") from None
    return parse_config(data, str(path))
