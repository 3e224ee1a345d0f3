"""JSON objects from model replies, as small models and hosted ones write them."""

import pytest

from protege.replies import ReplyParseError, json_objects, parse_json_object


def test_parse_json_object_prefers_the_fenced_object():
    assert parse_json_object('{"a": 1} then ```json\n{"b": 2}\n```') == {"b": 2}
    with pytest.raises(ReplyParseError, match="no JSON object"):
        parse_json_object("no braces here")
    with pytest.raises(ReplyParseError, match="malformed JSON"):
        parse_json_object("{not: json: at all}")


def test_json_objects_finds_every_readable_object_in_order():
    text = "First {\"a\": 1}, then {'b': 'single quotes',} and {broken}, finally {\"c\": {\"d\": \"a } in a string\"}}"
    assert json_objects(text) == [{"a": 1}, {"b": "single quotes"}, {"c": {"d": "a } in a string"}}]
    assert json_objects("") == []


def test_a_local_model_is_held_to_the_schema_and_a_hosted_one_is_not():
    from protege.replies import json_format, score_schema

    schema = score_schema("score", text="reason", text_chars=80)
    assert schema["properties"]["score"] == {"type": "integer", "enum": list(range(1, 11))}
    assert schema["properties"]["reason"] == {"type": "string", "maxLength": 80} and schema["required"] == ["score", "reason"]
    assert json_format("embedded:qwen2.5-coder-1.5b-instruct", schema) == {"type": "json_object", "schema": schema}
    assert json_format("openai:gpt-4o@https://api.openai.com/v1", schema) is None
