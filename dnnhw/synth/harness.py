"""Out-of-context harness: registers on every port of a component, a handful of pins.

The cores in this project have ports far wider than any package has pins (32 lanes x 32 bits
of stream payload is 1024 bits each way), so an out-of-context build cannot bring every port
bit to a pin. :class:`OutOfContext` wraps an arbitrary :class:`amaranth.lib.wiring.Component`
so that every input of the core is driven from a register and every output of the core lands
in a register, while the whole wrapper needs only four pins besides the clock and reset.
The Fmax nextpnr reports for the wrapped design is then a register-to-register figure of the
core itself.
"""

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


__all__ = ["PortSlice", "OutOfContext"]


@dataclass(frozen=True)
class PortSlice:
    """Where one port of the wrapped component sits in a scan chain.

    Members
    -------
    path : tuple of str
        The port's path in the component's signature, as yielded by
        :meth:`amaranth.lib.wiring.Signature.flatten` (e.g. ``("i", "payload")``).
    offset : int
        Index of the port's least significant bit in the chain.
    width : int
        Width of the port in bits.
    """
    path: tuple
    offset: int
    width: int

    @property
    def name(self):
        """The port name Amaranth gives the flattened port in generated code (``i__payload``)."""
        return "__".join(str(part) for part in self.path)


class OutOfContext(wiring.Component):
    """Registers on every port of ``component``, fed and observed through scan chains.

    Scheme
    ------
    Every port is found by walking ``component.signature.flatten(component)``. Ports whose
    value is a constant (e.g. the ``ready`` of an ``always_ready`` stream) carry no logic and
    are skipped. The remaining ports are packed, in flatten order and least significant bit
    first, into two chains:

    * **Input chain** (:attr:`i_chain`, :attr:`i_width` bits). Its register bits drive the
      core's inputs directly. While ``shift`` is high, the chain shifts one place towards
      bit 0 each cycle and ``si`` enters at the top bit, so shifting a vector in least
      significant bit first for :attr:`i_width` cycles leaves bit ``k`` of the vector at chain
      bit ``k``. While ``shift`` is low the chain holds. The shift enable maps onto the flip
      flops' clock enable, so the chain costs one flip-flop per bit and no LUT.
    * **Output chain** (:attr:`o_chain`, :attr:`o_width` bits), a parallel-load shift register
      that is also the capture register of the core's outputs. While ``load`` is high it
      loads every output of the core; otherwise, while ``shift`` is high, it shifts one place
      towards bit 0, its top bit taking bit 0 of the input chain (or ``si`` for a core without
      inputs), and ``so`` shows bit 0. After a load, ``so`` thus presents the output vector
      least significant bit first, one bit per shift cycle. The two chains form one scan chain
      ``si`` -> input chain -> output chain -> ``so`` of :attr:`i_width` + :attr:`o_width`
      flip-flops. The load/shift choice is one 2:1 multiplexer, i.e. one LUT, per bit.

    Why this shape: (a) every core output reaches the ``so`` pin through the output chain, so
    synthesis cannot prune any of the core's logic; (b) between harness registers there is at
    most one LUT (the output chain's multiplexer), so the harness never sets the critical path
    of any real core; (c) the design needs the pins ``si``, ``shift``, ``load``, ``so`` plus
    the ``sync`` domain's ``clk`` and ``rst``.

    Costs and their reasons. A port bit costs one logic cell on iCE40 (one flip-flop, plus the
    multiplexer LUT packed with it for an output bit): wide cores must still fit the UP5K's
    5280 cells with their harness. That is why the output chain doubles as the capture
    register instead of sitting behind a plain one, which would cost a second cell per output
    bit (a 32 x 32-bit stream core then failed to place on the UP5K). The price is that a
    *combinational* output of the core reaches its register through the multiplexer LUT;
    inside a larger design such an output also feeds at least one LUT of its consumer, so the
    figure stays realistic. Registered outputs see only the multiplexer, which is never
    critical. The harness registers have no reset (the scan data defines their state) so that
    they add no reset fan-out and share few control sets with the core's flip-flops. The
    control pins are deliberately not registered: as primary inputs their fan-out of
    thousands of flip-flops is timed by nextpnr as an I/O path, not as a register-to-register
    path of the core clock, so it does not pollute the Fmax figure.

    The core's ``sync`` domain is the harness's ``sync`` domain (``clk`` and ``rst`` reach the
    core only); a core that uses any other clock domain cannot be wrapped.

    Parameters
    ----------
    component : :class:`amaranth.lib.wiring.Component`
        The core to wrap. It becomes the submodule ``core``. It must have at least one
        non-constant output port, or there would be nothing to observe and synthesis would
        remove the whole core.

    Members
    -------
    si : ``In(1)``
        Scan input of the input chain.
    shift : ``In(1)``
        Shift both chains by one place.
    load : ``In(1)``
        Load the core's outputs into the output chain (has priority over ``shift``).
    so : ``Out(1)``
        Scan output, bit 0 of the output chain.
    """

    def __init__(self, component):
        if not isinstance(component, wiring.Component):
            raise TypeError(f"component must be an amaranth.lib.wiring.Component, "
                            f"not {component!r}")
        self._component = component

        inputs, outputs = [], []
        i_offset = o_offset = 0
        for path, member, value in component.signature.flatten(component):
            # Constant members (always_ready / always_valid streams) have no logic behind them
            # and cannot be driven, so they take no place in the chains.
            if isinstance(value, Const):
                continue
            width = len(Value.cast(value))
            if width == 0:
                continue
            if member.flow == In:
                inputs.append((PortSlice(path, i_offset, width), value))
                i_offset += width
            else:
                outputs.append((PortSlice(path, o_offset, width), value))
                o_offset += width
        if not outputs:
            raise ValueError(f"component {component!r} has no non-constant output port; "
                             f"an out-of-context build of it would synthesize to nothing")
        self._inputs = inputs
        self._outputs = outputs

        super().__init__({
            "si":    In(1),
            "shift": In(1),
            "load":  In(1),
            "so":    Out(1),
        })

        # Created here rather than in elaborate() so that testbenches can peek at them.
        self.i_chain = Signal(max(self.i_width, 1), reset_less=True)
        self.o_chain = Signal(self.o_width, reset_less=True)

    @property
    def component(self):
        """The wrapped core."""
        return self._component

    @property
    def inputs(self):
        """:class:`PortSlice` of every input port, in chain order."""
        return tuple(port for port, _ in self._inputs)

    @property
    def outputs(self):
        """:class:`PortSlice` of every output port, in chain order."""
        return tuple(port for port, _ in self._outputs)

    @property
    def i_width(self):
        """Length of the input chain in bits (0 for a core without inputs)."""
        return sum(port.width for port in self.inputs)

    @property
    def o_width(self):
        """Length of the output chain in bits."""
        return sum(port.width for port in self.outputs)

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = self._component

        if self.i_width > 0:
            for port, value in self._inputs:
                m.d.comb += Value.cast(value).eq(
                    self.i_chain[port.offset:port.offset + port.width])
            with m.If(self.shift):
                m.d.sync += self.i_chain.eq(Cat(self.i_chain[1:], self.si))

        # The output chain continues the input chain, so the two form one scan chain from `si`
        # to `so`. Shifting in anything but a constant also matters: a constant would become
        # the top flip-flop's synchronous reset, a control set of its own that nextpnr's HeAP
        # placer failed to legalize for a 32 x 32-bit core on the UP5K.
        chain_in = self.i_chain[0] if self.i_width > 0 else self.si
        with m.If(self.load):
            m.d.sync += self.o_chain.eq(Cat(Value.cast(value) for _, value in self._outputs))
        with m.Elif(self.shift):
            m.d.sync += self.o_chain.eq(Cat(self.o_chain[1:], chain_in))
        m.d.comb += self.so.eq(self.o_chain[0])

        return m
