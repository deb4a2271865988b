"""The FFT testbench (``fft``, :class:`dnnhw.rtl.fft.StreamingFFT`): frames of random
samples and of real photographs through the core, every output sample bit-exact against
``dnnhw.golden.fft_fixed.fft``. Built on :class:`dnnhw.sim.bench.StreamBench`.

The data (pure NumPy, no cocotb in them), ``M = 2 ** (width - 1)``:

- ``random``: complex samples uniform over the disc ``|x| <= M - 1``
  (:func:`~dnnhw.sim.fft_data.random_frames`). Inside the disc no stage saturates (a halved sum or difference
  of two such samples is in it again, and a rotation keeps the magnitude), so the SQNR is
  the rounding's;
- photographs: scikit-image's ``camera`` and ``astronaut`` (as grey), through
  :func:`dnnhw.workloads.load_image` (files inside the installed wheel, nothing is
  downloaded), read in raster order and cut into rows of ``n`` pixels, each pixel scaled
  into the signed ``width``-bit range, symmetrically (black ``-(M - 1)``, white
  ``M - 1``: a difference of black and white then needs no saturation), as the real
  part, the imaginary part 0; the rows are spread evenly over the image
  (:func:`~dnnhw.sim.fft_data.image_frames`);
- ``full_scale``: both parts uniform over the whole signed range, the square
  (:func:`~dnnhw.sim.fft_data.full_scale_frames`), sent last. Its corners have magnitude up to ``sqrt(2) M``:
  rotated, they exceed the range and saturate (``docs/fft.md`` section 2), so these
  frames check the saturation and the ``overflow`` flag bit for bit; their SQNR is the
  clipping's and is kept apart from the run's.

The data is :mod:`dnnhw.sim.fft_data` (NumPy only); it also feeds the core's analysis,
:func:`dnnhw.bench.fft.sqnr_by_width` (the golden model's SQNR against width at ``n`` =
64 and 1024, which the report's ``fft-sqnr`` section renders).

Tests and what they record in ``results.json`` (besides ``config``, the knobs):

``stall_free``
    Every frame (random, each image's, the full-scale ones) back to back, the source
    never idle, the sink always ready. Fails unless the input takes and the output gives
    one sample a cycle over the whole run (frames back to back: a frame every ``n``
    cycles) and the first sample comes out the sidecar's ``latency`` cycles after the
    first went in.
``random_stalls``
    The same frames with the source idle with probability ``idle`` before each sample
    and the sink not ready with probability ``backpressure`` each cycle (or the
    ``source_pause`` / ``sink_pause`` patterns): pauses inside frames and at frame
    boundaries (where the core flushes with a ghost frame).

Both record::

    {"n", "width", "twiddle_width", "inverse",
     "frames": {"random": int, "camera": int, "astronaut": int, "full_scale": int},
     "samples": int,                       # complex samples in (and out)
     "idle", "backpressure",               # the stall patterns' mean stall fractions
     "source_pause", "sink_pause",         # the patterns, as text
     "cycles",                             # first sample in to last out
     "in_samples_per_cycle", "out_samples_per_cycle",   # over the whole run
     "in_frame_rate_min", "out_frame_rate_min",         # the slowest frame, n / cycles
     "latency_first", "latency_sidecar",   # first in to first out; the core's property
     "latency_frame_max",                  # per frame, its first sample in to first out
     "sqnr_db": {"random", "camera", "astronaut", "full_scale",   # per source
                 "image",                  # both photographs
                 "run"},                   # random and photographs (not full_scale)
     "sqnr_reference": str,                # what the SQNR compares against
     "overflow": {"rtl": 0 or 1,           # the sticky flag after the run
                  "golden": 0 or 1,        # the golden model's, every frame
                  "golden_run": 0 or 1}}   # the golden model's without full_scale

The SQNR is ``10 log10(sum |X|^2 / sum |Y - X|^2)`` over the frames of a source, ``Y`` the
core's output (equal to the golden model's, checked sample by sample), ``X`` the float
transform ``numpy.fft.fft(x) / n`` (``numpy.fft.ifft(x)`` for the inverse) of the same
integer input. Every output sample is compared as it arrives (the report names the frame,
its source and the bin); after the expected samples no further one may come out, every
input sample must have been taken, and the sticky ``overflow`` flag must equal the golden
model's.
"""

import cocotb
import numpy as np

from dnnhw.golden.fft_fixed import fft as golden_fft

from .bench import StreamBench
from .fft_data import (IMAGES, default_frames, full_scale_frames, image_frames,
                       random_frames, sqnr_db)
from .streams import PayloadFormat
from .tb import record


__all__ = ["DEFAULTS", "FFTBench"]


DEFAULTS = {
    "random_frames": None,     # None: max(4, 2048 // n)
    "image_frames": None,      # per image; None: max(2, 1024 // n)
    "full_scale_frames": 2,    # saturating frames, sent last
    "images": list(IMAGES),
    "idle": 0.3,               # source idle probability per sample (stalled run)
    "backpressure": 0.3,       # sink not-ready probability per cycle (stalled run)
}


def _frame_rates(cycles, n):
    """Samples per cycle within each ``n``-sample frame of a stream (1.0: a sample a
    cycle)."""
    return [n / (cycles[k + n - 1] - cycles[k] + 1) for k in range(0, len(cycles) - n + 1, n)]


# --- the bench ---------------------------------------------------------------------------

class FFTBench(StreamBench):
    """The FFT DUT, its parameters (from the sidecar) and the frames it is fed."""

    def __init__(self, dut):
        super().__init__(dut, DEFAULTS, idle_inputs=("clear_overflow",))
        params = self.sidecar["params"]
        self.n, self.width = int(params["n"]), int(params["width"])
        self.twiddle_width = int(params["twiddle_width"])
        self.inverse = bool(params["inverse"])
        self.shifts = params.get("shifts")          # None: the core's default, all ones
        self.in_fmt = PayloadFormat(self.sidecar["streams"]["input"])
        self.out_fmt = PayloadFormat(self.sidecar["streams"]["output"])
        self.mask = (1 << self.width) - 1
        self._runs = 0
        record("config", self.cfg)

    def frames(self):
        """``(x, sources)``: every frame ``(frames, n, 2)``, random, each image's, then the
        full-scale ones, and the source of each frame."""
        cfg = self.cfg
        random_count, image_count = default_frames(self.n)
        if cfg["random_frames"] is not None:
            random_count = int(cfg["random_frames"])
        if cfg["image_frames"] is not None:
            image_count = int(cfg["image_frames"])
        rng = np.random.default_rng([self.seed, self.n, self.width, self.twiddle_width,
                                     int(self.inverse)])
        parts = [random_frames(rng, random_count, self.n, self.width)]
        sources = ["random"] * random_count
        for name in cfg["images"]:
            frames = image_frames(name, image_count, self.n, self.width)
            parts.append(frames)
            sources += [name] * len(frames)
        full = int(cfg["full_scale_frames"])
        parts.append(full_scale_frames(rng, full, self.n, self.width))
        sources += ["full_scale"] * full
        return np.concatenate(parts), sources

    def _pack(self, fmt, frames):
        flat = frames.reshape(-1, 2)
        return fmt.pack_many(re=flat[:, 0] & self.mask, im=flat[:, 1] & self.mask)

    def _decode(self, items):
        """Packed output items -> int64 ``(samples, 2)`` signed parts."""
        raw = np.array(items, dtype=np.int64)
        parts = np.stack([raw & self.mask, (raw >> self.width) & self.mask], axis=-1)
        return np.where(parts >= 1 << (self.width - 1), parts - (1 << self.width), parts)

    def _render(self, item):
        re, im = self._decode([item])[0]
        return f"{{re: {re}, im: {im}}}"

    async def run_frames(self, *, stalled, label):
        """Every frame through the DUT, stall-free or with random stalls on both
        streams; checks every sample and the overflow flag; returns the measurements."""
        n = self.n
        x, sources = self.frames()
        want, overflow = golden_fft(x, n=n, width=self.width,
                                    twiddle_width=self.twiddle_width, inverse=self.inverse,
                                    shifts=self.shifts)
        sent, expected = self._pack(self.in_fmt, x), self._pack(self.out_fmt, want)
        self._runs += 1
        seed = self.seed * 1000 + self._runs
        src = snk = None
        if stalled:
            src, snk = self.stall_patterns(self.cfg["idle"], self.cfg["backpressure"])

        def context(k, got):
            frame = k // n
            return (f"n={n}, width={self.width}, twiddle_width={self.twiddle_width}, "
                    f"inverse={self.inverse}; frame {frame} ({sources[frame]}), bin {k % n}",
                    [f"  input sample {k % n} of the frame: "
                     f"{x[frame, k % n].tolist() if frame < len(x) else None}"])

        latency = self.latency
        run = await self.run({"input": sent}, expected, sink="output", label=label,
                             seeds={"input": seed, "output": seed + 500},
                             pauses={"input": src, "output": snk},
                             budget=len(sent) + (latency or 0) + 2 * n, noun="sample",
                             render=self._render, context=context)
        rtl_overflow = int(self.dut.overflow.value)
        assert rtl_overflow == int(overflow), \
            f"{label}: overflow is {rtl_overflow} after the run, the golden model says " \
            f"{int(overflow)}"
        got = self._decode(run.sink.items).reshape(x.shape)
        in_c, out_c = run.sources["input"].cycles, run.sink.cycles
        si, so = run.sources["input"].stats(), run.sink.stats()
        kinds = np.array(sources)
        names = ["random", *self.cfg["images"], "full_scale"]
        sqnr = {name: sqnr_db(got[kinds == name], x[kinds == name], self.inverse)
                for name in names if np.any(kinds == name)}
        images = np.isin(kinds, self.cfg["images"])
        clean = kinds != "full_scale"
        sqnr["image"] = sqnr_db(got[images], x[images], self.inverse) if images.any() else None
        sqnr["run"] = sqnr_db(got[clean], x[clean], self.inverse) if clean.any() else None
        _, clean_overflow = golden_fft(x[clean], n=n, width=self.width,
                                       twiddle_width=self.twiddle_width,
                                       inverse=self.inverse, shifts=self.shifts)
        firsts_in, firsts_out = np.array(in_c[::n]), np.array(out_c[::n])
        patterns = run.patterns
        return {
            "n": n, "width": self.width, "twiddle_width": self.twiddle_width,
            "inverse": self.inverse,
            "frames": {name: int(np.sum(kinds == name)) for name in names},
            "samples": len(sent),
            "idle": patterns["input"].stall_fraction,
            "backpressure": patterns["output"].stall_fraction,
            "source_pause": str(patterns["input"]), "sink_pause": str(patterns["output"]),
            "cycles": so["last_cycle"] - si["first_cycle"] + 1,
            "in_samples_per_cycle": si["beats_per_cycle"],
            "out_samples_per_cycle": so["beats_per_cycle"],
            "in_frame_rate_min": min(_frame_rates(in_c, n)),
            "out_frame_rate_min": min(_frame_rates(out_c, n)),
            "latency_first": so["first_cycle"] - si["first_cycle"],
            "latency_sidecar": latency,
            "latency_frame_max": int(np.max(firsts_out - firsts_in)),
            "sqnr_db": sqnr,
            "sqnr_reference": "numpy.fft.ifft(x)" if self.inverse else "numpy.fft.fft(x) / n",
            "overflow": {"rtl": rtl_overflow, "golden": int(overflow),
                         "golden_run": int(clean_overflow)},
        }


# --- the tests ---------------------------------------------------------------------------

@cocotb.test()
async def stall_free(dut):
    bench = FFTBench(dut)
    res = await bench.run_frames(stalled=False, label="stall-free")
    record("stall_free", res)
    dut._log.info("stall-free: %d frames, %.4f / %.4f samples per cycle in / out, latency "
                  "%d (sidecar %s), SQNR %s", sum(res["frames"].values()),
                  res["in_samples_per_cycle"], res["out_samples_per_cycle"],
                  res["latency_first"], res["latency_sidecar"], res["sqnr_db"])
    assert res["in_samples_per_cycle"] == 1.0 and res["out_samples_per_cycle"] == 1.0, \
        (f"stall-free: {res['in_samples_per_cycle']:.4f} samples per cycle in, "
         f"{res['out_samples_per_cycle']:.4f} out; the core takes and gives one a cycle, "
         f"frames back to back")
    assert res["latency_sidecar"] is None or \
        res["latency_first"] == res["latency_frame_max"] == res["latency_sidecar"], \
        (f"stall-free: {res['latency_first']} cycles first in to first out (worst frame "
         f"{res['latency_frame_max']}), the core's latency is {res['latency_sidecar']}")


@cocotb.test()
async def random_stalls(dut):
    bench = FFTBench(dut)
    res = await bench.run_frames(stalled=True, label="random stalls")
    record("random_stalls", res)
    dut._log.info("random stalls (%s / %s): %d frames in %d cycles, SQNR %s",
                  res["source_pause"], res["sink_pause"], sum(res["frames"].values()),
                  res["cycles"], res["sqnr_db"])
