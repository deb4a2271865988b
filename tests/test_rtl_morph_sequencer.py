"""The sequencer RTL against the Python machine: the same jobs, launched in the same order
with the same register values, and the same cycle count, on real layers and mappings.
The engines are stand-ins that stay busy a random number of cycles. Besides: layers back
to back and after an abort, and the ALU's arithmetic (wrapping, signs, the serial and DSP
multipliers, the divider, forwarding) on a program of its own."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from dnnhw.golden.morph import DIMS, Layer, Mapping
from dnnhw.rtl.morph_program import (CONFIG, ENGINES, JOBS, RUNS, Program,
                                     instruction_cycles, sequencer_program)
from dnnhw.rtl.morph_sequencer import LAYER, MorphSequencer
from dnnhw.sim.morph_loader import ArrayShape, configure, layout
from dnnhw.sim.morph_machine import Machine

from morph_cases import TINY

PROGRAM = sequencer_program()


def machine_jobs(layer, mapping, shape, mul_cycles, value_width=32):
    """The machine's jobs ``[(run, registers, cycles)]`` and its total cycles."""
    config = configure(layer, mapping, shape)
    place = layout(layer)
    rng = np.random.default_rng(0)
    dram = [int(v) for v in rng.integers(-5, 6, size=place["words"])]
    jobs = []
    started = {}

    def on_job(run, job, machine, when):
        if when == "before":
            started["cycles"] = machine.counters["cycles"]
        else:
            jobs.append((run, job, machine.counters["cycles"] - started["cycles"]))

    machine = Machine.for_shape(PROGRAM, shape, memory_latency=5, value_width=value_width,
                                mul_cycles=mul_cycles, on_job=on_job)
    total = machine.run(config, dram)["cycles"]
    return config, jobs, total


def window_of(ctx, dut, run):
    """The job registers of ``run`` as the sequencer's job window shows them."""
    window, kind, _ = RUNS[run]
    view = getattr(dut.job, ENGINES[kind])
    return {n: ctx.get(getattr(view, n)) for n in JOBS[window]}


async def configure_dut(ctx, dut, config, program=PROGRAM):
    names = program.registers
    for name in CONFIG:
        ctx.set(dut.config_we, 1)
        ctx.set(dut.config_addr, names[name])
        ctx.set(dut.config_data, config[name])
        await ctx.tick()
    ctx.set(dut.config_we, 0)
    for p in range(len(DIMS)):
        ctx.set(dut.order2[p], DIMS.index(config.get("order2", DIMS)[p]))
        ctx.set(dut.order1[p], DIMS.index(config.get("order1", DIMS)[p]))


async def run_layer(ctx, dut, config, busy_cycles, rng, abort_at=None, starts=None):
    """Start the program and follow it to ``done`` (or to an abort at cycle
    ``abort_at``): ``(jobs [(run, window, busy)], cycles)``, the jobs' start cycles
    appended to ``starts``. Leaves the bench one cycle after the last running one."""
    seen = []
    ctx.set(dut.start, 1)
    await ctx.tick()
    ctx.set(dut.start, 0)
    cycles = 0
    busy_left = 0
    while True:
        assert ctx.get(dut.running)
        cycles += 1
        if cycles == abort_at:
            ctx.set(dut.abort, 1)
            await ctx.tick()
            ctx.set(dut.abort, 0)
            ctx.set(dut.job_busy, 0)
            assert not ctx.get(dut.running)
            return seen, cycles
        if ctx.get(dut.job_start):
            run = list(RUNS)[ctx.get(dut.job_run)]
            layer = {n: ctx.get(getattr(dut.layer, n)) for n in LAYER}
            assert layer == {n: config[n] for n in LAYER}
            busy_left = busy_cycles(rng)
            seen.append((run, window_of(ctx, dut, run), busy_left))
            if starts is not None:
                starts.append(cycles)
        elif busy_left > 0 and seen:
            # The window holds while the job runs.
            assert window_of(ctx, dut, seen[-1][0]) == seen[-1][1]
        if ctx.get(dut.done):
            break
        assert not ctx.get(dut.error)
        await ctx.tick()
        # The stand-in engine: busy from the cycle after the start.
        ctx.set(dut.job_busy, busy_left > 0)
        busy_left = max(0, busy_left - 1)
        assert cycles < 3_000_000
    await ctx.tick()
    assert not ctx.get(dut.running)
    return seen, cycles


def simulate(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def run_sequencer(config, multiplier, busy_cycles, seed, value_width=32):
    dut = MorphSequencer(program=PROGRAM, multiplier=multiplier, value_width=value_width)
    rng = random.Random(seed)
    result = {}

    async def bench(ctx):
        await configure_dut(ctx, dut, config)
        result["run"] = await run_layer(ctx, dut, config, busy_cycles, rng)

    simulate(dut, bench)
    return result["run"]


def assert_same_as_machine(seen, cycles, jobs, total):
    assert [(run, regs) for run, regs, _ in seen] == [(run, job) for run, job, _ in jobs]
    # The machine's cycles with its job costs swapped for the stand-ins' busy cycles.
    expected = total - sum(c for _, _, c in jobs) + sum(b for _, _, b in seen)
    assert cycles == expected


CASES = [
    ("tiny", *TINY),
    ("ragged", Layer(C=3, F=4, H=5, W=5, K=3, padding=1),
     Mapping("KCFHW", "CKFHW", (3, 2, 2, 5, 3), (2, 1, 1, 3, 2), (2, 2, 2), (1, 1, 1),
             (1, 1, 1))),
    ("strided-batch", Layer(C=2, F=5, H=7, W=6, K=3, T=1, R=3, S=2, N=2,
                            stride=(2, 2, 1), padding=(0, 1, 0)),
     Mapping("HWKCF", "WFHKC", (2, 2, 2, 3, 4), (1, 1, 1, 2, 3), (1, 2, 2), (1, 1, 1),
             (1, 1, 1))),
]

SHAPE = ArrayShape(l2_banks=3, l2_bank_words=1024)


def _cases():
    # The Amaranth simulator runs this machine at a few thousand cycles a second: the
    # default run takes the tiny layer with both multipliers, the slow tier the others
    # with the DSP one (the serial multiplier changes how long a multiply takes, which
    # the tiny layer and test_narrow_registers check; minutes more a layer here).
    cases = []
    for name, layer, mapping in CASES:
        for multiplier in ("dsp", "serial"):
            if name == "tiny":
                cases.append(pytest.param(name, layer, mapping, multiplier,
                                          id=f"{name}-{multiplier}"))
            elif multiplier == "dsp":
                cases.append(pytest.param(name, layer, mapping, multiplier,
                                          id=f"{name}-{multiplier}", marks=pytest.mark.slow))
    return cases


@pytest.mark.parametrize("name, layer, mapping, multiplier", _cases())
def test_same_jobs_and_cycles_as_the_machine(name, layer, mapping, multiplier):
    mul_cycles = MorphSequencer(program=PROGRAM, multiplier=multiplier).mul_cycles
    config, jobs, total = machine_jobs(layer, mapping, SHAPE, mul_cycles)
    seen, cycles = run_sequencer(config, multiplier, lambda rng: rng.randint(0, 3), seed=1)
    assert_same_as_machine(seen, cycles, jobs, total)


def test_narrow_registers():
    """A 20-bit build (the UP5K's) with its serial multiplier: 21-cycle multiplies."""
    dut = MorphSequencer(program=PROGRAM, multiplier="serial", value_width=20)
    assert dut.mul_cycles == 21
    config, jobs, total = machine_jobs(*TINY, SHAPE, dut.mul_cycles, value_width=20)
    seen, cycles = run_sequencer(config, "serial", lambda rng: rng.randint(0, 2), seed=2,
                                 value_width=20)
    assert_same_as_machine(seen, cycles, jobs, total)


def test_layers_back_to_back_and_after_an_abort():
    """A layer started in the first cycle after the last one's ``done``, a layer
    aborted (while a run loads its window, while a multiply runs) and restarted at once,
    and a second configuration: each as the machine has it."""
    dut = MorphSequencer(program=PROGRAM, multiplier="dsp")
    config, jobs, total = machine_jobs(*TINY, SHAPE, dut.mul_cycles)
    other = CASES[0][1], Mapping("CKFHW", "KCFHW", (2, 1, 1, 2, 3), (2, 1, 1, 2, 2),
                                 (2, 1, 2), (1, 1, 1), (1, 1, 1))
    config2, jobs2, total2 = machine_jobs(*other, SHAPE, dut.mul_cycles)
    rng = random.Random(3)
    busy = lambda rng: rng.randint(0, 3)    # noqa: E731
    runs = []

    async def bench(ctx):
        await configure_dut(ctx, dut, config)
        starts = []
        runs.append(await run_layer(ctx, dut, config, busy, rng, starts=starts))
        runs.append(await run_layer(ctx, dut, config, busy, rng))
        # Aborts in the first cycles, while the first run loads its window, just after
        # the second job starts, in the L1 loop.
        for abort_at in (1, 4, starts[0] - 3, starts[1] + 1, starts[3] - 30):
            await run_layer(ctx, dut, config, busy, rng, abort_at=abort_at)
            runs.append(await run_layer(ctx, dut, config, busy, rng))
        await configure_dut(ctx, dut, config2)
        runs.append(await run_layer(ctx, dut, config2, busy, rng))

    simulate(dut, bench)
    for seen, cycles in runs[:-1]:
        assert_same_as_machine(seen, cycles, jobs, total)
    assert_same_as_machine(*runs[-1], jobs2, total2)


# ---- the ALU, on a program of its own ---------------------------------------------------

def _alu_program(rng, value_width):
    """A straight-line program over the real register map: random arithmetic on the
    configuration registers into the blocks job's registers, then ``run blocks``; and
    the values the machine's rules give them (two's complement, ``value_width`` bits)."""
    names = dict(PROGRAM.registers)
    inputs = list(CONFIG)
    targets = [f"blocks.{n}" for n in JOBS["blocks"]]
    for i in range(3):
        names[f"t{i}"] = max(names.values()) + 1

    def wrap(v):
        v &= (1 << value_width) - 1
        return v - (1 << value_width) if v >> (value_width - 1) else v

    top = 1 << (value_width - 1)
    config = {}
    for name in inputs:
        kind = rng.randrange(4)
        config[name] = (rng.randrange(-top, top) if kind == 0 else
                        rng.randrange(-300, 300) if kind == 1 else
                        rng.randrange(0, 1 << 15) if kind == 2 else rng.randrange(1, 40))
    values = {names[n]: config[n] for n in inputs}
    code = []

    def emit(op, d, *operands):
        code.append((op, names[d], *(names[o] if isinstance(o, str) else o
                                     for o in operands)))
        if op == "li":
            values[names[d]] = wrap(operands[0])
            return
        x, y = (values[names[o]] for o in operands)
        if op == "cdiv":
            values[names[d]] = -(-x // y)
        else:
            values[names[d]] = wrap({"add": x + y, "sub": x - y, "mul": x * y,
                                     "min": min(x, y), "max": max(x, y)}[op])

    # Extremes first: comparisons whose difference overflows, wrapping sums and products.
    emit("li", "t0", -top + 5)
    emit("li", "t1", top - 3)
    edges = [("max", "t0", "t1"), ("min", "t0", "t1"), ("max", "t1", "t0"),
             ("min", "t1", "t0"), ("sub", "t0", "t1"), ("add", "t1", "t1"),
             ("mul", "t1", "t1"), ("mul", "t0", "t0")]
    for target, (op, x, y) in zip(targets, edges):
        emit(op, target, x, y)
    emit("li", "t0", -7)
    emit("li", "t1", 1 << (value_width - 2))
    for target in targets[len(edges):]:
        pool = inputs + [n for n in ("t0", "t1", "t2") if names[n] in values] + [
            t for t in targets if names[t] in values]
        op = rng.choice(("add", "sub", "min", "max", "mul", "mul", "cdiv", "chain"))
        if op == "cdiv":
            x = rng.choice([n for n in pool if 0 <= values[names[n]] < 1 << 15])
            y = rng.choice([n for n in pool if 1 <= values[names[n]] < 1 << 15])
            emit("cdiv", target, x, y)
        elif op == "chain":
            # Back to back: each reads the one before (forwarded), on either port.
            x, y = rng.choice(pool), rng.choice(pool)
            emit("add", "t2", x, y)
            emit("mul", "t2", "t2", y)
            emit("sub", "t2", x, "t2")
            emit("max", target, "t2", "t2")
        else:
            emit(op, target, rng.choice(pool), rng.choice(pool))
    code.append(("run", "blocks"))
    code.append(("done",))
    program = Program(code=tuple(code), registers=names, labels={})
    expected = {n: values[names[f"blocks.{n}"]] for n in JOBS["blocks"]}
    return program, config, expected


@pytest.mark.parametrize("value_width", [32, 20])
@pytest.mark.parametrize("multiplier", ["dsp", "serial"])
@pytest.mark.parametrize("seed", range(3))
def test_alu_arithmetic(seed, multiplier, value_width):
    rng = random.Random(seed * 100 + value_width)
    program, config, expected = _alu_program(rng, value_width)
    dut = MorphSequencer(program=program, multiplier=multiplier, value_width=value_width)
    cycles = sum(instruction_cycles(ins, dut.mul_cycles) for ins in program.code)
    seen = {}

    async def bench(ctx):
        await configure_dut(ctx, dut, config, program)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for cycle in range(1, cycles + 1):
            assert ctx.get(dut.running)
            assert not ctx.get(dut.error)
            if ctx.get(dut.job_start):
                seen["cycle"] = cycle
                seen["window"] = window_of(ctx, dut, "blocks")
            assert ctx.get(dut.done) == (cycle == cycles)
            await ctx.tick()
        assert not ctx.get(dut.running)

    simulate(dut, bench)
    assert seen["window"] == expected
    assert seen["cycle"] == cycles - 1


def test_a_divide_by_zero_is_an_error():
    names = PROGRAM.registers
    code = (("cdiv", names["blocks.kb"], names["C"], names["K"]), ("done",))
    program = Program(code=code, registers=names, labels={})
    dut = MorphSequencer(program=program, multiplier="serial")
    errors = []

    async def bench(ctx):
        await configure_dut(ctx, dut, {**{n: 1 for n in CONFIG}, "C": 5, "K": 0}, program)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        while not ctx.get(dut.done):
            errors.append(ctx.get(dut.error))
            await ctx.tick()

    simulate(dut, bench)
    assert errors == [1] + [0] * 16


@pytest.mark.parametrize("kwargs, error, message", [
    ({"value_width": 15}, ValueError, r"value_width must be in 16\.\.32"),
    ({"index_width": 13}, ValueError, r"index_width must be in 1\.\.12"),
    ({"multiplier": "booth"}, ValueError, "multiplier must be one of dsp, serial"),
    ({"value_width": "32"}, TypeError, "value_width must be an integer"),
])
def test_bad_parameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        MorphSequencer(program=PROGRAM, **kwargs)
