"""Amaranth-simulator tests of Morph's tile loops: every step of the nest in the run-time
order, the changed dimensions at each step, the last step, and bad parameters."""

import itertools
import random

import pytest
from amaranth.sim import Simulator

from dnnhw.rtl.morph_loops import DIMS, TileLoops


def _expected(order, trips):
    """The steps (index per dimension, in DIMS order) of the nest, outermost first, and
    the dimensions changed at each: written from the definition, not the RTL's carry."""
    n = len(order)
    steps = []
    for combo in itertools.product(*(range(trips[d]) for d in order)):
        index = [0] * n
        for d, value in zip(order, combo):
            index[d] = value
        steps.append(index)
    changed = [(1 << n) - 1]
    for before, after in zip(steps, steps[1:]):
        changed.append(sum(1 << d for d in range(n) if before[d] != after[d]))
    return steps, changed


def _run(order, trips, *, gaps, seed):
    n = len(order)
    dut = TileLoops(index_width=4, dimensions=n)
    rng = random.Random(seed)
    seen = []

    async def bench(ctx):
        for p, d in enumerate(order):
            ctx.set(dut.order[p], d)
        for d in range(n):
            ctx.set(dut.trips[d], trips[d])
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        while ctx.get(dut.running):
            index = [ctx.get(dut.index[d]) for d in range(n)]
            seen.append((index, ctx.get(dut.changed), ctx.get(dut.last)))
            # Hold the step a random number of cycles: nothing may move without advance.
            for _ in range(rng.randint(0, 2) if gaps else 0):
                await ctx.tick()
                assert [ctx.get(dut.index[d]) for d in range(n)] == index
            ctx.set(dut.advance, 1)
            await ctx.tick()
            ctx.set(dut.advance, 0)
            assert len(seen) <= 5000

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen


@pytest.mark.parametrize("seed", range(12))
def test_steps_follow_the_order(seed):
    rng = random.Random(seed)
    order = list(range(len(DIMS)))
    rng.shuffle(order)
    trips = [rng.choice([1, 1, 2, 3, 4]) for _ in DIMS]
    steps, changed = _expected(order, trips)
    seen = _run(order, trips, gaps=seed % 2 == 1, seed=seed)
    assert [s[0] for s in seen] == steps
    assert [s[1] for s in seen] == changed
    assert [s[2] for s in seen] == [0] * (len(steps) - 1) + [1]


def test_one_step_nest():
    seen = _run([0, 1, 2, 3, 4], [1] * 5, gaps=False, seed=0)
    assert seen == [([0] * 5, 0b11111, 1)]


@pytest.mark.parametrize("width", [0, 17, "8"])
def test_bad_index_width_is_named(width):
    with pytest.raises((ValueError, TypeError), match="index_width must be"):
        TileLoops(index_width=width)


@pytest.mark.parametrize("seed", range(4))
def test_six_dimensions_with_the_images_outermost(seed):
    """The array's L2 level: the images as dimension 5, always the outermost loop."""
    rng = random.Random(100 + seed)
    inner = list(range(5))
    rng.shuffle(inner)
    order = [5] + inner
    trips = [rng.choice([1, 2, 3]) for _ in range(6)]
    seen = _run(order, trips, gaps=True, seed=seed)
    steps, changed = _expected(order, trips)
    assert [s[0] for s in seen] == steps
    assert [s[1] for s in seen] == changed


def test_bad_dimensions_are_named():
    with pytest.raises(ValueError, match=r"dimensions must be in 1\.\.8"):
        TileLoops(dimensions=9)
