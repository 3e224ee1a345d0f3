"""The eval report: results.jsonl, summary.json, PNG plots, report.md and a self-contained report.html.

The report is built once as a list of blocks (heading, paragraph, table, image, side-by-side
answers) and rendered twice, to Markdown and to HTML, so the two never disagree. The HTML needs no
network: CSS inline, images embedded as base64 data URIs.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protege.evaluate.stats import Estimate

MODEL_ORDER = ("untrained", "trained", "teacher")
COLORS = {"untrained": "#9aa5b1", "trained": "#2f7ed8", "teacher": "#e0803a",
          "win": "#3a9d5d", "tie": "#c9c9c9", "loss": "#d9534f", "inconsistent": "#f0ad4e", "failed": "#555555"}  # fmt: skip


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Para:
    text: str


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Image:
    file: str
    caption: str


@dataclass
class SideBySide:
    title: str
    left_label: str
    left: str
    right_label: str
    right: str


Block = Heading | Para | Table | Image | SideBySide


def est(d: dict[str, Any] | None, digits: int = 2, scale: float = 1.0, unit: str = "") -> str:
    """A summary.json figure as `value [low, high] (n=..)`."""
    if d is None:
        return "n/a"
    return Estimate(d["value"], d["low"], d["high"], d["n"], d.get("note")).fmt(digits, scale, unit)


def _models(summary: dict[str, Any]) -> list[str]:
    return [m for m in MODEL_ORDER if m in summary["models"]]


def main_student(summary: dict[str, Any]) -> str:
    return "trained" if summary["trained"] else "untrained"


# ---------------------------------------------------------------- plots


def _plots(report_dir: Path, results: list[dict[str, Any]], summary: dict[str, Any]) -> list[Image]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    models = _models(summary)
    images = []

    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    width = 0.8 / len(models)
    for k, m in enumerate(models):
        scores = [r["answers"][m].get("rubric") for r in results]
        counts = [sum(1 for s in scores if s == v) for v in range(1, 11)]
        fails = summary["rubric"][m]["judge_failures"]
        label = f"{m} (n={summary['rubric'][m]['n']}" + (f", {fails} judge failures" if fails else "") + ")"
        ax.bar(np.arange(1, 11) + (k - (len(models) - 1) / 2) * width, counts, width, label=label, color=COLORS[m])
    ax.set_xticks(range(1, 11))
    ax.set_xlabel("rubric score (1-10, judge: " + summary["judge"].split(":")[-1] + ")")
    ax.set_ylabel("questions")
    ax.yaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]  # MaxNLocator's, not Locator's
    ax.set_title("Rubric score distribution per model")
    ax.legend(fontsize=8)
    images.append(_save(fig, report_dir / "scores.png", "Rubric scores per model (counts of questions per score)."))

    images.append(_fact_recall_plot(report_dir, summary, models))
    if summary["pairwise"]:
        images.append(_pairwise_plot(report_dir, summary, [m for m in models if m in summary["pairwise"]]))

    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=110)
    data = [[r["answers"][m]["latency_s"] for r in results if r["answers"][m].get("latency_s") is not None] for m in models]
    keep = [(m, d) for m, d in zip(models, data) if d]
    if keep:
        box = ax.boxplot([d for _, d in keep], orientation="horizontal", patch_artist=True, tick_labels=[f"{m} (n={len(d)})" for m, d in keep])
        for patch, (m, _) in zip(box["boxes"], keep):
            patch.set_facecolor(COLORS[m])
    ax.set_xscale("log")
    ax.set_xlabel("seconds per answer, log scale (wall clock, one request at a time)")
    ax.set_title("Latency per answer")
    images.append(_save(fig, report_dir / "latency.png", "Latency per answer (box: quartiles; whiskers: 1.5 IQR)."))
    return images


def _fact_recall_plot(report_dir: Path, summary: dict[str, Any], models: list[str]) -> Image:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2.8), dpi=110)
    for y, m in enumerate(models):
        e = summary["fact_recall"][m]
        if e["value"] is None:
            continue
        xerr = [[100 * (e["value"] - e["low"])], [100 * (e["high"] - e["value"])]] if e["low"] is not None else None
        ax.barh(y, 100 * e["value"], xerr=xerr, color=COLORS[m], capsize=4)
        ax.text(2, y, f"{100 * e['value']:.0f}%", va="center", fontsize=8, color="white")
    ax.set_yticks(range(len(models)), [f"{m} (n={summary['fact_recall'][m]['n']})" for m in models])
    ax.set_xlim(0, 100)
    ax.set_xlabel("fact recall: key facts stated (%), 95% interval")
    ax.set_title("Fact recall per model")
    return _save(fig, report_dir / "fact_recall.png", "Mean fact recall per model with its 95% bootstrap interval.")


def _pairwise_plot(report_dir: Path, summary: dict[str, Any], students: list[str]) -> Image:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 1.6 + 0.7 * len(students)), dpi=110)
    labelled: set[str] = set()
    for y, m in enumerate(students):
        p = summary["pairwise"][m]
        left = 0
        for key in ("win", "tie", "loss", "inconsistent", "failed"):
            count = p[key]["count"] if key in ("win", "tie", "loss") else p[key]
            if count:
                ax.barh(y, count, left=left, color=COLORS[key], label=None if key in labelled else key)
                ax.text(left + count / 2, y, str(count), ha="center", va="center", fontsize=8, color="white")
                labelled.add(key)
            left += count
    ax.set_yticks(range(len(students)), [f"{m} (n={summary['pairwise'][m]['n']})" for m in students])
    ax.set_xlabel("questions")
    ax.set_title("Student vs teacher, judged in both orders")
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncols=5, frameon=False)
    return _save(fig, report_dir / "pairwise.png", "Win/tie/loss of each student against the teacher; inconsistent = the two orders contradicted each other; failed = the judge gave no verdict.")


def _save(fig, path: Path, caption: str) -> Image:  # noqa: ANN001
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Image(path.name, caption)


# ---------------------------------------------------------------- content


def build_blocks(results: list[dict[str, Any]], summary: dict[str, Any], images: list[Image]) -> list[Block]:
    models = _models(summary)
    n = summary["n_questions"]
    meta = summary["meta"]
    blocks: list[Block] = [Heading(f"protege eval: {summary['run']}", 1)]
    who = ", ".join(f"{m} = `{summary['models'][m]['ref']}`" + (" + LoRA" if summary["models"][m]["lora"] else "") for m in models)
    blocks.append(Para(f"{n} held-out questions. Models: {who}. Judge: `{summary['judge']}`. "
                       f"Intervals are 95% (bootstrap, {summary['eval_config']['bootstrap']} resamples; Wilson for shares)."))  # fmt: skip
    if summary["note"]:
        blocks.append(Para(f"**Note:** {summary['note']}."))
    blocks += _headline(summary)
    gate = summary.get("gate")
    if gate:
        verdict = "passed" if gate["passed"] else f"FAILED: {gate['reason']}"
        blocks.append(Para(f"**Regression gate** (--fail-under {gate['fail_under']:g}): {verdict}."))

    blocks.append(Heading("Quality"))
    header = ["model", "mean rubric (1-10)", "fact recall", "judge failures", "similarity to reference"]
    pairwise = bool(summary["pairwise"])
    if pairwise:
        header += ["win vs teacher", "tie", "loss", "inconsistent / failed", "orders disagree"]
    rows = []
    for m in models:
        r = summary["rubric"][m]
        row = [m, est(r), est(summary["fact_recall"][m], 0, 100, "%"), f"{r['judge_failures']} of {n - summary['answer_errors'][m]}",
               est(summary["similarity"][m], 3)]  # fmt: skip
        if pairwise and m in summary["pairwise"]:
            p = summary["pairwise"][m]
            row += [est(p[v], 0, 100, "%") for v in ("win", "tie", "loss")]
            row += [f"{p['inconsistent']} / {p['failed']} of {p['n']}", est(p["order_disagreement"], 0, 100, "%")]
        elif pairwise:
            row += ["-"] * 5
        rows.append(row)
    blocks.append(Table(header, rows))
    errors = {m: c for m, c in summary["answer_errors"].items() if c}
    if errors:
        blocks.append(Para("Questions a model failed to answer (counted as no score): " + ", ".join(f"{m}: {c}" for m, c in errors.items()) + "."))
    note = ("Similarity is the cosine similarity of MiniLM embeddings between an answer and the reference answer "
            "(the teacher's answer recorded in eval.jsonl).")
    if pairwise:
        note += (" Pairwise verdicts are asked twice with the order swapped; a tie in one order and a win or loss in the "
                 "other counts as a tie, a win in one and a loss in the other as inconsistent (not a verdict).")
    blocks.append(Para(note))  # fmt: skip

    blocks += _fact_blocks(results, summary, models)
    if summary.get("voice"):
        blocks += _voice_blocks(summary["voice"])

    blocks += _speed_blocks(summary, models)

    blocks.append(Heading("Plots"))
    blocks += images

    student = main_student(summary)
    ranked = sorted((r for r in results if r["answers"][student].get("rubric") is not None),
                    key=lambda r: (r["answers"][student]["rubric"], r["answers"][student].get("similarity") or 0))  # fmt: skip
    for title, chosen in (("Worst", ranked[:10]), ("Best", ranked[::-1][:10])):
        blocks.append(Heading(f"{title} {len(chosen)} {student} answers (of {len(ranked)} scored)"))
        for r in chosen:
            a, t = r["answers"][student], r["answers"]["teacher"]
            blocks.append(SideBySide(
                f"{r['id']} ({r['type']}): {r['question']}" + (f" [key facts: {'; '.join(r['key_facts'])}]" if r.get("key_facts") else ""),
                f"{student}: rubric {a['rubric']}, {_recall(a)}" + (f", pairwise {_verdict(a)}" if pairwise else ""), a["text"] or "",
                f"teacher: rubric {t.get('rubric') if t.get('rubric') is not None else 'n/a'}, {_recall(t)}", t["text"] or "",
            ))  # fmt: skip

    failures = [(r["id"], m, e) for r in results for m in models for e in r["answers"][m].get("judge_errors", [])]
    blocks.append(Heading("Judge problems"))
    if failures:
        blocks.append(Para(f"{len(failures)} judge problem(s) (a problem followed by a successful retry is listed too; "
                           "only a judgment that failed twice is missing from the figures, and is counted above)."))  # fmt: skip
        blocks.append(Table(["question", "model", "problem"], [[q, m, e[:300]] for q, m, e in failures[:50]]))
        if len(failures) > 50:
            blocks.append(Para(f"... and {len(failures) - 50} more in results.jsonl."))
    else:
        blocks.append(Para("None: every judgment was read on the first attempt."))
    blocks.append(Para(f"Per-question data: results.jsonl (recompute any figure from it). Config hash {meta['config_hash']}, "
                       f"protege {meta['code_version']}, {meta['created']}, {meta['wall_s']} s."))  # fmt: skip
    return blocks


def _voice_blocks(voice: dict[str, Any]) -> list[Block]:
    """Style similarity to the creator's held-out posts (evaluate/voice.py)."""
    names = {"generic": "generic assistant (teacher, no persona)"}
    rows = [[names.get(m, m), est(e, 3)] for m, e in voice["style"].items()]
    rows += [[f"{pair} (paired)", est(d, 3)] for pair, d in voice["paired"].items()]
    recall = voice.get("generic_fact_recall")
    para = (f"Style similarity is the cosine between an answer's MiniLM embedding and the mean embedding of the "
            f"{voice['held_out_posts']} held-out posts (the eval questions' sources) other than its own question's. "
            "MiniLM embeds topic more than manner: the generic assistant, the teacher asked the same questions with the same "
            f"excerpts under the system prompt \"{voice['generic_system']}\" instead of the persona, is the control that "
            "knows the same facts without the voice.")
    if recall:
        para += f" Its fact recall: {est(recall, 0, 100, '%')}."
    return [Heading("Voice"), Table(["", "style similarity to held-out posts"], rows), Para(para)]


def _speed_blocks(summary: dict[str, Any], models: list[str]) -> list[Block]:
    n, meta = summary["n_questions"], summary["meta"]
    blocks: list[Block] = [Heading("Speed and cost")]
    rows = []
    for m in models:
        lat = summary["latency_s"][m]
        c = summary["cost_per_1k_queries_usd"][m]
        logprobs = "yes" if summary["logprobs"].get(m) else "no"
        rows.append([m, est(lat["p50"], 2, unit=" s"), est(lat["p95"], 2, unit=" s"), est(summary["tokens_per_s"][m], 1),
                     est(c, 4), c["basis"], logprobs if m != "teacher" else "-"])  # fmt: skip
    blocks.append(Table(["model", "latency p50", "latency p95", "tokens/s", "cost per 1,000 queries (USD)", "cost basis", "logprobs"], rows))
    load = meta.get("load_avg_1m")
    quiet = f" The machine had {meta.get('cpus')} CPUs and a 1-minute load average of {load[0]:g} before answering and {load[1]:g} after (higher than the CPU count means other work shared the cores and slowed local models)." if load else ""
    cached = meta.get("cached_answers") or {}
    if any(cached.values()):
        quiet += (" Answers served from the cache keep the latency measured when they were first asked, under that run's load: "
                  + ", ".join(f"{m} {k} of {n}" for m, k in cached.items()) + ".")  # fmt: skip
    blocks.append(Para(f"Latency is the wall time of one request, with no other eval request in flight; tokens/s is completion tokens over that "
                       f"time (prompt processing included). Local compute is priced at ${summary['eval_config']['local_usd_per_hour']:g}/hour "
                       f"(eval.local_usd_per_hour), assuming the machine serves one request at a time.{quiet}"))  # fmt: skip
    return blocks


def headline_table(summary: dict[str, Any]) -> Table:
    """Both metrics per model and, with a trained run, the paired gap recovered and trained -
    untrained difference: the table `protege eval` prints and report.md opens with."""
    rows = [[m, est(summary["rubric"][m]), est(summary["fact_recall"][m], 0, 100, "%")] for m in _models(summary)]
    if summary["trained"]:
        diff = summary["trained_minus_untrained"]
        rows += [["gap recovered (paired)", est(summary["gap_recovered"], 0, 100, "%"), est(summary["gap_recovered_fact_recall"], 0, 100, "%")],
                 ["trained - untrained (paired)", est(diff["rubric"], 2), est(diff["fact_recall"], 1, 100, " pts")]]  # fmt: skip
    return Table(["", "rubric (judge, 1-10)", "fact recall (key facts)"], rows)


def _headline(summary: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = [headline_table(summary)]
    if summary["trained"]:
        blocks.append(Para("**Gap recovered** is mean(trained - untrained) / mean(teacher - untrained) over the same questions; "
                           "its interval and the paired difference's are paired bootstraps (questions resampled with all their answers)."))  # fmt: skip
    return blocks


def _fact_blocks(results: list[dict[str, Any]], summary: dict[str, Any], models: list[str]) -> list[Block]:
    """Fact recall per question type, and how far the judge agrees with it."""
    blocks: list[Block] = [Heading("Fact recall")]
    types = sorted({r["type"] for r in results if r.get("expect")})
    if not types:
        return blocks + [Para("No held-out question has key facts (eval.jsonl was written without them): no fact recall.")]
    rows = []
    for t in types:
        picked = [r for r in results if r["type"] == t and r.get("expect")]
        row = [t, str(len(picked))]
        for m in models:
            vals = [r["answers"][m]["fact_recall"] for r in picked if r["answers"][m].get("fact_recall") is not None]
            row.append(f"{100 * sum(vals) / len(vals):.0f}%" if vals else "n/a")
        rows.append(row)
    blocks.append(Table(["question type", "questions", *models], rows))
    ag = summary["judge_agreement"]
    blocks.append(Para(
        "Fact recall is the share of a question's key facts (written into eval.jsonl by synth and checked against the "
        "source) that the answer states, after normalizing case, number formats ($1,200 = 1200) and times (9am = 9:00). "
        "Where the right answer declines (out-of-scope, unsafe and avoided-topic questions; RAFT excerpts without the answer) it is "
        "1 if the answer declines or hands off, else 0. "
        f"**Judge agreement** with fact recall over {ag['answers']} answers to {ag['questions']} questions: "
        f"Spearman {est(ag['spearman'], 2)}, Kendall tau-b {est(ag['kendall'], 2)} (intervals resample questions)."
    ))  # fmt: skip
    return blocks


def _recall(answer: dict[str, Any]) -> str:
    if answer.get("fact_recall") is None:
        return "fact recall n/a"
    missing = answer.get("facts_missing") or []
    return f"fact recall {100 * answer['fact_recall']:.0f}%" + (f" (missing: {'; '.join(missing)})" if missing else "")


def _verdict(answer: dict[str, Any]) -> str:
    orders = answer.get("pairwise_orders") or [None, None]
    if answer.get("pairwise"):
        return answer["pairwise"]
    return "judge failed" if None in orders else f"inconsistent ({orders[0]} / {orders[1]} in the two orders)"


# ---------------------------------------------------------------- rendering


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in (text.strip() or "(empty)").splitlines())


def render_md(blocks: list[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + b.text)
        elif isinstance(b, Para):
            out.append(b.text)
        elif isinstance(b, Table):
            out.append("| " + " | ".join(map(_md_cell, b.header)) + " |")
            out.append("|" + "---|" * len(b.header))
            out += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in b.rows]
        elif isinstance(b, Image):
            out.append(f"![{b.caption}]({b.file})\n\n*{b.caption}*")
        elif isinstance(b, SideBySide):
            out.append(f"**{_md_cell(b.title)}**\n\n*{b.left_label}*\n\n{_quote(b.left)}\n\n*{b.right_label}*\n\n{_quote(b.right)}")
        out.append("")
    return "\n".join(out)


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:1em 0;font-size:.88em}th,td{border:1px solid #ddd;padding:.35em .6em;text-align:left;vertical-align:top}
th{background:#f5f5f5}figure{margin:1.2em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.85em;color:#555}
.pair{border:1px solid #ddd;border-radius:6px;margin:1em 0;padding:.6em}.pair h4{margin:.2em 0 .5em}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:1em}.cols pre{white-space:pre-wrap;background:#fafafa;padding:.5em;margin:.2em 0;font-size:.85em}
.label{font-size:.85em;color:#555}code{background:#f3f3f3;padding:0 .2em}
"""


def _inline(text: str) -> str:
    """Escape, then the two Markdown marks the blocks use: **bold** and `code`."""
    import re

    s = html.escape(text)
    s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", s)


def render_html(blocks: list[Block], image_dir: Path, title: str) -> str:
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{CSS}</style></head><body>"]  # fmt: skip
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"<h{b.level}>{_inline(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            parts.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
            body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in b.rows)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(b, Image):
            data = base64.b64encode((image_dir / b.file).read_bytes()).decode()
            parts.append(f"<figure><img alt='{html.escape(b.caption)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{html.escape(b.caption)}</figcaption></figure>")  # fmt: skip
        elif isinstance(b, SideBySide):
            parts.append(f"<div class='pair'><h4>{html.escape(b.title)}</h4><div class='cols'>"
                         f"<div><div class='label'>{html.escape(b.left_label)}</div><pre>{html.escape(b.left)}</pre></div>"
                         f"<div><div class='label'>{html.escape(b.right_label)}</div><pre>{html.escape(b.right)}</pre></div></div></div>")  # fmt: skip
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(report_dir: Path, results: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """Write every file of artifacts/reports/<run>/ (see docs/formats.md)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    with (report_dir / "results.jsonl").open("w", encoding="utf-8") as f:
        for r in results:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    (report_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    blocks = build_blocks(results, summary, _plots(report_dir, results, summary))
    (report_dir / "report.md").write_text(render_md(blocks), encoding="utf-8")
    title = f"protege eval: {summary['run']}"
    (report_dir / "report.html").write_text(render_html(blocks, report_dir, title), encoding="utf-8")
