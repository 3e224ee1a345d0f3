"""Each row's key facts: short strings from its source that a correct answer must contain.

The teacher lists them with its question (protege.synth.questions). A small teacher copies whole
sentences, paraphrases or invents, so each listed fact is used as it is only when it is short;
from a longer one its atoms are taken: runs of numbers (a price, a time range, a phone number)
and names (capitalized words, codes such as RB-W-7). A candidate is kept when it occurs in the
source (through protege.corpus.facts, so formatting does not matter), does not occur in the
question or the agent's system prompt (a student can repeat those without knowing anything),
and, where the right answer states facts, when the teacher's own answer states it: a fact the
reference answer leaves out is not one a correct answer must contain. When nothing listed
survives, the answer's own atoms that pass the same tests are the key facts. Questions whose
right answer declines have none (eval scores those by declining).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from protege.corpus.facts import FILLER, contains, normalize, tokens
from protege.synth.grounded import STOPWORDS

SHORT_FACT_TOKENS = 4  # a listed fact this short is used whole; a longer one gives its atoms
# Capitalized words in a row, with model numbers ("Otter 2") but not a time or price after a name.
_NAME = re.compile(r"(?<![\w'])[A-Z][\w'\u2019-]*(?:[ ]+(?:[A-Z][\w'\u2019-]*|\d{1,3}(?![\d:.,%])))*")
_NUMBER_RUN = re.compile(r"[$€£(]?\d[\d,.:]*\)?(?:(?:\s*(?:-|–|to|and)\s*|[ ]+)[$€£(]?\d[\d,.:]*\)?)*(?:\s?%)?")


@dataclass(frozen=True)
class KeyFacts:
    facts: list[str]
    listed: int  # what the teacher listed
    not_in_source: int  # listed facts none of whose parts occur in the source
    not_in_answer: int  # listed facts in the source that the teacher's answer does not state
    from_answer: bool  # the facts are the answer's own atoms (nothing listed survived)


def atoms(text: str) -> list[str]:
    """The numbers (runs of them: `10:00 - 18:00`, `(555) 555-0178`) and names in a text. A lone
    capitalized word that starts the text or a sentence is a sentence start, not a name."""
    names, spans = [], []
    for m in _NAME.finditer(text):
        words = m.group(0).split()
        before = text[: m.start()].rstrip()
        if not before or before[-1] in ".!?:\n":  # a sentence start: "Call Eastbank" names Eastbank
            while words and (words[0].lower() in STOPWORDS or words[0].lower() in FILLER):
                words.pop(0)
            if words == m.group(0).split()[:1] and not any(ch.isdigit() for ch in words[0]):
                continue  # "Swollen or damaged ...": a capitalized first word, not a name
        if words:
            names.append(" ".join(words))
            spans.append(m.span())
    numbers = [_balanced(m.group(0).strip().rstrip(".,:")) for m in _NUMBER_RUN.finditer(text)
               if not any(a <= m.start() < b for a, b in spans)]  # "Otter 1" is a name, its 1 no fact of its own
    return [f for f in dict.fromkeys(numbers + names) if tokens(f)]


def _balanced(text: str) -> str:
    """"$209)" from "($209)" is "$209"; "(555) 555-0178" keeps its brackets."""
    if text.endswith(")") and "(" not in text:
        text = text[:-1]
    return text[1:] if text.startswith("(") and ")" not in text else text


def _specific(fact: str) -> bool:
    """A number, a name, or two content words: "cleaning" alone is not a fact an answer could lack."""
    words = [t for t in tokens(fact) if t not in STOPWORDS]
    return any(ch.isdigit() or ch.isupper() for ch in fact) or len(words) >= 2


def _candidates(fact: str) -> list[str]:
    if len(tokens(fact)) <= SHORT_FACT_TOKENS:
        return [fact] if _specific(fact) else []
    return atoms(fact)


def key_facts(listed: list[str] | tuple[str, ...], *, source: str, answer: str, question: str, system: str,
              expect: Literal["facts", "decline"]) -> KeyFacts:  # fmt: skip
    src, known = normalize(source), normalize(question + "\n" + system)

    def usable(fact: str) -> bool:
        return contains(src, fact) and not contains(known, fact)

    per_listed = [[c for c in _candidates(f) if usable(c)] for f in dict.fromkeys(listed)]
    not_in_source = sum(1 for c in per_listed if not c)
    if expect == "decline":
        return KeyFacts([], len(listed), not_in_source, 0, False)
    said = normalize(answer)
    stated = [[c for c in cands if contains(said, c)] for cands in per_listed]
    facts = list(dict.fromkeys(c for cands in stated for c in cands))
    not_in_answer = sum(1 for cands, s in zip(per_listed, stated) if cands and not s)
    if facts:
        return KeyFacts(facts, len(listed), not_in_source, not_in_answer, False)
    own = [a for a in atoms(answer) if usable(a)]
    return KeyFacts(own, len(listed), not_in_source, not_in_answer, bool(own))
