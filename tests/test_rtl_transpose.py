"""TransposeBuffer (Python simulator): every tile out transposed, in order, whatever the
stalls on either side; one sample a cycle with tiles back to back; the latency property;
the stream rules on the output; the parameter errors."""

import random

import pytest
from amaranth.hdl import Value, signed
from amaranth.lib import data
from amaranth.sim import Simulator

from dnnhw.rtl.transpose import TransposeBuffer


def _transposed(words, rows, columns):
    """The contract's permutation, tile by tile: output ``b * rows + a`` is input
    ``a * columns + b``."""
    size = rows * columns
    return [words[t * size + a * columns + b]
            for t in range(len(words) // size) for b in range(columns) for a in range(rows)]


class Run:
    """What :func:`_run` saw: ``out`` (payloads, in order), ``in_cycles`` and
    ``out_cycles`` (the cycle of each transfer), ``ready`` (``input.ready`` per cycle)."""


def _run(dut, words, *, offer=None, accept=None, quiet=8, flip_checks=False):
    """Stream ``words`` (payloads as ints) through ``dut`` until all are out and the output
    has been quiet ``quiet`` cycles more.

    ``offer(cycle)``: whether the source raises ``valid`` (asked only while it holds no
    word; a held word stays valid until taken); ``accept(cycle)``: whether the sink is
    ready. Every cycle checks that a word shown and not taken is shown again. With
    ``flip_checks`` it also checks that ``output.valid``, ``output.payload`` and
    ``input.ready`` do not change when this cycle's ``input.valid`` or ``output.ready``
    flips (they are registers)."""
    offer = offer or (lambda cycle: True)
    accept = accept or (lambda cycle: True)
    in_payload, out_payload = Value.cast(dut.input.payload), Value.cast(dut.output.payload)
    run = Run()
    run.out, run.in_cycles, run.out_cycles, run.ready = [], [], [], []
    limit = 50 * len(words) + 200

    async def bench(ctx):
        sent, holding, silent, cycle, held = 0, False, 0, 0, None
        while sent < len(words) or len(run.out) < len(words) or silent < quiet:
            if sent < len(words) and not holding and offer(cycle):
                holding = True
                ctx.set(in_payload, words[sent])
            ctx.set(dut.input.valid, holding)
            ready = accept(cycle)
            ctx.set(dut.output.ready, ready)
            now = (ctx.get(dut.output.valid), ctx.get(out_payload), ctx.get(dut.input.ready))
            if flip_checks:
                for port, value in ((dut.output.ready, ready), (dut.input.valid, holding)):
                    ctx.set(port, not value)
                    assert (ctx.get(dut.output.valid), ctx.get(out_payload),
                            ctx.get(dut.input.ready)) == now, f"cycle {cycle}: {port} leaks"
                    ctx.set(port, value)
            out_valid, payload, in_ready = now
            run.ready.append(in_ready)
            if held is not None:
                assert out_valid and payload == held, \
                    f"cycle {cycle}: output changed before its transfer"
            held = None
            if holding and in_ready:
                run.in_cycles.append(cycle)
                holding, sent = False, sent + 1
            if out_valid:
                silent = 0
                if ready:
                    run.out.append(payload)
                    run.out_cycles.append(cycle)
                else:
                    held = payload
            elif sent == len(words) and len(run.out) >= len(words):
                silent += 1
            await ctx.tick()
            cycle += 1
            assert cycle < limit, f"stuck: {sent} in, {len(run.out)} out after {cycle} cycles"

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return run


def _words(rng, count, bits):
    return [rng.getrandbits(bits) for _ in range(count)]


# --- The permutation, no stalls ----------------------------------------------------------

@pytest.mark.parametrize("rows, columns", [(8, 8), (16, 16), (3, 5), (5, 3), (1, 4),
                                           (4, 1), (1, 1)])
def test_transposes_every_tile(rows, columns):
    dut = TransposeBuffer(rows=rows, columns=columns, shape=16)
    words = _words(random.Random(rows * 100 + columns), 3 * rows * columns, 16)
    run = _run(dut, words)
    assert run.out == _transposed(words, rows, columns)


def test_struct_payload():
    # A complex sample, as between the passes of StreamingFFT2D.
    layout = data.StructLayout({"re": signed(12), "im": signed(12)})
    dut = TransposeBuffer(rows=4, columns=8, shape=layout)
    rng = random.Random(3)
    samples = [{"re": rng.randint(-2048, 2047), "im": rng.randint(-2048, 2047)}
               for _ in range(2 * 32)]
    words = [layout.const(s).as_value().value for s in samples]
    run = _run(dut, words)
    assert run.out == _transposed(words, 4, 8)
    # the first word out is the first in, the second is row 1's first sample
    assert run.out[:2] == [words[0], words[8]]


# --- Stalls ------------------------------------------------------------------------------

@pytest.mark.parametrize("rows, columns, seed, p_offer, p_accept", [
    (8, 8, 0, 0.7, 0.7),
    (8, 8, 1, 0.95, 0.4),
    (8, 8, 2, 0.4, 0.95),
    (16, 16, 3, 0.8, 0.8),
    (3, 5, 4, 0.6, 0.5),
    (5, 3, 5, 0.9, 0.9),
])
def test_random_stalls_every_tile_in_order_exact(rows, columns, seed, p_offer, p_accept):
    dut = TransposeBuffer(rows=rows, columns=columns, shape=10)
    rng = random.Random(seed)
    words = _words(rng, 5 * rows * columns, 10)
    run = _run(dut, words, offer=lambda c: rng.random() < p_offer,
               accept=lambda c: rng.random() < p_accept, flip_checks=True)
    assert run.out == _transposed(words, rows, columns)


def test_output_stalled_long_backpressures_input():
    # The sink stops for long stretches: both banks fill, input.ready falls, nothing is
    # lost; it rises again once a bank has been read out.
    rows, columns = 4, 4
    dut = TransposeBuffer(rows=rows, columns=columns, shape=8)
    words = _words(random.Random(6), 6 * 16, 8)
    run = _run(dut, words, accept=lambda c: (c // 50) % 2 == 1)
    assert run.out == _transposed(words, rows, columns)
    # two tiles go in at full rate, then the input waits for the sink
    assert run.in_cycles[:32] == list(range(32))
    assert run.ready[32:50] == [0] * 18


# --- Throughput and latency --------------------------------------------------------------

@pytest.mark.parametrize("rows, columns, tiles", [(8, 8, 4), (16, 16, 3), (3, 5, 5)])
def test_one_sample_a_cycle_tiles_back_to_back(rows, columns, tiles):
    dut = TransposeBuffer(rows=rows, columns=columns, shape=8)
    size = rows * columns
    words = _words(random.Random(size), tiles * size, 8)
    run = _run(dut, words, quiet=2)
    assert run.out == _transposed(words, rows, columns)
    total = tiles * size
    assert run.in_cycles == list(range(total))                  # never a stall on input
    first = size - 1 + dut.latency                              # the first tile's last in
    assert run.out_cycles[0] - run.in_cycles[size - 1] == dut.latency == 2
    assert run.out_cycles == list(range(first, first + total))  # no bubble between tiles


def test_tile_waits_for_its_last_sample():
    # The source pauses before a tile's last sample: nothing of the tile comes out until
    # it is in, then the tile comes out latency cycles after it.
    rows, columns = 4, 4
    dut = TransposeBuffer(rows=rows, columns=columns, shape=8)
    words = _words(random.Random(7), 16, 8)
    pause = range(15, 60)
    run = _run(dut, words, offer=lambda c: c not in pause)
    assert run.out == _transposed(words, rows, columns)
    assert run.in_cycles[-1] == pause.stop
    assert run.out_cycles[0] == pause.stop + dut.latency


# --- Parameters --------------------------------------------------------------------------

def test_derived_values():
    dut = TransposeBuffer(rows=3, columns=5, shape=signed(7))
    assert (dut.rows, dut.columns, dut.shape) == (3, 5, signed(7))
    assert (dut.tile_samples, dut.depth, dut.latency) == (15, 30, 2)
    assert TransposeBuffer(rows=4096, columns=16, shape=1).depth == 2 * 65536


@pytest.mark.parametrize("kwargs, error, message", [
    ({"rows": 0}, ValueError, r"rows must be in 1\.\.4096, got 0"),
    ({"rows": 4097}, ValueError, r"rows must be in 1\.\.4096, got 4097"),
    ({"rows": 8.0}, TypeError, "rows must be an integer"),
    ({"rows": True}, TypeError, "rows must be an integer"),
    ({"columns": 0}, ValueError, r"columns must be in 1\.\.4096, got 0"),
    ({"columns": 5000}, ValueError, r"columns must be in 1\.\.4096"),
    ({"columns": "8"}, TypeError, "columns must be an integer"),
    ({"rows": 512, "columns": 256}, ValueError,
     r"rows \* columns must be in 1\.\.65536, got 512 \* 256 = 131072"),
    ({"shape": "wide"}, TypeError, "shape must be a shape-castable object"),
    ({"shape": 0}, ValueError, "shape must be at least 1 bit wide"),
])
def test_bad_parameters_name_the_range(kwargs, error, message):
    with pytest.raises(error, match=message):
        TransposeBuffer(**{"rows": 8, "columns": 8, "shape": 16, **kwargs})
