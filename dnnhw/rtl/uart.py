"""An 8N1 UART: a transmitter and a receiver, ``divisor`` clock cycles a bit.

The contract is docs/board.md section 1. A byte on the line is a start bit (low), the
eight data bits least significant first and a stop bit (high): ten bit times, and the
line idles high.

The transmitter sends back to back at the full line rate: it takes the next byte in the
last cycle of the stop bit, so a byte offered in time starts its start bit right after.

The receiver samples every bit at its middle, counted from the falling edge that begins
the start bit (``divisor // 2`` cycles after the synchronized edge, then every
``divisor``), so a sender's clock may be off by a few percent. The last sample, the stop
bit's, comes 9.5 bit times after the edge and up to a cycle late (the edge is seen up to
a cycle late), and must fall inside the sender's stop bit: at an even divisor a sender
may be slow by 5.5 % and fast by ``5 - 10 / divisor`` % (4.9 % at divisor 104, 3.75 % at
8, 2.5 % at 4). The start bit is checked at its middle too: a low glitch shorter than
``divisor // 2`` cycles (half a bit at an even divisor) is not a byte. A stop bit read low is a framing error: the byte is dropped, ``error`` pulses, and
the receiver waits for the line to go high again before it looks for the next start bit
(a line held low, a *break*, is one error rather than one every ten bit times).
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ._checks import check_int


__all__ = ["UARTReceiver", "UARTTransmitter"]


BITS_PER_BYTE = 10       # start, eight data bits, stop


def _check_divisor(divisor):
    return check_int("divisor", divisor, 2, 1 << 16)


class UARTTransmitter(wiring.Component):
    """8N1 transmitter.

    Parameters
    ----------
    divisor : int
        Clock cycles a bit (``clock_hz / baud``, rounded), 2 .. 2 ** 16.

    Members
    -------
    data : In(stream.Signature(8))
        Bytes to send. ``ready`` is high while the line is idle and in the last cycle of a
        stop bit; the start bit begins in the cycle after the transfer.
    tx : Out(1)
        The line, straight from a flip-flop; high when idle.
    """

    def __init__(self, *, divisor):
        self._divisor = _check_divisor(divisor)
        super().__init__({
            "data": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        })

    @property
    def divisor(self):
        return self._divisor

    @property
    def cycles_per_byte(self):
        """Cycles a byte takes on the line, back to back: ten bit times."""
        return BITS_PER_BYTE * self._divisor

    def elaborate(self, platform):
        m = Module()
        # The frame still to send, least significant bit on the line; ones shift in
        # behind it, so the line is high once it is out.
        frame = Signal(BITS_PER_BYTE, init=(1 << BITS_PER_BYTE) - 1)
        bits_left = Signal(range(BITS_PER_BYTE + 1))    # including the one on the line
        bit_timer = Signal(range(self._divisor))         # cycles left of that bit, minus 1
        last_cycle_of_frame = (bits_left == 1) & (bit_timer == 0)
        m.d.comb += [
            self.tx.eq(frame[0]),
            self.data.ready.eq((bits_left == 0) | last_cycle_of_frame),
        ]
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += [
                frame.eq(Cat(0, self.data.payload, 1)),
                bits_left.eq(BITS_PER_BYTE),
                bit_timer.eq(self._divisor - 1),
            ]
        with m.Elif(bits_left != 0):
            with m.If(bit_timer == 0):
                m.d.sync += [
                    frame.eq(Cat(frame[1:], 1)),
                    bits_left.eq(bits_left - 1),
                    bit_timer.eq(self._divisor - 1),
                ]
            with m.Else():
                m.d.sync += bit_timer.eq(bit_timer - 1)
        return m


class UARTReceiver(wiring.Component):
    """8N1 receiver with a two-flop synchronizer and a one-byte holding register.

    Parameters
    ----------
    divisor : int
        Clock cycles a bit, 2 .. 2 ** 16.

    Members
    -------
    rx : In(1)
        The line (asynchronous; synchronized inside). Idle high.
    data : Out(stream.Signature(8))
        The holding register: a received byte stays ``valid`` until taken.
    error : Out(1)
        One-cycle pulse: a framing error (the stop bit read low); the byte is dropped.
    overrun : Out(1)
        One-cycle pulse: a byte arrived while the holding register was full (and not
        being emptied in that cycle); the new byte is lost, the held one kept.
    """

    def __init__(self, *, divisor):
        self._divisor = _check_divisor(divisor)
        super().__init__({
            "rx": In(1, init=1),
            "data": Out(stream.Signature(8)),
            "error": Out(1),
            "overrun": Out(1),
        })

    @property
    def divisor(self):
        return self._divisor

    @property
    def cycles_per_byte(self):
        """Cycles a byte takes on the line at the nominal rate: ten bit times."""
        return BITS_PER_BYTE * self._divisor

    @property
    def start_sample_delay(self):
        """Cycles from the synchronized falling edge to the start bit's sample."""
        return self._divisor // 2

    def elaborate(self, platform):
        m = Module()
        line = Signal(init=1)
        m.submodules.synchronizer = FFSynchronizer(self.rx, line, init=1)

        bit_timer = Signal(range(self._divisor))
        data_bit = Signal(range(8))
        shift = Signal(8)
        held = Signal(8)
        held_valid = Signal()
        m.d.comb += [self.data.valid.eq(held_valid), self.data.payload.eq(held)]
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += held_valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += bit_timer.eq(self.start_sample_delay - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(bit_timer == 0):
                    m.d.sync += [bit_timer.eq(self._divisor - 1), data_bit.eq(0)]
                    # Still low at its middle: a start bit; high: a glitch, ignored.
                    with m.If(~line):
                        m.next = "DATA"
                    with m.Else():
                        m.next = "IDLE"
                with m.Else():
                    m.d.sync += bit_timer.eq(bit_timer - 1)
            with m.State("DATA"):
                with m.If(bit_timer == 0):
                    m.d.sync += [
                        shift.eq(Cat(shift[1:], line)),
                        data_bit.eq(data_bit + 1),
                        bit_timer.eq(self._divisor - 1),
                    ]
                    with m.If(data_bit == 7):
                        m.next = "STOP"
                with m.Else():
                    m.d.sync += bit_timer.eq(bit_timer - 1)
            with m.State("STOP"):
                with m.If(bit_timer == 0):
                    with m.If(line):
                        with m.If(held_valid & ~self.data.ready):
                            m.d.comb += self.overrun.eq(1)
                        with m.Else():
                            m.d.sync += [held.eq(shift), held_valid.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.comb += self.error.eq(1)
                        m.next = "BREAK"
                with m.Else():
                    m.d.sync += bit_timer.eq(bit_timer - 1)
            with m.State("BREAK"):
                with m.If(line):
                    m.next = "IDLE"
        return m
