"""The whole board top, UART pins included, on Verilator, driven by the unmodified host
driver (dnnhw.host.Board) and by `dnnhw board run` through a pseudo-terminal:
dnnhw.sim.board. Each core runs its own board job (Core.board_job), checked beat for beat
against the golden model."""

import os

import numpy as np
import pytest

from dnnhw.boards.sim import write_sim_top
from dnnhw.sim.runner import run_verilog


pytestmark = pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pty")

ZVC = ("zvc-compress", {"lanes": 4, "width": 8})
ZVC_DECOMPRESS = ("zvc-decompress", {"lanes": 4, "width": 8})
# The Diffy tile that CI builds for the iCEBreaker (tests/test_boards.py).
DIFFY = ("diffy-tile", {"lanes": 4, "filters": 2, "windows": 1, "width": 8,
                        "max_products": 576})
FFT = ("fft", {"n": 16})
EVERY_TEST = {"identify_and_run", "bad_crc", "malformed_frames", "host_gone_mid_frame",
              "board_run_command"}
RUNS = ["identify_and_run", "board_run_command"]


def run_board(build_root, core, *, testcase=None, config=None):
    name, params = core
    # One build directory per design: the module name carries its digest.
    v_path, sidecar = write_sim_top(name, params, build_dir=build_root / "board-sim")
    build_dir = build_root / "sim" / f"{sidecar['module']}-verilator"
    return run_verilog(v_path, sidecar, "dnnhw.sim.board", build_dir=build_dir,
                       build_root=build_root, testcase=testcase, config=config)


def _passed(res, tests):
    assert res["passed"], res
    assert set(res["tests"]) == set(tests)
    assert all(t["status"] == "pass" for t in res["tests"].values()), res["tests"]


def test_compressor_board_over_a_pty(build_root, tmp_path):
    """zvc-compress: identify, run against the golden compressor, every malformed frame,
    a host gone mid-frame, and `dnnhw board run` on a sparse int8 tensor of a shape that
    is no whole number of windows."""
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, size=(3, 7, 5)) * (rng.random((3, 7, 5)) < 0.4)
    np.save(tmp_path / "x.npy", x.astype(np.int8))
    res = run_board(build_root, ZVC, config={"input": str(tmp_path / "x.npy")})
    _passed(res, EVERY_TEST)
    first = res["identify_and_run"]
    assert first["ident"]["core"] == "zvc-compress"
    assert first["ident"]["module"] == "dnnhw_zvc_compress_lanes4_width8"
    assert first["bytes_in"] > 0 and first["bytes_out"] > 0
    assert res["bad_crc"]["state"]["frame_error"]
    assert res["bad_crc"]["leds"]["error"] == 1
    command = res["board_run_command"]
    assert "27 windows of 4 x 8 bits" in command["stdout"]     # 105 elements, padded
    assert set(command["outputs"]) == {"data", "length", "last"}


def test_decompressor_board_over_a_pty(build_root, tmp_path):
    """zvc-decompress: the golden compressor's words in, the windows back, from the
    driver and from `dnnhw board run` on frames given as (frames, windows, lanes)."""
    rng = np.random.default_rng(6)
    x = rng.integers(0, 256, size=(2, 6, 4)) * (rng.random((2, 6, 4)) < 0.5)
    np.save(tmp_path / "x.npy", x.astype(np.uint8))
    res = run_board(build_root, ZVC_DECOMPRESS, testcase=RUNS,
                    config={"input": str(tmp_path / "x.npy")})
    _passed(res, RUNS)
    assert res["identify_and_run"]["ident"]["core"] == "zvc-decompress"
    assert "2 frames, 12 windows" in res["board_run_command"]["stdout"]
    assert res["board_run_command"]["outputs"]["data"] == [12, 4]


def test_diffy_layer_over_a_pty(build_root, tmp_path):
    """diffy-tile: conv layers through the tile on the board, two input streams in step,
    bit-exact: the example layer from the driver, and `dnnhw board run` on a layer file
    (x, w, stride, padding) with a stride of 2."""
    rng = np.random.default_rng(7)
    x = np.clip(np.cumsum(rng.integers(-4, 5, size=(1, 2, 5, 6)), axis=-1) + 40, 0, 127)
    w = rng.integers(-31, 32, size=(3, 2, 3, 3))
    np.savez(tmp_path / "layer.npz", x=x, w=w, stride=2, padding=1)
    res = run_board(build_root, DIFFY, testcase=RUNS,
                    config={"input": str(tmp_path / "layer.npz")})
    _passed(res, RUNS)
    assert res["identify_and_run"]["ident"]["core"] == "diffy-tile"
    assert "stride 2, padding 1" in res["board_run_command"]["stdout"]


@pytest.mark.slow
@pytest.mark.parametrize("core", [FFT, ("diffy-tile", dict(DIFFY[1], mode="stripes")),
                                  ("zvc-loopback", {"lanes": 4, "width": 8})],
                         ids=["fft", "diffy-stripes", "zvc-loopback"])
def test_more_cores_over_a_pty(build_root, core):
    """More cores' board jobs on their example data: the FFT (its overflow flag checked
    against the golden model's), a Stripes tile whose msb the board leaves at its
    default, and the ZVC loopback."""
    res = run_board(build_root, core, testcase=RUNS)
    _passed(res, RUNS)
