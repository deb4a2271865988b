"""Helpers every test file may use.

Fixtures
--------
``build_root`` (session)
    Where simulation and synthesis builds go: ``$DNNHW_BUILD_ROOT`` or
    ``<repo>/dnnhw-build`` (git-ignored), shared across sessions so builds and Verilator's
    runtime objects are reused.
``stream_put``, ``stream_get``
    Amaranth-simulator coroutines for one ``lib.stream`` transfer:
    ``await stream_put(ctx, dut.i, payload)`` and ``payload = await stream_get(ctx, dut.o)``.
``simulate_streams``
    ``simulate_streams(dut, segments, source=..., sink=..., sample=...)``: a cycle-by-cycle
    Amaranth-simulator run of a component with a sink stream ``i`` and a source stream
    ``o``, with stall patterns (:mod:`dnnhw.sim.stalls`) on both sides and a reset
    between segments; see :func:`_simulate_streams`.
"""

import os
import random
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def build_root():
    root = os.environ.get("DNNHW_BUILD_ROOT")
    return Path(root) if root else Path(__file__).resolve().parent.parent / "dnnhw-build"


# --- Amaranth simulator ------------------------------------------------------------------

async def _stream_put(ctx, stream, payload):
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def _stream_get(ctx, stream):
    ctx.set(stream.ready, 1)
    payload, = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


@pytest.fixture
def stream_put():
    return _stream_put


@pytest.fixture
def stream_get():
    return _stream_get


class Segment:
    """What one segment of :func:`_simulate_streams` produced: ``out`` (the transferred
    ``o`` payloads, in order), ``samples`` (per transfer, the ``sample`` signals' values in
    that cycle), ``after`` (their values once the output has gone quiet), ``cycles``."""

    def __init__(self):
        self.out, self.samples, self.after, self.cycles = [], [], {}, 0


def _simulate_streams(dut, segments, *, source=None, sink=None, seed=0, sample=(),
                      quiet=24, max_cycles=20000):
    """Run ``segments`` (lists of payloads for ``dut.i``) through ``dut``, collecting
    ``dut.o``; returns one :class:`Segment` per segment.

    One testbench drives both sides cycle by cycle: the source offers the next beat unless
    its stall pattern ``source`` says idle (asked when it holds no beat), the sink is ready
    unless ``sink`` says stall (asked every cycle); ``valid`` and the payload hold until
    the transfer; while it offers nothing, the payload is random (the component must not
    look at it). A segment ends once every beat was taken and ``o.valid`` has been low for
    ``quiet`` cycles; then the component is reset (through a ``ResetInserter``) for the
    next. ``sample`` names other output members (``"error"``) read at every transfer and
    at the segment's end. Fails if the component stops taking input for ``max_cycles``.
    """
    from amaranth.hdl import Module, ResetInserter, Signal
    from amaranth.sim import Simulator
    from dnnhw.sim.stalls import stall_pattern

    rst = Signal()
    top = Module()
    top.submodules.dut = ResetInserter(rst)(dut)
    src_pauses = stall_pattern(source).iterate(random.Random(seed))
    snk_pauses = stall_pattern(sink).iterate(random.Random(seed + 1))
    scramble = random.Random(seed + 2)
    payload_bits = len(dut.i.payload.as_value())
    results = []

    async def bench(ctx):
        for beats in segments:
            seg = Segment()
            pending = list(beats)
            offered = False
            silent = 0
            while pending or silent < quiet:
                if pending and not offered:
                    offered = not next(src_pauses)
                    if offered:
                        ctx.set(dut.i.payload, pending[0])
                if not offered:
                    ctx.set(dut.i.payload.as_value(), scramble.getrandbits(payload_bits))
                ctx.set(dut.i.valid, offered)
                ready = not next(snk_pauses)
                ctx.set(dut.o.ready, ready)
                if offered and ctx.get(dut.i.ready):
                    pending.pop(0)
                    offered = False
                if ctx.get(dut.o.valid):
                    silent = 0
                    if ready:
                        seg.out.append(ctx.get(dut.o.payload))
                        seg.samples.append({name: ctx.get(getattr(dut, name))
                                            for name in sample})
                elif not pending:
                    silent += 1
                await ctx.tick()
                seg.cycles += 1
                assert seg.cycles < max_cycles, \
                    (f"segment {len(results)}: {len(beats) - len(pending)} of {len(beats)} "
                     f"beats taken, {len(seg.out)} out, after {max_cycles} cycles")
            ctx.set(dut.i.valid, 0)
            ctx.set(dut.o.ready, 0)
            seg.after = {name: ctx.get(getattr(dut, name)) for name in sample}
            results.append(seg)
            ctx.set(rst, 1)
            await ctx.tick().repeat(2)
            ctx.set(rst, 0)

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return results


@pytest.fixture
def simulate_streams():
    return _simulate_streams
