"""Amaranth-simulator unit tests of the sub-blocks: prefix count, collapser, expander.

The expected values come from plain Python on the same random vectors, not from the RTL.
"""

import random

import pytest
from amaranth.hdl import EnableInserter, Module, Signal
from amaranth.sim import Simulator

from dnnhw.rtl.prefix_sum import PrefixCount
from dnnhw.rtl.compactor import BubbleCollapser
from dnnhw.rtl.expander import BubbleExpander
from dnnhw.rtl._pipeline import delay_memory


def _vectors(lanes, count, seed):
    rng = random.Random(seed)
    special = [0, (1 << lanes) - 1, 1, 1 << (lanes - 1), 0x5555_5555_5555_5555 & ((1 << lanes) - 1)]
    return special + [rng.getrandbits(lanes) & rng.getrandbits(lanes) | rng.getrandbits(lanes) * (rng.random() < 0.3)
                      for _ in range(count)]


def _run_pipelined(dut, drive, read, vectors, latency):
    """Feed one vector per cycle, collect outputs ``latency`` cycles later."""
    results = []

    async def bench(ctx):
        if latency == 0:
            for vector in vectors:
                drive(ctx, vector)
                await ctx.delay(1e-6)
                results.append(read(ctx))
            return
        for step in range(len(vectors) + latency):
            if step < len(vectors):
                drive(ctx, vectors[step])
            await ctx.tick()
            if step >= latency - 1 and len(results) < len(vectors):
                results.append(read(ctx))

    sim = Simulator(dut)
    if latency:
        sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return results


@pytest.mark.parametrize("registered", [False, True])
@pytest.mark.parametrize("count", [1, 3, 4, 8, 13, 32])
def test_prefix_count(count, registered):
    dut = PrefixCount(count=count, registered=registered)
    vectors = _vectors(count, 40, seed=count)

    def drive(ctx, v):
        ctx.set(dut.bits, v)

    def read(ctx):
        return [ctx.get(dut.counts[j]) for j in range(count)], ctx.get(dut.total)

    got = _run_pipelined(dut, drive, read, vectors, dut.latency)
    for v, (counts, total) in zip(vectors, got):
        ones = [(v >> j) & 1 for j in range(count)]
        assert counts == [sum(ones[:j]) for j in range(count)], f"bits={v:#x}"
        assert total == sum(ones)


def _collapse_reference(values, keep):
    packed = [v for v, k in zip(values, keep) if k]
    return packed + [0] * (len(values) - len(packed))


@pytest.mark.parametrize("registered", [False, True])
@pytest.mark.parametrize("lanes,width", [(2, 4), (4, 8), (8, 16), (16, 5), (32, 32)])
def test_bubble_collapser(lanes, width, registered):
    dut = BubbleCollapser(lanes=lanes, width=width, registered=registered)
    rng = random.Random(lanes * 100 + width)
    vectors = []
    for keep in _vectors(lanes, 40, seed=width):
        values = [rng.getrandbits(width) for _ in range(lanes)]
        vectors.append((values, [(keep >> j) & 1 for j in range(lanes)]))

    def drive(ctx, vector):
        values, keep = vector
        dropped = 0
        for j in range(lanes):
            ctx.set(dut.elements[j], values[j])
            ctx.set(dut.shift[j], dropped)
            dropped += 1 - keep[j]
        ctx.set(dut.keep, sum(k << j for j, k in enumerate(keep)))

    def read(ctx):
        return [ctx.get(dut.packed[j]) for j in range(lanes)]

    got = _run_pipelined(dut, drive, read, vectors, dut.latency)
    for (values, keep), packed in zip(vectors, got):
        assert packed == _collapse_reference(values, keep), f"keep={keep}"


@pytest.mark.parametrize("registered", [False, True])
@pytest.mark.parametrize("lanes,width", [(2, 3), (4, 8), (8, 16), (32, 32)])
def test_bubble_expander(lanes, width, registered):
    dut = BubbleExpander(lanes=lanes, width=width, registered=registered)
    rng = random.Random(lanes + width)
    vectors = [([rng.getrandbits(width) for _ in range(lanes)], mask)
               for mask in _vectors(lanes, 40, seed=lanes)]

    def drive(ctx, vector):
        packed, mask = vector
        for j in range(lanes):
            ctx.set(dut.packed[j], packed[j])
        ctx.set(dut.mask, mask)

    def read(ctx):
        return [ctx.get(dut.elements[j]) for j in range(lanes)]

    got = _run_pipelined(dut, drive, read, vectors, dut.latency)
    for (packed, mask), elements in zip(vectors, got):
        source = iter(packed)
        expected = [next(source) if (mask >> j) & 1 else 0 for j in range(lanes)]
        assert elements == expected, f"mask={mask:#x}"


@pytest.mark.parametrize("cycles", [1, 2, 3, 6, 10])
def test_delay_memory_holds_its_words_through_stalls(cycles):
    """Under a random enable, the output after an enabled cycle's edge is the input taken
    ``cycles - 1`` enabled cycles before that one (as a chain of ``cycles`` registers
    gives), and a stalled cycle changes nothing."""
    inner = Module()
    value = Signal(12)
    out = delay_memory(inner, value, cycles, "delay")
    enable = Signal()
    top = Module()
    top.submodules.inner = EnableInserter(enable)(inner)
    rng = random.Random(cycles)
    plan = [(rng.random() < 0.6, rng.getrandbits(12)) for _ in range(300)]
    taken, seen = [], []

    async def bench(ctx):
        for on, word in plan:
            ctx.set(enable, on)
            ctx.set(value, word)
            before = ctx.get(out)
            await ctx.tick()
            if on:
                taken.append(word)
                if len(taken) >= cycles:
                    seen.append((ctx.get(out), taken[-cycles]))
            else:
                assert ctx.get(out) == before, "a stalled cycle moved the output"

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(seen) > 100
    assert all(got == want for got, want in seen), seen


@pytest.mark.parametrize("cls,kwargs,message", [
    (PrefixCount, {"count": 0}, "count must be in 1..1024, got 0"),
    (PrefixCount, {"count": 4, "registered": 1}, "registered must be a bool"),
    (BubbleCollapser, {"lanes": 1, "width": 8}, "lanes must be in 2..1024, got 1"),
    (BubbleCollapser, {"lanes": 4, "width": 0}, "width must be in 1..64, got 0"),
    (BubbleExpander, {"lanes": 4, "width": 65}, "width must be in 1..64, got 65"),
])
def test_block_parameter_errors(cls, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        cls(**kwargs)
