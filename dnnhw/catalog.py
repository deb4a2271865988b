"""The catalog: one row per core, and everything else is generic over it.

A :class:`Core` carries a core's whole story: its component class, its parameters
(defaults and legal values), its golden model, its cocotb testbench, the configurations
the main job builds (tagged by tier), the analyses the main job runs beside them, the
module that renders its report sections, its benchmark and its docs page. The CLI, the
generator, the main job (:mod:`dnnhw.flow`) and the report (:mod:`dnnhw.report`) read
this table only; adding a core is adding a row to :data:`CORES` plus one file per layer.
"""

from dataclasses import dataclass, field
import hashlib
import importlib

from dnnhw.spec import dgc as _dgc_spec, diffy_tile as _diffy_spec, zvc as _zvc_spec
from dnnhw.spec import bandlimit as _bandlimit_spec
from dnnhw.spec import fft as _fft_spec


__all__ = ["Param", "FlowConfig", "Analysis", "NetlistCheck", "CrossSim", "Soak", "SOAK_BEATS",
           "Core", "CORES", "TIERS", "get_core", "ParameterError"]

#: The main job's tiers: ``quick`` (the default run: one small configuration per core)
#: and ``full`` (the paper-scale matrix, ``dnnhw flow --full``), which includes ``quick``.
TIERS = ("quick", "full")


#: The longest Verilog module name :meth:`Core.module_name` spells out.
MODULE_NAME_LIMIT = 120


class ParameterError(ValueError):
    """A core name, parameter name or parameter value outside what the catalog allows."""


@dataclass(frozen=True)
class Param:
    """A core parameter.

    Members
    -------
    name : str
        Keyword argument of the component's constructor.
    default : int, bool, str or None
    choices : tuple
        Every legal value; for integers, a ``range`` is accepted. A parameter whose
        default is None takes ``none`` or an integer on the command line.
    doc : str
    """
    name: str
    default: int | bool | str | None
    choices: tuple | range
    doc: str = ""

    def legal(self):
        if isinstance(self.choices, range) and len(self.choices) > 8:
            return f"{self.choices.start}..{self.choices.stop - 1}"
        return ", ".join(str(c) for c in self.choices)

    def parse(self, text):
        """Convert a command-line string (or a value) to a legal value, or raise."""
        value = text
        if isinstance(self.default, bool):
            spelled = {"true": True, "1": True, "false": False, "0": False}
            if isinstance(text, str) and text.lower() in spelled:
                value = spelled[text.lower()]
            elif not isinstance(text, bool):
                raise ParameterError(
                    f"parameter '{self.name}' must be true or false, got {text!r}")
        elif self.default is None and isinstance(text, str) and text.lower() == "none":
            value = None
        elif (self.default is None or isinstance(self.default, int)) and isinstance(text, str):
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
    """A parameter set the main job builds: simulated with the testbench (``sim``) and
    synthesized for each of ``targets`` (with nextpnr's ``router`` and ``placer``,
    ``None`` for the target's default). ``tier`` is the smallest tier that builds it:
    ``"quick"`` configs run in every ``dnnhw flow``, ``"full"`` ones only with
    ``--full``. ``testcase`` runs only that cocotb test of the testbench (``None``: all of
    them), so that a long test can wait for the full tier. ``seeds``: the nextpnr placer
    seeds each target is built with in the full tier (the quick tier builds the first);
    with several, the report gives the median Fmax with its min and max (single ECP5 runs
    vary by about 10 MHz)."""
    params: dict
    targets: tuple = ()
    sim: bool = True
    router: str = None
    placer: str = None
    tier: str = "full"
    testcase: str = None
    seeds: tuple = (1,)

    def __post_init__(self):
        if self.tier not in TIERS:
            raise ValueError(f"FlowConfig tier must be one of {', '.join(TIERS)}, "
                             f"got {self.tier!r}")
        if (not isinstance(self.seeds, tuple) or not self.seeds
                or any(not isinstance(s, int) or not 0 <= s < 2 ** 31 for s in self.seeds)
                or len(set(self.seeds)) != len(self.seeds)):
            raise ValueError(f"FlowConfig seeds must be a tuple of distinct integers in "
                             f"0..{2 ** 31 - 1}, got {self.seeds!r}")

    def in_tier(self, tier):
        """Whether a run of ``tier`` builds this config (``full`` includes ``quick``)."""
        return TIERS.index(self.tier) <= TIERS.index(tier)


@dataclass(frozen=True)
class Analysis:
    """A computation the main job runs beside the simulations and builds (a golden-model
    workload, a compression-ratio table): a job like the others, cached on its sources.

    Members
    -------
    name : str
        Key of its record among the core's results.
    function : str
        ``module:function``, called with the list of the core's resolved parameter sets
        of this run (those of its flow configs in the tier, or none when
        ``uses_configs`` is false); returns a JSON-able value.
    tier : str
        As :attr:`FlowConfig.tier`.
    uses_configs : bool
        Whether the result depends on the run's configurations; one that does not is the
        same job (and the same store record) in every tier.
    """
    name: str
    function: str
    tier: str = "quick"
    uses_configs: bool = True


@dataclass(frozen=True)
class NetlistCheck:
    """A gate-level run the tests make: the core's testbench on what Yosys synthesized.

    Members
    -------
    params : dict
    netlists : tuple of str
        Names of :data:`dnnhw.synth.netlist.NETLISTS`: ``generic`` (Yosys ``synth``) and
        the targets (mapped to their cells, simulated with Yosys's cell models).
    testcase : str, tuple of str or None
        The cocotb tests to run (``None``: all); gate-level simulation is slower.
    slow : bool
        Only in the slow test tier.
    config : dict or None
        Testbench knobs (a shorter run).
    """
    params: dict
    netlists: tuple = ("generic", "ice40-up5k", "ecp5-85f")
    testcase: object = None
    slow: bool = False
    config: dict = None


@dataclass(frozen=True)
class CrossSim:
    """A testbench run the tests make on Verilator and on Icarus, with one seed: both must
    pass and measure the same (every cycle count, latency, verdict and value the
    testbench records; only run times and paths may differ).

    Members
    -------
    params : dict
    config : dict or None
        Testbench knobs (a shorter run: Icarus is the slower simulator).
    testcase : str, tuple of str or None
        The cocotb tests to run (``None``: all).
    slow : bool
        Only in the slow test tier.
    """
    params: dict
    config: dict = None
    testcase: object = None
    slow: bool = False


#: Beats a soak moves at least, over all the core's streams (issue 15's million).
SOAK_BEATS = 1_000_000


@dataclass(frozen=True)
class Soak:
    """The core's soak: its testbench at ``params`` with ``config`` knobs that move at
    least :data:`SOAK_BEATS` beats under random stalls on every stream, each checked
    against the golden model in order (``dnnhw sim CORE --soak``; the slow test tier).

    Members
    -------
    params : dict
    config : dict
    testcase : str
    """
    params: dict
    config: dict
    testcase: str


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
        ``module:function`` of the golden model the testbench checks against (shown by
        ``dnnhw list`` and in the report's summary).
    testbench : str
        Dotted name of the cocotb test module.
    flow : tuple of FlowConfig
        What ``dnnhw flow`` builds.
    analyses : tuple of Analysis
        What ``dnnhw flow`` computes beside the builds for this core's report.
    report : str
        Dotted name of the module that renders the core's report sections (see
        :mod:`dnnhw.report`); cores of one family may share it.
    benchmark : str or None
        Name of the core's benchmark in :data:`dnnhw.bench.BENCHMARKS` (``dnnhw bench NAME``).
    docs : str or None
        The core's docs page, relative to the repository.
    peak_rate : callable or None
        ``f(params) -> (per_cycle, unit)``: what the core moves per cycle at its full rate
        (e.g. ``(lanes * width, "bit")``), so sweeps can show throughput at each Fmax.
    fmax_goals : dict of str to float, or callable
        Target name to the Fmax (MHz) the project aims for, or ``f(params, target)``
        giving it; the report sets each build against it (see :meth:`fmax_goal`).
    board_job : str or None
        ``module:function`` that lays a user's tensors out as the core's beats, with the
        golden model's answer, for ``dnnhw board run`` (see :mod:`dnnhw.host.job`); None
        when the core cannot run over the board link yet.
    proofs : str
        ``module:function`` giving the core's formal properties, ``f(component) -> tuple
        of Property`` (see :mod:`dnnhw.formal`); the default is the stream rule on every
        output stream, by k-induction.
    proof_configs : tuple of dict
        The parameter sets the tests prove (small ones: a BMC's cost grows fast with the
        datapath); ``dnnhw prove`` takes any.
    netlist_checks : tuple of NetlistCheck
        The gate-level runs the tests make (``dnnhw sim --netlist`` takes any).
    cross_sims : tuple of CrossSim
        The runs the tests make on both simulators, which must agree.
    soak : Soak or None
        The million-beat run (``None``: none yet).
    """
    name: str
    component: str
    params: tuple
    summary: str
    golden: str
    testbench: str
    report: str
    flow: tuple = field(default_factory=tuple)
    analyses: tuple = field(default_factory=tuple)
    benchmark: str = None
    docs: str = None
    peak_rate: object = None
    fmax_goals: object = field(default_factory=dict)
    board_job: str = None
    proofs: str = "dnnhw.formal.properties:stream_properties"
    proof_configs: tuple = ({},)
    netlist_checks: tuple = ()
    cross_sims: tuple = ()
    soak: Soak = None

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

    def board_job_maker(self):
        """The :attr:`board_job` function, or :class:`ParameterError` naming the cores
        that have one."""
        if self.board_job is None:
            runnable = ", ".join(c.name for c in CORES if c.board_job)
            raise ParameterError(f"core '{self.name}' has no board job yet: `dnnhw board "
                                 f"run` takes {runnable}")
        module, _, function = self.board_job.partition(":")
        return getattr(importlib.import_module(module), function)

    def properties(self, params=None):
        """The core's formal properties at ``params`` (see :attr:`proofs`)."""
        module, _, function = self.proofs.partition(":")
        component = self.build(params)
        properties = getattr(importlib.import_module(module), function)(component)
        # Built only to read its sizes; each check elaborates a fresh one.
        component._MustUse__silence = True
        return properties

    def build(self, params=None):
        """An instance of the component at ``params`` (validated against the catalog)."""
        return self.component_class()(**self.resolve(params))

    def fmax_goal(self, params, target):
        """The Fmax (MHz) aimed for at ``params`` on ``target``, or ``None``."""
        goals = self.fmax_goals
        return goals(params, target) if callable(goals) else goals.get(target)

    def configs(self, tier="full"):
        """The flow configs a run of ``tier`` builds."""
        return tuple(c for c in self.flow if c.in_tier(tier))

    def module_name(self, params=None):
        """A Verilog module name unique to the core and its parameters: the parameters
        spelled out, or a digest of them when that name would pass
        :data:`MODULE_NAME_LIMIT` characters (Verilator loses the root handle of longer
        ones)."""
        params = self.resolve(params)
        suffix = "_".join(f"{k}{v}" for k, v in params.items())
        name = f"dnnhw_{self.name.replace('-', '_')}_{suffix}"
        if len(name) > MODULE_NAME_LIMIT:
            digest = hashlib.sha1(suffix.encode()).hexdigest()[:12]
            name = f"dnnhw_{self.name.replace('-', '_')}_{digest}"
        return name


_LANES = Param("lanes", 8, _zvc_spec.LANES, "elements per window (one input beat)")
_WIDTH = Param("width", 16, _zvc_spec.WIDTHS, "bits per element")

# The builds set against an Fmax goal take three placer seeds: one ECP5 run varies by
# about 10 MHz with the seed, so the report gives their median, min and max.
_GOAL_SEEDS = (1, 2, 3)

# Paper's window is 32 x 32-bit (128 B); the LUT sweep over lanes shows the N log N growth.
# The quick tier simulates and builds 8 x 16 on the UP5K; --full adds the rest.
_ZVC_FLOW = (
    FlowConfig({"lanes": 8, "width": 16}, ("ice40-up5k",), tier="quick", seeds=_GOAL_SEEDS),
    FlowConfig({"lanes": 4, "width": 16}, ("ecp5-85f",)),
    FlowConfig({"lanes": 8, "width": 16}, ("ice40-hx8k", "ecp5-85f"), sim=False),
    FlowConfig({"lanes": 16, "width": 16}, ("ecp5-85f",)),
    FlowConfig({"lanes": 32, "width": 16}, ("ecp5-85f",)),
    FlowConfig({"lanes": 32, "width": 32}, ("ecp5-85f",), seeds=_GOAL_SEEDS),
    FlowConfig({"lanes": 8, "width": 8}, ()),
)


# The cross-simulation's run: Icarus is the slower simulator.
_ZVC_CROSS_CONFIG = {"throughput_windows": 1000, "throughput_frame": 500,
                     "stall_windows": 1000, "max_frame": 500, "densities": [0.0, 0.5, 1.0]}


# 600,000 windows at half density: as many in, about 450,000 words out (or the reverse).
_ZVC_SOAK_CONFIG = {"stall_windows": 600_000, "densities": [0.5]}


def _zvc_netlist_checks(testcase):
    """Every netlist, in the slow tier: the default test run is at its 20-minute budget."""
    return (NetlistCheck({"lanes": 4, "width": 8}, testcase=testcase, slow=True),)


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
    8 DSPs) and on the ECP5-85F (16-bit, the paper's 16 lanes, 2 filters x 2 windows; the
    bit-parallel tile, 64 multipliers, built twice: with the multipliers in DSP blocks and
    in LUTs, the two baselines of the area table), routed with router2 (router1 stalls on
    them). The term-serial ECP5 tiles were 16 x 2 x 4 until their step stage got two
    pallet banks: with them router2's overuse on the Diffy tile fell to 273 wires and then
    climbed to 1,379 over 70 iterations (seed 1, 50 % of the logic), so the flow builds
    the largest that routes, the baseline's 16 x 2 x 2. 16 x 4 x 4 packed before the banks
    (57 k of 84 k LUTs) but did not route in an hour either. The term-serial UP5K tiles
    fill 82 % of its logic cells with the harness, where the simulated-annealing placer
    failed to legalize an adder's carry chain (seed 1); they place with HeAP. The UP5K
    builds take three placer seeds; the ECP5 ones one until they near their goal: each
    seed is a 13-15 minute router2 build, 100 minutes of the full tier for a figure 35-70 %
    short of its goal."""
    small = {"lanes": 4, "filters": 2, "width": 8, "max_products": 576}
    configs = []
    for mode in _DIFFY_MODES:
        configs.append(FlowConfig({**small, "windows": 1 if mode == "bitparallel" else 2,
                                   "mode": mode}, ("ice40-up5k",),
                                  tier="quick" if mode == "diffy" else "full",
                                  seeds=_GOAL_SEEDS,
                                  placer="heap" if mode in _diffy_spec.TERM_SERIAL_MODES
                                  else None))
    for mode in _DIFFY_MODES:
        bitparallel = mode == "bitparallel"
        configs.append(FlowConfig({"lanes": 16, "filters": 2, "windows": 2, "mode": mode},
                                  ("ecp5-85f", "ecp5-85f-nodsp") if bitparallel
                                  else ("ecp5-85f",), sim=False, router="router2"))
    return tuple(configs)


def _zvc_peak_rate(params):
    """One uncompressed window per cycle (II = 1, up to the compressed port's bound)."""
    return params["lanes"] * params["width"], "bit"


def _diffy_fmax_goal(params, target):
    """What timing closure aims for: 40 / 75 MHz for the term-serial modes on the UP5K /
    ECP5, 60 / 100 MHz for the bit-parallel baseline."""
    bitparallel = params.get("mode") == "bitparallel"
    return {"ice40-up5k": 60 if bitparallel else 40,
            "ecp5-85f": 100 if bitparallel else 75}.get(target)


# The proofs take a two-column Diffy tile (the column deltas and the step decision's AND
# over columns; the tests check the deep properties on it alone) and a one-PE tile per
# mode: a BMC's cost grows fast with the datapath (the deep `groups` check: 73 s at
# 1 x 1 x 1, 132 s at 2 x 1 x 2).
_DIFFY_PROOF_CONFIGS = ({"lanes": 2, "filters": 1, "windows": 2, "width": 8,
                         "max_products": 64, "mode": "diffy"},) \
    + tuple({"lanes": 1, "filters": 1, "windows": 1, "width": 8, "max_products": 64,
             "mode": mode} for mode in _DIFFY_MODES)
# The gate-level run takes the flow's small UP5K tile, generic (the mapped netlists add
# 90 s (ECP5) and 129 s (UP5K) to the slow tier; the ZVC cores' mapped ones are checked).
_DIFFY_NETLIST_PARAMS = {"lanes": 4, "filters": 2, "windows": 2, "width": 8,
                         "max_products": 576}


# One photograph-like layer of 16 channels, 8 filters, 3 x 3, seven 32 x 32 images: 516,096
# pallets on each input and 14,336 output groups at the netlist build's 4 x 2 x 2, the
# stalled run alone.
_DIFFY_SOAK_CONFIG = {"layers": [{"channels": 16, "filters": 8, "size": [32, 32], "kernel": 3,
                                  "stride": 1, "padding": 1, "images": 7, "data": "image"}],
                      "stall_free": False}


# Morph array: the defaults are a small build that simulates quickly (2 x 2 x 2 PEs, 8-bit
# operands, a 3-bank L2 of 1 Ki words).
_MORPH_PARAMS = (
    Param("kp", 2, range(1, 17), "PE block: filters"),
    Param("hp", 2, range(1, 17), "PE block: output rows"),
    Param("wp", 2, range(1, 17), "PE block: output columns"),
    Param("width", 8, (8, 16), "operand bits"),
    Param("max_channels", 64, range(1, (1 << 15) + 1),
          "most input channels (sizes the accumulators)"),
    Param("max_kernel", 3, range(1, 16), "largest kernel side"),
    Param("l2_banks", 3, range(1, 65), "L2 banks"),
    Param("l2_bank_words", 1024, tuple(1 << i for i in range(4, 21)), "words per L2 bank"),
    Param("l1_input_words", 512, range(1, (1 << 16) + 1), "words of each L1 input copy"),
    Param("l1_weight_words", 512, range(1, (1 << 16) + 1), "words of each L1 weight copy"),
    Param("l1_psum_entries", 64, range(1, (1 << 16) + 1),
          "entries of each PE's partial-sum bank"),
    Param("addr_width", 16, range(8, 31), "memory word address bits"),
    Param("value_width", 32, range(16, 33),
          "sequencer register bits (the loader checks a layer's values fit)"),
    Param("index_width", 8, range(2, 13), "tile index bits (tiles per dimension)"),
    Param("coord_width", None, (None, *range(8, 33)),
          "tap coordinate bits (None: value_width; the loader checks a layer's sides)"),
    Param("multiplier", "dsp", ("dsp", "serial"), "the sequencer's multiplier"),
    Param("l2_spram", False, (False, True), "L2 banks single-port, in the UP5K's SPRAM"),
)

# The quick tier simulates the default build on the layers of the testbench; the full tier
# adds the RTL study (scaled C3D under Morph's and the fixed mapping), the ECP5 build, the
# largest array measured to route on the ECP5-85F (4 x 4 x 4 did not route in 45 minutes
# of router1) and the array that fits the UP5K: 2 PEs, the L2 in its SPRAM (four banks
# of 8 Ki words in two memories of two SPRAMs), 16-bit registers. It packs into 96 % of
# the logic cells, where the SA placer cannot legalize its carry chains; HeAP places it
# (docs/morph-array.md, Sizes).
_UP5K_MORPH = {"kp": 2, "hp": 1, "wp": 1, "max_channels": 16, "l2_spram": True,
               "l2_banks": 4, "l2_bank_words": 8192, "multiplier": "serial",
               "value_width": 16, "index_width": 4, "coord_width": 10}
_MORPH_FLOW = (
    FlowConfig({}, tier="quick", testcase="layers"),
    FlowConfig({}, ("ecp5-85f",), testcase="study"),
    FlowConfig({"kp": 4, "hp": 4, "wp": 2}, ("ecp5-85f",), sim=False),
    FlowConfig(_UP5K_MORPH, ("ice40-up5k",), placer="heap", testcase="layers"),
)


_CAPACITIES = tuple(1 << b for b in _dgc_spec.CAPACITY_BITS)

_MORPH_ONE_LAYER = {"layers": [
    {"name": "3x3x3-ragged", "layer": {"C": 3, "F": 3, "H": 5, "W": 5, "K": 3},
     "mappings": ["energy"]}]}

# The random memory alone, under 1 x 1 x 1 layers that move more words than they compute,
# so that the port is busy: by turns 64 channels to 2 (reads: about 67,000 rdata beats)
# and 1 to 64 (writes: about 67,600 wdata beats), over 2 x 16 x 16; a layer's tensors must
# fit the port's 64 Ki words. About 76,000 beats a layer, requests included.
_MORPH_SOAK_CONFIG = {"layers": [
    {"name": f"1x1x1-{'reads' if k % 2 else 'writes'}-{k}",
     "layer": {"C": 64 if k % 2 else 1, "K": 2 if k % 2 else 64, "F": 2, "H": 16, "W": 16,
               "T": 1, "R": 1, "S": 1, "padding": [0, 0, 0]},
     "mappings": ["energy"]} for k in range(14)], "fixed": False}

_DGC_SPARSIFY_PARAMS = (
    Param("capacity", 8192, _CAPACITIES, "gradient elements the state memory holds"),
    Param("grad_width", 16, _dgc_spec.GRAD_WIDTHS, "bits of a gradient element"),
    Param("state_width", 24, _dgc_spec.STATE_WIDTHS, "bits of u, v and a sparse value"),
    Param("spram", False, (False, True), "the state in the UP5K's SPRAM"),
)
# The quick tier replays a training run's steps of conv2.w (4,608 elements); the full
# tier builds the UP5K (state in its four SPRAMs: 32 Ki elements of 16 bits) and the ECP5
# (32 Ki elements of 24 bits), and simulates the UP5K build too (its single-port state).
_UP5K_SPARSIFY = {"capacity": 32768, "state_width": 16, "spram": True}
_DGC_SPARSIFY_FLOW = (
    FlowConfig({}, tier="quick"),
    FlowConfig(_UP5K_SPARSIFY, ("ice40-up5k",)),
    FlowConfig({"capacity": 32768}, ("ecp5-85f",), sim=False),
)

# 110 steps of conv2.w, the stalled run alone: about 9,200 beats a step on either core (the
# sparsifier reads the 4,608 gradients twice, clipping first; the aggregator takes the
# 4,608 weights and gives them back updated).
_DGC_SOAK_CONFIG = {"steps": 110, "stall_free": False}

_DGC_AGGREGATE_PARAMS = (
    Param("workers", 4, _dgc_spec.WORKERS, "sparse streams merged"),
    Param("capacity", 8192, _CAPACITIES, "elements of the dense sum"),
    Param("value_width", 24, _dgc_spec.STATE_WIDTHS, "bits of a sparse value"),
    Param("weight_width", 16, _dgc_spec.WEIGHT_WIDTHS, "bits of a weight"),
)
# The sum is block RAM (a random-access read-add-write a cycle needs two ports, which
# SPRAM has not): 4 Ki elements of 18 bits fill 18 of the UP5K's 30 EBRs.
_DGC_AGGREGATE_FLOW = (
    FlowConfig({}, tier="quick"),
    FlowConfig({"capacity": 4096, "value_width": 16}, ("ice40-up5k",), sim=False),
    FlowConfig({"workers": 8, "capacity": 32768}, ("ecp5-85f",), sim=False),
)


_FFT_PARAMS = (
    Param("n", 64, _fft_spec.POINTS, "points of a frame"),
    Param("width", 16, _fft_spec.WIDTHS, "bits of a sample's real and imaginary parts"),
    Param("twiddle_width", 16, _fft_spec.TWIDDLE_WIDTHS,
          "bits of a twiddle's parts (twiddle_width - 2 fraction bits)"),
    Param("inverse", False, (False, True), "the inverse transform (conjugate twiddles)"),
)
# Every stage halves (shifts at the component's default), so the forward result is
# DFT / n. Stages 0 .. L - 3 have a complex multiplier (four products, on DSP blocks):
# n = 16 needs the UP5K's 8 SB_MAC16 exactly, n = 32 twelve (nextpnr: "ICESTORM_DSP 12 of
# 8"). The quick tier simulates n = 64 and builds nothing (it does not fit the UP5K's
# DSPs); the full tier builds n = 16 .. 1024 on the ECP5-85F and n = 16, the largest that
# fits, on the UP5K, and simulates every n (n = 1024 on Verilator: about a minute, most of
# it the build).
_FFT_16 = {"width": 16, "twiddle_width": 16}
_FFT_FLOW = (
    FlowConfig({"n": 64, **_FFT_16}, tier="quick"),
    FlowConfig({"n": 16, **_FFT_16}, ("ice40-up5k", "ecp5-85f")),
    FlowConfig({"n": 64, **_FFT_16}, ("ecp5-85f",), sim=False),
    FlowConfig({"n": 256, **_FFT_16}, ("ecp5-85f",)),
    FlowConfig({"n": 1024, **_FFT_16}, ("ecp5-85f",)),
)


def _fft_peak_rate(params):
    """One complex sample (two ``width``-bit parts) in and out per cycle."""
    return 2 * params["width"], "bit"


_BANDLIMIT_PARAMS = (
    Param("dims", 2, _bandlimit_spec.DIMS, "1: a tile is a row of n; 2: n x n, by row and "
          "column passes"),
    Param("n", 16, _fft_spec.POINTS, "FFT points per axis (2D: up to 64)"),
    Param("taps", 3, range(1, _fft_spec.POINTS[-1] + 1), "filter side (at most n)"),
    Param("in_channels", 2, _bandlimit_spec.CHANNELS, "channels of a tile in"),
    Param("out_channels", 2, _bandlimit_spec.CHANNELS, "channels of a tile out"),
    Param("compression_rate", 50, range(0, 100),
          "c, percent: the share of the spectrum dropped (fixed at generation)"),
    Param("width", 16, _fft_spec.WIDTHS, "bits of a sample"),
    Param("twiddle_width", 16, _fft_spec.TWIDDLE_WIDTHS, "bits of a twiddle's parts"),
    Param("coefficient_width", 16, _bandlimit_spec.COEFFICIENT_WIDTHS,
          "bits of a filter coefficient's parts"),
    Param("spectrum_shift", 14, range(0, _fft_spec.WIDTHS[-1]
                                      + _bandlimit_spec.COEFFICIENT_WIDTHS[-1] + 1),
          "right shift of the channel sums (the host quantizes the filters by as much)"),
)
# The quick tier simulates the 2D default; the full tier also a 1D engine and 2D at
# c = 0, 90 % and 32 x 32, and builds them on the ECP5 at several c for the memory and
# throughput figures.
# None fits the UP5K: two transforms and the MAC need 12 or more multipliers at n = 8
# (each transform of n >= 8 has a rotating stage), and it has 8 DSPs.
_BANDLIMIT_1D = {"dims": 1, "n": 64, "taps": 5, "in_channels": 2, "out_channels": 2}
_BANDLIMIT_FLOW = (
    FlowConfig({}, tier="quick"),
    FlowConfig({"compression_rate": 0}, ("ecp5-85f",)),
    FlowConfig({}, ("ecp5-85f",), sim=False),
    FlowConfig({"compression_rate": 90}, ("ecp5-85f",)),
    FlowConfig({"n": 32, "compression_rate": 75}, ("ecp5-85f",)),
    FlowConfig({**_BANDLIMIT_1D, "compression_rate": 50}, ("ecp5-85f",)),
    FlowConfig({**_BANDLIMIT_1D, "n": 1024, "taps": 9, "compression_rate": 75},
               ("ecp5-85f",), sim=False),
)


def _bandlimit_peak_rate(params):
    """One ``width``-bit input sample a cycle (when the multiplier keeps up)."""
    return params["width"], "bit"


CORES = (
    Core(
        name="zvc-compress",
        component="dnnhw.rtl.zvc:ZVCCompressor",
        params=(_LANES, _WIDTH),
        summary="cDMA zero-value compressor: mask + packed non-zeros, one window per cycle",
        golden="dnnhw.golden.zvc:compress_frame",
        testbench="dnnhw.sim.zvc",
        report="dnnhw.report.zvc",
        flow=_ZVC_FLOW,
        analyses=(Analysis("ratios", "dnnhw.bench.ratios:alexnet_rows", uses_configs=False),),
        benchmark="ratios",
        docs="README.md#the-zv-format",
        peak_rate=_zvc_peak_rate,
        fmax_goals={"ice40-up5k": 75, "ecp5-85f": 150},
        board_job="dnnhw.sim.zvc_data:compress_job",
        proofs="dnnhw.formal.zvc:compressor_properties",
        proof_configs=({"lanes": 4, "width": 8},),
        netlist_checks=_zvc_netlist_checks("random_stalls"),
        cross_sims=(CrossSim({"lanes": 4, "width": 8}, config=_ZVC_CROSS_CONFIG),),
        soak=Soak({"lanes": 4, "width": 8}, _ZVC_SOAK_CONFIG, "random_stalls"),
    ),
    Core(
        name="zvc-decompress",
        component="dnnhw.rtl.zvc:ZVCDecompressor",
        params=(_LANES, _WIDTH),
        summary="cDMA zero-value decompressor: the exact inverse of zvc-compress",
        golden="dnnhw.golden.zvc:decompress_frame",
        testbench="dnnhw.sim.zvc",
        report="dnnhw.report.zvc",
        flow=_ZVC_FLOW,
        benchmark="ratios",
        docs="README.md#the-zv-format",
        peak_rate=_zvc_peak_rate,
        fmax_goals={"ice40-up5k": 60, "ecp5-85f": 120},
        board_job="dnnhw.sim.zvc_data:decompress_job",
        proofs="dnnhw.formal.zvc:decompressor_properties",
        proof_configs=({"lanes": 4, "width": 8},),
        netlist_checks=_zvc_netlist_checks(("random_stalls", "malformed")),
        cross_sims=(CrossSim({"lanes": 4, "width": 8}, config=_ZVC_CROSS_CONFIG),),
        soak=Soak({"lanes": 4, "width": 8}, _ZVC_SOAK_CONFIG, "random_stalls"),
    ),
    Core(
        name="zvc-loopback",
        component="dnnhw.rtl.zvc:ZVCLoopback",
        params=(_LANES, _WIDTH),
        summary="zvc-compress feeding zvc-decompress: the round trip in RTL (simulation only)",
        golden="dnnhw.golden.zvc:compress_frame",
        testbench="dnnhw.sim.zvc",
        report="dnnhw.report.zvc",
        flow=(FlowConfig({"lanes": 8, "width": 16}, tier="quick"),
              FlowConfig({"lanes": 32, "width": 32})),
        docs="README.md#the-zv-format",
        board_job="dnnhw.sim.zvc_data:loopback_job",
        proofs="dnnhw.formal.zvc:loopback_properties",
        proof_configs=({"lanes": 4, "width": 8},),
        # The compressor's and decompressor's mapped netlists are checked on their own.
        netlist_checks=(NetlistCheck({"lanes": 4, "width": 8}, ("generic",),
                                     testcase="round_trip", slow=True),),
        cross_sims=(CrossSim({"lanes": 4, "width": 8}, config=_ZVC_CROSS_CONFIG),),
        soak=Soak({"lanes": 4, "width": 8}, {"round_trip_windows": 520_000},
                  "round_trip"),
    ),
    Core(
        name="diffy-tile",
        component="dnnhw.rtl.diffy_tile:DiffyTile",
        params=_DIFFY_PARAMS,
        summary="Diffy bit-serial differential MAC tile; pragmatic, stripes and bit-parallel "
                "modes of the same generator",
        golden="dnnhw.golden.diffy_tile:tile_schedule",
        testbench="dnnhw.sim.diffy_tile",
        report="dnnhw.report.diffy",
        flow=_diffy_flow(),
        analyses=(Analysis("workload", "dnnhw.bench.diffy:area_workload_cycles", tier="full"),),
        benchmark="diffy",
        docs="docs/diffy-tile.md",
        fmax_goals=_diffy_fmax_goal,
        board_job="dnnhw.sim.diffy_data:board_job",
        proofs="dnnhw.formal.diffy_tile:tile_properties",
        proof_configs=_DIFFY_PROOF_CONFIGS,
        netlist_checks=(NetlistCheck(_DIFFY_NETLIST_PARAMS, ("generic",), slow=True),),
        cross_sims=(CrossSim(_DIFFY_NETLIST_PARAMS),),
        soak=Soak(_DIFFY_NETLIST_PARAMS, _DIFFY_SOAK_CONFIG, "layers"),
    ),
    Core(
        name="morph-array",
        component="dnnhw.rtl.morph_array:MorphArray",
        params=_MORPH_PARAMS,
        summary="Morph tiled 3D-convolution PE array: a run-time mapping per layer "
                "(loop orders, tiles, block, L2 split), banked L2, replicated L1, counters",
        golden="dnnhw.golden.morph:counts",
        testbench="dnnhw.sim.morph_array",
        report="dnnhw.report.morph",
        flow=_MORPH_FLOW,
        benchmark="morph",
        docs="docs/morph-array.md",
        fmax_goals={"ice40-up5k": 30, "ecp5-85f": 75},
        # Its stream rules need an invariant of the sequencer that k-induction does not find.
        proofs="dnnhw.formal.properties:bounded_stream_properties",
        # One layer under the optimizer's mapping, both memories (Icarus takes 35 s).
        cross_sims=(CrossSim({}, config=_MORPH_ONE_LAYER, testcase="layers", slow=True),),
        netlist_checks=(NetlistCheck({}, ("ice40-up5k",), testcase="layers",
                                     config=_MORPH_ONE_LAYER, slow=True),),

        soak=Soak({}, _MORPH_SOAK_CONFIG, "layers"),
    ),
    Core(
        name="dgc-sparsify",
        component="dnnhw.rtl.dgc_sparsifier:DgcSparsifier",
        params=_DGC_SPARSIFY_PARAMS,
        summary="Deep Gradient Compression sparsifier: clip, momentum correction and "
                "accumulation in fixed point, a histogram threshold, masked (index, value) out",
        golden="dnnhw.golden.dgc_fixed:SparsifierState",
        testbench="dnnhw.sim.dgc",
        report="dnnhw.report.dgc",
        flow=_DGC_SPARSIFY_FLOW,
        # The training study: a small version in every run, the 3-seed one with --full.
        analyses=(Analysis("training_quick", "dnnhw.bench.dgc:flow_quick",
                           uses_configs=False),
                  Analysis("training", "dnnhw.bench.dgc:flow_full", tier="full",
                           uses_configs=False)),
        benchmark="dgc",
        docs="docs/dgc.md",
        cross_sims=(CrossSim({}, config={"steps": 2}, slow=True),),
        # The UP5K build: its state in SPRAM, simulated with SB_SPRAM256KA's model (the
        # EBR path of BlockRam is dgc-aggregate's).
        netlist_checks=(NetlistCheck(_UP5K_SPARSIFY, ("ice40-up5k",), config={"steps": 2},
                                     slow=True),),
        soak=Soak({}, _DGC_SOAK_CONFIG, "steps"),
    ),
    Core(
        name="dgc-aggregate",
        component="dnnhw.rtl.dgc_aggregator:DgcAggregator",
        params=_DGC_AGGREGATE_PARAMS,
        summary="Deep Gradient Compression aggregator: K sparse streams summed at one beat a "
                "cycle, the fixed-point SGD step streamed out",
        golden="dnnhw.golden.dgc_fixed:aggregate",
        testbench="dnnhw.sim.dgc",
        report="dnnhw.report.dgc",
        flow=_DGC_AGGREGATE_FLOW,
        benchmark="dgc",
        docs="docs/dgc.md",
        cross_sims=(CrossSim({}, config={"steps": 2}, slow=True),),
        # The iCE40 netlist keeps the sum in EBRs (the generic one would make it
        # flip-flops: 8 Ki words).
        netlist_checks=(NetlistCheck({}, ("ice40-up5k",), config={"steps": 2}, slow=True),),
        soak=Soak({}, _DGC_SOAK_CONFIG, "steps"),
    ),
    Core(
        name="fft",
        component="dnnhw.rtl.fft:StreamingFFT",
        params=_FFT_PARAMS,
        summary="streaming fixed-point FFT (R2SDF, decimation in frequency): a complex "
                "sample a cycle, frames back to back, natural order out",
        golden="dnnhw.golden.fft_fixed:fft",
        testbench="dnnhw.sim.fft",
        report="dnnhw.report.fft",
        flow=_FFT_FLOW,
        # SQNR against width from the golden model (random and image data, n = 64, 1024),
        # and the band-limited training: a small version in every run, 3 seeds with --full.
        analyses=(Analysis("sqnr", "dnnhw.bench.fft:sqnr_by_width", uses_configs=False),
                  Analysis("training_quick", "dnnhw.bench.bandlimit:flow_quick",
                           uses_configs=False),
                  Analysis("training", "dnnhw.bench.bandlimit:flow_full", tier="full",
                           uses_configs=False)),
        benchmark="bandlimit",
        docs="docs/fft.md",
        peak_rate=_fft_peak_rate,
        board_job="dnnhw.sim.fft_data:board_job",
        proofs="dnnhw.formal.fft:fft_properties",
        # The counting checks run to the latency plus a frame: 28 cycles at n = 8 (195 at
        # the default n = 64); the stream rule is proved at the defaults too.
        proof_configs=({"n": 8, "width": 8, "twiddle_width": 8}, {}),
        # The mapped netlists: the multipliers are SB_MAC16s (Yosys models them) and
        # MULT18X18Ds (Yosys has only a blackbox; dnnhw.synth.netlist models them). The
        # generic netlist passes too, and adds 109 s.
        netlist_checks=(NetlistCheck({"n": 16}, ("ice40-up5k", "ecp5-85f"),
                                     testcase="random_stalls", slow=True),),
        cross_sims=(CrossSim({"n": 16}),),
        soak=Soak({"n": 16}, {"random_frames": 32_000, "image_frames": 2}, "random_stalls"),
    ),
    Core(
        name="bandlimit-conv",
        component="dnnhw.rtl.bandlimit_conv:BandLimitedConv",
        params=_BANDLIMIT_PARAMS,
        summary="band-limited FFT convolution engine (Dziedzic et al.): FFT, the kept "
                "low-frequency block times stored filter spectra, channel sums, IFFT, crop",
        golden="dnnhw.golden.bandlimit_conv_fixed:conv",
        testbench="dnnhw.sim.bandlimit_conv",
        report="dnnhw.report.bandlimit_conv",
        flow=_BANDLIMIT_FLOW,
        # Filter memory, error against direct convolution and SQNR, from the golden model.
        analyses=(Analysis("figures", "dnnhw.bench.bandlimit_conv:flow_figures",
                           uses_configs=False),),
        benchmark="bandlimit-conv",
        docs="docs/bandlimit-conv.md",
        peak_rate=_bandlimit_peak_rate,
        # Its output rule needs an invariant k-induction does not find (not at depth 16).
        proofs="dnnhw.formal.properties:bounded_stream_properties",
        # The 1D build (its Verilator build is the slow tier's; the 2D one runs on Icarus
        # in the default tier).
        cross_sims=(CrossSim({"dims": 1, "n": 64, "taps": 5}, slow=True),),
        netlist_checks=(NetlistCheck({"dims": 1, "n": 16}, ("ice40-up5k",),
                                     testcase="random_stalls", slow=True),),

        # The default 2D build: 904 samples a tile (2 x 16 x 16 in, 2 x 14 x 14 out).
        soak=Soak({}, {"random_tiles": 1120, "image_tiles": 4}, "random_stalls"),
    ),
)


def get_core(name, catalog=CORES):
    """The row of ``catalog`` called ``name``, or :class:`ParameterError` listing the cores."""
    for core in catalog:
        if core.name == name:
            return core
    raise ParameterError(
        f"unknown core '{name}'; known cores: {', '.join(c.name for c in catalog)}")
