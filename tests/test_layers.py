"""The dependency rules between dnnhw's layers, and the rule that no generic code names
a core: each holds for every file, so a new file cannot break it unseen."""

import sys
from pathlib import Path

import pytest

from dnnhw.catalog import CORES
from dnnhw.flow.sources import imports

ROOT = Path(__file__).resolve().parent.parent / "dnnhw"
STDLIB = set(sys.stdlib_module_names) | {"__future__"}


def _imports(path):
    """``(absolute module name, line)`` of every import in ``path``."""
    parts = ("dnnhw",) + path.relative_to(ROOT).with_suffix("").parts
    is_package = parts[-1] == "__init__"
    return imports(path, ".".join(parts[:-1] if is_package else parts), is_package)


def _allowed(name, rules):
    top = name.split(".")[0]
    if top in STDLIB:
        return True
    return any(name == rule or name.startswith(rule + ".") for rule in rules)


# What each layer may import besides the standard library (and itself).
RULES = {
    "rtl": ("amaranth", "dnnhw.rtl", "dnnhw.spec"),
    "golden": ("numpy", "dnnhw.golden", "dnnhw.spec"),
    "spec": ("dnnhw.spec",),
}
# What a layer must never import.
FORBIDDEN = {
    "sim": ("dnnhw.flow", "dnnhw.report", "dnnhw.cli", "dnnhw.catalog", "dnnhw.generate",
            "dnnhw.bench", "dnnhw.synth"),
    "synth": ("dnnhw.flow", "dnnhw.report", "dnnhw.cli", "dnnhw.catalog", "dnnhw.bench",
              "dnnhw.sim"),
    "report": ("dnnhw.flow", "dnnhw.cli", "dnnhw.sim", "dnnhw.synth", "dnnhw.rtl"),
    "formal": ("dnnhw.flow", "dnnhw.report", "dnnhw.cli", "dnnhw.catalog", "dnnhw.bench",
               "dnnhw.sim"),
}


@pytest.mark.parametrize("layer", sorted(set(RULES) | set(FORBIDDEN)))
def test_layer_imports(layer):
    files = sorted((ROOT / layer).glob("**/*.py"))
    if layer != "spec":
        assert files, f"dnnhw/{layer} has no files"
    for path in files:
        for name, line in _imports(path):
            where = f"{path.relative_to(ROOT.parent)}:{line} imports {name}"
            if layer in RULES:
                assert _allowed(name, RULES[layer]), \
                    f"{where}; dnnhw.{layer} may import only {', '.join(RULES[layer])} and the stdlib"
            for banned in FORBIDDEN.get(layer, ()):
                assert not (name == banned or name.startswith(banned + ".")), \
                    f"{where}; dnnhw.{layer} must not import {banned}"


def test_the_rule_sees_function_level_and_relative_imports(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text("def f():\n    from ..catalog import get_core\n    from .. import report\n"
                    "import dnnhw.cli\n")
    names = {name for name, _ in imports(path, "dnnhw.sim.probe")}
    assert {"dnnhw.catalog", "dnnhw.report", "dnnhw.cli"} <= names


GENERIC = ["cli.py", "generate.py", "text.py", "flow/*.py", "report/__init__.py",
           "report/plots.py", "sim/runner.py", "sim/tb.py", "sim/streams.py", "synth/*.py",
           "formal/__init__.py", "formal/harness.py", "formal/properties.py", "formal/run.py",
           "bench/__init__.py"]


def test_no_generic_code_names_a_core():
    """Adding a core is adding a row plus its own files: the CLI, the flow, the report's
    generic part and the shared sim/synth code name no core (only the catalog's rows and
    each core's own files do)."""
    names = [c.name for c in CORES] + ["zvc", "diffy"]
    for pattern in GENERIC:
        for path in sorted(ROOT.glob(pattern)):
            text = path.read_text()
            for name in names:
                assert name not in text.lower(), \
                    f"{path.relative_to(ROOT.parent)} names '{name}'"
