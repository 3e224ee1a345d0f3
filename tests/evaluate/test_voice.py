"""evaluate.voice: style similarity to the creator's held-out posts, and the generic-assistant control."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from protege.evaluate.voice import GENERIC, GENERIC_SYSTEM, generic_items, held_out_posts, post_chunks, style_scores, voice_summary

POSTS = [
    "Low and slow, friends! Sunday's beef shin braised for six hours and the kids licked the pot clean. Pantry math wins again. - M.",
    "Sourdough starter update: Doris is thriving on the windowsill. Feed her twice a day and she'll forgive you anything.",
    "Budget night: a tin of chickpeas, half an onion and the last of the spinach became a curry for four. Under three quid!",
    "My kimchi jar burped all over the counter this morning. Fermentation keeps you humble, loves. - M.",
]


CHUNKS = {f"posts.jsonl#{i}": p for i, p in enumerate(POSTS)}


def item(i: int, system: str = "You are Maya.", chunks: list[int] | None = None) -> dict:
    ids = [f"posts.jsonl#{k}" for k in (chunks if chunks is not None else [i])]
    return {"id": f"q-{i}", "messages": [{"role": "system", "content": system}, {"role": "user", "content": f"question {i}?"}],
            "source": {"chunks": ids, "text": " ".join(CHUNKS[c] for c in ids)}}  # fmt: skip


def test_generic_items_swap_the_persona_for_a_plain_assistant_and_keep_the_question() -> None:
    items = [item(0), {**item(1), "messages": [{"role": "user", "content": "no system here"}]}]
    out = generic_items(items)
    assert [m["messages"][0] for m in out] == [{"role": "system", "content": GENERIC_SYSTEM}] * 2
    assert out[0]["messages"][1:] == items[0]["messages"][1:] and out[1]["messages"][1:] == items[1]["messages"]
    assert items[0]["messages"][0]["content"] == "You are Maya."  # the items themselves are untouched


def test_style_is_higher_for_an_answer_in_the_creator_s_voice_and_ignores_its_own_post() -> None:
    items = [item(i) for i in range(4)]
    assert held_out_posts(items + [item(0)], CHUNKS) == list(CHUNKS)
    assert held_out_posts([item(0), {"id": "doc", "source": {"chunks": ["faq.md#0"]}}], CHUNKS) == ["posts.jsonl#0"]
    in_voice = "Oh loves, low and slow is the answer: braise it for hours, ferment the cabbage, and do the pantry math. - M."
    corporate = "Our enterprise platform delivers scalable cloud solutions for quarterly revenue growth and compliance."
    answers = {"a": [{"text": in_voice} for _ in items], "b": [{"text": corporate} for _ in items],
               "copy": [{"text": POSTS[i]} for i in range(4)], "none": [{"text": None} for _ in items]}  # fmt: skip
    assert style_scores(items, answers, CHUNKS) == 4
    for i in range(4):
        assert answers["a"][i]["style"] > answers["b"][i]["style"] + 0.1
        assert answers["copy"][i]["style"] < 0.99  # its own post is left out of the centroid it is compared with
        assert answers["none"][i]["style"] is None
    one = {"a": [{"text": in_voice}]}
    assert style_scores([item(0)], one, CHUNKS) == 1 and one["a"][0]["style"] is None  # no other post to compare with
    # A multi-hop question's every post is its own: repeating post 1 scores as if post 1 were not held out.
    multi = [item(0, chunks=[0, 1]), item(2), item(3)]
    echo = {"a": [{"text": POSTS[1]}, {"text": POSTS[1]}, {"text": POSTS[1]}]}
    style_scores(multi, echo, CHUNKS)
    assert echo["a"][0]["style"] < echo["a"][1]["style"]


def test_voice_summary_pairs_the_students_with_the_generic_assistant() -> None:
    results = [{"answers": {"untrained": {"style": 0.2 + 0.01 * i}, "trained": {"style": 0.4 + 0.01 * i},
                            GENERIC: {"style": 0.3, "fact_recall": 1.0}, "teacher": {"style": 0.35}}} for i in range(12)]  # fmt: skip
    v = voice_summary(results, 12, {"n_resamples": 200, "seed": 0})
    assert set(v["style"]) == {"untrained", "trained", GENERIC, "teacher"} and v["held_out_posts"] == 12
    assert v["paired"]["trained - untrained"]["value"] == pytest.approx(0.2) and v["paired"]["trained - untrained"]["low"] > 0
    assert v["paired"]["trained - generic"]["value"] == pytest.approx(0.1 + 0.055, abs=1e-9)
    assert v["paired"]["untrained - generic"]["high"] < 0 and v["generic_fact_recall"]["value"] == 1.0
    no_trained = voice_summary([{"answers": {"untrained": {"style": 0.1}, GENERIC: {"style": 0.2}}}], 2, {"n_resamples": 50, "seed": 0})
    assert list(no_trained["paired"]) == ["untrained - generic"]


def test_eval_of_a_creator_project_measures_style_against_a_generic_assistant(project_dir: Path) -> None:
    """A posts project's eval answers each question a third time without the persona, and its
    summary, report and closing table give style similarity; a docs project's does not."""
    sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
    import canned_endpoint

    from protege.evaluate import run as run_eval
    from protege.loop import summary_rows
    from protege.project import Project

    server, url = canned_endpoint.start()
    try:
        cfg = yaml.safe_load((project_dir / "protege.yaml").read_text())
        for role in ("student", "teacher", "judge"):
            cfg[role] = {"ref": f"openai:canned@{url}", "max_retries": 0}
        cfg["eval"] = {"bootstrap": 200}
        cfg["synth"] = {"chunk_tokens": 32, "chunk_overlap": 0}  # one post a chunk
        cfg.setdefault("serve", {})["teacher_retrieval"] = False
        (project_dir / "protege.yaml").write_text(yaml.safe_dump(cfg))
        docs = Project.load(project_dir).docs_dir
        assert post_chunks(Project.load(project_dir)) == {}  # a docs project
        (docs / "posts.jsonl").write_text("".join(json.dumps({"text": p}) + "\n" for p in POSTS))
        project = Project.load(project_dir)
        assert set(post_chunks(project)) == set(CHUNKS)  # the posts only, not the .md docs beside them
        for key, value in (("persona", "You are the shop."), ("eval", {"voice": False})):  # a written persona, or off
            (project_dir / "protege.yaml").write_text(yaml.safe_dump({**cfg, key: value}))
            assert post_chunks(Project.load(project_dir)) == {}
        (project_dir / "protege.yaml").write_text(yaml.safe_dump(cfg))
        project.paths.data.mkdir(parents=True, exist_ok=True)
        rows = [{**item(i), "type": "factual", "key_facts": [],
                 "messages": [*item(i)["messages"], {"role": "assistant", "content": POSTS[i]}]} for i in range(4)]  # fmt: skip
        project.paths.eval_jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
        result = run_eval(project)
    finally:
        server.shutdown()
    results = [json.loads(x) for x in (result.report_dir / "results.jsonl").read_text().splitlines()]
    assert all(r["answers"][GENERIC]["text"] and -1 <= r["answers"][GENERIC]["style"] <= 1 for r in results)
    voice = result.summary["voice"]
    assert voice["held_out_posts"] == 4 and voice["style"][GENERIC]["n"] == 4 and "untrained - generic" in voice["paired"]
    assert "## Voice" in (result.report_dir / "report.md").read_text()
    labels = [label for label, _ in summary_rows({"eval": result.summary})]
    assert "style similarity to held-out posts, generic assistant" in labels
