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
