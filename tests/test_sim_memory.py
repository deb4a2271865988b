"""The memory model behind a memory port (dnnhw.sim.memory).

In the Amaranth simulator: a port driven directly by a scripted testbench (exact beat
timing, valid held until ready, write/read ordering) and a small copy engine (``RowCopy``:
row read requests issued ahead, then a transformed write-back) with fixed latency (data,
and cycles equal to the formula) and in random mode (data, and cycles within the bound the
counted ``stall_cycles`` give). Without a simulator: a pure-Python DUT that does one
thing at a time runs random programs against the model (data against a reference, the
bound), and bad requests and parameters. Through cocotb (``run_verilog``): ``RowCopy``'s
Verilog with the cocotb adapter.
"""

import collections
import random

import numpy as np
import pytest

from amaranth import ClockDomain, Module, Signal, unsigned
from amaranth.back import verilog
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from dnnhw.generate import describe
from dnnhw.sim.memory import MemoryModel, MemoryPortError, attach_amaranth, port_widths
from dnnhw.sim.runner import icarus_available, run_verilog
from dnnhw.sim.stalls import stall_pattern


DATA_WIDTH, ADDR_WIDTH, LENGTH_WIDTH = 16, 10, 6
WIDTHS = {"data_width": DATA_WIDTH, "addr_width": ADDR_WIDTH, "length_width": LENGTH_WIDTH}
REQUEST = data.StructLayout({"write": 1, "addr": ADDR_WIDTH, "length": LENGTH_WIDTH})


def make_memory(depth=1 << ADDR_WIDTH, **kwargs):
    return MemoryModel(depth, **WIDTHS, **kwargs)


def random_words(count, seed):
    rng = random.Random(seed)
    return [rng.getrandbits(DATA_WIDTH) for _ in range(count)]


# --- the copy engine --------------------------------------------------------------------

class RowCopy(wiring.Component):
    """Copy ``rows x row_words`` words from ``src`` to ``dst``, reversed and plus one.

    Read phase: one read request per row, issued back to back ahead of the data, every
    beat taken at once into a buffer. Write phase: one write request per row and the data
    (``buffer[words - 1 - i] + 1``), both streams offered every cycle. ``cycles`` counts
    the busy cycles; with memory latency ``L`` and no stalls they are ``L + 2 * words``
    (the first beat ``L`` cycles after the first request, then a word a cycle in, then a
    word a cycle out). ``done`` is sticky.
    """

    def __init__(self, *, rows, row_words, src, dst):
        self.rows, self.row_words, self.src, self.dst = rows, row_words, src, dst
        super().__init__({
            "start": In(1), "done": Out(1), "cycles": Out(16),
            "mem_req": Out(stream.Signature(REQUEST)),
            "mem_wdata": Out(stream.Signature(unsigned(DATA_WIDTH))),
            "mem_rdata": In(stream.Signature(unsigned(DATA_WIDTH))),
        })

    @property
    def words(self):
        return self.rows * self.row_words

    def expected(self, source_words):
        return [(w + 1) % (1 << DATA_WIDTH) for w in reversed(source_words)]

    def elaborate(self, platform):
        m = Module()
        rows, words = self.rows, self.words
        req, wdata, rdata = self.mem_req, self.mem_wdata, self.mem_rdata
        m.submodules.buffer = buffer = Memory(shape=unsigned(DATA_WIDTH), depth=words, init=[])
        store, load = buffer.write_port(), buffer.read_port(domain="comb")
        requested = Signal(range(rows + 1))
        beats = Signal(range(words + 1))
        req_fire = req.valid & req.ready
        last_request = (requested == rows) | ((requested == rows - 1) & req_fire)
        with m.If(req_fire):
            m.d.sync += requested.eq(requested + 1)
        # `length` is set in each state, not once outside the FSM: a constant on its own
        # becomes an `always @*` with nothing to wait on, which Verilator leaves at 0.
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.next = "READ"
            with m.State("READ"):
                m.d.comb += [
                    req.valid.eq(requested < rows),
                    req.payload.addr.eq(self.src + requested * self.row_words),
                    req.payload.length.eq(self.row_words),
                    rdata.ready.eq(1),
                    store.addr.eq(beats), store.data.eq(rdata.payload),
                    store.en.eq(rdata.valid),
                ]
                with m.If(rdata.valid):
                    m.d.sync += beats.eq(beats + 1)
                    with m.If(beats == words - 1):
                        m.d.sync += [requested.eq(0), beats.eq(0)]
                        m.next = "WRITE"
            with m.State("WRITE"):
                m.d.comb += [
                    req.valid.eq(requested < rows), req.payload.write.eq(1),
                    req.payload.addr.eq(self.dst + requested * self.row_words),
                    req.payload.length.eq(self.row_words),
                    wdata.valid.eq(beats < words),
                    load.addr.eq(words - 1 - beats), wdata.payload.eq(load.data + 1),
                ]
                with m.If(wdata.valid & wdata.ready):
                    m.d.sync += beats.eq(beats + 1)
                last_data = (beats == words) | ((beats == words - 1) & wdata.ready)
                with m.If(last_request & last_data):
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
        with m.If(fsm.ongoing("READ") | fsm.ongoing("WRITE")):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        return m


def run_copy(dut, memory, *, max_cycles=5000):
    """Start ``dut`` with ``memory`` behind its port; its busy cycles once done."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    attach_amaranth(sim, memory, dut.mem_req, dut.mem_wdata, dut.mem_rdata)
    result = {}

    async def bench(ctx):
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for _ in range(max_cycles):
            _, _, done, cycles = await ctx.tick().sample(dut.done, dut.cycles)
            if done:
                result["cycles"] = cycles
                return
        raise AssertionError(f"RowCopy not done after {max_cycles} cycles")

    sim.add_testbench(bench)
    sim.run()
    return result["cycles"]


def copy_setup(rows, row_words, *, src=8, dst=300, **memory_kwargs):
    dut = RowCopy(rows=rows, row_words=row_words, src=src, dst=dst)
    memory = make_memory(**memory_kwargs)
    source = random_words(dut.words, seed=rows * 100 + row_words)
    memory.write_words(src, source)
    return dut, memory, dut.expected(source)


@pytest.mark.parametrize("rows,row_words,latency", [(1, 1, 1), (3, 5, 1), (3, 5, 4),
                                                    (4, 2, 7), (6, 1, 3)])
def test_copy_fixed_latency_is_exact(rows, row_words, latency):
    dut, memory, expected = copy_setup(rows, row_words, latency=latency)
    cycles = run_copy(dut, memory)
    assert list(memory.read_words(dut.dst, dut.words)) == expected
    assert cycles == latency + 2 * dut.words
    memory.check_idle()
    assert memory.stall_cycles == 0
    assert (memory.requests, memory.reads, memory.writes) == (2 * rows, dut.words, dut.words)
    reads = [r for r in memory.log if not r.write]
    # Requests one a cycle from the first busy cycle (cycle 1: start is seen in cycle 0),
    # ahead of the data; the first beat exactly L cycles after the first request, then
    # every row's beats right after the previous row's.
    assert [r.accepted for r in reads] == list(range(1, rows + 1))
    assert reads[0].first_offered == reads[0].accepted + latency
    for before, after in zip(reads, reads[1:]):
        assert after.first_offered == before.done + 1
    assert all(r.done == r.first_offered + row_words - 1 for r in reads)


RANDOM_CASES = [
    # The read stream is the copy's critical path and the DUT is always ready, so extra
    # latency, read gaps and write-data stalls each delay it by exactly what is counted.
    ({"jitter": 6, "rdata_pause": 0.3, "wdata_pause": 0.3}, "exact"),
    ({"jitter": 3, "rdata_pause": {"name": "bursts", "go": 3, "stall": 2}}, "exact"),
    # Request stalls may be hidden behind the data (requests go ahead): a bound.
    ({"jitter": 5, "rdata_pause": 0.4, "req_pause": 0.5, "wdata_pause": 0.2}, "bound"),
    ({"req_pause": {"name": "every", "n": 3}, "wdata_pause": "bursts"}, "bound"),
]


@pytest.mark.parametrize("knobs,kind", RANDOM_CASES)
@pytest.mark.parametrize("seed", [1, 2])
def test_copy_random_mode_is_correct_and_bounded(knobs, kind, seed):
    latency = 3
    dut, memory, expected = copy_setup(4, 6, latency=latency, seed=seed, **knobs)
    cycles = run_copy(dut, memory)
    assert list(memory.read_words(dut.dst, dut.words)) == expected
    memory.check_idle()
    fixed = latency + 2 * dut.words
    assert memory.stall_cycles > 0 and cycles > fixed
    if kind == "exact":
        assert cycles == fixed + memory.stall_cycles
    else:
        assert cycles <= fixed + memory.stall_cycles


def test_copy_bad_request_stops_the_simulation():
    # The copy's source runs past the end of a 40-word memory: rows at 24, 32, 40,
    # requested in cycles 1, 2, 3.
    dut = RowCopy(rows=3, row_words=8, src=24, dst=0)
    memory = MemoryModel(40, **WIDTHS)
    with pytest.raises(MemoryPortError, match=r"read request #2 \(addr=0x28, length=8\) at "
                                              r"cycle 3: words 0x28 \.\. 0x2f are outside "
                                              r"the memory \(depth 40 words\)"):
        run_copy(dut, memory)


# --- the port driven directly -----------------------------------------------------------

def drive_port(memory, requests, write_data=(), *, rdata_pause=None, seed=0, quiet=12):
    """A scripted DUT: offer each request ``(earliest_cycle, write, addr, length)`` and
    each write word ``(earliest_cycle, word)`` in order from its cycle on (valid held until
    the transfer), take read beats when ``rdata_pause`` allows; check that the memory
    holds ``mem_rdata`` valid and its payload until taken. Returns the accept cycles of
    the requests and the write words, the read beats as ``(cycle, word)`` and the cycles
    ``mem_rdata.valid`` was high."""
    req = stream.Signature(REQUEST).create(path=("mem_req",))
    wdata = stream.Signature(unsigned(DATA_WIDTH)).create(path=("mem_wdata",))
    rdata = stream.Signature(unsigned(DATA_WIDTH)).create(path=("mem_rdata",))
    top = Module()
    top.domains.sync = ClockDomain()
    expect_beats = sum(length for _, write, _, length in requests if not write)
    pauses = stall_pattern(rdata_pause).iterate(random.Random(seed))
    seen = {"requests": [], "wdata": [], "beats": [], "valid": []}

    async def dut(ctx):
        pending_req, pending_data = collections.deque(requests), collections.deque(write_data)
        held, silent, cycle = None, 0, 0
        while pending_req or pending_data or len(seen["beats"]) < expect_beats \
                or silent < quiet:
            req_on = bool(pending_req) and pending_req[0][0] <= cycle
            data_on = bool(pending_data) and pending_data[0][0] <= cycle
            ctx.set(req.valid, req_on)
            if req_on:
                _, write, addr, length = pending_req[0]
                ctx.set(req.payload, {"write": write, "addr": addr, "length": length})
            ctx.set(wdata.valid, data_on)
            if data_on:
                ctx.set(wdata.payload, pending_data[0][1])
            ready = not next(pauses)
            ctx.set(rdata.ready, ready)
            _, _, req_ready, wdata_ready, valid, payload = await ctx.tick().sample(
                req.ready, wdata.ready, rdata.valid, rdata.payload)
            if held is not None:
                assert valid and payload == held, f"cycle {cycle}: mem_rdata not held"
                held = None
            if req_on and req_ready:
                pending_req.popleft()
                seen["requests"].append(cycle)
            if data_on and wdata_ready:
                pending_data.popleft()
                seen["wdata"].append(cycle)
            if valid:
                seen["valid"].append(cycle)
                if ready:
                    seen["beats"].append((cycle, payload))
                else:
                    held = payload
            busy = valid or pending_req or pending_data
            silent = 0 if busy else silent + 1
            cycle += 1
            assert cycle < 5000, "the memory stopped answering"

    sim = Simulator(top)
    sim.add_clock(1e-6)
    attach_amaranth(sim, memory, req, wdata, rdata)
    sim.add_testbench(dut)
    sim.run()
    return seen


@pytest.mark.parametrize("latency", [1, 2, 5])
def test_direct_reads_fixed_latency_exact(latency):
    memory = make_memory(latency=latency)
    words = random_words(64, seed=latency)
    memory.write_words(0, words)
    # Two reads back to back, then one after the memory has gone idle.
    seen = drive_port(memory, [(0, 0, 4, 3), (0, 0, 20, 2), (30, 0, 40, 1)])
    assert seen["requests"] == [0, 1, 30]
    first = [latency + k for k in range(5)] + [30 + latency]
    assert [c for c, _ in seen["beats"]] == first
    assert seen["valid"] == first          # valid never before t + L, never in between
    assert [w for _, w in seen["beats"]] == words[4:7] + words[20:22] + words[40:41]
    assert [r.accepted for r in memory.log] == seen["requests"]
    assert memory.stall_cycles == 0 and memory.reads == 6 and memory.requests == 3


def test_direct_rdata_holds_until_ready():
    # The DUT's own backpressure is not a memory stall.
    memory = make_memory(latency=2)
    words = random_words(100, seed=5)
    memory.write_words(0, words)
    requests = [(0, 0, 10 * k, 7) for k in range(8)]
    seen = drive_port(memory, requests, rdata_pause=0.6, seed=3)
    expected = [w for k in range(8) for w in words[10 * k:10 * k + 7]]
    assert [w for _, w in seen["beats"]] == expected
    assert len(seen["valid"]) > len(seen["beats"])     # held beats were seen
    assert memory.stall_cycles == 0


def test_direct_writes_in_request_order():
    latency = 3
    memory = make_memory(latency=latency)
    old = random_words(8, seed=1)
    memory.write_words(100, old)
    new = random_words(8, seed=2)
    requests = [
        (0, 0, 100, 4),     # read: sees the old words, though the write data came first
        (0, 1, 100, 4),     # write: data sent before the request
        (0, 0, 100, 4),     # read: sees the new words
        (0, 1, 104, 4),     # write: data sent long after the request
        (0, 0, 102, 4),     # read: waits for that data, sees both writes
    ]
    write_data = [(0, w) for w in new[:4]] + [(40, w) for w in new[4:]]
    seen = drive_port(memory, requests, write_data)
    got = [w for _, w in seen["beats"]]
    assert got == old[:4] + new[:4] + new[2:6]
    # The last read's first beat comes the cycle after its write's last word.
    assert seen["wdata"][-1] == 43
    assert seen["beats"][8][0] == 44
    assert seen["beats"][:8] == [(latency + k, w) for k, w in enumerate(got[:8])]
    memory.check_idle()
    assert memory.writes == 8 and memory.reads == 12 and memory.stall_cycles == 0


# --- a pure-Python DUT that does one thing at a time ------------------------------------

def run_phases(memory, phases, *, pause_every=0):
    """Run ``phases`` one after another against ``memory``: ``("read", [(addr, length),
    ...])`` issues its requests back to back and takes every beat, except for one cycle
    after every ``pause_every``-th beat; ``("write", [(addr, words), ...], order)``
    offers its requests and data, ``order`` saying which goes first ("data" first,
    "requests" first, or "together"). Everything waits on handshakes, nothing on time.
    Returns ``(cycles, words read)``."""
    cycle, got = 0, []
    for phase in phases:
        requests = collections.deque()
        beats, data_words, order = 0, collections.deque(), "together"
        if phase[0] == "read":
            for addr, length in phase[1]:
                requests.append(memory.pack_request(0, addr, length))
                beats += length
        else:
            _, rows, order = phase
            for addr, words in rows:
                requests.append(memory.pack_request(1, addr, len(words)))
                data_words.extend(words)
        paused, taken = False, 0
        while requests or data_words or taken < beats:
            out = memory.outputs
            req_valid = bool(requests) and not (order == "data" and data_words)
            data_valid = bool(data_words) and not (order == "requests" and requests)
            ready = not paused
            memory.step(req_valid, requests[0] if req_valid else 0, data_valid,
                        data_words[0] if data_valid else 0, ready)
            if req_valid and out.req_ready:
                requests.popleft()
            if data_valid and out.wdata_ready:
                data_words.popleft()
            paused = False
            if out.rdata_valid and ready:
                got.append(out.rdata_payload)
                taken += 1
                paused = bool(pause_every) and taken % pause_every == 0
            cycle += 1
            assert cycle < 100_000
    return cycle, got


def random_program(rng, depth, phases=8):
    program, reference, expected = [], np.zeros(depth, dtype=np.uint64), []
    for _ in range(phases):
        rows = []
        for _ in range(rng.randint(1, 5)):
            length = rng.randint(1, 9)
            rows.append((rng.randint(0, depth - length), length))
        if rng.random() < 0.5:
            program.append(("read", rows))
            for addr, length in rows:
                expected += [int(w) for w in reference[addr:addr + length]]
        else:
            rows = [(addr, [rng.getrandbits(DATA_WIDTH) for _ in range(length)])
                    for addr, length in rows]
            program.append(("write", rows, rng.choice(["data", "requests", "together"])))
            for addr, words in rows:
                reference[addr:addr + len(words)] = words
    return program, reference, expected


@pytest.mark.parametrize("seed", range(40))
def test_one_thing_at_a_time_dut_within_the_bound(seed):
    rng = random.Random(seed)
    depth, latency = 64, rng.randint(1, 6)
    program, reference, expected = random_program(rng, depth)
    pause_every = rng.choice([0, 0, 2, 3])
    fixed_memory = MemoryModel(depth, **WIDTHS, latency=latency)
    fixed, got = run_phases(fixed_memory, program, pause_every=pause_every)
    assert got == expected and fixed_memory.stall_cycles == 0
    knobs = {"jitter": rng.choice([0, 2, 8]),
             "rdata_pause": rng.choice([None, 0.3, {"name": "bursts", "go": 4, "stall": 3}]),
             "req_pause": rng.choice([None, 0.5, {"name": "every", "n": 2}]),
             "wdata_pause": rng.choice([None, 0.4, "periodic"])}
    memory = MemoryModel(depth, **WIDTHS, latency=latency, seed=seed, **knobs)
    cycles, got = run_phases(memory, program, pause_every=pause_every)
    assert got == expected
    assert (memory.read_words(0, depth) == reference).all()
    memory.check_idle()
    assert fixed <= cycles <= fixed + memory.stall_cycles, (knobs, memory.stats())


def test_hidden_extra_latency_counts_nothing():
    # A 40-word read, then a 3-word one accepted a cycle later: its extra latency (at most
    # 30) runs out during the first one's beats, so only the first one's counts.
    memory = make_memory(latency=2, jitter=30, seed=4)
    cycles, _ = run_phases(memory, [("read", [(0, 40), (100, 3)])])
    first, second = memory.log
    assert first.extra_latency > 0 and second.extra_latency > 0
    assert memory.latency_stalls == memory.stall_cycles == first.extra_latency
    assert memory.latency_drawn == first.extra_latency + second.extra_latency
    assert cycles == 2 + 43 + memory.stall_cycles


# --- errors -----------------------------------------------------------------------------

def step_request(memory, write, addr, length):
    memory.step(True, (write, addr, length), False, 0, False)


@pytest.mark.parametrize("request_,message", [
    ((0, 5, 0), r"mem_req: read request #0 \(addr=0x5, length=0\) at cycle 0: length 0"),
    ((1, 60, 5), r"mem_req: write request #0 \(addr=0x3c, length=5\) at cycle 0: words "
                 r"0x3c \.\. 0x40 are outside the memory \(depth 64 words\)"),
])
def test_bad_requests_name_the_request(request_, message):
    memory = MemoryModel(64, **WIDTHS)
    with pytest.raises(MemoryPortError, match=message):
        step_request(memory, *request_)


def test_stream_rule_and_leftover_errors():
    memory = make_memory(req_pause={"name": "every", "n": 3})   # ready every 3rd cycle
    step_request(memory, 0, 1, 2)
    with pytest.raises(MemoryPortError, match=r"mem_req: valid fell at cycle 1"):
        memory.step(False, 0, False, 0, False)
    memory = make_memory(req_pause={"name": "every", "n": 3})
    step_request(memory, 0, 1, 2)
    with pytest.raises(MemoryPortError, match=r"mem_req: payload changed at cycle 1"):
        step_request(memory, 0, 1, 3)
    memory = make_memory(wdata_pause={"name": "every", "n": 2})
    memory.step(False, 0, True, 7, False)
    with pytest.raises(MemoryPortError, match=r"mem_wdata: payload changed"):
        memory.step(False, 0, True, 8, False)

    memory = make_memory()
    with pytest.raises(MemoryPortError, match=r"does not fit in 16 bits"):
        memory.step(False, 0, True, 1 << DATA_WIDTH, False)
    memory = make_memory()
    step_request(memory, 1, 0, 3)
    memory.step(False, 0, True, 9, False)
    with pytest.raises(MemoryPortError, match=r"1 request\(s\) unfinished, the first write "
                                              r"request #0 \(addr=0x0, length=3\) with 1 "
                                              r"of 3 words stored"):
        memory.check_idle()
    memory = make_memory()
    memory.step(False, 0, True, 9, False)
    with pytest.raises(MemoryPortError, match=r"1 write-data beat\(s\) with no write request"):
        memory.check_idle()


@pytest.mark.parametrize("kwargs,error,message", [
    ({"depth": 0}, ValueError, r"depth must be in 1 \.\. 2\*\*addr_width = 1024, got 0"),
    ({"depth": 1025}, ValueError, r"depth must be in 1 \.\. 2\*\*addr_width = 1024, got 1025"),
    ({"depth": 10.0}, TypeError, r"depth must be an integer, got 10.0"),
    ({"data_width": 65}, ValueError, r"data_width must be in 1 \.\. 64, got 65"),
    ({"data_width": 0}, ValueError, r"data_width must be in 1 \.\. 64, got 0"),
    ({"addr_width": 0}, ValueError, r"addr_width must be >= 1, got 0"),
    ({"length_width": True}, TypeError, r"length_width must be an integer, got True"),
    ({"latency": 0}, ValueError, r"latency must be >= 1, got 0"),
    ({"latency": 1.5}, TypeError, r"latency must be an integer, got 1.5"),
    ({"jitter": -1}, ValueError, r"jitter must be >= 0, got -1"),
    ({"rdata_pause": 1.5}, ValueError, r"rdata_pause: stall pattern 'random': probability"),
    ({"req_pause": "often"}, ValueError, r"req_pause: unknown stall pattern 'often'"),
    ({"wdata_pause": [0.3]}, TypeError, r"wdata_pause: a stall pattern is"),
])
def test_bad_parameters_name_the_parameter(kwargs, error, message):
    args = {"depth": 64, **WIDTHS, **kwargs}
    depth = args.pop("depth")
    with pytest.raises(error, match=r"MemoryModel: " + message):
        MemoryModel(depth, **args)


def test_host_access():
    memory = MemoryModel(16, **WIDTHS)
    memory.write_words(3, [1, 2, (1 << DATA_WIDTH) - 1])
    assert list(memory.read_words(2, 5)) == [0, 1, 2, (1 << DATA_WIDTH) - 1, 0]
    with pytest.raises(ValueError, match=r"words 14 \.\. 16 are outside the memory"):
        memory.write_words(14, [0, 0, 0])
    with pytest.raises(ValueError, match=r"word 3 = 65536 is not an integer that fits in "
                                         r"16 bits"):
        memory.write_words(3, [1 << DATA_WIDTH])
    with pytest.raises(ValueError, match=r"word 4 = 1.5 is not an integer"):
        memory.write_words(3, [1, 1.5])
    memory.write_words(0, np.arange(3, dtype=np.int32))
    assert list(memory.read_words(0, 3)) == [0, 1, 2]
    wide = MemoryModel(4, data_width=64, addr_width=2, length_width=3)
    wide.write_words(0, [(1 << 64) - 1])
    assert int(wide.read_words(0, 1)[0]) == (1 << 64) - 1
    assert memory.unpack_request(memory.pack_request(1, 700, 33)) == (True, 700, 33)
    assert memory.pack_request(1, 2, 3) == 1 | 2 << 1 | 3 << (1 + ADDR_WIDTH)


# --- cocotb -----------------------------------------------------------------------------

@pytest.mark.parametrize("sim", [
    "verilator",
    pytest.param("icarus", marks=pytest.mark.skipif(not icarus_available(),
                                                    reason="Icarus Verilog not installed")),
])
def test_cocotb_adapter(sim, tmp_path, build_root):
    rows, row_words, latency = 3, 4, 5
    dut = RowCopy(rows=rows, row_words=row_words, src=16, dst=200)
    module = "dnnhw_test_memory_row_copy"
    v_path = tmp_path / f"{module}.v"
    v_path.write_text(verilog.convert(dut, name=module, emit_src=False))
    sidecar = describe(dut, core="test-row-copy", module=module, params={})
    assert port_widths(sidecar) == WIDTHS
    source = random_words(dut.words, seed=9)
    random_knobs = {"latency": 2, "jitter": 4, "rdata_pause": 0.3, "wdata_pause": 0.3,
                    "seed": 3}
    res = run_verilog(v_path, sidecar, "dnnhw.sim.memory_selftest", sim=sim,
                      build_root=build_root,
                      config={"depth": 256, "init_addr": 16, "init_words": source,
                              "dump_addr": 200, "dump_words": dut.words,
                              "runs": [{"latency": latency}, random_knobs]})
    fixed, stalled = res["memory_selftest"]
    for run in (fixed, stalled):
        assert run["dump"] == dut.expected(source)
    assert fixed["cycles"] == latency + 2 * dut.words
    assert fixed["stats"]["stall_cycles"] == 0
    assert [accepted for accepted, _, _ in fixed["log"][:rows]] == list(range(rows))
    assert fixed["log"][0][1] == latency
    # Exact, as in the Amaranth simulator: no request stalls in this run.
    assert stalled["stats"]["stall_cycles"] > 0
    assert stalled["cycles"] == 2 + 2 * dut.words + stalled["stats"]["stall_cycles"]
