import asyncio
import json

import pytest

from protege.errors import ProtegeError
from protege.evaluate.stage import answer_fields, find_trained_run, load_eval_rows
from protege.models.client import Completion, TokenLogprob
from protege.project import Project

ROW = {"id": "q-1", "type": "factual", "source": {"text": "Opens at 9."},
       "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "When do you open?"},
                    {"role": "assistant", "content": "At 9."}]}  # fmt: skip


def write_rows(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def test_rows_become_prompt_question_and_reference(tmp_path):
    path = tmp_path / "eval.jsonl"
    write_rows(path, [ROW, ""])
    [item] = load_eval_rows(path)
    assert item["messages"] == ROW["messages"][:2]  # the assistant turn is the reference, not the prompt
    assert item["reference"] == "At 9." and item["question"] == "When do you open?"
    assert item["source"]["text"] == "Opens at 9."


def test_max_questions_takes_a_seeded_sample_in_file_order(tmp_path):
    path = tmp_path / "eval.jsonl"
    write_rows(path, [dict(ROW, id=f"q-{i}") for i in range(20)])
    a = [r["id"] for r in load_eval_rows(path, max_questions=5, seed=3)]
    assert a == [r["id"] for r in load_eval_rows(path, max_questions=5, seed=3)]
    assert len(a) == 5 and a == sorted(a, key=lambda x: int(x.split("-")[1]))
    assert a != [r["id"] for r in load_eval_rows(path, max_questions=5, seed=4)]


@pytest.mark.parametrize(
    "line, problem",
    [
        ("{not json", "eval.jsonl:1: not valid JSON"),
        (json.dumps({"id": "x", "messages": "hi"}), "'messages' must be a list"),
        (json.dumps({"id": "x", "messages": [{"role": "user", "content": "q"}]}), "no assistant turn"),
        (json.dumps({"id": "x", "messages": [{"role": "assistant", "content": "a"}]}), "no user turn"),
    ],
)
def test_bad_rows_are_one_clear_error_with_the_line(tmp_path, line, problem):
    path = tmp_path / "eval.jsonl"
    write_rows(path, [line])
    with pytest.raises(ProtegeError, match=problem):
        load_eval_rows(path)


def test_missing_or_empty_eval_file(tmp_path):
    with pytest.raises(ProtegeError, match="protege synth"):
        load_eval_rows(tmp_path / "eval.jsonl")
    write_rows(tmp_path / "eval.jsonl", [""])
    with pytest.raises(ProtegeError, match="no questions"):
        load_eval_rows(tmp_path / "eval.jsonl")


def test_find_trained_run(project_dir):
    project = Project.load(project_dir)
    assert find_trained_run(project, None) is None  # no LATEST: untrained vs teacher
    with pytest.raises(ProtegeError, match="no trained run 'nope'"):
        find_trained_run(project, "nope")
    run = project.paths.model_run("run-1")
    run.mkdir(parents=True)
    (project.paths.models / "LATEST").write_text("run-1\n")
    with pytest.raises(ProtegeError, match="adapter.gguf: not found"):
        find_trained_run(project, None)
    (run / "adapter.gguf").write_bytes(b"GGUF")
    assert find_trained_run(project, None).adapter == run / "adapter.gguf"
    (run / "run.json").write_text(json.dumps({"student": "embedded:gemma3-270m"}))
    with pytest.raises(ProtegeError, match="trained for student embedded:gemma3-270m"):
        find_trained_run(project, "run-1")


def test_answer_fields_summarize_logprobs():
    c = Completion("hi there", "stop", 10, 2, 0.5, 0.0, "m", [TokenLogprob("hi", -0.5), TokenLogprob(" there", -2.5)])
    a = answer_fields(c, None)
    assert a["mean_logprob"] == -1.5 and a["min_logprob"] == -2.5 and a["error"] is None
    failed = answer_fields(None, "context too long")
    assert failed["text"] is None and failed["error"] == "context too long"


def test_async_work_runs_from_inside_a_running_event_loop():
    from protege.evaluate.stage import _run_async

    async def inner():
        return 42

    async def caller():  # e.g. a notebook, or playwright's sync API holding the loop
        return _run_async(inner())

    assert _run_async(inner()) == 42
    assert _run_async(caller()) == 42  # the inner call finds the outer loop running


@pytest.mark.parametrize("pairwise", [False, True])
def test_judge_all_asks_the_rubric_per_answer_and_pairwise_only_when_asked(pairwise):
    import sys
    from pathlib import Path

    from rich.progress import Progress

    from protege.config import ModelConfig
    from protege.evaluate.stage import judge_all
    from protege.models.endpoint import open_client

    sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
    import canned_endpoint

    server, url = canned_endpoint.start()
    items = [{"id": f"q{i}", "type": "factual", "question": f"question {i}?", "reference": "ref", "source": {"text": "src"},
              "messages": [{"role": "system", "content": "persona"}, {"role": "user", "content": f"question {i}?"}]}
             for i in range(3)]  # fmt: skip
    answers = {m: [answer_fields(None, None) | {"text": f"{m} {i}"} for i in range(3)] for m in ("untrained", "trained", "teacher")}

    async def go():
        client = open_client(ModelConfig(ref=f"openai:canned@{url}", max_retries=0))
        try:
            with Progress(disable=True) as progress:
                await judge_all(client, items, answers, pairwise=pairwise, progress=progress)
        finally:
            await client.aclose()

    try:
        asyncio.run(go())
        served = server.RequestHandlerClass.served
    finally:
        server.shutdown()
    assert all(a["rubric"] == 7 for col in answers.values() for a in col)
    # Pairwise costs two calls (both orders) per student answer: 3 questions x 2 students x 2.
    assert served == 9 + (12 if pairwise else 0)
    assert all(("pairwise" in a) == pairwise for m in ("untrained", "trained") for a in answers[m])


def test_an_empty_latest_is_one_error_for_every_stage(project_dir, tmp_path):
    """models/LATEST is read in one place: an empty file is the same readable error in train,
    eval, route and serve, never a silent fall back to the untrained student."""
    from protege.project import ArtifactPaths
    from protege.route.stage import find_results
    from protege.serve.agent import latest_adapter
    from protege.train import latest_run

    project = Project.load(project_dir)
    project.paths.models.mkdir(parents=True)
    project.paths.latest.write_text("\n")
    for read in (lambda: find_trained_run(project, None), lambda: latest_run(project),
                 lambda: latest_adapter(project), lambda: find_results(project)):  # fmt: skip
        with pytest.raises(ProtegeError, match="LATEST: empty"):
            read()
    assert ArtifactPaths(tmp_path / "elsewhere").latest_run() is None


def test_teacher_prompts_build_no_retriever_for_raft_rows(project_dir):
    """RAFT rows carry their excerpts: the teacher's prompts need no retriever (which would embed
    every chunk), so they are built even with no documents left to retrieve from."""
    from protege.evaluate.stage import teacher_prompts

    project = Project.load(project_dir)
    assert project.config.serve.teacher_retrieval
    for f in project.docs_dir.iterdir():
        f.unlink()
    raft = [{"id": "q", "messages": [{"role": "user", "content": "Context: ...\n\nQuestion: hours?"}], "context": []}]
    assert teacher_prompts(project, raft) is raft
    with pytest.raises(ProtegeError, match="no usable documents"):  # a closed-book row does need one
        teacher_prompts(project, [{"id": "c", "messages": [{"role": "user", "content": "hours?"}], "context": None}])
