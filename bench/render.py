"""bench/report.md from the runner's record, and the summary of it that README.md quotes."""

from __future__ import annotations

from pathlib import Path

START = "<!-- bench summary: bench/run.py writes this from bench/report.json after a full run -->"
END = "<!-- bench summary end -->"


def machine_line(m: dict) -> str:
    """CPU, cores, the flags that matter (and whether AMX is absent), RAM: one line."""
    flags = ", ".join(f.upper().replace("_", "-") for f in m["flags"]) or "none of the listed"
    amx = "" if any(f.startswith("amx") for f in m["flags"]) else ", no AMX"
    return f"{m['cpu']}, {m['cores']} cores, flags {flags}{amx}, {m['ram_gib']} GiB RAM"


def fmt(x: float) -> str:
    """Three significant figures, thousands with separators: enough for a timing on a shared CPU."""
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def bench_section(r: dict, what: str) -> list[str]:
    """One bench: command, time, load average, machine; its table, missing peers, notes; or its failure."""
    name = r["bench"]
    out = [f"## {name}", "", what, ""]
    if "failed" in r:
        tail = "\n".join(r["log_tail"])
        return out + [f"**FAILED**: {r['failed']} (after {r['seconds']} s). End of its log:", "", "```", tail, "```", ""]
    out += [f"`{r['command']}` · {r['seconds']} s · load average (1, 5, 15 min) before {r['load_before']}, "
            f"after {r['load_after']} · {machine_line(r['machine'])}", ""]  # fmt: skip
    if r["comparisons"]:
        out += ["| figure | peer | peer's figure | protege's figure | ratio |", "| --- | --- | --- | --- | --- |"]
        for c in r["comparisons"]:
            out.append(f"| {c['figure']} ({c['better']} is better) | {c['peer_name']} | {fmt(c['peer'])} {c['unit']} | "
                       f"{fmt(c['ours'])} {c['unit']} | **{c['ratio']:.2f}x** |")  # fmt: skip
        out.append("")
    for m in r["peer_missing"]:
        out += [f"**Peer not measured: {m['peer']}.** {m['why']}", ""]
    out += [f"- {n}" for n in r["notes"]]
    return out + ([""] if r["notes"] else [])


def report_md(report: dict, benches: dict[str, str], not_run: dict[str, str]) -> str:
    when = report["finished"][:16].replace("T", " ")
    size = "smallest sizes" if report["quick"] else "default sizes"
    lines = [
        "# Benchmarks: protege side by side with its peers", "",
        f"Written by `{report['command']}` on {when} UTC ({size}; commit {report['commit']}; "
        f"{report['seconds']:.0f} s in all). Machine: {machine_line(report['machine'])}; {report['machine']['os']}, "
        f"Python {report['machine']['python']}.", "",
        "The ratio is how many times better protege's figure is than the peer's (above 1: protege ahead), "
        "whichever way the figure is better. Timings follow whatever else the machine was doing: "
        "each bench's load average is shown before and after it. Rerun: `make bench` (how each bench "
        "works and how to add one: `bench/README.md`).", "",
    ]  # fmt: skip
    for r in report["benches"]:
        lines += bench_section(r, benches.get(r["bench"], ""))
    lines += ["## Not run by make bench", ""] + [f"- `bench/{n}.py`: {why}" for n, why in not_run.items()] + [""]
    return "\n".join(lines)




def summary_md(report: dict) -> str:
    """Every comparison of a full run in one table, dated, for the README to quote."""
    m = report["machine"]
    lines = [
        START,
        f"From [bench/report.md](bench/report.md), written by `make bench` on {report['finished'][:10]} on "
        f"{machine_line(m)} (ratio: how many times better protege's figure is; above 1, protege is ahead):", "",
        "| bench | figure | peer | peer's | protege's | ratio |", "| --- | --- | --- | --- | --- | --- |",
    ]  # fmt: skip
    for r in report["benches"]:
        if "failed" in r:
            lines.append(f"| {r['bench']} | failed: {r['failed']} | | | | |")
        for c in r.get("comparisons", []):
            lines.append(f"| {r['bench']} | {c['figure']} ({c['better']} is better) | {c['peer_name']} | "
                         f"{fmt(c['peer'])} {c['unit']} | {fmt(c['ours'])} {c['unit']} | {c['ratio']:.2f}x |")  # fmt: skip
        for miss in r.get("peer_missing", []):
            lines.append(f"| {r['bench']} | peer not measured: {miss['why']} | {miss['peer']} | | | |")
    return "\n".join([*lines, END])


def quote(path: Path, block: str) -> None:
    """Replace the summary between START and END in `path` (a file without the markers is left alone)."""
    text = path.read_text()
    if START not in text or END not in text:
        return
    head, rest = text.split(START, 1)
    path.write_text(head + block + rest.split(END, 1)[1])
