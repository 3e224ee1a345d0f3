"""The distilled guard's classifier: fitting, the safe artifact format, and the shipped default."""

import hashlib
import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from protege.errors import ProtegeError
from protege.guard.classifier import CLASSES, DEFAULT_DIR, DIM, GuardClassifier, fit, load, save
from protege.guard.metrics import load_labeled

LABELED = Path(__file__).parents[1] / "data" / "guard" / "labeled.jsonl"


def clusters(n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Unit vectors around one random centre per class of three (safe, S1, S9)."""
    rng = np.random.default_rng(0)
    centres = {c: rng.normal(size=DIM) for c in ("safe", "S1", "S9")}
    rng = np.random.default_rng(seed)
    labels = [("safe", "S1", "S9")[i % 3] for i in range(n)]
    x = np.stack([centres[c] + rng.normal(scale=1.5, size=DIM) for c in labels])
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def test_fit_learns_the_classes_and_scores_unseen_rows():
    x, y = clusters(90, seed=1)
    w, b = fit(x, y)
    clf = GuardClassifier(w, b, threshold=0.5)
    x2, y2 = clusters(60, seed=2)
    verdicts = clf.verdicts(x2)
    assert [v.unsafe for v in verdicts] == [c != "safe" for c in y2]
    assert [v.category for v, c in zip(verdicts, y2) if c != "safe"] == [c for c in y2 if c != "safe"]
    assert np.allclose(clf.probabilities(x2).sum(1), 1.0)


def test_row_weights_move_the_boundary():
    x, y = clusters(30, seed=3)
    ambiguous = (x[0] + x[1]) / np.linalg.norm(x[0] + x[1])  # halfway between a safe and an S1 row
    xs, ys = np.vstack([x, ambiguous, ambiguous]), [*y, "safe", "S1"]
    for heavy, want in (("safe", False), ("S1", True)):
        w, b = fit(xs, ys, weights=[1.0] * 30 + ([20.0, 1.0] if heavy == "safe" else [1.0, 20.0]))
        assert GuardClassifier(w, b, 0.5).verdicts(ambiguous[None])[0].unsafe is want


def test_artifact_round_trips_and_damage_is_one_error(tmp_path):
    x, y = clusters(30, seed=4)
    clf = GuardClassifier(*fit(x, y), threshold=0.42, info={"teacher": "embedded:x"})
    save(tmp_path, clf)
    back = load(tmp_path)
    assert back.threshold == 0.42 and back.info == {"teacher": "embedded:x"}
    assert np.array_equal(back.probabilities(x), clf.probabilities(x))
    arrays = tmp_path / "classifier.safetensors"
    arrays.write_bytes(arrays.read_bytes()[:-10])
    with pytest.raises(ProtegeError, match="checksum does not match"):
        load(tmp_path)
    with pytest.raises(ProtegeError, match="no guard classifier here"):
        load(tmp_path / "nowhere")
    doc = json.loads((tmp_path / "classifier.json").read_text())
    (tmp_path / "classifier.json").write_text(json.dumps({**doc, "classes": ["safe", "S1"]}))
    with pytest.raises(ProtegeError, match="not a protege guard classifier"):
        load(tmp_path)


class _Trap:
    """Unpickling this runs code: it writes the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "unpickled"))


def test_loading_never_unpickles(tmp_path):
    """A forged pair whose weights file is a pickle-bearing npz (the checksum matches) is refused."""
    marker = tmp_path / "marker"
    buf = io.BytesIO()
    trap = np.empty(1, dtype=object)
    trap[0] = _Trap(marker)
    np.savez(buf, weights=trap, bias=np.zeros(len(CLASSES), dtype=np.float32))
    pickle.dumps(trap)  # the array really is pickled inside the npz
    data = buf.getvalue()
    (tmp_path / "classifier.safetensors").write_bytes(data)
    doc = {"format": 1, "classes": list(CLASSES), "threshold": 0.5, "encoder_layers": 3, "weights_sha256": hashlib.sha256(data).hexdigest()}
    (tmp_path / "classifier.json").write_text(json.dumps(doc))
    with pytest.raises(ProtegeError, match="unreadable classifier arrays"):
        load(tmp_path)
    assert not marker.exists()


def test_shipped_classifier_is_plain_data():
    """The default ships as JSON + safetensors: no pickle, no npz, nothing else to load."""
    assert sorted(p.name for p in DEFAULT_DIR.iterdir()) == ["classifier.json", "classifier.safetensors", "train.jsonl"]
    assert json.loads((DEFAULT_DIR / "classifier.json").read_text())["rows"]["teacher"] == 0
    assert load(DEFAULT_DIR).weights.dtype == np.float32


def test_default_classifier_on_the_held_out_split():
    """The shipped classifier, on rows it never trained on (bench/guard_eval.py prints the full table)."""
    clf = load(DEFAULT_DIR)
    rows = [r for r in load_labeled(LABELED, "heldout") if not r["injection"]]
    verdicts = [clf.check(r["text"]) for r in rows]
    tp = sum(v.unsafe and r["label"] == "unsafe" for v, r in zip(verdicts, rows))
    flagged, unsafe = sum(v.unsafe for v in verdicts), sum(r["label"] == "unsafe" for r in rows)
    # Floors a little under the figures measured when it was trained, as the rule layer's are.
    assert tp / flagged >= 0.80 and tp / unsafe >= 0.80, (tp, flagged, unsafe)
