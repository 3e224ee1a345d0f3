"""train.jsonl -> token ids with a loss mask and, where the teacher gave them, top-k targets.

The student's own chat template renders each conversation; only the assistant turns carry
loss. Teacher logprobs arrive as token *strings* (or bytes) from an API, so they are mapped to
the student's ids by exact vocabulary lookup. When teacher and student share one vocabulary
(checked id by id), the answer's ids are the teacher's own tokens, so every answer position has
the teacher's top-k. Otherwise the teacher's tokens are aligned to the student's tokenization of
the answer by byte span: a student token gets a KD target only where it is exactly one teacher token.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protege.errors import ProtegeError

if TYPE_CHECKING:
    from protege.project import ArtifactPaths

ROLES = ("system", "user", "assistant")


@dataclass
class KDTarget:
    """The teacher's top-k at one label position (student ids, logprobs)."""

    ids: list[int]
    logprobs: list[float]


@dataclass
class Example:
    input_ids: list[int]
    labels: list[bool]  # token t is predicted (it belongs to an assistant turn)
    kd: dict[int, KDTarget] = field(default_factory=dict)  # token position -> teacher top-k

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class EncodeStats:
    rows: int = 0
    truncated: int = 0
    dropped_too_long: int = 0
    kd_rows: int = 0  # rows with at least one KD target
    kd_mapping_failed: int = 0  # rows with logprobs that could not be mapped to student tokens
    kd_top_unmapped: int = 0  # teacher alternatives with no student id (their mass joins the tail)
    kd_tokens: int = 0
    label_tokens: int = 0
    teacher_tokens: int = 0
    aligned_tokens: int = 0  # teacher tokens that are exactly one student token

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Every row of a train.jsonl, validated; all problems reported at once with line numbers."""
    if not path.is_file():
        raise ProtegeError(f"{path}: dataset not found", hint="run `protege synth DIR` first")
    rows, problems = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        problem = None
        if not line.strip():
            problem = "empty line"
        else:
            try:
                row = json.loads(line)
            except ValueError as exc:  # JSONDecodeError, or an integer longer than Python reads
                problem = f"not JSON ({exc.msg if isinstance(exc, json.JSONDecodeError) else exc})"
            else:
                problem = _row_problem(row)
        if problem:
            problems.append(f"line {number}: {problem}")
        else:
            rows.append(row)
    if problems:
        more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ProtegeError(f"{path}: {len(problems)} bad row(s): " + "; ".join(problems[:5]) + more)
    if not rows:
        raise ProtegeError(f"{path}: no rows to train on", hint="run `protege synth DIR` first")
    return rows


def read_dataset(paths: "ArtifactPaths") -> tuple[list[dict[str, Any]], list[Path]]:
    """Every training row and the files they came from: synth's train.jsonl, then each part in
    the dataset manifest (protege.dataset). A row whose id was already read is skipped: an older
    protege harvest appended its rows to train.jsonl as well as to its own file."""
    from protege.dataset import training_files

    files = training_files(paths)
    rows = read_rows(files[0])
    seen = {r.get("id") for r in rows}
    for path in files[1:]:
        for row in read_rows(path):
            if row.get("id") is None or row["id"] not in seen:
                rows.append(row)
                seen.add(row.get("id"))
    return rows, files


def dataset_digest(files: list[Path]) -> str:
    """sha256 over the training files' names and contents: what a run was trained on."""
    import hashlib

    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def _row_problem(row: Any) -> str | None:
    if not isinstance(row, dict):
        return "not a JSON object"
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        return "no 'messages' list"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            return f"message {i} needs a role in {list(ROLES)} and a string content"
    if messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
        return "the last message must be a non-empty assistant answer"
    teacher = row.get("teacher")
    if teacher is not None and not isinstance(teacher, dict):
        return "'teacher' must be an object"
    logprobs = (teacher or {}).get("logprobs")
    if logprobs is not None and not (
        isinstance(logprobs, list) and all(isinstance(t, dict) and "token" in t for t in logprobs)
    ):
        return "'teacher.logprobs' must be a list of {token, logprob, top} objects"
    return None


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte <-> printable character table used by byte-level BPE vocabularies."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


class VocabMap:
    """Maps a token given as text/bytes (as APIs return it) to the student's token id."""

    def __init__(self, tokenizer: Any):
        vocab: dict[str, int] = tokenizer.get_vocab()
        decoder = json.loads(tokenizer.backend_tokenizer.to_str()).get("decoder") or {}
        byte_level = "ByteLevel" in json.dumps(decoder)
        self.by_bytes: dict[bytes, int] = {}
        if byte_level:
            inverse = {c: b for b, c in _bytes_to_unicode().items()}
            for tok, i in vocab.items():
                if all(c in inverse for c in tok):
                    self.by_bytes.setdefault(bytes(inverse[c] for c in tok), i)
        else:  # SentencePiece style: "▁" is a space, <0xNN> a raw byte
            for tok, i in vocab.items():
                if len(tok) == 6 and tok.startswith("<0x") and tok.endswith(">"):
                    self.by_bytes.setdefault(bytes([int(tok[3:5], 16)]), i)
                else:
                    self.by_bytes.setdefault(tok.replace("▁", " ").encode(), i)
        self.special = {t: vocab[t] for t in tokenizer.all_special_tokens if t in vocab}
        self.special.update({t: i for t, i in (tokenizer.get_added_vocab() or {}).items()})

    def id_of(self, entry: dict[str, Any]) -> int | None:
        token = entry.get("token") or ""
        if token in self.special:
            return self.special[token]
        raw = bytes(entry["bytes"]) if entry.get("bytes") else token.encode("utf-8")
        return self.by_bytes.get(raw)


def render(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool = False) -> str:
    """The student's chat template as text; a template that cannot express the roles is a clear error."""
    if not getattr(tokenizer, "chat_template", None):
        raise ProtegeError(
            "the student has no chat template, so it cannot be trained on conversations",
            hint="use an instruct model as student (e.g. embedded:smollm2-135m-instruct)",
        )
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    except Exception as exc:  # jinja raises TemplateError or anything the template's raise_exception says
        roles = "/".join(m["role"] for m in messages)
        raise ProtegeError(
            f"the student's chat template cannot express a conversation with roles {roles}: {exc}",
            hint="pick a student whose template supports these roles, or drop system prompts from the data",
        ) from None
    for m in messages:
        if m["content"].strip() and m["content"].strip() not in text:
            raise ProtegeError(
                f"the student's chat template drops the '{m['role']}' message, so it cannot express the roles",
                hint="pick a student whose template supports a system prompt",
            )
    return text


def encode_row(
    row: dict[str, Any],
    tokenizer: Any,
    max_len: int,
    vocab: VocabMap | None,
    stats: EncodeStats,
    *,
    teacher_tokens: bool = False,
) -> Example | None:
    """One row -> Example; None when truncation leaves no assistant token to learn from.

    teacher_tokens: the teacher shares the student's vocabulary, so the answer is encoded as the
    teacher's own token ids (what it generated), each with its top-k.
    """
    messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
    full = render(tokenizer, messages)
    spans = _assistant_spans(tokenizer, messages, full)
    stats.rows += 1
    logprobs = _answer_tokens((row.get("teacher") or {}).get("logprobs"))
    encoded = None
    if logprobs and vocab is not None and teacher_tokens:
        encoded = _teacher_token_encoding(full, spans, messages[-1]["content"], logprobs, tokenizer, vocab, stats)
    if encoded is None:
        ids, labels, offsets = _tokens(tokenizer, full, 0, len(full), spans)
        kd: dict[int, KDTarget] = {}
        if logprobs and vocab is not None and not teacher_tokens:
            answer = messages[-1]["content"]
            start = full.find(answer, spans[-1][0])
            kd = _align_kd(logprobs, answer, start, ids, offsets, full, vocab, stats)
        elif logprobs and vocab is not None:
            stats.kd_mapping_failed += 1
    else:
        ids, labels, kd = encoded
    if len(ids) > max_len:
        stats.truncated += 1
        ids, labels = ids[:max_len], labels[:max_len]
        kd = {p: t for p, t in kd.items() if p < max_len}
    # The first token is never predicted (nothing precedes it).
    labels[0] = False
    if not any(labels):
        stats.dropped_too_long += 1
        return None
    stats.label_tokens += sum(labels)
    stats.kd_tokens += len(kd)
    stats.kd_rows += bool(kd)
    return Example(ids, labels, kd)


def _assistant_spans(tokenizer: Any, messages: list[dict[str, str]], full: str) -> list[tuple[int, int]]:
    """Character spans of the assistant turns in `full`: the answer and its end-of-turn marker
    carry loss; trailing newlines do not."""
    spans: list[tuple[int, int]] = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:i], generation_prompt=True) if i else ""
        through = render(tokenizer, messages[: i + 1])
        if not full.startswith(through) or not through.startswith(before):
            raise ProtegeError("the student's chat template is not prefix-stable, so assistant turns cannot be found")
        spans.append((len(before), len(through.rstrip())))
    return spans


def _tokens(
    tokenizer: Any, full: str, a: int, b: int, spans: list[tuple[int, int]]
) -> tuple[list[int], list[bool], list[tuple[int, int]]]:
    """full[a:b] tokenized: ids, labels (token starts inside an assistant span), offsets in `full`."""
    enc = tokenizer(full[a:b], add_special_tokens=False, return_offsets_mapping=True)
    offsets = [(a + s, a + e) for s, e in enc["offset_mapping"]]
    labels = [any(s0 <= s < s1 for s0, s1 in spans) and e > s for s, e in offsets]
    return list(enc["input_ids"]), labels, offsets


def _answer_tokens(logprobs: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """The entries that spell the answer: llama-server also reports the end-of-turn token that
    stopped it, with no text and no bytes, and that token is not part of the answer's text."""
    end = len(logprobs or [])
    while end and not _piece(logprobs[end - 1]):  # type: ignore[index]
        end -= 1
    return logprobs[:end] if logprobs else logprobs


def _piece(entry: dict[str, Any]) -> bytes:
    return bytes(entry["bytes"]) if entry.get("bytes") else str(entry["token"]).encode()


def _kd_target(entry: dict[str, Any], vocab: VocabMap, stats: EncodeStats) -> KDTarget | None:
    """The teacher's top-k at one position in student ids; alternatives without an id (a special
    token an API printed as "") are left out, so their mass joins the tail bucket."""
    mapped = [(vocab.id_of(t), float(t["logprob"])) for t in entry.get("top") or [entry]]
    kept = [(i, lp) for i, lp in mapped if i is not None]
    stats.kd_top_unmapped += len(mapped) - len(kept)
    return KDTarget([i for i, _ in kept], [lp for _, lp in kept]) if kept else None


def _teacher_token_encoding(
    full: str,
    spans: list[tuple[int, int]],
    answer: str,
    logprobs: list[dict[str, Any]],
    tokenizer: Any,
    vocab: VocabMap,
    stats: EncodeStats,
) -> tuple[list[int], list[bool], dict[int, KDTarget]] | None:
    """The conversation with the last answer as the teacher's own token ids; None (the caller
    encodes the text and counts a mapping failure) when the tokens do not spell the stored answer."""
    start = spans[-1][0]
    chosen = [vocab.id_of(t) for t in logprobs]
    if full[start : start + len(answer)] != answer or None in chosen:
        return None
    if b"".join(map(_piece, logprobs)) != answer.encode():
        return None
    head, head_labels, _ = _tokens(tokenizer, full, 0, start, spans)
    tail, tail_labels, _ = _tokens(tokenizer, full, start + len(answer), len(full), spans)
    kd: dict[int, KDTarget] = {}
    for i, entry in enumerate(logprobs):
        if (target := _kd_target(entry, vocab, stats)) is not None:
            kd[len(head) + i] = target
    stats.teacher_tokens += len(logprobs)
    stats.aligned_tokens += len(logprobs)
    ids = head + [int(i) for i in chosen]  # type: ignore[arg-type]
    return ids + tail, head_labels + [True] * len(chosen) + tail_labels, kd


def _align_kd(
    logprobs: list[dict[str, Any]],
    answer: str,
    start: int,
    ids: list[int],
    offsets: list[tuple[int, int]],
    full: str,
    vocab: VocabMap,
    stats: EncodeStats,
) -> dict[int, KDTarget]:
    """Teacher tokens matched to student tokens by byte span within the answer."""
    pieces = [_piece(t) for t in logprobs]
    joined = b"".join(pieces)
    answer_bytes = answer.encode()
    stats.teacher_tokens += len(pieces)
    # The stored answer may be stripped of whitespace the teacher generated.
    shift = joined.find(answer_bytes.strip()) - answer_bytes.find(answer_bytes.strip())
    if start < 0 or joined.strip() != answer_bytes.strip():
        stats.kd_mapping_failed += 1
        return {}
    spans: dict[tuple[int, int], dict[str, Any]] = {}
    pos = -shift
    for piece, entry in zip(pieces, logprobs):
        spans[(pos, pos + len(piece))] = entry
        pos += len(piece)
    kd: dict[int, KDTarget] = {}
    for p, (s, e) in enumerate(offsets):
        if s < start or e > start + len(answer) or e <= s:
            continue
        b0 = len(full[start:s].encode())
        b1 = b0 + len(full[s:e].encode())
        found = spans.get((b0, b1))
        if found is None or vocab.id_of(found) != ids[p]:
            continue
        stats.aligned_tokens += 1
        if (target := _kd_target(found, vocab, stats)) is not None:
            kd[p] = target
    if not kd:
        stats.kd_mapping_failed += 1
    return kd


def length_batches(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Batches of similar length (little padding), in a seeded order that depends only on the epoch.

    Determinism matters: a resumed run rebuilds the same order and skips the batches it did.
    """
    rng = random.Random(f"{seed}-{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    # Sort within windows of 50 batches: length-grouped, yet still shuffled across the epoch.
    window = batch_size * 50
    grouped: list[int] = []
    for w in range(0, len(order), window):
        grouped += sorted(order[w : w + window], key=lambda i: lengths[i])
    batches = [grouped[i : i + batch_size] for i in range(0, len(grouped), batch_size)]
    rng.shuffle(batches)
    return batches
