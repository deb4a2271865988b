"""Amaranth-simulator tests of the skid buffer: random stalls on both sides, every beat
out once and in order, one beat a cycle, and the stream rules checked in every cycle."""

import random

import pytest
from amaranth.hdl import Value, signed
from amaranth.lib import data
from amaranth.sim import Simulator

from dnnhw.rtl.skid_buffer import SkidBuffer


SHAPES = {
    "unsigned8": (8, lambda rng: rng.getrandbits(8)),
    "signed5": (signed(5), lambda rng: rng.randint(-16, 15)),
    "struct": (data.StructLayout({"data": 7, "last": 1}), lambda rng: rng.getrandbits(8)),
}


def _run(dut, beats, *, send, take, seed, max_cycles):
    """Offer ``beats`` on ``i`` (a new beat offered with probability ``send`` per cycle,
    then held until it transfers), take ``o`` with probability ``take`` per cycle.

    Checks the stream rules every cycle and returns ``(received, log)``, ``log`` holding
    per cycle ``(i transferred, o transferred, i.ready)``."""
    rng = random.Random(seed)
    received, log = [], []
    i_payload, o_payload = Value.cast(dut.i.payload), Value.cast(dut.o.payload)

    async def bench(ctx):
        sent, offering = 0, False
        held = None                      # (payload) offered on o last cycle and not taken
        for _ in range(max_cycles):
            if not offering and sent < len(beats) and rng.random() < send:
                offering = True
                ctx.set(i_payload, beats[sent])
            ctx.set(dut.i.valid, offering)
            ready = rng.random() < take
            ctx.set(dut.o.ready, ready)
            await ctx.delay(1e-9)
            now = (ctx.get(dut.o.valid), ctx.get(o_payload), ctx.get(dut.i.ready))
            # Neither o.valid, o.payload nor i.ready depends on this cycle's o.ready or
            # i.valid: flip each and look again.
            for port, value in ((dut.o.ready, ready), (dut.i.valid, offering)):
                ctx.set(port, not value)
                await ctx.delay(1e-9)
                assert (ctx.get(dut.o.valid), ctx.get(o_payload), ctx.get(dut.i.ready)) == now
                ctx.set(port, value)
                await ctx.delay(1e-9)
            o_valid, payload, i_ready = now
            if held is not None:
                assert o_valid and payload == held, "o dropped or changed a beat before it left"
            took_in = offering and i_ready
            took_out = o_valid and ready
            if took_out:
                received.append(payload)
            held = payload if o_valid and not ready else None
            log.append((took_in, took_out, i_ready))
            if took_in:
                sent += 1
                offering = False
            await ctx.tick()
            if len(received) == len(beats) and not ctx.get(dut.o.valid):
                break

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return received, log


@pytest.mark.parametrize("shape_name", SHAPES)
@pytest.mark.parametrize("send,take", [(0.5, 0.5), (0.9, 0.3), (0.3, 0.9), (1.0, 0.6),
                                       (0.7, 1.0)])
def test_random_stalls_keep_every_beat_in_order(shape_name, send, take):
    shape, draw = SHAPES[shape_name]
    rng = random.Random(f"{shape_name}{send}{take}")
    beats = [draw(rng) for _ in range(300)]
    received, log = _run(SkidBuffer(shape=shape), beats, send=send, take=take,
                         seed=rng.random(), max_cycles=300 * 20)
    assert received == beats
    if take < 1:
        # The stalls on o reached the skid entry: the buffer was full (i.ready low).
        assert not all(i_ready for _, _, i_ready in log)


@pytest.mark.parametrize("shape_name", SHAPES)
def test_full_throughput(shape_name):
    shape, draw = SHAPES[shape_name]
    rng = random.Random(shape_name)
    beats = [draw(rng) for _ in range(64)]
    dut = SkidBuffer(shape=shape)
    received, log = _run(dut, beats, send=1.0, take=1.0, seed=1, max_cycles=200)
    assert received == beats
    took_in = [k for k, (i, _, _) in enumerate(log) if i]
    took_out = [k for k, (_, o, _) in enumerate(log) if o]
    # One beat a cycle on each side, every beat out `latency` cycles after it came in.
    assert took_in == list(range(len(beats)))
    assert took_out == [k + dut.latency for k in took_in]


def test_holds_capacity_beats_then_drains_one_a_cycle():
    dut = SkidBuffer(shape=8)
    stalled_cycles = 5

    async def bench(ctx):
        ctx.set(dut.i.valid, 1)
        accepted = 0
        for cycle in range(stalled_cycles):          # o stalled: only the two entries fill
            ctx.set(dut.i.payload, accepted)
            await ctx.delay(1e-9)
            accepted += ctx.get(dut.i.ready)
            await ctx.tick()
        assert accepted == dut.capacity
        ctx.set(dut.o.ready, 1)
        out = []
        for cycle in range(6):                        # o resumes: one beat every cycle
            ctx.set(dut.i.payload, accepted)
            await ctx.delay(1e-9)
            assert ctx.get(dut.o.valid)
            out.append(ctx.get(dut.o.payload))
            accepted += ctx.get(dut.i.ready)
            await ctx.tick()
        assert out == list(range(6))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_parameters_and_members():
    dut = SkidBuffer(shape=data.StructLayout({"data": 7, "last": 1}))
    assert (dut.capacity, dut.latency) == (2, 1)
    assert set(dut.signature.members) == {"i", "o"}
    assert dut.i.payload.shape() == dut.o.payload.shape() == dut.shape
    with pytest.raises(TypeError, match=r"shape must be a shape-castable object .* got 'wide'"):
        SkidBuffer(shape="wide")
    with pytest.raises(TypeError):
        SkidBuffer(8)                                 # keyword only
