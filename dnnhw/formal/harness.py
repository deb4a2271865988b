"""A formal top around any component: free, rule-abiding producers on its input streams,
free consumers on its output streams, and the bookkeeping properties are written in.

Scheme
------
Every stream port is found by walking the component's signature (arrays of streams
included). On an input stream the harness is the producer: ``valid`` and ``payload`` are
``AnySeq`` (the solver picks them every cycle) under the stream rule as an assumption
(once ``valid`` is high without ``ready``, next cycle ``valid`` is high and the payload is
the same). On an output stream it is the consumer: ``ready`` is ``AnySeq``, so every stall
pattern is explored. Plain inputs that are not streams are ``AnySeq`` too, unless a
property file names them in ``constant_inputs`` (configuration a core expects held: those
get one ``AnyConst`` value for the whole trace).

The sync domain is the harness's own, without reset: registers start from their reset
values in the first step (the state after a reset) and reset never rises again, which is
how the cores are used between frames. Its clock is a port of the top so that Yosys keeps
every flip-flop (an undriven clock makes them constants).

Nothing here asserts anything: properties (:mod:`dnnhw.formal.properties`) add their
``Assert`` and ``Cover`` statements to :attr:`FormalHarness.m`.
"""

import itertools

from amaranth.asserts import AnyConst, AnySeq
from amaranth.back import rtlil
from amaranth.hdl import Assume, ClockDomain, Module, ResetSignal, Signal, Value
from amaranth.lib import stream
from amaranth.lib.wiring import Flow


__all__ = ["FormalHarness", "stream_ports"]


def stream_ports(component):
    """``(name, flow, interface)`` of every stream port of ``component``, in signature
    order; an array of streams gives one entry per element (``inputs[0]``, ...)."""
    ports = []
    for name, member in component.signature.members.items():
        if not (member.is_signature and isinstance(member.signature, stream.Signature)):
            continue
        interface = getattr(component, name)
        for index in itertools.product(*(range(d) for d in member.dimensions)):
            element = interface
            for i in index:
                element = element[i]
            label = name + "".join(f"[{i}]" for i in index)
            ports.append((label, member.flow, element))
    return ports


class FormalHarness:
    """The formal top of one component.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        Elaborated once, as the harness's submodule ``dut``.
    constant_inputs : iterable of str
        Plain (non-stream) input ports held at one free value for the whole trace.

    Members
    -------
    m : Module
        The top; properties add statements to it.
    dut : Component
    inputs, outputs : dict of str to stream interface
        The component's input and output streams by name (``i``, ``inputs[1]``).
    """

    def __init__(self, component, *, constant_inputs=()):
        constant_inputs = set(constant_inputs)
        self.m = m = Module()
        self._domain = m.domains.sync = ClockDomain("sync")
        m.d.comb += ResetSignal("sync").eq(0)
        self.dut = m.submodules.dut = component
        self.inputs, self.outputs = {}, {}
        for name, flow, port in stream_ports(component):
            if flow == Flow.In:
                self.inputs[name] = port
                self._produce(name, port)
            else:
                self.outputs[name] = port
                if not port.signature.always_ready:
                    m.d.comb += port.ready.eq(AnySeq(1))
        plain_inputs = [name for name, member in component.signature.members.items()
                        if member.is_port and member.flow == Flow.In]
        for name in sorted(constant_inputs - set(plain_inputs)):
            raise ValueError(f"constant_inputs names '{name}', which is not a plain input "
                             f"port of {type(component).__name__} (those are: "
                             f"{', '.join(plain_inputs) or 'none'})")
        for name in plain_inputs:
            port = getattr(component, name)
            free = AnyConst if name in constant_inputs else AnySeq
            m.d.comb += port.eq(free(port.shape()))

    def _produce(self, name, port):
        m = self.m
        label = name.replace("[", "_").replace("]", "")
        payload = Value.cast(port.payload)
        if not port.signature.always_valid:
            m.d.comb += port.valid.eq(AnySeq(1))
        m.d.comb += port.payload.eq(AnySeq(len(payload)))
        if port.signature.always_ready:
            return
        # The producer's side of the rule, as an assumption: a beat offered and not taken
        # is offered again, unchanged.
        waiting = Signal(name=f"{label}_waiting")
        held = Signal(len(payload), name=f"{label}_held")
        m.d.sync += [waiting.eq(port.valid & ~port.ready), held.eq(payload)]
        with m.If(waiting):
            m.d.comb += [Assume(port.valid), Assume(payload == held)]

    def transfer(self, port):
        """1 in a cycle in which ``port`` (an interface of :attr:`inputs` or
        :attr:`outputs`) transfers a beat."""
        return port.valid & port.ready

    def counter(self, name, increment, *, width=8):
        """A register counting the cycles in which ``increment`` (1 bit, or a number to
        add) is non-zero; wide enough for any trace the properties check (it wraps at
        ``2 ** width``)."""
        count = Signal(width, name=name)
        self.m.d.sync += count.eq(count + increment)
        return count

    def rtlil(self):
        """The top as RTLIL text for Yosys (``platform="formal"``)."""
        return rtlil.convert(self.m, platform="formal", ports=[self._domain.clk],
                             name="top")

