"""The band-limited convolution engine in cocotb (``dnnhw.sim.bandlimit_conv``) through the
project's runner: tiles of random samples and photograph patches, every output sample
bit-exact against ``golden.bandlimit_conv_fixed.conv``; stall-free within the core's tile
period, with random stalls on the filter, input and output streams, and after a filter
reload; the overflow flag equal to the golden model's.

Default run: Icarus at the catalog's quick configuration (2D 16 x 16) and a 1D one (64).
``pytest -m slow``: the 1D one on Verilator, and 2D 32 x 32 at c = 75 %.
"""

import pytest

from dnnhw.catalog import get_core
from dnnhw.flow.tasks import run_testbench
from dnnhw.rtl.bandlimit_conv import BandLimitedConv
from dnnhw.sim.bandlimit_conv import PERIOD_SLACK
from dnnhw.sim.runner import icarus_available


needs_icarus = pytest.mark.skipif(not icarus_available(),
                                  reason="Icarus Verilog (iverilog) not installed")


def _default_params():
    """The catalog's quick configuration (2D 16 x 16, c = 50 %) and its 1D one (64)."""
    core = get_core("bandlimit-conv")
    return [core.resolve({}), core.resolve({"dims": 1, "n": 64, "taps": 5})]


def _check(res, params, *, sqnr_floor):
    assert res["passed"], res.get("error")
    assert set(res["tests"]) == {"stall_free", "random_stalls", "reload"}
    dut = BandLimitedConv(**params)
    free, stalled, reload = res["stall_free"], res["random_stalls"], res["reload"]
    for run in (free, stalled, reload):
        assert run["tiles"] == {"random": 3, "camera": 2, "astronaut": 2}
        assert run["cycles_per_tile"] == pytest.approx(dut.cycles_per_tile)
        assert run["overflow"] == {"rtl": 0, "golden": 0}
        assert run["sqnr_db"]["run"] > sqnr_floor
    # The same data and filters give the same outputs whatever the stalls (bit-exact).
    assert stalled["sqnr_db"] == free["sqnr_db"]
    # The reload ran with another filter set: other outputs.
    assert reload["sqnr_db"] != free["sqnr_db"]
    assert free["tile_period"] <= dut.cycles_per_tile + PERIOD_SLACK
    assert (free["idle"], free["backpressure"]) == (0.0, 0.0)
    assert stalled["idle"] == stalled["backpressure"] == 0.3
    assert stalled["in_samples_per_cycle"] < free["in_samples_per_cycle"]
    return free


@needs_icarus
@pytest.mark.parametrize("params", _default_params(), ids=lambda p: f"{p['dims']}d-n{p['n']}")
def test_quick_configurations_on_icarus(build_root, params):
    # _check asserts the run passed (every sample bit-exact), the tile period against the
    # core's model, the overflow flag and the SQNR floor.
    _check(run_testbench("bandlimit-conv", params, sim="icarus", build_root=build_root),
           params, sqnr_floor=40)


@pytest.mark.slow
@pytest.mark.parametrize("params", [
    _default_params()[1], get_core("bandlimit-conv").resolve({"n": 32, "compression_rate": 75})],
    ids=lambda p: f"{p['dims']}d-n{p['n']}-c{p['compression_rate']}")
def test_on_verilator(build_root, params):
    # As above: _check asserts exactness, the period, the flag and the SQNR floor.
    _check(run_testbench("bandlimit-conv", params, sim="verilator", build_root=build_root),
           params, sqnr_floor=40)
