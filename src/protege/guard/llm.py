"""The LLM guard: a Llama Guard 3 model, or any chat model prompted with the same taxonomy.

Two ways to ask, chosen from the model reference:

- a Llama Guard model (its reference names `llama-guard` / `llamaguard`, e.g.
  `openai:meta-llama/Llama-Guard-3-8B@URL`, `ollama:llama-guard3`, `gguf:.../Llama-Guard-3-1B.gguf`)
  is sent the bare user/assistant conversation: its own chat template adds the taxonomy, exactly
  as Meta trained it;
- any other model (the local teacher by default) is sent the rendered Llama Guard prompt with a
  strict system message (see `protege.guard.prompts`).

A hosted model answers in Llama Guard's text format, 'safe' or 'unsafe' then category codes, read
by `parse_verdict`. A local model (embedded: or gguf:, served by protege's llama-server) is asked
under constrained decoding, `prompts.VERDICT_SCHEMA` as the request's json_schema response_format:
the server samples only tokens that keep the answer a verdict, so even the 1.5B teacher cannot
leave the format (unconstrained, it answered with category descriptions). `parse_json_verdict`
reads it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from protege.config import ModelConfig
from protege.errors import ProtegeError
from protege.guard import prompts
from protege.refs import parse_ref

if TYPE_CHECKING:
    from protege.models.client import ChatClient, Completion

Role = Literal["user", "assistant"]
MAX_TOKENS = 16  # "unsafe\nS1,S9,S14" and a little slack: the verdict is short by contract
JSON_MAX_TOKENS = 48  # {"verdict": "unsafe", "categories": ["S1", "S9", "S14"]} is 24 tokens for Qwen
# OpenAI's response_format: llama-server turns the schema into a grammar and samples under it.
VERDICT_FORMAT = {"type": "json_schema", "json_schema": {"name": "guard_verdict", "schema": prompts.VERDICT_SCHEMA}}
TURN_CHARS = 6000  # the assessed turn is cut here; a guard's context is small
CONTEXT_TURNS = 2  # earlier turns shown for context ...
CONTEXT_CHARS = 1000  # ... each cut to this many characters


class GuardFormatError(ProtegeError):
    """The guard model answered something that is not a Llama Guard verdict."""


@dataclass(frozen=True)
class LLMVerdict:
    safe: bool
    categories: list[str]
    raw: str


_FIRST = re.compile(r"^\s*(safe|unsafe)\b[ \t.:]*", re.IGNORECASE)
_CODE = re.compile(r"\bS(\d{1,2})\b", re.IGNORECASE)


def parse_verdict(text: str) -> LLMVerdict:
    """Read a Llama Guard answer. Raises GuardFormatError when it is not one.

    Accepted: optional leading whitespace, 'safe' or 'unsafe' (any case) as the first word; for
    'unsafe', category codes S1-S14 after it (a second line, or the rest of the first). Anything
    else on the first line, or an unknown code, is out of format.
    """
    m = _FIRST.match(text or "")
    first_line_rest = (text or "")[m.end() :].split("\n", 1)[0].strip() if m else ""
    if not m or (first_line_rest and not _CODE.match(first_line_rest)):
        raise GuardFormatError(f"not a Llama Guard verdict (expected 'safe' or 'unsafe' first): {text[:120]!r}")
    if m.group(1).lower() == "safe":
        return LLMVerdict(True, [], text)
    codes = [f"S{int(n)}" for n in _CODE.findall(text[m.end() :])]
    unknown = [c for c in codes if c not in prompts.CATEGORIES]
    if unknown:
        raise GuardFormatError(f"unknown hazard categories {unknown} in {text[:120]!r} (known: S1-S14)")
    return LLMVerdict(False, sorted(set(codes), key=lambda c: int(c[1:])), text)


def parse_json_verdict(text: str) -> LLMVerdict:
    """Read a verdict written under VERDICT_SCHEMA. Raises GuardFormatError when it is not one
    (a constrained answer can still be cut short by max_tokens, or come from a server that
    ignored the schema)."""
    try:
        doc = json.loads(text or "")
    except json.JSONDecodeError:
        doc = None
    verdict = doc.get("verdict") if isinstance(doc, dict) else None
    codes = doc.get("categories", []) if isinstance(doc, dict) else None
    if verdict not in ("safe", "unsafe") or not isinstance(codes, list) or (verdict == "safe" and codes):
        raise GuardFormatError(f"not a guard verdict (expected {{\"verdict\": \"safe\"|\"unsafe\", ...}}): {text[:120]!r}")
    unknown = [c for c in codes if c not in prompts.CATEGORIES]
    if unknown:
        raise GuardFormatError(f"unknown hazard categories {unknown} in {text[:120]!r} (known: S1-S14)")
    return LLMVerdict(verdict == "safe", sorted(set(codes), key=lambda c: int(c[1:])), text)


def content_text(content: Any) -> str:
    """OpenAI message content as text: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def conversation_for(messages: list[dict[str, Any]], role: Role) -> list[dict[str, str]]:
    """The user/assistant turns up to the last `role` turn, alternating as Llama Guard requires.

    System and tool messages are left out (Llama Guard's template rejects them), consecutive
    turns of one role are joined, and the conversation starts with a user turn. Empty when there
    is no `role` turn.
    """
    last = max((i for i, m in enumerate(messages) if m.get("role") == role), default=None)
    if last is None:
        return []
    turns: list[dict[str, str]] = []
    for m in messages[: last + 1]:
        if m.get("role") not in ("user", "assistant"):
            continue
        text = content_text(m.get("content"))
        if turns and turns[-1]["role"] == m["role"]:
            turns[-1]["content"] += "\n\n" + text
        else:
            turns.append({"role": m["role"], "content": text})
    if turns and turns[0]["role"] == "assistant":
        turns.insert(0, {"role": "user", "content": "(conversation start)"})
    *context, assessed = turns[-(CONTEXT_TURNS + 1) :]
    if len(turns) > CONTEXT_TURNS + 1 and context[0]["role"] == "assistant":
        context = context[1:]  # still start with a user turn after cutting
    context = [dict(t, content=t["content"][-CONTEXT_CHARS:]) for t in context]
    return [*context, dict(assessed, content=assessed["content"][:TURN_CHARS])]


def is_llama_guard(model: ModelConfig) -> bool:
    name = str(parse_ref(model.ref)).lower().replace("_", "-")
    return "llama-guard" in name or "llamaguard" in name


class LLMGuard:
    """Asks one model for Llama Guard verdicts. The client is opened on first use."""

    def __init__(self, model: ModelConfig, *, cache_path: Path | None = None):
        self.model = model
        self.native = is_llama_guard(model)
        self.constrained = not self.native and parse_ref(model.ref).is_local_gguf
        self.cache_path = cache_path
        self._client: ChatClient | None = None
        self.probed = False

    def _messages(self, conversation: list[dict[str, str]]) -> list[dict[str, str]]:
        if self.native:
            return conversation
        shots = []
        for shot, answer in prompts.SHOTS:
            shown = prompts.json_answer(answer) if self.constrained else answer
            shots += [{"role": "user", "content": prompts.render(list(shot))}, {"role": "assistant", "content": shown}]
        return [{"role": "system", "content": prompts.SYSTEM}, *shots, {"role": "user", "content": prompts.render(conversation)}]

    async def answer(self, conversation: list[dict[str, str]], *, use_cache: bool = True) -> "Completion":
        """The guard model's completion for a conversation whose last turn is assessed (a cached one
        keeps the latency of the call that made it)."""
        if self._client is None:
            from protege.models.endpoint import open_client

            self._client = open_client(self.model, cache_path=self.cache_path)
        fmt = {"response_format": VERDICT_FORMAT, "max_tokens": JSON_MAX_TOKENS} if self.constrained else {"max_tokens": MAX_TOKENS}
        return await self._client.complete(self._messages(conversation), temperature=0.0, use_cache=use_cache, **fmt)

    async def ask(self, conversation: list[dict[str, str]], *, use_cache: bool = True) -> str:
        """The guard model's raw answer for a conversation whose last turn is assessed."""
        return (await self.answer(conversation, use_cache=use_cache)).text

    def read(self, raw: str) -> LLMVerdict:
        """The verdict in an answer of this guard's model (GuardFormatError if there is none)."""
        return parse_json_verdict(raw) if self.constrained else parse_verdict(raw)

    async def classify(self, conversation: list[dict[str, str]]) -> LLMVerdict:
        return self.read(await self.ask(conversation))

    async def probe(self) -> None:
        """Check once that the model answers in the Llama Guard format and tells unsafe from safe.

        A model that does not is a configuration error, raised here at start-up, rather than a
        guard that silently passes everything.
        """
        if self.probed:
            return
        hint = "use a Llama Guard model (e.g. ollama:llama-guard3), the teacher, or set guard.llm to null"
        for prompt, want_safe in ((prompts.PROBE_UNSAFE, False), (prompts.PROBE_SAFE, True)):
            raw = await self.ask([{"role": "user", "content": prompt}], use_cache=False)
            try:
                v = self.read(raw)
            except GuardFormatError:
                raise ProtegeError(
                    f"guard model {self.model.ref} does not answer in the Llama Guard format "
                    f"('safe' or 'unsafe' + categories): to {prompt[:40]!r}... it answered {raw[:80]!r}",
                    hint=hint,
                ) from None
            if v.safe != want_safe or (not v.safe and not v.categories):
                problem = (
                    "called a known-unsafe prompt safe" if want_safe is False and v.safe
                    else "called a known-safe prompt unsafe" if want_safe
                    else "said unsafe but named no category"
                )  # fmt: skip
                raise ProtegeError(f"guard model {self.model.ref} failed its probe: it {problem} (answer {raw[:80]!r})", hint=hint)
        self.probed = True

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
