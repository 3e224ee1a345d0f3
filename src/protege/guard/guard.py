"""The guard: the rule layer always, the distilled guard and an LLM guard when configured, one Verdict per turn.

How a verdict is reached for the last turn of the given role:

1. Rule layer (no model, every turn): PII kinds are recorded in `Verdict.pii` (PII alone never
   makes a turn unsafe: callers redact it). In a *user* turn, prompt-injection markers make the
   verdict unsafe under the category "injection" (source "rules"); no later layer is asked.
   Assistant turns are not checked for injection markers (quoting one is not an attack).
2. Distilled guard (`guard.classifier`, a few ms, see `protege.guard.classifier`): when it flags
   the turn, that is the verdict (source "classifier", its S-category); the LLM guard is then not
   asked, so an unsafe turn is refused without waiting for a model.
3. LLM guard (if configured): its Llama Guard verdict is the verdict (source "llm"), categories
   S1-S14. An answer out of format fails closed: unsafe, category "guard-error", the raw answer
   in `reason`. An unreachable guard endpoint raises ProtegeError (never a silent pass).
4. Otherwise the turn is safe, with source "classifier" when the distilled guard passed it, or
   "none" when no model layer is set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protege.config import GuardConfig, ModelConfig
from protege.errors import ProtegeError
from protege.guard import prompts
from protege.guard.llm import GuardFormatError, LLMGuard, Role, content_text, conversation_for
from protege.guard.rules import find_injection, find_pii, redact

if TYPE_CHECKING:
    from protege.guard.classifier import GuardClassifier
    from protege.project import Project


@dataclass
class Verdict:
    safe: bool
    categories: list[str] = field(default_factory=list)
    source: str = "none"  # "rules" | "classifier" | "llm" | "none": which layer's judgement this is
    reason: str = ""
    pii: list[str] = field(default_factory=list)  # PII kinds found in the turn (EMAIL, CARD, ...)
    injection: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Guard:
    """Checks conversation turns. Build one per process (`from_project`) and reuse it."""

    def __init__(self, llm: ModelConfig | None = None, *, config: GuardConfig | None = None, cache_path: Path | None = None,
                 classifier: "GuardClassifier | None" = None):  # fmt: skip
        self.config = config or GuardConfig()
        self.llm = LLMGuard(llm, cache_path=cache_path) if llm else None
        self.classifier = classifier

    @classmethod
    def from_project(cls, project: "Project", *, rules_only: bool = False) -> "Guard":
        """Rules always; the distilled guard from `guard.classifier` and the LLM guard from `guard.llm`."""
        cfg = project.config.guard
        llm = None if rules_only else project.config.teacher if cfg.llm == "teacher" else cfg.llm
        classifier = None
        if cfg.classifier is not None and not rules_only:
            from protege.guard.classifier import DEFAULT_DIR, load

            classifier = load(DEFAULT_DIR if cfg.classifier == "default" else project.root / cfg.classifier)
        return cls(llm, config=cfg, cache_path=project.paths.cache_db, classifier=classifier)

    @property
    def policy(self) -> str:
        """'block' (refuse politely and log) or 'flag' (log only): what serve does with an unsafe verdict."""
        return self.config.policy

    async def probe(self) -> None:
        """Raise ProtegeError unless each model layer tells the probes apart (the LLM guard in format).

        For the classifier this also loads the encoder, so the first request does not pay for it."""
        clf = self.classifier
        if clf and (clf.check(prompts.PROBE_SAFE).unsafe or not clf.check(prompts.PROBE_UNSAFE).unsafe):
            raise ProtegeError(
                "the guard classifier failed its probe: it cannot tell a pipe-bomb request from an opening-hours question",
                hint="re-run `protege guard distill`, or set guard.classifier to default",
            )
        if self.llm:
            await self.llm.probe()

    async def check(self, messages: list[dict[str, Any]], role: Role = "user") -> Verdict:
        """The verdict on the last `role` turn of an OpenAI-style message list, in its context."""
        turn = next((m for m in reversed(messages) if m.get("role") == role), None)
        if turn is None:
            return Verdict(True, source="none", reason=f"no {role} turn to check")
        text = content_text(turn.get("content"))
        pii = sorted({s.kind for s in find_pii(text)})
        markers = find_injection(text) if role == "user" else []
        if markers:
            reason = "prompt-injection markers: " + ", ".join(markers)
            return Verdict(False, [prompts.INJECTION], "rules", reason, pii, True)
        if self.classifier is not None:
            c = self.classifier.check(text)
            if c.unsafe:
                reason = f"distilled guard: unsafe ({c.category} {prompts.CATEGORIES[c.category][0]}, score {c.score:.2f})"
                return Verdict(False, [c.category], "classifier", reason, pii)
            if self.llm is None:
                return Verdict(True, [], "classifier", f"distilled guard: safe (score {c.score:.2f})", pii)
        if self.llm is None:
            return Verdict(True, [], "none", "no rule matched; no LLM guard configured", pii)
        try:
            v = await self.llm.classify(conversation_for(messages, role))
        except GuardFormatError as exc:
            return Verdict(False, [prompts.GUARD_ERROR], "llm", f"{self.llm.model.ref}: {exc.message}", pii)
        names = ", ".join(f"{c} {prompts.CATEGORIES[c][0]}" for c in v.categories)
        reason = "LLM guard: safe" if v.safe else f"LLM guard: unsafe ({names or 'no category given'})"
        return Verdict(v.safe, v.categories, "llm", reason, pii)

    async def aclose(self) -> None:
        if self.llm:
            await self.llm.aclose()


def run(project: "Project | None", text: str, *, role: Role = "user", rules_only: bool = False) -> tuple[Verdict, str, int]:
    """Check one text as a single turn (probing the LLM guard first, as every stage does).

    Returns the verdict, the redacted text and how many PII spans were redacted. Without a
    project only the rule layer runs.
    """
    import asyncio

    guard = Guard.from_project(project, rules_only=rules_only) if project else Guard()

    async def go() -> Verdict:
        try:
            await guard.probe()
            return await guard.check([{"role": role, "content": text}], role=role)
        finally:
            await guard.aclose()

    verdict = asyncio.run(go())
    redacted, n = redact(text)
    return verdict, redacted, n
