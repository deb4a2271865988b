"""Amaranth-simulator tests of Morph's PE-block engine: real layers' ``blocks`` jobs
replayed from the Python machine (the PE banks after each job, the L1 counters and the
cycles against the machine's), one block checked against numpy directly, the errors (each
ends, with ``error``) and bad parameters."""

import dataclasses
import itertools
import math
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from dnnhw.golden import morph
from dnnhw.golden.morph import Layer, Mapping
from dnnhw.rtl.morph_blocks import JOB, LAYER, RUN_BLOCK, SIGNED, BlocksEngine
from dnnhw.rtl.morph_program import JOB_OVERHEAD, JOBS, sequencer_program
from dnnhw.sim.morph_loader import ArrayShape, configure
from dnnhw.sim.morph_machine import Machine

from morph_cases import dram_image

PROGRAM = sequencer_program()
COUNTS = ("macs", "input_reads", "weight_reads", "psum_reads", "psum_writes")


def _wrap(value, bits):
    half = 1 << (bits - 1)
    return (value + half) % (1 << bits) - half


# ---- the bench ----------------------------------------------------------------------------

@dataclasses.dataclass
class Job:
    """One job for the bench: the ports' values and the memories before it (``None``
    words are filled with junk)."""
    regs: dict
    layer: dict
    block: dict
    inputs: list
    weights: list
    banks: list


@dataclasses.dataclass
class Result:
    banks: list          # the PE banks after the job
    written: set         # (bank, entry) the engine wrote
    counts: dict         # the per-cycle counts, summed
    busy: int            # cycles with busy high
    error: bool          # error in the cycle busy fell
    error_cycles: int    # cycles error was high, the fall and the next few


def _fill(words, bits, rng):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return [rng.randint(lo, hi) if v is None else v for v in words]


def _simulate(dut, jobs, *, seed=0, max_cycles=100000):
    """Run ``jobs`` back to back on ``dut``, the L1 copies and PE banks modelled in the
    bench (read data the cycle after the read, held otherwise). Checks the protocol as it
    goes: nothing moves outside ``busy``. Returns a :class:`Result` per job."""
    rng = random.Random(seed)
    mask = (1 << dut.value_width) - 1
    results = []

    async def bench(ctx):
        in_data = [0] * dut.positions
        w_data = [0] * dut.kp
        bank_data = [0] * dut.pes
        for job in jobs:
            inputs = _fill(job.inputs, dut.width, rng)
            weights = _fill(job.weights, dut.width, rng)
            banks = [_fill(b, dut.acc_width, rng) for b in job.banks]
            for name in JOB:
                value = job.regs[name]
                ctx.set(getattr(dut, name), value if name in SIGNED else value & mask)
            for name in LAYER:
                ctx.set(getattr(dut, name), job.layer[name])
            for name in RUN_BLOCK:
                ctx.set(getattr(dut, name), job.block[name])
            counts = dict.fromkeys(COUNTS, 0)
            written = set()
            busy = 0
            cycle = 0
            ctx.set(dut.start, 1)
            while True:
                is_busy = ctx.get(dut.busy)
                in_re, w_re = ctx.get(dut.in_re), ctx.get(dut.w_re)
                bank_re, bank_we = ctx.get(dut.bank_re), ctx.get(dut.bank_we)
                if cycle == 0 or not is_busy:
                    assert not (in_re or w_re or bank_re or bank_we), \
                        f"memory access outside busy, cycle {cycle}"
                    assert not any(ctx.get(getattr(dut, n)) for n in COUNTS)
                    if cycle == 0:
                        assert not is_busy
                    else:
                        break
                else:
                    busy += 1
                    for name in COUNTS:
                        counts[name] += ctx.get(getattr(dut, name))
                reads = []
                if in_re:
                    addr = ctx.get(dut.in_raddr)
                    reads += [("in", p, inputs[addr[p]]) for p in range(dut.positions)
                              if in_re >> p & 1]
                if w_re:
                    addr = ctx.get(dut.w_raddr)
                    reads += [("w", kk, weights[addr[kk]]) for kk in range(dut.kp)
                              if w_re >> kk & 1]
                if bank_re:
                    entry = ctx.get(dut.bank_raddr)
                    reads += [("bank", pe, banks[pe][entry]) for pe in range(dut.pes)]
                writes = []
                if bank_we:
                    entry = ctx.get(dut.bank_waddr)
                    wdata = ctx.get(dut.bank_wdata)
                    writes = [(pe, entry, wdata[pe]) for pe in range(dut.pes)
                              if bank_we >> pe & 1]
                await ctx.tick()
                ctx.set(dut.start, 0)
                cycle += 1
                assert cycle < max_cycles, "busy never fell"
                for kind, lane, value in reads:
                    {"in": in_data, "w": w_data, "bank": bank_data}[kind][lane] = value
                if reads:
                    ctx.set(dut.in_rdata, in_data)
                    ctx.set(dut.w_rdata, w_data)
                    ctx.set(dut.bank_rdata, bank_data)
                for pe, entry, value in writes:
                    banks[pe][entry] = value
                    written.add((pe, entry))
            error = bool(ctx.get(dut.error))
            error_cycles = 0
            for _ in range(4):
                error_cycles += ctx.get(dut.error)
                assert not ctx.get(dut.busy)
                await ctx.tick()
            results.append(Result(banks=banks, written=written, counts=counts, busy=busy,
                                  error=error, error_cycles=error_cycles))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return results


# ---- real layers' jobs, from the machine --------------------------------------------------

def _shape(layer, mapping, built, l2=(4, 1024)):
    """A build holding ``mapping`` with the block ``built`` and ``l2`` (banks, words):
    L1 copies and PE banks a little bigger than the tiles need."""
    kp, hp, wp = mapping.parallel
    words = morph.tile_words(layer, mapping.l1_tile, within=mapping.l2_tile)
    kt, _, ft, ht, wt = mapping.l1_tile
    entries = math.ceil(kt / kp) * ft * math.ceil(ht / hp) * math.ceil(wt / wp)
    return ArrayShape(kp=built[0], hp=built[1], wp=built[2], l2_banks=l2[0],
                      l2_bank_words=l2[1], l1_input_words=words["inputs"] + 3,
                      l1_weight_words=words["weights"] + 2,
                      l1_psum_entries=entries + 1)


def _l1_counts(counters):
    l1 = counters["traffic"]["l1"]
    return {"macs": counters["macs"], "input_reads": l1["inputs"]["reads"],
            "weight_reads": l1["weights"]["reads"], "psum_reads": l1["psums"]["reads"],
            "psum_writes": l1["psums"]["writes"], "cycles": counters["cycles"]}


def machine_jobs(layer, mapping, shape, *, seed=0):
    """Run the layer on the machine; every ``blocks`` job with the L1 state before and
    after it and the counters it added: ``(Job, after banks, counter deltas)``."""
    config = configure(layer, mapping, shape)
    _, _, dram = dram_image(layer, seed)
    found = []

    def on_job(run, job, machine, when):
        if run != "blocks":
            return
        counts = _l1_counts(machine.counters)
        if when == "before":
            cfg = machine.config
            found.append([Job(regs=dict(job),
                              layer={name: cfg[name] for name in LAYER},
                              block={"kp_run": cfg["Kp"], "hp_run": cfg["Hp"],
                                     "wp_run": cfg["Wp"]},
                              inputs=list(machine.l1["inputs"]),
                              weights=list(machine.l1["weights"]),
                              banks=[list(b) for b in machine.l1["psums"]]), counts])
        else:
            before = found[-1][1]
            found[-1][1] = {k: counts[k] - before[k] for k in counts}
            found[-1].insert(1, [list(b) for b in machine.l1["psums"]])

    machine = Machine.for_shape(PROGRAM, shape, memory_latency=3, on_job=on_job)
    machine.run(config, dram)
    return [tuple(item) for item in found]


def _engine(shape, **changes):
    params = dict(kp=shape.kp, hp=shape.hp, wp=shape.wp, width=8, acc_width=32,
                  value_width=shape.value_width, l1_input_words=shape.l1_input_words,
                  l1_weight_words=shape.l1_weight_words,
                  psum_entries=shape.l1_psum_entries, max_taps=3)
    params.update(changes)
    return BlocksEngine(**params)


def replay(layer, mapping, built, *, seed=0, l2=(4, 1024), **engine):
    """Every blocks job of the layer through the engine, each against the machine."""
    shape = _shape(layer, mapping, built, l2)
    jobs = machine_jobs(layer, mapping, shape, seed=seed)
    assert jobs
    dut = _engine(shape, **engine)
    results = _simulate(dut, [job for job, _, _ in jobs], seed=seed)
    loads = set()
    for n, ((job, after, delta), got) in enumerate(zip(jobs, results)):
        where = f"job {n} of {len(jobs)}"
        assert not got.error and got.error_cycles == 0, where
        for pe, bank in enumerate(after):
            for entry, value in enumerate(bank):
                if value is not None:
                    assert got.banks[pe][entry] == _wrap(value, dut.acc_width), \
                        (where, pe, entry)
        assert all(after[pe][entry] is not None for pe, entry in got.written), where
        assert got.counts == {k: delta[k] for k in COUNTS}, where
        layer_values = job.layer
        assert got.busy == dut.cycles(job.regs, layer_values["T"], layer_values["R"],
                                      layer_values["S"]), where
        assert got.busy == delta["cycles"] - JOB_OVERHEAD["blocks"] + dut.OVERHEAD, where
        loads.add(bool(job.regs["load"]))
    return jobs, loads


def _mapping(l2, l1, parallel, outer="KCFHW", inner="KCFHW"):
    return Mapping(outer_order=outer, inner_order=inner, l2_tile=l2, l1_tile=l1,
                   parallel=parallel, l2_banks=(1, 1, 1), l1_banks=(1, 1, 1))


def test_job_registers_match_the_program():
    assert JOB == JOBS["blocks"]
    assert BlocksEngine.OVERHEAD == JOB_OVERHEAD["blocks"]


def test_stride_1_ragged_tiles_channels_spilled():
    """Padding 1, every L1 tile ragged along K, F, H and W, C split (load 0 and 1), the
    block 2 x 2 x 2 as built."""
    layer = Layer(C=3, F=2, H=5, W=5, K=3, T=2, R=3, S=3, padding=(0, 1, 1))
    mapping = _mapping((3, 3, 1, 5, 5), (3, 2, 1, 5, 5), (2, 2, 2))
    jobs, loads = replay(layer, mapping, (2, 2, 2))
    assert loads == {False, True}


def test_stride_2_block_smaller_than_built():
    """Stride 2 with padding 1 on rows and columns; the run-time block 2 x 2 x 1 on a
    3 x 3 x 2 build; ragged K and H."""
    layer = Layer(C=2, F=3, H=7, W=6, K=3, T=1, R=3, S=3, stride=(1, 2, 2),
                  padding=(0, 1, 1))
    mapping = _mapping((3, 2, 2, 4, 3), (3, 1, 2, 3, 3), (2, 2, 1), outer="FHWKC",
                       inner="CKFHW")
    jobs, loads = replay(layer, mapping, (3, 3, 2), seed=1)
    assert loads == {False, True}


def test_frame_stride_and_wide_blocks():
    """Stride 2 along frames with 3 taps and padding 1 on every axis; Kp = 1, Hp x Wp =
    2 x 3 with width 16; one tile per L2 step."""
    layer = Layer(C=2, F=5, H=4, W=5, K=2, T=3, R=2, S=2, stride=(2, 1, 1), padding=1)
    mapping = _mapping((2, 1, 3, 5, 6), (1, 1, 2, 5, 6), (1, 2, 3), outer="CKFHW",
                       inner="HWFKC")
    jobs, loads = replay(layer, mapping, (1, 2, 3), seed=2, width=16, acc_width=40)
    assert loads == {False, True}


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_random_layers(seed):
    from morph_cases import random_array_case
    rng = np.random.default_rng(900 + seed)
    done = 0
    while done < 3:
        layer, mapping, hardware = random_array_case(rng, max_macs=1500)
        built = tuple(p + int(rng.integers(0, 2)) for p in mapping.parallel)
        # replay asserts each blocks job's banks, counts and cycles against the machine.
        replay(layer, mapping, built, seed=seed,
               l2=(hardware.l2_banks, hardware.l2_bank_words))
        done += 1


# ---- one block against numpy ----------------------------------------------------------------

def _one_block_job(C, H, W, K, R, S, stride, block, load):
    """The registers of one block covering a whole ``C x 1 x H x W`` input (T = 1,
    padding 1 on rows and columns), from the layout's definition: the L1 box is the
    whole input (rows -1 .. H, clipped to 0 .. H - 1), dense ``c, h, w``."""
    kp, hp, wp = block
    Ho = (H + 2 - R) // stride + 1
    Wo = (W + 2 - S) // stride + 1
    assert K <= kp and Ho <= hp and Wo <= wp
    return {"kb": 1, "f": 1, "hb": 1, "wb": 1, "c": C, "load": load,
            # the tap of position (0, 0) at (c, 0, r, s) is input row r - 1, column s - 1
            "in_base": -W - 1, "in_f": H * W, "in_hb": hp * stride * W, "in_c": H * W,
            "in_t": H * W, "in_r": W, "in_row": stride * W, "in_col": stride,
            "w_kb": kp * C * R * S, "w_row": C * R * S, "e_kb": 1, "e_f": 1, "e_hb": 1,
            "gf": 0, "gh": -1, "gw": -1, "hp_step": hp * stride, "wp_step": wp * stride,
            "rem_k": K, "rem_h": Ho, "rem_w": Wo}, (Ho, Wo)


@pytest.mark.parametrize("stride, load", [(1, 0), (1, 1), (2, 1)])
def test_one_block_against_numpy(stride, load):
    """Built 3 x 3 x 3, run-time 2 x 3 x 3 block, K = 1 (a ragged filter row inside the
    run-time block and one beyond it); stride 2 also leaves a ragged row and column."""
    C, H, W, K, R, S = 2, 3, 3, 1, 3, 3
    rng = np.random.default_rng(7 + stride + load)
    x = rng.integers(-128, 128, size=(C, H, W))
    w = rng.integers(-128, 128, size=(K, C, R, S))
    regs, (Ho, Wo) = _one_block_job(C, H, W, K, R, S, stride, (2, 3, 3), load)
    dut = BlocksEngine(kp=3, hp=3, wp=3, width=8, acc_width=32, l1_input_words=C * H * W,
                       l1_weight_words=2 * C * R * S, psum_entries=2, max_taps=3)
    start = rng.integers(-10**6, 10**6, size=(dut.pes, 2)).tolist()
    weights = w.ravel().tolist() + [None] * (C * R * S)
    job = Job(regs=regs, layer={"T": 1, "R": R, "S": S, "sf": 1, "sh": stride,
                                "sw": stride, "F": 1, "H": H, "W": W},
              block={"kp_run": 2, "hp_run": 3, "wp_run": 3}, inputs=x.ravel().tolist(),
              weights=weights, banks=start)
    got, = _simulate(dut, [job])
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    expected = [row[:] for row in start]
    for k in range(K):
        for i in range(Ho):
            for j in range(Wo):
                window = padded[:, i * stride:i * stride + R, j * stride:j * stride + S]
                total = int(np.sum(window * w[k]))
                pe = (k * 3 + i) * 3 + j
                expected[pe][0] = total + (start[pe][0] if load else 0)
    assert got.banks == expected
    assert not got.error
    assert got.busy == C * R * S + BlocksEngine.OVERHEAD
    inside = sum(1 for i in range(Ho) for j in range(Wo) for r in range(R) for s in range(S)
                 if 0 <= i * stride + r - 1 < H and 0 <= j * stride + s - 1 < W) * C
    assert got.counts == {"macs": K * Ho * Wo * C * R * S, "input_reads": inside,
                          "weight_reads": K * C * R * S,
                          "psum_reads": K * Ho * Wo * load, "psum_writes": K * Ho * Wo}


# ---- errors ---------------------------------------------------------------------------------

def _error_job(**changes):
    """The one-block job of a 2 x 3 x 3 input (K = 2, stride 1, block 2 x 3 x 3) with
    ``changes`` to its registers, layer values or run-time block."""
    regs, _ = _one_block_job(2, 3, 3, 2, 3, 3, 1, (2, 3, 3), 1)
    layer = {"T": 1, "R": 3, "S": 3, "sf": 1, "sh": 1, "sw": 1, "F": 1, "H": 3, "W": 3}
    block = {"kp_run": 2, "hp_run": 3, "wp_run": 3}
    for name, value in changes.items():
        for group in (regs, layer, block):
            if name in group:
                group[name] = value
    return regs, layer, block


def _memories(dut):
    return dict(inputs=[None] * dut.l1_input_words, weights=[None] * dut.l1_weight_words,
                banks=[[None] * dut.psum_entries for _ in range(dut.pes)])


def _error_dut(**params):
    kwargs = dict(kp=2, hp=3, wp=3, width=8, acc_width=32, l1_input_words=18,
                  l1_weight_words=36, psum_entries=2, max_taps=3)
    kwargs.update(params)
    return BlocksEngine(**kwargs)


@pytest.mark.parametrize("changes, params, fails_at", [
    # the last input word (c 1, row 2, column 2: position (2, 2) at tap (1, 1)) outside
    ({}, {"l1_input_words": 17}, 9 + 4),
    ({"in_base": -5}, {}, 0),                     # position (1, 1) at tap (0, 0) reads -1
    ({}, {"l1_weight_words": 35}, 17),            # filter row 1's last weight
    ({"e_kb": 3, "kb": 2, "rem_k": 4}, {"l1_weight_words": 72}, 18),  # entry 3 of 2
    # the same with one-cycle blocks: block 1's drain, due with its check, is not made
    ({"e_kb": 3, "kb": 2, "rem_k": 4, "c": 1, "R": 1, "S": 1}, {"l1_weight_words": 72}, 1),
    ({"c": 0}, {}, None),                         # a zero count
    ({"hb": 3}, {}, None),                        # more blocks than entries
    ({"R": 4}, {}, None),                         # more taps than max_taps
    ({"kp_run": 3}, {}, None),                    # the run-time block beyond the built
    ({"wp_run": 0}, {}, None),
])
def test_errors_end_with_error(changes, params, fails_at):
    """An error job stops at the failing cycle (a bad start at once), busy falls
    OVERHEAD cycles later with error high for one cycle, and the next job runs
    normally."""
    dut = _error_dut(**params)
    bad = Job(*_error_job(**changes), **_memories(dut))
    good = Job(*_error_job(c=1), **_memories(dut))    # fits every one of these builds
    got, after = _simulate(dut, [bad, good], max_cycles=200)
    assert got.error and got.error_cycles == 1
    # Nothing is written at an entry outside the banks (only block 0's entry 0 is ever
    # in range here).
    assert {entry for _, entry in got.written} <= {0}
    # The failing iteration's cycle is the one after start plus its index.
    assert got.busy == (0 if fails_at is None else fails_at) + 1 + dut.OVERHEAD
    assert not after.error and after.busy == dut.cycles(good.regs, 1, 3, 3)
    assert after.counts["psum_writes"] == 2 * 9


# ---- wild jobs against the rule -----------------------------------------------------------

def _fails_at(dut, regs, layer, block):
    """Where ``job`` fails by the documented rule, in ``value_width``-bit arithmetic (sums
    modulo ``2 ** value_width``, read as signed; a position's offsets added without
    wrapping): ``"start"``, the index of the failing cycle, or ``None``."""
    vw = dut.value_width
    mask = (1 << vw) - 1

    def signed(value):
        value &= mask
        return value - (1 << vw) if value >> (vw - 1) else value

    r = {name: value & mask for name, value in regs.items()}
    g = {name: value & mask for name, value in layer.items()}
    run = {name: value & mask for name, value in block.items()}
    limits = dut.count_limits
    counts = [r[n] for n in ("kb", "f", "hb", "wb", "c")] + [g[n] for n in "TRS"]
    names = ("kb", "f", "hb", "wb", "c", "T", "R", "S")
    if (any(not 1 <= v <= limits[n] for n, v in zip(names, counts))
            or not all(1 <= run[n] <= side for n, side in
                       zip(RUN_BLOCK, (dut.kp, dut.hp, dut.wp)))):
        return "start"
    kp, hp, wp = run["kp_run"], run["hp_run"], run["wp_run"]
    T, R, S = g["T"], g["R"], g["S"]
    cycle = 0
    for kb, f, hb, wb in itertools.product(*(range(v) for v in counts[:4])):
        ks = [kk for kk in range(kp) if kk < signed(r["rem_k"] - kb * kp)]
        rows = [i for i in range(hp) if i < signed(r["rem_h"] - hb * hp)]
        cols = [j for j in range(wp) if j < signed(r["rem_w"] - wb * wp)]
        entry = signed(kb * r["e_kb"] + f * r["e_f"] + hb * r["e_hb"] + wb)
        active = ks and rows and cols
        for c, t, rr, ss in itertools.product(range(counts[4]), range(T), range(R),
                                              range(S)):
            bad = active and not 0 <= entry < dut.psum_entries
            a = signed(signed(regs["in_base"]) + f * r["in_f"] + hb * r["in_hb"]
                       + wb * r["wp_step"] + c * r["in_c"] + t * r["in_t"]
                       + rr * r["in_r"] + ss)
            gf = signed(signed(regs["gf"]) + f * g["sf"] + t)
            gh = signed(signed(regs["gh"]) + hb * r["hp_step"] + rr)
            gw = signed(signed(regs["gw"]) + wb * r["wp_step"] + ss)
            if ks and 0 <= gf < g["F"]:
                for i in rows:
                    for j in cols:
                        if 0 <= gh + i * g["sh"] < g["H"] and 0 <= gw + j * g["sw"] < g["W"]:
                            at = a + i * r["in_row"] + j * r["in_col"]
                            bad |= not 0 <= at < dut.l1_input_words
            if rows and cols:
                w = signed(kb * r["w_kb"] + c * T * R * S + t * R * S + rr * S + ss)
                for kk in ks:
                    bad |= not 0 <= w + kk * r["w_row"] < dut.l1_weight_words
            if bad:
                return cycle
            cycle += 1
    return None


def _wild_job(rng, dut):
    """A random job, often failing: small counts; registers mostly small, some beyond the
    engine's narrow widths or near 2 ** value_width (the input addresses and the remaining
    counts kept within the range the engine computes exactly)."""
    vw = dut.value_width
    probes = [1 << (vw - 1), (1 << (vw - 1)) - 1, (1 << vw) - 1, (1 << vw) - 5, 1 << 12,
              (1 << 12) + 1, 1 << 9, (1 << 9) + 3, 1 << 7, (1 << 6) + 1, 3 << 10, 1 << 5]

    def wild(lo, hi):
        roll = rng.random()
        if roll < 0.75:
            return rng.randint(lo, hi)
        if roll < 0.9:
            return rng.randint(-300, 300)
        return rng.choice(probes)

    regs = {name: rng.randint(1, 3) for name in ("kb", "hb", "wb", "c")}
    regs["f"] = rng.randint(1, 2)
    if rng.random() < 0.1:
        regs[rng.choice(["kb", "f", "hb", "wb", "c"])] = rng.choice([0, 99, -1])
    regs["load"] = rng.choice([0, 1, 3])
    words = dut.l1_input_words
    for name in ("in_f", "in_hb", "in_c", "in_t", "in_r", "in_row", "in_col"):
        regs[name] = rng.randint(0, words // 2) if rng.random() < 0.9 else rng.randint(-8, 40)
    regs["in_base"] = rng.randint(-words, words)
    for name in ("w_kb", "w_row", "e_kb", "e_f", "e_hb", "gf", "gh", "gw", "hp_step",
                 "wp_step"):
        regs[name] = wild(-3, 12)
    for name in ("rem_k", "rem_h", "rem_w"):
        regs[name] = rng.randint(-3, 8) if rng.random() < 0.9 else rng.choice([1 << 20, 1000])
    layer = {name: rng.randint(1, dut.max_taps) for name in "TRS"}
    if rng.random() < 0.05:
        layer[rng.choice("TRS")] = rng.choice([0, dut.max_taps + 1])
    for name in ("sf", "sh", "sw", "F", "H", "W"):
        layer[name] = wild(0, 9) & ((1 << vw) - 1)
    block = {name: rng.randint(1, side) if rng.random() < 0.95 else rng.choice([0, side + 1])
             for name, side in zip(RUN_BLOCK, (dut.kp, dut.hp, dut.wp))}
    return regs, layer, block


@pytest.mark.parametrize("seed", range(6))
def test_wild_jobs_fail_where_the_rule_says(seed):
    """Random jobs, half of them failing at the start or somewhere in the walk, with
    strides and bases beyond the engine's narrow widths: each busy for exactly the cycles
    up to its failing one (or all of them) plus OVERHEAD, error exactly when it fails,
    never a read outside a copy."""
    rng = random.Random(500 + seed)
    params = [dict(kp=2, hp=2, wp=2, value_width=32, l1_input_words=40,
                   l1_weight_words=50, psum_entries=6, max_taps=3),
              dict(kp=3, hp=2, wp=1, value_width=16, l1_input_words=17,
                   l1_weight_words=33, psum_entries=5, max_taps=2),
              dict(kp=1, hp=3, wp=2, value_width=20, l1_input_words=64,
                   l1_weight_words=16, psum_entries=9, max_taps=3)][seed % 3]
    dut = BlocksEngine(width=8, acc_width=24, **params)
    mask = (1 << dut.value_width) - 1
    wild = [_wild_job(rng, dut) for _ in range(14)]
    jobs = [Job(regs, {k: v & mask for k, v in layer.items()}, block, **_memories(dut))
            for regs, layer, block in wild]
    results = _simulate(dut, jobs, seed=seed)
    outcomes = set()
    for n, ((regs, layer, block), got) in enumerate(zip(wild, results)):
        fails = _fails_at(dut, regs, layer, block)
        outcomes.add("start" if fails == "start" else "walk" if fails is not None
                     else "good")
        assert got.error == (fails is not None), (n, fails)
        if fails is None:
            assert got.busy == dut.cycles(regs, layer["T"], layer["R"], layer["S"]), n
        else:
            assert got.busy == (0 if fails == "start" else fails) + 1 + dut.OVERHEAD, n
    assert outcomes == {"start", "walk", "good"}


@pytest.mark.parametrize("changes", [
    {"w_row": (1 << 8) + 18}, {"w_row": (1 << 20) + 18}, {"w_row": (1 << 32) - 1},
    {"in_row": (1 << 9) + 3}, {"in_col": (1 << 9) + 1}, {"in_col": (1 << 30) + 1},
    {"w_kb": (1 << 8) + 18, "kb": 2, "rem_k": 4, "e_kb": 0},
    {"w_kb": (1 << 32) - 2, "kb": 2, "rem_k": 4, "e_kb": 0},
    {"e_kb": (1 << 6) + 1, "kb": 2, "rem_k": 4, "w_kb": 0},
    {"e_kb": (1 << 32) - 1, "kb": 2, "rem_k": 4, "w_kb": 0},
    {"e_kb": 1 << 5, "kb": 2, "rem_k": 2, "w_kb": 0},     # block 1 inactive: no error
], ids=str)
def test_strides_and_offsets_beyond_the_narrow_widths(changes):
    """Values that the engine's narrow widths (here 9 bits of input address, 8 of weight
    address, 2 of entry) would alias back into the buffers: each job fails (or not)
    exactly where the rule says."""
    dut = _error_dut()
    assert dut.stream_widths()[:3] == [9, 8, 2]
    regs, layer, block = _error_job(**changes)
    fails = _fails_at(dut, regs, layer, block)
    got, = _simulate(dut, [Job(regs, layer, block, **_memories(dut))], max_cycles=400)
    assert got.error == (fails is not None)
    assert fails != "start"
    cycles = dut.cycles(regs, 1, 3, 3)
    assert got.busy == (cycles if fails is None else fails + 1 + dut.OVERHEAD)


def test_narrow_coordinates_on_small_layers():
    """coord_width 8 on jobs whose taps all lie within -128..127: the same as the exact
    engine, cycle for cycle, the banks after each job included."""
    rng = random.Random(9)
    kwargs = dict(kp=2, hp=2, wp=2, width=8, acc_width=24, l1_input_words=40,
                  l1_weight_words=50, psum_entries=6, max_taps=3)
    narrow = BlocksEngine(coord_width=8, **kwargs)
    assert narrow.stream_widths()[3:6] == [8, 8, 8]
    wild = []
    while len(wild) < 12:
        regs, layer, block = _wild_job(rng, narrow)
        for name in ("gf", "gh", "gw"):
            regs[name] = rng.randint(-20, 20)
        for name in ("hp_step", "wp_step"):
            regs[name] = rng.randint(0, 9)
        for name in ("sf", "sh", "sw", "F", "H", "W"):
            layer[name] = rng.randint(0, 300 if name in "FHW" else 9)
        wild.append((regs, layer, block))
    runs = []
    for dut in (BlocksEngine(**kwargs), narrow):
        jobs = [Job(regs, layer, block, **_memories(dut)) for regs, layer, block in wild]
        runs.append(_simulate(dut, jobs, seed=3))
    assert runs[0] == runs[1]
    assert any(r.error for r in runs[0]) and not all(r.error for r in runs[0])


def test_a_block_without_active_pes_counts_its_cycles():
    """A second W block beyond rem_w: no PE is active, nothing is read or written, but
    its cycles run (as the machine's)."""
    dut = _error_dut()
    got, = _simulate(dut, [Job(*_error_job(wb=2, rem_w=3), **_memories(dut))])
    assert not got.error and got.busy == 2 * 2 * 9 + dut.OVERHEAD
    # The first block's: 18 PEs, 2 filter rows, 7 x 7 taps inside per channel.
    assert got.counts == {"macs": 18 * 2 * 9, "input_reads": 2 * 7 * 7,
                          "weight_reads": 2 * 2 * 9, "psum_reads": 18, "psum_writes": 18}
    assert {entry for _, entry in got.written} == {0}


@pytest.mark.parametrize("name, value, error", [
    ("kp", 0, ValueError), ("kp", 17, ValueError), ("hp", 0, ValueError),
    ("wp", 17, ValueError), ("kp", 2.0, TypeError),
    ("width", 12, ValueError), ("width", 32, ValueError),
    ("acc_width", 15, ValueError), ("acc_width", 65, ValueError),
    ("value_width", 15, ValueError), ("value_width", 33, ValueError),
    ("l1_input_words", 0, ValueError), ("l1_input_words", 65537, ValueError),
    ("l1_weight_words", 0, ValueError), ("l1_weight_words", "8", TypeError),
    ("psum_entries", 0, ValueError), ("psum_entries", 65537, ValueError),
    ("max_taps", 0, ValueError), ("max_taps", 65, ValueError),
    ("coord_width", 7, ValueError), ("coord_width", 33, ValueError),
    ("coord_width", 16.0, TypeError),
])
def test_bad_parameters(name, value, error):
    with pytest.raises(error, match=name):
        BlocksEngine(**{name: value})


def test_too_many_pes():
    with pytest.raises(ValueError, match="kp \\* hp \\* wp"):
        BlocksEngine(kp=8, hp=8, wp=8)
