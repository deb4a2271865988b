"""A transpose buffer: tiles of ``rows`` frames of ``columns`` samples in, the same tiles
column by column out. ``docs/bandlimit-conv.md`` section 6 is the contract.

**Two banks, one memory.** A bank holds a tile of ``S = rows * columns`` samples; the
writer fills one bank in input order while the reader empties the other in transposed
order, then they swap. The writer is never in the bank being read, so one write port and
one read port serve both banks: a single memory of ``2 S`` words, bank 1 at words
``S .. 2 S - 1``. Two memories would need a write-enable demultiplexer and a read-data
multiplexer, and each would be rounded up to whole block RAMs on its own. The bank
offset is carried in the address registers (no adder on the address, no multiplier), so
the depth is exactly ``2 S`` even when ``S`` is not a power of two.

**Addresses.** The writer's address counts ``0 .. 2 S - 1`` and wraps. The reader visits
input position ``a * columns + b`` for ``b = 0 .. columns - 1`` (a frame out), ``a = 0 ..
rows - 1`` (within it): its address steps by ``columns`` within a frame and restarts at
the frame's column ``base + b + 1`` after it.

**Flow.** A bank is *full* from the cycle after its last sample was written until its
last sample has been read. The writer waits while its bank is full; the reader reads
only a full bank. So a read never meets a write to the same word, and the memory is a
:class:`~dnnhw.rtl.ram.BlockRam` with no collision logic. The memory's read register is
the output payload: a read is issued when the output register is empty or being taken
this cycle, and the register holds while ``output.ready`` is low, so no sample needs a
skid entry.
"""

from amaranth.hdl import Module, Mux, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ._checks import check_int
from .ram import BlockRam


__all__ = ["TransposeBuffer"]


#: Largest ``rows`` or ``columns``.
MAX_SIDE = 4096
#: Largest tile (``rows * columns`` samples; the memory holds two).
MAX_TILE = 1 << 16


class TransposeBuffer(wiring.Component):
    """Transposes tiles: ``rows`` frames of ``columns`` samples in, ``columns`` frames of
    ``rows`` samples out; output position ``b * rows + a`` of a tile is its input position
    ``a * columns + b``.

    Tiles are consecutive groups of ``rows * columns`` samples (no framing signal). Tile
    ``t + 1`` is written while tile ``t`` is read: with the input valid and the output
    ready, one sample a cycle goes in and one comes out, tiles back to back. A tile's
    first sample comes out :attr:`latency` cycles after its last went in; nothing comes
    out of a tile before it is whole.

    Parameters
    ----------
    rows : int
        Frames of an input tile, 1 .. 4096.
    columns : int
        Samples of an input frame, 1 .. 4096; ``rows * columns`` at most 65536.
    shape : shape-castable
        A sample (a ``data`` layout, ``signed(n)``, a width...), at least one bit.

    Members
    -------
    input : In(stream.Signature(shape))
        Tiles in, row-major. ``ready`` is low while the bank being written still holds a
        tile not read out; it is a register's output (it depends on no input of this
        cycle).
    output : Out(stream.Signature(shape))
        The tiles transposed, in order. ``valid`` is a register and ``payload`` the
        memory's read register; both hold until the transfer.
    """

    def __init__(self, *, rows, columns, shape):
        check_int("rows", rows, 1, MAX_SIDE)
        check_int("columns", columns, 1, MAX_SIDE)
        if rows * columns > MAX_TILE:
            raise ValueError(f"rows * columns must be in 1..{MAX_TILE}, got "
                             f"{rows} * {columns} = {rows * columns}")
        try:
            width = Shape.cast(shape).width
        except TypeError:
            raise TypeError(f"shape must be a shape-castable object (a width, signed(n), a "
                            f"data layout...), got {shape!r}") from None
        if width < 1:
            raise ValueError(f"shape must be at least 1 bit wide, got {shape!r}")
        self._rows, self._columns, self._shape = rows, columns, shape
        super().__init__({
            "input": In(stream.Signature(shape)),
            "output": Out(stream.Signature(shape)),
        })

    rows = property(lambda self: self._rows)
    columns = property(lambda self: self._columns)
    shape = property(lambda self: self._shape)

    @property
    def tile_samples(self):
        """``rows * columns``: the samples of a tile, the words of a bank."""
        return self._rows * self._columns

    @property
    def depth(self):
        """Words of the memory: two banks, ``2 * tile_samples``."""
        return 2 * self.tile_samples

    @property
    def latency(self):
        """Cycles from a tile's last sample in to its first sample out, with the output
        ready: 2 (the bank is full the cycle after, whose read lands in the read register
        the cycle after that)."""
        return 2

    def elaborate(self, platform):
        m = Module()
        rows, columns, tile = self._rows, self._columns, self.tile_samples
        m.submodules.ram = ram = BlockRam(shape=Shape.cast(self._shape).width,
                                          depth=self.depth)

        full = Signal(2)                  # per bank: holds a whole tile not yet read out

        # --- Writer: input order, the address runs through both banks. ---
        write_bank = Signal()
        write_addr = Signal(range(self.depth))
        push = Signal()
        m.d.comb += [
            self.input.ready.eq(~full.bit_select(write_bank, 1)),
            push.eq(self.input.valid & self.input.ready),
            ram.write_en.eq(push),
            ram.write_addr.eq(write_addr),
            ram.write_data.eq(self.input.payload),
        ]
        with m.If(push):
            m.d.sync += write_addr.eq(Mux(write_addr == self.depth - 1, 0, write_addr + 1))
            with m.If((write_addr == tile - 1) | (write_addr == self.depth - 1)):
                m.d.sync += [write_bank.eq(~write_bank),
                             full.bit_select(write_bank, 1).eq(1)]

        # --- Reader: column b of the tile is frame b out. ---
        read_bank = Signal()
        read_addr = Signal(range(self.depth))
        column_addr = Signal(range(self.depth))   # the bank's base + b
        read_row = Signal(range(rows))            # a
        read_column = Signal(range(columns))      # b
        out_valid = Signal()
        read = Signal()
        m.d.comb += [
            read.eq(full.bit_select(read_bank, 1) & (~out_valid | self.output.ready)),
            ram.read_en.eq(read),
            ram.read_addr.eq(read_addr),
            self.output.valid.eq(out_valid),
            self.output.payload.eq(ram.read_data),
        ]
        with m.If(read):
            m.d.sync += out_valid.eq(1)
            with m.If(read_row != rows - 1):
                m.d.sync += [read_row.eq(read_row + 1), read_addr.eq(read_addr + columns)]
            with m.Elif(read_column != columns - 1):
                m.d.sync += [read_row.eq(0), read_column.eq(read_column + 1),
                             column_addr.eq(column_addr + 1),
                             read_addr.eq(column_addr + 1)]
            with m.Else():
                # The tile's last word: the writer is in the other bank (this one is
                # full), so it sets no flag of this bank in this cycle.
                next_base = Mux(read_bank, 0, tile)
                m.d.sync += [read_row.eq(0), read_column.eq(0),
                             column_addr.eq(next_base), read_addr.eq(next_base),
                             read_bank.eq(~read_bank),
                             full.bit_select(read_bank, 1).eq(0)]
        with m.Elif(self.output.ready):
            m.d.sync += out_valid.eq(0)
        return m
