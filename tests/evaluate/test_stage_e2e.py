"""End to end with the real embedded models: untrained student, student + a real GGUF LoRA
adapter, and the 1.5B teacher as judge, on two hand-written held-out questions."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from protege.evaluate import run as run_eval
from protege.project import Project

pytestmark = pytest.mark.slow

PERSONA = "You are the assistant of Riverbend Bikes, a bicycle shop. Answer briefly."
SOURCE = "The Riverbend store opens 9:00-18:00 Monday to Friday and 10:00-16:00 on Saturday. It is closed on Sunday."
ROWS = [
    ("q-hours", "factual", "When are you open on Saturday?", "On Saturday we are open from 10:00 to 16:00.", ["10:00", "16:00"]),
    ("q-car", "out-of-scope", "Can you change the oil in my car?", "Sorry, we only service bicycles; a garage can help with your car.", []),
]


def write_adapter(path: Path, base: Path) -> None:
    """A small random LoRA on every attention output, in llama.cpp's GGUF adapter format.

    Random rather than trained keeps this test inside its time budget; the train stage's own
    tests cover training. What matters here is that eval serves base + adapter through llama.cpp.
    """
    import gguf

    reader = gguf.GGUFReader(str(base))

    def value(key: str) -> int:
        f = reader.fields[key]
        return int(f.parts[f.data[0]][0])

    n_layer, dim = value("llama.block_count"), value("llama.embedding_length")
    rng = np.random.default_rng(0)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 8.0)
    for i in range(n_layer):
        writer.add_tensor(f"blk.{i}.attn_output.weight.lora_a", (rng.standard_normal((4, dim)) * 0.05).astype(np.float32))
        writer.add_tensor(f"blk.{i}.attn_output.weight.lora_b", (rng.standard_normal((dim, 4)) * 0.05).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, teacher_model, student_model):
    from protege.models.endpoint import gguf_path
    from protege.refs import parse_ref
    from protege.scaffold import init_project

    root = tmp_path_factory.mktemp("eval") / "proj"
    init_project(root, name="proj")
    cfg = yaml.safe_load((root / "protege.yaml").read_text())
    cfg["student"] = student_model.model_dump(exclude_defaults=True)
    cfg["teacher"] = teacher_model.model_dump(exclude_defaults=True)
    cfg["eval"] = {"max_tokens": 32, "bootstrap": 200}
    (root / "protege.yaml").write_text(yaml.safe_dump(cfg))
    (root / "docs" / "hours.md").write_text(f"# Hours\n\n{SOURCE}\n")  # the teacher's excerpts come from here
    project = Project.load(root)
    project.paths.data.mkdir(parents=True, exist_ok=True)
    rows = [{"id": i, "type": t, "source": {"chunks": ["hours.md#0"], "files": ["hours.md"], "text": SOURCE}, "key_facts": facts,
             "messages": [{"role": "system", "content": PERSONA}, {"role": "user", "content": q}, {"role": "assistant", "content": a}]}
            for i, t, q, a, facts in ROWS]  # fmt: skip
    project.paths.eval_jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run_dir = project.paths.model_run("run-test")
    run_dir.mkdir(parents=True)
    write_adapter(run_dir / "adapter.gguf", gguf_path(parse_ref(student_model.ref)))
    (run_dir / "run.json").write_text(json.dumps({"run": "run-test", "student": student_model.ref}))
    (project.paths.models / "LATEST").write_text("run-test\n")
    return project, run_eval(project)


def test_eval_answers_judges_and_reports(evaluated):
    project, result = evaluated
    assert result.report_dir == project.paths.report("run-test") and result.passed
    results = [json.loads(line) for line in (result.report_dir / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in results] == ["q-hours", "q-car"]
    for r in results:
        assert r["messages"][-1]["role"] == "user" and r["reference"] == {i: a for i, _, _, a, _ in ROWS}[r["id"]]
        assert r["expect"] == ("facts" if r["id"] == "q-hours" else "decline")
        for name in ("untrained", "trained", "teacher"):
            a = r["answers"][name]
            assert a["text"] and a["latency_s"] > 0 and a["completion_tokens"] > 0 and a["error"] is None
            # A missing score always comes with the judge's reason for it: nothing is dropped silently.
            assert (a["rubric"] is not None and 1 <= a["rubric"] <= 10) or a["judge_errors"]
            assert -1.0 <= a["similarity"] <= 1.0
            assert a["fact_recall"] in ((0.0, 0.5, 1.0) if r["id"] == "q-hours" else (0.0, 1.0))
        for name in ("untrained", "trained"):
            a = r["answers"][name]
            assert a["mean_logprob"] is not None and a["min_logprob"] <= a["mean_logprob"] <= 0
            assert "pairwise" not in a  # pairwise judging is opt-in (eval.pairwise)
    # The adapter is really served: the trained student does not answer like the base.
    assert any(r["answers"]["trained"]["text"] != r["answers"]["untrained"]["text"] for r in results)

    s = result.summary
    assert s["trained"] and s["n_questions"] == 2 and s["logprobs"] == {"untrained": True, "trained": True, "teacher": False}
    for name in ("untrained", "trained", "teacher"):
        scores = [r["answers"][name]["rubric"] for r in results]
        assert s["rubric"][name]["n"] == sum(x is not None for x in scores)
        assert s["rubric"][name]["judge_failures"] == sum(x is None for x in scores)
    assert "gap_recovered" in s and s["gap_recovered"]["n"] <= 2
    assert s["fact_recall"]["teacher"]["n"] == 2 and s["pairwise"] == {}
    assert s["judge_agreement"]["answers"] == sum(a["rubric"] is not None for r in results for a in r["answers"].values())
    assert json.loads((result.report_dir / "summary.json").read_text())["run"] == "run-test"


def test_rerun_is_free_and_the_cli_gate_exits_1(evaluated):
    from typer.testing import CliRunner

    from protege.cli import app

    project, result = evaluated
    before = (result.report_dir / "results.jsonl").read_text()
    res = CliRunner().invoke(app, ["eval", str(project.root), "--fail-under", "10.5"])
    assert res.exit_code == 1, res.output
    assert "regression gate failed" in res.output and "--fail-under 10.5" in res.output
    # Every call came from the cache: the same answers, judgments and timings.
    assert (result.report_dir / "results.jsonl").read_text() == before
    assert json.loads((result.report_dir / "summary.json").read_text())["gate"]["passed"] is False
    ok = CliRunner().invoke(app, ["eval", str(project.root), "--fail-under", "0"])
    assert ok.exit_code == 0, ok.output
    assert "report.html" in ok.output
    # The headline table: both metrics per model, and the paired gap recovered of each.
    assert "fact recall (key facts)" in ok.output and "gap recovered (paired)" in ok.output and "(n=2)" in ok.output


def test_the_html_report_opens_with_its_plots(evaluated, browser):
    from PIL import Image

    _, result = evaluated
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    try:
        page.goto((result.report_dir / "report.html").as_uri())
        widths = page.evaluate("[...document.images].map(i => i.complete ? i.naturalWidth : 0)")
        assert len(widths) == 3 and min(widths) > 0
        shot = np.asarray(Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("L"), dtype=float)
        assert shot.std() > 10
        assert "q-hours" in page.inner_text("body")
    finally:
        page.close()
