import pytest

from protege.errors import ProtegeError
from protege.refs import OLLAMA_URL, parse_ref

GOOD = [
    ("embedded:smollm2-135m-instruct", "embedded", "smollm2-135m-instruct", None),
    ("gguf:/models/x.gguf", "gguf", "/models/x.gguf", None),
    ("hf:HuggingFaceTB/SmolLM2-135M-Instruct", "hf", "HuggingFaceTB/SmolLM2-135M-Instruct", None),
    ("openai:meta-llama/Llama-3.1-405B@https://api.together.xyz/v1/", "openai", "meta-llama/Llama-3.1-405B", "https://api.together.xyz/v1"),
    ("openai:llama@3.1@http://127.0.0.1:8000/v1", "openai", "llama@3.1", "http://127.0.0.1:8000/v1"),
    ("ollama:llama3.1:8b", "ollama", "llama3.1:8b", OLLAMA_URL),
]

BAD = [
    ("", "empty model reference"),
    ("llama3", "no known scheme"),
    ("s3:bucket/model", "no known scheme"),
    ("embedded:", "names no model"),
    ("embedded:gpt-5", "unknown embedded model 'gpt-5'"),
    ("openai:gpt-4o", "must be openai:MODEL@BASE_URL"),
    ("openai:gpt-4o@api.openai.com", "must start with http"),
    ("gguf:model.bin", "must name a .gguf file"),
]


@pytest.mark.parametrize(("text", "kind", "name", "url"), GOOD)
def test_parse_good(text, kind, name, url):
    ref = parse_ref(text)
    assert (ref.kind, ref.name, ref.base_url) == (kind, name, url)
    assert parse_ref(str(ref)) == ref  # round trip


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_parse_bad(text, expected):
    with pytest.raises(ProtegeError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        parse_ref(text)
