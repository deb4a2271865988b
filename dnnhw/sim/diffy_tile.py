"""cocotb testbench of ``diffy-tile``: whole conv layers through the tile, every output beat
bit-exact against the golden convolution, every step count equal to the golden model.

The layer is laid out by :func:`dnnhw.golden.diffy_tile.tile_schedule` (the pallet
streams and the expected output beats); the two input streams are driven by
:class:`~dnnhw.sim.streams.StreamSource`, the output collected by
:class:`~dnnhw.sim.streams.StreamSink`, and the ``step`` output counted every cycle.

Tests:

``latency``
    one single-pallet group into the empty tile; cycles from its input transfer to the
    output transfer, against the sidecar's ``latency``.
``layers``
    every layer of ``layers`` twice: stall-free (inputs always valid, output always
    ready), where the cycles from the first input transfer to the last output transfer
    must be ``steps + latency - 1``; and with random idle cycles on both inputs and
    backpressure on the output. In both runs every output beat matches and the counted
    steps equal the model's ``steps`` exactly.

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
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from dnnhw.golden.diffy_tile import tile_schedule

from .streams import StreamSink, StreamSource
from .tb import load_config, load_sidecar, record, start


__all__ = ["DEFAULT_LAYERS", "layer_data"]

DEFAULT_LAYERS = [
    {"channels": 3, "filters": 5, "size": [6, 9], "kernel": 3, "stride": 1, "padding": 1,
     "images": 1, "data": "image"},
    {"channels": 7, "filters": 3, "size": [7, 8], "kernel": 3, "stride": 2, "padding": 1,
     "images": 1, "data": "signed"},
    {"channels": 9, "filters": 4, "size": [5, 7], "kernel": 1, "stride": 1, "padding": 0,
     "images": 2, "data": "image"},
    {"channels": 2, "filters": 2, "size": [6, 6], "kernel": 1, "stride": 2, "padding": 0,
     "images": 1, "data": "signed"},
]

DEFAULTS = {
    "layers": DEFAULT_LAYERS,
    "layer_files": [],        # .npz files with x, w, stride, padding: run these instead
    "idle": 0.3,              # input idle probability per beat (each stream on its own)
    "backpressure": 0.3,      # output not-ready probability per cycle
    "timeout_cycles": 2000,
}


def layer_data(rng, layer, width):
    """``(x, w)`` int64 arrays for ``layer`` (see the module docstring)."""
    c, k = layer["channels"], layer["filters"]
    h, wd = layer["size"]
    n, kern = layer["images"], layer["kernel"]
    top = (1 << (width - 1)) - 1
    if layer["data"] == "image":
        # Rows that wander: a random start, small steps along X, an occasional edge.
        start = rng.integers(0, top // 2, size=(n, c, h, 1))
        steps = rng.integers(-top // 64, top // 64 + 1, size=(n, c, h, wd))
        edges = (rng.random((n, c, h, wd)) < 0.1) * rng.integers(-top // 4, top // 4 + 1,
                                                                     size=(n, c, h, wd))
        x = np.clip(start + np.cumsum(steps + edges, axis=-1), 0, top)
    elif layer["data"] == "signed":
        x = rng.integers(-top - 1, top + 1, size=(n, c, h, wd))
        corner = rng.random(x.shape) < 0.05
        x[corner] = rng.choice([-top - 1, top, -1, 1, 0], size=int(corner.sum()))
    else:
        raise ValueError(f"layer data must be 'image' or 'signed', got {layer['data']!r}")
    wmax = (1 << (width - 2)) - 1
    w = rng.integers(-wmax, wmax + 1, size=(k, c, kern, kern))
    return x.astype(np.int64), w.astype(np.int64)


class DiffyBench:
    def __init__(self, dut, salt):
        self.dut = dut
        self.sidecar = load_sidecar()
        self.cfg = load_config(DEFAULTS)
        p = self.sidecar["params"]
        self.params = p
        self.lanes, self.filters, self.windows = p["lanes"], p["filters"], p["windows"]
        self.width, self.mode = p["width"], p["mode"]
        self.latency = int(self.sidecar["latency"])
        self.rng = np.random.default_rng(self.cfg["seed"] * 1000 + salt)
        self.inputs = [name for name, s in self.sidecar["signals"].items()
                       if s["direction"] == "in"]
        self.acc_width = self.sidecar["streams"]["o"]["fields"]["sums"]["element_width"]
        self._runs = 0
        self._started = False

    async def start(self):
        if not self._started:
            self.clk = await start(self.dut, self.sidecar, idle_inputs=self.inputs)
            self._started = True

    def schedule(self, x, w, layer):
        products = x.shape[-3] * w.shape[-2] * w.shape[-1]
        if products > self.params["max_products"]:
            raise ValueError(f"layer {layer} sums {products} products per output; the tile "
                             f"accepts max_products={self.params['max_products']}")
        return tile_schedule(x, w, layer["stride"], layer["padding"], lanes=self.lanes,
                             filters=self.filters, windows=self.windows, width=self.width,
                             mode=self.mode, encoding=self.params["encoding"],
                             shifter_bits=self.params["shifter_bits"])

    async def run(self, sched, *, idle, backpressure, label):
        """Send ``sched`` through the tile; check every output beat and the step count."""
        await self.start()
        dut = self.dut
        if self.mode == "stripes":
            dut.msb.value = sched.stripes_msb
            dut.msb_signed.value = int(sched.stripes_signed)
        self._runs += 1
        seed = int(self.rng.integers(1 << 30))
        src_a = StreamSource(dut, self.sidecar, "a", idle=idle, seed=seed)
        src_w = StreamSource(dut, self.sidecar, "w", idle=idle, seed=seed + 1)
        snk = StreamSink(dut, self.sidecar, "o", backpressure=backpressure, seed=seed + 2,
                         unpack=False)
        wmask = (1 << self.width) - 1
        raw_bits = (sched.raw.astype(np.int64) << np.arange(self.windows)).sum(axis=1)
        sent_a = src_a.format.pack_many(
            acts=sched.acts.reshape(len(sched.acts), -1) & wmask,
            prev=sched.prev & wmask, raw=raw_bits, last=sched.last.astype(np.int64))
        sent_w = src_w.format.pack_many(
            weights=sched.weights.reshape(len(sched.weights), -1) & wmask)
        expected = self._pack_outputs(snk.format, sched.outputs)

        def check(item, cycle):
            k = len(snk.items) - 1
            if k >= len(expected) or item != expected[k]:
                self._mismatch(snk.format, snk.items, expected, sched, f"{label}, cycle {cycle}")
        snk.callback = check

        steps = [0]

        async def count_steps():
            while True:
                await RisingEdge(self.clk)
                await ReadOnly()
                if dut.step.value == 1:
                    steps[0] += 1
        counter = cocotb.start_soon(count_steps())
        snk.start()
        src_a.start()
        src_w.start()
        src_a.send(sent_a)
        src_w.send(sent_w)
        budget = sched.steps + len(sent_a) + self.latency
        if idle or backpressure:
            budget = int(budget / max(1e-3, (1 - idle) ** 2 * (1 - backpressure)))
        await snk.wait_for(len(expected), timeout_cycles=2 * budget + self.cfg["timeout_cycles"])
        await ClockCycles(self.clk, 2 * self.latency + 8)
        counter.cancel()
        if len(snk.items) != len(expected):
            raise AssertionError(f"{label}: {len(snk.items) - len(expected)} extra output "
                                 f"beat(s) after the expected {len(expected)}")
        for end in (src_a, src_w, snk):
            end.stop()
        first_in, last_out = src_a.cycles[0], snk.cycles[-1]
        res = {
            "pallets": len(sent_a), "groups": len(expected), "idle": idle,
            "backpressure": backpressure, "steps_measured": steps[0],
            "steps_model": sched.steps, "cycles": last_out - first_in + 1,
            "span": last_out - first_in,
        }
        assert steps[0] == sched.steps, \
            f"{label}: the tile took {steps[0]} steps, the model predicts {sched.steps}"
        if not idle and not backpressure:
            want = sched.steps + self.latency - 1
            assert res["span"] == want, \
                (f"{label}: last output {res['span']} cycles after the first input, the model "
                 f"predicts steps + latency - 1 = {want}")
        return res

    def _pack_outputs(self, fmt, outputs):
        amask = (1 << self.acc_width) - 1
        return fmt.pack_many(sums=outputs.reshape(len(outputs), -1) & amask)

    def _mismatch(self, fmt, got, expected, sched, label):
        for k, (a, b) in enumerate(zip(got, expected)):
            if a != b:
                break
        else:
            raise AssertionError(f"{label}: {len(got)} output beats, expected {len(expected)}")
        half = 1 << (self.acc_width - 1)

        def signed(item):
            return [(v ^ half) - half for v in fmt.unpack(item)["sums"]]
        raise AssertionError(
            f"{label}: output beat {k} differs ({self.params})\n"
            f"  got      {signed(got[k])}\n"
            f"  expected {signed(expected[k])}")


def _layers(bench):
    """``(description, x, w)`` of every layer the ``layers`` test runs."""
    files = bench.cfg["layer_files"]
    if not files:
        for layer in bench.cfg["layers"]:
            yield (layer, *layer_data(bench.rng, layer, bench.width))
        return
    for path in files:
        with np.load(path) as f:
            x, w = f["x"].astype(np.int64), f["w"].astype(np.int64)
            stride, padding = int(f["stride"]), int(f["padding"])
        if x.ndim == 3:
            x = x[None]
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
    res = await bench.run(sched, idle=0.0, backpressure=0.0, label="latency")
    record("latency", {"measured": res["span"], "sidecar": bench.latency})
    assert res["span"] == bench.latency


@cocotb.test()
async def layers(dut):
    bench = DiffyBench(dut, salt=1)
    cfg = bench.cfg
    out = []
    for n, (layer, x, w) in enumerate(_layers(bench)):
        sched = bench.schedule(x, w, layer)
        free = await bench.run(sched, idle=0.0, backpressure=0.0, label=f"layer {n} stall-free")
        stalled = await bench.run(sched, idle=cfg["idle"], backpressure=cfg["backpressure"],
                                  label=f"layer {n} random stalls")
        dut._log.info("layer %d %s: %d pallets, %d groups, %d steps (model %d), %d cycles "
                      "stall-free, %d with stalls", n, layer, free["pallets"], free["groups"],
                      free["steps_measured"], free["steps_model"], free["cycles"],
                      stalled["cycles"])
        out.append({"layer": layer, "stall_free": free, "random_stalls": stalled})
    record("layers", out)
