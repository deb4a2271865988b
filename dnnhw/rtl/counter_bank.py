"""Many wide event counters in one block RAM, each behind a narrow prescaler.

A bank of ``N`` counters of ``W`` bits in flip-flops costs ``N * W`` flip-flops, as many
adder cells and a ``W``-bit ``N``-to-1 read-out multiplexer: on the UP5K, 22 counters of
48 bits took about 1,400 of its 5,280 logic cells. Counters that only need reading after
the work is done can live in block RAM instead. Each counter keeps a prescaler in
flip-flops that takes its increments every cycle; one read-modify-write a cycle, round
robin, folds a prescaler into its word of the RAM and restarts it. A counter is visited
every ``N`` cycles, so its prescaler never holds more than ``N`` cycles of increments and
needs only ``ceil(log2(N * max_increment + 1))`` bits. The width of the counters then
costs RAM bits, not logic.

The folding lags the increments by up to ``N + 1`` cycles. ``settled`` says when the RAM
holds every count (no prescaler holds anything, no fold is in flight, no counter still
waits to be cleared); then the folding stops and the read port belongs to ``read_addr``.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ._checks import check_int
from .ram import BlockRam


__all__ = ["CounterBank"]


class CounterBank(wiring.Component):
    """``len(max_increments)`` counters of ``width`` bits (modulo ``2 ** width``).

    Parameters
    ----------
    max_increments : sequence of int
        Per counter, the most its increment can be in one cycle, 1 to 2 ** 16; 2 to 1024
        counters (one must not fold the counter it is reading).
    width : int
        Bits of a counter, 1 to 64.

    Members
    -------
    increments : In(StructLayout({"c0": range(max + 1), ...}))
        Each counter's increment this cycle. Counted unless ``clear`` is set.
    clear : In(1)
        Sets every counter to zero (this cycle's increments are dropped).
    settled : Out(1)
        Every increment and clear of the previous cycles is in the RAM. It falls in the
        cycle after an increment arrives and rises at most ``len(max_increments) + 1``
        cycles after the last one (``settle_cycles``).
    read_addr : In(range(count)), read_data : Out(width)
        While ``settled``, ``read_data`` is the counter ``read_addr`` named in the previous
        cycle; it is undefined after a cycle that was not settled.
    """

    def __init__(self, *, max_increments, width):
        max_increments = tuple(max_increments)
        check_int("len(max_increments)", len(max_increments), 2, 1024)
        for i, most in enumerate(max_increments):
            check_int(f"max_increments[{i}]", most, 1, 1 << 16)
        self._max_increments = max_increments
        self._width = check_int("width", width, 1, 64)
        super().__init__({
            "increments": In(data.StructLayout({
                f"c{i}": range(most + 1) for i, most in enumerate(max_increments)})),
            "clear": In(1),
            "settled": Out(1),
            "read_addr": In(range(len(max_increments))),
            "read_data": Out(width),
        })

    max_increments = property(lambda self: self._max_increments)
    width = property(lambda self: self._width)

    @property
    def count(self):
        return len(self._max_increments)

    @property
    def settle_cycles(self):
        """The most cycles from the last increment to ``settled``."""
        return self.count + 1

    def prescaler_bits(self, index):
        """Bits of counter ``index``'s prescaler: ``count`` cycles of its largest increment
        (it is folded every ``count`` cycles while anything is unsettled)."""
        return (self.count * self._max_increments[index]).bit_length()

    def elaborate(self, platform):
        m = Module()
        count, width = self.count, self._width
        m.submodules.ram = ram = BlockRam(shape=width, depth=count)

        prescalers = [Signal(self.prescaler_bits(i), name=f"prescaler{i}")
                      for i in range(count)]
        to_clear = Signal(count)          # a counter whose RAM word is stale, not zero
        turn = Signal(range(count))       # the counter folded next
        # The fold in flight: the RAM read its word last cycle; this cycle writes it back.
        folding = Signal()
        fold_addr = Signal(range(count))
        fold_add = Signal(max(len(p) for p in prescalers))
        fold_clear = Signal()

        # Nothing left to fold; settled once the last fold's write is done too.
        idle = Cat(*(p == 0 for p in prescalers)).all() & (to_clear == 0)
        m.d.comb += self.settled.eq(idle & ~folding)

        # The write half of a fold.
        m.d.comb += [ram.write_addr.eq(fold_addr), ram.write_en.eq(folding),
                     ram.write_data.eq(Mux(fold_clear, 0, ram.read_data) + fold_add)]

        # The read half: the next counter's word, unless nothing is left to fold, when the
        # port reads for the user (and once settled no read meets a write).
        increments = [self.increments[f"c{i}"] for i in range(count)]
        m.d.comb += [ram.read_en.eq(1), ram.read_addr.eq(Mux(idle, self.read_addr, turn))]
        m.d.comb += self.read_data.eq(ram.read_data)
        with m.If(self.clear):
            m.d.sync += [p.eq(0) for p in prescalers]
            m.d.sync += [to_clear.eq((1 << count) - 1), folding.eq(0)]
        with m.Elif(idle):
            m.d.sync += [p.eq(inc) for p, inc in zip(prescalers, increments)]
            m.d.sync += folding.eq(0)
        with m.Else():
            m.d.sync += [folding.eq(1), fold_addr.eq(turn),
                         turn.eq(Mux(turn == count - 1, 0, turn + 1))]
            with m.Switch(turn):
                for i in range(count):
                    with m.Case(i):
                        m.d.sync += [fold_add.eq(prescalers[i]), fold_clear.eq(to_clear[i]),
                                     to_clear[i].eq(0)]
            for i, (p, inc) in enumerate(zip(prescalers, increments)):
                m.d.sync += p.eq(Mux(turn == i, inc, p + inc))
        return m
