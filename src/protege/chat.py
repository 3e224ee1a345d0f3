"""`protege chat REF`: talk to any model reference in the terminal, streaming."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from protege.config import ModelConfig
from protege.console import err, out


async def _reply(client, history: list[dict], max_tokens: int, temperature: float) -> str:  # noqa: ANN001
    parts = []
    async for delta in client.stream(history, max_tokens=max_tokens, temperature=temperature):
        parts.append(delta)
        out.print(delta, end="", markup=False, highlight=False, soft_wrap=True)
    out.print()
    return "".join(parts)


def _read_line(interactive: bool) -> str | None:
    try:
        if interactive:
            return out.input("[bold cyan]you>[/] ")
        line = sys.stdin.readline()
        return line.rstrip("\n") if line else None
    except EOFError:
        return None


def chat(
    ref: str,
    *,
    system: str | None = None,
    lora: Path | None = None,
    message: str | None = None,
    max_tokens: int = 512,
    temperature: float = 0.7,
) -> int:
    """Run a chat session; returns the number of answers given."""
    from protege.models.endpoint import open_client

    from protege.refs import parse_ref

    parse_ref(ref)  # a bad reference is one clear line before anything starts
    model = ModelConfig(ref=ref)
    err.print(f"[dim]connecting to {ref}...[/]")
    interactive = message is None and sys.stdin.isatty()

    async def session() -> int:
        answered = 0
        history: list[dict] = [{"role": "system", "content": system}] if system else []
        async with open_client(model, lora=lora) as client:
            if interactive:
                err.print("[dim]type a message; /exit or Ctrl-D to leave[/]")
            while True:
                text = message if message is not None else _read_line(interactive)
                if text is None or text.strip() in ("/exit", "/quit"):
                    break
                if not text.strip():
                    continue
                history.append({"role": "user", "content": text})
                if interactive:
                    out.print("[bold green]model>[/] ", end="")
                history.append({"role": "assistant", "content": await _reply(client, history, max_tokens, temperature)})
                answered += 1
                if message is not None:
                    break
        return answered

    return asyncio.run(session())
