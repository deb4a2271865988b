"""cocotb runs of the ZVC cores (compressor, decompressor, loopback) against the golden
model, through ``dnnhw.sim.runner.run_testbench`` with Verilator.

Default run: three parameter points (one build per core and point, reused across runs
through the build stamp). ``pytest -m slow``: the full lanes x width sweep, with a
10,000-window round trip under random stalls per point (120,000 windows in all).

Builds go to ``$DNNHW_BUILD_ROOT`` or ``<repo>/dnnhw-build`` (git-ignored; the
``build_root`` fixture of ``conftest.py``), so a second session reuses them. One cocotb
module, ``dnnhw.sim.zvc``, serves the three cores (it reads the core from the sidecar).
"""

import pytest

from dnnhw.flow.tasks import run_testbench
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


def check_decompress(res, lanes):
    _check_common(res)
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
    check_decompress(_run("zvc-decompress", lanes, width, build_root), lanes)


@pytest.mark.parametrize("lanes,width", POINTS, ids=_ids(POINTS))
def test_loopback(lanes, width, build_root):
    res = _run("zvc-loopback", lanes, width, build_root,
               round_trip_windows=DEFAULT_ROUND_TRIP)
    check_loopback(res, lanes, DEFAULT_ROUND_TRIP)


@pytest.mark.skipif(not icarus_available(), reason="Icarus Verilog (iverilog) not installed")
@pytest.mark.parametrize("core", ["zvc-compress", "zvc-decompress", "zvc-loopback"])
def test_icarus(core, build_root):
    res = run_testbench(core, {"lanes": 4, "width": 8}, sim="icarus", build_root=build_root,
                        config={"throughput_windows": 1000, "throughput_frame": 500,
                                "stall_windows": 1000, "max_frame": 500,
                                "densities": [0.0, 0.5, 1.0]})
    assert res["passed"]
    assert res["latency"]["measured"] == res["latency"]["sidecar"]


# --- slow: the full sweep --------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("lanes,width", SWEEP, ids=_ids(SWEEP))
def test_sweep_compress(lanes, width, build_root):
    check_compress(_run("zvc-compress", lanes, width, build_root), lanes)


@pytest.mark.slow
@pytest.mark.parametrize("lanes,width", SWEEP, ids=_ids(SWEEP))
def test_sweep_decompress(lanes, width, build_root):
    check_decompress(_run("zvc-decompress", lanes, width, build_root), lanes)


@pytest.mark.slow
@pytest.mark.parametrize("lanes,width", SWEEP, ids=_ids(SWEEP))
def test_sweep_round_trip(lanes, width, build_root):
    """12 points x 10,000 windows: 120,000 random windows through compressor and
    decompressor, random stalls on both sides, across every lanes/width and density."""
    res = _run("zvc-loopback", lanes, width, build_root, round_trip_windows=SLOW_ROUND_TRIP)
    check_loopback(res, lanes, SLOW_ROUND_TRIP)


# --- the testbench catches a wrong word ------------------------------------------------

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
