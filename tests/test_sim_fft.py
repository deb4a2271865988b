"""The streaming FFT in cocotb (``dnnhw.sim.fft``) through the project's runner
(``dnnhw.flow.tasks.run_testbench``): random frames, rows of scikit-image's photographs and
saturating full-scale frames, every output sample bit-exact against
``golden.fft_fixed.fft``; stall-free at one sample a cycle, frames back to back, with the
core's latency; and under random stalls on both streams; the sticky overflow flag equal to
the golden model's; the SQNR recorded.

Default run: Icarus at the catalog's quick configuration (n = 64) and at a small inverse
build with other widths. ``pytest -m slow``: the same on Verilator, and n = 1024.
"""

import pytest

from dnnhw.flow.tasks import run_testbench
from dnnhw.golden.fft_fixed import fft as golden_fft
from dnnhw.rtl.fft import StreamingFFT
from dnnhw.sim.fft_data import image_frames
from dnnhw.sim.runner import icarus_available


needs_icarus = pytest.mark.skipif(not icarus_available(),
                                  reason="Icarus Verilog (iverilog) not installed")


def _check(res, params, *, sqnr_floor):
    assert res["passed"], res.get("error")
    assert set(res["tests"]) == {"stall_free", "random_stalls"}
    n = params["n"]
    dut = StreamingFFT(**params)
    free, stalled = res["stall_free"], res["random_stalls"]
    for run in (free, stalled):
        frames = run["frames"]
        assert frames["random"] >= 4 and frames["camera"] >= 2 and frames["astronaut"] >= 2
        assert frames["full_scale"] == 2
        assert run["samples"] == n * sum(frames.values())
        # The full-scale frames saturate (so the flag is 1, as the golden model's); the
        # random and image frames never do.
        assert run["overflow"] == {"rtl": 1, "golden": 1, "golden_run": 0}
        assert run["sqnr_db"]["run"] > sqnr_floor
        assert run["sqnr_db"]["full_scale"] < run["sqnr_db"]["run"]
    # A sample a cycle in and out, over the whole run: frames back to back.
    assert free["in_samples_per_cycle"] == free["out_samples_per_cycle"] == 1.0
    assert free["in_frame_rate_min"] == free["out_frame_rate_min"] == 1.0
    assert free["cycles"] == free["samples"] + dut.latency
    assert free["latency_first"] == free["latency_frame_max"] == free["latency_sidecar"] \
        == dut.latency
    assert (free["idle"], free["backpressure"]) == (0.0, 0.0)
    # The stalled run stalls, and the same data gives the same outputs (bit-exact).
    assert stalled["idle"] == stalled["backpressure"] == 0.3
    assert stalled["in_samples_per_cycle"] < 0.8 and stalled["in_frame_rate_min"] < 1.0
    assert stalled["sqnr_db"] == free["sqnr_db"]
    return free


@needs_icarus
def test_quick_configuration_on_icarus(build_root):
    params = {"n": 64, "width": 16, "twiddle_width": 16, "inverse": False}
    free = _check(run_testbench("fft", params, sim="icarus", build_root=build_root),
                  params, sqnr_floor=65)
    assert free["sqnr_reference"] == "numpy.fft.fft(x) / n"


@needs_icarus
def test_inverse_narrow_build_on_icarus(build_root):
    params = {"n": 16, "width": 12, "twiddle_width": 10, "inverse": True}
    free = _check(run_testbench("fft", params, sim="icarus", build_root=build_root,
                                config={"random_frames": 8, "image_frames": 4, "seed": 3}),
                  params, sqnr_floor=45)
    assert free["sqnr_reference"] == "numpy.fft.ifft(x)"
    assert free["frames"] == {"random": 8, "camera": 4, "astronaut": 4, "full_scale": 2}


def test_image_rows_are_scaled_symmetrically_and_never_saturate():
    # The bench's photographs: rows of n pixels, black -(M - 1), white M - 1, real only.
    frames = image_frames("astronaut", None, 64, 8)
    assert frames.shape == (512 * 512 // 64, 64, 2)
    assert frames[..., 0].min() == -127 and frames[..., 0].max() == 127
    assert not frames[..., 1].any()
    assert not golden_fft(frames, n=64, width=8, twiddle_width=8)[1]


@pytest.mark.slow
@pytest.mark.parametrize("n", [64, 1024])
def test_on_verilator(n, build_root):
    params = {"n": n, "width": 16, "twiddle_width": 16, "inverse": False}
    # _check asserts the run passed (every sample bit-exact), the rate, the latency and
    # the SQNR floor.
    _check(run_testbench("fft", params, build_root=build_root), params,
           sqnr_floor=65 if n == 64 else 50)
