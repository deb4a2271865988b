"""The dnnhw command: listing, generation, sidecars and error messages."""

import json
from pathlib import Path

import pytest

from dnnhw.catalog import CORES, get_core
from dnnhw.cli import main


def test_list_shows_every_core_and_legal_values(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for core in CORES:
        assert core.name in out
    assert "lanes" in out and "4, 8, 16, 32" in out and "8, 16, 32" in out


@pytest.mark.parametrize("core", ["zvc-compress", "zvc-decompress"])
def test_generate_writes_verilog_and_sidecar(core, tmp_path, capsys):
    assert main(["generate", core, "--param", "lanes=8", "--param", "width=16",
                 "-o", str(tmp_path)]) == 0
    module = f"dnnhw_{core.replace('-', '_')}_lanes8_width16"
    verilog = (tmp_path / f"{module}.v").read_text()
    sidecar = json.loads((tmp_path / f"{module}.json").read_text())
    assert f"module {module}(" in verilog
    assert sidecar["module"] == module and sidecar["params"] == {"lanes": 8, "width": 16}
    ports = {p["name"]: p for p in sidecar["ports"]}
    for name, stream in sidecar["streams"].items():
        assert stream["payload"] in ports and stream["valid"] in ports and stream["ready"] in ports
        assert ports[stream["payload"]]["width"] == stream["width"]
        assert f"input [{stream['width'] - 1}:0] {stream['payload']}" in verilog or \
            f"output [{stream['width'] - 1}:0] {stream['payload']}" in verilog
        data = stream["fields"]["data"]
        assert data == {"offset": 0, "width": 128, "count": 8, "element_width": 16}
        assert stream["fields"]["last"]["width"] == 1
    words = sidecar["streams"]["o" if core == "zvc-compress" else "i"]["fields"]
    assert words["length"] == {"offset": 128, "width": 4}
    assert isinstance(sidecar["latency"], int) and sidecar["throughput"]


def test_module_names_are_unique_per_parameters():
    core = get_core("zvc-compress")
    names = {core.module_name({"lanes": n, "width": w}) for n in (4, 8, 16, 32) for w in (8, 16, 32)}
    assert len(names) == 12


@pytest.mark.parametrize("argv,message", [
    (["generate", "zvc-compress", "--param", "lanes=7"],
     "parameter 'lanes' must be one of 4, 8, 16, 32, got 7"),
    (["generate", "zvc-compress", "--param", "width=wide"],
     "parameter 'width' must be an integer in 8, 16, 32, got 'wide'"),
    (["generate", "zvc-compress", "--param", "depth=3"],
     "core 'zvc-compress' has no parameter 'depth'; its parameters are: lanes, width"),
    (["generate", "zvc-compress", "--param", "lanes"], "--param takes NAME=VALUE"),
    (["generate", "no-such-core"], "unknown core 'no-such-core'; known cores: zvc-compress"),
    (["synth", "zvc-compress", "--target", "xc7a35t"], "unknown target 'xc7a35t'; known targets: ice40-up5k"),
    (["sim", "zvc-compress", "--sim", "modelsim"],
     "argument --sim: invalid choice: 'modelsim' (choose from 'verilator', 'icarus')"),
    (["flow", "--cores", "nope"], "unknown core 'nope'"),
    (["flow", "--targets", "nope"], "unknown target 'nope'"),
])
def test_bad_input_exits_nonzero_naming_the_parameter(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_ratios_prints_three_ratios(capsys, tmp_path):
    import numpy as np
    from dnnhw.golden.zvc import relu_like
    assert main(["ratios"]) == 0
    out = capsys.readouterr().out
    assert "conv0" in out and "| ZV | RL | ZL |" in out.replace("  (lanes=32, width=32)", "")
    path = tmp_path / "t.npy"
    np.save(path, relu_like((16, 16), 0.3, rng=0))
    assert main(["ratios", str(path)]) == 0
    assert str(path) in capsys.readouterr().out


def test_component_errors_name_the_parameter():
    from dnnhw.rtl.zvc import ZVCCompressor, ZVCDecompressor
    with pytest.raises(ValueError, match="lanes must be one of 4, 8, 16, 32, got 5"):
        ZVCCompressor(lanes=5, width=8)
    with pytest.raises(ValueError, match="width must be one of 8, 16, 32, got 64"):
        ZVCDecompressor(lanes=8, width=64)
    with pytest.raises(TypeError, match="lanes must be an integer, got '8'"):
        ZVCCompressor(lanes="8", width=8)


def test_sim_command_runs_the_testbench(tmp_path, capsys):
    """`dnnhw sim` end to end at the smallest point, with a short run."""
    config = json.dumps({"densities": [0.5], "throughput_windows": 500, "throughput_frame": 100,
                         "stall_windows": 200})
    build = Path(__file__).resolve().parent.parent / "dnnhw-build"
    out = tmp_path / "sim.json"
    assert main(["sim", "zvc-compress", "-p", "lanes=4", "-p", "width=8", "--build-dir", str(build),
                 "--config", config, "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "PASS" in text and "density   0.5: 1.0000 windows/cycle" in text
    assert json.loads(out.read_text())["passed"] is True


def test_synth_command_writes_a_qor_record(tmp_path, capsys):
    out = tmp_path / "qor.json"
    assert main(["synth", "zvc-compress", "-p", "lanes=4", "-p", "width=8", "--target", "ecp5-85f",
                 "--build-dir", str(tmp_path / "build"), "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["target"] == "ecp5-85f" and record["lut"] > 0 and record["ff"] > 0
    assert record["fmax_mhz"] > 0 and record["critical_path"]
    assert "dnnhw_zvc_compress_lanes4_width8" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["generate", "diffy-tile", "--param", "mode=dadiannao"],
     "parameter 'mode' must be one of diffy, pragmatic, stripes, bitparallel, got 'dadiannao'"),
    (["generate", "diffy-tile", "--param", "lanes=17"],
     "parameter 'lanes' must be one of 1..16, got 17"),
    (["generate", "diffy-tile", "--param", "width=7"],
     "parameter 'width' must be one of 8..16, got 7"),
    (["generate", "diffy-tile", "--param", "shifter_bits=5"],
     "parameter 'shifter_bits' must be one of 0, 1, 2, 3, 4, got 5"),
    (["generate", "diffy-tile", "--param", "max_products=0"],
     "parameter 'max_products' must be one of 1..1048576, got 0"),
])
def test_diffy_tile_bad_parameters(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_generate_diffy_tile_sidecar(tmp_path, capsys):
    params = {"mode": "stripes", "lanes": 3, "filters": 2, "windows": 5}
    assert main(["generate", "diffy-tile", *(f"-p{k}={v}" for k, v in params.items()),
                 "-o", str(tmp_path)]) == 0
    sidecar = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert set(sidecar["streams"]) == {"a", "w", "o"}
    assert sidecar["streams"]["a"]["fields"]["acts"]["count"] == 15
    assert sidecar["streams"]["w"]["fields"]["weights"]["count"] == 6
    assert sidecar["streams"]["o"]["fields"]["sums"]["count"] == 10
    assert sidecar["signals"] == {"step": {"direction": "out", "width": 1},
                                  "msb": {"direction": "in", "width": 4},
                                  "msb_signed": {"direction": "in", "width": 1}}
    assert sidecar["latency"] == get_core("diffy-tile").build(params).latency


def test_synth_that_does_not_fit_exits_1_without_a_traceback(monkeypatch, tmp_path, capsys):
    import dnnhw.synth.build as flow

    def too_big(*args, name, target, **kwargs):
        raise flow.DoesNotFit(core=name, target=target, overused={"ICESTORM_LC": (7174, 5280)},
                              log="pack.log")
    monkeypatch.setattr(flow, "synthesize", too_big)
    assert main(["synth", "diffy-tile", "--target", "ice40-up5k",
                 "--build-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "does not fit ice40-up5k" in err and "ICESTORM_LC 7174 of 5280" in err
    assert "Traceback" not in err


def test_a_bool_parameter_takes_true_false_1_0_and_nothing_else():
    from dnnhw.catalog import Param, ParameterError
    flag = Param("l2_spram", False, (False, True))
    assert [flag.parse(t) for t in ("true", "False", "1", "0", True)] == [
        True, False, True, False, True]
    for bad in ("yes", 1, None):
        with pytest.raises(ParameterError, match="parameter 'l2_spram' must be true or false"):
            flag.parse(bad)
