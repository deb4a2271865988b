"""What the three ZVC testbenches share: random frames, the golden words, the runs, the
checks and the measurements.

The cocotb test modules are thin: :mod:`dnnhw.sim.zvc_compress` (windows in, words out),
:mod:`dnnhw.sim.zvc_decompress` (golden-compressed words in, windows out) and
:mod:`dnnhw.sim.zvc_loopback` (windows in, the same windows out). Each runs

``latency``
    one one-window frame into the empty pipeline; the cycles from its input transfer to
    its output transfer, compared with the sidecar's ``latency``.
``throughput``
    stall-free (no idle cycles, sink always ready): per density, ``throughput_windows``
    random windows in frames of ``throughput_frame`` windows; every output beat checked;
    input and output beats per cycle, the bounds the output port and the frame padding
    allow, first-in-to-first-out latency and per-item latency (cycles from the input
    transfer that completes an output item to that item).
``random_stalls``
    the corner-case frames of :func:`corner_frames`, then ``stall_windows`` windows of
    random frames (one of ``max_frame`` windows, the others log-uniform from 1 to
    ``max_frame``; each frame at one density of ``densities``, or one frame in three
    with a density drawn per window), with idle cycles on the source (probability
    ``idle``) and backpressure on the sink (``backpressure``); every output beat checked.
``round_trip`` (loopback only)
    ``round_trip_windows`` more random windows, in chunks of ``round_trip_chunk``, each
    chunk with its own idle and backpressure probabilities drawn from
    ``[0.05, 2 * idle]`` and ``[0.05, 2 * backpressure]``.

Every output beat is compared with the golden model as it arrives (the test fails at
the first wrong beat, naming the frame and input window); after the expected beats, no
further beat may come out. A run fails with a timeout if the DUT stops producing.

Elements: non-zero with probability ``density``; a non-zero value is uniform in
``1 .. 2**W - 1``, and with probability ``corner_values`` one of ``1``, ``2**(W-1)``,
``2**W - 1`` (the all-ones pattern is otherwise never drawn at W = 32).
"""

import math

import numpy as np
from cocotb.triggers import ClockCycles

from dnnhw.golden import zvc as golden

from .streams import StreamSink, StreamSource
from .tb import load_config, load_sidecar, record, start


__all__ = ["DEFAULTS", "ZVCBench", "random_frame", "frame_lengths", "corner_frames"]

DENSITIES = [0.0, 0.01, 0.1, 0.5, 0.9, 1.0]

DEFAULTS = {
    "densities": DENSITIES,
    "throughput_windows": 10000,   # per density, stall-free
    "throughput_frame": 1000,      # windows per frame in the stall-free run
    "stall_windows": 3000,         # random frames under stalls (after the corner cases)
    "max_frame": 2000,             # longest random frame
    "idle": 0.3,                   # source idle probability per item
    "backpressure": 0.3,           # sink not-ready probability per cycle
    "corner_values": 0.05,
    "round_trip_windows": 0,       # loopback: extra random windows under stalls
    "round_trip_chunk": 2500,      # each chunk gets its own idle / backpressure rates
    "timeout_cycles": 5000,        # slack on top of the expected cycles before failing
}


# --- data ------------------------------------------------------------------------------

def random_frame(rng, n_windows, lanes, width, density, corner_values=0.05):
    """``(n_windows, lanes)`` uint64 elements, each non-zero with probability
    ``density`` (a number, or one per window)."""
    top = (1 << width) - 1
    values = rng.integers(1, top, size=(n_windows, lanes), dtype=np.uint64, endpoint=True)
    if corner_values:
        corner = rng.random((n_windows, lanes)) < corner_values
        picks = np.array([1, 1 << (width - 1), top], dtype=np.uint64)
        values[corner] = picks[rng.integers(0, 3, size=int(corner.sum()))]
    density = np.asarray(density, dtype=float)
    if density.ndim:
        density = density.reshape(n_windows, 1)
    keep = rng.random((n_windows, lanes)) < density
    return np.where(keep, values, np.uint64(0))


def frame_lengths(rng, total, max_frame):
    """Frame lengths summing to ``total``: log-uniform in 1..max_frame."""
    lengths = []
    while total > 0:
        length = int(math.exp(rng.uniform(0.0, math.log(max_frame + 1))))
        length = max(1, min(length, max_frame, total))
        lengths.append(length)
        total -= length
    return lengths


def corner_frames(lanes, width):
    """Frames that hit the format's edges: empty and full windows, a single non-zero in
    each end lane, frames whose slots fill their last word exactly, and the all-ones
    pattern."""
    top = (1 << width) - 1
    m = golden.mask_slots(lanes, width)
    zero = np.zeros((1, lanes), dtype=np.uint64)
    full = np.full((1, lanes), top, dtype=np.uint64)
    first = zero.copy(); first[0, 0] = top
    lastlane = zero.copy(); lastlane[0, -1] = 1
    frames = [zero, full, first, lastlane, zero.copy(), full.copy()]
    # N all-zero windows: N*M slots, exactly M words.
    frames.append(np.zeros((lanes, lanes), dtype=np.uint64))
    # Windows whose slots sum to a multiple of N: (N - M) non-zeros -> exactly one word.
    exact = np.zeros((3, lanes), dtype=np.uint64)
    exact[:, :max(lanes - m, 0)] = top
    frames.append(exact)
    # One slot short of / past a word boundary.
    short = np.zeros((2, lanes), dtype=np.uint64)
    short[0, :max(lanes - m - 1, 0)] = 5
    frames.append(short)
    frames.append(np.vstack([full] * 5))
    frames.append(np.vstack([zero, full, zero, full, zero]))
    alternating = np.zeros((4, lanes), dtype=np.uint64)
    alternating[:, ::2] = top
    frames.append(alternating)
    return frames


# --- golden views ----------------------------------------------------------------------

class _Golden:
    """Golden words of a list of frames, flattened, with per-item bookkeeping."""

    def __init__(self, frames, width):
        self.frames = frames
        self.windows = np.vstack(frames)
        self.window_last = np.zeros(len(self.windows), dtype=np.uint64)
        self.words, self.lengths, self.word_last = [], [], []
        self.word_dep = []      # per word: index of the window completing it
        self.window_dep = []    # per window: index of the word holding its last slot
        lanes = self.windows.shape[1]
        m = golden.mask_slots(lanes, width)
        w0 = k0 = 0
        for frame in frames:
            words, last_length = golden.compress_frame(frame, width=width)
            assert np.array_equal(golden.decompress_frame(words, last_length, width=width),
                                  frame), "golden model does not round-trip"
            n_w = len(words)
            slots = m + np.count_nonzero(frame, axis=1)
            cum = np.cumsum(slots)
            total = int(cum[-1])
            for k in range(n_w):
                last_slot = min((k + 1) * lanes, total) - 1
                self.word_dep.append(w0 + int(np.searchsorted(cum, last_slot, side="right")))
            self.window_dep.extend(k0 + (cum - 1) // lanes)
            self.words.append(words)
            self.lengths.extend([lanes] * (n_w - 1) + [last_length])
            self.word_last.extend([0] * (n_w - 1) + [1])
            w0 += len(frame)
            k0 += n_w
            self.window_last[w0 - 1] = 1
        self.words = np.vstack(self.words)
        self.lengths = np.array(self.lengths, dtype=np.uint64)
        self.word_last = np.array(self.word_last, dtype=np.uint64)
        self.word_dep = np.array(self.word_dep)
        self.window_dep = np.array(self.window_dep)
        self.slots = int((m * len(self.windows)) + np.count_nonzero(self.windows))


# --- the bench -------------------------------------------------------------------------

class ZVCBench:
    """One DUT of the ZVC family, its config and its stream formats.

    ``kind`` is ``"compress"``, ``"decompress"`` or ``"loopback"``: what goes in and
    what comes out (windows or words).
    """

    def __init__(self, dut, kind, salt=0):
        self.dut = dut
        self.kind = kind
        self.cfg = load_config(DEFAULTS)
        self.sidecar = load_sidecar()
        params = self.sidecar["params"]
        self.lanes, self.width = int(params["lanes"]), int(params["width"])
        self.m = golden.mask_slots(self.lanes, self.width)
        self.seed = int(self.cfg["seed"])
        self.salt = salt
        # Different data at every parameter point, reproducible from the seed.
        self.rng = np.random.default_rng([self.seed, salt, self.lanes, self.width])
        self.in_words = kind == "decompress"
        self.out_words = kind == "compress"
        self._started = False
        self._runs = 0
        record("config", self.cfg)

    async def start(self):
        if not self._started:
            await start(self.dut, self.sidecar)
            self._started = True

    # items ------------------------------------------------------------------------------

    def _window_items(self, fmt, g):
        return fmt.pack_many(data=g.windows, last=g.window_last)

    def _word_items(self, fmt, g):
        return fmt.pack_many(data=g.words, length=g.lengths, last=g.word_last)

    def frames(self, lengths, densities):
        cv = self.cfg["corner_values"]
        return [random_frame(self.rng, n, self.lanes, self.width, d, cv)
                for n, d in zip(lengths, densities)]

    def mixed_frames(self, total):
        """Random frames of ``total`` windows: one of ``max_frame`` windows, the others
        log-uniform in length, in random order; each frame takes the
        next density of a shuffled cycle through ``densities``, or (one frame in three)
        a density drawn per window, so dense and sparse windows meet inside frames."""
        cfg = self.cfg
        longest = min(cfg["max_frame"], total)
        lengths = [longest] + frame_lengths(self.rng, total - longest, cfg["max_frame"])
        lengths = [lengths[int(i)] for i in self.rng.permutation(len(lengths))]
        choices = list(cfg["densities"])
        order = [choices[int(i)] for i in self.rng.permutation(len(choices))]
        dens = []
        for k, n in enumerate(lengths):
            if self.rng.random() < 1 / 3:
                dens.append(self.rng.choice(choices, size=n))
            else:
                dens.append(order[k % len(order)])
        return self.frames(lengths, dens)

    # one run ----------------------------------------------------------------------------

    async def run(self, frames, *, idle, backpressure, label):
        """Send ``frames`` through the DUT, check every output beat, return the
        measurements."""
        await self.start()
        g = _Golden(frames, self.width)
        self._runs += 1
        seed = self.seed * 1000 + self._runs + 100 * self.salt
        src = StreamSource(self.dut, self.sidecar, "i", idle=idle, seed=seed)
        snk = StreamSink(self.dut, self.sidecar, "o", backpressure=backpressure,
                         seed=seed + 500, unpack=False)
        sent = (self._word_items if self.in_words else self._window_items)(src.format, g)
        expected = (self._word_items if self.out_words else self._window_items)(snk.format, g)

        def check(item, cycle):
            # Fail at the first wrong beat, at its simulation time (for the waves).
            k = len(snk.items) - 1
            if k >= len(expected) or item != expected[k]:
                self._report_mismatch(g, snk.format, snk.items, expected,
                                      f"{label}, cycle {cycle}")
        snk.callback = check
        budget = len(sent) + len(expected)
        if idle or backpressure:
            budget = int(budget / max(1e-3, (1 - idle) * (1 - backpressure)))
        snk.start()
        src.start()
        src.send(sent)
        await snk.wait_for(len(expected), timeout_cycles=2 * budget + self.cfg["timeout_cycles"])
        got = snk.items
        if got != expected:
            self._report_mismatch(g, snk.format, got, expected, label)
        # Nothing more may come out.
        await ClockCycles(src.clk, 2 * self.sidecar_latency() + 8)
        if len(snk.items) != len(expected):
            raise AssertionError(f"{label}: {len(snk.items) - len(expected)} extra output "
                                 f"beat(s) after the expected {len(expected)}")
        src.stop()
        snk.stop()
        return self._measure(g, src, snk, idle=idle, backpressure=backpressure)

    def sidecar_latency(self):
        lat = self.sidecar.get("latency")
        return int(lat) if isinstance(lat, (int, float)) else 8

    def _report_mismatch(self, g, fmt, got, expected, label):
        for k, (a, b) in enumerate(zip(got, expected)):
            if a != b:
                break
        else:
            raise AssertionError(f"{label}: {len(got)} output beats, expected {len(expected)}")
        what = "word" if self.out_words else "window"
        deps = g.word_dep if self.out_words else np.arange(len(g.windows))
        window = int(deps[k]) if k < len(deps) else None
        frame_no = int(np.searchsorted(np.cumsum([len(f) for f in g.frames]), window,
                                       side="right")) if window is not None else None
        raise AssertionError(
            f"{label}: output {what} {k} differs (lanes={self.lanes}, width={self.width}; "
            f"frame {frame_no}, input window {window})\n"
            f"  got      {fmt.unpack(got[k])}\n"
            f"  expected {fmt.unpack(expected[k])}\n"
            f"  window   {g.windows[window].tolist() if window is not None else None}")

    def _measure(self, g, src, snk, *, idle, backpressure):
        si, so = src.stats(), snk.stats()
        in_c, out_c = np.array(src.cycles), np.array(snk.cycles)
        if self.kind == "compress":
            per_item = out_c - in_c[g.word_dep]
        elif self.kind == "decompress":
            per_item = out_c - in_c[g.window_dep]
        else:
            per_item = out_c - in_c
        n_windows, n_words = len(g.windows), len(g.words)
        mean_slots = g.slots / n_windows
        # Ideal rates: the port bound N / mean slots per window, and the same counting
        # each frame's padded last word (what a perfect engine achieves on these frames).
        port_bound = min(1.0, self.lanes / mean_slots)
        frame_bound = n_windows / max(n_windows, n_words)
        res = {
            "windows": n_windows, "words": n_words, "frames": len(g.frames),
            "density": float(np.count_nonzero(g.windows) / g.windows.size),
            "mean_slots_per_window": mean_slots,
            "compression_ratio": n_windows * self.lanes / g.slots,
            "idle": idle, "backpressure": backpressure,
            "in_beats": si["beats"], "out_beats": so["beats"],
            "cycles": so["last_cycle"] - si["first_cycle"] + 1,
            "in_beats_per_cycle": si["beats_per_cycle"],
            "out_beats_per_cycle": so["beats_per_cycle"],
            "port_bound": port_bound,
            "frame_bound": frame_bound,
            "latency_first": so["first_cycle"] - si["first_cycle"],
            "latency_item_min": int(per_item.min()),
            "latency_item_max": int(per_item.max()),
            "latency_item_mean": float(per_item.mean()),
        }
        # The rate on the window side: the decompressor's output, the others' input.
        res["windows_per_cycle"] = (so if self.kind == "decompress" else si)["beats_per_cycle"]
        return res


# --- the tests the modules share ---------------------------------------------------------

async def latency_test(dut, kind):
    bench = ZVCBench(dut, kind, salt=0)
    frame = random_frame(bench.rng, 1, bench.lanes, bench.width, 0.5)
    res = await bench.run([frame], idle=0.0, backpressure=0.0, label="latency")
    measured = res["latency_first"]
    record("latency", {"measured": measured, "sidecar": bench.sidecar.get("latency")})
    claimed = bench.sidecar.get("latency")
    assert claimed is None or measured == claimed, \
        f"one-window frame: {measured} cycles in to out, the sidecar says {claimed}"


async def throughput_test(dut, kind):
    bench = ZVCBench(dut, kind, salt=1)
    cfg = bench.cfg
    total, per_frame = cfg["throughput_windows"], cfg["throughput_frame"]
    out = {}
    for density in cfg["densities"]:
        lengths = [per_frame] * (total // per_frame) + ([total % per_frame] if total % per_frame else [])
        frames = bench.frames(lengths, [density] * len(lengths))
        res = await bench.run(frames, idle=0.0, backpressure=0.0,
                              label=f"stall-free density {density}")
        out[f"{density:g}"] = res
        dut._log.info("density %-5g: in %.4f beats/cycle (port bound %.4f), out %.4f, "
                      "latency first %d, per item %d..%d", density,
                      res["in_beats_per_cycle"], res["port_bound"],
                      res["out_beats_per_cycle"], res["latency_first"],
                      res["latency_item_min"], res["latency_item_max"])
    record("throughput", out)


async def random_stalls_test(dut, kind):
    bench = ZVCBench(dut, kind, salt=2)
    cfg = bench.cfg
    frames = corner_frames(bench.lanes, bench.width) + bench.mixed_frames(cfg["stall_windows"])
    res = await bench.run(frames, idle=cfg["idle"], backpressure=cfg["backpressure"],
                          label="random stalls")
    res["frame_lengths"] = {"min": int(min(len(f) for f in frames)),
                            "max": int(max(len(f) for f in frames))}
    record("random_stalls", res)


async def round_trip_test(dut, kind):
    bench = ZVCBench(dut, kind, salt=3)
    cfg = bench.cfg
    remaining, chunk = cfg["round_trip_windows"], cfg["round_trip_chunk"]
    done, cycles, runs = 0, 0, 0
    while remaining > 0:
        n = min(chunk, remaining)
        # Stalls on both sides, at a fresh mix of rates for every chunk.
        idle = float(bench.rng.uniform(0.05, max(0.06, 2 * cfg["idle"])))
        bp = float(bench.rng.uniform(0.05, max(0.06, 2 * cfg["backpressure"])))
        res = await bench.run(bench.mixed_frames(n), idle=idle, backpressure=bp,
                              label=f"round trip chunk {runs}")
        done += res["windows"]
        cycles += res["cycles"]
        runs += 1
        remaining -= n
    record("round_trip", {"windows": done, "cycles": cycles, "chunks": runs})
