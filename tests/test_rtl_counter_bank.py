"""CounterBank (Python simulator): every increment counted whatever the pattern, settled
within its bound, clear, the read port; what it maps to on the UP5K; its parameter errors."""

import random

import pytest
from amaranth.sim import Simulator

from dnnhw.rtl.counter_bank import CounterBank

from yosys_cells import yosys_cells


def _simulate(bank, bench):
    sim = Simulator(bank)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def _pattern(rng, kind, most):
    """An increment: ``full`` always the most (the prescaler's bound), ``bursts`` runs of
    the most and of nothing, ``random`` anything."""
    if kind == "full":
        return most
    if kind == "bursts":
        return most if rng.random() < 0.8 else 0
    return rng.randrange(most + 1)


@pytest.mark.parametrize("kind", ["full", "bursts", "random"])
@pytest.mark.parametrize("maxima", [(1, 1), (3, 1, 8, 1, 2), tuple(range(1, 23))],
                         ids=["2", "5", "22"])
def test_counts_every_increment_and_settles_in_bound(kind, maxima):
    width = 20
    bank = CounterBank(max_increments=maxima, width=width)
    rng = random.Random(f"{kind}{maxima}")
    checked = []

    async def read_all(ctx):
        values = []
        for i in range(bank.count):
            assert ctx.get(bank.settled)
            ctx.set(bank.read_addr, i)
            await ctx.tick()
            values.append(ctx.get(bank.read_data))
        return values

    async def bench(ctx):
        expected = [0] * bank.count
        for phase in range(4):
            if phase == 2:                    # clear mid-way, then count again
                ctx.set(bank.clear, 1)
                await ctx.tick()
                ctx.set(bank.clear, 0)
                expected = [0] * bank.count
            for _ in range(rng.randrange(30, 200)):
                for i, most in enumerate(maxima):
                    inc = _pattern(rng, kind, most)
                    ctx.set(bank.increments[f"c{i}"], inc)
                    expected[i] += inc
                await ctx.tick()
            for i in range(bank.count):
                ctx.set(bank.increments[f"c{i}"], 0)
            for waited in range(bank.settle_cycles + 1):
                if ctx.get(bank.settled):
                    break
                await ctx.tick()
            assert ctx.get(bank.settled), f"not settled {bank.settle_cycles} cycles on"
            values = await read_all(ctx)
            assert values == [e % (1 << width) for e in expected]
            checked.append(phase)

    _simulate(bank, bench)
    assert checked == [0, 1, 2, 3]


def test_counts_wrap_modulo_width():
    bank = CounterBank(max_increments=(7, 7), width=4)

    async def bench(ctx):
        ctx.set(bank.increments.c0, 7)
        ctx.set(bank.increments.c1, 1)
        for _ in range(5):
            await ctx.tick()
        ctx.set(bank.increments.c0, 0)
        ctx.set(bank.increments.c1, 0)
        while not ctx.get(bank.settled):
            await ctx.tick()
        values = []
        for i in range(2):
            ctx.set(bank.read_addr, i)
            await ctx.tick()
            values.append(ctx.get(bank.read_data))
        assert values == [35 % 16, 5]

    _simulate(bank, bench)


def test_up5k_puts_the_counters_in_block_ram(tmp_path):
    # 22 counters of 48 bits: three EBRs, and far less logic than 1,056 flip-flops.
    cells = yosys_cells(tmp_path, CounterBank(max_increments=[4] * 22, width=48))
    assert cells.get("SB_RAM40_4K") == 3, cells
    assert sum(n for cell, n in cells.items() if cell.startswith("SB_DFF")) < 300, cells


@pytest.mark.parametrize("kwargs, message", [
    ({"max_increments": (1,), "width": 8},
     r"len\(max_increments\) must be in 2\.\.1024, got 1"),
    ({"max_increments": (1, 0), "width": 8}, r"max_increments\[1\] must be"),
    ({"max_increments": (1, 1 << 17), "width": 8}, r"max_increments\[1\] must be"),
    ({"max_increments": (1, 1), "width": 0}, "width must be"),
    ({"max_increments": (1, 1), "width": 65}, "width must be"),
])
def test_bad_parameters_name_the_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CounterBank(**kwargs)
