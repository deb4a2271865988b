"""Amaranth-simulator tests of Morph's L2-L1 transfer engine: random jobs of each operand
and direction, word for word against an enumeration of the rule; busy cycles exact; jobs
back to back; every refused or failing job ends with ``error`` and moves nothing
outside the buffers; and real jobs of the sequencer replayed from the Python machine,
the engine's destination equal to the machine's after each; and bad parameters."""

import copy
import itertools
import random

import pytest
from amaranth.sim import Simulator

from dnnhw.golden.morph import Layer, Mapping
from dnnhw.rtl.morph_l2l1 import L2L1Engine
from dnnhw.rtl.morph_program import RUNS, sequencer_program
from dnnhw.sim.morph_loader import ArrayShape, check, configure, layout
from dnnhw.sim.morph_machine import Machine

OPERANDS = ("inputs", "weights", "psums")

#: The engine of most tests: a block built larger than most jobs' blocks, an L2 that is
#: not a power of two.
PARAMS = dict(kp=2, hp=3, wp=2, value_width=20, l2_addr_width=9, l2_words=300,
              word_width=16, l1_input_words=80, l1_weight_words=60, psum_entries=24)


def _job(operand, *, write=0, counts=(1, 1, 1, 1), strides=(0, 0, 0), l2_addr=0,
         entry_strides=(0, 0, 0), block=(1, 1, 1)):
    return {"write": write, "operand": operand, "counts": list(counts),
            "strides": list(strides), "l2_addr": l2_addr,
            "entry_strides": list(entry_strides), "block": list(block)}


def reference(job, dut, *, wrap=False):
    """``(moves, error)`` of ``job`` from the rule (``Machine._engine``): ``moves`` lists,
    in order, ``(l2 address, destination)`` of the words moved, the destination
    ``("inputs", address)``, ``("weights", address)`` or ``("psums", bank, entry)``;
    ``error`` says the job was refused or stopped at an illegal word (the words before
    it moved). Arithmetic on plain ints: no wrapping, unless ``wrap``: then addresses and
    entries are the sums modulo ``2 ** value_width``, as the engine documents."""
    mask = (1 << dut.value_width) - 1 if wrap else -1
    operand, counts = job["operand"], job["counts"]
    kp_run, hp_run, wp_run = job["block"]
    if (operand == 3 or (job["write"] and operand != 2)
            or any(not 1 <= n <= 65535 for n in counts)
            or (operand == 2 and not (1 <= kp_run <= dut.kp and 1 <= hp_run <= dut.hp
                                      and 1 <= wp_run <= dut.wp))):
        return [], True
    strides = job["strides"] + [1]
    e0, e1, e2 = job["entry_strides"]
    moves = []
    for position, idx in enumerate(itertools.product(*(range(n) for n in counts))):
        l2 = job["l2_addr"] + sum(i * s for i, s in zip(idx, strides)) & mask
        if not 0 <= l2 < dut.l2_words:
            return moves, True
        if operand == 2:
            k, f, h, w = idx
            bank = ((k % kp_run) * dut.hp + h % hp_run) * dut.wp + w % wp_run
            entry = k // kp_run * e0 + f * e1 + h // hp_run * e2 + w // wp_run & mask
            if not 0 <= entry < dut.psum_entries:
                return moves, True
            moves.append((l2, ("psums", bank, entry)))
        else:
            limit = dut.l1_input_words if operand == 0 else dut.l1_weight_words
            if position >= limit:
                return moves, True
            moves.append((l2, (OPERANDS[operand], position)))
    return moves, False


def expected_writes(job, moves, memories):
    """The writes ``moves`` make, in order, from ``memories`` as they are before the job
    (a job never writes what it reads)."""
    out = []
    for l2, dest in moves:
        if job["write"]:
            out.append(("l2", l2, memories["psums"][dest[1]][dest[2]]))
        elif dest[0] == "psums":
            out.append(("psums", dest[1], dest[2], memories["l2"][l2]))
        else:
            out.append((dest[0], dest[1], memories["l2"][l2]))
    return out


def random_memories(dut, rng):
    mask = (1 << dut.word_width) - 1
    return {"l2": [rng.randint(0, mask) for _ in range(dut.l2_words)],
            "inputs": [rng.randint(0, mask) for _ in range(dut.l1_input_words)],
            "weights": [rng.randint(0, mask) for _ in range(dut.l1_weight_words)],
            "psums": [[rng.randint(0, mask) for _ in range(dut.psum_entries)]
                      for _ in range(dut.kp * dut.hp * dut.wp)]}


class Result:
    """What one job did: its writes in order, busy cycles, beats, and the cycles (from
    its start) where ``error`` was high."""

    def __init__(self):
        self.writes, self.busy, self.beats, self.errors = [], 0, 0, []


def simulate(dut, jobs, memories, *, gaps=0, seed=0):
    """Run ``jobs`` one after the other on ``dut`` with ``memories`` (updated in place)
    behind its ports; each job starts in the first cycle ``busy`` is low, or up to
    ``gaps`` idle cycles later (job registers scrambled meanwhile). Returns one
    :class:`Result` per job. Fails on any access outside a buffer, on activity while
    idle, and on a job that does not end."""
    rng = random.Random(seed)
    mask = (1 << dut.value_width) - 1
    results = []
    n_banks = dut.kp * dut.hp * dut.wp

    def set_job(ctx, job):
        ctx.set(dut.write, job["write"])
        ctx.set(dut.operand, job["operand"])
        for l in range(4):
            ctx.set(dut.counts[l], job["counts"][l] & mask)
        for l in range(3):
            ctx.set(dut.strides[l], job["strides"][l] & mask)
            ctx.set(dut.entry_strides[l], job["entry_strides"][l] & mask)
        ctx.set(dut.l2_addr, job["l2_addr"] & mask)
        for port, value in zip((dut.kp_run, dut.hp_run, dut.wp_run), job["block"]):
            ctx.set(port, value & mask)

    def scramble(ctx):
        set_job(ctx, {"write": rng.randint(0, 1), "operand": rng.randint(0, 3),
                      "counts": [rng.getrandbits(dut.value_width) for _ in range(4)],
                      "strides": [rng.getrandbits(dut.value_width) for _ in range(3)],
                      "entry_strides": [rng.getrandbits(dut.value_width)
                                        for _ in range(3)],
                      "l2_addr": rng.getrandbits(dut.value_width),
                      "block": [rng.getrandbits(dut.value_width) for _ in range(3)]})

    def idle_is_quiet(ctx):
        for port in (dut.busy, dut.beat, dut.l2_re, dut.l2_we, dut.in_we, dut.w_we,
                     dut.bank_we, dut.bank_re):
            assert not ctx.get(port), f"{port.name} while idle"

    def cycle(ctx, result):
        """This cycle's port activity on the memories; returns the reads to answer."""
        writes = []
        if ctx.get(dut.in_we):
            addr = ctx.get(dut.in_waddr)
            assert addr < dut.l1_input_words
            writes.append(("inputs", addr, ctx.get(dut.in_wdata)))
        if ctx.get(dut.w_we):
            addr = ctx.get(dut.w_waddr)
            assert addr < dut.l1_weight_words
            writes.append(("weights", addr, ctx.get(dut.w_wdata)))
        if ctx.get(dut.bank_we):
            bank, entry = ctx.get(dut.bank), ctx.get(dut.entry)
            assert bank < n_banks and entry < dut.psum_entries
            writes.append(("psums", bank, entry, ctx.get(dut.bank_wdata)))
        if ctx.get(dut.l2_we):
            addr = ctx.get(dut.l2_waddr)
            assert addr < dut.l2_words
            writes.append(("l2", addr, ctx.get(dut.l2_wdata)))
        assert len(writes) <= 1 and ctx.get(dut.beat) == len(writes)
        reads = {}
        if ctx.get(dut.l2_re):
            addr = ctx.get(dut.l2_raddr)
            assert addr < dut.l2_words
            reads["l2"] = memories["l2"][addr]
        if ctx.get(dut.bank_re):
            assert not ctx.get(dut.bank_we)
            bank, entry = ctx.get(dut.bank), ctx.get(dut.entry)
            assert bank < n_banks and entry < dut.psum_entries
            reads["bank"] = memories["psums"][bank][entry]
        for w in writes:
            if w[0] == "psums":
                memories["psums"][w[1]][w[2]] = w[3]
            else:
                memories[w[0]][w[1]] = w[2]
        result.writes += writes
        result.beats += len(writes)
        return reads

    async def answer(ctx, reads):
        """After the clock edge: the read port's data (held when there was no read)."""
        if "l2" in reads:
            ctx.set(dut.l2_rdata, reads["l2"])
        if "bank" in reads:
            ctx.set(dut.bank_rdata, reads["bank"])

    async def bench(ctx):
        ctx.set(dut.l2_rdata, rng.getrandbits(dut.word_width))
        ctx.set(dut.bank_rdata, rng.getrandbits(dut.word_width))
        pending_error = None    # the previous result, whose error shows this cycle
        for job in jobs:
            for _ in range(rng.randint(0, gaps)):
                scramble(ctx)
                idle_is_quiet(ctx)
                if pending_error is not None:
                    if ctx.get(dut.error):
                        pending_error.errors.append("fall")
                    pending_error = None
                else:
                    assert not ctx.get(dut.error)
                await ctx.tick()
            result = Result()
            set_job(ctx, job)
            idle_is_quiet(ctx)
            if pending_error is not None:
                if ctx.get(dut.error):
                    pending_error.errors.append("fall")
            else:
                assert not ctx.get(dut.error)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            while ctx.get(dut.busy):
                assert not ctx.get(dut.error), "error while busy"
                result.busy += 1
                assert result.busy < 5000, "the job does not end"
                reads = cycle(ctx, result)
                await ctx.tick()
                await answer(ctx, reads)
            results.append(result)
            pending_error = result
        # The last job's error, then quiet.
        if ctx.get(dut.error):
            pending_error.errors.append("fall")
        for _ in range(3):
            await ctx.tick()
            idle_is_quiet(ctx)
            assert not ctx.get(dut.error), "error longer than one cycle"

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return results


def run_and_check(dut, jobs, memories, *, gaps=0, seed=0, wrap=False):
    """Simulate ``jobs`` and check each against :func:`reference`: the writes in order,
    ``busy`` for the words moved plus ``OVERHEAD`` cycles, one ``error`` pulse as
    ``busy`` falls exactly when the reference fails. Returns the references."""
    plans = []
    state = copy.deepcopy(memories)
    for job in jobs:
        moves, error = reference(job, dut, wrap=wrap)
        writes = expected_writes(job, moves, state)
        for w in writes:
            if w[0] == "psums":
                state["psums"][w[1]][w[2]] = w[3]
            else:
                state[w[0]][w[1]] = w[2]
        plans.append((moves, error, writes))
    results = simulate(dut, jobs, memories, gaps=gaps, seed=seed)
    for n, ((moves, error, writes), result) in enumerate(zip(plans, results)):
        assert result.writes == writes, f"job {n}"
        assert result.busy == len(moves) + L2L1Engine.OVERHEAD, f"job {n}"
        assert result.errors == (["fall"] if error else []), f"job {n}"
    assert memories == state
    return plans


# ---- random jobs ---------------------------------------------------------------------

def random_job(rng, dut, operand, write=0):
    """A legal-looking job of ``operand``: the L2 tile a box inside a larger dense box,
    partial sums at the sequencer's entry strides for a random block."""
    while True:
        counts = [rng.choice([1, 1, 2, 3, 4, 5]) for _ in range(4)]
        s2 = counts[3] + rng.randint(0, 2)
        s1 = counts[2] * s2 + rng.randint(0, 3)
        s0 = counts[1] * s1 + rng.randint(0, 3)
        extent = (counts[0] - 1) * s0 + (counts[1] - 1) * s1 + (counts[2] - 1) * s2 \
            + counts[3]
        if extent > dut.l2_words:
            continue
        l2_addr = rng.randint(0, dut.l2_words - extent)
        block = [rng.randint(1, dut.kp), rng.randint(1, dut.hp), rng.randint(1, dut.wp)]
        e2 = -(-counts[3] // block[2])
        e1 = -(-counts[2] // block[1]) * e2
        e0 = counts[1] * e1
        job = _job(operand, write=write, counts=counts, strides=(s0, s1, s2),
                   l2_addr=l2_addr, entry_strides=(e0, e1, e2), block=block)
        if not reference(job, dut)[1]:
            return job


def wild_job(rng, dut):
    """Anything: random operands, directions, counts, negative strides, blocks out of
    range; mostly failing."""
    return _job(rng.randint(0, 3), write=rng.randint(0, 1),
                counts=[rng.choice([0, 1, 2, 3, 4, 6]) for _ in range(4)],
                strides=[rng.randint(-20, 60) for _ in range(3)],
                l2_addr=rng.randint(-5, dut.l2_words + 5),
                entry_strides=[rng.randint(-3, 12) for _ in range(3)],
                block=[rng.randint(0, dut.kp + 1), rng.randint(0, dut.hp + 1),
                       rng.randint(0, dut.wp + 1)])


@pytest.mark.parametrize("operand, write", [(0, 0), (1, 0), (2, 0), (2, 1)],
                         ids=["inputs", "weights", "psums-fill", "psums-writeback"])
@pytest.mark.parametrize("seed", range(2))
def test_random_jobs(operand, write, seed):
    rng = random.Random(seed * 10 + operand + write)
    dut = L2L1Engine(**PARAMS)
    jobs = [random_job(rng, dut, operand, write) for _ in range(6)]
    run_and_check(dut, jobs, random_memories(dut, rng), gaps=seed * 3, seed=seed)


def test_mixed_jobs_back_to_back():
    """Every kind of job, back to back with no idle cycle between them."""
    rng = random.Random(7)
    dut = L2L1Engine(**PARAMS)
    jobs = [random_job(rng, dut, *rng.choice([(0, 0), (1, 0), (2, 0), (2, 1)]))
            for _ in range(12)]
    run_and_check(dut, jobs, random_memories(dut, rng))


def test_wild_jobs():
    """Random jobs of any kind, most of them illegal somewhere, mixed with legal ones:
    each does exactly what the reference says and the engine always recovers."""
    rng = random.Random(11)
    dut = L2L1Engine(**PARAMS)
    jobs = []
    for _ in range(40):
        jobs.append(wild_job(rng, dut))
        if rng.random() < 0.3:
            jobs.append(random_job(rng, dut, *rng.choice([(0, 0), (1, 0), (2, 0), (2, 1)])))
    plans = run_and_check(dut, jobs, random_memories(dut, rng), gaps=1, seed=3)
    errors = [error for _, error, _ in plans]
    assert 10 < sum(errors) < len(errors)
    # Some failing jobs moved words before their failure.
    assert any(error and moves for moves, error, _ in plans)


#: Strides, bases and entry strides that an engine walking in fewer bits than
#: value_width (20 in PARAMS) could alias back into a buffer: multiples of 2**10 (the L2
#: addresses of PARAMS are walked in 10 bits, the entries in 6) and of 2**6 plus a little,
#: values beyond +-2**9 and +-2**5, near +-2**19 and 2**20 (which wrap).
ALIASING = [1 << 10, (1 << 10) + 3, -(1 << 10) + 5, (1 << 9) + 1, -(1 << 9) - 1, 1 << 9,
            -(1 << 9), (1 << 9) - 1, (1 << 19) - 1, -(1 << 19), (1 << 20) - 1, (1 << 20) + 7,
            1 << 6, (1 << 6) + 2, -(1 << 6) + 1, 33, -33, 32, -32, 31, 3 << 10, 1 << 11,
            (1 << 7) + 1]


@pytest.mark.parametrize("seed", range(3))
def test_strides_that_would_alias_in_fewer_bits(seed):
    """Addresses and entries are the sums modulo 2**value_width, whatever the hardware
    walks them in: a word beyond a buffer by a multiple of a power of two is outside it,
    one wrapping modulo 2**value_width back into it is inside."""
    rng = random.Random(60 + seed)
    dut = L2L1Engine(**PARAMS)
    jobs = []
    for _ in range(14):
        job = random_job(rng, dut, *rng.choice([(0, 0), (1, 0), (2, 0), (2, 1)]))
        field = rng.choice(["strides", "entry_strides", "l2_addr"])
        if field == "l2_addr":
            job["l2_addr"] = rng.choice(ALIASING) + rng.randint(0, 4)
        else:
            job[field][rng.randrange(3)] = rng.choice(ALIASING)
        jobs.append(job)
    # -1 as 2**20 - 1: back to the word before; 2**19 twice: back to the first word.
    jobs += [_job(0, counts=(1, 1, 3, 2), strides=(0, 0, (1 << 20) - 2), l2_addr=10),
             _job(2, counts=(1, 3, 1, 1), strides=(0, 1 << 19, 0), l2_addr=7,
                  entry_strides=(0, 1 << 19, 0)),
             _job(2, write=1, counts=(1, 1, 2, 2), strides=(0, 0, 2), l2_addr=5,
                  entry_strides=(0, 0, (1 << 20) - 1), block=(1, 1, 1)),
             # A huge entry stride at k by Kp 2: no step (and no error) until k wraps.
             _job(2, counts=(2, 1, 1, 2), strides=(2, 0, 0), l2_addr=3,
                  entry_strides=(1 << 11, 0, 0), block=(2, 1, 1)),
             _job(2, counts=(3, 1, 1, 2), strides=(2, 0, 0), l2_addr=3,
                  entry_strides=(1 << 11, 0, 0), block=(2, 1, 1))]
    plans = run_and_check(dut, jobs, random_memories(dut, rng), seed=seed, wrap=True)
    assert [(len(moves), error) for moves, error, _ in plans[-2:]] == [(4, False),
                                                                       (4, True)]
    errors = [error for _, error, _ in plans]
    assert any(errors) and not all(errors)


def test_single_words_and_long_rows():
    rng = random.Random(3)
    dut = L2L1Engine(**PARAMS)
    jobs = [_job(0, l2_addr=299), _job(1, counts=(1, 1, 1, 60), l2_addr=240),
            _job(2, l2_addr=5, block=(2, 3, 2)),
            _job(2, write=1, counts=(1, 1, 1, 2 * 24), l2_addr=200, block=(1, 1, 2))]
    run_and_check(dut, jobs, random_memories(dut, rng))


def test_psum_banks_use_the_built_block():
    """Bank ``(kk*hp + i)*wp + j`` with the built hp, wp, for a smaller job block:
    k in 0..4 by Kp 2, h in 0..3 by Hp 2, w in 0..2 by Wp 1 (every entry distinct)."""
    rng = random.Random(4)
    dut = L2L1Engine(**PARAMS)
    job = _job(2, counts=(5, 1, 4, 3), strides=(12, 12, 3), l2_addr=10,
               entry_strides=(6, 0, 3), block=(2, 2, 1))
    (moves, error, _), = run_and_check(dut, [job], random_memories(dut, rng))
    assert not error
    want = [((k % 2) * 3 + h % 2) * 2 for k in range(5) for h in range(4)
            for w in range(3)]
    assert [dest[1] for _, dest in moves] == want
    entries = [(dest[1], dest[2]) for _, dest in moves]
    assert len(set(entries)) == len(entries)


# ---- errors --------------------------------------------------------------------------

GOOD = _job(0, counts=(1, 2, 2, 3), strides=(0, 8, 4), l2_addr=20)


@pytest.mark.parametrize("job, moved", [
    (_job(0, counts=(0, 2, 2, 2)), 0),
    (_job(1, counts=(2, 2, 2, 0)), 0),
    (_job(2, counts=(1, 0, 1, 1), block=(1, 1, 1)), 0),
    (_job(0, counts=(1, 1, 1, 65536)), 0),
    (_job(3, counts=(1, 1, 1, 2)), 0),
    (_job(0, write=1, counts=(1, 1, 1, 2)), 0),
    (_job(1, write=1, counts=(1, 1, 1, 2)), 0),
    (_job(2, counts=(1, 1, 1, 2), block=(0, 1, 1)), 0),
    (_job(2, write=1, counts=(1, 1, 1, 2), block=(1, 4, 1)), 0),
    (_job(2, counts=(1, 1, 1, 2), block=(1, 1, 3)), 0),
    # The L2: past the end mid-row, a negative base, a negative stride.
    (_job(0, counts=(1, 1, 2, 5), strides=(0, 0, 5), l2_addr=292), 8),
    (_job(1, counts=(1, 1, 1, 4), l2_addr=-1), 0),
    (_job(0, counts=(1, 1, 3, 2), strides=(0, 0, -7), l2_addr=10), 4),
    (_job(2, write=1, counts=(1, 1, 1, 6), l2_addr=297, block=(1, 1, 1),
          entry_strides=(0, 0, 0)), 3),
    # The L1 copies and the PE banks.
    (_job(0, counts=(1, 1, 9, 9), strides=(0, 0, 9)), 80),
    (_job(1, counts=(1, 1, 1, 61)), 60),
    (_job(2, counts=(1, 1, 1, 30), block=(1, 1, 1)), 24),
    (_job(2, write=1, counts=(1, 3, 1, 2), strides=(0, 2, 0), block=(1, 1, 2),
          entry_strides=(0, 12, 0)), 4),
    (_job(2, counts=(1, 1, 2, 2), strides=(0, 0, 2), block=(1, 1, 1),
          entry_strides=(0, 0, -2)), 2),
], ids=lambda v: "" if isinstance(v, dict) else str(v))
def test_errors(job, moved):
    """Each bad job ends with one error pulse after exactly the words before its first
    illegal one, and the engine runs the next job normally."""
    rng = random.Random(5)
    dut = L2L1Engine(**PARAMS)
    plans = run_and_check(dut, [job, GOOD, job], random_memories(dut, rng))
    assert [(len(moves), error) for moves, error, _ in plans] == \
        [(moved, True), (12, False), (moved, True)]


# ---- real jobs -----------------------------------------------------------------------

REPLAY_LAYER = Layer(C=2, F=2, H=5, W=5, K=5, padding=1)
#: Kp, Hp, Wp = 2 on a 3 x 2 x 3 build; K1 = 3 (ragged against Kp), the second K and H
#: tiles ragged; C split so the partial sums are refilled and written back.
REPLAY_MAPPING = Mapping(outer_order="KCFHW", inner_order="CKFHW", l2_tile=(3, 2, 2, 5, 3),
                         l1_tile=(3, 1, 1, 3, 3), parallel=(2, 2, 2), l2_banks=(1, 1, 1),
                         l1_banks=(1, 1, 1))
REPLAY_SHAPE = ArrayShape(kp=3, hp=2, wp=3, l2_banks=3, l2_bank_words=256,
                          l1_input_words=120, l1_weight_words=100, l1_psum_entries=12)
WORD = 32
UNSET = 0xDEADBEEF      # an unset word of the machine (never read by a legal job)


def _image(machine):
    mask = (1 << WORD) - 1

    def word(value):
        return UNSET if value is None else value & mask

    return {"l2": [word(v) for v in machine.l2],
            "inputs": [word(v) for v in machine.l1["inputs"]],
            "weights": [word(v) for v in machine.l1["weights"]],
            "psums": [[word(v) for v in bank] for bank in machine.l1["psums"]]}


def _replayed_jobs(every=False):
    """Real l1_* jobs of the replay layer on the machine: ``(run, job, before, after)``,
    the first of each run and the first whose counts differ from it (a ragged tile), or
    ``every`` one."""
    layer, mapping, shape = REPLAY_LAYER, REPLAY_MAPPING, REPLAY_SHAPE
    assert not check(layer, mapping, shape)
    config = configure(layer, mapping, shape)
    rng = random.Random(1)
    dram = [rng.randint(-128, 127) for _ in range(layout(layer)["words"])]
    kept, seen, before = [], {}, {}

    def on_job(run, job, machine, when):
        if not run.startswith("l1_"):
            return
        counts = tuple(job[f"n{l}"] for l in range(4))
        if when == "before":
            before.clear()
            if every or run not in seen or (counts != seen[run] and
                                            sum(r == run for r, *_ in kept) < 2):
                seen.setdefault(run, counts)
                before["image"] = _image(machine)
        elif before:
            kept.append((run, dict(job), before.pop("image"), _image(machine)))

    machine = Machine.for_shape(sequencer_program(), shape, on_job=on_job)
    machine.run(config, dram)
    return kept, config


def _replay(kept, config):
    shape = REPLAY_SHAPE
    l2_words = shape.l2_banks * shape.l2_bank_words
    dut = L2L1Engine(kp=shape.kp, hp=shape.hp, wp=shape.wp, value_width=shape.value_width,
                     l2_addr_width=(l2_words - 1).bit_length(), l2_words=l2_words,
                     word_width=WORD, l1_input_words=shape.l1_input_words,
                     l1_weight_words=shape.l1_weight_words,
                     psum_entries=shape.l1_psum_entries)
    for run, job, before, after in kept:
        _, kind, operand = RUNS[run]
        engine_job = _job(OPERANDS.index(operand), write=int(kind == "l1_l2"),
                          counts=[job[f"n{l}"] for l in range(4)],
                          strides=[job[f"s{l}"] for l in range(3)],
                          l2_addr=job["l2_addr"],
                          entry_strides=[job.get(f"e{l}", 0) for l in range(3)],
                          block=[config["Kp"], config["Hp"], config["Wp"]])
        memories = copy.deepcopy(before)
        result, = simulate(dut, [engine_job], memories)
        words = job["n0"] * job["n1"] * job["n2"] * job["n3"]
        assert result.busy == words + L2L1Engine.OVERHEAD, run
        assert result.beats == words and not result.errors, run
        for name in ("l2", "inputs", "weights", "psums"):
            assert memories[name] == after[name], (run, name)


def test_replay_real_jobs():
    """The engine, behind memories holding the machine's state before a job, leaves
    them as the machine's after it: every buffer, for every kind of l1_* job, ragged
    tiles and a block smaller than the built one included."""
    kept, config = _replayed_jobs()
    runs = {run for run, *_ in kept}
    assert runs == {"l1_read_inputs", "l1_read_weights", "l1_read_psums",
                    "l1_write_psums"}
    assert len(kept) == 8
    # Ragged against the block: the partial sums' k runs over 3 with Kp = 2.
    assert any(run.endswith("psums") and job["n0"] % config["Kp"] for run, job, *_ in kept)
    _replay(kept, config)


@pytest.mark.slow
def test_replay_every_job_of_the_layer():
    kept, config = _replayed_jobs(every=True)
    assert len(kept) > 40
    _replay(kept, config)


# ---- parameters ----------------------------------------------------------------------

def test_members_and_properties():
    dut = L2L1Engine(**PARAMS)
    assert (dut.kp, dut.hp, dut.wp, dut.value_width) == (2, 3, 2, 20)
    assert (dut.l2_addr_width, dut.l2_words, dut.word_width) == (9, 300, 16)
    assert (dut.l1_input_words, dut.l1_weight_words, dut.psum_entries) == (80, 60, 24)
    assert len(dut.bank) == 4 and len(dut.entry) == 5
    assert len(dut.in_waddr) == 7 and len(dut.w_waddr) == 6
    assert len(dut.l2_raddr) == 9 and len(dut.l2_wdata) == 16
    assert len(dut.counts.as_value()) == 4 * 20
    default = L2L1Engine(kp=1, hp=1, wp=1, l2_addr_width=4, word_width=8,
                         l1_input_words=1, l1_weight_words=1, psum_entries=1)
    assert default.value_width == 32 and default.l2_words == 16
    assert len(default.bank) == 1 and len(default.entry) == 1


@pytest.mark.parametrize("name, value, error", [
    ("kp", 0, ValueError), ("kp", 17, ValueError), ("kp", 2.0, TypeError),
    ("hp", 0, ValueError), ("hp", 17, ValueError),
    ("wp", 0, ValueError), ("wp", 17, ValueError), ("wp", True, TypeError),
    ("value_width", 15, ValueError), ("value_width", 33, ValueError),
    ("value_width", "32", TypeError),
    ("l2_addr_width", 3, ValueError), ("l2_addr_width", 25, ValueError),
    ("l2_words", 0, ValueError), ("l2_words", 513, ValueError), ("l2_words", 1.5, TypeError),
    ("word_width", 7, ValueError), ("word_width", 65, ValueError),
    ("l1_input_words", 0, ValueError), ("l1_input_words", 65537, ValueError),
    ("l1_weight_words", 0, ValueError), ("l1_weight_words", 65537, ValueError),
    ("psum_entries", 0, ValueError), ("psum_entries", 65537, ValueError),
    ("psum_entries", "4", TypeError),
])
def test_bad_parameters(name, value, error):
    kwargs = dict(PARAMS, **{name: value})
    with pytest.raises(error, match=f"{name} must"):
        L2L1Engine(**kwargs)


def test_parameters_against_the_register_width():
    """A negative address or entry must read as outside: the L2 and the banks stay
    below half the registers' range."""
    with pytest.raises(ValueError, match="l2_addr_width must be below value_width"):
        L2L1Engine(**dict(PARAMS, value_width=16, l2_addr_width=16))
    with pytest.raises(ValueError, match=r"psum_entries must be in 1\.\.32768"):
        L2L1Engine(**dict(PARAMS, value_width=16, psum_entries=32769))
    L2L1Engine(**dict(PARAMS, value_width=16, l2_addr_width=15, l2_words=1 << 15,
                      psum_entries=32768))
