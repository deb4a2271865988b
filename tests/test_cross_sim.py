"""Icarus and Verilator agree: each core's cross-simulation runs (the catalog's
``cross_sims``) pass on both simulators with one seed, and record the same measurements:
every cycle count, latency, stall figure, verdict and value the testbench writes, and
each test's simulated time. Only run times and paths may differ.

Two simulators that schedule events differently catch a testbench that depends on
delta-cycle order, and Verilog whose meaning depends on the simulator (an X, a race
between processes, a width rule one of them gets wrong)."""

import pytest

from dnnhw.catalog import CORES, CrossSim
from dnnhw.flow.tasks import run_testbench
from dnnhw.sim.runner import SIMULATORS, icarus_available


SEED = 20261203

# What a run records about itself rather than about the design.
_RUN_SPECIFIC = {"build_dir", "build_seconds", "test_seconds", "real_time_s", "waves", "log",
                 "sim", "simulator"}


def _measured(value):
    if isinstance(value, dict):
        return {k: _measured(v) for k, v in value.items() if k not in _RUN_SPECIFIC}
    if isinstance(value, (list, tuple)):
        return [_measured(v) for v in value]
    return value


def _differences(a, b, path="results"):
    """Where ``a`` and ``b`` differ, as ``path: a != b`` lines."""
    if isinstance(a, dict) and isinstance(b, dict):
        lines = []
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                lines.append(f"{path}[{key!r}] only in {'icarus' if key in b else 'verilator'}")
            else:
                lines += _differences(a[key], b[key], f"{path}[{key!r}]")
        return lines
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [line for i, (x, y) in enumerate(zip(a, b))
                for line in _differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {str(a)[:200]} != {str(b)[:200]}"]


def _cases():
    cases = []
    for core in CORES:
        for run in core.cross_sims:
            label = ",".join(f"{k}={v}" for k, v in run.params.items()) or "defaults"
            cases.append(pytest.param(core, run, id=f"{core.name}[{label}]",
                                      marks=[pytest.mark.slow] if run.slow else []))
    return cases


@pytest.mark.skipif(not icarus_available(), reason="Icarus Verilog (iverilog) not installed")
@pytest.mark.parametrize("core, run", _cases())
def test_icarus_and_verilator_agree(core, run, build_root):
    results = {sim: run_testbench(core, run.params, sim=sim, seed=SEED, config=run.config,
                                  testcase=run.testcase, build_root=build_root)
               for sim in SIMULATORS}
    for sim, result in results.items():
        assert result["passed"] and result["sim"] == sim, (sim, result["tests"])
    differences = _differences(_measured(results["verilator"]), _measured(results["icarus"]))
    assert not differences, "\n".join(differences)


def test_every_core_is_cross_simulated_at_legal_parameters():
    for core in CORES:
        assert core.cross_sims, f"{core.name} has no cross_sims"
        for run in core.cross_sims:
            assert isinstance(run, CrossSim)
            core.resolve(run.params)


def test_differences_name_the_path():
    a = {"latency": 5, "tests": {"t": {"status": "pass"}}, "runs": [1, 2]}
    b = {"latency": 6, "tests": {"t": {"status": "pass"}}, "runs": [1, 3], "extra": 0}
    assert _differences(a, b) == ["results['extra'] only in icarus",
                                  "results['latency']: 5 != 6", "results['runs'][1]: 2 != 3"]
    assert _measured({"log": "x", "tests": {"t": {"real_time_s": 1.0, "sim_time_ns": 9}}}) \
        == {"tests": {"t": {"sim_time_ns": 9}}}
