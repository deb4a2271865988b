"""What a core's proof file is made of: :class:`Property` records, the stream rules every
output stream gets, and the building blocks of counting and liveness properties.

A core's proof file (named by its catalog row, ``proofs="module:function"``) defines
``function(component) -> tuple of Property``; ``component`` is an instance at the
parameters being proved, to read its sizes from. Each property is one SymbiYosys run on
a fresh :class:`~dnnhw.formal.harness.FormalHarness`, so its verdict is its own.
"""

from dataclasses import dataclass

from amaranth.asserts import AnyConst
from amaranth.hdl import Assert, Cover, Signal, Value
from amaranth.lib.wiring import Flow

from .harness import stream_ports


__all__ = ["KINDS", "Property", "stream_properties", "bounded_stream_properties",
           "output_holds", "stays_within",
           "no_stall_longer_than", "consecutive", "cover", "track", "INDEX_BITS"]

#: How a property is checked: ``prove`` (k-induction to ``depth``: holds in every
#: reachable state), ``bmc`` (bounded model check: holds in the first ``depth`` cycles
#: from reset) or ``cover`` (some trace of at most ``depth`` cycles reaches every
#: ``Cover``: the property it stands beside is not vacuous).
KINDS = ("prove", "bmc", "cover")

#: Bits of a tracked index (:func:`track`): beats a trace of any depth used here can hold.
INDEX_BITS = 6


@dataclass(frozen=True)
class Property:
    """One claim about a core, checked by one SymbiYosys run.

    Members
    -------
    name : str
        Unique within a core (``dnnhw prove CORE --only NAME``).
    claim : str
        The claim in one sentence, as the verdict table prints it.
    kind : str
        One of :data:`KINDS`.
    depth : int
        Induction depth, BMC depth or cover depth, in cycles.
    add : callable
        ``add(harness)`` adds the property's ``Assert`` (or ``Cover``) statements.
    deep : bool
        Too slow for every run: ``dnnhw prove --deep`` and the slow test tier check it.
    constant_inputs : tuple of str
        Plain input ports held at one free value (see :class:`FormalHarness`).
    """
    name: str
    claim: str
    kind: str
    depth: int
    add: object
    deep: bool = False
    constant_inputs: tuple = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Property kind must be one of {', '.join(KINDS)}, "
                             f"got {self.kind!r}")
        if not isinstance(self.depth, int) or isinstance(self.depth, bool) \
                or not 1 <= self.depth <= 1000:
            raise ValueError(f"Property depth must be an integer in 1..1000, "
                             f"got {self.depth!r}")


def output_holds(harness, name):
    """Assert the stream rule on output ``name``: once ``valid`` is high without
    ``ready``, next cycle ``valid`` is still high and the payload unchanged."""
    m, port = harness.m, harness.outputs[name]
    payload = Value.cast(port.payload)
    waiting = Signal(name="rule_waiting")
    held = Signal(len(payload), name="rule_held")
    m.d.sync += [waiting.eq(port.valid & ~port.ready), held.eq(payload)]
    with m.If(waiting):
        m.d.comb += [Assert(port.valid, f"{name}.valid dropped before its transfer"),
                     Assert(payload == held, f"{name}.payload changed before its transfer")]


def stream_properties(component, *, kind="prove", depth=4, deep=False, constant_inputs=()):
    """The stream rule on every output stream of ``component`` that has a ``ready``, each
    proved by k-induction: where the held beat is a function of the registers that hold
    it, it needs no invariant of the core's state. The catalog's default proof file, and
    the first properties of every core's own."""
    return tuple(
        Property(name=f"{name}-holds", kind=kind, depth=depth, deep=deep,
                 constant_inputs=constant_inputs,
                 claim=f"{name}: once valid rises, it and the payload hold until the "
                       f"transfer",
                 add=lambda harness, name=name: output_holds(harness, name))
        for name, flow, port in stream_ports(component)
        if flow == Flow.Out and not port.signature.always_ready)


def bounded_stream_properties(component):
    """:func:`stream_properties` by BMC to depth 20, for a core whose output rule holds
    only in reachable states that k-induction does not tell from unreachable ones (deep:
    these cores are large, 20 to 60 s a port)."""
    return stream_properties(component, kind="bmc", depth=20, deep=True)


def stays_within(harness, count, bound, message):
    """Assert ``count <= bound`` (two counters of the harness) in every cycle."""
    harness.m.d.comb += Assert(count <= bound, message)


def _run_length(harness, condition, cycles, name):
    """A register counting the consecutive cycles of ``condition`` before this one,
    saturating at ``cycles``."""
    m = harness.m
    run = Signal(range(cycles + 1), name=name)
    with m.If(condition):
        with m.If(run != cycles):
            m.d.sync += run.eq(run + 1)
    with m.Else():
        m.d.sync += run.eq(0)
    return run


def no_stall_longer_than(harness, *, busy, progress, cycles, message):
    """Assert that ``busy`` never holds for ``cycles`` consecutive cycles without
    ``progress``: a bounded liveness property (the core never hangs while it owes work)."""
    stuck = _run_length(harness, busy & ~progress, cycles, "stuck_cycles")
    harness.m.d.comb += Assert(stuck < cycles, message)


def consecutive(harness, condition, cycles, name):
    """1 in a cycle that ends a run of ``cycles`` consecutive cycles of ``condition`` (for
    covers such as "full rate for four cycles")."""
    return condition & (_run_length(harness, condition, cycles, name) >= cycles - 1)


def cover(harness, condition, message):
    """Add a cover of ``condition``."""
    harness.m.d.comb += Cover(condition, message)


def track(harness, transfer, fields, name):
    """Record ``fields`` at the ``k``-th cycle of ``transfer``, for a free constant ``k``
    (the solver picks it, so a check of what is recorded holds for every ``k``). Returns
    ``(k, seen, recorded, count)``: ``seen`` once the ``k``-th transfer happened, ``count``
    the transfers so far (both :data:`INDEX_BITS` + 1 bits wide, so they never wrap)."""
    m = harness.m
    k = Signal(INDEX_BITS, name=f"{name}_k")
    m.d.comb += k.eq(AnyConst(INDEX_BITS))
    count = harness.counter(f"{name}_count", transfer, width=INDEX_BITS + 1)
    seen = Signal(name=f"{name}_seen")
    recorded = Signal(len(fields), name=f"{name}_recorded")
    with m.If(transfer & (count == k)):
        m.d.sync += [seen.eq(1), recorded.eq(fields)]
    return k, seen, recorded, count
