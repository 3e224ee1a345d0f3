"""Checkpoints hold tensors and JSON only: they round-trip exactly and never run code on load."""

from __future__ import annotations

import pickle
import random

import pytest
import torch

from protege.errors import ProtegeError
from protege.train.loop import TrainResult, _load, _save


def setup(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Dropout(0.2), torch.nn.Linear(3, 2))
    model[2].weight.requires_grad_(False)  # a frozen weight stays out of the checkpoint
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (step + 1))
    return model, opt, sched


def step(model, opt, sched) -> None:
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    sched.step()
    opt.zero_grad()


def test_a_checkpoint_round_trips_weights_optimizer_scheduler_and_rng(tmp_path):
    model, opt, sched = setup()
    for _ in range(3):
        step(model, opt, sched)
    result = TrainResult(steps=10, history=[{"step": 3, "loss": 0.5}], tokens=42, seconds=1.5)
    path = tmp_path / "state.pt"
    _save(path, model, opt, sched, 3, result)
    torch_rng, py_rng = torch.get_rng_state(), random.getstate()
    expected = [torch.randn(3), random.random()]

    again, opt2, sched2 = setup(seed=1)
    loaded = TrainResult(steps=10)
    assert _load(path, again, opt2, sched2, loaded) == 3
    assert (loaded.history, loaded.tokens, loaded.seconds) == (result.history, 42, 1.5)
    for a, b in zip(model.parameters(), again.parameters()):
        if a.requires_grad:
            assert torch.equal(a, b)
    assert sched2.state_dict() == sched.state_dict() and sched2.get_last_lr() == sched.get_last_lr()
    o1, o2 = opt.state_dict(), opt2.state_dict()
    assert o1["param_groups"] == o2["param_groups"]
    for k in o1["state"]:
        for name, value in o1["state"][k].items():
            assert torch.equal(value, o2["state"][k][name])
    assert torch.equal(torch.get_rng_state(), torch_rng) and random.getstate() == py_rng
    assert torch.equal(torch.randn(3), expected[0]) and random.random() == expected[1]
    again[2].weight.data.copy_(model[2].weight)  # the frozen base is the same model in a real resume
    rng = torch.get_rng_state()
    step(model, opt, sched)  # from the same state, both continue identically
    torch.set_rng_state(rng)
    step(again, opt2, sched2)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))  # what a booby-trapped pickle would do on load


def test_a_pickled_checkpoint_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "state.pt"
    torch.save({"step": 1, "weights": {}, "x": _Payload(marker)}, path)
    model, opt, sched = setup()
    with pytest.raises(ProtegeError, match="not a readable protege checkpoint"):
        _load(path, model, opt, sched, TrainResult(steps=1))
    assert not marker.exists()
    path.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ProtegeError, match="--resume"):
        _load(path, model, opt, sched, TrainResult(steps=1))
    assert not marker.exists()


def test_a_truncated_checkpoint_is_one_clear_error(tmp_path):
    model, opt, sched = setup()
    step(model, opt, sched)
    path = tmp_path / "state.pt"
    _save(path, model, opt, sched, 1, TrainResult(steps=2))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ProtegeError, match=r"state.pt: not a readable protege checkpoint"):
        _load(path, model, opt, sched, TrainResult(steps=2))
