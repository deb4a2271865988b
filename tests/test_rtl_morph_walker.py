"""Amaranth-simulator tests of the loop walker: every iteration of random nests, in order,
with its values, indices, remainders and first/last flags, under random backpressure;
and bad parameters."""

import itertools
import random

import pytest
from amaranth.sim import Simulator

from dnnhw.rtl.morph_walker import LoopWalker


def _expected(counts, moduli, quotient, strides, bases, value_width):
    """Every iteration's (values, index, remainder, first, last), from the definition:
    enumerate the index tuples and evaluate the affine sums."""
    mask = (1 << value_width) - 1
    out = []
    for idx in itertools.product(*(range(c) for c in counts)):
        values = []
        for s, base in enumerate(bases):
            total = base
            for l, i in enumerate(idx):
                step = i // moduli[l] if quotient[l] >> s & 1 else i
                total += strides[l][s] * step
            values.append(total & mask)
        first = sum(1 << l for l, i in enumerate(idx) if i == 0)
        last = sum(1 << l for l, i in enumerate(idx) if i == counts[l] - 1)
        out.append((values, list(idx), [i % m for i, m in zip(idx, moduli)], first, last))
    return out


def _run(dut, counts, moduli, quotient, strides, bases, *, ready_probability, seed):
    rng = random.Random(seed)
    mask = (1 << dut.value_width) - 1
    seen = []

    async def bench(ctx):
        for l in range(dut.levels):
            ctx.set(dut.count[l], counts[l])
            ctx.set(dut.modulus[l], moduli[l])
            ctx.set(dut.quotient[l], quotient[l])
            for s in range(dut.streams):
                ctx.set(dut.stride[l][s], strides[l][s] & mask)
        for s in range(dut.streams):
            ctx.set(dut.base[s], bases[s] & mask)
        # Idle before the start: nothing may come out.
        for _ in range(rng.randint(0, 3)):
            assert not ctx.get(dut.out.valid)
            await ctx.tick()
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        cycles = 0
        while ctx.get(dut.running):
            ready = rng.random() < ready_probability
            ctx.set(dut.out.ready, ready)
            if ready:
                p = ctx.get(dut.out.payload)
                seen.append(([p.value[s] for s in range(dut.streams)],
                             [p.index[l] for l in range(dut.levels)],
                             [p.remainder[l] for l in range(dut.levels)],
                             p.first, p.last))
            await ctx.tick()
            cycles += 1
            assert cycles < 20000
        ctx.set(dut.out.ready, 0)
        for _ in range(3):
            assert not ctx.get(dut.out.valid)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen


def _random_nest(rng, dut):
    counts = [rng.choice([1, 1, 2, 3, 4, 5]) for _ in range(dut.levels)]
    moduli = [rng.choice([1, 2, 3, 4]) for _ in range(dut.levels)]
    quotient = [rng.randrange(1 << dut.streams) for _ in range(dut.levels)]
    strides = [[rng.randint(-40, 40) for _ in range(dut.streams)] for _ in range(dut.levels)]
    bases = [rng.randint(0, 1000) for _ in range(dut.streams)]
    return counts, moduli, quotient, strides, bases


@pytest.mark.parametrize("seed", range(10))
def test_random_nests_under_backpressure(seed):
    rng = random.Random(seed)
    dut = LoopWalker(levels=rng.randint(1, 6), streams=rng.randint(1, 4), count_width=4,
                     value_width=rng.choice([10, 16]))
    nest = _random_nest(rng, dut)
    seen = _run(dut, *nest, ready_probability=rng.choice([1.0, 0.6]), seed=seed)
    assert seen == _expected(*nest, dut.value_width)


def test_restart_after_a_walk():
    """A second start walks again from iteration zero with the new configuration."""
    rng = random.Random(99)
    dut = LoopWalker(levels=3, streams=2, count_width=4, value_width=12)
    for trial in range(3):
        nest = _random_nest(rng, dut)
        assert _run(dut, *nest, ready_probability=0.8, seed=trial) == _expected(*nest, 12)


def test_single_iteration():
    dut = LoopWalker(levels=2, streams=1, count_width=3, value_width=8)
    seen = _run(dut, [1, 1], [1, 1], [0, 0], [[5], [7]], [42], ready_probability=1.0,
                seed=0)
    assert seen == [([42], [0, 0], [0, 0], 3, 3)]


def test_partial_sum_layout_by_quotient():
    """The L1 partial-sum walk of docs/morph-array.md: k in 0..4 with Kp = 2, w in 0..2
    with Wp = 2; entry = (k div 2) * 2 + w div 2, PE = (k mod 2, w mod 2)."""
    dut = LoopWalker(levels=2, streams=1, count_width=4, value_width=8)
    seen = _run(dut, [5, 3], [2, 2], [1, 1], [[2], [1]], [0], ready_probability=1.0,
                seed=0)
    got = [(v[0], rem) for v, _, rem, _, _ in seen]
    want = [((k // 2) * 2 + w // 2, [k % 2, w % 2]) for k in range(5) for w in range(3)]
    assert got == want


@pytest.mark.parametrize("name, value, error", [
    ("levels", 0, ValueError), ("levels", 9, ValueError), ("levels", 2.0, TypeError),
    ("streams", 0, ValueError), ("streams", 17, ValueError),
    ("count_width", 0, ValueError), ("count_width", 17, ValueError),
    ("value_width", 0, ValueError), ("value_width", 33, ValueError),
    ("value_width", "8", TypeError),
])
def test_bad_parameters(name, value, error):
    kwargs = {"levels": 2, "streams": 2, "count_width": 4, "value_width": 8, name: value}
    with pytest.raises(error, match=name):
        LoopWalker(**kwargs)
