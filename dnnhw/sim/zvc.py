"""The ZVC testbench: one cocotb module for the three ZVC cores, keyed on the sidecar's
``core``: ``zvc-compress`` (windows in, golden-compressed words out), ``zvc-decompress``
(golden-compressed words in, the original windows out) and ``zvc-loopback`` (windows in,
the same windows out). Built on :class:`dnnhw.sim.bench.StreamBench`.

Tests and what they record in ``results.json``:

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
    the corner-case frames of :func:`~dnnhw.sim.zvc_data.corner_frames`, then
    ``stall_windows`` windows of random frames (one of ``max_frame`` windows, the others
    log-uniform from 1 to ``max_frame``; each frame at one density of ``densities``, or
    one frame in three with a density drawn per window), with idle cycles on the source
    (probability ``idle``) and backpressure on the sink (``backpressure``), or the stall
    patterns ``source_pause`` / ``sink_pause`` when the config names them (``idle`` and
    ``backpressure`` then record the patterns' mean stall fractions); every output beat
    checked.
``round_trip`` (loopback only; skipped on the other cores)
    ``round_trip_windows`` more random windows, in chunks of ``round_trip_chunk``, each
    chunk with its own idle and backpressure probabilities drawn from
    ``[0.05, 2 * idle]`` and ``[0.05, 2 * backpressure]``.
``malformed`` (decompressor only; skipped on the other cores)
    The malformed-input contract (``dnnhw.golden.zvc``, README "The ZV format"). Every
    hand-made case of :func:`~dnnhw.sim.zvc_data.malformed_cases` (each malformed class
    that can occur at this geometry, and two well-formed controls) and
    ``malformed_streams`` random streams of :func:`~dnnhw.sim.zvc_data.corrupted_stream`
    (``malformed_frames`` frames each, most of them damaged), each after a reset and
    under each stall pattern of ``malformed_patterns`` (full rate, random on both sides,
    bursty, a slow sink, a gappy source). A case is preceded by a well-formed one-window
    frame and followed by a well-formed frame (recovery). Compared: the output windows
    with ``last``, the ``error`` output at every output transfer and after the stream,
    every input beat taken; across the patterns and against
    ``decompress_stream(..., malformed="hardware")``. The test fails if any differ, after
    recording ``malformed``::

        {"patterns": [pattern names],
         "configs_note": str,           # geometry, what each run holds, classes omitted
         "simulator": str,              # cocotb's name and version of it
         "cases": [{"class": str,       # a MALFORMED_CLASSES entry or "well-formed"
                    "description": str, # the case and its words
                    "golden": str,      # "well-formed" or the ZVCFormatError message
                    "out_windows": int, # windows the RTL emitted for the case's frame(s)
                    "last_at": [int],   # which of them carry last (0-based)
                    "error": 0 or 1,    # the RTL's sticky error after the case
                    "identical_across_patterns": bool,
                    "matches_golden": bool,   # every pattern, golden hardware mode
                    "recovered": bool}],      # the frame after it decoded intact
         "random": {"streams": int, "words": int, "frames": int,
                    "malformed_frames": int, "patterns": [pattern names],
                    "all_identical": bool, "all_match_golden": bool}}

    :func:`dnnhw.report.zvc.malformed_rows` turns it into table rows (class, golden
    verdict, what the RTL emits).

Every output beat is compared with the golden model as it arrives (the test fails at
the first wrong beat, naming the frame and input window); after the expected beats, no
further beat may come out, and every input beat must have been taken. A run fails with a
timeout if the DUT stops producing.
"""

import json
import os

import cocotb
import numpy as np

from cocotb.triggers import ReadOnly, RisingEdge

from dnnhw.golden import zvc as golden

from .bench import StreamBench
from .runner import ENV_SIDECAR
from .stalls import stall_pattern
from .streams import PayloadFormat
from .tb import record
from .zvc_data import (corner_frames, corrupted_stream, frame_lengths, frames_stream,
                       malformed_cases, random_frame)


__all__ = ["DEFAULTS", "KINDS", "ZVCBench", "random_frame", "frame_lengths",
           "corner_frames", "MALFORMED_PATTERNS"]

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
    "malformed_patterns": None,    # decompressor: stall patterns (None: MALFORMED_PATTERNS)
    "malformed_streams": 20,       # decompressor: random corrupted streams
    "malformed_frames": 6,         # decompressor: frames per random stream
}

#: The stall patterns every malformed case and stream runs under: name, source, sink.
MALFORMED_PATTERNS = [
    {"name": "full rate", "source": "full", "sink": "full"},
    {"name": "random", "source": {"name": "random", "probability": 0.3},
     "sink": {"name": "random", "probability": 0.3}},
    {"name": "bursty", "source": {"name": "bursts", "go": 4, "stall": 3},
     "sink": {"name": "bursts", "go": 5, "stall": 4}},
    {"name": "slow sink", "source": "full", "sink": {"name": "every", "n": 4}},
    {"name": "gappy source", "source": {"name": "every", "n": 2},
     "sink": {"name": "random", "probability": 0.5}},
]

#: Catalog core -> what goes in and out.
KINDS = {"zvc-compress": "compress", "zvc-decompress": "decompress",
         "zvc-loopback": "loopback"}


def _core_under_test():
    """The sidecar's ``core`` (``None`` outside a simulation run)."""
    path = os.environ.get(ENV_SIDECAR)
    if not path:
        return None
    try:
        with open(path) as f:
            return json.load(f).get("core")
    except (OSError, ValueError):
        return None


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

class ZVCBench(StreamBench):
    """One DUT of the ZVC family, its config and its stream formats.

    ``kind`` (``"compress"``, ``"decompress"`` or ``"loopback"``: what goes in and what
    comes out, windows or words) is read from the sidecar's ``core``.
    """

    def __init__(self, dut, salt=0):
        super().__init__(dut, DEFAULTS)
        core = self.sidecar.get("core")
        if core not in KINDS:
            raise ValueError(f"the ZVC testbench runs {', '.join(KINDS)}; the sidecar's "
                             f"core is {core!r}")
        self.kind = KINDS[core]
        params = self.sidecar["params"]
        self.lanes, self.width = int(params["lanes"]), int(params["width"])
        self.m = golden.mask_slots(self.lanes, self.width)
        self.salt = salt
        # Different data at every parameter point, reproducible from the seed.
        self.rng = np.random.default_rng([self.seed, salt, self.lanes, self.width])
        self.in_words = self.kind == "decompress"
        self.out_words = self.kind == "compress"
        self._runs = 0
        record("config", self.cfg)

    def sidecar_latency(self):
        return self.latency if self.latency is not None else 8

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

    async def run_frames(self, frames, *, idle=0.0, backpressure=0.0, label,
                         source_pause=None, sink_pause=None):
        """Send ``frames`` through the DUT, check every output beat, return the
        measurements. Stalls: the ``random`` patterns of ``idle`` and ``backpressure``,
        or the patterns ``source_pause`` / ``sink_pause``."""
        g = _Golden(frames, self.width)
        self._runs += 1
        seed = self.seed * 1000 + self._runs + 100 * self.salt
        src_pat = stall_pattern(idle if source_pause is None else source_pause)
        snk_pat = stall_pattern(backpressure if sink_pause is None else sink_pause)
        i_fmt = self.format("i")
        o_fmt = self.format("o")
        sent = (self._word_items if self.in_words else self._window_items)(i_fmt, g)
        expected = (self._word_items if self.out_words else self._window_items)(o_fmt, g)
        what = "word" if self.out_words else "window"
        deps = g.word_dep if self.out_words else np.arange(len(g.windows))
        ends = np.cumsum([len(f) for f in g.frames])

        def context(k, got):
            window = int(deps[k]) if k < len(deps) else None
            frame_no = (int(np.searchsorted(ends, window, side="right"))
                        if window is not None else None)
            return (f"lanes={self.lanes}, width={self.width}; frame {frame_no}, "
                    f"input window {window}",
                    [f"  window   {g.windows[window].tolist() if window is not None else None}"])

        run = await self.run(
            {"i": sent}, expected, label=label, seeds={"i": seed, "o": seed + 500},
            pauses={"i": src_pat, "o": snk_pat}, budget=len(sent) + len(expected),
            noun=what, render=o_fmt.unpack, context=context,
            drain_cycles=2 * self.sidecar_latency() + 8)
        res = self._measure(g, run.sources["i"], run.sink, idle=src_pat.stall_fraction,
                            backpressure=snk_pat.stall_fraction)
        res["source_pause"], res["sink_pause"] = str(src_pat), str(snk_pat)
        return res

    # malformed input -------------------------------------------------------------------

    async def run_stream(self, stream, *, pattern, seed, label):
        """One compressed ``stream`` (:class:`~dnnhw.sim.zvc_data.Stream`) into the
        decompressor after a reset, under ``pattern`` (a :data:`MALFORMED_PATTERNS`
        entry). Returns ``(outcome, expected, run)``: what came out (windows with last as
        packed ints, ``error`` at each transfer and after, all input beats taken), what the
        golden hardware mode says, the :class:`~dnnhw.sim.bench.Run`."""
        await self.reset()
        d = stream.decode(self.width)
        i_fmt, o_fmt = self.format("i"), self.format("o")
        sent = i_fmt.pack_many(data=stream.words, length=stream.lengths, last=stream.lasts)
        expected = {"windows": o_fmt.pack_many(data=d.windows, last=d.last.astype(np.uint64)),
                    "error_at": d.error_at.astype(int).tolist(), "error": int(d.error),
                    "all_taken": True}
        seen_error = []

        def sample(item, cycle):
            seen_error.append(int(self.dut.error.value))
        run = await self.run(
            {"i": sent}, expected["windows"], label=label, seeds={"i": seed, "o": seed + 1},
            pauses={"i": pattern["source"], "o": pattern["sink"]},
            budget=len(sent) + len(expected["windows"]), noun="window",
            render=o_fmt.unpack, fail_fast=False, on_transfer=sample,
            drain_cycles=2 * self.sidecar_latency() + 8)
        await ReadOnly()
        error_after = int(self.dut.error.value)
        await RisingEdge(self.clk)
        outcome = {"windows": list(run.sink.items), "error_at": seen_error,
                   "error": error_after, "all_taken": run.sources["i"].pending == 0}
        return outcome, expected, run

    async def malformed(self):
        """The ``malformed`` test's runs; returns ``(record, failures)``."""
        cfg = self.cfg
        patterns = cfg["malformed_patterns"] or MALFORMED_PATTERNS
        names = [p["name"] for p in patterns]
        n, w = self.lanes, self.width
        before = frames_stream([random_frame(self.rng, 1, n, w, 0.5)], w)
        after = frames_stream([random_frame(self.rng, 3, n, w, 0.5)], w)
        o_fmt = self.format("o")
        failures = []
        rows = []
        seeds = iter(range(self.seed * 100_000 + 4_000, self.seed * 100_000 + 99_999, 2))
        recovery = len(after.decode(w).windows)

        async def under_all(stream, label):
            outcomes = []
            for pattern in patterns:
                outcome, expected, run = await self.run_stream(
                    stream, pattern=pattern, seed=next(seeds),
                    label=f"{label}, {pattern['name']}")
                outcomes.append(outcome)
                if outcome != expected:
                    failures.append(self._malformed_report(label, pattern, outcome,
                                                           expected, run, o_fmt))
            identical = all(o == outcomes[0] for o in outcomes)
            return outcomes, identical, expected

        cases = malformed_cases(n, w)
        for c, case in enumerate(cases):
            stream = before + case.stream + after
            outcomes, identical, expected = await under_all(
                stream, f"case {c} ({case.cls}: {case.description})")
            first = outcomes[0]
            lasts = [o_fmt.unpack(v)["last"] for v in first["windows"]]
            # The RTL's frames: split at its last bits; the case's are between the first
            # (well-formed, one window) and the last (recovery).
            ends = [k for k, last in enumerate(lasts) if last]
            own = sum(case.stream.lasts)
            start = ends[0] + 1 if ends else 0
            stop = ends[own] + 1 if len(ends) > own else len(lasts)
            windows = first["windows"][start:stop]
            rows.append({
                "class": case.cls, "description": case.description,
                "golden": case.stream.verdict(w),
                "out_windows": len(windows),
                "last_at": [k for k, last in enumerate(lasts[start:stop]) if last],
                "error": first["error"],
                "identical_across_patterns": identical,
                "matches_golden": all(o == expected for o in outcomes),
                "recovered": all(o["windows"][-recovery:] == expected["windows"][-recovery:]
                                 for o in outcomes),
            })

        streams = [corrupted_stream(self.rng, n, w, frames=cfg["malformed_frames"])[0]
                   for _ in range(cfg["malformed_streams"])]
        all_identical = all_match = True
        frames = bad_frames = words = 0
        for k, stream in enumerate(streams):
            outcomes, identical, expected = await under_all(stream, f"random stream {k}")
            all_identical &= identical
            all_match &= all(o == expected for o in outcomes)
            d = stream.decode(w)
            frames += len(d.malformed)
            bad_frames += sum(d.malformed)
            words += len(stream)
        omitted = [cls for cls in golden.MALFORMED_CLASSES
                   if cls not in {case.cls for case in cases}]
        record_ = {
            "patterns": names,
            "configs_note": (
                f"lanes {n} x width {w} (M = {self.m} mask slot(s)): each case and "
                f"stream after a reset, a case between two well-formed frames, under "
                f"every pattern"
                + (f"; cannot occur here: {', '.join(omitted)}" if omitted else "")),
            "simulator": f"{cocotb.SIM_NAME} {cocotb.SIM_VERSION}",
            "cases": rows,
            "random": {"streams": len(streams), "words": words, "frames": frames,
                       "malformed_frames": bad_frames, "patterns": names,
                       "all_identical": bool(all_identical),
                       "all_match_golden": bool(all_match)},
        }
        return record_, failures

    def _malformed_report(self, label, pattern, got, expected, run, fmt):
        if run.timed_out:
            return f"{label}: timed out ({len(got['windows'])} of " \
                   f"{len(expected['windows'])} windows)"
        if not got["all_taken"]:
            return f"{label}: the decompressor stopped taking input"
        if run.scoreboard.mismatches:
            return run.scoreboard.mismatches[0][1]
        if len(got["windows"]) != len(expected["windows"]):
            return f"{label}: {len(got['windows'])} windows, expected {len(expected['windows'])}"
        for k, (a, b) in enumerate(zip(got["error_at"], expected["error_at"])):
            if a != b:
                return f"{label}: error was {a} at output window {k}, the contract says {b}"
        return f"{label}: error {got['error']} after the stream, the contract says " \
               f"{expected['error']}"

    def format(self, name):
        """The :class:`~dnnhw.sim.streams.PayloadFormat` of stream ``name``."""
        return PayloadFormat(self.sidecar["streams"][name])

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


# --- the tests -------------------------------------------------------------------------

@cocotb.test()
async def latency(dut):
    bench = ZVCBench(dut, salt=0)
    frame = random_frame(bench.rng, 1, bench.lanes, bench.width, 0.5)
    res = await bench.run_frames([frame], label="latency")
    measured = res["latency_first"]
    claimed = bench.sidecar.get("latency")
    record("latency", {"measured": measured, "sidecar": claimed})
    assert claimed is None or measured == claimed, \
        f"one-window frame: {measured} cycles in to out, the sidecar says {claimed}"


@cocotb.test()
async def throughput(dut):
    bench = ZVCBench(dut, salt=1)
    cfg = bench.cfg
    total, per_frame = cfg["throughput_windows"], cfg["throughput_frame"]
    out = {}
    for density in cfg["densities"]:
        lengths = [per_frame] * (total // per_frame) + ([total % per_frame] if total % per_frame else [])
        frames = bench.frames(lengths, [density] * len(lengths))
        res = await bench.run_frames(frames, label=f"stall-free density {density}")
        out[f"{density:g}"] = res
        dut._log.info("density %-5g: in %.4f beats/cycle (port bound %.4f), out %.4f, "
                      "latency first %d, per item %d..%d", density,
                      res["in_beats_per_cycle"], res["port_bound"],
                      res["out_beats_per_cycle"], res["latency_first"],
                      res["latency_item_min"], res["latency_item_max"])
    record("throughput", out)


@cocotb.test()
async def random_stalls(dut):
    bench = ZVCBench(dut, salt=2)
    cfg = bench.cfg
    frames = corner_frames(bench.lanes, bench.width) + bench.mixed_frames(cfg["stall_windows"])
    src, snk = bench.stall_patterns(cfg["idle"], cfg["backpressure"])
    res = await bench.run_frames(frames, source_pause=src, sink_pause=snk,
                                 label="random stalls")
    res["frame_lengths"] = {"min": int(min(len(f) for f in frames)),
                            "max": int(max(len(f) for f in frames))}
    record("random_stalls", res)


@cocotb.skipif(_core_under_test() != "zvc-loopback", reason="loopback only")
@cocotb.test()
async def round_trip(dut):
    bench = ZVCBench(dut, salt=3)
    cfg = bench.cfg
    remaining, chunk = cfg["round_trip_windows"], cfg["round_trip_chunk"]
    done, cycles, runs = 0, 0, 0
    while remaining > 0:
        n = min(chunk, remaining)
        # Stalls on both sides, at a fresh mix of rates for every chunk.
        idle = float(bench.rng.uniform(0.05, max(0.06, 2 * cfg["idle"])))
        bp = float(bench.rng.uniform(0.05, max(0.06, 2 * cfg["backpressure"])))
        res = await bench.run_frames(bench.mixed_frames(n), idle=idle, backpressure=bp,
                                     label=f"round trip chunk {runs}")
        done += res["windows"]
        cycles += res["cycles"]
        runs += 1
        remaining -= n
    record("round_trip", {"windows": done, "cycles": cycles, "chunks": runs})


@cocotb.skipif(_core_under_test() != "zvc-decompress", reason="decompressor only")
@cocotb.test()
async def malformed(dut):
    bench = ZVCBench(dut, salt=4)
    result, failures = await bench.malformed()
    record("malformed", result)
    cases = result["cases"]
    dut._log.info("malformed: %d cases x %d patterns, %d random streams (%d words): "
                  "%d failure(s)", len(cases), len(result["patterns"]),
                  result["random"]["streams"], result["random"]["words"], len(failures))
    assert not failures, f"{len(failures)} malformed-input run(s) break the contract; " \
                         f"the first:\n{failures[0]}"
