"""Stall patterns (dnnhw.sim.stalls): each generator against its definition, written out
here independently; the random pattern against the draws the benches' `idle` and
`backpressure` knobs always made (so their figures do not change); bad specs."""

import itertools
import random

import pytest

from dnnhw.sim.stalls import PATTERNS, StallPattern, stall_pattern


def _take(pattern, n, seed=0):
    return list(itertools.islice(pattern.iterate(random.Random(seed)), n))


def test_full_never_stalls_and_draws_nothing():
    rng = random.Random(3)
    state = rng.getstate()
    gen = stall_pattern("full").iterate(rng)
    assert not any(next(gen) for _ in range(1000))
    assert rng.getstate() == state
    # A probability of 0 is the full pattern (the old `idle=0` drew nothing either).
    assert stall_pattern(0) == stall_pattern(None) == StallPattern("full")
    assert stall_pattern(0.0).rate == 1.0


def test_random_is_the_legacy_draw():
    # StreamSource / StreamSink used to stall when `rng.random() < p`, one draw per
    # decision, from the end's own random.Random(seed).
    for p, seed in ((0.3, 7), (0.85, 11)):
        legacy = random.Random(seed)
        expect = [legacy.random() < p for _ in range(5000)]
        assert _take(stall_pattern(p), 5000, seed) == expect
        assert _take(stall_pattern({"name": "random", "probability": p}), 5000, seed) == expect
    assert stall_pattern(0.3).stall_fraction == 0.3
    assert stall_pattern(0.3).rate == pytest.approx(0.7)


def test_random_shares_the_generator_in_order():
    # The source scrambles idle payloads from the same generator between decisions.
    rng = random.Random(5)
    gen = stall_pattern(0.5).iterate(rng)
    mixed = []
    for _ in range(200):
        stall = next(gen)
        mixed.append((stall, rng.getrandbits(16) if stall else None))
    legacy = random.Random(5)
    expect = []
    for _ in range(200):
        stall = legacy.random() < 0.5
        expect.append((stall, legacy.getrandbits(16) if stall else None))
    assert mixed == expect


def test_periodic_and_every():
    assert _take(StallPattern("periodic", go=2, stall=3), 10) == [False] * 2 + [True] * 3 \
        + [False] * 2 + [True] * 3
    assert _take(StallPattern("every", n=4), 8) == [True, True, True, False] * 2
    assert _take(StallPattern("every", n=1), 5) == [False] * 5
    assert StallPattern("every", n=4).rate == 0.25
    assert StallPattern("periodic", go=2, stall=3).stall_fraction == 0.6
    assert StallPattern("periodic", go=3, stall=0).rate == 1.0


def test_bursts_runs_and_rate():
    seq = _take(StallPattern("bursts", go=6, stall=3), 200_000, seed=2)
    runs = [(k, len(list(g))) for k, g in itertools.groupby(seq)]
    go_runs = [n for stall, n in runs[:-1] if not stall]
    stall_runs = [n for stall, n in runs[:-1] if stall]
    assert runs[0][0] is False                       # starts with a go run
    assert min(go_runs) == 1 and max(go_runs) == 11  # uniform in 1 .. 2*go - 1
    assert min(stall_runs) == 1 and max(stall_runs) == 5
    assert sum(go_runs) / len(go_runs) == pytest.approx(6, rel=0.03)
    assert sum(stall_runs) / len(stall_runs) == pytest.approx(3, rel=0.03)
    assert seq.count(False) / len(seq) == pytest.approx(6 / 9, rel=0.02)
    assert StallPattern("bursts", go=6, stall=3).rate == pytest.approx(6 / 9)


def test_specs_round_trip():
    for name, args in PATTERNS.items():
        p = StallPattern(name, **args)
        assert stall_pattern(p.to_spec()) == p
        assert stall_pattern(name) == p
    assert str(StallPattern("bursts", go=4, stall=2)) == "bursts(go=4, stall=2)"
    assert str(stall_pattern("full")) == "full"


@pytest.mark.parametrize("spec,message", [
    ("sometimes", r"unknown stall pattern 'sometimes'; known: full, random, bursts"),
    ({"name": "random", "probability": 1.0}, r"probability must be a number in \[0, 1\)"),
    ({"name": "random", "probability": -0.1}, r"probability must be a number in \[0, 1\)"),
    ({"name": "bursts", "go": 0}, r"'bursts': go must be an integer >= 1, got 0"),
    ({"name": "periodic", "stall": -1}, r"'periodic': stall must be an integer >= 0"),
    ({"name": "every", "n": 2.5}, r"'every': n must be an integer >= 1, got 2.5"),
    ({"name": "every", "m": 2}, r"'every' takes n; got m"),
    ({"probability": 0.2}, r"needs a 'name'"),
])
def test_bad_specs_name_the_argument(spec, message):
    with pytest.raises(ValueError, match=message):
        stall_pattern(spec)
    with pytest.raises(TypeError, match="a stall pattern is"):
        stall_pattern([0.3])
