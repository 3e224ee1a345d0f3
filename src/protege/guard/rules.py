"""The rule layer: PII detection and redaction, and prompt-injection markers. No model.

It runs on every request (and on every synth and harvest row), so it is plain regular
expressions plus checksums, and Google's libphonenumber (the `phonenumbers` package) for phone
numbers, whose formats no hand-written pattern gets right. Microsoft Presidio's analyzer was not
used: it needs a spaCy language model, which cannot be installed offline, and without one its
recognizers are the same kind of patterns as these.

Kinds and how each is confirmed (a pattern match alone is never enough where a checksum exists):

    EMAIL   local@domain.tld
    PHONE   libphonenumber's matcher (leniency POSSIBLE); numbers without a +country code are
            read as DEFAULT_PHONE_REGION numbers
    CARD    13-19 digits (spaces or dashes allowed), a card-network first digit, Luhn check
    IBAN    country code + check digits + BBAN, the country's registered length, mod-97 == 1
    IP      IPv4 and IPv6 addresses, validated by the `ipaddress` module
    SECRET  provider key formats (OpenAI, Anthropic, AWS, GitHub, GitLab, Slack, Google, Stripe,
            Hugging Face), JWTs, PEM private keys, and the value in `api_key=...`-style pairs
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass

DEFAULT_PHONE_REGION = "US"

# The order is the priority when two detections overlap: a secret that contains digits is a
# secret, an IBAN is not also a phone number.
PII_KINDS = ("SECRET", "EMAIL", "IBAN", "CARD", "IP", "PHONE")


@dataclass(frozen=True)
class Span:
    kind: str
    start: int
    end: int
    text: str


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# Registered IBAN lengths (SWIFT IBAN registry), by country code.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


def iban_valid(iban: str) -> bool:
    """Country length and the ISO 13616 mod-97 check on an IBAN without spaces."""
    iban = iban.upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b")
_DIGIT_RUN = re.compile(r"(?<![\d.,])\d(?:[ -]?\d){12,}(?![\d]|[.,]\d)")
_GROUP = re.compile(r"\d+")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]){10,32}")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d]|\.\d)")
_IPV6 = re.compile(r"(?<![0-9A-Za-z:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![0-9A-Za-z:])")
_SECRETS = [
    re.compile(p)
    for p in (
        r"\bsk-(?:proj-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{20,}",  # OpenAI, Anthropic
        r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key id
        r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",  # GitHub tokens
        r"\bgithub_pat_[A-Za-z0-9_]{22,}",
        r"\bglpat-[A-Za-z0-9_-]{20,}",  # GitLab
        r"\bxox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
        r"\bAIza[0-9A-Za-z_-]{35}",  # Google API key
        r"\b[rsp]k_(?:live|test)_[A-Za-z0-9]{16,}",  # Stripe
        r"\bhf_[A-Za-z0-9]{30,}",  # Hugging Face
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWT
        r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z]+ )?PRIVATE KEY-----|$)",
    )
]
# `password: hunter2!x`, `api_key="..."`, `Authorization: Bearer ...`: only the value is a secret.
_SECRET_VALUE = re.compile(
    r"(?i)\b(?:api[_ -]?key|apikey|secret(?:[_ -]?key)?|access[_ -]?token|auth[_ -]?token|client[_ -]?secret|"
    r"password|passwd|pwd|bearer)\b[\"']?\s*(?:[:=]|\bis\b)?\s*[\"']?(?P<value>(?=[^\s\"',;]*[0-9!@#$%^&*_-])[^\s\"',;]{8,})"
)


def _phone_spans(text: str, region: str) -> list[Span]:
    if sum(ch.isdigit() for ch in text) < 7:  # fewer digits than any phone number: skip the slow part
        return []
    import phonenumbers

    matcher = phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.POSSIBLE)
    return [Span("PHONE", m.start, m.end, text[m.start : m.end]) for m in matcher]


def _candidates(text: str, region: str) -> list[Span]:
    found: list[Span] = []
    for rx in _SECRETS:
        found += [Span("SECRET", m.start(), m.end(), m.group()) for m in rx.finditer(text)]
    for m in _SECRET_VALUE.finditer(text):
        found.append(Span("SECRET", m.start("value"), m.end("value"), m.group("value")))
    found += [Span("EMAIL", m.start(), m.end(), m.group()) for m in _EMAIL.finditer(text)]
    for m in _IBAN.finditer(text):
        span = _iban_span(m.group(), m.start())
        if span:
            found.append(span)
    for m in _DIGIT_RUN.finditer(text):
        if m.start() and text[m.start() - 1].isalpha():
            continue  # glued to letters: an IBAN-like or product code, not a card (DE89 3704 0044 ...)
        found += _card_spans(m.group(), m.start())
    for rx in (_IPV4, _IPV6):
        for m in rx.finditer(text):
            try:
                ipaddress.ip_address(m.group())
            except ValueError:
                continue
            found.append(Span("IP", m.start(), m.end(), m.group()))
    return found


def _is_card(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_valid(digits)


def _card_spans(run: str, offset: int) -> list[Span]:
    """Card numbers in a run of digit groups: a phone number can run straight into a card
    (`+44 20 7946 0958 4111 1111 1111 1111`), so every span of whole groups is tried, longest first."""
    groups = [(g.start(), g.end()) for g in _GROUP.finditer(run)]
    spans: list[Span] = []
    i = 0
    while i < len(groups):
        for j in range(len(groups), i, -1):
            start, end = groups[i][0], groups[j - 1][1]
            if _is_card(re.sub(r"\D", "", run[start:end])):
                spans.append(Span("CARD", offset + start, offset + end, run[start:end]))
                i = j - 1
                break
        i += 1
    return spans


def _iban_span(candidate: str, offset: int) -> Span | None:
    """The pattern runs on greedily (`... 00 AND MORE`): cut it at the country's length, then check."""
    length = IBAN_LENGTHS.get(candidate[:2].upper())
    if length is None:
        return None
    count = 0
    for i, ch in enumerate(candidate):
        count += ch.isalnum()
        if count == length:
            text = candidate[: i + 1]
            return Span("IBAN", offset, offset + i + 1, text) if iban_valid(re.sub(r"[ -]", "", text)) else None
    return None


def find_pii(text: str, region: str = DEFAULT_PHONE_REGION) -> list[Span]:
    """Every PII span in `text`, non-overlapping, in order of position."""
    candidates = sorted(_candidates(text, region), key=lambda s: (PII_KINDS.index(s.kind), s.start, s.start - s.end))
    kept: list[Span] = []
    for span in candidates:
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    # Phone numbers last, on the text with the other spans blanked out (offsets kept): the
    # matcher would otherwise read a phone number running into a card number as one long number.
    masked = list(text)
    for k in kept:
        masked[k.start : k.end] = " " * (k.end - k.start)
    kept += _phone_spans("".join(masked), region)
    return sorted(kept, key=lambda s: s.start)


def redact(text: str, region: str = DEFAULT_PHONE_REGION, keep: Collection[str] = ()) -> tuple[str, int]:
    """Replace every PII span with its kind in brackets ("[EMAIL]"); return the text and the count.

    `keep`: span texts that are not private here, such as the phone number and email the owner
    publishes in their own documents (see `published_pii`); a support agent must be able to say
    them. Runs until nothing is found, so no other detectable span survives: cutting one span
    out can join its neighbours into a new one, and a run of glued numbers can take a pass each.
    """
    total = 0
    for _ in range(len(text) + 1):  # each pass that finds spans replaces some: it ends well before
        spans = [s for s in find_pii(text, region) if text[s.start : s.end] not in keep]
        if not spans:
            break
        total += len(spans)
        parts, pos = [], 0
        for s in spans:
            parts += [text[pos : s.start], f"[{s.kind}]"]
            pos = s.end
        text = "".join(parts) + text[pos:]
    return text, total


def published_pii(texts: Iterable[str], region: str = DEFAULT_PHONE_REGION) -> frozenset[str]:
    """The PII-like spans of the owner's own documents: public facts, not private data."""
    return frozenset(t[s.start : s.end] for t in texts for s in find_pii(t, region))


# Prompt-injection markers: attempts to override the agent's instructions, extract its hidden
# prompt, switch it into an unrestricted persona, or smuggle chat-template control tokens.
_INJECTION_MARKERS = {
    "ignore-instructions": r"\b(?:ignore|disregard|forget|skip|override|bypass)\s+(?:any\s+|every\s+|the\s+|my\s+|of\s+)*"
    r"(?:(?:all|your|previous|prior|above|earlier|preceding|original|initial|system|existing|safety|developer)\s+)+"
    r"(?:instructions?|prompts?|rules|guidelines|directives|guardrails|restrictions|programming|context|messages?)\b"
    r"|\b(?:ignore|disregard|forget)\s+(?:everything|all|anything)\s+(?:above|before|previously|you(?:'ve| have)? (?:been|were) told)\b",
    "new-instructions": r"(?:^|[\n.!:]\s*)(?:new|updated|real|actual)\s+(?:system\s+)?instructions?\s*:"
    r"|\bsystem\s+(?:override|update|prompt\s+override)\b|\bfrom now on,?\s+(?:you|ignore|respond|answer)\b",
    "reveal-prompt": r"\b(?:reveal|show|print|repeat|output|display|leak|tell me|give me|what (?:is|are|was))\s+(?:me\s+)?"
    r"(?:your|the)\s+(?:(?:full|exact|entire|original|hidden|secret|initial)\s+)*"
    r"(?:system\s+(?:prompt|message|instructions?)|(?:hidden|secret|initial)\s+(?:prompt|instructions?)|instructions you were given|prompt above)",
    "persona-override": r"\b(?:you are now|act as|pretend (?:to be|you are)|roleplay as|from now on you are)\b[^.\n]{0,60}?"
    r"\b(?:dan|unrestricted|unfiltered|uncensored|jailbroken|without (?:any )?(?:restrictions|rules|filters|limits)|no (?:restrictions|rules|filters|limits))\b"
    r"|\bdo anything now\b|\b(?:developer|dan|god|jailbreak)\s+mode\b|\bjailbreak(?:ed|ing)?\b",
    "template-tokens": r"<\|(?:im_start|im_end|system|user|assistant|begin_of_text|start_header_id|end_header_id|eot_id)\|>"
    r"|\[/?inst\]|<</?sys>>|^\s*#{2,}\s*(?:system|instruction)s?\s*:",
}
_INJECTION = {name: re.compile(rx, re.IGNORECASE | re.MULTILINE) for name, rx in _INJECTION_MARKERS.items()}
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


def find_injection(text: str) -> list[str]:
    """The names of the injection markers in `text` (empty when none).

    The text is NFKC-normalized and stripped of zero-width characters first, so full-width
    letters and invisible joiners do not hide a marker.
    """
    norm = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    norm = re.sub(r"[ \t]+", " ", norm)
    return [name for name, rx in _INJECTION.items() if rx.search(norm)]
