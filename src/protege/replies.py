"""JSON objects from a model's reply, for every stage that asks a model for one (synth's questions
and judge, eval's judge).

A local model (served by protege's llama.cpp server) is asked with `json_format(schema)` as the
request's response_format: the server's constrained decoding then holds even a small model to
the schema, sizes and value ranges included. A hosted endpoint gets no response_format (their
support for schemas differs, and an unsupported one fails the call); its replies, like those of
any model that wraps JSON in prose or code fences, uses single quotes or leaves a trailing
comma, are read by `parse_json_object`.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)


def json_format(model_ref: str, schema: dict[str, Any]) -> dict[str, Any] | None:
    """The response_format that constrains a local model's reply to `schema`; None for a hosted one."""
    from protege.refs import parse_ref

    return {"type": "json_object", "schema": schema} if parse_ref(model_ref).is_local_gguf else None


def score_schema(*keys: str, text: str | None = None, text_chars: int = 160) -> dict[str, Any]:
    """An object of integer scores 1-10 under `keys`, and optionally one short string field."""
    props: dict[str, Any] = {k: {"type": "integer", "enum": list(range(1, 11))} for k in keys}
    if text:
        props[text] = {"type": "string", "maxLength": text_chars}
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


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
