"""The whole board top, UART pins included, on Verilator, driven by the unmodified host
driver (dnnhw.host.Board) through a pseudo-terminal: dnnhw.sim.board."""

import hashlib
import os

import pytest

from dnnhw.sim.runner import build_dir_for, run_verilog


pytestmark = pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pty")

ZVC = ("zvc-compress", {"lanes": 4, "width": 8})
ZVC_DECOMPRESS = ("zvc-decompress", {"lanes": 4, "width": 8})
TESTS = {"identify_and_run", "bad_crc", "host_gone_mid_frame"}
DIVISOR = 8


def generate_sim_top(core, params, build_root, divisor=DIVISOR):
    """Verilog of the simulation board top and its sidecar (the top's ports and UART
    settings, the core's sidecar inside), in ``<build_root>/sim/<module>-verilator``."""
    from amaranth.back import verilog

    from dnnhw.boards.sim import sim_board_top

    sim_top = sim_board_top(core, params, divisor=divisor)
    top = sim_top.top
    text = verilog.convert(sim_top, name="dnnhw_board_sim", emit_src=False)
    # The module name carries the design, so each design has its own build directory.
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    module = f"dnnhw_board_sim_{digest}"
    text = text.replace("dnnhw_board_sim", module)
    build_dir = build_dir_for(module, "verilator", build_root)
    build_dir.mkdir(parents=True, exist_ok=True)
    v_path = build_dir / f"{module}.v"
    if not v_path.is_file() or v_path.read_text() != text:
        v_path.write_text(text)
    sidecar = {"module": module, "clock": "clk", "reset": "rst", "divisor": top.divisor,
               "baud": top.baud, "timeout_bits": top.bridge.timeout_bits,
               "max_payload": top.max_payload, "ident": top.ident,
               "leds": list(top.board.leds), "core_sidecar": top.sidecar}
    return v_path, sidecar


def run_board(build_root, core=ZVC, **kwargs):
    v_path, sidecar = generate_sim_top(*core, build_root)
    return run_verilog(v_path, sidecar, "dnnhw.sim.board", build_root=build_root, **kwargs)


def test_board_over_a_pty(build_root):
    """zvc-compress: identify, run against the golden compressor, a bad CRC, a host gone
    mid-frame."""
    res = run_board(build_root)
    assert res["passed"], res
    assert set(res["tests"]) == TESTS
    assert all(t["status"] == "pass" for t in res["tests"].values()), res["tests"]
    first = res["identify_and_run"]
    assert first["ident"]["core"] == "zvc-compress"
    assert first["ident"]["module"] == "dnnhw_zvc_compress_lanes4_width8"
    assert first["bytes_in"] > 0 and first["bytes_out"] > 0
    assert res["bad_crc"]["state"]["frame_error"]
    assert res["bad_crc"]["leds"]["error"] == 1


def test_decompress_board_over_a_pty(build_root):
    """zvc-decompress: the golden compressor's words in, the windows back."""
    res = run_board(build_root, ZVC_DECOMPRESS, testcase="identify_and_run")
    assert res["passed"], res
    assert set(res["tests"]) == {"identify_and_run"}
    assert res["identify_and_run"]["ident"]["core"] == "zvc-decompress"
