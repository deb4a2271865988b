"""The board side of the host link: frames over a UART to and from a core's streams.

The contract is docs/board.md sections 2 and 3. Three parts share the UART:

*The parser* hunts for ``SYNC``, reads the header, writes the payload into the write
buffer (the stream byte also into a register) and checks the CRC on the fly. After the
CRC it answers ``IDENTIFY`` and ``STATUS``, refuses a bad frame with an ``ERROR``, or
hands a good ``WRITE``'s beats to the core one by one, at the core's pace, and posts the
``ACK`` once the last is taken. While it delivers, it takes no bytes from the UART: the
host keeps one frame in flight, so none arrive (a byte that did would be held by the
receiver and the next would overrun it, which shows in ``frame_error``).

*The collector* stores the core's output beats, one source at a time, into the read
buffer byte by byte straight from the stream's payload (it holds while ``valid`` is
high), taking the beat with its last byte; it marks the buffer full when the next beat
would not fit in a ``READ`` frame or when no beat has come for ``flush_cycles``. It takes nothing while the buffer is being
sent; the core waits (the line rate bounds the output anyway). With nothing held it
looks at the sources in turn, one a cycle, so a busy source cannot starve another.

*The sender* owns the transmitter. It sends one whole frame at a time: the posted reply
if there is one, else the full read buffer, so a reply never interleaves with a ``READ``.
The reply slot stays taken until the reply's last byte has gone to the transmitter; the
parser waits for it before it posts the next (under the host's one-frame-in-flight rule
it is always free by then, except after a ``TRUNCATED`` that the host did not wait for).

``STATE``'s counters are the beats acknowledged per sink (added when the ``ACK`` is
posted) and the beats sent per source (added when their ``READ`` frame has gone). Neither
can change while a ``STATE`` is being sent (an ``ACK`` waits for the reply slot, a
``READ`` for the sender), so a ``STATE`` never shows a half-updated counter, and every
beat it counts as sent was in a ``READ`` frame before it.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from dnnhw.spec.board import (COUNTER_BYTES, CRC_INIT, CRC_POLY, MAX_PAYLOAD_RANGE, SYNC,
                              Command, ErrorCode)

from ._checks import check_int
from .ram import BlockRam
from .uart import BITS_PER_BYTE, UARTReceiver, UARTTransmitter


__all__ = ["Command", "ErrorCode", "SYNC", "UARTBridge"]


MAX_STREAMS = 16                  # per direction
MAX_WIDTH = 512                   # bits of a beat


def _crc_step(crc, byte):
    """CRC-16/CCITT-FALSE after one more byte (most significant bit first): the eight
    shift-and-xor steps unrolled into one XOR network, a byte a cycle."""
    value = crc ^ (byte << 8)
    for _ in range(8):
        value = (value << 1)[:16] ^ Mux(value[15], CRC_POLY, 0)
    return value


def _check_widths(name, widths):
    try:
        widths = tuple(widths)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of stream widths in bits, got "
                        f"{widths!r}") from None
    check_int(f"len({name})", len(widths), 1, MAX_STREAMS)
    for i, width in enumerate(widths):
        check_int(f"{name}[{i}]", width, 1, MAX_WIDTH)
    return widths


def _check_ident(ident):
    if isinstance(ident, str):
        try:
            ident = ident.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError(f"ident must be ASCII, got {ident!r}") from None
    if not isinstance(ident, (bytes, bytearray)):
        raise TypeError(f"ident must be a str or bytes, got {ident!r}")
    ident = bytes(ident)
    if not all(0x20 <= byte < 0x7F for byte in ident):
        raise ValueError(f"ident must be printable ASCII, got {ident!r}")
    return ident


class UARTBridge(wiring.Component):
    """A core's streams over a UART, framed as in docs/board.md.

    Parameters
    ----------
    divisor : int
        Clock cycles a UART bit (``clock_hz / baud``, rounded), 2 .. 2 ** 16.
    sinks : sequence of int
        Payload widths in bits (1 .. 512) of the core's input streams in sidecar order,
        1 .. 16 of them; ``WRITE``'s stream ``i`` goes to ``to_core_<i>``.
    sources : sequence of int
        The same for the core's output streams (``READ``'s stream ``i`` is
        ``from_core_<i>``).
    ident : str or bytes
        The ``ID`` payload (docs/board.md section 4), printable ASCII, 1 .. ``max_payload``
        bytes. Held in a ROM.
    max_payload : int
        The longest payload, 16 .. 4096 bytes, either way. It must hold the stream byte
        and the widest beat, and the ``STATE`` payload.
    timeout_bits : int
        Inside a frame, the bit times with no byte (counted from the last byte's arrival)
        that abandon it with ``ERROR TRUNCATED``, 16 .. 2 ** 16.
    flush_cycles : int or None
        Clock cycles without a new output beat after which the beats held are sent in a
        ``READ`` that is not full, 1 .. 2 ** 24. ``None``: 16 bit times.

    Members
    -------
    rx : In(1)
        The UART line from the host (asynchronous; synchronized inside). Idle high.
    tx : Out(1)
        The UART line to the host, straight from a flip-flop. Idle high.
    to_core_<i> : Out(stream.Signature(sinks[i]))
        Drives the core's input stream ``i``: a ``WRITE``'s beats in order, each held
        until taken. Also :attr:`to_core`, a tuple of them.
    from_core_<i> : In(stream.Signature(sources[i]))
        Takes the core's output stream ``i`` into ``READ`` frames. Also :attr:`from_core`.
    core_error : In(1)
        The core's error or overflow output, if it has one: ``STATE`` bit 1.
    frame_error : Out(1)
        Sticky: since reset, the receiver saw a framing error or an overrun, or a frame
        was refused with an ``ERROR``. ``STATE`` bit 0.
    busy : Out(1)
        A ``WRITE``'s beats are going to the core (high for as long as it stalls).
    activity : Out(1)
        A frame is being received or sent (for an LED: at UART rates a frame lasts
        milliseconds).

    Timing
    ------
    Both directions run back to back at the line rate, ten bit times a byte:
    ``clock_hz / (10 * divisor)`` bytes a second (11,538 at 12 MHz and 115,200 baud). A
    full ``READ`` carries ``max_payload - 1`` bytes of beats in ``max_payload + 5``;
    full frames follow each other with no gap while the core keeps up. A ``WRITE``'s
    first beat is offered a few cycles after its last CRC byte is in (the middle of its
    stop bit), the next every ``2 * beat_bytes + 1`` cycles while the core is ready, and
    the ``ACK``'s start bit begins 4 cycles after the last beat is taken. The answers to
    ``IDENTIFY`` and ``STATUS`` start within 8 cycles of the request's last stop bit.
    """

    def __init__(self, *, divisor, sinks, sources, ident, max_payload=256,
                 timeout_bits=2048, flush_cycles=None):
        self._divisor = check_int("divisor", divisor, 2, 1 << 16)
        self._sinks = _check_widths("sinks", sinks)
        self._sources = _check_widths("sources", sources)
        self._max_payload = check_int("max_payload", max_payload, MAX_PAYLOAD_RANGE[0],
                                      MAX_PAYLOAD_RANGE[-1])
        self._ident = _check_ident(ident)
        check_int("len(ident)", len(self._ident), 1, max_payload)
        self._timeout_bits = check_int("timeout_bits", timeout_bits, 16, 1 << 16)
        if flush_cycles is None:
            flush_cycles = 16 * divisor
        self._flush_cycles = check_int("flush_cycles", flush_cycles, 1, 1 << 24)
        widest = max(self.sink_beat_bytes + self.source_beat_bytes)
        if 1 + widest > max_payload:
            raise ValueError(f"max_payload must be at least {1 + widest} for a "
                             f"{8 * widest}-bit beat and its stream byte, got {max_payload}")
        if self.state_length > max_payload:
            raise ValueError(f"max_payload must be at least {self.state_length} for the "
                             f"STATE of {len(self._sinks)} sinks and {len(self._sources)} "
                             f"sources, got {max_payload}")
        members = {
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "core_error": In(1),
            "frame_error": Out(1),
            "busy": Out(1),
            "activity": Out(1),
        }
        for i, width in enumerate(self._sinks):
            members[f"to_core_{i}"] = Out(stream.Signature(width))
        for i, width in enumerate(self._sources):
            members[f"from_core_{i}"] = In(stream.Signature(width))
        super().__init__(members)

    divisor = property(lambda self: self._divisor)
    sinks = property(lambda self: self._sinks)
    sources = property(lambda self: self._sources)
    ident = property(lambda self: self._ident, doc="The ID payload, as bytes.")
    max_payload = property(lambda self: self._max_payload)
    timeout_bits = property(lambda self: self._timeout_bits)
    flush_cycles = property(lambda self: self._flush_cycles)

    @property
    def to_core(self):
        return tuple(getattr(self, f"to_core_{i}") for i in range(len(self._sinks)))

    @property
    def from_core(self):
        return tuple(getattr(self, f"from_core_{i}") for i in range(len(self._sources)))

    @property
    def sink_beat_bytes(self):
        """Bytes of a beat per sink: ``ceil(width / 8)``."""
        return tuple((width + 7) // 8 for width in self._sinks)

    @property
    def source_beat_bytes(self):
        return tuple((width + 7) // 8 for width in self._sources)

    @property
    def buffer_bytes(self):
        """Bytes of each frame buffer: ``max_payload``. A payload byte's address is its
        index in the payload, so no adder shifts the addresses; address 0 is the stream
        byte's, which is also kept in a register."""
        return self._max_payload

    @property
    def ident_base(self):
        """Where the ID starts in the memory above the read buffer: ``max_payload``
        rounded up to a power of two, so its addresses need no adder."""
        return 1 << (self._max_payload - 1).bit_length()

    @property
    def read_frame_beats(self):
        """Beats of a full ``READ`` frame, per source: as many as fit in
        ``max_payload`` with the stream byte."""
        return tuple((self._max_payload - 1) // n for n in self.source_beat_bytes)

    @property
    def state_length(self):
        """Bytes of the ``STATE`` payload: the status bits and a counter per stream."""
        return 1 + COUNTER_BYTES * (len(self._sinks) + len(self._sources))

    @property
    def timeout_cycles(self):
        return self._timeout_bits * self._divisor

    @property
    def cycles_per_byte(self):
        return BITS_PER_BYTE * self._divisor

    def elaborate(self, platform):
        m = Module()
        m.submodules.receiver = receiver = UARTReceiver(divisor=self._divisor)
        m.submodules.transmitter = transmitter = UARTTransmitter(divisor=self._divisor)
        m.d.comb += [receiver.rx.eq(self.rx), self.tx.eq(transmitter.tx)]
        m.submodules.write_buffer = write_buffer = BlockRam(shape=8, depth=self.buffer_bytes)
        # What the sender reads from: the read buffer, and the ID above it at
        # ident_base, in one block RAM (a 256-byte buffer fills half of one; a ROM of its
        # own would be built from logic, some 130 LUTs for a 100-byte ID). As in BlockRam,
        # the read is asynchronous into a register and the memory is marked no_rw_check:
        # the collector writes only while the sender does not read the buffer, and never
        # at the ID's addresses.
        m.submodules.send_memory = send_memory = Memory(
            shape=8, depth=self.ident_base + len(self._ident),
            init=bytes(self.ident_base) + self._ident, attrs={"no_rw_check": 1})
        read_buffer_write = send_memory.write_port()
        send_read = send_memory.read_port(domain="comb")

        # The reply slot: written by the parser while free, read by the sender while taken.
        reply_pending = Signal()
        reply_command = Signal(8)
        reply_length = Signal(range(self._max_payload + 1))
        reply_arg = Signal(8)         # ACK: the stream; ERROR: the code
        reply_count = Signal(16)      # ACK: the beats taken

        def post(command, length, arg=0, count=0):
            m.d.sync += [reply_pending.eq(1), reply_command.eq(command),
                         reply_length.eq(length), reply_arg.eq(arg), reply_count.eq(count)]
            if command == Command.ERROR:
                m.d.sync += self.frame_error.eq(1)

        acknowledged = [Signal(8 * COUNTER_BYTES, name=f"acknowledged_{i}")
                        for i in range(len(self._sinks))]
        sent = [Signal(8 * COUNTER_BYTES, name=f"sent_{i}")
                for i in range(len(self._sources))]
        with m.If(receiver.error | receiver.overrun):
            m.d.sync += self.frame_error.eq(1)

        receiving = self._parser(m, receiver, write_buffer, reply_pending, post,
                                 acknowledged)
        read_full, read_stream, read_length, read_sent = self._collector(
            m, read_buffer_write, sent)
        sending = self._sender(m, transmitter, send_read, reply_pending,
                               reply_command, reply_length, reply_arg, reply_count,
                               acknowledged + sent, read_full, read_stream, read_length,
                               read_sent)
        m.d.comb += self.activity.eq(receiving | sending)
        return m

    def _parser(self, m, receiver, write_buffer, reply_pending, post, acknowledged):
        """Frames from the host; returns a signal that is high inside one."""
        byte = receiver.data.payload
        got = Signal()                # a byte is taken this cycle
        m.d.comb += got.eq(receiver.data.valid & receiver.data.ready)

        command = Signal(8)
        length = Signal(16)
        index = Signal(16)            # of the payload byte expected next
        next_index = index + 1
        target = Signal(8)            # the WRITE's stream byte
        crc = Signal(16)
        crc_low = Signal(8)
        crc_ok = Signal()
        idle_timer = Signal(range(self.timeout_cycles))
        beat_byte = Signal(range(max(self.sink_beat_bytes)))   # bytes of the beat so far
        beats = Signal(range(self._max_payload))               # whole beats received
        read_addr = Signal(range(self._max_payload + 1))
        beat_bytes = Array(Const(n, range(max(self.sink_beat_bytes) + 1))
                           for n in self.sink_beat_bytes)[target]
        last_of_beat = beat_byte == beat_bytes - 1
        fits = length <= self._max_payload

        # A beat comes in at the top and moves down a byte per byte, so beat i's first
        # byte ends up at bit width - 8 * beat_bytes[i]: a fixed slice per sink.
        beat_width = 8 * max(self.sink_beat_bytes)
        beat = Signal(beat_width)
        for i, (sink, n) in enumerate(zip(self.to_core, self.sink_beat_bytes)):
            low = beat_width - 8 * n
            m.d.comb += sink.payload.eq(beat[low:low + self._sinks[i]])
        target_ready = Array(sink.ready for sink in self.to_core)[target]

        def byte_in_frame(covered=True):
            # covered: the CRC covers this byte (all but the CRC's own two)
            with m.If(got):
                m.d.sync += idle_timer.eq(self.timeout_cycles - 1)
                if covered:
                    m.d.sync += crc.eq(_crc_step(crc, byte))
            with m.Elif(idle_timer == 0):
                m.next = "TRUNCATED"
            with m.Else():
                m.d.sync += idle_timer.eq(idle_timer - 1)

        with m.FSM(name="parser") as fsm:
            with m.State("HUNT"):
                m.d.comb += receiver.data.ready.eq(1)
                with m.If(got & (byte == SYNC)):
                    m.d.sync += [crc.eq(CRC_INIT), idle_timer.eq(self.timeout_cycles - 1)]
                    m.next = "COMMAND"
            with m.State("COMMAND"):
                m.d.comb += receiver.data.ready.eq(1)
                byte_in_frame()
                with m.If(got):
                    m.d.sync += command.eq(byte)
                    m.next = "LENGTH_LOW"
            with m.State("LENGTH_LOW"):
                m.d.comb += receiver.data.ready.eq(1)
                byte_in_frame()
                with m.If(got):
                    m.d.sync += length[:8].eq(byte)
                    m.next = "LENGTH_HIGH"
            with m.State("LENGTH_HIGH"):
                m.d.comb += receiver.data.ready.eq(1)
                byte_in_frame()
                with m.If(got):
                    m.d.sync += [length[8:].eq(byte), index.eq(0), beat_byte.eq(0),
                                 beats.eq(0)]
                    with m.If(Cat(length[:8], byte) == 0):
                        m.next = "CRC_LOW"
                    with m.Else():
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                m.d.comb += receiver.data.ready.eq(1)
                byte_in_frame()
                with m.If(got):
                    m.d.sync += index.eq(next_index)
                    # Beyond max_payload the bytes are only counted (the frame is skipped
                    # whole, then refused).
                    m.d.comb += [write_buffer.write_en.eq(fits),
                                 write_buffer.write_addr.eq(index),
                                 write_buffer.write_data.eq(byte)]
                    with m.If(index == 0):
                        m.d.sync += target.eq(byte)
                    with m.Else():
                        with m.If(last_of_beat):
                            m.d.sync += [beat_byte.eq(0), beats.eq(beats + 1)]
                        with m.Else():
                            m.d.sync += beat_byte.eq(beat_byte + 1)
                    with m.If(next_index == length):
                        m.next = "CRC_LOW"
            with m.State("CRC_LOW"):
                m.d.comb += receiver.data.ready.eq(1)
                byte_in_frame(covered=False)
                with m.If(got):
                    m.d.sync += crc_low.eq(byte)
                    m.next = "CRC_HIGH"
            with m.State("CRC_HIGH"):
                m.d.comb += receiver.data.ready.eq(1)
                byte_in_frame(covered=False)
                with m.If(got):
                    m.d.sync += crc_ok.eq(Cat(crc_low, byte) == crc)
                    m.next = "CHECK"
            with m.State("CHECK"):
                with m.If(~reply_pending):
                    m.next = "HUNT"
                    with m.If(~crc_ok):
                        post(Command.ERROR, 1, ErrorCode.BAD_CRC)
                    with m.Elif(command == Command.IDENTIFY):
                        with m.If(length != 0):
                            post(Command.ERROR, 1, ErrorCode.BAD_LENGTH)
                        with m.Else():
                            post(Command.ID, len(self._ident))
                    with m.Elif(command == Command.STATUS):
                        with m.If(length != 0):
                            post(Command.ERROR, 1, ErrorCode.BAD_LENGTH)
                        with m.Else():
                            post(Command.STATE, self.state_length)
                    with m.Elif(command == Command.WRITE):
                        with m.If((length == 0) | ~fits):
                            post(Command.ERROR, 1, ErrorCode.BAD_LENGTH)
                        with m.Elif(target >= len(self._sinks)):
                            post(Command.ERROR, 1, ErrorCode.BAD_STREAM)
                        with m.Elif(beat_byte != 0):
                            post(Command.ERROR, 1, ErrorCode.BAD_LENGTH)
                        with m.Elif(beats == 0):
                            m.next = "ACK"
                        with m.Else():
                            m.d.sync += read_addr.eq(1)
                            m.next = "FETCH"
                    with m.Else():
                        post(Command.ERROR, 1, ErrorCode.BAD_COMMAND)
            with m.State("FETCH"):
                m.d.comb += [write_buffer.read_en.eq(1), write_buffer.read_addr.eq(read_addr)]
                m.d.sync += read_addr.eq(read_addr + 1)
                m.next = "SHIFT"
            with m.State("SHIFT"):
                m.d.sync += beat.eq(Cat(beat[8:], write_buffer.read_data))
                with m.If(last_of_beat):
                    m.d.sync += beat_byte.eq(0)
                    m.next = "OFFER"
                with m.Else():
                    m.d.sync += beat_byte.eq(beat_byte + 1)
                    m.next = "FETCH"
            with m.State("OFFER"):
                for i, sink in enumerate(self.to_core):
                    m.d.comb += sink.valid.eq(target == i)
                with m.If(target_ready):
                    with m.If(read_addr == length):
                        m.next = "ACK"
                    with m.Else():
                        m.next = "FETCH"
            with m.State("ACK"):
                with m.If(~reply_pending):
                    post(Command.ACK, 3, target, beats)
                    with m.Switch(target):
                        for i, counter in enumerate(acknowledged):
                            with m.Case(i):
                                m.d.sync += counter.eq(counter + beats)
                    m.next = "HUNT"
            with m.State("TRUNCATED"):
                with m.If(~reply_pending):
                    post(Command.ERROR, 1, ErrorCode.TRUNCATED)
                    m.next = "HUNT"

        m.d.comb += self.busy.eq(fsm.ongoing("FETCH") | fsm.ongoing("SHIFT")
                                 | fsm.ongoing("OFFER") | fsm.ongoing("ACK"))
        receiving = Signal()
        m.d.comb += receiving.eq(~fsm.ongoing("HUNT") & ~self.busy)
        return receiving

    def _collector(self, m, buffer_write, sent):
        """The core's output beats into the read buffer. Returns ``(full, stream, length,
        sent_pulse)``: the buffer is ready to send as a ``READ`` of ``stream`` with a
        payload of ``length`` bytes; the sender pulses ``sent_pulse`` when it has gone."""
        count = len(self._sources)
        most_bytes = max(self.source_beat_bytes)
        current = Signal(range(count))
        length = Signal(range(self._max_payload + 1), init=1)    # the stream byte, beats
        beats = Signal(range(max(self.read_frame_beats) + 1))
        beat_byte = Signal(range(most_bytes))
        flush_timer = Signal(range(self._flush_cycles))
        sent_pulse = Signal()
        last_of_beat = beat_byte == Array(Const(n - 1, range(most_bytes))
                                          for n in self.source_beat_bytes)[current]
        full_length = Array(Const(1 + n * beats_, range(self._max_payload + 1))
                            for n, beats_ in zip(self.source_beat_bytes,
                                                 self.read_frame_beats))[current]
        current_valid = Array(source.valid for source in self.from_core)[current]
        following = Mux(current == count - 1, 0, current + 1)
        # The beat's bytes are stored straight from the payload, which holds while valid
        # is high; the beat is taken with its last byte (no copy of it in flip-flops).
        payload_byte = Signal(8)
        with m.Switch(current):
            for i, source in enumerate(self.from_core):
                with m.Case(i):
                    payload = Value.cast(source.payload)
                    m.d.comb += payload_byte.eq(Array(
                        payload.word_select(k, 8) for k in range(self.source_beat_bytes[i])
                    )[beat_byte])

        with m.FSM(name="collector") as fsm:
            with m.State("COLLECT"):
                with m.If(current_valid):
                    m.next = "STORE"
                with m.Elif(length == 1):
                    m.d.sync += current.eq(following)
                with m.Elif(flush_timer == 0):
                    m.next = "FULL"
                with m.Else():
                    m.d.sync += flush_timer.eq(flush_timer - 1)
            with m.State("STORE"):
                m.d.comb += [buffer_write.en.eq(1), buffer_write.addr.eq(length),
                             buffer_write.data.eq(payload_byte)]
                m.d.sync += length.eq(length + 1)
                with m.If(last_of_beat):
                    for i, source in enumerate(self.from_core):
                        m.d.comb += source.ready.eq(current == i)
                    m.d.sync += [beat_byte.eq(0), beats.eq(beats + 1),
                                 flush_timer.eq(self._flush_cycles - 1)]
                    with m.If(length + 1 == full_length):
                        m.next = "FULL"
                    with m.Else():
                        m.next = "COLLECT"
                with m.Else():
                    m.d.sync += beat_byte.eq(beat_byte + 1)
            with m.State("FULL"):
                with m.If(sent_pulse):
                    with m.Switch(current):
                        for i, counter in enumerate(sent):
                            with m.Case(i):
                                m.d.sync += counter.eq(counter + beats)
                    m.d.sync += [length.eq(1), beats.eq(0), current.eq(following)]
                    m.next = "COLLECT"
        return fsm.ongoing("FULL"), current, length, sent_pulse

    def _sender(self, m, transmitter, send_read, reply_pending,
                reply_command, reply_length, reply_arg, reply_count, counters,
                read_full, read_stream, read_length, read_sent):
        """Whole frames to the transmitter: the reply, else the full read buffer. Returns
        a signal that is high while a frame is being sent."""
        out = transmitter.data
        accepted = out.valid & out.ready
        command = Signal(8)
        length = Signal(range(self._max_payload + 1))
        index = Signal(range(self._max_payload))
        next_index = index + 1
        crc = Signal(16)

        stored = Signal(8)            # the word FETCH read from the send memory
        payload_byte = Signal(8)
        with m.Switch(command):
            with m.Case(Command.ACK):
                m.d.comb += payload_byte.eq(Array([reply_arg, reply_count[:8],
                                                   reply_count[8:]])[index])
            with m.Case(Command.ID):
                m.d.comb += payload_byte.eq(stored)
            with m.Case(Command.READ):
                m.d.comb += payload_byte.eq(Mux(index == 0, read_stream, stored))
            with m.Case(Command.STATE):
                status = Cat(self.frame_error, self.core_error)
                state_bytes = [status] + [counter.word_select(k, 8) for counter in counters
                                          for k in range(COUNTER_BYTES)]
                m.d.comb += payload_byte.eq(Array(state_bytes)[index])
            with m.Case(Command.ERROR):
                m.d.comb += payload_byte.eq(reply_arg)

        def send(value, then):
            m.d.comb += [out.valid.eq(1), out.payload.eq(value)]
            with m.If(accepted):
                m.next = then

        with m.FSM(name="sender") as fsm:
            with m.State("IDLE"):
                with m.If(reply_pending):
                    m.d.sync += [command.eq(reply_command), length.eq(reply_length)]
                    m.next = "SYNC"
                with m.Elif(read_full):
                    m.d.sync += [command.eq(Command.READ), length.eq(read_length)]
                    m.next = "SYNC"
            with m.State("SYNC"):
                send(SYNC, "COMMAND")
                m.d.sync += crc.eq(CRC_INIT)
            with m.State("COMMAND"):
                send(command, "LENGTH_LOW")
            with m.State("LENGTH_LOW"):
                send(length[:8], "LENGTH_HIGH")
            with m.State("LENGTH_HIGH"):
                # every frame the bridge sends has a payload
                send(length >> 8, "FETCH")
                m.d.sync += index.eq(0)
            with m.State("FETCH"):
                m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                send(payload_byte, "FETCH")
                with m.If(accepted):
                    m.d.sync += index.eq(next_index)
                    with m.If(next_index == length):
                        m.next = "CRC_LOW"
            with m.State("CRC_LOW"):
                send(crc[:8], "CRC_HIGH")
            with m.State("CRC_HIGH"):
                send(crc[8:], "IDLE")
                with m.If(accepted):
                    with m.If(command == Command.READ):
                        m.d.comb += read_sent.eq(1)
                    with m.Else():
                        m.d.sync += reply_pending.eq(0)
        with m.If(accepted & (fsm.ongoing("COMMAND") | fsm.ongoing("LENGTH_LOW")
                              | fsm.ongoing("LENGTH_HIGH") | fsm.ongoing("PAYLOAD"))):
            m.d.sync += crc.eq(_crc_step(crc, out.payload))
        # The payload byte index of a READ is at address index, of the ID at
        # ident_base + index.
        m.d.comb += send_read.addr.eq(Cat(index, command == Command.ID))
        with m.If(fsm.ongoing("FETCH") & ((command == Command.READ) | (command == Command.ID))):
            m.d.sync += stored.eq(send_read.data)
        return ~fsm.ongoing("IDLE")
