import io
import json
import re

import numpy as np
from eval_builders import make_info, make_results
from PIL import Image

from protege.evaluate.metrics import read_results, summarize
from protege.evaluate.report import write_report


def test_report_files_and_recomputable_results(tmp_path, constructed):
    results, summary = constructed
    write_report(tmp_path, results, summary)
    for name in ("results.jsonl", "summary.json", "report.md", "report.html", "scores.png", "fact_recall.png", "pairwise.png",
                 "latency.png"):  # fmt: skip
        assert (tmp_path / name).stat().st_size > 0, name
    # Anyone can recompute the figures from results.jsonl.
    again = summarize(read_results(tmp_path / "results.jsonl"), make_info(trained=True))
    assert again["rubric"] == summary["rubric"] and again["gap_recovered"] == summary["gap_recovered"]
    assert json.loads((tmp_path / "summary.json").read_text())["n_questions"] == 6


def test_markdown_shows_sample_sizes_intervals_failures_and_examples(tmp_path, constructed):
    results, summary = constructed
    write_report(tmp_path, results, summary)
    md = (tmp_path / "report.md").read_text()
    assert "**Gap recovered**" in md and "(n=5)" in md
    assert re.search(r"\d\.\d\d \[\d\.\d\d, \d\.\d\d\] \(n=5\)", md)  # the trained mean rubric with its interval
    assert "1 of 6" in md  # judge failures of the trained student, shown
    assert "Worst 5 trained answers (of 5 scored)" in md and "Best 5 trained answers" in md
    assert "trained answer 3" in md and "teacher answer 3" in md
    assert "![" in md and "scores.png" in md
    assert "local compute" in md


def test_markdown_without_a_trained_run_says_so(tmp_path):
    results = make_results([2, 3], None, [8, 9])
    write_report(tmp_path, results, summarize(results, make_info(trained=False)))
    md = (tmp_path / "report.md").read_text()
    assert "no trained run yet" in md and "Gap recovered" not in md
    assert "Worst 2 untrained answers" in md


def test_without_pairwise_judgments_the_report_has_no_pairwise_columns_or_plot(tmp_path):
    results = make_results([2, 3], [4, 5], [8, 9])
    for r in results:
        for a in r["answers"].values():
            a.pop("pairwise", None), a.pop("pairwise_orders", None)
    summary = summarize(results, make_info(trained=True))
    assert summary["pairwise"] == {}
    write_report(tmp_path, results, summary)
    md = (tmp_path / "report.md").read_text()
    assert "win vs teacher" not in md and "pairwise" not in md and not (tmp_path / "pairwise.png").exists()


def test_answers_are_escaped_in_html(tmp_path, constructed):
    results, summary = constructed
    results[0]["answers"]["trained"]["text"] = "<script>alert('x')</script> | pipe"
    write_report(tmp_path, results, summary)
    page = (tmp_path / "report.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "http://" not in page and "https://" not in page  # self-contained: nothing to fetch


def test_html_report_opens_in_chromium_with_its_images(tmp_path, constructed, browser):
    results, summary = constructed
    write_report(tmp_path, results, summary)
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    try:
        offline = []
        page.on("request", lambda r: offline.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
        page.goto((tmp_path / "report.html").as_uri())
        widths = page.evaluate("[...document.images].map(i => i.complete ? i.naturalWidth : 0)")
        assert len(widths) == 4 and all(w > 0 for w in widths), widths  # scores, fact recall, pairwise, latency
        assert "Gap recovered" in page.inner_text("body")
        shot = np.asarray(Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("L"), dtype=float)
        assert shot.std() > 10  # not a blank page
        figure = page.locator("img").first.screenshot()
        assert np.asarray(Image.open(io.BytesIO(figure)).convert("L"), dtype=float).std() > 10
        assert offline == []
    finally:
        page.close()


def test_report_shows_fact_recall_paired_gaps_and_judge_agreement(tmp_path):
    recall = ([0.0, 0.5, 0.0, 0.5], [0.5, 1.0, 0.5, 1.0], [1.0, 1.0, 1.0, 1.0])
    results = make_results([2, 3, 2, 4], [5, 6, 4, 7], [8, 9, 8, 9], recall=recall)
    results[0]["answers"]["trained"]["facts_missing"] = ["$79"]
    write_report(tmp_path, results, summarize(results, make_info(trained=True)))
    md = (tmp_path / "report.md").read_text()
    assert "| gap recovered (paired) | 48% [" in md and "(n=4) | 67% [" in md  # rubric 2.75 / 5.75; facts 0.5 / 0.75
    assert "| trained - untrained (paired) | 2.75 [" in md and "| 50.0 pts [" in md
    assert "## Fact recall" in md and "| factual | 4 | 25% | 75% | 100% |" in md
    assert "**Judge agreement** with fact recall over 12 answers to 4 questions: Spearman" in md
    assert "fact recall 50% (missing: $79)" in md and "[key facts: $79]" in md
