"""Constructed routing data where the right answer is known.

Two topics: on one the student is as good as the teacher, on the other it falls short. A
router that can tell the topics apart must beat random routing by a wide margin.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from protege.route.labels import Example, Examples


def two_topic_examples(n: int = 60, seed: int = 0, flip: float = 0.05) -> tuple[Examples, np.ndarray]:
    """Examples in two embedding clusters plus their (n, 384) unit embeddings.

    Topic 0 (the student masters it): both score 8. Topic 1: student 3, teacher 8. A share
    `flip` of labels is swapped so the data is not perfectly clean. The student is also less
    sure of itself on topic 1 (lower mean logprob), which the cascade can use.
    """
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(2, 384))
    topics = np.arange(n) % 2
    emb = centers[topics] + 0.9 * rng.normal(size=(n, 384))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    hard = topics.astype(bool) ^ (rng.random(n) < flip)
    items = [
        Example(
            id=f"q{i}", query=f"question {i} about topic {topics[i]}", source="eval",
            q_student=3.0 if hard[i] else 8.0, q_teacher=8.0, teacher_needed=bool(hard[i]),
            mean_logprob=float(-1.5 - hard[i] + 0.4 * rng.normal()), min_logprob=float(-6 + rng.normal()),
            student_latency_s=0.5,
        )
        for i in range(n)
    ]  # fmt: skip
    return Examples(items), emb.astype(np.float32)


def results_row(i: int, question: str, student: float | None, teacher: float | None, *,
                pairwise: str | None = None, mean_logprob: float | None = -1.0, key: str = "trained") -> dict[str, Any]:  # fmt: skip
    """One results.jsonl row as the eval stage writes it (docs/formats.md)."""
    answer = {"text": "...", "latency_s": 0.4, "completion_tokens": 20, "mean_logprob": mean_logprob,
              "min_logprob": None if mean_logprob is None else mean_logprob - 4, "rubric": student,
              "pairwise": pairwise, "pairwise_orders": [pairwise, pairwise], "similarity": 0.5, "judge_errors": []}  # fmt: skip
    return {
        "id": f"q-{i:04d}", "type": "factual", "question": question, "reference": "ref",
        "messages": [{"role": "system", "content": "You help."}, {"role": "user", "content": question}],
        "answers": {
            "untrained": dict(answer, rubric=2),
            key: answer,
            "teacher": {"text": "...", "latency_s": 4.0, "completion_tokens": 60, "rubric": teacher, "similarity": 1.0, "judge_errors": []},
        },
    }  # fmt: skip


def write_results(project_dir: Path, rows: list[dict[str, Any]], run: str = "run-1") -> Path:
    path = project_dir / "artifacts" / "reports" / run / "results.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
