"""Amaranth-simulator tests of the loop walker: every iteration of random nests, in order,
with its values, indices, remainders and first/last flags, under random backpressure;
sparse walkers (streams active at some levels only, narrow values, counts and moduli)
against the same definition; and bad parameters."""

import itertools
import random

import pytest
from amaranth.sim import Simulator

from dnnhw.rtl.morph_walker import LoopWalker, fits_signed


def _expected(counts, moduli, quotient, strides, bases, value_width, *, active=None,
              value_widths=None, by_quotient=None):
    """Every iteration's (values, index, remainder, first, last), from the definition:
    enumerate the index tuples and evaluate the affine sums (over each stream's active
    levels only, modulo its own width)."""
    out = []
    for idx in itertools.product(*(range(c) for c in counts)):
        values = []
        for s, base in enumerate(bases):
            width = value_width if value_widths is None else value_widths[s]
            total = base
            for l, i in enumerate(idx):
                if active is not None and l not in active[s]:
                    continue
                divided = quotient[l] >> s & 1 and (by_quotient is None
                                                     or l in by_quotient[s])
                step = i // moduli[l] if divided else i
                total += strides[l][s] * step
            values.append(total & ((1 << width) - 1))
        first = sum(1 << l for l, i in enumerate(idx) if i == 0)
        last = sum(1 << l for l, i in enumerate(idx) if i == counts[l] - 1)
        out.append((values, list(idx), [i % m for i, m in zip(idx, moduli)], first, last))
    return out


def _run(dut, counts, moduli, quotient, strides, bases, *, ready_probability, seed,
         count_junk=None, modulus_junk=None):
    """Walk the nest on ``dut``; ``count_junk`` / ``modulus_junk`` (per level) are ORed
    into the ports' bits above the level's own width (which the walker must ignore)."""
    rng = random.Random(seed)
    mask = (1 << dut.value_width) - 1
    seen = []

    async def bench(ctx):
        for l in range(dut.levels):
            ctx.set(dut.count[l], counts[l] | (count_junk[l] if count_junk else 0))
            ctx.set(dut.modulus[l], moduli[l] | (modulus_junk[l] if modulus_junk else 0))
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


def _sparse_walker(rng):
    """A random sparse walker: each stream active at a random subset of the levels (some
    at none), with its own width; narrow counts, some levels without a modulus."""
    levels, streams = rng.randint(1, 7), rng.randint(1, 5)
    value_width = rng.choice([12, 16, 32])
    active = [sorted(rng.sample(range(levels), rng.randint(0, levels)))
              for _ in range(streams)]
    value_widths = [rng.randint(1, value_width) for _ in range(streams)]
    count_widths = [rng.randint(1, 4) for _ in range(levels)]
    modulus_widths = [rng.choice([0, 2, 3, 4]) for _ in range(levels)]
    by_quotient = [sorted(rng.sample(range(levels), rng.randint(0, levels)))
                   for _ in range(streams)]
    dut = LoopWalker(levels=levels, streams=streams, count_width=4, value_width=value_width,
                     active=active, value_widths=value_widths, count_widths=count_widths,
                     modulus_widths=modulus_widths, by_quotient=by_quotient)
    return dut


@pytest.mark.parametrize("seed", range(24))
def test_sparse_walkers_against_the_definition(seed):
    """Streams active at some levels only, each of its own width: strides at the inactive
    levels (random junk here) must not matter; neither do the count and modulus bits
    above a level's widths, nor quotient bits outside a stream's by_quotient levels; a
    level without a modulus acts as modulus 1."""
    rng = random.Random(1000 + seed)
    dut = _sparse_walker(rng)
    counts = [rng.randint(1, min(5, (1 << w) - 1)) for w in dut.count_widths]
    moduli = [rng.randint(1, min(4, (1 << w) - 1)) if w else 1 for w in dut.modulus_widths]
    quotient = [rng.randrange(1 << dut.streams) for _ in range(dut.levels)]
    big = 1 << (dut.value_width - 1)
    strides = [[rng.randint(-40, 40) if rng.random() < 0.7 else rng.randint(-big, big - 1)
                for _ in range(dut.streams)] for _ in range(dut.levels)]
    bases = [rng.randint(0, (1 << dut.value_width) - 1) for _ in range(dut.streams)]
    count_junk = [rng.randrange(1 << 4) >> w << w for w in dut.count_widths]
    modulus_junk = [rng.randrange(1 << 4) >> w << w for w in dut.modulus_widths]
    ports_moduli = [m if w else rng.randint(0, 15) for m, w in zip(moduli, dut.modulus_widths)]
    seen = _run(dut, counts, ports_moduli, quotient, strides, bases,
                ready_probability=rng.choice([1.0, 0.5]), seed=seed, count_junk=count_junk,
                modulus_junk=modulus_junk)
    want = _expected(counts, moduli, quotient, strides, bases, dut.value_width,
                     active=dut.active, value_widths=dut.value_widths,
                     by_quotient=dut.by_quotient)
    assert seen == want


def test_sparse_walker_restarts_and_holds_outer_values():
    """A stream active at two levels far apart, like a tap's frame coordinate in a PE
    block's eight levels kb, f, hb, wb, c, t, r, s (stepping with f and t only), and one
    active nowhere (its base throughout); walked twice, the strides of the other levels
    junk."""
    dut = LoopWalker(levels=8, streams=2, count_width=3, value_width=8,
                     active=[(1, 5), ()], value_widths=[6, 3])
    counts = [2, 3, 1, 2, 2, 2, 1, 2]
    strides = [[99, 7] for _ in range(8)]
    strides[1][0], strides[5][0] = 3, 1
    for trial in range(2):
        bases = [5 + trial, 6]
        seen = _run(dut, counts, [1] * 8, [0] * 8, strides, bases, ready_probability=0.7,
                    seed=trial)
        got = [values for values, *_ in seen]
        want = [[(bases[0] + 3 * f + t) % 64, 6] for kb in range(2) for f in range(3)
                for wb in range(2) for c in range(2) for t in range(2) for s in range(2)]
        assert got == want


@pytest.mark.parametrize("kwargs, match", [
    ({"active": [(0,), (1,)]}, "active must have 3 entries"),
    ({"active": [(0,), (2,), ()]}, "active\\[1\\]"),
    ({"active": [(0,), (-1,), ()]}, "active\\[1\\]"),
    ({"value_widths": [8, 8]}, "value_widths must have 3 entries"),
    ({"value_widths": [8, 9, 8]}, "value_widths\\[1\\]"),
    ({"value_widths": [8, 0, 8]}, "value_widths\\[1\\]"),
    ({"count_widths": [4, 5]}, "count_widths\\[1\\]"),
    ({"count_widths": [4]}, "count_widths must have 2 entries"),
    ({"modulus_widths": [0, 5]}, "modulus_widths\\[1\\]"),
    ({"modulus_widths": [-1, 0]}, "modulus_widths\\[0\\]"),
    ({"by_quotient": [(0,), ()]}, "by_quotient must have 3 entries"),
    ({"by_quotient": [(0,), (), (5,)]}, "by_quotient\\[2\\]"),
])
def test_bad_sparse_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LoopWalker(levels=2, streams=3, count_width=4, value_width=8, **kwargs)


def test_fits_signed_every_value():
    """fits_signed(value, bits) of every 9-bit value, for every bits 1..11."""
    from amaranth.hdl import Module, Signal
    m = Module()
    value = Signal(9)
    flags = {bits: Signal(name=f"fits{bits}") for bits in range(1, 12)}
    for bits, flag in flags.items():
        m.d.comb += flag.eq(fits_signed(value, bits))

    async def bench(ctx):
        for raw in range(1 << 9):
            ctx.set(value, raw)
            number = raw - (1 << 9) if raw >> 8 else raw
            for bits, flag in flags.items():
                assert ctx.get(flag) == (-(1 << (bits - 1)) <= number < 1 << (bits - 1))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


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
