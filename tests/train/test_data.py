"""Dataset reading and encoding: line-numbered errors, assistant-only labels, teacher top-k mapping."""

from __future__ import annotations

import json

import pytest
from conftest import qa_rows, teacher_rows

from protege.errors import ProtegeError
from protege.train.data import EncodeStats, VocabMap, encode_row, read_rows


def test_bad_rows_are_reported_with_line_numbers(tmp_path):
    good = json.dumps(qa_rows(1)[0])
    no_answer = json.dumps({"messages": [{"role": "user", "content": "hi"}]})
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join([good, "", "{not json", no_answer, good]) + "\n")
    with pytest.raises(ProtegeError) as exc:
        read_rows(path)
    message = str(exc.value)
    assert "3 bad row(s)" in message
    assert "line 2: empty line" in message
    assert "line 3: not JSON" in message
    assert "line 4: the last message must be a non-empty assistant answer" in message


def test_empty_dataset_is_an_error(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("")
    with pytest.raises(ProtegeError, match="no rows to train on"):
        read_rows(path)


def test_only_assistant_tokens_carry_loss(tiny_tokenizer):
    row = qa_rows(1)[0]
    example = encode_row(row, tiny_tokenizer, 512, None, EncodeStats())
    learned = [t for t, label in zip(example.input_ids, example.labels) if label]
    assert tiny_tokenizer.decode(learned) == "It opens at nine.<|im_end|>"


def test_template_without_system_role_gives_a_clear_message(tiny_tokenizer):
    import copy

    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
        "{% endif %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    )
    with pytest.raises(ProtegeError, match="cannot express a conversation with roles system/user/assistant"):
        encode_row(qa_rows(1)[0], tok, 512, None, EncodeStats())


def teacher_logprobs(tokenizer, answer: str, alternative: str, p_alt: float = 0.3, use_bytes: bool = True) -> list[dict]:
    """What an API returns for `answer` under the same vocabulary: token strings, bytes, top-2."""
    import math

    out = []
    for tid in tokenizer(answer, add_special_tokens=False)["input_ids"]:
        text = tokenizer.decode([tid])
        entry = {"token": text, "logprob": math.log(1 - p_alt), "bytes": list(text.encode()) if use_bytes else None}
        alt = {"token": alternative, "logprob": math.log(p_alt), "bytes": list(alternative.encode()) if use_bytes else None}
        out.append({**entry, "top": [entry, alt]})
    return out


@pytest.mark.parametrize("use_bytes", [True, False])
def test_teacher_tokens_map_to_student_ids(tiny_tokenizer, use_bytes):
    row = qa_rows(1)[0]
    answer = row["messages"][-1]["content"]
    row["teacher"]["logprobs"] = teacher_logprobs(tiny_tokenizer, answer, " shop", use_bytes=use_bytes)
    stats = EncodeStats()
    example = encode_row(row, tiny_tokenizer, 512, VocabMap(tiny_tokenizer), stats)
    answer_ids = tiny_tokenizer(answer, add_special_tokens=False)["input_ids"]
    assert len(example.kd) == len(answer_ids) == stats.aligned_tokens
    shop = tiny_tokenizer.convert_tokens_to_ids("Ġshop")
    for position, target in example.kd.items():
        assert target.ids == [example.input_ids[position], shop]
    assert stats.kd_mapping_failed == 0


def test_unmappable_teacher_tokens_are_counted(tiny_tokenizer):
    row = qa_rows(1)[0]
    answer = row["messages"][-1]["content"]
    row["teacher"]["logprobs"] = teacher_logprobs(tiny_tokenizer, answer, "\u2603snowman-not-a-token")
    stats = EncodeStats()
    example = encode_row(row, tiny_tokenizer, 512, VocabMap(tiny_tokenizer), stats)
    assert stats.kd_mapping_failed == 0 and stats.kd_top_unmapped == len(example.kd) > 0
    assert all(len(t.ids) == 1 for t in example.kd.values())  # the unmapped alternative went to the tail


def test_answer_that_does_not_match_teacher_tokens_is_a_mapping_failure(tiny_tokenizer):
    row = qa_rows(1)[0]
    row["teacher"]["logprobs"] = teacher_logprobs(tiny_tokenizer, "Something else entirely.", " shop")
    stats = EncodeStats()
    example = encode_row(row, tiny_tokenizer, 512, VocabMap(tiny_tokenizer), stats)
    assert example.kd == {} and stats.kd_mapping_failed == 1


def test_with_a_shared_vocabulary_the_answer_is_the_teachers_own_tokens(tiny_qwen):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen)  # the 0.5B student's real tokenizer
    row = teacher_rows()[0]
    answer, logprobs = row["messages"][-1]["content"], row["teacher"]["logprobs"]
    stats = EncodeStats()
    example = encode_row(row, tokenizer, 512, VocabMap(tokenizer), stats, teacher_tokens=True)
    positions = sorted(example.kd)
    assert positions == list(range(positions[0], positions[0] + len(logprobs)))  # every answer token
    assert tokenizer.decode([example.input_ids[p] for p in positions]) == answer
    # A greedy teacher's choice is its own top-1.
    assert all(example.kd[p].ids[0] == example.input_ids[p] for p in positions)
    learned = [t for t, label in zip(example.input_ids, example.labels) if label]
    assert tokenizer.decode(learned) == answer + "<|im_end|>"
    assert stats.aligned_tokens == stats.kd_tokens == len(logprobs) and stats.kd_mapping_failed == 0

    # llama-server reports the end-of-turn token that stopped the answer, with no text.
    ended = json.loads(json.dumps(row))
    end = {"token": "", "logprob": -0.2, "bytes": None}
    ended["teacher"]["logprobs"].append({**end, "top": [end, {"token": " The", "logprob": -2.0, "bytes": [32, 84, 104, 101]}]})
    stats = EncodeStats()
    example = encode_row(ended, tokenizer, 512, VocabMap(tokenizer), stats, teacher_tokens=True)
    assert len(example.kd) == len(logprobs) and stats.kd_mapping_failed == 0

    edited = json.loads(json.dumps(row))
    edited["messages"][-1]["content"] = answer + " Call us."  # the tokens no longer spell it
    stats = EncodeStats()
    example = encode_row(edited, tokenizer, 512, VocabMap(tokenizer), stats, teacher_tokens=True)
    assert example.kd == {} and stats.kd_mapping_failed == 1
    learned = [t for t, label in zip(example.input_ids, example.labels) if label]
    assert tokenizer.decode(learned) == answer + " Call us.<|im_end|>"


def test_a_number_too_long_for_python_is_a_bad_row_not_a_crash(tmp_path):
    """json raises a plain ValueError (not JSONDecodeError) past Python's int-string limit."""
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(qa_rows(1)[0]) + "\n" + '{"messages": [], "n": ' + "9" * 5000 + "}\n")
    with pytest.raises(ProtegeError) as exc:
        read_rows(path)
    assert "1 bad row(s)" in str(exc.value) and "line 2: not JSON" in str(exc.value)
