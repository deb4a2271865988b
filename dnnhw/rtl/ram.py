"""A block RAM with a registered read, for memories whose reads never meet their writes.

Amaranth's synchronous read port promises the old word when a read meets a write to the
same address in the same cycle. No iCE40 or ECP5 block RAM promises that, so Yosys
builds it from logic: a word-wide register of the write data, one of the address, a
compare and a select per memory (measured: 65 flip-flops and 39 LUTs for a 512 x 27-bit
memory on the UP5K, against none). Where the design guarantees that a read never meets
a write to its word, that logic is waste. This RAM reads asynchronously into its own
output register and marks the memory ``no_rw_check``, which lets Yosys fold the register
into the block RAM's output with no collision logic (found on the ZVC queues). In
simulation it behaves like Amaranth's port: ``read_data`` loads the word at
``read_addr`` when ``read_en`` is set and holds otherwise.

A *single-port* RAM has one address: ``write_addr`` while ``write_en`` is set, else
``read_addr``, so a read and a write may not share a cycle (the caller's guarantee, like
the collisions). That is the shape of the UP5K's SPRAM; ``huge=True`` asks Yosys to put
the memory there (``ram_style = "huge"``: ``synth_ice40`` maps it to SB_SPRAM256KA
without its ``-spram`` switch, which would move other cores' memories too).

:func:`registered_read` is that registered read as a port of any Amaranth memory (a
ROM, a register file), for the other reason to avoid Amaranth's synchronous port: in
Verilog its data register has no initial value (Amaranth 0.5 leaves it undefined, so
that Yosys keeps inferring block RAMs) and the domain's reset does not clear it, where
Amaranth's simulator and Verilator start it at 0. Whatever it holds before the first read
after reset, undefined on a four-state simulator (Icarus) and in silicon, stays there
until a read.
"""

from types import SimpleNamespace

from amaranth.hdl import Module, Mux, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ._checks import check_bool, check_int


__all__ = ["BlockRam", "registered_read"]


def registered_read(m, memory, *, name, reset_less=False):
    """A synchronous read port of ``memory``: ``addr`` and ``en`` in, ``data`` (the word at
    ``addr`` the cycle after ``en``, held while it is low) out, as ``memory.read_port()``
    has them. An asynchronous read into a register of our own, :class:`BlockRam`'s read.

    Unlike Amaranth's port, ``data`` is 0 from power-up in the Verilog too, and (unless
    ``reset_less``) after every reset, so whatever it read before the reset (an undefined
    word, an address not yet decoded) is gone. Yosys still maps it to a block RAM and
    emulates the initial value and the reset the RAM's output register lacks, at about a
    LUT a bit; ``reset_less`` costs the same, for the initial value alone."""
    port = memory.read_port(domain="comb")
    enable = Signal(name=f"{name}_en")
    data = Signal(memory.shape, name=f"{name}_data", reset_less=reset_less)
    with m.If(enable):
        m.d.sync += data.eq(port.data)
    return SimpleNamespace(addr=port.addr, en=enable, data=data)


class BlockRam(wiring.Component):
    """``depth`` words of ``shape``: one write and one registered read a cycle.

    Parameters
    ----------
    shape : shape-castable
        A word: ``unsigned(n)``, ``signed(n)`` or an int width.
    depth : int
        Words, 1 .. 2 ** 24.
    single_port : bool
        One address for the read and the write (see the module's docstring).
    huge : bool
        Place the memory in the iCE40 UP5K's SPRAM; requires ``single_port``.

    Members
    -------
    read_addr : In(range(depth)), read_en : In(1)
    read_data : Out(shape)
        The word at ``read_addr``, the cycle after ``read_en`` (held while it is low,
        writes included; with ``huge`` a register of the word width keeps it across
        writes, since the SPRAM's output may change on a write). Never read a word in
        the cycle it is written: the result is undefined in hardware (old in
        simulation).
    write_addr : In(range(depth)), write_data : In(shape), write_en : In(1)
    """

    def __init__(self, *, shape, depth, single_port=False, huge=False):
        self._shape = Shape.cast(shape)
        self._depth = check_int("depth", depth, 1, 1 << 24)
        check_bool("single_port", single_port)
        check_bool("huge", huge)
        self._single_port, self._huge = single_port, huge
        if huge and not single_port:
            raise ValueError("huge (SPRAM) needs single_port=True: the SPRAM has one port")
        super().__init__({
            "read_addr": In(range(depth)),
            "read_en": In(1),
            "read_data": Out(self._shape),
            "write_addr": In(range(depth)),
            "write_data": In(self._shape),
            "write_en": In(1),
        })

    shape = property(lambda self: self._shape)
    depth = property(lambda self: self._depth)
    single_port = property(lambda self: self._single_port)
    huge = property(lambda self: self._huge)

    def elaborate(self, platform):
        m = Module()
        attrs = {"no_rw_check": 1}
        if self._huge:
            attrs["ram_style"] = "huge"
        m.submodules.memory = memory = Memory(shape=self._shape, depth=self._depth,
                                              init=[], attrs=attrs)
        write = memory.write_port()
        read = registered_read(m, memory, name="read", reset_less=True)
        if self._single_port:
            address = Signal(range(self._depth))
            m.d.comb += address.eq(Mux(self.write_en, self.write_addr, self.read_addr))
            m.d.comb += [write.addr.eq(address), read.addr.eq(address)]
        else:
            m.d.comb += [write.addr.eq(self.write_addr), read.addr.eq(self.read_addr)]
        m.d.comb += [write.data.eq(self.write_data), write.en.eq(self.write_en),
                     read.en.eq(self.read_en)]
        if not self._huge:
            m.d.comb += self.read_data.eq(read.data)
            return m
        # Yosys folds the read register into SB_SPRAM256KA's DATAOUT. Its mapping rule
        # says a write leaves DATAOUT as it was ("rdwr no_change"), but its cell model
        # makes it undefined, and TN1314 does not say: the word read is kept here, in the
        # cycle of the first write after the read, and served until the next read.
        kept = Signal(self._shape, name="kept")
        written = Signal(name="written")   # a write since the last read
        with m.If(self.read_en):
            m.d.sync += written.eq(0)
        with m.Elif(self.write_en):
            m.d.sync += written.eq(1)
            with m.If(~written):
                m.d.sync += kept.eq(read.data)
        m.d.comb += self.read_data.eq(Mux(written, kept, read.data))
        return m
