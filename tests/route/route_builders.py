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


# A bike shop's questions. The student handles the short factual ones (hours, prices, where,
# contact) and falls short on repairs and troubleshooting, which need several steps.
EASY_TEMPLATES = [
    "What time do you open on {day}?",
    "Are you open on {day}?",
    "When do you close on {day}?",
    "How much does a {service} cost?",
    "What is the price of a {service}?",
    "Where is the {store} store?",
    "What is the phone number of the {store} store?",
    "Is there parking at the {store} store?",
]
HARD_TEMPLATES = [
    "My {part} makes a clicking noise when I pedal uphill, what should I check first?",
    "How do I adjust the {part} if the chain skips under load after a {service}?",
    "The {part} still rubs after I trued the wheel; is it the hub bearings or the frame alignment?",
    "Which is better for a heavy rider commuting in the rain, a {part} upgrade or a full {service}?",
    "Why does my {part} lose pressure overnight even though the tube has no visible puncture?",
    "Can you explain step by step how to bleed a hydraulic {part} at home?",
]
FILL = {
    "day": ["Saturday", "Sunday", "Monday", "Tuesday", "a public holiday", "Friday evening", "Christmas Eve"],
    "service": ["basic tune-up", "flat tyre repair", "wheel truing", "brake service", "full overhaul", "chain replacement"],
    "store": ["Riverbend", "Old Town", "harbour", "university", "station"],
    "part": ["rear derailleur", "disc brake", "bottom bracket", "front wheel", "tubeless tyre"],
}


def _fill(template: str, rng: np.random.Generator) -> str:
    return template.format(**{k: v[rng.integers(len(v))] for k, v in FILL.items() if "{" + k + "}" in template})


def bike_shop_results(n: int = 24, seed: int = 0, noise: float = 0.1) -> list[dict[str, Any]]:
    """n results rows, half easy and half hard questions, with judge scores to match.

    Easy: student 7-9, teacher 8-9. Hard: student 2-5, teacher 7-9. A share `noise` of rows
    swap the student's behaviour (an easy question it fumbles, a hard one it gets right).
    """
    rng = np.random.default_rng(seed)
    rows, seen = [], set()
    for _ in range(100 * n):  # the templates allow about 60 easy questions: n up to ~120
        if len(rows) == n:
            break
        hard = len(rows) % 2 == 1
        question = _fill(rng.choice(HARD_TEMPLATES if hard else EASY_TEMPLATES), rng)
        if question in seen:
            continue
        seen.add(question)
        fumble = hard != (rng.random() < noise)
        student = int(rng.integers(2, 6)) if fumble else int(rng.integers(7, 10))
        teacher = int(rng.integers(7, 10)) if hard else int(rng.integers(8, 10))
        lp = float(np.round(-0.6 - 0.5 * fumble + 0.3 * rng.normal(), 4))
        pairwise = "loss" if teacher - student > 1 else ("tie" if student <= teacher else "win")
        rows.append(results_row(len(rows), question, student, teacher, pairwise=pairwise, mean_logprob=lp))
    if len(rows) < n:
        raise ValueError(f"the templates give only {len(rows)} distinct questions")
    return rows
