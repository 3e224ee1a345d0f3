"""Regenerate teacher_rows.jsonl: the embedded teacher answers bikeshop.jsonl's questions with top-5 logprobs.

The rows are what synth writes (text exactly as generated, `teacher.logprobs` as
`protege.models.client.TokenLogprob` dicts), so the KD tests run on a real teacher's output.
Run under the CPU lock: flock /tmp/protege-cpu.lock .venv/bin/python tests/train/data/record_teacher_rows.py
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from pathlib import Path

from protege.config import ModelConfig
from protege.models.endpoint import open_client
from protege.models.server import POOL

HERE = Path(__file__).parent
TEACHER = "embedded:qwen2.5-coder-1.5b-instruct"


async def main() -> None:
    rows = [json.loads(line) for line in (HERE / "bikeshop.jsonl").read_text().splitlines()]
    client = open_client(ModelConfig(ref=TEACHER, n_ctx=1024), logprobs=True)
    out = []
    for row in rows:
        question = row["messages"][:-1]
        reply = await client.complete(question, temperature=0.0, max_tokens=48, top_logprobs=5, use_cache=False)
        teacher = {"ref": TEACHER, "logprobs": [asdict(t) for t in reply.logprobs or []]}
        out.append({**row, "messages": [*question, {"role": "assistant", "content": reply.text}], "teacher": teacher})
    (HERE / "teacher_rows.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out), encoding="utf-8")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    finally:
        POOL.stop_all()
