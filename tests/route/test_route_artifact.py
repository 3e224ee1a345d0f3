"""The router artifact is plain data: it round-trips, and damage fails as one ProtegeError."""

from __future__ import annotations

import json

import numpy as np
import pytest
from route_builders import two_topic_examples

from protege.errors import ProtegeError
from protege.route import Decision, load
from protege.route.router import Router, save
from protege.route.routers import Cascade, Classifier, Queries, Random, SwRanking


def _saved(tmp_path, scorer, threshold=0.5):
    save(tmp_path, Router(scorer, threshold, {"note": "kept"}))
    return tmp_path


@pytest.fixture
def sw_dir(tmp_path):
    examples, emb = two_topic_examples(n=30)
    return _saved(tmp_path, SwRanking.fit(Queries(examples.queries, emb), examples.y)), examples, emb


def test_round_trip_scores_identically(sw_dir):
    path, examples, emb = sw_dir
    loaded = load(path)
    original = SwRanking.fit(Queries(examples.queries, emb), examples.y)
    q = Queries(examples.queries, emb)
    np.testing.assert_allclose(loaded.scorer.score(q), original.score(q), rtol=1e-6)
    assert loaded.kind == "sw_ranking" and loaded.threshold == 0.5 and loaded.info["note"] == "kept"
    assert load(path / "router.json").kind == "sw_ranking"


def test_classifier_round_trip(tmp_path):
    examples, emb = two_topic_examples(n=30)
    clf = Classifier.fit(Queries(examples.queries, emb), examples.y)
    loaded = load(_saved(tmp_path, clf))
    np.testing.assert_allclose(loaded.scorer.score(Queries(examples.queries, emb)), clf.score(Queries(examples.queries, emb)))


def test_tampered_npz_fails_cleanly(sw_dir):
    path = sw_dir[0]
    with np.load(path / "router.npz") as data:
        arrays = dict(data)
    arrays["y"] = 1 - arrays["y"]  # flip every label: a router that routes backwards
    np.savez(path / "router.npz", **arrays)
    with pytest.raises(ProtegeError, match="checksum does not match"):
        load(path)


def test_truncated_npz_fails_cleanly(sw_dir):
    npz = sw_dir[0] / "router.npz"
    npz.write_bytes(npz.read_bytes()[:1000])
    with pytest.raises(ProtegeError, match="tampered or truncated"):
        load(sw_dir[0])


@pytest.mark.parametrize(
    "damage",
    [
        lambda doc: "{not json",
        lambda doc: json.dumps({**doc, "kind": "os.system"}),
        lambda doc: json.dumps({**doc, "threshold": "high"}),
        lambda doc: json.dumps({k: v for k, v in doc.items() if k != "npz_sha256"}),
        lambda doc: json.dumps({**doc, "format": 99}),
        lambda doc: json.dumps(doc)[: len(json.dumps(doc)) // 2],
    ],
)
def test_damaged_json_fails_cleanly(sw_dir, damage):
    path = sw_dir[0] / "router.json"
    path.write_text(damage(json.loads(path.read_text())))
    with pytest.raises(ProtegeError):
        load(sw_dir[0])


def test_pickled_arrays_are_never_loaded(sw_dir):
    """An npz holding an object array (which only pickle can read) is refused, even with a
    matching checksum: np.load(allow_pickle=False) raises instead of unpickling."""
    path = sw_dir[0]
    np.savez(path / "router.npz", emb=np.array([{"evil": 1}], dtype=object), y=np.zeros(1))
    from protege.route.router import sha256_file

    doc = json.loads((path / "router.json").read_text())
    doc["npz_sha256"] = sha256_file(path / "router.npz")
    (path / "router.json").write_text(json.dumps(doc))
    with pytest.raises(ProtegeError, match="unreadable router arrays|malformed"):
        load(path)


def test_wrong_shapes_fail_cleanly(sw_dir):
    path = sw_dir[0]
    np.savez(path / "router.npz", emb=np.zeros((3, 10), dtype=np.float32), y=np.zeros(3))
    from protege.route.router import sha256_file

    doc = json.loads((path / "router.json").read_text())
    doc["npz_sha256"] = sha256_file(path / "router.npz")
    (path / "router.json").write_text(json.dumps(doc))
    with pytest.raises(ProtegeError, match="do not match"):
        load(path)


def test_missing_router_says_how_to_fit(tmp_path):
    with pytest.raises(ProtegeError, match="no router here") as info:
        load(tmp_path)
    assert "protege route fit" in str(info.value)


def test_cascade_answers_first_then_escalates(tmp_path):
    router = load(_saved(tmp_path, Cascade(feature="mean_logprob"), threshold=1.2))
    d = router.decide([{"role": "user", "content": "Do you fix tyres?"}])
    assert d == Decision("student", 0.0, d.reason) and d.reason.startswith("cascade: answer first")
    assert router.answer_first
    assert router.escalate(-2.0) and not router.escalate(-0.5)
    assert router.escalate(None)  # unknown confidence: the teacher answers


def test_random_router_decides_without_a_model(tmp_path):
    router = load(_saved(tmp_path, Random(), threshold=0.5))
    msgs = [{"role": "system", "content": "x"}, {"role": "user", "content": "When do you open?"}]
    d = router.decide(msgs)
    assert d.route == ("teacher" if d.score >= 0.5 else "student")
    assert router.decide(msgs) == d  # the same query always gets the same route
    with pytest.raises(ProtegeError, match="for the cascade"):
        router.escalate(-1.0)
