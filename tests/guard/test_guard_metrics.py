"""The labelled set's split and the per-group scores the bench prints."""

import random
from collections import defaultdict
from pathlib import Path

from protege.guard.metrics import GROUPS, Prediction, group_of, group_scores, load_labeled, percentile

LABELED = Path(__file__).parents[1] / "data" / "guard" / "labeled.jsonl"


def stratum(r: dict) -> tuple[str, str]:
    kind = r["categories"][0] if r["label"] == "unsafe" else ("safe-pii" if r["pii"] else "safe")
    return kind, r["role"]


FIRST_DRAW = 332  # the rows the split was first drawn over (later rows get draws of their own)


def test_the_split_is_the_documented_stratified_draw():
    rows = load_labeled(LABELED)[:FIRST_DRAW]
    assert {r["split"] for r in rows} == {"train", "heldout"}
    groups = defaultdict(list)
    for i, r in enumerate(rows):
        groups[stratum(r)].append(i)
    rng, held = random.Random(17), set()
    for key in sorted(groups):
        idx = groups[key][:]
        rng.shuffle(idx)
        held.update(idx[: round(0.4 * len(idx))])
    assert {i for i, r in enumerate(rows) if r["split"] == "heldout"} == held
    assert len({r["text"] for r in rows}) == len(rows)  # no text in both splits
    for code in [c for codes in GROUPS.values() for c in codes]:
        assert {r["split"] for r in rows if code in r["categories"]} == {"train", "heldout"}, code


def test_group_scores_count_recall_by_gold_group_and_precision_by_flagged_group():
    rows = [
        {"label": "unsafe", "categories": ["S1"]},
        {"label": "unsafe", "categories": ["S9"]},
        {"label": "unsafe", "categories": ["S2"]},
        {"label": "safe", "categories": []},
        {"label": "safe", "categories": []},
    ]
    preds = [Prediction(True, ("S1",)), Prediction(True, ("S2",)), Prediction(False), Prediction(True, ("S1",)), Prediction(False)]
    s = group_scores(rows, preds)
    v, c = s["violence & weapons"], s["crime & cyber"]
    assert (v.caught, v.total, v.right, v.flagged) == (2, 2, 1, 2)  # the S9 row was caught under S2
    assert (c.caught, c.total, c.right, c.flagged) == (0, 1, 1, 1)
    a = s["all unsafe"]
    assert (a.caught, a.total, a.right, a.flagged) == (2, 3, 2, 3)
    assert s["injection"].recall is None and s["injection"].precision is None
    assert group_of("S13") == "people & society" and group_of("guard-error") is None


def test_percentile_is_nearest_rank():
    ms = [float(i) for i in range(1, 101)]
    assert (percentile(ms, 0.5), percentile(ms, 0.99), percentile(ms, 1.0)) == (50.0, 99.0, 100.0)
    assert percentile([3.0], 0.99) == 3.0
