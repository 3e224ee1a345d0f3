"""A groundedness check that does not trust the teacher: do the answer's numbers and words come
from what the teacher was shown?

The judge is the teacher (or a model like it) grading its own kind of answer, and a small one
passes nearly everything. This check reads the text instead. The evidence is what the student
will be shown with the answer (the agent's system prompt, the question, and in RAFT the excerpts)
plus, closed-book, the source chunk(s) the teacher answered from: a RAFT answer that states what
its excerpts do not would teach the student to make things up. Then:

- every number in the answer (prices, times, phone numbers, counts written in digits) must occur
  in the evidence: a number that is not there was invented, the most common and most harmful
  hallucination in support answers;
- for answers that state facts, the share of the answer's content words (not function words, not
  the courtesy words every answer uses) found in the evidence must reach `min_support`.

Both compare through protege.corpus.facts, so `$1,200` in the source supports `1200 dollars` in
the answer and `two years` supports `2 years`. Where the right answer declines (out-of-scope, unsafe
and avoided-topic questions; RAFT rows whose excerpts lack the answer) the answer must decline or hand off
instead of the word test (its words are the agent's, not the source's), and still invent no number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from protege.corpus.facts import declines, is_number, tokens

# Function words and the courtesy vocabulary of support answers: neither supports nor invents a fact.
_STOPWORDS = """
about above after again against all also although always am any anyone anything are aren't around as ask
asked asking assist assistance available away back be because been before being below best better between
both but by call can can't cannot certainly check come could couldn't day dear did didn't do does doesn't
doing don't done down during each either else even ever every everything feel few find first following for
free get gets getting give glad go going good great had has have having he hello help helpful here hi his
hope how however i i'd i'll i'm i've if in inform information into is isn't it it's its just keep kind know
let let's like look looking made make many may me might more most much must my need needs new no nor not
note now offer offered offering ok okay on once one only other our ours out over own please pleased
possible provide provided question questions quite rather reach really regarding related right same see
should so some something soon specific still such sure take team than thank thanks that that's the their
them then there there's these they thing things this those though through time to today too under until
up upon us use used using very want was we we'd we'll we're we've well were what what's when where whether
which while who whom whose why will with within without would wouldn't yes yet you you'd you'll you're
you've your yours assistant customer customers happy recommend suggest welcome detail details additional
however further more directly contact contacting reaching visit visiting answer answers
cost costs price priced fee charge charged pay dollar dollars euro euros pound pounds cent cents total
"""
STOPWORDS = frozenset(t for w in _STOPWORDS.split() for t in tokens(w, number_words=False))
_LIST_MARK = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+", re.MULTILINE)


NUMBERS = "groundedness: numbers not in the source"
WORDS = "groundedness: words not in the source"
NOT_DECLINED = "groundedness: answers instead of declining"
REASONS = (NUMBERS, WORDS, NOT_DECLINED)


@dataclass(frozen=True)
class Grounding:
    """The check's findings for one answer."""

    unsupported_numbers: tuple[str, ...]
    support: float | None  # share of content words in the evidence; None when not tested or no content words
    unsupported_words: tuple[str, ...]
    declined: bool | None  # for an answer that should decline: did it; None otherwise

    def to_dict(self) -> dict[str, Any]:
        return {"unsupported_numbers": list(self.unsupported_numbers), "support": self.support,
                "unsupported_words": list(self.unsupported_words), "declined": self.declined}  # fmt: skip

    def failure(self, min_support: float) -> tuple[str, str] | None:
        """(reason, detail) when the answer is not grounded, else None."""
        if self.unsupported_numbers:
            return NUMBERS, ", ".join(self.unsupported_numbers)
        if self.declined is False:
            return NOT_DECLINED, "the question is one to decline (or its excerpts lack the answer), but the answer does not"
        if self.support is not None and self.support < min_support:
            shown = ", ".join(self.unsupported_words[:8])
            return WORDS, f"{self.support:.0%} of its content words are in the source (< {min_support:.0%}); not found: {shown}"
        return None


def _key(word: str) -> str:
    """Words compared by their first 6 letters, so `adjusting` is supported by `adjust`."""
    return word[:6]


def check_grounded(answer: str, evidence: str, *, expect: Literal["facts", "decline"]) -> Grounding:
    """How far `answer` is supported by `evidence`; `expect` is what a right answer does (see
    the module docstring)."""
    answer = _LIST_MARK.sub(" ", answer)  # "1. Bring your bike" numbers a list, it states no number
    known = tokens(evidence)
    numbers = {t for t in known if is_number(t)}
    # Digits only: "one of our mechanics" states no number, but "1 year" does.
    unsupported_numbers = tuple(dict.fromkeys(t for t in tokens(answer, number_words=False) if is_number(t) and t not in numbers))
    if expect == "decline":
        return Grounding(unsupported_numbers, None, (), declines(answer))
    words = {_key(t) for t in known if not is_number(t)}
    content = [t for t in tokens(answer) if not is_number(t) and len(t) > 2 and t not in STOPWORDS]
    if not content:
        return Grounding(unsupported_numbers, None, (), None)
    missing = [t for t in content if _key(t) not in words]
    return Grounding(unsupported_numbers, 1 - len(missing) / len(content), tuple(dict.fromkeys(missing)), None)
