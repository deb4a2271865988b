"""UARTTransmitter and UARTReceiver (Python simulator), against docs/board.md section 1:
the transmitter's waveform bit for bit and back to back; the receiver under a sender whose
bit time is off by 3 %, at the full rate; a short glitch ignored; a framing error and a
break; the overrun; a loopback of the two; the parameter errors."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from dnnhw.rtl.uart import UARTReceiver, UARTTransmitter


CLOCK = 1e-6


def _simulate(dut, *benches, background=()):
    sim = Simulator(dut)
    sim.add_clock(CLOCK)
    for bench in benches:
        sim.add_testbench(bench)
    for bench in background:
        sim.add_testbench(bench, background=True)
    sim.run()


def _line_bits(byte, stop=1):
    """A byte's ten bits on the line: start, data least significant first, stop."""
    return [0] + [(byte >> i) & 1 for i in range(8)] + [stop]


def _drive_line(pin, pieces, *, phase=0.37):
    """A testbench that drives ``pin`` with ``pieces``, ``(level, cycles)`` pairs (cycles
    may be fractional: a sender with its own clock), starting ``phase`` of a cycle after
    a clock edge, then holds it high."""
    async def bench(ctx):
        ctx.set(pin, 1)
        await ctx.delay((3 + phase) * CLOCK)
        for level, cycles in pieces:
            ctx.set(pin, level)
            await ctx.delay(cycles * CLOCK)
        ctx.set(pin, 1)
    return bench


def _bytes_pieces(data, bit_cycles):
    return [(bit, bit_cycles) for byte in data for bit in _line_bits(byte)]


class _Received:
    """What :func:`_receive` saw: ``data`` (bytes taken) and ``taken`` (their cycles),
    ``errors`` and ``overruns`` (the cycles of the pulses), ``cycles`` run."""

    def __init__(self):
        self.data, self.taken, self.errors, self.overruns, self.cycles = [], [], [], [], 0


def _receive(dut, log, *, ready=lambda cycle: True):
    """A background testbench taking the receiver's bytes while ``ready(cycle)``."""
    async def bench(ctx):
        while True:
            take = ready(log.cycles)
            ctx.set(dut.data.ready, take)
            _, _, valid, payload, error, overrun = await ctx.tick().sample(
                dut.data.valid, dut.data.payload, dut.error, dut.overrun)
            if valid and take:
                log.data.append(payload)
                log.taken.append(log.cycles)
            if error:
                log.errors.append(log.cycles)
            if overrun:
                log.overruns.append(log.cycles)
            log.cycles += 1
    return bench


def _wait(cycles):
    async def bench(ctx):
        await ctx.tick().repeat(cycles)
    return bench


# --- transmitter --------------------------------------------------------------------------

@pytest.mark.parametrize("divisor", [4, 5])
def test_transmitter_waveform_is_bit_exact_and_back_to_back(divisor):
    rng = random.Random(divisor)
    data = [0x00, 0xFF, 0x55, 0xAA, 0x01, 0x80] + [rng.getrandbits(8) for _ in range(10)]
    dut = UARTTransmitter(divisor=divisor)
    line, transfers = [], []

    async def bench(ctx):
        await ctx.tick().repeat(3)                  # idle first: the line must be high
        sent = 0
        for cycle in range(len(data) * 10 * divisor + 30):
            ctx.set(dut.data.valid, sent < len(data))
            ctx.set(dut.data.payload, data[sent] if sent < len(data) else 0)
            _, _, ready, tx = await ctx.tick().sample(dut.data.ready, dut.tx)
            line.append(tx)
            if ready and sent < len(data):
                transfers.append(cycle)
                sent += 1

    _simulate(dut, bench)
    # The first byte is taken at once, the others each in the last cycle of the stop bit
    # before: one byte every ten bit times.
    assert transfers == [k * 10 * divisor for k in range(len(data))]
    expected = [1] + [bit for byte in data for bit in _line_bits(byte) for _ in range(divisor)]
    assert line[:len(expected)] == expected
    assert set(line[len(expected):]) == {1}
    assert dut.cycles_per_byte == 10 * divisor


def test_transmitter_ready_and_line_idle_between_bytes():
    dut = UARTTransmitter(divisor=4)
    line = []

    async def bench(ctx):
        assert ctx.get(dut.tx) == 1 and ctx.get(dut.data.ready) == 1
        ctx.set(dut.data.valid, 1)
        ctx.set(dut.data.payload, 0x0F)
        await ctx.tick()
        ctx.set(dut.data.valid, 0)
        for _ in range(40):
            line.append(ctx.get(dut.data.ready))
            await ctx.tick()
        # A byte offered after the stop bit ended is sent at once, from an idle line.
        for _ in range(7):
            assert ctx.get(dut.tx) == 1 and ctx.get(dut.data.ready) == 1
            await ctx.tick()

    _simulate(dut, bench)
    # busy for the whole byte but its last cycle
    assert line == [0] * 39 + [1]


# --- receiver -----------------------------------------------------------------------------

@pytest.mark.parametrize("divisor", [8, 16])
@pytest.mark.parametrize("error", [-0.03, 0.0, 0.03])
def test_receiver_takes_back_to_back_bytes_with_a_baud_error(divisor, error):
    rng = random.Random(f"{divisor}{error}")
    data = [0x00, 0xFF, 0x55, 0xAA] + [rng.getrandbits(8) for _ in range(60)]
    bit_cycles = divisor * (1 + error)
    dut = UARTReceiver(divisor=divisor)
    log = _Received()
    _simulate(dut, _drive_line(dut.rx, _bytes_pieces(data, bit_cycles), phase=rng.random()),
              _wait(int(len(data) * 10 * bit_cycles) + 40),
              background=[_receive(dut, log)])
    assert log.data == data
    assert log.errors == log.overruns == []


def test_receiver_at_divisor_4_every_phase():
    """The smallest divisor the bridge tests use, exact rate, the start edge anywhere in
    a cycle."""
    rng = random.Random(4)
    for phase in (0.0, 0.25, 0.5, 0.75, 0.99):
        data = [rng.getrandbits(8) for _ in range(20)]
        dut = UARTReceiver(divisor=4)
        log = _Received()
        _simulate(dut, _drive_line(dut.rx, _bytes_pieces(data, 4), phase=phase),
                  _wait(20 * 40 + 20), background=[_receive(dut, log)])
        assert log.data == data, phase
        assert log.errors == log.overruns == []


@pytest.mark.parametrize("divisor,glitch_cycles", [(4, 0.6), (4, 1.0), (4, 1.9),
                                                   (5, 1.9), (8, 2.5), (8, 3.9)])
def test_a_glitch_shorter_than_half_a_bit_is_not_a_start(divisor, glitch_cycles):
    """Shorter than ``divisor // 2`` cycles: half a bit at an even divisor."""
    for phase in (0.1, 0.5, 0.9):
        dut = UARTReceiver(divisor=divisor)
        log = _Received()
        pieces = [(0, glitch_cycles), (1, 12 * divisor)] + _bytes_pieces([0x3C], divisor)
        _simulate(dut, _drive_line(dut.rx, pieces, phase=phase), _wait(30 * divisor),
                  background=[_receive(dut, log)])
        # A glitch taken for a start bit would have given a byte (0xFF) or an error.
        assert log.data == [0x3C], (glitch_cycles, phase)
        assert log.errors == []


def test_a_low_pulse_of_a_whole_bit_is_a_start():
    """The other side of the glitch test: the start check does look at the line."""
    dut = UARTReceiver(divisor=8)
    log = _Received()
    _simulate(dut, _drive_line(dut.rx, [(0, 8)]), _wait(200), background=[_receive(dut, log)])
    assert log.data == [0xFF] and log.errors == []


def test_framing_error_pulses_and_drops_the_byte():
    dut = UARTReceiver(divisor=4)
    log = _Received()
    pieces = (_bytes_pieces([0x11], 4)
              + [(bit, 4) for bit in _line_bits(0x22, stop=0)] + [(1, 8)]
              + _bytes_pieces([0x33], 4))
    _simulate(dut, _drive_line(dut.rx, pieces), _wait(200), background=[_receive(dut, log)])
    assert log.data == [0x11, 0x33]
    assert len(log.errors) == 1
    # The pulse comes at the middle of the bad stop bit: two synchronizer stages, the
    # start edge's cycle, the half-bit wait and nine bits after the drive began (at
    # cycle 3.37 + 40).
    assert log.errors[0] == pytest.approx(43.37 + 2 + 2 + 36, abs=1.5)
    assert log.overruns == []


def test_a_break_is_one_framing_error():
    dut = UARTReceiver(divisor=4)
    log = _Received()
    pieces = [(0, 30 * 4), (1, 8)] + _bytes_pieces([0x5A], 4)
    _simulate(dut, _drive_line(dut.rx, pieces), _wait(250), background=[_receive(dut, log)])
    assert len(log.errors) == 1
    assert log.data == [0x5A]


def test_overrun_keeps_the_held_byte_and_loses_the_new_one():
    dut = UARTReceiver(divisor=4)
    log = _Received()
    # not ready until long after all three bytes have arrived
    _simulate(dut, _drive_line(dut.rx, _bytes_pieces([0x01, 0x02, 0x03], 4)), _wait(200),
              background=[_receive(dut, log, ready=lambda cycle: cycle >= 150)])
    assert log.data == [0x01]
    assert len(log.overruns) == 2
    assert log.errors == []


def test_a_byte_taken_as_the_next_arrives_is_no_overrun():
    def run(ready):
        dut = UARTReceiver(divisor=4)
        log = _Received()
        _simulate(dut, _drive_line(dut.rx, _bytes_pieces([0x01, 0x02], 4)), _wait(150),
                  background=[_receive(dut, log, ready=ready)])
        return log

    # Always ready, the second byte is there (valid) from cycle `second` on: it came
    # into the holding register at the end of cycle second - 1.
    second = run(lambda cycle: True).taken[1]
    # Ready only in that cycle: the first byte leaves as the second comes in.
    log = run(lambda cycle: cycle == second - 1 or cycle >= 120)
    assert log.taken[0] == second - 1
    assert log.data == [0x01, 0x02] and log.overruns == []


def test_a_byte_taken_in_time_is_no_overrun():
    """Emptied within a byte time of its arrival, the holding register never overruns:
    ready only one cycle in ten."""
    rng = random.Random(7)
    data = [rng.getrandbits(8) for _ in range(30)]
    dut = UARTReceiver(divisor=4)
    log = _Received()
    _simulate(dut, _drive_line(dut.rx, _bytes_pieces(data, 4)), _wait(30 * 40 + 40),
              background=[_receive(dut, log, ready=lambda cycle: cycle % 10 == 0)])
    assert log.data == data and log.overruns == []


# --- both ---------------------------------------------------------------------------------

@pytest.mark.parametrize("divisor", [4, 7])
def test_loopback_of_200_random_bytes_at_full_rate(divisor):
    rng = random.Random(divisor)
    data = [rng.getrandbits(8) for _ in range(200)]
    m = Module()
    m.submodules.tx = tx = UARTTransmitter(divisor=divisor)
    m.submodules.rx = rx = UARTReceiver(divisor=divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    log = _Received()
    handed_over = []

    async def send(ctx):
        cycle = 0
        for byte in data:
            ctx.set(tx.data.valid, 1)
            ctx.set(tx.data.payload, byte)
            while not ctx.get(tx.data.ready):
                await ctx.tick()
                cycle += 1
            handed_over.append(cycle)
            await ctx.tick()
            cycle += 1
        ctx.set(tx.data.valid, 0)
        await ctx.tick().repeat(20 * divisor)

    _simulate(m, send, background=[_receive(rx, log)])
    assert log.data == data
    assert log.errors == log.overruns == []
    # one byte every ten bit times
    assert handed_over == [k * 10 * divisor for k in range(len(data))]


@pytest.mark.parametrize("component", [UARTTransmitter, UARTReceiver])
def test_parameter_errors(component):
    assert component(divisor=2).divisor == 2
    assert component(divisor=65536).divisor == 65536
    for bad in (1, 0, 65537):
        with pytest.raises(ValueError, match=rf"divisor must be in 2\.\.65536, got {bad}"):
            component(divisor=bad)
    for bad in (4.0, "4", True):
        with pytest.raises(TypeError, match=r"divisor must be an integer, got"):
            component(divisor=bad)
    with pytest.raises(TypeError):
        component(4)                                  # keyword only


def test_members():
    tx, rx = UARTTransmitter(divisor=4), UARTReceiver(divisor=4)
    assert set(tx.signature.members) == {"data", "tx"}
    assert set(rx.signature.members) == {"rx", "data", "error", "overrun"}
    assert rx.cycles_per_byte == 40 and rx.start_sample_delay == 2
