"""Stream drivers and monitors for ``amaranth.lib.stream`` ports, built from the sidecar.

:class:`PayloadFormat`
    Packs a payload dict into the flat port integer and back, from the sidecar's
    ``fields`` (offsets and widths; arrays as lists of ints); it lives in
    :mod:`dnnhw.sim.payload`, free of cocotb, and is re-exported here.
:class:`StreamSource`
    Drives a DUT sink (``i``): sends queued payloads, holding ``valid`` low in the cycles
    its stall pattern says (``pause``, see :mod:`dnnhw.sim.stalls`; ``idle=p`` is the
    ``random`` pattern with probability ``p``), and once raised holds ``valid`` and the
    payload until the transfer. On idle cycles it scrambles the payload (a DUT must not
    look at it while ``valid`` is low).
:class:`StreamSink`
    Drives a DUT source's ``ready`` low in the cycles its stall pattern says
    (``backpressure=p``: the ``random`` pattern) and collects what is transferred. It
    checks the stream rules on the DUT side: once ``valid`` is high it stays high, with a
    stable payload, until the transfer; a violation fails the test at once
    (:class:`StreamProtocolError`).

Timing, race-free with Verilator and Icarus: inputs are written just after a rising
edge, and handshakes are sampled in the ``ReadOnly`` phase of the same cycle, when
everything combinational has settled. A transfer "at cycle c" happens on the edge that
ends cycle ``c``; cycle numbers count clock periods from time zero, so numbers from a
source and a sink on the same clock compare directly (latency = sink cycle - source
cycle; a registered stage has latency 1).

Both ends record the cycle of every transfer, so throughput (transfers per cycle over
their active window) and latencies follow from :meth:`stats` and ``cycles``.
"""

import collections
import random

import cocotb
from cocotb.triggers import Event, ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from .payload import PayloadFormat
from .stalls import stall_pattern


__all__ = ["PayloadFormat", "StreamSource", "StreamSink", "StreamProtocolError",
           "stream_stats"]


class StreamProtocolError(AssertionError):
    """The DUT broke a stream rule (valid dropped or payload changed before ready)."""


def _cycle(period_ns):
    return round(get_sim_time(unit="ns") / period_ns)


def stream_stats(cycles):
    """Transfers, first/last cycle, active cycles and transfers per active cycle of a
    list of transfer cycle numbers."""
    n = len(cycles)
    if not n:
        return {"beats": 0, "first_cycle": None, "last_cycle": None,
                "active_cycles": 0, "beats_per_cycle": None}
    active = cycles[-1] - cycles[0] + 1
    return {"beats": n, "first_cycle": cycles[0], "last_cycle": cycles[-1],
            "active_cycles": active, "beats_per_cycle": n / active}


class _StreamEnd:
    def __init__(self, dut, sidecar, name, *, period_ns, seed):
        entry = sidecar["streams"][name]
        self.name = name
        self.format = PayloadFormat(entry)
        self.valid = getattr(dut, entry["valid"])
        self.ready = getattr(dut, entry["ready"])
        self.payload = getattr(dut, entry["payload"])
        self.clk = getattr(dut, sidecar["clock"])
        self.period_ns = period_ns
        self.rng = random.Random(seed)
        self.cycles = []          # cycle number of every transfer
        self._task = None

    def start(self):
        """Start driving (after reset). Returns self."""
        if self._task is None:
            self._task = cocotb.start_soon(self._run())
        return self

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def stats(self):
        return stream_stats(self.cycles)

    def _pattern(self, pause, probability, knob):
        """The stall pattern from ``pause`` (a spec) or the legacy probability knob."""
        if pause is not None:
            if probability:
                raise ValueError(f"give {knob}= or pause=, not both")
            self.pattern = stall_pattern(pause)
        else:
            if not 0.0 <= probability < 1.0:
                raise ValueError(f"{knob} must be in [0, 1), got {probability}")
            self.pattern = stall_pattern(float(probability) if probability else None)
        # Random patterns draw from this end's generator (the source also scrambles
        # idle payloads with it, in between: the order the benches always had).
        self._pauses = self.pattern.iterate(self.rng)

    def clear_stats(self):
        self.cycles = []


class StreamSource(_StreamEnd):
    """Drive the DUT's sink stream ``name`` (default ``"i"``).

    Items are payload dicts (packed with :class:`PayloadFormat`) or ints (already
    packed). ``pause`` is a stall-pattern spec (:func:`dnnhw.sim.stalls.stall_pattern`),
    asked once per cycle in which a queued item could be offered; ``idle`` is the
    shorthand for ``pause={"name": "random", "probability": idle}``. The pattern is
    ``.pattern``.
    """

    def __init__(self, dut, sidecar, name="i", *, idle=0.0, pause=None, period_ns=10,
                 seed=0, scramble=True):
        super().__init__(dut, sidecar, name, period_ns=period_ns, seed=seed)
        self._pattern(pause, idle, "idle")
        self.scramble = scramble
        self._queue = collections.deque()
        self._more = Event()
        self._drained = Event()
        self._drained.set()

    def send(self, items):
        """Queue ``items`` (dicts or ints)."""
        pack = self.format.pack
        added = False
        for item in items:
            self._queue.append(item if isinstance(item, int) else pack(item))
            added = True
        if added:
            self._drained.clear()
            self._more.set()

    @property
    def pending(self):
        return len(self._queue)

    async def wait_drained(self):
        """Until every queued item has been transferred."""
        await self._drained.wait()

    async def _run(self):
        edge, settled = RisingEdge(self.clk), ReadOnly()
        valid, period, rng, width = False, self.period_ns, self.rng, self.format.width
        queue, pauses = self._queue, self._pauses
        await edge
        while True:
            if not valid:
                if not queue:
                    self.valid.value = 0
                    self._drained.set()
                    self._more.clear()
                    await self._more.wait()
                    await edge
                    continue
                if next(pauses):
                    self.valid.value = 0
                    if self.scramble:
                        self.payload.value = rng.getrandbits(width)
                else:
                    self.payload.value = queue[0]
                    self.valid.value = 1
                    valid = True
            await settled
            fire = valid and self.ready.value == 1
            if fire:
                self.cycles.append(_cycle(period))
            await edge
            if fire:
                queue.popleft()
                valid = False


class StreamSink(_StreamEnd):
    """Collect the DUT's source stream ``name`` (default ``"o"``).

    ``pause`` is a stall-pattern spec (:func:`dnnhw.sim.stalls.stall_pattern`), asked
    every cycle: a stall holds ``ready`` low; ``backpressure`` is the shorthand for
    ``pause={"name": "random", "probability": backpressure}``. Transfers are appended to
    ``items`` (unpacked dicts; the packed ints when ``unpack=False``) and their cycles to
    ``cycles``. ``callback(item, cycle)``, if given, sees each transfer (in the cycle's
    read-only phase, so it may read other DUT outputs of that cycle).
    """

    def __init__(self, dut, sidecar, name="o", *, backpressure=0.0, pause=None,
                 period_ns=10, seed=0, unpack=True, callback=None, check=True):
        super().__init__(dut, sidecar, name, period_ns=period_ns, seed=seed)
        self._pattern(pause, backpressure, "backpressure")
        self.unpack = unpack
        self.callback = callback
        self.check = check
        self.items = []
        self._waiting = None   # (count, Event)

    async def wait_for(self, count, *, timeout_cycles=None):
        """Until ``count`` items have been received in total; with ``timeout_cycles``,
        fail (:class:`TimeoutError`) if that many cycles pass first."""
        if len(self.items) >= count:
            return
        event = Event()
        self._waiting = (count, event)
        if timeout_cycles is None:
            await event.wait()
            return
        from cocotb.triggers import ClockCycles, First
        timer = ClockCycles(self.clk, timeout_cycles)
        fired = await First(event.wait(), timer)
        if fired is timer:
            raise TimeoutError(
                f"stream {self.name!r}: {len(self.items)} of {count} transfers after "
                f"{timeout_cycles} more cycles (the DUT stalls or drops data)")

    async def _run(self):
        edge, settled = RisingEdge(self.clk), ReadOnly()
        period, pauses = self.period_ns, self._pauses
        unpack = self.format.unpack if self.unpack else None
        ready_now = None
        held = None          # payload of a transfer offered but not yet accepted
        await edge
        while True:
            ready = not next(pauses)
            if ready is not ready_now:
                self.ready.value = int(ready)
                ready_now = ready
            await settled
            valid = self.valid.value == 1
            if held is not None or valid:
                payload = self.payload.value.to_unsigned()
                if self.check and held is not None:
                    cycle = _cycle(period)
                    if not valid:
                        raise StreamProtocolError(
                            f"stream {self.name!r}: valid fell at cycle {cycle} before "
                            f"the transfer (ready was low)")
                    if payload != held:
                        raise StreamProtocolError(
                            f"stream {self.name!r}: payload changed at cycle {cycle} "
                            f"while valid and not ready: {held:#x} -> {payload:#x}")
                if ready:
                    cycle = _cycle(period)
                    self.cycles.append(cycle)
                    item = unpack(payload) if unpack else payload
                    self.items.append(item)
                    if self.callback is not None:
                        self.callback(item, cycle)
                    held = None
                    if self._waiting is not None and len(self.items) >= self._waiting[0]:
                        self._waiting[1].set()
                        self._waiting = None
                else:
                    held = payload
            await edge
