"""The catalog: one row per core, and everything else is generic over it.

A :class:`Core` names its component class, its parameters (defaults and legal values),
its golden model, its cocotb testbench and the configurations the flow builds. The CLI,
the generator, the simulator runner, the synthesis flow and the report read this table
only; adding a core is adding a row to :data:`CORES`.
"""

from dataclasses import dataclass, field
import importlib

from dnnhw.spec import diffy_tile as _diffy_spec, zvc as _zvc_spec


__all__ = ["Param", "FlowConfig", "Core", "CORES", "get_core", "ParameterError"]


class ParameterError(ValueError):
    """A core name, parameter name or parameter value outside what the catalog allows."""


@dataclass(frozen=True)
class Param:
    """A core parameter.

    Members
    -------
    name : str
        Keyword argument of the component's constructor.
    default : int or str
    choices : tuple
        Every legal value; for integers, a ``range`` is accepted.
    doc : str
    """
    name: str
    default: int | str
    choices: tuple | range
    doc: str = ""

    def legal(self):
        if isinstance(self.choices, range) and len(self.choices) > 8:
            return f"{self.choices.start}..{self.choices.stop - 1}"
        return ", ".join(str(c) for c in self.choices)

    def parse(self, text):
        """Convert a command-line string (or a value) to a legal value, or raise."""
        value = text
        if isinstance(self.default, int) and isinstance(text, str):
            try:
                value = int(text, 0)
            except ValueError:
                raise ParameterError(
                    f"parameter '{self.name}' must be an integer in {self.legal()}, "
                    f"got {text!r}") from None
        if value not in self.choices:
            raise ParameterError(
                f"parameter '{self.name}' must be one of {self.legal()}, got {value!r}")
        return value


@dataclass(frozen=True)
class FlowConfig:
    """A parameter set the flow builds: simulated with the testbench (``sim``) and
    synthesized for each of ``targets`` (with nextpnr's ``router``, ``None`` for the
    target's default)."""
    params: dict
    targets: tuple = ()
    sim: bool = True
    router: str = None


@dataclass(frozen=True)
class Core:
    """One row of the catalog.

    Members
    -------
    name : str
        Catalog name, e.g. ``zvc-compress``.
    component : str
        ``module:Class`` of the Amaranth component (imported lazily, so listing the catalog
        does not elaborate anything).
    params : tuple of Param
    summary : str
    golden : str
        ``module:function`` of the golden model the testbench checks against.
    testbench : str
        Dotted name of the cocotb test module.
    flow : tuple of FlowConfig
        What ``dnnhw flow`` builds.
    """
    name: str
    component: str
    params: tuple
    summary: str
    golden: str
    testbench: str
    flow: tuple = field(default_factory=tuple)

    def resolve(self, overrides=None):
        """Defaults updated with ``overrides`` (strings or values), validated."""
        overrides = dict(overrides or {})
        known = {p.name: p for p in self.params}
        for name in overrides:
            if name not in known:
                raise ParameterError(
                    f"core '{self.name}' has no parameter '{name}'; "
                    f"its parameters are: {', '.join(known)}")
        return {p.name: p.parse(overrides[p.name]) if p.name in overrides else p.default
                for p in self.params}

    def component_class(self):
        module, _, cls = self.component.partition(":")
        return getattr(importlib.import_module(module), cls)

    def build(self, params=None):
        """An instance of the component at ``params`` (validated against the catalog)."""
        return self.component_class()(**self.resolve(params))

    def module_name(self, params=None):
        """A Verilog module name unique to the core and its parameters."""
        params = self.resolve(params)
        suffix = "_".join(f"{k}{v}" for k, v in params.items())
        return f"dnnhw_{self.name.replace('-', '_')}_{suffix}"


_LANES = Param("lanes", 8, _zvc_spec.LANES, "elements per window (one input beat)")
_WIDTH = Param("width", 16, _zvc_spec.WIDTHS, "bits per element")

# Paper's window is 32 x 32-bit (128 B); the LUT sweep over lanes shows the N log N growth.
_ZVC_FLOW = (
    FlowConfig({"lanes": 4, "width": 16}, ("ecp5-85f",)),
    FlowConfig({"lanes": 8, "width": 16}, ("ice40-up5k", "ice40-hx8k", "ecp5-85f")),
    FlowConfig({"lanes": 16, "width": 16}, ("ecp5-85f",)),
    FlowConfig({"lanes": 32, "width": 16}, ("ecp5-85f",)),
    FlowConfig({"lanes": 32, "width": 32}, ("ecp5-85f",)),
    FlowConfig({"lanes": 8, "width": 8}, ()),
)

# Diffy tile: the defaults are a small tile that simulates quickly; the flow builds a
# small tile for the iCE40 and the largest one that fits the ECP5-85F, in every mode.
_DIFFY_MODES = _diffy_spec.MODES
_DIFFY_PARAMS = (
    Param("lanes", 4, _diffy_spec.LANES, "activation lanes (input channels per brick)"),
    Param("filters", 4, _diffy_spec.FILTERS, "filters (PE rows)"),
    Param("windows", 4, _diffy_spec.WINDOWS, "windows (PE columns)"),
    Param("width", 16, _diffy_spec.WIDTHS, "bits of activations and weights"),
    Param("shifter_bits", 2, _diffy_spec.SHIFTER_BITS,
          "B: per-lane shift reach 2**B - 1 above the base"),
    Param("mode", "diffy", _DIFFY_MODES, "diffy, pragmatic, stripes or the bit-parallel baseline"),
    Param("encoding", "best", _diffy_spec.ENCODINGS, "term encoding (term-serial modes)"),
    Param("max_products", 4608, _diffy_spec.MAX_PRODUCTS,
          "most products summed per output (C*R*S); sizes the accumulators"),
)


def _diffy_flow():
    """Every mode on the UP5K (a small tile: 8-bit, 4 lanes, 2 filters x 2 windows; the
    bit-parallel baseline with 1 window, DaDianNao's shape, so its 8 multipliers fit the
    8 DSPs) and on the ECP5-85F (16-bit, the paper's 16 lanes, 2 filters x 4 windows;
    bit-parallel 2 x 2, 64 multipliers), routed with router2 (router1 stalls on them).
    16 x 4 x 4 packs into the ECP5-85F (Diffy: 57 k of its 84 k LUTs) but does not route in
    an hour (router2's overuse stalls near 700 wires), so the flow builds the largest tile
    that completes: half of it."""
    small = {"lanes": 4, "filters": 2, "width": 8, "max_products": 576}
    configs = []
    for mode in _DIFFY_MODES:
        configs.append(FlowConfig({**small, "windows": 1 if mode == "bitparallel" else 2,
                                   "mode": mode}, ("ice40-up5k",)))
    for mode in _DIFFY_MODES:
        configs.append(FlowConfig({"lanes": 16, "filters": 2,
                                   "windows": 2 if mode == "bitparallel" else 4, "mode": mode},
                                  ("ecp5-85f",), sim=False, router="router2"))
    return tuple(configs)


CORES = (
    Core(
        name="zvc-compress",
        component="dnnhw.rtl.zvc:ZVCCompressor",
        params=(_LANES, _WIDTH),
        summary="cDMA zero-value compressor: mask + packed non-zeros, one window per cycle",
        golden="dnnhw.golden.zvc:compress_frame",
        testbench="dnnhw.sim.zvc_compress",
        flow=_ZVC_FLOW,
    ),
    Core(
        name="zvc-decompress",
        component="dnnhw.rtl.zvc:ZVCDecompressor",
        params=(_LANES, _WIDTH),
        summary="cDMA zero-value decompressor: the exact inverse of zvc-compress",
        golden="dnnhw.golden.zvc:decompress_frame",
        testbench="dnnhw.sim.zvc_decompress",
        flow=_ZVC_FLOW,
    ),
    Core(
        name="zvc-loopback",
        component="dnnhw.rtl.zvc:ZVCLoopback",
        params=(_LANES, _WIDTH),
        summary="zvc-compress feeding zvc-decompress: the round trip in RTL (simulation only)",
        golden="dnnhw.golden.zvc:compress_frame",
        testbench="dnnhw.sim.zvc_loopback",
        flow=(FlowConfig({"lanes": 8, "width": 16}), FlowConfig({"lanes": 32, "width": 32})),
    ),
    Core(
        name="diffy-tile",
        component="dnnhw.rtl.diffy_tile:DiffyTile",
        params=_DIFFY_PARAMS,
        summary="Diffy bit-serial differential MAC tile; pragmatic, stripes and bit-parallel "
                "modes of the same generator",
        golden="dnnhw.golden.diffy_tile:tile_schedule",
        testbench="dnnhw.sim.diffy_tile",
        flow=_diffy_flow(),
    ),
)


def get_core(name):
    """The catalog row called ``name``, or :class:`ParameterError` listing the cores."""
    for core in CORES:
        if core.name == name:
            return core
    raise ParameterError(
        f"unknown core '{name}'; known cores: {', '.join(c.name for c in CORES)}")
