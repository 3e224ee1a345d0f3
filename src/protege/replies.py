"""JSON objects from a model's reply, for every stage that asks a model for one (synth's questions
and judge, eval's judge).

Calls that want JSON ask for it with `json_mode`, which local servers enforce with a grammar,
so a small local model replies in the format. Hosted models without such a mode, and older
servers, still wrap JSON in prose or code fences, use single quotes or leave a trailing comma:
`parse_json_object` accepts all of that.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)


class ReplyParseError(ValueError):
    """The reply holds no readable JSON object (or not the fields asked for)."""


def _objects(text: str) -> list[str]:
    """Balanced {...} spans in order of appearance (strings with braces handled)."""
    spans, depth, start, in_str, esc = [], 0, -1, False, False
    for i, ch in enumerate(text):
        if in_str:
            esc = not esc and ch == "\\"
            if ch == '"' and not esc:
                in_str = False
            continue
        if ch == '"' and depth > 0:
            in_str = True
        elif ch == "{":
            depth, start = depth + 1, i if depth == 0 else start
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append(text[start : i + 1])
    return spans


def json_objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object in a reply that parses (fenced ones first), tolerating fences, prose,
    single quotes and trailing commas."""
    fenced = _FENCE.findall(text)
    found = []
    for cand in [c for block in fenced for c in _objects(block)] + _objects(text):
        for attempt in (cand, re.sub(r",\s*([}\]])", r"\1", cand).replace("'", '"')):
            try:
                value = json.loads(attempt)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                found.append(value)
            break
    return found


def parse_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in a reply (see `json_objects`)."""
    found = json_objects(text)
    if found:
        return found[0]
    raise ReplyParseError("malformed JSON" if _objects(text) else "no JSON object in the reply")
