"""The band-limited convolution engine's testbench (``bandlimit-conv``,
:class:`dnnhw.rtl.bandlimit_conv.BandLimitedConv`): tiles of random samples and of real
photographs through the core, every output sample bit-exact against
:func:`dnnhw.golden.bandlimit_conv_fixed.conv`. Built on
:class:`dnnhw.sim.bench.StreamBench`.

The data, ``M = 2 ** (width - 1)``:

- ``random``: every sample uniform in ``[-M / 2, M / 2)``;
- photographs (scikit-image's ``camera`` and ``astronaut``, as grey, from inside the
  wheel): in 2D ``n x n`` patches spread evenly over the image, in 1D rows of ``n``
  pixels, scaled to ``[-M / 2, M / 2]`` (black to white), one patch per channel;
- the filters: normal random numbers divided by their sum of magnitudes (so no output
  exceeds the input's range), quantized by the host's
  :func:`~dnnhw.golden.bandlimit_conv_fixed.filter_spectra` at ``coefficient_shift =
  spectrum_shift``; a second set, drawn the same way, for the reload test.

Tests and what they record in ``results.json`` (besides ``config``):

``stall_free``
    The filters, then every tile back to back, the sources never idle, the sink always
    ready. Fails unless the tile period (first input sample of one tile to the next's,
    over the middle tiles) is at most the core's ``cycles_per_tile`` plus
    :data:`PERIOD_SLACK`.
``random_stalls``
    The same with every stream (filters, input, output) stalled at random.
``reload``
    A second filter set written after the first run's results are out, then the tiles
    again: their results must be those of the new set.

Each records::

    {"dims", "n", "taps", "in_channels", "out_channels", "compression_rate", "width",
     "tiles": {"random": int, "camera": int, "astronaut": int},
     "idle", "backpressure", "source_pause", "sink_pause",
     "cycles",                                 # first filter word in to last result out
     "in_samples_per_cycle", "out_samples_per_cycle",
     "tile_period", "cycles_per_tile",         # measured (middle tiles), the core's model
     "kept_bins", "filter_words", "filter_memory_bits",
     "sqnr_db": {"random", "camera", ..., "run"},   # against float_reference
     "error_vs_direct": {"random", ..., "run"},     # ||y - direct|| / ||direct||
     "overflow": {"rtl": 0 or 1, "golden": 0 or 1}}
"""

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from dnnhw.golden import bandlimit_conv_fixed as golden

from .bench import StreamBench
from .fft_data import IMAGES, grey_image, real_sqnr_db, relative_error, unit_filters
from .streams import PayloadFormat
from .tb import record


__all__ = ["DEFAULTS", "BandLimitBench", "PERIOD_SLACK"]


DEFAULTS = {
    "random_tiles": 3,
    "image_tiles": 2,          # per image
    "images": list(IMAGES),
    "idle": 0.3,
    "backpressure": 0.3,
}

#: Cycles a tile may take in steady state beyond the core's ``cycles_per_tile``: the
#: forward transform's ghost frame when the input pauses at a tile boundary, and the
#: accumulator banks' hand-over.
PERIOD_SLACK = 64


def _signed(values, width):
    values = np.asarray(values, dtype=np.int64) & ((1 << width) - 1)
    return np.where(values >= 1 << (width - 1), values - (1 << width), values)


class BandLimitBench(StreamBench):
    """The engine DUT, its parameters (from the sidecar), its tiles and its filters."""

    def __init__(self, dut):
        super().__init__(dut, DEFAULTS, idle_inputs=("clear_overflow",))
        p = self.sidecar["params"]
        self.dims, self.n, self.taps = int(p["dims"]), int(p["n"]), int(p["taps"])
        self.in_channels, self.out_channels = int(p["in_channels"]), int(p["out_channels"])
        self.c = float(p["compression_rate"])
        self.width, self.twiddle_width = int(p["width"]), int(p["twiddle_width"])
        self.coefficient_width = int(p["coefficient_width"])
        self.spectrum_shift = int(p["spectrum_shift"])
        self.filter_fmt = PayloadFormat(self.sidecar["streams"]["filters"])
        self.in_fmt = PayloadFormat(self.sidecar["streams"]["input"])
        self.rng = np.random.default_rng([self.seed, self.dims, self.n, self.taps,
                                          self.in_channels, self.out_channels])
        self._runs = 0
        record("config", self.cfg)

    # --- data --------------------------------------------------------------------------

    @property
    def tile_shape(self):
        return (self.n,) * self.dims

    def _half_scale(self, grey):
        half = 1 << (self.width - 2)
        return np.rint(grey * 2 * half).astype(np.int64) - half

    def _image_tiles(self, name, count):
        """``count`` tiles ``(count, in_channels, *tile_shape)`` of image ``name``, one
        patch (2D) or row (1D) per channel, spread evenly over the image."""
        grey = grey_image(name)
        need = count * self.in_channels
        if self.dims == 2:
            rows, cols = grey.shape[0] - self.n, grey.shape[1] - self.n
            spots = np.linspace(0, rows * cols - 1, need).astype(int)
            patches = [grey[s // cols:s // cols + self.n, s % cols:s % cols + self.n]
                       for s in spots]
        else:
            flat = grey.ravel()
            starts = np.linspace(0, flat.size - self.n, need).astype(int)
            patches = [flat[s:s + self.n] for s in starts]
        tiles = self._half_scale(np.array(patches))
        return tiles.reshape(count, self.in_channels, *self.tile_shape)

    def tiles(self):
        """``(x, sources)``: the tiles ``(tiles, in_channels, *tile_shape)`` and the source
        of each."""
        half = 1 << (self.width - 2)
        count = int(self.cfg["random_tiles"])
        parts = [self.rng.integers(-half, half, size=(count, self.in_channels,
                                                       *self.tile_shape))]
        sources = ["random"] * count
        for name in self.cfg["images"]:
            tiles = self._image_tiles(name, int(self.cfg["image_tiles"]))
            parts.append(tiles)
            sources += [name] * len(tiles)
        return np.concatenate(parts), sources

    def filters(self):
        """``(w, words)``: float filters ``(out, in, *taps)`` with unit sum of magnitudes
        and the host's quantized spectra, flat in address order ``(words, 2)``."""
        w = unit_filters(self.rng, self.out_channels, self.in_channels, self.taps, self.dims)
        words = golden.filter_spectra(w, n=self.n, compression_rate=self.c,
                                      coefficient_width=self.coefficient_width,
                                      coefficient_shift=self.spectrum_shift)
        return w, words

    def _pack_filters(self, words):
        flat = words.reshape(-1, 2)
        mask = (1 << self.coefficient_width) - 1
        return self.filter_fmt.pack_many(re=flat[:, 0] & mask, im=flat[:, 1] & mask)

    def _golden(self, x, words):
        return golden.conv(x, words, dims=self.dims, n=self.n, taps=self.taps,
                           compression_rate=self.c, width=self.width,
                           twiddle_width=self.twiddle_width,
                           coefficient_width=self.coefficient_width,
                           spectrum_shift=self.spectrum_shift)

    # --- runs --------------------------------------------------------------------------

    def _seeds(self):
        self._runs += 1
        seed = self.seed * 1000 + self._runs * 10
        return {"filters": seed, "input": seed + 1, "output": seed + 2}

    async def clear_overflow(self):
        """Pulse ``clear_overflow`` for a cycle."""
        self.dut.clear_overflow.value = 1
        await RisingEdge(self.clk)
        self.dut.clear_overflow.value = 0

    async def load_filters(self, words, *, stalled, label):
        """Write a filter set alone (no tile follows it in the same run)."""
        src = None
        if stalled:
            src, _ = self.stall_patterns(self.cfg["idle"], self.cfg["backpressure"])
        await self.run({"filters": self._pack_filters(words)}, [], sink="output",
                       label=label, seeds=self._seeds(), pauses={"filters": src},
                       budget=words.size,
                       # No output to wait for: the drain is the time the words take.
                       drain_cycles=4 * len(words.reshape(-1, 2)) + 64)

    async def run_tiles(self, x, sources, w, words, *, stalled, label, filters=True):
        """The tiles ``x`` (with the filter set first when ``filters``) through the DUT;
        every result sample checked; returns the measurements."""
        want, overflow = self._golden(x, words)
        mask = (1 << self.width) - 1
        inputs = {"input": (x.reshape(-1) & mask).tolist()}
        if filters:
            inputs = {"filters": self._pack_filters(words), **inputs}
        expected = (want.reshape(-1) & mask).tolist()
        pauses = {}
        if stalled:
            src, snk = self.stall_patterns(self.cfg["idle"], self.cfg["backpressure"])
            pauses = {name: src for name in inputs}
            pauses["output"] = snk
        period = x[0].size / self.sidecar["throughput"]     # the core's cycles_per_tile
        out_per_tile = want[0].size
        tile_in = x[0].size

        def context(k, got):
            tile, rest = divmod(k, out_per_tile)
            channel, position = divmod(rest, out_per_tile // self.out_channels)
            return (f"dims={self.dims}, n={self.n}, taps={self.taps}, c={self.c}; tile "
                    f"{tile} ({sources[tile]}), output channel {channel}, position "
                    f"{np.unravel_index(position, want.shape[2:])}", [])

        seeds = self._seeds()
        run = await self.run(inputs, expected, sink="output", label=label,
                             seeds={name: seeds[name] for name in [*inputs, "output"]},
                             pauses=pauses,
                             budget=int((len(x) + 3) * period) + 8 * self.n ** self.dims,
                             render=lambda item: str(_signed([item], self.width)[0]),
                             context=context, drain_cycles=int(4 * period) + 64)
        rtl_overflow = int(self.dut.overflow.value)
        assert rtl_overflow == int(overflow), \
            f"{label}: overflow is {rtl_overflow} after the run, the golden model says " \
            f"{int(overflow)}"
        got = _signed(run.sink.items, self.width).reshape(want.shape)
        ideal = golden.float_reference(x, w, dims=self.dims, n=self.n,
                                       compression_rate=self.c)
        direct = golden.direct_reference(x, w, dims=self.dims, taps=self.taps)
        kinds = np.array(sources)
        names = ["random", *self.cfg["images"]]
        sqnr = {name: real_sqnr_db(got[kinds == name], ideal[kinds == name]) for name in names}
        error = {name: relative_error(got[kinds == name], direct[kinds == name])
                 for name in names}
        sqnr["run"], error["run"] = real_sqnr_db(got, ideal), relative_error(got, direct)
        in_cycles = np.array(run.sources["input"].cycles)
        firsts = in_cycles[::tile_in]
        middle = firsts[1:-1] if len(firsts) > 3 else firsts
        tile_period = float(np.mean(np.diff(middle))) if len(middle) > 1 else None
        si, so = run.sources["input"].stats(), run.sink.stats()
        first = min(s.stats()["first_cycle"] for s in run.sources.values())
        patterns = run.patterns
        return {
            "dims": self.dims, "n": self.n, "taps": self.taps,
            "in_channels": self.in_channels, "out_channels": self.out_channels,
            "compression_rate": self.c, "width": self.width,
            "tiles": {name: int(np.sum(kinds == name)) for name in names},
            "idle": patterns["input"].stall_fraction,
            "backpressure": patterns["output"].stall_fraction,
            "source_pause": str(patterns["input"]), "sink_pause": str(patterns["output"]),
            "cycles": so["last_cycle"] - first + 1,
            "in_samples_per_cycle": si["beats_per_cycle"],
            "out_samples_per_cycle": so["beats_per_cycle"],
            "tile_period": tile_period, "cycles_per_tile": period,
            "sqnr_db": sqnr, "error_vs_direct": error,
            "overflow": {"rtl": rtl_overflow, "golden": int(overflow)},
        }


# --- the tests ---------------------------------------------------------------------------

def _log(dut, name, res):
    dut._log.info("%s: %s tiles, period %s cycles (model %s), SQNR %s dB, error against "
                  "direct %s", name, res["tiles"], res["tile_period"],
                  res["cycles_per_tile"], res["sqnr_db"]["run"], res["error_vs_direct"]["run"])


@cocotb.test()
async def stall_free(dut):
    bench = BandLimitBench(dut)
    x, sources = bench.tiles()
    w, words = bench.filters()
    res = await bench.run_tiles(x, sources, w, words, stalled=False, label="stall-free")
    record("stall_free", res)
    _log(dut, "stall-free", res)
    assert res["tile_period"] is None or \
        res["tile_period"] <= res["cycles_per_tile"] + PERIOD_SLACK, \
        (f"stall-free: a tile every {res['tile_period']:.1f} cycles; the core's model is "
         f"{res['cycles_per_tile']} (+ {PERIOD_SLACK} of slack)")


@cocotb.test()
async def random_stalls(dut):
    bench = BandLimitBench(dut)
    x, sources = bench.tiles()
    w, words = bench.filters()
    res = await bench.run_tiles(x, sources, w, words, stalled=True, label="random stalls")
    record("random_stalls", res)
    _log(dut, "random stalls", res)


@cocotb.test()
async def reload(dut):
    bench = BandLimitBench(dut)
    x, sources = bench.tiles()
    w, words = bench.filters()
    await bench.run_tiles(x[:2], sources[:2], w, words, stalled=False, label="first set")
    w2, words2 = bench.filters()
    await bench.clear_overflow()
    await bench.load_filters(words2, stalled=True, label="second set")
    res = await bench.run_tiles(x, sources, w2, words2, stalled=True, label="reloaded",
                                filters=False)
    record("reload", res)
    _log(dut, "reload", res)
