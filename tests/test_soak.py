"""The soak (slow tier): each core's catalog ``soak`` moves at least SOAK_BEATS beats
under random stalls on every stream, on Verilator, with every output beat checked in
order against the golden model by the bench's scoreboard, every input beat taken, and no
beat after the last (the bench base's drain check): nothing lost, duplicated or
reordered. The run time is printed (``pytest -m slow -s -k soak``) and is in the note of
issue 15; ``dnnhw sim CORE --soak`` runs the same."""

from pathlib import Path

import pytest

from dnnhw.catalog import CORES, SOAK_BEATS, Soak
from dnnhw.cli import main
from dnnhw.flow.tasks import run_testbench


@pytest.mark.slow
@pytest.mark.parametrize("core", [c for c in CORES if c.soak is not None], ids=lambda c: c.name)
def test_soak_moves_a_million_checked_beats(core, build_root):
    soak = core.soak
    results = run_testbench(core, soak.params, config=soak.config, testcase=soak.testcase,
                            build_root=build_root)
    assert results["passed"] and set(results["tests"]) == {soak.testcase}
    beats = results["stream_beats"]
    assert sum(beats.values()) >= SOAK_BEATS, beats
    print(f"\n{core.name} soak: {sum(beats.values()):,} beats {beats} in "
          f"{results['test_seconds']:.0f} s")


def test_soaks_are_legal_runs():
    for core in CORES:
        if core.soak is not None:
            assert isinstance(core.soak, Soak) and isinstance(core.soak.testcase, str)
            core.resolve(core.soak.params)


def test_every_core_has_a_soak():
    assert [c.name for c in CORES if c.soak is None] == []


def test_cli_soak_rejects_bad_input(capsys, monkeypatch):
    # The test catalog's register slice has no soak.
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    assert main(["--catalog", "passthrough_core:CATALOG", "sim", "slice", "--soak"]) == 2
    assert ("core 'slice' has no soak yet; --soak takes no core of this catalog"
            in capsys.readouterr().err)
    soaked = CORES[0]
    assert main(["sim", soaked.name, "--soak", "-p", f"{soaked.params[0].name}={soaked.params[0].default}"]) == 2
    assert ("--soak runs the catalog's soak parameters and knobs; give it no --param or "
            "--config") in capsys.readouterr().err
    assert main(["sim", soaked.name, "--soak", "--config", "{}"]) == 2
    assert ("--soak runs the catalog's soak parameters and knobs; give it no --param or "
            "--config") in capsys.readouterr().err
