"""Amaranth-simulator tests of the Diffy pieces: the term encoder against the golden
encodings, and the tile's parameter checks (every message names the parameter).

The tile itself is checked end to end in cocotb (tests/test_sim_diffy.py).
"""

import random

import pytest
from amaranth.sim import Simulator

from dnnhw.golden import diffy_published as golden
from dnnhw.rtl.diffy_tile import DiffyTile
from dnnhw.rtl.terms import TermEncoder


def _encode_all(dut, values, ready_pattern):
    """Feed ``values`` through a TermEncoder with the sink's ready following
    ``ready_pattern`` (cycled); returns the terms of each value and the cycles taken."""
    out, current = [], []
    cycles = [0]

    async def bench(ctx):
        k, t = 0, 0
        ctx.set(dut.i.valid, 1)
        while len(out) < len(values):
            if k < len(values):
                ctx.set(dut.i.payload, values[k])
            else:
                ctx.set(dut.i.valid, 0)
            ready = ready_pattern[t % len(ready_pattern)]
            ctx.set(dut.o.ready, ready)
            await ctx.delay(1e-9)
            took = k < len(values) and ctx.get(dut.i.ready)
            if ready and ctx.get(dut.o.valid):
                beat = ctx.get(dut.o.payload)
                if not beat.zero:
                    current.append((int(beat.offset), -1 if beat.negative else 1))
                if beat.last:
                    out.append(current[:])
                    current.clear()
            await ctx.tick()
            k += bool(took)
            t += 1
            assert t < 40 * len(values) + 100, "the encoder stopped"
        cycles[0] = t

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out, cycles[0]


@pytest.mark.parametrize("encoding", ["plain", "csd", "best"])
@pytest.mark.parametrize("width,delta", [(8, False), (16, False), (8, True), (16, True)])
def test_term_encoder_matches_golden(encoding, width, delta):
    lo, hi = golden.delta_range(width) if delta else golden.value_range(width)
    rng = random.Random(width * 7 + delta)
    values = [0, 1, -1, lo, hi, lo + 1, hi - 1, 0b0111_0111, -0b0111_0111]
    values += [rng.randint(lo, hi) for _ in range(300)]
    dut = TermEncoder(width=width, encoding=encoding, delta=delta)
    got, cycles = _encode_all(dut, values, [1])
    want = [golden.encode_terms(v, width, encoding, delta=delta) for v in values]
    assert got == want
    # One term per cycle with an always-ready sink (a zero value takes one cycle).
    assert cycles == sum(max(1, len(t)) for t in want) + 1


def test_term_encoder_under_backpressure():
    rng = random.Random(5)
    values = [rng.randint(-2**15, 2**15 - 1) for _ in range(200)]
    dut = TermEncoder(width=16)
    got, _ = _encode_all(dut, values, [1, 0, 0, 1, 1, 0, 1])
    assert got == [golden.encode_terms(v, 16, "best") for v in values]


@pytest.mark.parametrize("kwargs,error,message", [
    ({"lanes": 0}, ValueError, "lanes must be in 1..16, got 0"),
    ({"lanes": 17}, ValueError, "lanes must be in 1..16, got 17"),
    ({"filters": 0}, ValueError, "filters must be in 1..16, got 0"),
    ({"windows": 17}, ValueError, "windows must be in 1..16, got 17"),
    ({"width": 7}, ValueError, "width must be in 8..16, got 7"),
    ({"width": 17}, ValueError, "width must be in 8..16, got 17"),
    ({"shifter_bits": 5}, ValueError, "shifter_bits must be in 0..4, got 5"),
    ({"mode": "dadiannao"}, ValueError, "mode must be one of diffy, pragmatic, stripes, bitparallel"),
    ({"encoding": "booth"}, ValueError, "encoding must be one of best, csd, plain"),
    ({"max_products": 0}, ValueError, "max_products must be in 1..1048576, got 0"),
    ({"lanes": 4.0}, TypeError, "lanes must be an integer, got 4.0"),
    ({"filters": True}, TypeError, "filters must be an integer, got True"),
])
def test_tile_rejects_bad_parameters(kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        DiffyTile(**kwargs)


@pytest.mark.parametrize("kwargs,error,message", [
    ({"width": 1}, ValueError, "width must be in 2..32, got 1"),
    ({"encoding": "naf"}, ValueError, "encoding must be one of best, csd, plain"),
    ({"delta": 1}, TypeError, "delta must be a bool, got 1"),
])
def test_term_encoder_rejects_bad_parameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        TermEncoder(**kwargs)


def test_tile_accumulator_covers_the_largest_layer():
    # |w * d| < 2**(2*width - 1); max_products of them need 2*width - 1 + log2 bits + sign.
    for width, products in ((16, 4608), (8, 1), (16, 1 << 20), (12, 27)):
        tile = DiffyTile(width=width, max_products=products)
        worst = products * ((1 << width) - 1) * (1 << (width - 1))
        assert worst < 1 << (tile.acc_width - 1)
    assert DiffyTile(mode="diffy").term_bits == 17
    assert DiffyTile(mode="pragmatic").term_bits == 16


def test_tile_ports_follow_the_mode():
    assert hasattr(DiffyTile(mode="stripes"), "msb")
    assert not hasattr(DiffyTile(mode="diffy"), "msb")
    tile = DiffyTile(lanes=3, filters=2, windows=5, width=10, max_products=100)
    assert tile.activation_layout.size == 5 * 3 * 10 + 3 * 10 + 5 + 1
    assert tile.output_layout.size == 2 * 5 * tile.acc_width
