"""The shared rich consoles: results to stdout, progress and errors to stderr."""

from rich.console import Console

out = Console()
err = Console(stderr=True)


def next_steps(*lines: str) -> None:
    """Every command ends by saying where its artifacts are and what to run next."""
    for line in lines:
        out.print(line)
