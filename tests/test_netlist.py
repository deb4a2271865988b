"""Gate-level truth: each core's testbench, unchanged, on what Yosys synthesized (the
generic ``synth`` netlist, and the iCE40- and ECP5-mapped ones with Yosys's own cell
models). The testbench checks every output beat against the golden model, as it does on
the RTL, so a pass means the netlist computes what the RTL computes on those stimuli."""

import random
import re
import subprocess

import pytest

from dnnhw.catalog import CORES, NetlistCheck
from dnnhw.cli import main
from dnnhw.flow.tasks import run_testbench
from dnnhw.synth.netlist import (NETLISTS, cell_models, check_mult18x18d, mult18x18d_model,
                                 write_netlist)

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


def _mult_vectors():
    """(a, b, signed_a, signed_b) 18-bit patterns: the corners of every signedness, then
    random ones."""
    corners = [0, 1, 2, 0x1FFFF, 0x20000, 0x20001, 0x3FFFF, 0x15555, 0x2AAAA]
    rng = random.Random(18)
    vectors = [(a, b, sa, sb) for a in corners for b in corners
               for sa in (0, 1) for sb in (0, 1)]
    vectors += [(rng.getrandbits(18), rng.getrandbits(18), rng.getrandbits(1),
                 rng.getrandbits(1)) for _ in range(2000)]
    return vectors


def _as_int(bits, signed):
    return bits - (1 << 18) if signed and bits >> 17 else bits


def test_mult18x18d_model_multiplies_like_python(tmp_path):
    # The model on Icarus, its products checked here in Python integers: 18-bit two's
    # complement or unsigned operands, the 36-bit product.
    vectors = _mult_vectors()
    ports = ([f".A{i}(a[{i}])" for i in range(18)] + [f".B{i}(b[{i}])" for i in range(18)]
             + [f".C{i}(1'b0)" for i in range(18)] + [f".P{i}(p[{i}])" for i in range(36)]
             + [".SIGNEDA(sa)", ".SIGNEDB(sb)", ".SOURCEA(1'b0)", ".SOURCEB(1'b0)"])
    steps = "\n".join(f"    a = 18'h{a:x}; b = 18'h{b:x}; sa = {sa}; sb = {sb}; "
                      f'#1 $display("%h", p);' for a, b, sa, sb in vectors)
    bench = (f"module bench;\n  reg [17:0] a, b; reg sa, sb; wire [35:0] p;\n"
             f"  MULT18X18D dut({', '.join(ports)});\n  initial begin\n{steps}\n"
             f"  end\nendmodule\n")
    (tmp_path / "bench.v").write_text(bench + mult18x18d_model())
    subprocess.run(["iverilog", "-o", "bench.vvp", "bench.v"], cwd=tmp_path, check=True)
    out = subprocess.run(["vvp", "-n", "bench.vvp"], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout.split()
    assert len(out) == len(vectors)
    for (a, b, sa, sb), got in zip(vectors, out):
        want = (_as_int(a, sa) * _as_int(b, sb)) % (1 << 36)
        assert int(got, 16) == want, (hex(a), hex(b), sa, sb, got, hex(want))


@pytest.mark.parametrize("instance, message", [
    ("MULT18X18D #(\n    .REG_INPUTA_CLK(\"CLK0\"),\n    .GSR(\"DISABLED\")\n  ) m0 (\n"
     "    .A0(a[0]),\n    .P0(p[0])\n  );",
     "MULT18X18D m0 sets REG_INPUTA_CLK, GSR; dnnhw's model covers only the defaults"),
    ("MULT18X18D m1 (\n    .A0(a[0]),\n    .ROA0(x),\n    .P0(p[0])\n  );",
     "MULT18X18D m1 connects ROA0; dnnhw's model has only A, B, C, P"),
    ("MULT18X18D m2 (\n    .SOURCEA(s),\n    .P0(p[0])\n  );",
     "MULT18X18D m2 drives SOURCEA with s; dnnhw's model takes parallel operands only"),
])
def test_mult18x18d_check_refuses_what_the_model_does_not_cover(instance, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_mult18x18d("module top;\n  " + instance + "\nendmodule\n")


def test_an_ecp5_netlist_with_multipliers_carries_the_model(tmp_path):
    from amaranth.hdl import Module, signed
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    class Multiply(wiring.Component):
        a: In(signed(12))
        b: In(signed(12))
        p: Out(signed(24))

        def elaborate(self, platform):
            m = Module()
            m.d.comb += self.p.eq(self.a * self.b)
            return m

    text = write_netlist(Multiply(), name="multiply", netlist="ecp5-85f",
                         build_dir=tmp_path).read_text()
    assert check_mult18x18d(text) == 1
    assert "dnnhw's model of MULT18X18D" in text
    # Without multipliers the netlist gets none.
    slice_text = write_netlist(RegisterSlice(width=8), name="slice", netlist="ecp5-85f",
                               build_dir=tmp_path / "slice").read_text()
    assert "module MULT18X18D" not in slice_text
