"""Verilator's ``--lint-only -Wall`` is clean on every core's generated Verilog under the
project's waivers (dnnhw.sim.lint.WAIVERS, each with its reason): at its defaults and
the small configurations the proofs and gate-level runs use, and (slow tier) at every
configuration the main job builds. A warning of any rule not waived fails, so a latch,
a combinational loop or a second driver in a new core shows here."""

import json

import pytest

from dnnhw.catalog import CORES
from dnnhw.cli import main
from dnnhw.flow.tasks import lint_core
from dnnhw.sim.lint import WAIVERS, Finding, LintError, format_findings, lint_verilog


def _cases():
    """Each core's defaults and small configurations; then (slow) the main job's."""
    cases, seen = [], set()
    for core in CORES:
        small = [{}, *core.proof_configs, *(check.params for check in core.netlist_checks)]
        built = [config.params for config in core.flow]
        for params, slow in [*((p, False) for p in small), *((p, True) for p in built)]:
            resolved = core.resolve(params)
            key = (core.name, json.dumps(resolved, sort_keys=True, default=str))
            if key not in seen:
                seen.add(key)
                cases.append(pytest.param(core, resolved, id=core.module_name(resolved),
                                          marks=[pytest.mark.slow] if slow else []))
    return cases


@pytest.mark.parametrize("core, params", _cases())
def test_lint_is_clean(core, params, build_root):
    findings = lint_core(core, params, build_root=build_root)
    assert not findings, format_findings(findings)


# --- the lint itself finds what it is there to find -------------------------------------

_FAULTY = """\
module faulty(input wire clk, input wire [3:0] a, output reg [3:0] q, output wire [3:0] u);
  always @* if (a[0]) q = a;
endmodule
"""


def test_lint_reports_a_latch_and_an_undriven_output(tmp_path):
    verilog = tmp_path / "faulty.v"
    verilog.write_text(_FAULTY)
    findings = lint_verilog(verilog, build_dir=tmp_path / "lint")
    rules = {finding.rule for finding in findings}
    assert {"LATCH", "UNDRIVEN"} <= rules, format_findings(findings)
    latch = next(f for f in findings if f.rule == "LATCH")
    assert latch.file.endswith("faulty.v") and latch.line == 2


def test_a_waiver_removes_only_its_rule(tmp_path):
    verilog = tmp_path / "wide.v"
    verilog.write_text("module wide(input wire [1:0] a, output wire [3:0] y, "
                       "output wire [3:0] z);\n  assign y = a;\nendmodule\n")
    waived = lint_verilog(verilog, build_dir=tmp_path / "a")
    assert [f.rule for f in waived] == ["UNDRIVEN"], format_findings(waived)
    unwaived = lint_verilog(verilog, build_dir=tmp_path / "b", waivers=())
    assert {"WIDTHEXPAND", "UNDRIVEN"} <= {f.rule for f in unwaived}


def test_the_range_waiver_covers_zero_width_signals_only(tmp_path):
    verilog = tmp_path / "ranges.v"
    verilog.write_text("module ranges(input wire [3:0] a, output wire [0:3] y);\n"
                       "  wire [-1:0] empty;\n  assign y = a;\nendmodule\n")
    findings = lint_verilog(verilog, build_dir=tmp_path / "lint")
    assert [(f.rule, f.line) for f in findings] == [("ASCRANGE", 1)], format_findings(findings)


def test_every_waiver_says_why():
    assert len({w.rule for w in WAIVERS}) == len(WAIVERS)
    for waiver in WAIVERS:
        assert waiver.rule.isupper() and len(waiver.why) > 40, waiver


def test_unreadable_verilog_is_an_error(tmp_path):
    verilog = tmp_path / "broken.v"
    verilog.write_text("module broken(input wire a;\n")
    with pytest.raises(LintError, match="verilator --lint-only failed on .*broken.v"):
        lint_verilog(verilog, build_dir=tmp_path / "lint")


def test_format_findings():
    assert format_findings([]) == "clean"
    text = format_findings([Finding("LATCH", "a.v", 3, "Latch inferred for signal 'q'"),
                            Finding("LATCH", "a.v", 9, "x"), Finding("UNDRIVEN", "a.v", 1, "y")])
    assert text.splitlines()[0] == "a.v:3: LATCH: Latch inferred for signal 'q'"
    assert text.splitlines()[-1] == "3 findings: LATCH x 2, UNDRIVEN x 1"


# --- the command ---------------------------------------------------------------------------

def test_cli_lint(capsys, build_root):
    assert main(["lint", "zvc-compress", "-p", "lanes=4", "-p", "width=8",
                 "--build-dir", str(build_root)]) == 0
    assert capsys.readouterr().out.strip() == "dnnhw_zvc_compress_lanes4_width8: clean"
    assert main(["lint", "--waivers"]) == 0
    out = capsys.readouterr().out
    assert all(f"{w.rule}: {w.why}" in out for w in WAIVERS)


@pytest.mark.parametrize("argv, message", [
    (["lint"], "dnnhw lint needs a core (see `dnnhw list`), or --waivers"),
    (["lint", "zvc-compress", "-p", "lanes=3"], "lanes"),
    (["lint", "no-such-core"], "unknown core 'no-such-core'"),
])
def test_cli_lint_rejects_bad_input(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
