"""A word-addressed memory model behind an accelerator's memory port, for the Amaranth
simulator and for cocotb.

The port, seen from the DUT (``amaranth.lib.stream`` signatures):

``mem_req`` (DUT -> memory)
    ``{write: 1, addr: addr_width, length: length_width}``, packed LSB first as Amaranth's
    ``StructLayout`` packs it (``write`` is bit 0).
``mem_wdata`` (DUT -> memory), ``mem_rdata`` (memory -> DUT)
    One ``data_width``-bit word per beat.

Semantics. Requests are served strictly in order. A read of ``length`` words returns
``addr .. addr + length - 1`` as ``length`` beats on ``mem_rdata``. A write stores the
next ``length`` beats of ``mem_wdata`` at ``addr ..``; the DUT may send them before, with
or after the request (the memory takes write data whenever it is ready and queues it). A
write is stored when it reaches the head of the request queue, so a read sees exactly the
writes requested before it. Length 0, a range outside the memory, a broken stream rule
(``valid`` falling, or the payload changing, before ``ready``) are DUT bugs:
:class:`MemoryPortError` names the request (or stream) and the cycle.

Timing. :class:`MemoryModel` is a Moore machine: what it drives in a cycle depends only
on earlier cycles, like a registered memory. The queue of outstanding requests is
unbounded and ``mem_req`` is ready every cycle unless stalled, so the DUT may issue many
requests ahead of the data. A read accepted at cycle ``t`` (the edge ending cycle ``t``)
offers its first beat at ``t + latency`` at the earliest, and not before the cycle after
the previous request completed (its last beat transferred, or its last word stored); the
next beats follow back to back after each transfer; ``valid`` and the payload hold until
the DUT is ready. Writes add no latency.

Random mode, all seeded by ``seed``: each read gets ``randint(0, jitter)`` extra cycles
of latency; ``rdata_pause`` (a :mod:`dnnhw.sim.stalls` pattern, asked like a stream
source's: in each cycle a beat is due and none is offered) puts gaps before read beats;
``req_pause`` and ``wdata_pause`` (asked every cycle, like a sink's) hold ``mem_req.ready``
and ``mem_wdata.ready`` low.

Stall count. ``stall_cycles`` is the sum of four counts:

``latency_stalls``
    Per read, the cycles its extra latency postponed its first beat beyond where the
    fixed-latency memory would have had it due given the same history:
    ``max(t + L + extra, free) - max(t + L, free)``, with ``free`` the cycle after the
    previous request completed. Extra latency hidden behind an earlier request's beats
    counts nothing (``latency_drawn`` has the sum of all draws).
``gap_stalls``
    Cycles a read beat was due and ``rdata_pause`` held it back.
``req_stalls``, ``wdata_stalls``
    Cycles the DUT had ``valid`` high on ``mem_req`` / ``mem_wdata`` and ``ready`` was low.

The DUT's own ``ready`` low on ``mem_rdata`` is not a stall: it delays the DUT as much
with the fixed-latency memory.

Why ``DUT cycles <= fixed-latency cycles + stall_cycles`` holds (the same DUT, data and
``latency``; cycles from the same starting event, e.g. its start, to its last event).
Every event of a run (a request or write beat accepted, a read beat offered or
transferred) happens at the max, over the earlier events it waits for, of their times
plus constants. The fixed-latency memory does: a first beat is offered at
``max(t + L, free)``, a next beat the cycle after the previous transfer, and whatever is
valid is accepted. A DUT that does one thing at a time does too, provided it waits on
handshakes and never chooses by timing (no arbitration by arrival order, no timeouts, no
free-running counter gating its ``valid`` or ``ready``). The random memory adds exactly
the counted cycles: a first beat is offered at ``max(t + L, free)`` plus its latency
stall plus its gaps, a later beat after its gaps, a request or write beat is accepted its
``req_stalls`` / ``wdata_stalls`` cycles after ``valid`` rose. By induction over the
events in time, each happens at most "stall cycles counted so far" after its
fixed-latency time (a max of delayed terms, plus a constant, is delayed by at most the
largest delay), so the DUT's last event does too. A counted cycle that did not delay the
DUT (a gap while it was not ready, a stalled request it did not need yet) makes the bound
looser, never wrong; for a DUT whose critical path is the read stream and that is always
ready, extra latency and read gaps delay it by exactly what is counted.

Cycles are the model's own: cycle 0 is the first one it serves (the first
:meth:`MemoryModel.step`); :attr:`MemoryModel.log` stamps requests with them.

Adapters, thin: :func:`serve_amaranth` (an async testbench for ``amaranth.sim``;
:func:`attach_amaranth` adds it to a ``Simulator``) and :func:`serve_cocotb` (a cocotb
coroutine: the memory's outputs written just after the rising edge, the DUT's sampled in
``ReadOnly``, as in :mod:`dnnhw.sim.streams`). The module imports neither cocotb nor
Amaranth at module level.
"""

import collections
import random
from typing import NamedTuple

import numpy as np

from .stalls import stall_pattern


__all__ = ["MemoryModel", "MemoryOutputs", "MemoryRequest", "RequestRecord",
           "MemoryPortError", "port_widths", "serve_amaranth", "attach_amaranth",
           "serve_cocotb"]


class MemoryPortError(AssertionError):
    """The DUT broke the memory port's rules: a bad request, a broken stream rule, or
    traffic left over when the run should be finished."""


class MemoryRequest(NamedTuple):
    write: bool
    addr: int
    length: int


class MemoryOutputs(NamedTuple):
    """What the memory drives in one cycle."""
    req_ready: bool
    wdata_ready: bool
    rdata_valid: bool
    rdata_payload: int


class RequestRecord:
    """One accepted request: ``index`` (0, 1, ... in request order), ``write``, ``addr``,
    ``length``, ``accepted`` (its cycle), ``extra_latency`` (drawn, reads only),
    ``first_offered`` (cycle its first read beat was offered; ``None`` for writes and
    until then) and ``done`` (cycle its last beat transferred or its last word was
    stored; ``None`` until then)."""

    __slots__ = ("index", "write", "addr", "length", "accepted", "extra_latency",
                 "first_offered", "done", "progress", "due")

    def __init__(self, index, request, accepted):
        self.index = index
        self.write, self.addr, self.length = request
        self.accepted = accepted
        self.extra_latency = 0
        self.first_offered = None
        self.done = None
        self.progress = 0      # beats transferred (read) or words stored (write)
        self.due = None        # read: cycle from which its next beat may be offered

    def describe(self):
        kind = "write" if self.write else "read"
        return f"{kind} request #{self.index} (addr={self.addr:#x}, length={self.length})"

    def __repr__(self):
        return (f"<{self.describe()} accepted={self.accepted} "
                f"first_offered={self.first_offered} done={self.done}>")


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _int_param(name, value, low=None, high=None, high_text=None):
    if not _is_int(value):
        raise TypeError(f"MemoryModel: {name} must be an integer, got {value!r}")
    if low is None:
        return int(value)
    if value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"in {low} .. {high_text or high}"
        raise ValueError(f"MemoryModel: {name} must be {span}, got {value!r}")
    return int(value)


def _pattern_param(name, spec):
    try:
        return stall_pattern(spec)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"MemoryModel: {name}: {exc}") from None


class MemoryModel:
    """The memory: storage, request queue, timing and counts; one :meth:`step` a cycle.

    Parameters
    ----------
    depth : int
        Words of storage, 1 .. ``2**addr_width``.
    data_width : int
        Bits per word, 1 .. 64 (storage is a ``uint64`` NumPy array).
    addr_width, length_width : int
        Widths of the request's ``addr`` and ``length`` fields, >= 1.
    latency : int
        Fixed latency ``L`` >= 1 (see the module docstring).
    jitter : int
        Extra latency per read, uniform in ``0 .. jitter``.
    rdata_pause, req_pause, wdata_pause : stall-pattern spec
        :func:`dnnhw.sim.stalls.stall_pattern` specs; ``None`` never stalls.
    seed : int
        Seeds every random choice (each from its own generator, so adding, say, a
        ``req_pause`` leaves the latency draws unchanged).
    scramble : bool
        Drive random bits on ``mem_rdata.payload`` while ``valid`` is low (a DUT must not
        look at it), else 0.

    Use: read :attr:`outputs` (what the memory drives in cycle :attr:`cycle`), then call
    :meth:`step` with what the DUT drove in that cycle; it returns the next cycle's
    outputs. Counts: :attr:`requests`, :attr:`reads` and :attr:`writes` (words),
    :attr:`stall_cycles` and its parts; :meth:`stats` has them all. :attr:`log` holds a
    :class:`RequestRecord` per accepted request.
    """

    def __init__(self, depth, *, data_width, addr_width, length_width, latency=1, jitter=0,
                 rdata_pause=None, req_pause=None, wdata_pause=None, seed=0, scramble=True):
        self.data_width = _int_param("data_width", data_width, 1, 64)
        self.addr_width = _int_param("addr_width", addr_width, 1)
        self.length_width = _int_param("length_width", length_width, 1)
        self.depth = _int_param("depth", depth, 1, 1 << self.addr_width,
                                f"2**addr_width = {1 << self.addr_width}")
        self.latency = _int_param("latency", latency, 1)
        self.jitter = _int_param("jitter", jitter, 0)
        self.seed = _int_param("seed", seed)
        self.patterns = {"rdata_pause": _pattern_param("rdata_pause", rdata_pause),
                         "req_pause": _pattern_param("req_pause", req_pause),
                         "wdata_pause": _pattern_param("wdata_pause", wdata_pause)}
        self.scramble = bool(scramble)
        self.words = np.zeros(self.depth, dtype=np.uint64)

        def rng(purpose):
            # String seeds hash deterministically (unlike hash()), one stream per purpose.
            return random.Random(f"dnnhw.sim.memory:{self.seed}:{purpose}")
        self._jitter_rng = rng("jitter")
        self._scramble_rng = rng("scramble")
        self._gap_pauses = self.patterns["rdata_pause"].iterate(rng("rdata_pause"))
        self._req_pauses = self.patterns["req_pause"].iterate(rng("req_pause"))
        self._wdata_pauses = self.patterns["wdata_pause"].iterate(rng("wdata_pause"))

        self._addr_mask = (1 << self.addr_width) - 1
        self._length_mask = (1 << self.length_width) - 1
        self.cycle = 0
        self.requests = self.reads = self.writes = 0
        self.latency_stalls = self.gap_stalls = self.req_stalls = self.wdata_stalls = 0
        self.latency_drawn = 0
        self.peak_outstanding = 0
        self.log = []
        self._queue = collections.deque()     # accepted, not completed; the head is served
        self._write_beats = collections.deque()  # write data taken, not stored yet
        self._free_at = 0       # the cycle after the last completed request
        self._beat = None       # the read word offered this cycle, or None
        self._held = {"mem_req": None, "mem_wdata": None}   # offered, not taken
        self.outputs = self._drive()

    # --- host access ------------------------------------------------------------------

    def _check_range(self, addr, count):
        addr = _int_param("addr", addr, 0, self.depth - 1)
        count = _int_param("count", count, 0)
        if addr + count > self.depth:
            raise ValueError(f"MemoryModel: words {addr} .. {addr + count - 1} are outside "
                             f"the memory (depth {self.depth})")
        return addr, count

    def write_words(self, addr, values):
        """Store ``values`` (integers, each 0 .. ``2**data_width - 1``; a sequence or a
        NumPy array) at ``addr ..``."""
        values = values.tolist() if isinstance(values, np.ndarray) else list(values)
        addr, count = self._check_range(addr, len(values))
        limit = 1 << self.data_width
        for k, v in enumerate(values):
            if not _is_int(v) or not 0 <= v < limit:
                raise ValueError(f"MemoryModel: word {addr + k} = {v!r} is not an integer "
                                 f"that fits in {self.data_width} bits")
        self.words[addr:addr + count] = np.array(values, dtype=np.uint64)

    def read_words(self, addr, count):
        """A copy of the ``count`` words at ``addr ..`` (``uint64`` array)."""
        addr, count = self._check_range(addr, count)
        return self.words[addr:addr + count].copy()

    # --- payloads ---------------------------------------------------------------------

    def pack_request(self, write, addr, length):
        """The ``mem_req`` payload bits of a request."""
        if addr >> self.addr_width or length >> self.length_width or addr < 0 or length < 0:
            raise ValueError(f"request addr={addr} length={length} does not fit the port "
                             f"(addr_width {self.addr_width}, length_width "
                             f"{self.length_width})")
        return int(bool(write)) | addr << 1 | length << (1 + self.addr_width)

    def unpack_request(self, bits):
        """The :class:`MemoryRequest` of ``mem_req`` payload bits."""
        bits = int(bits)
        return MemoryRequest(bool(bits & 1), (bits >> 1) & self._addr_mask,
                             (bits >> (1 + self.addr_width)) & self._length_mask)

    # --- the cycle --------------------------------------------------------------------

    def step(self, req_valid, req_payload, wdata_valid, wdata_payload, rdata_ready):
        """Advance one cycle, given what the DUT drove in cycle :attr:`cycle` (settled:
        valid and payload of ``mem_req`` and ``mem_wdata``, ready of ``mem_rdata``).
        ``req_payload`` is the packed bits or a ``(write, addr, length)`` tuple. Returns
        the :class:`MemoryOutputs` of the next cycle (also :attr:`outputs`)."""
        now, out = self.cycle, self.outputs
        if req_valid and not isinstance(req_payload, (int, np.integer)):
            req_payload = self.pack_request(*req_payload)
        self._check_held("mem_req", req_valid, req_payload, now)
        self._check_held("mem_wdata", wdata_valid, wdata_payload, now)

        if out.rdata_valid and rdata_ready:
            self._beat = None
            self.reads += 1
            head = self._queue[0]
            head.progress += 1
            if head.progress == head.length:
                self._complete(head, now)
            else:
                head.due = now + 1

        if req_valid:
            if out.req_ready:
                self._accept(int(req_payload), now)
            else:
                self.req_stalls += 1
                self._held["mem_req"] = int(req_payload)
        if wdata_valid:
            if out.wdata_ready:
                word = int(wdata_payload)
                if word < 0 or word >> self.data_width:
                    raise MemoryPortError(f"mem_wdata at cycle {now}: {word} does not fit "
                                          f"in {self.data_width} bits")
                self._write_beats.append(word)
            else:
                self.wdata_stalls += 1
                self._held["mem_wdata"] = int(wdata_payload)
        self._store_writes(now)

        self.cycle = now + 1
        self.outputs = self._drive()
        return self.outputs

    def _check_held(self, name, valid, payload, now):
        held = self._held[name]
        if held is None:
            return
        if not valid:
            raise MemoryPortError(f"{name}: valid fell at cycle {now} before the transfer "
                                  f"(ready was low)")
        if int(payload) != held:
            raise MemoryPortError(f"{name}: payload changed at cycle {now} while valid and "
                                  f"not ready: {held:#x} -> {int(payload):#x}")
        self._held[name] = None

    def _accept(self, bits, now):
        request = self.unpack_request(bits)
        record = RequestRecord(self.requests, request, now)
        if request.length == 0:
            raise MemoryPortError(f"mem_req: {record.describe()} at cycle {now}: length 0 "
                                  f"(a request moves at least one word)")
        if request.addr + request.length > self.depth:
            raise MemoryPortError(
                f"mem_req: {record.describe()} at cycle {now}: words {request.addr:#x} .. "
                f"{request.addr + request.length - 1:#x} are outside the memory (depth "
                f"{self.depth} words)")
        if not request.write and self.jitter:
            record.extra_latency = self._jitter_rng.randint(0, self.jitter)
            self.latency_drawn += record.extra_latency
        self.requests += 1
        self.log.append(record)
        self._queue.append(record)
        self.peak_outstanding = max(self.peak_outstanding, len(self._queue))

    def _complete(self, record, now):
        record.done = now
        self._queue.popleft()
        self._free_at = now + 1

    def _store_writes(self, now):
        """Store queued write data into the write requests at the head of the queue."""
        queue, beats = self._queue, self._write_beats
        while queue and queue[0].write and beats:
            head = queue[0]
            take = min(len(beats), head.length - head.progress)
            start = head.addr + head.progress
            self.words[start:start + take] = [beats.popleft() for _ in range(take)]
            head.progress += take
            self.writes += take
            if head.progress == head.length:
                self._complete(head, now)

    def _drive(self):
        """The outputs of cycle :attr:`cycle` (from state only: a Moore machine)."""
        now = self.cycle
        req_ready = not next(self._req_pauses)
        wdata_ready = not next(self._wdata_pauses)
        if self._beat is None and self._queue and not self._queue[0].write:
            head = self._queue[0]
            if head.due is None:
                # It just reached the head: its first beat is due after its latency and
                # after the previous request. Count what the extra latency postponed.
                ready_at = head.accepted + self.latency
                fixed = max(ready_at, self._free_at)
                head.due = max(ready_at + head.extra_latency, self._free_at)
                self.latency_stalls += head.due - fixed
            if now >= head.due:
                if next(self._gap_pauses):
                    self.gap_stalls += 1
                else:
                    self._beat = int(self.words[head.addr + head.progress])
                    if head.progress == 0:
                        head.first_offered = now
        if self._beat is not None:
            return MemoryOutputs(req_ready, wdata_ready, True, self._beat)
        idle = self._scramble_rng.getrandbits(self.data_width) if self.scramble else 0
        return MemoryOutputs(req_ready, wdata_ready, False, idle)

    # --- counts and checks ------------------------------------------------------------

    @property
    def stall_cycles(self):
        """Cycles the memory held the DUT back against the fixed-latency, never-stalling
        memory (see the module docstring for what counts and why it bounds a run)."""
        return self.latency_stalls + self.gap_stalls + self.req_stalls + self.wdata_stalls

    @property
    def outstanding(self):
        """Requests accepted and not completed."""
        return len(self._queue)

    @property
    def idle(self):
        """No request outstanding and no write data waiting for a request."""
        return not self._queue and not self._write_beats

    def check_idle(self):
        """Raise :class:`MemoryPortError` if a request is unfinished or write data has no
        request (what a finished DUT must not leave behind)."""
        problems = []
        if self._queue:
            head = self._queue[0]
            unit = "words stored" if head.write else "beats taken"
            problems.append(f"{len(self._queue)} request(s) unfinished, the first "
                            f"{head.describe()} with {head.progress} of {head.length} "
                            f"{unit}")
        if self._write_beats:
            problems.append(f"{len(self._write_beats)} write-data beat(s) with no write "
                            f"request")
        if problems:
            raise MemoryPortError(f"memory port at cycle {self.cycle}: " + "; ".join(problems))

    def stats(self):
        """All counts, JSON-able."""
        return {
            "cycles": self.cycle, "requests": self.requests, "reads": self.reads,
            "writes": self.writes, "stall_cycles": self.stall_cycles,
            "latency_stalls": self.latency_stalls, "gap_stalls": self.gap_stalls,
            "req_stalls": self.req_stalls, "wdata_stalls": self.wdata_stalls,
            "latency_drawn": self.latency_drawn, "peak_outstanding": self.peak_outstanding,
            "latency": self.latency, "jitter": self.jitter,
            **{name: str(p) for name, p in self.patterns.items()},
        }


def port_widths(sidecar, *, req="mem_req", rdata="mem_rdata"):
    """``{"data_width", "addr_width", "length_width"}`` of a DUT's memory port from its
    sidecar (:func:`dnnhw.generate.describe`), checking the request's field order."""
    fields = sidecar["streams"][req]["fields"]
    if list(fields) != ["write", "addr", "length"] or fields["write"] != {"offset": 0,
                                                                         "width": 1}:
        raise ValueError(f"stream {req!r}: expected fields write (bit 0), addr, length; "
                         f"got {fields}")
    if fields["length"]["offset"] != 1 + fields["addr"]["width"]:
        raise ValueError(f"stream {req!r}: length must follow addr; got {fields}")
    return {"data_width": int(sidecar["streams"][rdata]["width"]),
            "addr_width": int(fields["addr"]["width"]),
            "length_width": int(fields["length"]["width"])}


# --- adapters -----------------------------------------------------------------------------

async def serve_amaranth(ctx, memory, req, wdata=None, rdata=None):
    """Amaranth-simulator testbench serving the DUT's streams ``req``, ``wdata`` and
    ``rdata`` (its ``mem_req``, ``mem_wdata``, ``mem_rdata``; ``None`` for a stream the
    DUT lacks) from ``memory`` (a :class:`MemoryModel`), forever. Add it with
    :func:`attach_amaranth`.

    The memory's outputs change just after each clock edge; the DUT's are sampled at the
    edge (``ctx.tick().sample``), so other testbenches may set DUT inputs at any point of
    the cycle. Other testbenches should also sample at the edge what the memory drives.
    """
    from amaranth.hdl import Const, Value

    def bits(value):
        return value.as_value() if hasattr(value, "as_value") else Value.cast(value)

    rdata_payload = bits(rdata.payload) if rdata is not None else None

    def drive(out):
        ctx.set(req.ready, out.req_ready)
        if wdata is not None:
            ctx.set(wdata.ready, out.wdata_ready)
        if rdata is not None:
            ctx.set(rdata.valid, out.rdata_valid)
            ctx.set(rdata_payload, out.rdata_payload)

    absent = Const(0, 1)
    sampled = (bits(req.valid), bits(req.payload),
               bits(wdata.valid) if wdata is not None else absent,
               bits(wdata.payload) if wdata is not None else absent,
               bits(rdata.ready) if rdata is not None else absent)
    drive(memory.outputs)
    # The loop body does not await, so the multi-shot tick misses no edge.
    async for _, _, *dut_signals in ctx.tick().sample(*sampled):
        drive(memory.step(*dut_signals))


def attach_amaranth(sim, memory, req, wdata=None, rdata=None):
    """Add :func:`serve_amaranth` to ``sim`` (an ``amaranth.sim.Simulator``) as a
    background testbench: it serves as long as other testbenches run."""
    async def testbench(ctx):
        await serve_amaranth(ctx, memory, req, wdata, rdata)
    sim.add_testbench(testbench, background=True)


async def serve_cocotb(dut, memory, *, clock="clk", req="mem_req", wdata="mem_wdata",
                       rdata="mem_rdata"):
    """cocotb coroutine serving ``dut``'s memory port from ``memory`` forever (start it
    with ``cocotb.start_soon`` after reset; cancel it to stop).

    Streams are found by name as the Verilog of an Amaranth component has them
    (``<stream>__valid``, ``__ready``, ``__payload``); ``wdata`` or ``rdata`` ``None``
    when the DUT lacks it. Like :mod:`dnnhw.sim.streams`: the memory's outputs are
    written just after each rising edge and the DUT's are sampled in ``ReadOnly``.
    """
    from cocotb.triggers import ReadOnly, RisingEdge
    from cocotb.utils import get_sim_time

    def port(stream, part):
        return getattr(dut, f"{stream}__{part}") if stream is not None else None

    req_valid, req_payload, req_ready = (port(req, p) for p in ("valid", "payload", "ready"))
    wdata_valid, wdata_payload, wdata_ready = (port(wdata, p)
                                               for p in ("valid", "payload", "ready"))
    rdata_valid, rdata_payload, rdata_ready = (port(rdata, p)
                                               for p in ("valid", "payload", "ready"))
    edge, settled = RisingEdge(getattr(dut, clock)), ReadOnly()
    driven = {}

    def drive(handle, value):
        # Writing only changes keeps the simulator's work per cycle small.
        if handle is not None and driven.get(handle) != value:
            handle.value = value
            driven[handle] = value

    def valid_payload(valid, payload):
        if valid is None or valid.value != 1:
            return False, 0
        if not payload.value.is_resolvable:
            # A four-state simulator shows what a two-state one hides as 0: a beat
            # whose data was never defined (an unwritten memory word, an unreset register).
            raise MemoryPortError(f"{payload._name} is undefined in a valid beat at "
                                  f"{get_sim_time('ns'):.0f} ns: {payload.value}")
        return True, payload.value.to_unsigned()

    await edge
    out = memory.outputs
    while True:
        drive(req_ready, int(out.req_ready))
        drive(wdata_ready, int(out.wdata_ready))
        drive(rdata_valid, int(out.rdata_valid))
        drive(rdata_payload, out.rdata_payload)
        await settled
        rv, rp = valid_payload(req_valid, req_payload)
        wv, wp = valid_payload(wdata_valid, wdata_payload)
        ready = rdata_ready is not None and rdata_ready.value == 1
        out = memory.step(rv, rp, wv, wp, ready)
        await edge
