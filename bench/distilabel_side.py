"""distilabel's side of bench/synth_vs_distilabel.py; runs inside .bench-venv, where distilabel is.

    .bench-venv/bin/python bench/distilabel_side.py URL CHUNKS.json QUESTIONS MAX_TOKENS OUT.json

SelfInstruct writes questions about each chunk, KeepFirst keeps as many per chunk as protege is
asked for (SelfInstruct returns every line the model wrote), TextGeneration answers each. The
step is a module-level class: distilabel pickles steps to its worker processes.
"""

# No `from __future__ import annotations`: distilabel reads a step's StepInput type hint at run time.
import json
import sys
import time
from pathlib import Path

import distilabel
from distilabel.models import OpenAILLM
from distilabel.pipeline import Pipeline
from distilabel.steps import ExpandColumns, LoadDataFromDicts, Step, StepInput
from distilabel.steps.tasks import SelfInstruct, TextGeneration


class KeepFirst(Step):
    """Keeps the first n instructions of each row, so both sides answer as many questions."""

    n: int = 1

    @property
    def inputs(self) -> list[str]:
        return ["instructions"]

    @property
    def outputs(self) -> list[str]:
        return ["instructions"]

    def process(self, inputs: StepInput):  # noqa: ANN201
        for row in inputs:
            row["instructions"] = (row.get("instructions") or [])[: self.n]
        yield inputs


def llm(url: str, temperature: float, max_tokens: int) -> OpenAILLM:
    return OpenAILLM(model="local", base_url=url, api_key="sk-local", timeout=600,
                     generation_kwargs={"temperature": temperature, "max_new_tokens": max_tokens})  # fmt: skip


def teacher_tokens(rows: list[dict]) -> int:
    """Prompt + completion tokens of every call, counted once (expanded rows repeat their parent's)."""
    tokens, seen = 0, set()
    for r in rows:
        for step, stats in (r.get("distilabel_metadata") or {}).items():
            if not step.startswith("statistics_") or not isinstance(stats, dict):
                continue
            key = (step, r["input"]) if "self_instruct" in step else (step, r["input"], r.get("instruction"))
            if key in seen:
                continue
            seen.add(key)
            for field in ("input_tokens", "output_tokens"):  # a list per generation, or one int
                value = stats.get(field) or 0
                tokens += sum(value) if isinstance(value, list) else int(value)
    return tokens


def main(url: str, chunks: list[str], questions: int, max_tokens: int, out: Path) -> None:
    with Pipeline(name="protege-bench") as pipeline:
        load = LoadDataFromDicts(data=[{"input": c} for c in chunks])
        instruct = SelfInstruct(llm=llm(url, 0.8, 256), num_instructions=questions,
                                application_description="A bike shop's customer support assistant.")  # fmt: skip
        first = KeepFirst(n=questions)
        expand = ExpandColumns(columns={"instructions": "instruction"})
        answer = TextGeneration(llm=llm(url, 0.0, max_tokens))
        load >> instruct >> first >> expand >> answer
    t0 = time.perf_counter()
    distiset = pipeline.run(use_cache=False)
    wall = time.perf_counter() - t0
    rows = list(distiset["default"]["train"])
    pairs = [r for r in rows if r.get("instruction") and r.get("generation")]
    out.write_text(json.dumps({"wall_s": wall, "pairs": len(pairs), "tokens": teacher_tokens(rows),
                               "version": distilabel.__version__}))  # fmt: skip


if __name__ == "__main__":
    url, spec, questions, max_tokens, out = sys.argv[1:6]
    main(url, json.loads(Path(spec).read_text()), int(questions), int(max_tokens), Path(out))
