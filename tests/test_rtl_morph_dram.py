"""Amaranth-simulator tests of Morph's DRAM transfer engine (``DramEngine``): fills and
write-backs of random tiles word for word against a plain enumeration of the rows, the
busy cycles exact with a fixed-latency memory and within the counted stalls with a random
one, a round trip, the error rule, real layers' jobs replayed against the Python machine,
and bad parameters.

The engine sits behind the memory model (:mod:`dnnhw.sim.memory`) and in front of a real
``amaranth.lib.memory.Memory`` as its L2 (a synchronous, non-transparent read port with
enable, one write port).
"""

import itertools
import random

import numpy as np
import pytest
from amaranth.hdl import Module, unsigned
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from dnnhw.rtl.morph_dram import DramEngine
from dnnhw.sim.memory import MemoryModel, attach_amaranth


#: The engine of most tests: a 1 Ki-word DRAM, rows of up to 63 words, a 512-word L2.
WIDTHS = {"value_width": 32, "addr_width": 10, "length_width": 6, "l2_addr_width": 9,
          "word_width": 32}
#: The narrowest registers and words, a 16-word L2.
NARROW = {"value_width": 16, "addr_width": 8, "length_width": 4, "l2_addr_width": 5,
          "word_width": 8}


class Job:
    """One job's registers (plain ints; a negative value is its two's complement)."""

    def __init__(self, write, rows, row_len, strides, dram_addr, l2_addr):
        self.write, self.rows, self.row_len = int(write), tuple(rows), row_len
        self.strides, self.dram_addr, self.l2_addr = tuple(strides), dram_addr, l2_addr

    @property
    def words(self):
        return self.rows[0] * self.rows[1] * self.rows[2] * self.row_len

    def __repr__(self):
        kind = "write-back" if self.write else "fill"
        return (f"<{kind} rows={self.rows} row_len={self.row_len} strides={self.strides} "
                f"dram={self.dram_addr} l2={self.l2_addr}>")


# --- the reference: the job's rule, enumerated ---------------------------------------------

def _signed(value, width):
    value &= (1 << width) - 1
    return value - (1 << width) if value >> (width - 1) else value


def reference(job, dram, l2, widths):
    """``(dram, l2, error, words)`` after ``job`` by the engine's documented rule: the
    up-front checks, then the rows in row-major order, each moved whole until the first
    one outside the DRAM or the L2."""
    vw = widths["value_width"]
    dram, l2 = list(dram), list(l2)
    rows = [_signed(r, vw) for r in job.rows]
    row_len = _signed(job.row_len, vw)
    l2_at = _signed(job.l2_addr, vw)
    if not (all(1 <= r <= (1 << DramEngine.COUNT_WIDTH) - 1 for r in rows)
            and 1 <= row_len <= (1 << widths["length_width"]) - 1
            and 0 <= l2_at < (1 << widths["l2_addr_width"])):
        return dram, l2, True, 0
    words = 0
    for index in itertools.product(*(range(r) for r in rows)):
        at = _signed(job.dram_addr + sum(i * s for i, s in zip(index, job.strides)), vw)
        if (at < 0 or at + row_len > (1 << widths["addr_width"])
                or l2_at + row_len > (1 << widths["l2_addr_width"])):
            return dram, l2, True, words
        for w in range(row_len):
            if job.write:
                dram[at + w] = l2[l2_at]
            else:
                l2[l2_at] = dram[at + w]
            l2_at += 1
            words += 1
    return dram, l2, False, words


# --- the bench --------------------------------------------------------------------------

def run_jobs(jobs, dram, l2, *, widths=WIDTHS, latency=3, settle=4, **memory_kwargs):
    """Run ``jobs`` one after another on one engine, the DRAM (``2**addr_width`` words,
    initially ``dram``) behind the memory model, the L2 (initially ``l2``) a real memory.
    Returns ``(dram, l2, results)``, one dict per job: ``busy`` (cycles), ``error``
    (cycles it was high, counted from the start to ``settle`` cycles after busy fell),
    ``error_first`` (high in the first cycle busy was low), ``beats``, ``waiting``,
    ``stalls`` and ``requests`` (the memory's counts during the job)."""
    dut = DramEngine(**widths)
    depth = 1 << widths["addr_width"]
    memory = MemoryModel(depth, data_width=widths["word_width"],
                         addr_width=widths["addr_width"],
                         length_width=widths["length_width"], latency=latency,
                         **memory_kwargs)
    memory.write_words(0, dram)
    top = Module()
    top.submodules.engine = dut
    top.submodules.l2 = store = Memory(shape=unsigned(widths["word_width"]),
                                       depth=1 << widths["l2_addr_width"], init=l2)
    write, read = store.write_port(), store.read_port()
    top.d.comb += [write.addr.eq(dut.l2_waddr), write.data.eq(dut.l2_wdata),
                   write.en.eq(dut.l2_we), read.addr.eq(dut.l2_raddr),
                   read.en.eq(dut.l2_re), dut.l2_rdata.eq(read.data)]
    sim = Simulator(top)
    sim.add_clock(1e-6)
    attach_amaranth(sim, memory, dut.mem_req, dut.mem_wdata, dut.mem_rdata)
    vmask = (1 << widths["value_width"]) - 1
    results = []
    final = {}
    watched = (dut.busy, dut.error, dut.beat, dut.waiting, dut.mem_req.valid,
               dut.mem_wdata.valid, dut.mem_rdata.ready, dut.l2_we, dut.l2_re)

    def idle_ports(values):
        return not any(values[4:])

    async def bench(ctx):
        for job in jobs:
            stalls, requests = memory.stall_cycles, memory.requests
            ctx.set(dut.write, job.write)
            for k in range(3):
                ctx.set(dut.rows[k], job.rows[k] & vmask)
                ctx.set(dut.strides[k], job.strides[k] & vmask)
            ctx.set(dut.row_len, job.row_len & vmask)
            ctx.set(dut.dram_addr, job.dram_addr & vmask)
            ctx.set(dut.l2_addr, job.l2_addr & vmask)
            ctx.set(dut.start, 1)
            _, _, *values = await ctx.tick().sample(*watched)
            assert not values[0] and idle_ports(values), "busy or driving before start"
            ctx.set(dut.start, 0)
            result = {"busy": 0, "error": 0, "beats": 0, "waiting": 0}
            while True:
                _, _, *values = await ctx.tick().sample(*watched)
                busy, error, beat, waiting = values[:4]
                if result["busy"] == 0:
                    assert busy, "busy is not high in the cycle after start"
                if not busy:
                    break
                assert not error, "error while busy"
                assert beat + waiting == 1
                result["busy"] += 1
                result["beats"] += beat
                result["waiting"] += waiting
                assert result["busy"] < 5000, f"{job}: still busy after 5000 cycles"
            result["error_first"] = bool(error)
            result["error"] = error
            assert not beat and not waiting and idle_ports(values)
            for _ in range(settle):
                _, _, *values = await ctx.tick().sample(*watched)
                assert not values[0] and not values[2] and idle_ports(values)
                result["error"] += values[1]
            memory.check_idle()
            result["stalls"] = memory.stall_cycles - stalls
            result["requests"] = memory.requests - requests
            results.append(result)
        final["l2"] = [ctx.get(store.data[i]) for i in range(1 << widths["l2_addr_width"])]

    sim.add_testbench(bench)
    sim.run()
    return [int(v) for v in memory.read_words(0, depth)], final["l2"], results


def random_contents(widths, rng):
    bits = widths["word_width"]
    return ([rng.getrandbits(bits) for _ in range(1 << widths["addr_width"])],
            [rng.getrandbits(bits) for _ in range(1 << widths["l2_addr_width"])])


def random_job(rng, widths=WIDTHS, *, write=None, max_count=4, max_len=6):
    """A legal job: counts 1..4, row_len 1..6, strides of a dense, padded, overlapping or
    arbitrary layout, bases that keep every row in the DRAM and the tile in the L2."""
    rows = [rng.randint(1, max_count) for _ in range(3)]
    row_len = rng.randint(1, max_len)
    kind = rng.choice(["dense", "padded", "overlapping", "random"])
    if kind == "dense":
        s2 = row_len
        strides = [rows[1] * rows[2] * s2, rows[2] * s2, s2]
    elif kind == "padded":
        s2 = row_len + rng.randint(1, 3)
        s1 = rows[2] * s2 + rng.randint(0, 5)
        strides = [rows[1] * s1 + rng.randint(0, 5), s1, s2]
    elif kind == "overlapping":
        strides = [rng.randint(0, row_len) for _ in range(3)]
    else:
        strides = [rng.randint(0, 40) for _ in range(3)]
    span = sum((r - 1) * s for r, s in zip(rows, strides)) + row_len
    words = rows[0] * rows[1] * rows[2] * row_len
    return Job(rng.randint(0, 1) if write is None else write, rows, row_len, strides,
               rng.randint(0, (1 << widths["addr_width"]) - span),
               rng.randint(0, (1 << widths["l2_addr_width"]) - words))


def check_jobs(jobs, dram, l2, *, widths=WIDTHS, **kwargs):
    """Run ``jobs`` and compare the memories after all of them, and each job's error and
    beats, with :func:`reference`; returns the results."""
    expected_dram, expected_l2 = dram, l2
    expected = []
    for job in jobs:
        expected_dram, expected_l2, error, words = reference(job, expected_dram,
                                                             expected_l2, widths)
        expected.append((error, words))
    got_dram, got_l2, results = run_jobs(jobs, dram, l2, widths=widths, **kwargs)
    assert got_l2 == expected_l2
    assert got_dram == expected_dram
    for job, result, (error, words) in zip(jobs, results, expected):
        assert (result["error"], result["error_first"]) == (int(error), error), job
        assert result["beats"] == words, job
        assert result["waiting"] == result["busy"] - words
    return results


# --- fixed latency: data and cycles exact ---------------------------------------------------

@pytest.mark.parametrize("latency", [1, 2, 5, 9])
@pytest.mark.parametrize("seed", range(3))
def test_random_jobs_fixed_latency_exact(latency, seed):
    rng = random.Random(seed * 100 + latency)
    dram, l2 = random_contents(WIDTHS, rng)
    jobs = [random_job(rng) for _ in range(8)]
    results = check_jobs(jobs, dram, l2, latency=latency)
    for job, result in zip(jobs, results):
        fixed = (job.words + DramEngine.WRITE_OVERHEAD if job.write
                 else job.words + latency + DramEngine.READ_OVERHEAD)
        assert result["busy"] == fixed, job
        assert result["requests"] == job.rows[0] * job.rows[1] * job.rows[2]
        assert result["stalls"] == 0


def test_overheads_are_the_documented_constants():
    assert (DramEngine.READ_OVERHEAD, DramEngine.WRITE_OVERHEAD) == (0, 1)
    for job in (Job(0, (1, 1, 1), 1, (0, 0, 0), 5, 7), Job(1, (1, 1, 1), 1, (0, 0, 0), 5, 7),
                Job(0, (2, 3, 4), 1, (100, 20, 1), 0, 0),
                Job(1, (4, 1, 1), 6, (6, 0, 0), 17, 3)):
        _, _, (result,) = run_jobs([job], *random_contents(WIDTHS, random.Random(1)),
                                   latency=4)
        assert result["busy"] == job.words + (1 if job.write else 4)


@pytest.mark.parametrize("seed", range(2))
def test_narrow_widths(seed):
    rng = random.Random(seed)
    dram, l2 = random_contents(NARROW, rng)
    jobs = [random_job(rng, NARROW, max_count=2, max_len=4) for _ in range(6)]
    results = check_jobs(jobs, dram, l2, widths=NARROW, latency=2)
    for job, result in zip(jobs, results):
        assert result["busy"] == job.words + (1 if job.write else 2)


# --- random latency, gaps and backpressure: data exact, cycles bounded ----------------------

KNOBS = [
    {"jitter": 6, "rdata_pause": 0.3},
    {"jitter": 2, "rdata_pause": {"name": "bursts", "go": 3, "stall": 2}, "req_pause": 0.5},
    {"req_pause": 0.6, "wdata_pause": 0.4},
    {"jitter": 4, "rdata_pause": 0.3, "req_pause": {"name": "every", "n": 3},
     "wdata_pause": {"name": "bursts", "go": 2, "stall": 3}},
]


@pytest.mark.parametrize("knobs", KNOBS)
@pytest.mark.parametrize("seed", range(2))
def test_random_memory_correct_and_within_the_stalls(knobs, seed):
    rng = random.Random(1000 + seed)
    dram, l2 = random_contents(WIDTHS, rng)
    jobs = [random_job(rng) for _ in range(8)]
    latency = 3
    results = check_jobs(jobs, dram, l2, latency=latency, seed=seed, **knobs)
    assert sum(r["stalls"] for r in results) > 0
    for job, result in zip(jobs, results):
        fixed = (job.words + DramEngine.WRITE_OVERHEAD if job.write
                 else job.words + latency + DramEngine.READ_OVERHEAD)
        assert fixed <= result["busy"] <= fixed + result["stalls"], job


def test_write_back_data_never_lost_or_duplicated_under_heavy_backpressure():
    rng = random.Random(7)
    dram, l2 = random_contents(WIDTHS, rng)
    jobs = [Job(1, (2, 3, 2), 5, (40, 11, 5), 31, 100), Job(1, (1, 1, 4), 1, (0, 0, 1), 0, 0),
            Job(1, (3, 1, 1), 6, (0, 0, 0), 500, 17)]   # the same row three times
    check_jobs(jobs, dram, l2, wdata_pause=0.7, req_pause=0.7, seed=3)


# --- a round trip -----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(3))
def test_write_back_then_fill_round_trips(seed):
    rng = random.Random(seed)
    dram, l2 = random_contents(WIDTHS, rng)
    # Rows that do not overlap, so the tile survives in DRAM as written.
    rows = [rng.randint(1, 3) for _ in range(3)]
    row_len = rng.randint(1, 6)
    s2 = row_len + rng.randint(0, 2)
    s1 = rows[2] * s2 + rng.randint(0, 3)
    strides = (rows[1] * s1 + rng.randint(0, 3), s1, s2)
    back = Job(1, rows, row_len, strides, rng.randint(0, 300), rng.randint(0, 100))
    fill = Job(0, rows, row_len, strides, back.dram_addr, 300)
    out_dram, out_l2, _ = run_jobs([back, fill], dram, l2, seed=seed, jitter=3,
                                   rdata_pause=0.2, wdata_pause=0.2, req_pause=0.2)
    words = back.words
    assert out_l2[300:300 + words] == l2[back.l2_addr:back.l2_addr + words]
    assert out_l2[:300] == l2[:300]
    # Only the tile's rows changed in DRAM.
    touched = {back.dram_addr + sum(i * s for i, s in zip(index, strides)) + w
               for index in itertools.product(*(range(r) for r in rows))
               for w in range(row_len)}
    assert all(out_dram[a] == dram[a] for a in range(len(dram)) if a not in touched)


# --- errors ---------------------------------------------------------------------------------

L2_WORDS = 1 << WIDTHS["l2_addr_width"]
DRAM_WORDS = 1 << WIDTHS["addr_width"]
ERRORS = {
    # caught at start: nothing moves, busy for one cycle
    "zero count": (Job(0, (2, 0, 3), 4, (20, 5, 1), 0, 0), "start"),
    "zero row_len": (Job(0, (1, 2, 3), 0, (20, 5, 1), 0, 0), "start"),
    "row too long": (Job(0, (1, 1, 2), 64, (0, 0, 64), 0, 0), "start"),
    "negative row_len": (Job(0, (1, 1, 1), -3, (0, 0, 0), 0, 0), "start"),
    "count over the walker": (Job(0, (1 << 16, 1, 1), 1, (1, 0, 0), 0, 0), "start"),
    "negative count": (Job(0, (1, -1, 1), 1, (1, 0, 0), 0, 0), "start"),
    "l2_addr past the L2": (Job(0, (1, 1, 1), 1, (0, 0, 0), 0, L2_WORDS), "start"),
    "negative l2_addr": (Job(0, (1, 1, 1), 1, (0, 0, 0), 0, -1), "start"),
    # caught at a row: the rows before it move
    "first row past the DRAM": (Job(0, (1, 1, 2), 4, (0, 0, 4), DRAM_WORDS - 2, 0), "row"),
    "negative dram_addr": (Job(0, (1, 1, 2), 4, (0, 0, 4), -8, 0), "row"),
    "a later row past the DRAM": (Job(0, (2, 3, 1), 5, (600, 100, 0), 300, 10), "row"),
    "a row reaching past the end": (Job(0, (1, 1, 3), 6, (0, 0, 8), DRAM_WORDS - 20, 0),
                                    "row"),
    "a negative stride below 0": (Job(0, (1, 2, 3), 2, (0, -42, 4), 40, 0), "row"),
    "the tile past the L2": (Job(0, (2, 2, 2), 6, (50, 12, 6), 0, L2_WORDS - 30), "row"),
    "tile exactly fills the L2 end": (Job(0, (1, 2, 3), 5, (0, 15, 5), 0, L2_WORDS - 30),
                                      None),
    "row exactly at the DRAM end": (Job(0, (1, 1, 2), 4, (0, 0, 4), DRAM_WORDS - 8, 0),
                                    None),
}


@pytest.mark.parametrize("knobs", [{}, {"jitter": 3, "rdata_pause": 0.3, "req_pause": 0.3,
                                        "wdata_pause": 0.3}], ids=["fixed", "random"])
@pytest.mark.parametrize("write", [0, 1], ids=["fill", "write-back"])
def test_errors_finish_cleanly(write, knobs):
    """Every case of ERRORS, each followed by a good job (the engine recovers), in one
    simulation; the memories after all of them equal the reference's."""
    rng = random.Random(write)
    dram, l2 = random_contents(WIDTHS, rng)
    jobs = []
    for name, (job, caught) in ERRORS.items():
        jobs += [Job(write, job.rows, job.row_len, job.strides, job.dram_addr, job.l2_addr),
                 random_job(rng, write=rng.randint(0, 1))]
    results = check_jobs(jobs, dram, l2, seed=5, **knobs)
    for (name, (_, caught)), job, result, good in zip(ERRORS.items(), jobs[::2],
                                                      results[::2], results[1::2]):
        words = reference(job, dram, l2, WIDTHS)[3]
        assert result["error"] == (caught is not None), name
        if caught == "start":
            assert result["busy"] == 1 and result["requests"] == 0, name
        elif caught == "row":
            assert 0 <= words < job.words, name
        else:
            assert words == job.words, name
        assert good["error"] == 0, name


# Strides and bases that a walk in fewer bits than value_width could alias back into the
# DRAM (addr_width 10: the engine walks 12-bit row addresses): multiples of 2**12 plus a
# little, values beyond +-2**10, near 2**31 and -2**31, which the rule reads modulo 2**32.
ALIASING = [1 << 12, (1 << 12) + 3, -(1 << 12) + 5, (1 << 10) + 1, -(1 << 10) - 1,
            1 << 10, -(1 << 10), (1 << 10) - 1, (1 << 31) - 1, -(1 << 31), (1 << 31) + 7,
            (1 << 20) + 40, 3 << 12, -(7 << 12) + 100]


@pytest.mark.parametrize("seed", range(3))
def test_strides_and_bases_that_would_alias_in_fewer_bits(seed):
    """The row addresses are the job registers' sums modulo 2**value_width, whatever the
    hardware walks them in: a row beyond the DRAM by a multiple of 2**12 (or of 2**32)
    is outside, a row wrapping modulo 2**32 back into the DRAM is inside."""
    rng = random.Random(300 + seed)
    dram, l2 = random_contents(WIDTHS, rng)
    jobs = []
    for _ in range(10):
        job = random_job(rng)
        strides = list(job.strides)
        strides[rng.randrange(3)] = rng.choice(ALIASING)
        dram_addr = job.dram_addr
        if rng.random() < 0.3:
            dram_addr = rng.choice(ALIASING) + rng.randint(0, 30)
        jobs.append(Job(job.write, job.rows, job.row_len, strides, dram_addr, job.l2_addr))
    # A stride of 2**32 - 1 is -1: back to the row before, inside the DRAM; one of 2**31
    # twice comes back to the first row modulo 2**32.
    jobs += [Job(0, (1, 1, 3), 2, (0, 0, (1 << 32) - 1), 40, 0),
             Job(1, (1, 3, 1), 3, (0, 1 << 31, 0), 20, 9),
             Job(0, (3, 1, 1), 1, ((1 << 31) + 1, 0, 0), 0, 3)]
    results = check_jobs(jobs, dram, l2, seed=seed)
    assert any(r["error"] for r in results) and not all(r["error"] for r in results)


def test_error_is_one_pulse_after_busy_falls():
    job = Job(0, (1, 1, 1), 0, (0, 0, 0), 0, 0)
    _, _, (result,) = run_jobs([job], *random_contents(WIDTHS, random.Random(2)), settle=10)
    assert result == {"busy": 1, "error": 1, "error_first": True, "beats": 0, "waiting": 1,
                      "stalls": 0, "requests": 0}


# --- a real layer's jobs, replayed against the machine ----------------------------------------

def _machine_jobs(latency):
    """The DRAM jobs of a small layer run on the Python machine (C spilled at the L2, so
    partial sums are written back and refilled; ragged W tiles, so input rows are clipped):
    ``[(run, job, dram before, l2 before, dram after, l2 after), ...]``."""
    from dnnhw.golden.morph import Layer, Mapping
    from dnnhw.rtl.morph_program import sequencer_program
    from dnnhw.sim.morph_loader import ArrayShape, configure, layout
    from dnnhw.sim.morph_machine import Machine

    layer = Layer(C=3, F=3, H=4, W=5, K=3, T=3, R=3, S=3, padding=1, name="replay")
    mapping = Mapping(outer_order="CKFHW", inner_order="KCFHW", l2_tile=(2, 2, 2, 3, 3),
                      l1_tile=(1, 1, 1, 2, 3), parallel=(1, 2, 2), l2_banks=(2, 2, 2),
                      l1_banks=(1, 1, 1))
    shape = ArrayShape(kp=2, hp=2, wp=2, l2_banks=8, l2_bank_words=64, l1_input_words=256,
                       l1_weight_words=256, l1_psum_entries=64)
    config = configure(layer, mapping, shape)
    place = layout(layer)
    rng = np.random.default_rng(0)
    dram = [0] * place["words"]
    dram[:place["y_base"]] = rng.integers(-128, 128, place["y_base"]).tolist()
    captured = []
    before = {}

    def hook(run, job, machine, when):
        if not run.startswith("dram_"):
            return
        if when == "before":
            before.update(dram=list(machine.dram), l2=list(machine.l2))
        else:
            captured.append((run, dict(job), before["dram"], before["l2"],
                             list(machine.dram), list(machine.l2)))

    machine = Machine.for_shape(sequencer_program(), shape, value_width=32,
                                memory_latency=latency, on_job=hook)
    machine.run(config, dram)
    return captured


REPLAY = {"value_width": 32, "addr_width": 10, "length_width": 8, "l2_addr_width": 9,
          "word_width": 32}
UNSET = 0xDEADBEEF      # an L2 word the machine never wrote


def _words(values, size):
    out = [UNSET if v is None else v & 0xFFFFFFFF for v in values]
    return out + [0] * (size - len(out))


def test_replay_a_real_layers_dram_jobs():
    latency = 5
    captured = _machine_jobs(latency)
    kinds = {run for run, *_ in captured}
    assert kinds == {"dram_read_inputs", "dram_read_weights", "dram_read_psums",
                     "dram_write_psums"}
    # The first of each kind, a clipped input tile, a late write-back and the last job.
    picks = [next(i for i, c in enumerate(captured) if c[0] == run) for run in sorted(kinds)]
    picks += [next(i for i, c in enumerate(captured)
                   if c[0] == "dram_read_inputs" and c[1]["row_len"] == 3),
              max(i for i, c in enumerate(captured) if c[0] == "dram_write_psums"),
              len(captured) - 1]
    dram_words, l2_words = 1 << REPLAY["addr_width"], 1 << REPLAY["l2_addr_width"]
    for i in sorted(set(picks)):
        run, job, dram_before, l2_before, dram_after, l2_after = captured[i]
        write = run.startswith("dram_write")
        engine_job = Job(write, (job["rows0"], job["rows1"], job["rows2"]), job["row_len"],
                         (job["ds0"], job["ds1"], job["ds2"]), job["dram_addr"],
                         job["l2_addr"])
        got_dram, got_l2, (result,) = run_jobs(
            [engine_job], _words(dram_before, dram_words), _words(l2_before, l2_words),
            widths=REPLAY, latency=latency)
        assert got_dram == _words(dram_after, dram_words), (run, job)
        assert got_l2 == _words(l2_after, l2_words), (run, job)
        assert result["error"] == 0
        overhead = (DramEngine.WRITE_OVERHEAD if write
                    else latency + DramEngine.READ_OVERHEAD)
        assert result["busy"] == engine_job.words + overhead


# --- parameters -------------------------------------------------------------------------------

@pytest.mark.parametrize("name, value, error", [
    ("value_width", 15, ValueError), ("value_width", 33, ValueError),
    ("value_width", 32.0, TypeError),
    ("addr_width", 7, ValueError), ("addr_width", 33, ValueError),
    ("addr_width", "24", TypeError),
    ("length_width", 3, ValueError), ("length_width", 17, ValueError),
    ("length_width", True, TypeError),
    ("l2_addr_width", 3, ValueError), ("l2_addr_width", 25, ValueError),
    ("l2_addr_width", None, TypeError),
    ("word_width", 7, ValueError), ("word_width", 65, ValueError),
    ("word_width", 8.5, TypeError),
])
def test_bad_parameters_are_named(name, value, error):
    params = {"l2_addr_width": 10, name: value}
    with pytest.raises(error, match=f"{name} must be"):
        DramEngine(**params)


def test_parameters_and_defaults():
    engine = DramEngine(l2_addr_width=12)
    assert (engine.value_width, engine.addr_width, engine.length_width,
            engine.l2_addr_width, engine.word_width) == (32, 24, 12, 12, 32)
    with pytest.raises(TypeError):
        DramEngine()
    with pytest.raises(TypeError):
        DramEngine(32, l2_addr_width=12)
    assert len(engine.mem_req.payload.addr) == 24
    assert len(engine.mem_req.payload.length) == 12
    assert len(engine.l2_waddr) == len(engine.l2_raddr) == 12
