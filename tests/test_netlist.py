"""Gate-level truth: each core's testbench, unchanged, on what Yosys synthesized (the
generic ``synth`` netlist, and the iCE40- and ECP5-mapped ones with Yosys's own cell
models). The testbench checks every output beat against the golden model, as it does on
the RTL, so a pass means the netlist computes what the RTL computes on those stimuli."""

import pytest

from dnnhw.catalog import CORES, NetlistCheck
from dnnhw.cli import main
from dnnhw.flow.tasks import run_testbench
from dnnhw.synth.netlist import NETLISTS, cell_models, write_netlist

from passthrough_core import CATALOG, RegisterSlice


def _cases():
    cases = []
    for core in CORES:
        for check in core.netlist_checks:
            label = ",".join(f"{k}={v}" for k, v in check.params.items())
            for netlist in check.netlists:
                marks = [pytest.mark.slow] if check.slow else []
                cases.append(pytest.param(core, check, netlist, marks=marks,
                                          id=f"{core.name}[{label}]-{netlist}"))
    return cases


@pytest.mark.parametrize("core, check, netlist", _cases())
def test_netlist_passes_the_testbench(core, check, netlist, build_root):
    results = run_testbench(core, check.params, netlist=netlist, testcase=check.testcase,
                            config=check.config, build_root=build_root)
    assert results["passed"] and results["netlist"] == netlist
    ran = [name for name, test in results["tests"].items() if test["status"] == "pass"]
    assert ran, results["tests"]


def test_every_netlist_check_names_known_netlists():
    for core in CORES:
        for check in core.netlist_checks:
            assert isinstance(check, NetlistCheck)
            assert set(check.netlists) <= set(NETLISTS), (core.name, check.netlists)
            core.resolve(check.params)


def test_mapped_netlists_carry_their_cell_models(tmp_path):
    for netlist, cell in (("generic", None), ("ice40-up5k", "SB_LUT4"),
                          ("ecp5-85f", "TRELLIS_FF")):
        path = write_netlist(RegisterSlice(width=8), name="slice", netlist=netlist,
                             build_dir=tmp_path / netlist)
        text = path.read_text()
        assert "module slice(" in text.replace(" (", "(")
        if cell is not None:
            assert f"module {cell}" in text and "`include" not in text
            assert cell in text.split(f"module {cell}")[0]   # instantiated by the netlist


def test_cell_models_inline_their_includes():
    assert "`include" not in cell_models("ecp5")


def test_write_netlist_rejects_an_unknown_netlist(tmp_path):
    with pytest.raises(ValueError, match="netlist must be one of generic, ice40-up5k"):
        write_netlist(RegisterSlice(width=8), name="s", netlist="asic", build_dir=tmp_path)


def test_cli_sim_rejects_an_unknown_netlist(capsys):
    assert main(["sim", "zvc-compress", "--netlist", "asic"]) == 2
    assert "--netlist must be one of generic, ice40-up5k" in capsys.readouterr().err


def test_a_netlist_is_reused_while_its_design_is_the_same(tmp_path, monkeypatch):
    import dnnhw.synth.netlist as netlist_module
    from dnnhw.flow.tasks import _design_in
    slice_row = CATALOG[0]
    first, _ = _design_in(tmp_path / "a", slice_row, {"width": 8}, "generic")
    text = first.read_text()

    def no_yosys(*args, **kwargs):
        raise AssertionError("Yosys ran again for an unchanged design")

    monkeypatch.setattr(netlist_module, "write_netlist", no_yosys)
    again, _ = _design_in(tmp_path / "a", slice_row, {"width": 8}, "generic")
    assert again == first and again.read_text() == text
    with pytest.raises(AssertionError, match="Yosys ran again"):   # a new design does run
        _design_in(tmp_path / "a", slice_row, {"width": 16}, "generic")
    with pytest.raises(AssertionError, match="Yosys ran again"):   # so does a new netlist
        _design_in(tmp_path / "a", slice_row, {"width": 8}, "ice40-up5k")
