"""The spec modules: stdlib only, and the one place the rtl, golden and catalog read
each core's modes, ranges and encodings from."""

import ast
import sys
from pathlib import Path

import pytest

import dnnhw.spec
from dnnhw.catalog import get_core
from dnnhw.spec import diffy_tile as diffy_spec, zvc as zvc_spec


@pytest.mark.parametrize("path", sorted(Path(dnnhw.spec.__file__).parent.glob("*.py")),
                         ids=lambda p: p.name)
def test_spec_modules_import_only_the_stdlib_and_each_other(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            names = [node.module]
        else:
            continue
        for name in names:
            assert name.split(".")[0] in sys.stdlib_module_names \
                or name.startswith("dnnhw.spec."), f"{path.name} imports {name}"


def _choices(core, name):
    return next(p.choices for p in get_core(core).params if p.name == name)


def test_the_diffy_tile_reads_its_spec():
    # The same objects, not equal copies: a literal written again anywhere fails here.
    from dnnhw.golden import diffy_published, diffy_tile as golden_tile
    from dnnhw.rtl import diffy_tile as rtl_tile, terms
    assert rtl_tile.MODES is golden_tile.MODES is _choices("diffy-tile", "mode") \
        is diffy_spec.MODES
    assert terms.ENCODINGS is diffy_published.ENCODINGS is _choices("diffy-tile", "encoding") \
        is diffy_spec.ENCODINGS
    for name, legal in (("lanes", diffy_spec.LANES), ("filters", diffy_spec.FILTERS),
                        ("windows", diffy_spec.WINDOWS), ("width", diffy_spec.WIDTHS),
                        ("shifter_bits", diffy_spec.SHIFTER_BITS),
                        ("max_products", diffy_spec.MAX_PRODUCTS)):
        assert _choices("diffy-tile", name) is legal
    assert diffy_published.WIDTH_RANGE == (diffy_spec.WIDTHS[0], diffy_spec.WIDTHS[-1])
    assert diffy_published.SHIFTER_BITS_RANGE == (diffy_spec.SHIFTER_BITS[0],
                                                  diffy_spec.SHIFTER_BITS[-1])


def test_the_zvc_cores_read_their_spec():
    from dnnhw.golden import zvc as golden_zvc
    from dnnhw.rtl import zvc as rtl_zvc
    assert rtl_zvc.LANES is golden_zvc.LANES is zvc_spec.LANES
    assert rtl_zvc.WIDTHS is golden_zvc.WIDTHS is zvc_spec.WIDTHS
    for core in ("zvc-compress", "zvc-decompress", "zvc-loopback"):
        assert _choices(core, "lanes") is zvc_spec.LANES
        assert _choices(core, "width") is zvc_spec.WIDTHS


@pytest.mark.parametrize("name,legal", [
    ("lanes", diffy_spec.LANES), ("filters", diffy_spec.FILTERS),
    ("windows", diffy_spec.WINDOWS), ("width", diffy_spec.WIDTHS),
    ("shifter_bits", diffy_spec.SHIFTER_BITS), ("max_products", diffy_spec.MAX_PRODUCTS)])
def test_the_tile_accepts_exactly_the_spec_range(name, legal):
    from dnnhw.rtl.diffy_tile import DiffyTile
    small = {"lanes": 1, "filters": 1, "windows": 1}
    for value in (legal[0], legal[-1]):
        DiffyTile(**{**small, name: value})
    for value in (legal[0] - 1, legal[-1] + 1):
        with pytest.raises(ValueError, match=f"{name} must be in {legal[0]}..{legal[-1]}, "
                                             f"got {value}"):
            DiffyTile(**{**small, name: value})
