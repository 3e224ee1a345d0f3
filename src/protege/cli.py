"""The `protege` command. Each command is thin: it parses options and calls a stage module.

Heavy libraries (torch, transformers, llama_cpp) are imported inside the commands that need
them, so `protege --help` stays instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, Optional

import typer

from pydantic import ValidationError
from rich.markup import escape

from protege.cli_keys import keys_app, widget
from protege.cli_route import ProjectDir, route_app
from protege.console import err, next_steps, out
from protege.config import DEFAULT_STUDENT, DEFAULT_TEACHER, describe_validation_error
from protege.errors import ProtegeError

if TYPE_CHECKING:
    from protege.project import Project

app = typer.Typer(
    name="protege",
    help="Distill an open frontier model into small models you own, served behind a learned router.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

def require_models(project: "Project", synth_only: bool = False) -> None:
    """A missing gguf: file or embedded package is an error before any work starts."""
    missing = project.unavailable_models(synth_only)
    if missing:
        raise ProtegeError(f"{len(missing)} model(s) cannot be used: " + "; ".join(missing),
                           hint="fix the reference in protege.yaml, or install what is named")  # fmt: skip


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="folder to create the project in")],
    docs: Annotated[Optional[Path], typer.Option(help="a document or folder of documents to copy in")] = None,
    teacher: Annotated[Optional[str], typer.Option(help=f"teacher model reference (default: {DEFAULT_TEACHER})")] = None,
    student: Annotated[Optional[str], typer.Option(help=f"student model reference (default: {DEFAULT_STUDENT})")] = None,
    name: Annotated[Optional[str], typer.Option(help="project name (default: the folder's name)")] = None,
    force: Annotated[bool, typer.Option(help="on an existing project: add --docs, replacing same-name documents, and change "
                                        "only the settings given; every replaced file is backed up first")] = False,  # fmt: skip
) -> None:
    """Create a project folder: protege.yaml and docs/ (or, with --force, add documents to one)."""
    from protege.scaffold import init_project

    r = init_project(directory, docs=docs, teacher=teacher, student=student, name=name, force=force)
    if r.created:
        lines = [f"[green]Created[/] {r.config_path} and {r.docs_dir} ({r.copied} document(s) copied)"]
    else:
        changed = f"settings changed: {', '.join(r.settings)}" if r.settings else "protege.yaml kept as it was"
        lines = [f"[green]Updated[/] {r.config_path.parent}: {r.copied} document(s) copied, {r.unchanged} already there; {changed}"]
    if r.backup_dir:
        lines.append(f"{len(r.backed_up)} replaced file(s) backed up in {r.backup_dir}")
    next_steps(*lines, f"Next: put documents in {r.docs_dir}, then [bold]protege synth {directory}[/]")


@app.command()
def models(
    prepare: Annotated[bool, typer.Option(help="assemble and verify every installed embedded model now")] = False,
) -> None:
    """List the embedded models: size, role, licence and whether they are installed."""
    from rich.table import Table

    from protege.models.embedded import REGISTRY, size_on_disk

    if prepare:
        for m in REGISTRY.values():
            if m.present:
                err.print(f"[dim]verifying embedded:{m.name} ...[/]")
                m.path()

    table = Table("reference", "role", "size", "present", "licence")
    for m in REGISTRY.values():
        size = size_on_disk(m)
        missing = m.missing_packages()
        present = "[green]yes[/]" if not missing else f"[red]no[/] (pip: {missing[0]}{' ...' if len(missing) > 1 else ''})"
        table.add_row(f"embedded:{m.name}", m.role, f"{size / 1e6:,.0f} MB" if size else "?", present, m.license)
    out.print(table)
    next_steps("Other references: gguf:PATH, hf:REPO_OR_DIR, openai:MODEL@URL, ollama:MODEL (see README).")


@app.command()
def chat(
    ref: Annotated[str, typer.Argument(help="model reference, e.g. embedded:qwen2.5-coder-1.5b-instruct")],
    system: Annotated[Optional[str], typer.Option(help="system prompt")] = None,
    lora: Annotated[Optional[Path], typer.Option(help="GGUF LoRA adapter for a local model")] = None,
    message: Annotated[Optional[str], typer.Option("--message", "-m", help="send one message and exit")] = None,
    max_tokens: Annotated[int, typer.Option(help="longest answer in tokens")] = 512,
    temperature: Annotated[float, typer.Option(help="sampling temperature")] = 0.7,
) -> None:
    """Chat with any model reference in the terminal (streaming)."""
    from protege.chat import chat as run_chat

    answered = run_chat(ref, system=system, lora=lora, message=message, max_tokens=max_tokens, temperature=temperature)
    err.print(f"[dim]{answered} answer(s). Next: protege init DIR to start a project with this model.[/]")


@app.command()
def doctor() -> None:
    """Check the environment and say how to fix what is missing."""
    from rich.table import Table

    from protege.doctor import run_checks

    checks = run_checks()
    table = Table("check", "status", "detail", "fix")
    for c in checks:
        status = "[green]ok[/]" if c.ok else ("[red]missing[/]" if c.required else "[yellow]optional[/]")
        table.add_row(c.name, status, c.detail, "" if c.ok else c.fix)
    out.print(table)
    failed = [c for c in checks if c.required and not c.ok]
    if failed:
        err.print(f"[red]{len(failed)} required check(s) failed.[/] Run the fixes above (or `make setup`).")
        raise typer.Exit(1)
    next_steps("All required checks passed. Next: protege init DIR --docs PATH")


@app.command()
def synth(
    directory: Annotated[Path, typer.Argument(help="project folder (holds protege.yaml)")] = Path("."),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print calls, estimated tokens and cost; call nothing")] = False,
) -> None:
    """Write a training set from the project's docs: questions, grounded answers, filtered, split by chunk."""
    from rich.table import Table

    from protege.models.speed import duration as _duration
    from protege.project import Project
    from protege.synth import run as run_synth

    project = Project.load(directory)
    require_models(project, synth_only=not dry_run)  # a dry run checks every model the project will need
    result = run_synth(project, dry_run=dry_run)
    c = result.counts
    for file, why in result.skipped:
        err.print(f"[yellow]skipped[/] {escape(file)}: {escape(why)}", highlight=False, soft_wrap=True)
    for note in result.notes:
        err.print(f"[yellow]rows skipped[/] {escape(note)}", highlight=False, soft_wrap=True)
    if dry_run:
        timed = [r.seconds for r in result.estimate if r.seconds is not None]
        columns = ["step", "model", "calls (at most)", "prompt tokens (est.)", "completion tokens (est.)", "cost USD (est.)"]
        table = Table(*columns, *(["time (est.)"] if timed else []))  # local models only: their speed is measured
        for r in result.estimate:
            table.add_row(r.step, r.ref, f"{r.calls:,}", f"{r.prompt_tokens:,}", f"{r.completion_tokens:,}", f"{r.cost_usd:.4f}",
                          *([_duration(r.seconds)] if timed else []))  # fmt: skip
        table.add_row("total", "", f"{sum(r.calls for r in result.estimate):,}",
                      f"{sum(r.prompt_tokens for r in result.estimate):,}",
                      f"{sum(r.completion_tokens for r in result.estimate):,}", f"{sum(r.cost_usd for r in result.estimate):.4f}",
                      *([_duration(sum(timed))] if timed else []))  # fmt: skip
        out.print(table)
        next_steps(
            f"{c['files']} file(s) read, {c['skipped']} skipped (listed above), {c['chunks']} chunk(s), "
            f"{c['questions']} question(s) planned. Nothing was called (calls already in artifacts/cache.db will be free).",
            *([f"Estimated wall time of the local model calls: {_duration(sum(timed))} (from speeds measured here once, "
               "cached in the protege cache folder; hosted models are not timed)"] if timed else []),  # fmt: skip
            f"Next: protege synth {directory}",
        )
        return
    kept = f"; {c['preserved']} row(s) synth did not write kept as a dataset part" if c.get("preserved") else ""
    next_steps(
        f"[green]Wrote[/] {c['kept']} pair(s): {c['train']} train -> {result.train}, {c['eval']} eval -> {result.eval}",
        f"{c['dropped']} dropped (reasons in {result.card} and {result.dropped}); "
        f"{c['skipped']} file(s) skipped" + (f"; system prompt: {result.persona}" if result.persona else "") + kept,
        f"Next: read {result.card}, then [bold]protege train {directory}[/]",
    )


@app.command()
def train(
    directory: Annotated[Path, typer.Argument(help="project folder (holds protege.yaml)")] = Path("."),
    run: Annotated[Optional[str], typer.Option("--run", help="run name (default: run-<timestamp>)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue an interrupted run from its checkpoint")] = False,
    merge: Annotated[bool, typer.Option("--merge", help="also write the merged full model (safetensors)")] = False,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", min=1, help="stop after N optimizer steps")] = None,
) -> None:
    """Train the student on artifacts/data/train.jsonl and every harvest: LoRA SFT (+ token KD), GGUF adapter for llama.cpp."""
    import json

    from protege.project import Project
    from protege.train import run as run_train

    run_dir = run_train(Project.load(directory), run_name=run, resume=resume, merge=merge, max_steps=max_steps)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    agreement = metrics.get("export_agreement")
    next_steps(
        f"[green]Trained[/] {metrics['steps']} step(s), final loss {metrics['final_loss']:.3f}, "
        f"{metrics['tokens_per_s']:,.0f} tokens/s, distillation: {metrics['distillation']}"
        + (f", llama.cpp/PyTorch agreement {agreement['agreement']:.0%}" if agreement else ""),
        f"Run: {run_dir} (adapter/, adapter.gguf, metrics.json)",
        f"Next: [bold]protege eval {directory}[/] (or try it: protege chat <student> --lora {run_dir / 'adapter.gguf'})",
    )


@app.command("eval")
def eval_(
    directory: Annotated[Path, typer.Argument(help="project folder (holds protege.yaml)")] = Path("."),
    run: Annotated[Optional[str], typer.Option(help="trained run to evaluate (default: artifacts/models/LATEST)")] = None,
    compare: Annotated[Optional[tuple[str, str]], typer.Option(help="put two evaluated runs side by side")] = None,
    fail_under: Annotated[Optional[float], typer.Option(help="exit 1 if the trained student's mean rubric is below this")] = None,
) -> None:
    """Judge the untrained student, the trained student and the teacher on the held-out questions."""
    from rich.table import Table

    from protege.project import Project

    project = Project.load(directory)
    if compare:
        from protege.evaluate.compare import compare as compare_runs

        c = compare_runs(project, *compare)
        table = Table(*c.header)
        for row in c.rows:
            table.add_row(*row)
        out.print(table)
        next_steps(f"[green]Wrote[/] {c.md_path} and {c.html_path}")
        return
    from protege.evaluate import run as run_eval
    from protege.evaluate.report import headline_table

    result = run_eval(project, run=run, fail_under=fail_under)
    s = result.summary
    headline = headline_table(s)
    table = Table(*headline.header, title=f"protege eval: {s['run']}, {s['n_questions']} held-out questions (95% CI)")
    for row in headline.rows:
        table.add_row(*row)
    out.print(table)
    if not s["trained"]:
        out.print(f"[yellow]{s['note']}[/]")
    next_steps(
        f"[green]Wrote[/] {result.report_dir}/report.html (and report.md, summary.json, results.jsonl)",
        f"Next: [bold]protege route {directory}[/] to learn when the student is enough",
    )
    if not result.passed:
        err.print(f"[bold red]regression gate failed:[/] {escape(result.gate_failure or '')}")
        raise typer.Exit(1)


@app.command()
def serve(
    directories: Annotated[Optional[list[Path]], typer.Argument(help="project folder(s); each becomes a model name")] = None,
    host: Annotated[Optional[str], typer.Option(help="address to bind (default: serve.host, 127.0.0.1)")] = None,
    port: Annotated[Optional[int], typer.Option(min=0, max=65535, help="port (default: serve.port, 8000)")] = None,
    db: Annotated[Optional[str], typer.Option(help="traffic log database URL, e.g. postgresql://user@host/db")] = None,
) -> None:
    """Serve projects behind an OpenAI-compatible gateway with a chat page (Ctrl-C stops)."""
    from protege.serve import run as run_serve

    run_serve(directories or [Path(".")], host=host, port=port, db=db)


app.add_typer(keys_app, name="keys")
app.command()(widget)


@app.command()
def harvest(
    directory: ProjectDir = Path("."),
    db: Annotated[Optional[str], typer.Option(help="traffic log database URL (default: artifacts/traffic.db)")] = None,
) -> None:
    """Turn teacher-answered traffic into a new part of the training set (PII redacted, deduplicated)."""
    from protege.project import Project
    from protege.serve.harvest import run as run_harvest

    project = Project.load(directory)
    result = run_harvest(project, db=db)
    if result.path is None:
        next_steps(
            f"Nothing new to harvest: {result.candidates} teacher-answered request(s), {result.duplicates} already in the dataset.",
            f"Next: keep serving (`protege serve {directory}`); the teacher's answers accumulate.",
        )
        return
    next_steps(
        f"[green]Harvested[/] {result.added} row(s) into {result.path} ({result.duplicates} near-duplicate(s) dropped, "
        f"{result.redactions} PII span(s) redacted); listed in {project.paths.data / 'versions.jsonl'} and {project.paths.card}",
        f"Next: protege train {directory}  (a new run learns from train.jsonl plus every harvest; then protege serve picks it up)",
    )


guard_app = typer.Typer(help="Check text with the guard: PII, prompt injection, and the LLM guard.", no_args_is_help=True)
app.add_typer(guard_app, name="guard")


@guard_app.command("check")
def guard_check(
    text: Annotated[Optional[str], typer.Argument(help="the text to check (or use --file)")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="read the text from a file")] = None,
    role: Annotated[str, typer.Option(help="check it as a 'user' turn or an 'assistant' turn")] = "user",
    rules_only: Annotated[bool, typer.Option("--rules-only", help="skip the LLM guard: rule layer only")] = False,
    project_dir: Annotated[Optional[Path], typer.Option("--project", help="project folder (its guard.llm is used)")] = None,
) -> None:
    """Print the verdict and the PII-redacted text; exit code 1 when the text is unsafe."""
    from protege.guard import run as run_guard
    from protege.project import Project

    if (text is None) == (file is None):
        raise ProtegeError("give the text to check either as an argument or with --file, not both")
    if role not in ("user", "assistant"):
        raise ProtegeError(f"--role must be 'user' or 'assistant' (got {role!r})")
    if file is not None:
        if not file.is_file():
            raise ProtegeError(f"{file}: file not found")
        text = file.read_text(encoding="utf-8", errors="replace")
    if not (text or "").strip():
        raise ProtegeError(f"nothing to check: {'the file ' + str(file) + ' is' if file else 'the text is'} empty")
    project = Project.load(project_dir) if project_dir else None
    verdict, redacted, n = run_guard(project, text or "", role=role, rules_only=rules_only)  # type: ignore[arg-type]
    label = "[green]safe[/]" if verdict.safe else f"[bold red]unsafe[/] {', '.join(verdict.categories)}"
    out.print(f"verdict: {label}  (source: {verdict.source}; {escape(verdict.reason)})")
    out.print(f"pii: {', '.join(verdict.pii) or 'none'}; injection: {'yes' if verdict.injection else 'no'}; {n} span(s) redacted")
    out.print(escape(redacted), highlight=False, soft_wrap=True)
    cfg = project.config.guard if project and not rules_only else None
    layers = " + ".join(["rules"] + (["distilled guard"] if cfg and cfg.classifier else []) + (["LLM guard"] if cfg and cfg.llm else []))
    err.print(f"[dim]Checked with {layers}. Next: set guard.classifier / guard.llm / guard.policy in protege.yaml; "
              "serve applies them to every request.[/]")  # fmt: skip
    if not verdict.safe:
        raise typer.Exit(1)


@guard_app.command("distill")
def guard_distill(
    project_dir: Annotated[Optional[Path], typer.Argument(help="project folder: its teacher writes and labels, artifacts/guard/ gets the classifier")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="write the classifier here instead")] = None,
    labeled: Annotated[Optional[Path], typer.Option("--labeled", help="a labelled guard set (JSONL); only its train split is used")] = None,
    per_call: Annotated[int, typer.Option("--per-call", min=2, max=20, help="messages the teacher writes per call")] = 10,
    teacher: Annotated[bool, typer.Option("--teacher/--no-teacher", help="--no-teacher: learn the --labeled train rows alone (seconds, no model)")] = True,
) -> None:
    """Distill the LLM guard into a classifier on MiniLM embeddings (a few ms per check)."""
    from protege.guard.distill import run as run_distill
    from protege.project import Project

    project = Project.load(project_dir) if project_dir else None
    r = run_distill(project, out=out, labeled=labeled, n=per_call, use_teacher=teacher)
    info = r.classifier.info["rows"]
    next_steps(
        f"[green]Distilled[/] the guard into {r.out}/classifier.json + classifier.safetensors (threshold {r.classifier.threshold:.3f}; "
        f"{info['teacher']} teacher-labelled rows, {r.disagreed} of {r.written} written dropped as the teacher-guard disagreed; "
        f"{info['labeled']} labelled rows; rows in {r.out}/train.jsonl)",
        f"Next: set guard.classifier: {r.out} in protege.yaml (relative to the project), then "
        f"python bench/guard_eval.py --classifier {r.out}",
    )


app.add_typer(route_app, name="route")


@app.command("run")
def run_all(
    directory: Annotated[Path, typer.Argument(help="project folder (holds protege.yaml)")] = Path("."),
    quick: Annotated[bool, typer.Option(help="a small configuration with the small student (SmolLM2-135M) that finishes in minutes (CI runs it)")] = False,
    force: Annotated[Optional[list[str]], typer.Option(help="re-run this stage (and what follows) even if up to date")] = None,
) -> None:
    """Run the whole loop: synth -> train -> eval -> route, skipping what is up to date."""
    from rich.table import Table

    from protege.loop import run_loop, summary_rows
    from protege.project import Project

    project = Project.load(directory)
    require_models(project)  # found now, not after an hour of synth
    result = run_loop(project, quick=quick, force=force)
    table = Table("figure", "value", title=f"protege run: {project.name}" + (" (quick)" if quick else ""))
    for label, value in summary_rows(result.summary):
        table.add_row(label, value)
    out.print(table)
    ran = ", ".join(f"{s} {result.seconds[s]:.0f}s" for s in result.ran) or "nothing (all up to date)"
    next_steps(
        f"Ran: {ran}. Skipped: {', '.join(result.skipped) or 'none'}.",
        f"Report: {result.summary.get('report', '(none)')}   Router: {result.summary.get('router_dir', '(none)')}",
        f"Next: [bold]protege serve {directory}[/] and open http://127.0.0.1:8000 to chat "
        f"(or: protege chat ... ; OpenAI clients: base_url=http://127.0.0.1:8000/v1, model={project.name})",
    )


def fail(message: str, code: int) -> NoReturn:
    """The one way a command reports an error: one line on stderr (never wrapped), then exit."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every error a user can cause is one line with a hint, never a traceback.

    Exit 2: bad input (a ProtegeError, a bad option or argument). Exit 1: the system refused a
    file (OSError) or a SQLite file is damaged where no store named it. Exit 130: Ctrl-C.
    """
    import sqlite3

    from typer._click.exceptions import NoArgsIsHelpError, UsageError  # typer vendors click (0.29+)

    try:
        code = app(args=argv, prog_name="protege", standalone_mode=False)
    except NoArgsIsHelpError:
        sys.exit(2)  # the help was printed
    except UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "protege"
        fail(f"{exc.format_message()} (see `{command} --help`)", 2)
    except typer.Abort:
        fail("aborted", 1)
    except ProtegeError as exc:
        fail(str(exc), 2)
    except ValidationError as exc:  # options validated through the config models
        fail(describe_validation_error(exc, "option"), 2)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        fail(f"{where}{exc.strerror or exc}", 1)
    except sqlite3.DatabaseError as exc:
        fail(f"a database file is damaged ({exc})", 1)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]: finished work is saved; run the same command again to resume")
        sys.exit(130)
    if code == 130:  # typer turns Ctrl-C into exit code 130
        err.print("[yellow]interrupted[/]: finished work is saved; run the same command again to resume")
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
