"""Key facts: short strings from the documents that a correct answer must contain, found in any
reasonable wording.

synth checks each key fact the teacher lists against its source chunk, and checks that an
answer's numbers and words come from its source (groundedness); eval measures how many of a
question's key facts each answer contains (fact recall). All three compare text through one
normalization, so a fact verified in the source is found in an answer exactly when the answer
states it, whatever the formatting:

- case, accents of quotes and dashes, whitespace and punctuation do not matter;
- numbers: `$1,200.00`, `1200` and `1,200 dollars` are the same number; `two` is `2`; `3rd` is `3`;
- times: `9am`, `9 a.m.`, `9:00 AM` and `09:00` are `9:00`; `6pm` and `18:00` are `18:00`;
  `noon` is `12:00`. A bare `6:00` stays `6:00` (morning or evening is not known);
- ranges: `Monday-Friday`, `Monday to Friday` and `Monday through Friday` match;
- plurals: a trailing `s` is ignored (`helmets` matches `helmet`).

A fact is found when its tokens appear in the text in order and next to each other, so `$45`
is not found in `$450` and `RB-W-7` is not found in `RB-W-70`.
"""

from __future__ import annotations

import re
import unicodedata

SEP = "\x1f"  # joins tokens, so matching never crosses a token boundary

_TIME_12H = re.compile(r"\b(\d{1,2})(?:[:.](\d{2}))?\s*([ap])\.?\s?m\b\.?", re.IGNORECASE)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_TOKEN = re.compile(r"\d+(?:[.:]\d+)*|[^\W\d_]+(?:'[^\W\d_]+)?")
_ORDINAL = re.compile(r"(\d+)(?:st|nd|rd|th)\b")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-", "\u2212": "-"})

NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
} | {"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
     "hundred": "100", "noon": "12:00", "midnight": "0:00"}  # fmt: skip
# Words that join or frame the parts of a fact without changing it ("Monday to Friday" = "Monday-Friday").
FILLER = frozenset({"to", "until", "till", "through", "thru", "from", "and", "or", "the", "a", "an", "of", "at", "per"})


def _time(m: re.Match[str]) -> str:
    hour, minute, half = int(m.group(1)), m.group(2) or "00", m.group(3).lower()
    if hour > 12:
        return m.group(0)
    hour = hour % 12 + (12 if half == "p" else 0)
    return f" {hour}:{minute} "


def _number(tok: str) -> str:
    if ":" in tok:  # a time: no leading zero on the hour
        head, _, rest = tok.partition(":")
        return f"{int(head)}:{rest}" if head.isdigit() else tok
    if tok.count(".") == 1:  # a decimal: 4.50 = 4.5, 45.00 = 45
        whole, frac = tok.split(".")
        frac = frac.rstrip("0")
        return f"{int(whole)}.{frac}" if frac else str(int(whole))
    return str(int(tok)) if tok.isdigit() and len(tok) < 4 else tok  # 007 = 7; keep 0142 (phone parts)


def tokens(text: str, number_words: bool = True) -> list[str]:
    """The text as normalized tokens (see the module docstring); filler words are left out.
    With `number_words=False`, "two" stays a word (for finding the numbers a text writes in digits)."""
    t = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    t = _TIME_12H.sub(_time, t)
    t = _THOUSANDS.sub("", t)
    t = _ORDINAL.sub(r"\1", t)
    t = t.replace("%", " percent ")
    out = []
    for tok in _TOKEN.findall(t):
        if tok[0].isdigit():
            out.append(_number(tok))
            continue
        tok = tok.removesuffix("'s")
        if number_words:
            tok = NUMBER_WORDS.get(tok, tok)
        if tok in FILLER:
            continue
        if len(tok) > 3 and tok.endswith("s") and not tok.endswith("ss"):
            tok = tok[:-1]
        out.append(tok)
    return out


def normalize(text: str) -> str:
    """The normalized form that `contains` searches in (compute it once for a long text)."""
    return SEP + SEP.join(tokens(text)) + SEP


def contains(haystack: str, fact: str) -> bool:
    """True when the fact occurs in the text (either may be given raw or already `normalize`d)."""
    h = haystack if haystack.startswith(SEP) else normalize(haystack)
    f = fact if fact.startswith(SEP) else normalize(fact)
    return f != SEP and f in h


def is_number(token: str) -> bool:
    return token[:1].isdigit()


# A refusal, a hand-off, or "my sources do not cover this": what a right answer to a question
# outside the documents (or unsafe, or not in the excerpts shown, or on a topic the agent avoids)
# does instead of stating facts. A creator declines in her own words ("I'm not the right person
# for that", "I keep politics off this page"), so those count too.
_DECLINE = re.compile(
    r"sorry|apologi[sz]e|unfortunately|\bcan(?:no|')t\b|\bcan not\b|\bunable\b|\bnot able\b|\bwon't\b|\bwill not\b"
    r"|\b(?:do|does|did)(?:n't| not)\s+(?:\w+\s+)?(?:have|cover|mention|include|contain|provide|offer|say|specify|list|know"
    r"|sell|handle|support|carry|give)"
    r"|\bnot\s+(?:covered|mentioned|included|provided|specified|listed|available|something|within|part of|related|in the)"
    r"|\bno (?:information|details|mention|data)\b|\boutside\b|\bbeyond (?:my|our|the)\b|\bnot (?:appropriate|safe|allowed|permitted)"
    r"|\b(?:only|just) (?:help|assist|answer|handle)"
    r"|\bnot (?:the right|a good) (?:person|place)\b|\b(?:rather|prefer) not\b|\bstay (?:away from|out of)\b"
    r"|\b(?:don't|do not|never|won't|not going to) (?:discuss|talk about|get into|comment on|weigh in)\b"
    r"|\bkeep (?:\w+\W+){0,3}?(?:off|out of) (?:this|my|here)\b|\bleave (?:that|this|it|those) to\b"
    r"|\b(?:please|recommend|suggest|advise|best to|better to)\W+(?:\w+\W+){0,3}?(?:contact|call|reach|consult|ask|visit|speak|check)",
    re.IGNORECASE,
)


def declines(text: str) -> bool:
    """True when the answer declines, hands off or says its sources do not cover the question."""
    return bool(_DECLINE.search(text.replace("\u2019", "'")))
