"""A tiny extra core in a catalog of its own, to show that adding a core is adding a row
plus one file per layer: it gets ``dnnhw generate``, ``sim``, ``synth``, ``flow`` and its
report section with no edit anywhere in dnnhw. (Not a test module: the tests import it.)

This one file plays every layer: the component, the catalog row and the report module.
"""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from dnnhw.catalog import Analysis, Core, FlowConfig, Param
from dnnhw.report import Section, SummaryRow
from dnnhw.text import markdown_table


class RegisterSlice(wiring.Component):
    """A one-stage registered stream slice: ``o`` carries what ``i`` took, in order.

    Members
    -------
    i : In(stream.Signature(width))
    o : Out(stream.Signature(width))
    """

    def __init__(self, *, width=8):
        if width not in (8, 16):
            raise ValueError(f"width must be one of 8, 16, got {width!r}")
        self._width = width
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})

    @property
    def latency(self):
        return 1

    @property
    def throughput(self):
        return "1 item/cycle"

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.ready):
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload)]
        return m


def double_widths(configs):
    """An analysis: any JSON-able value computed from the run's parameter sets."""
    return {"widths": sorted({c["width"] for c in configs}),
            "doubled": [2 * c["width"] for c in configs]}


CATALOG = (
    Core(
        name="slice",
        component="passthrough_core:RegisterSlice",
        params=(Param("width", 8, (8, 16), "bits per item"),),
        summary="a registered stream slice (test catalog)",
        golden="passthrough_core:RegisterSlice",
        testbench="dnnhw.sim.passthrough",
        report="passthrough_core",
        flow=(FlowConfig({"width": 8}, ("ice40-hx8k",), tier="quick"),
              FlowConfig({"width": 16}, ("ice40-hx8k",))),
        analyses=(Analysis("double", "passthrough_core:double_widths"),),
        fmax_goals={"ice40-hx8k": 100},
    ),
)


def summary(results):
    sims = results.sims("slice")
    items = sum(s["results"]["passthrough"]["items"] for s in sims if "passthrough" in s["results"])
    return [SummaryRow("slice", verified=f"{items} items in order",
                       fmax=results.fmax_against_goals("slice"))]


def sections(results):
    rows = [[s["params"]["width"], s["qor"]["target"], s["qor"]["lut"], s["qor"]["ff"],
             f"{s['qor']['fmax_mhz']:.1f}"] for s in results.synths("slice")]
    rows += [[s["params"]["width"], "sim", "", "", f"{s['results']['passthrough']['items']} items"]
             for s in results.sims("slice")]
    analysis = results.analysis("double_widths")
    body = markdown_table(["width", "where", "LUT", "FF", "Fmax / items"], rows) + \
        f"\n\nanalysis: {analysis}\n"
    return [Section("slice-results", "Register slice", body)]
