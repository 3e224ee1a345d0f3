"""The speed cache behind synth's time estimate: a measure taken under load is taken again once
the machine is quiet, so one busy moment does not make every later estimate pessimistic."""

from dataclasses import asdict

from protege.models.speed import Speed, usable

QUIET = Speed(100.0, 10.0, 30.0, 4, load_1m=0.3)
BUSY = Speed(40.0, 4.0, 9.0, 4, load_1m=4.5)


def test_a_quiet_measure_is_kept_whatever_the_load_now():
    assert usable(asdict(QUIET), load_now=0.2, cores=2) == QUIET
    assert usable(asdict(QUIET), load_now=5.0, cores=2) == QUIET


def test_a_busy_measure_is_kept_while_busy_and_taken_again_when_quiet():
    assert usable(asdict(BUSY), load_now=4.0, cores=2) == BUSY
    assert usable(asdict(BUSY), load_now=0.5, cores=2) is None


def test_a_measure_without_its_load_is_taken_again_when_quiet():
    old = {k: v for k, v in asdict(QUIET).items() if k != "load_1m"}  # written before the load was noted
    assert usable(old, load_now=0.4, cores=2) is None
    assert usable(old, load_now=3.0, cores=2) == Speed(**old)


def test_damaged_entries_are_measured_again():
    assert usable({"prompt_tps": 1.0}, load_now=0.1, cores=2) is None
    assert usable("fast", load_now=0.1, cores=2) is None
