"""The sequencer RTL against the Python machine: the same jobs, launched in the same order
with the same register values, and the same cycle count, on real layers and mappings.
The engines are stand-ins that stay busy a random number of cycles."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from dnnhw.golden.morph import DIMS, Layer, Mapping
from dnnhw.rtl.morph_program import CONFIG, JOBS, RUNS, sequencer_program
from dnnhw.rtl.morph_sequencer import MorphSequencer
from dnnhw.sim.morph_loader import ArrayShape, configure, layout
from dnnhw.sim.morph_machine import Machine

PROGRAM = sequencer_program()


def machine_jobs(layer, mapping, shape, mul_cycles):
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

    machine = Machine(PROGRAM, kp=shape.kp, hp=shape.hp, wp=shape.wp,
                      l2_words=shape.l2_banks * shape.l2_bank_words,
                      l1_input_words=shape.l1_input_words,
                      l1_weight_words=shape.l1_weight_words,
                      l1_psum_entries=shape.l1_psum_entries, memory_latency=5,
                      mul_cycles=mul_cycles, on_job=on_job)
    total = machine.run(config, dram)["cycles"]
    return config, jobs, total


def run_sequencer(config, multiplier, busy_cycles, seed):
    dut = MorphSequencer(program=PROGRAM, multiplier=multiplier)
    names = PROGRAM.registers
    rng = random.Random(seed)
    seen = []
    result = {}

    async def bench(ctx):
        for name in CONFIG:
            ctx.set(dut.config_we, 1)
            ctx.set(dut.config_addr, names[name])
            ctx.set(dut.config_data, config[name])
            await ctx.tick()
        ctx.set(dut.config_we, 0)
        for p in range(len(DIMS)):
            ctx.set(dut.order2[p], DIMS.index(config["order2"][p]))
            ctx.set(dut.order1[p], DIMS.index(config["order1"][p]))
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        cycles = 0
        busy_left = 0
        while True:
            assert ctx.get(dut.running)
            cycles += 1
            if ctx.get(dut.job_start):
                run = list(RUNS)[ctx.get(dut.job_run)]
                window = RUNS[run][0]
                regs = {n: ctx.get(dut.registers[names[f"{window}.{n}"]])
                        for n in JOBS[window]}
                busy_left = busy_cycles(rng)
                seen.append((run, regs, busy_left))
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
        result["cycles"] = cycles

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen, result["cycles"]


CASES = [
    # Two L2 steps (K), two L1 steps each (C, then a refill of the partial sums).
    ("tiny", Layer(C=2, F=1, H=2, W=2, K=2, T=1, R=2, S=2, padding=(0, 1, 1)),
     Mapping("KCFHW", "CKFHW", (1, 2, 1, 3, 3), (1, 1, 1, 2, 3), (1, 2, 2), (1, 1, 1),
             (1, 1, 1))),
    ("ragged", Layer(C=3, F=4, H=5, W=5, K=3, padding=1),
     Mapping("KCFHW", "CKFHW", (3, 2, 2, 5, 3), (2, 1, 1, 3, 2), (2, 2, 2), (1, 1, 1),
             (1, 1, 1))),
    ("strided-batch", Layer(C=2, F=5, H=7, W=6, K=3, T=1, R=3, S=2, N=2,
                            stride=(2, 2, 1), padding=(0, 1, 0)),
     Mapping("HWKCF", "WFHKC", (2, 2, 2, 3, 4), (1, 1, 1, 2, 3), (1, 2, 2), (1, 1, 1),
             (1, 1, 1))),
]


def _slow_unless_tiny(case):
    # The Amaranth simulator runs this machine at a few thousand cycles a second: the
    # default run takes the tiny layer, the slow tier the rest.
    return case if case[0] == "tiny" else pytest.param(*case, marks=pytest.mark.slow)


@pytest.mark.parametrize("multiplier", ["dsp", "serial"])
@pytest.mark.parametrize("name, layer, mapping", [_slow_unless_tiny(c) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_same_jobs_and_cycles_as_the_machine(name, layer, mapping, multiplier):
    shape = ArrayShape(l2_banks=3, l2_bank_words=1024)
    mul_cycles = MorphSequencer(program=PROGRAM, multiplier=multiplier).mul_cycles
    config, jobs, total = machine_jobs(layer, mapping, shape, mul_cycles)
    seen, cycles = run_sequencer(config, multiplier, lambda rng: rng.randint(0, 3), seed=1)
    assert [(run, regs) for run, regs, _ in seen] == [(run, job) for run, job, _ in jobs]
    # The machine's cycles with its job costs swapped for the stand-ins' busy cycles.
    expected = total - sum(c for _, _, c in jobs) + sum(b for _, _, b in seen)
    assert cycles == expected


@pytest.mark.parametrize("kwargs, error, message", [
    ({"value_width": 15}, ValueError, r"value_width must be in 16\.\.32"),
    ({"index_width": 13}, ValueError, r"index_width must be in 1\.\.12"),
    ({"multiplier": "booth"}, ValueError, "multiplier must be one of dsp, serial"),
    ({"value_width": "32"}, TypeError, "value_width must be an integer"),
])
def test_bad_parameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        MorphSequencer(program=PROGRAM, **kwargs)
