"""cocotb testbench of ``diffy-tile``: whole conv layers through the tile, every output beat
bit-exact against the golden convolution, every step count equal to the golden model.

The layer is laid out by :func:`dnnhw.golden.diffy_tile.tile_schedule` (the pallet
streams and the expected output beats); the runs (two input streams, the output checked
beat by beat, cycle budget, drain and extra-beat checks) are
:meth:`dnnhw.sim.bench.StreamBench.run`, and the ``step`` output is counted every cycle.

Tests:

``latency``
    one single-pallet group into the empty tile; cycles from its input transfer to the
    output transfer, against the sidecar's ``latency``.
``layers``
    every layer of ``layers`` twice: stall-free (inputs always valid, output always
    ready), where the cycles from the first input transfer to the last output transfer
    must be ``steps + latency - 1``; and with random idle cycles on both inputs and
    backpressure on the output (probabilities ``idle`` and ``backpressure``, or the stall
    patterns ``source_pause`` and ``sink_pause`` when the config names them). In both runs
    every output beat matches and the counted steps equal the model's ``steps`` exactly.
    With ``stall_free`` false, the stalled runs alone (the soak's: ``dnnhw sim diffy-tile
    --soak``).

Layers: dicts with ``channels``, ``filters``, ``size`` ([H, W]), ``kernel``, ``stride``,
``padding``, ``images`` and ``data``: ``"image"`` (smooth non-negative rows, like a
photograph after a ReLU: neighbours are close, which is what Diffy exploits) or
``"signed"`` (uniform signed values over the full width; corner values included).
Weights are uniform signed over ``width - 2`` bits. ``layer_files`` replaces them with
given tensors: ``.npz`` files holding ``x`` (N, C, H, W), ``w`` (K, C, R, S), ``stride``
and ``padding`` (e.g. a crop of a photograph through a conv stack).
"""

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from .bench import StreamBench
from .diffy_data import (DEFAULT_LAYERS, layer_data, layer_file, pack_inputs, pack_outputs,
                         schedule)
from .stalls import stall_pattern
from .streams import PayloadFormat
from .tb import record

DEFAULTS = {
    "layers": DEFAULT_LAYERS,
    "layer_files": [],        # .npz files with x, w, stride, padding: run these instead
    "idle": 0.3,              # input idle probability per beat (each stream on its own)
    "backpressure": 0.3,      # output not-ready probability per cycle
    "timeout_cycles": 2000,
    "stall_free": True,       # False: the stalled runs alone (the soak's)
}


class DiffyBench(StreamBench):
    def __init__(self, dut, salt):
        super().__init__(dut, DEFAULTS)
        p = self.sidecar["params"]
        self.params = p
        self.lanes, self.filters, self.windows = p["lanes"], p["filters"], p["windows"]
        self.width, self.mode = p["width"], p["mode"]
        self.rng = np.random.default_rng(self.cfg["seed"] * 1000 + salt)
        self.idle_inputs = tuple(name for name, s in self.sidecar["signals"].items()
                                 if s["direction"] == "in")
        self.acc_width = self.sidecar["streams"]["o"]["fields"]["sums"]["element_width"]
        self.formats = {name: PayloadFormat(entry)
                        for name, entry in self.sidecar["streams"].items()}

    def schedule(self, x, w, layer):
        return schedule(x, w, layer["stride"], layer["padding"], self.params)

    async def run_schedule(self, sched, *, idle=0.0, backpressure=0.0, label,
                           source_pause=None, sink_pause=None):
        """Send ``sched`` through the tile; check every output beat and the step count."""
        await self.start()
        dut = self.dut
        if self.mode == "stripes":
            dut.msb.value = sched.stripes_msb
            dut.msb_signed.value = int(sched.stripes_signed)
        seed = int(self.rng.integers(1 << 30))
        src_pat = stall_pattern(idle if source_pause is None else source_pause)
        snk_pat = stall_pattern(backpressure if sink_pause is None else sink_pause)
        sent_a, sent_w = pack_inputs(self.formats, sched, self.width, self.windows)
        o_fmt = self.formats["o"]
        expected = pack_outputs(o_fmt, sched.outputs)
        half = 1 << (self.acc_width - 1)

        def signed(item):
            return [(v ^ half) - half for v in o_fmt.unpack(item)["sums"]]

        steps = [0]

        async def count_steps():
            while True:
                await RisingEdge(self.clk)
                await ReadOnly()
                if dut.step.value == 1:
                    steps[0] += 1
        counter = cocotb.start_soon(count_steps())
        try:
            run = await self.run(
                {"a": sent_a, "w": sent_w}, expected, label=label,
                seeds={"a": seed, "w": seed + 1, "o": seed + 2},
                pauses={"a": src_pat, "w": src_pat, "o": snk_pat},
                budget=sched.steps + len(sent_a) + self.latency, render=signed,
                context=lambda k, got: (str(self.params), []), drain_cycles=2 * self.latency + 8)
        finally:
            counter.cancel()
        first_in, last_out = run.sources["a"].cycles[0], run.sink.cycles[-1]
        res = {
            "pallets": len(sent_a), "groups": len(expected),
            "idle": src_pat.stall_fraction, "backpressure": snk_pat.stall_fraction,
            "steps_measured": steps[0],
            "steps_model": sched.steps, "cycles": last_out - first_in + 1,
            "span": last_out - first_in,
            "source_pause": str(src_pat), "sink_pause": str(snk_pat),
        }
        assert steps[0] == sched.steps, \
            f"{label}: the tile took {steps[0]} steps, the model predicts {sched.steps}"
        if not src_pat.stalls and not snk_pat.stalls:
            want = sched.steps + self.latency - 1
            assert res["span"] == want, \
                (f"{label}: last output {res['span']} cycles after the first input, the model "
                 f"predicts steps + latency - 1 = {want}")
        return res


def _layers(bench):
    """``(description, x, w)`` of every layer the ``layers`` test runs."""
    files = bench.cfg["layer_files"]
    if not files:
        for layer in bench.cfg["layers"]:
            yield (layer, *layer_data(bench.rng, layer, bench.width))
        return
    for path in files:
        with np.load(path) as f:
            x, w, stride, padding = layer_file({key: f[key] for key in f.files}, str(path))
        yield ({"file": str(path), "channels": x.shape[1], "filters": w.shape[0],
                "size": list(x.shape[2:]), "kernel": w.shape[2], "stride": stride,
                "padding": padding, "images": x.shape[0]}, x, w)


@cocotb.test()
async def latency(dut):
    bench = DiffyBench(dut, salt=0)
    layer = {"channels": 1, "filters": 1, "size": [1, 1], "kernel": 1, "stride": 1,
             "padding": 0, "images": 1, "data": "signed"}
    x = np.zeros((1, 1, 1, 1), dtype=np.int64)
    x[0, 0, 0, 0] = 1            # one term: one step in every term-serial mode
    w = np.full((1, 1, 1, 1), 3, dtype=np.int64)
    sched = bench.schedule(x, w, layer)
    if bench.mode == "stripes":
        assert sched.steps == 1
    res = await bench.run_schedule(sched, label="latency")
    record("latency", {"measured": res["span"], "sidecar": bench.latency})
    assert res["span"] == bench.latency


@cocotb.test()
async def layers(dut):
    bench = DiffyBench(dut, salt=1)
    cfg = bench.cfg
    out = []
    for n, (layer, x, w) in enumerate(_layers(bench)):
        sched = bench.schedule(x, w, layer)
        entry = {"layer": layer}
        if cfg["stall_free"]:
            entry["stall_free"] = await bench.run_schedule(sched,
                                                           label=f"layer {n} stall-free")
        src, snk = bench.stall_patterns(cfg["idle"], cfg["backpressure"])
        stalled = entry["random_stalls"] = await bench.run_schedule(
            sched, source_pause=src, sink_pause=snk, label=f"layer {n} random stalls")
        dut._log.info("layer %d %s: %d pallets, %d groups, %d steps (model %d), %d cycles "
                      "with stalls%s", n, layer, stalled["pallets"], stalled["groups"],
                      stalled["steps_measured"], stalled["steps_model"], stalled["cycles"],
                      f", {entry['stall_free']['cycles']} stall-free" if "stall_free" in entry
                      else "")
        out.append(entry)
    record("layers", out)
