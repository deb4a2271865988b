"""cocotb runs of the ZVC cores (compressor, decompressor, loopback) against the golden
model, through ``dnnhw.sim.runner.run_testbench`` with Verilator (and Icarus).

Default run: three parameter points (one build per core and point, reused across runs
through the build stamp). ``pytest -m slow``: the full lanes x width sweep, with a
10,000-window round trip under random stalls per point (120,000 windows in all).

The decompressor's malformed-input contract (issue 16): every decompressor run includes
the bench's ``malformed`` test (every hand-made case of every class that can occur at the
geometry, plus random corrupted streams, under five stall patterns; see
``dnnhw/sim/zvc.py``), checked by ``check_malformed``. Default: 4x8, 8x16, 32x32 (full
bench) and 4x16, 8x8, 16x8 (malformed only) on Verilator, 8x16 and 16x8 on Icarus (4x8
runs there in test_cross_sim.py, which asserts it measures what Verilator does); slow:
every point on Verilator, 4x16 and 8x8 on Icarus.

Builds go to ``$DNNHW_BUILD_ROOT`` or ``<repo>/dnnhw-build`` (git-ignored; the
``build_root`` fixture of ``conftest.py``), so a second session reuses them. One cocotb
module, ``dnnhw.sim.zvc``, serves the three cores (it reads the core from the sidecar).
"""

import pytest

from dnnhw.flow.tasks import run_testbench
from dnnhw.golden.zvc import MALFORMED_CLASSES, mask_slots
from dnnhw.sim.runner import icarus_available


POINTS = [(4, 8), (8, 16), (32, 32)]
SWEEP = [(lanes, width) for lanes in (4, 8, 16, 32) for width in (8, 16, 32)]
DENSITIES = [0.0, 0.01, 0.1, 0.5, 0.9, 1.0]

THROUGHPUT_WINDOWS = 10_000          # stall-free, per density
RATE_TOL = 0.01                      # measured rate vs the ideal bound, relative
DEFAULT_ROUND_TRIP = 3_000           # loopback, default run, per point
SLOW_ROUND_TRIP = 10_000             # loopback, slow sweep, per point


def _ids(points):
    return [f"lanes{lanes}-width{width}" for lanes, width in points]


# --- what every run must show --------------------------------------------------------

def _check_common(res):
    assert res["passed"], res.get("error")
    latency = res["latency"]
    assert latency["sidecar"] is not None, \
        "the sidecar has no latency: the component's `latency` property is missing or raised"
    assert latency["measured"] == latency["sidecar"], latency
    assert sorted(res["throughput"]) == sorted(f"{d:g}" for d in DENSITIES)
    stalls = res["random_stalls"]
    assert stalls["idle"] > 0 and stalls["backpressure"] > 0
    assert stalls["frame_lengths"]["min"] == 1 and stalls["frame_lengths"]["max"] >= 1000


def check_compress(res, lanes):
    _check_common(res)
    for density, r in res["throughput"].items():
        assert r["in_beats"] >= THROUGHPUT_WINDOWS
        if r["mean_slots_per_window"] <= lanes:
            # The compressor takes one window every cycle when the output keeps up.
            assert r["in_beats_per_cycle"] == 1.0, (density, r)
        else:
            # Else the output port (N slots per cycle) is the bound, and it is reached.
            assert r["in_beats_per_cycle"] == pytest.approx(r["port_bound"], rel=RATE_TOL), \
                (density, r)
        # The documented latency holds for words not queued behind a full output port.
        assert r["latency_item_min"] == res["latency"]["sidecar"], (density, r)


def check_malformed(res, lanes, width):
    """The ``malformed`` record: every case and random stream under at least the four
    required stall patterns, identical across them, equal to the golden model's hardware
    mode, the frame after each case intact; every class that can occur here covered."""
    assert res["passed"], res.get("error")
    mal = res["malformed"]
    assert {"full rate", "random", "bursty", "slow sink"} <= set(mal["patterns"])
    m = mask_slots(lanes, width)
    possible = {c for c in MALFORMED_CLASSES
                if not (c == "truncated mask" and m == 1)
                and not (c == "mask bits past N" and m * width == lanes)}
    assert {c["class"] for c in mal["cases"]} == possible | {"well-formed"}
    for case in mal["cases"]:
        assert case["identical_across_patterns"] and case["matches_golden"], case
        assert case["recovered"], case
        malformed = case["class"] != "well-formed"
        assert case["error"] == int(malformed), case
        assert (case["golden"] == "well-formed") != malformed, case
        assert case["last_at"] == [case["out_windows"] - 1], case
    rnd = mal["random"]
    assert rnd["all_identical"] and rnd["all_match_golden"]
    assert rnd["streams"] >= 20 and rnd["malformed_frames"] >= rnd["streams"]
    return len(mal["cases"]), len(mal["patterns"])


def check_decompress(res, lanes, width):
    _check_common(res)
    check_malformed(res, lanes, width)
    for density, r in res["throughput"].items():
        assert r["out_beats"] >= THROUGHPUT_WINDOWS
        # min(1 window, N input slots) per cycle.
        assert r["windows_per_cycle"] == pytest.approx(r["frame_bound"], rel=RATE_TOL), \
            (density, r)
        assert r["latency_item_min"] == res["latency"]["sidecar"], (density, r)


def check_loopback(res, lanes, round_trip):
    _check_common(res)
    for density, r in res["throughput"].items():
        assert r["out_beats"] == r["in_beats"] == THROUGHPUT_WINDOWS
        assert r["windows_per_cycle"] == pytest.approx(r["frame_bound"], rel=RATE_TOL), \
            (density, r)
    assert res["round_trip"]["windows"] >= round_trip


def _run(core, lanes, width, build_root, **config):
    return run_testbench(core, {"lanes": lanes, "width": width}, build_root=build_root,
                         config={"throughput_windows": THROUGHPUT_WINDOWS, **config})


# --- default run ---------------------------------------------------------------------

@pytest.mark.parametrize("lanes,width", POINTS, ids=_ids(POINTS))
def test_compress(lanes, width, build_root):
    check_compress(_run("zvc-compress", lanes, width, build_root), lanes)


@pytest.mark.parametrize("lanes,width", POINTS, ids=_ids(POINTS))
def test_decompress(lanes, width, build_root):
    check_decompress(_run("zvc-decompress", lanes, width, build_root), lanes, width)


@pytest.mark.parametrize("lanes,width", POINTS, ids=_ids(POINTS))
def test_loopback(lanes, width, build_root):
    res = _run("zvc-loopback", lanes, width, build_root,
               round_trip_windows=DEFAULT_ROUND_TRIP)
    check_loopback(res, lanes, DEFAULT_ROUND_TRIP)


# --- the malformed-input contract at more geometries -------------------------------------

MALFORMED_ONLY = [(4, 16), (8, 8), (16, 8)]        # the others run it in test_decompress
ICARUS_MALFORMED = [(8, 16), (16, 8)]
# The 32-lane points (200 s on Icarus) went when the cross-simulation came: Icarus measures
# what Verilator does, and Verilator runs the malformed cases at every point.
SLOW_ICARUS_MALFORMED = [(4, 16), (8, 8)]


def run_and_check_malformed(lanes, width, build_root, sim="verilator"):
    res = run_testbench("zvc-decompress", {"lanes": lanes, "width": width}, sim=sim,
                        build_root=build_root, testcase="malformed")
    assert set(res["tests"]) == {"malformed"}
    return check_malformed(res, lanes, width)


@pytest.mark.parametrize("lanes,width", MALFORMED_ONLY, ids=_ids(MALFORMED_ONLY))
def test_malformed(lanes, width, build_root):
    run_and_check_malformed(lanes, width, build_root)


@pytest.mark.skipif(not icarus_available(), reason="Icarus Verilog (iverilog) not installed")
@pytest.mark.parametrize("lanes,width", ICARUS_MALFORMED, ids=_ids(ICARUS_MALFORMED))
def test_malformed_icarus(lanes, width, build_root):
    run_and_check_malformed(lanes, width, build_root, sim="icarus")


@pytest.mark.slow
@pytest.mark.skipif(not icarus_available(), reason="Icarus Verilog (iverilog) not installed")
@pytest.mark.parametrize("lanes,width", SLOW_ICARUS_MALFORMED, ids=_ids(SLOW_ICARUS_MALFORMED))
def test_slow_malformed_icarus(lanes, width, build_root):
    run_and_check_malformed(lanes, width, build_root, sim="icarus")


# --- slow: the full sweep --------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("lanes,width", SWEEP, ids=_ids(SWEEP))
def test_sweep_compress(lanes, width, build_root):
    check_compress(_run("zvc-compress", lanes, width, build_root), lanes)


@pytest.mark.slow
@pytest.mark.parametrize("lanes,width", SWEEP, ids=_ids(SWEEP))
def test_sweep_decompress(lanes, width, build_root):
    check_decompress(_run("zvc-decompress", lanes, width, build_root), lanes, width)


@pytest.mark.slow
@pytest.mark.parametrize("lanes,width", SWEEP, ids=_ids(SWEEP))
def test_sweep_round_trip(lanes, width, build_root):
    """12 points x 10,000 windows: 120,000 random windows through compressor and
    decompressor, random stalls on both sides, across every lanes/width and density."""
    res = _run("zvc-loopback", lanes, width, build_root, round_trip_windows=SLOW_ROUND_TRIP)
    check_loopback(res, lanes, SLOW_ROUND_TRIP)


# --- the testbench catches a wrong word, and a timing-dependent error flag ---------------

def test_malformed_catches_a_late_error_flag(build_root, tmp_path):
    """A decompressor whose ``error`` is registered once more (a cycle late) shows the
    right flag after every case, but not at the transfer of a malformed frame's last
    window under full rate, while a slow sink hides the delay: the bench must fail it,
    for the error at that transfer and for the difference across stall patterns."""
    from amaranth import Module, Signal
    from amaranth.back import verilog
    from amaranth.lib import wiring
    from dnnhw.catalog import get_core
    from dnnhw.generate import describe
    from dnnhw.sim.runner import TestbenchFailure, run_verilog

    params = {"lanes": 4, "width": 8}
    inner_class = get_core("zvc-decompress").component_class()

    class LateError(wiring.Component):
        def __init__(self):
            self.inner = inner_class(**params)
            super().__init__(self.inner.signature)

        def elaborate(self, platform):
            m = Module()
            m.submodules.inner = inner = self.inner
            wiring.connect(m, wiring.flipped(self.i), inner.i)
            wiring.connect(m, inner.o, wiring.flipped(self.o))
            late = Signal()
            m.d.sync += late.eq(inner.error)
            m.d.comb += self.error.eq(late)
            return m

    mutant = LateError()
    module = "dnnhw_test_zvc_decompress_late_error"
    v_path = tmp_path / f"{module}.v"
    v_path.write_text(verilog.convert(mutant, name=module, emit_src=False))
    sidecar = describe(mutant, core="zvc-decompress", module=module, params=params)
    sidecar["latency"] = mutant.inner.latency
    with pytest.raises(TestbenchFailure, match="break the contract") as info:
        run_verilog(v_path, sidecar, "dnnhw.sim.zvc", build_root=build_root,
                    testcase="malformed")
    assert "error was 0 at output window" in str(info.value)
    cases = info.value.results["malformed"]["cases"]
    bad = [c for c in cases if c["class"] != "well-formed"]
    assert all(not c["matches_golden"] for c in bad)
    assert all(not c["identical_across_patterns"] for c in bad)
    assert all(c["error"] == 1 for c in bad)      # the final flag alone would not tell


def test_mutant_is_caught(build_root, tmp_path):
    """A compressor whose frame-final words carry one flipped bit must fail the check."""
    from amaranth import Module
    from amaranth.back import verilog
    from amaranth.lib import wiring
    from dnnhw.catalog import get_core
    from dnnhw.generate import describe
    from dnnhw.sim.runner import TestbenchFailure, run_verilog

    params = {"lanes": 4, "width": 8}
    inner_class = get_core("zvc-compress").component_class()

    class Mutant(wiring.Component):
        def __init__(self):
            self.inner = inner_class(**params)
            super().__init__(self.inner.signature)

        def elaborate(self, platform):
            m = Module()
            m.submodules.inner = inner = self.inner
            wiring.connect(m, wiring.flipped(self.i), inner.i)
            m.d.comb += [
                self.o.valid.eq(inner.o.valid),
                inner.o.ready.eq(self.o.ready),
                self.o.payload.eq(inner.o.payload),
                self.o.payload.data[1].eq(inner.o.payload.data[1] ^ inner.o.payload.last),
            ]
            return m

    mutant = Mutant()
    module = "dnnhw_test_zvc_compress_mutant"
    v_path = tmp_path / f"{module}.v"
    v_path.write_text(verilog.convert(mutant, name=module, emit_src=False))
    sidecar = describe(mutant, core="zvc-compress", module=module, params=params)
    sidecar["latency"] = mutant.inner.latency
    with pytest.raises(TestbenchFailure, match="differs") as info:
        run_verilog(v_path, sidecar, "dnnhw.sim.zvc", build_root=build_root,
                    testcase="random_stalls")
    assert "expected" in str(info.value)
