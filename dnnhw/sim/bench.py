"""The cocotb bench base every testbench is built on.

:class:`StreamBench` holds the DUT, its sidecar and its config (:mod:`dnnhw.sim.tb`),
starts the clock and reset once (:meth:`~StreamBench.start`) and can reset again
(:meth:`~StreamBench.reset`). :meth:`~StreamBench.run` is one run of traffic:

- a :class:`~dnnhw.sim.streams.StreamSource` per input stream and a
  :class:`~dnnhw.sim.streams.StreamSink` on the output, each with its stall pattern
  (:mod:`dnnhw.sim.stalls`) and its seed;
- a :class:`~dnnhw.sim.scoreboard.Scoreboard` that checks every output item as it
  arrives through the comparator hook (:class:`~dnnhw.sim.scoreboard.Exact` by default;
  :class:`~dnnhw.sim.scoreboard.Tolerance` for approximate cores), with the one mismatch
  report;
- a cycle budget: the run fails with a timeout when the output falls short by more than
  ``2 * budget / rate + timeout_cycles`` cycles, where ``budget`` is what the caller
  expects stall-free, ``rate`` the product of the stall patterns' go rates and
  ``timeout_cycles`` the config's slack;
- the drain and extra-beat checks: after the last expected item the run waits
  ``drain_cycles`` (default twice the sidecar's latency plus 8); no further item may
  come out, and every source must have delivered all its beats;
- a tally: every run adds the beats each stream moved to ``stream_beats`` in
  ``results.json`` (per stream name, over every run of the simulation), which the soak
  (``dnnhw sim --soak``) counts.

Config knobs every bench accepts on top of its own (:data:`COMMON_DEFAULTS`):
``timeout_cycles``, ``source_pause`` and ``sink_pause`` (stall-pattern specs for the
bench's stalled runs; ``None`` keeps its ``idle`` / ``backpressure`` probabilities, the
``random`` pattern).
"""

import collections
import math

from cocotb.triggers import ClockCycles

from .scoreboard import Exact, MismatchError, Scoreboard
from .stalls import stall_pattern
from .streams import StreamSink, StreamSource
from .tb import load_config, load_sidecar, record, reset, start


__all__ = ["StreamBench", "Run", "COMMON_DEFAULTS", "tally_beats"]

COMMON_DEFAULTS = {
    "timeout_cycles": 5000,   # slack on top of the cycle budget before a run fails
    "source_pause": None,     # stall pattern of the sources in stalled runs (None: `idle`)
    "sink_pause": None,       # stall pattern of the sink in stalled runs (None: `backpressure`)
}


_BEATS = collections.Counter()   # beats per stream over this simulation's runs


def tally_beats(beats):
    """Add ``{stream: beats}`` to the simulation's ``stream_beats`` record (benches
    without :meth:`StreamBench.run`, such as a memory port's, call it themselves)."""
    _BEATS.update({name: int(n) for name, n in beats.items()})
    record("stream_beats", dict(sorted(_BEATS.items())))


class Run:
    """What one :meth:`StreamBench.run` did: its ``sources`` (by stream name), ``sink``,
    ``scoreboard``, ``timed_out`` (only with ``fail_fast=False``), the stall
    ``patterns`` by stream name, and the ``more_sinks`` / ``more_scoreboards`` of the
    further checked outputs, by name."""

    def __init__(self, sources, sink, scoreboard, patterns, timed_out, more_sinks=None,
                 more_scoreboards=None):
        self.sources = sources
        self.sink = sink
        self.scoreboard = scoreboard
        self.patterns = patterns
        self.timed_out = timed_out
        self.more_sinks = dict(more_sinks or {})
        self.more_scoreboards = dict(more_scoreboards or {})

    @property
    def ok(self):
        return (not self.timed_out and not self.scoreboard.mismatches
                and not any(b.mismatches for b in self.more_scoreboards.values()))


class StreamBench:
    """Base of a cocotb testbench: DUT, sidecar, config, clock and reset, checked runs.

    ``defaults`` are the bench's config knobs; :data:`COMMON_DEFAULTS` are added (a bench
    may override them). ``idle_inputs`` are plain input ports held at 0 during reset.
    """

    def __init__(self, dut, defaults, *, idle_inputs=()):
        self.dut = dut
        self.sidecar = load_sidecar()
        self.cfg = load_config({**COMMON_DEFAULTS, **defaults})
        self.seed = int(self.cfg["seed"])
        self.idle_inputs = tuple(idle_inputs)
        self.clk = None

    @property
    def latency(self):
        """The sidecar's latency (cycles), or ``None``."""
        lat = self.sidecar.get("latency")
        return int(lat) if isinstance(lat, (int, float)) else None

    async def start(self):
        """Start the clock and reset once (later calls do nothing)."""
        if self.clk is None:
            self.clk = await start(self.dut, self.sidecar, idle_inputs=self.idle_inputs)
        return self.clk

    async def reset(self):
        """Reset the DUT again (the stream drivers of earlier runs are stopped)."""
        if self.clk is None:
            await self.start()
        else:
            await reset(self.dut, self.sidecar, idle_inputs=self.idle_inputs)

    def stall_patterns(self, idle, backpressure):
        """``(source_pattern, sink_pattern)`` of a stalled run: the config's
        ``source_pause`` / ``sink_pause`` when given, else the random patterns of the
        probabilities ``idle`` and ``backpressure``."""
        src, snk = self.cfg["source_pause"], self.cfg["sink_pause"]
        return (stall_pattern(idle if src is None else src),
                stall_pattern(backpressure if snk is None else snk))

    async def run(self, inputs, expected, *, label, seeds, pauses=None, sink="o",
                  budget, comparator=None, noun="beat", render=repr, context=None,
                  drain_cycles=None, fail_fast=True, on_transfer=None, unpack=False,
                  more=None):
        """Send ``inputs`` (stream name -> items, packed ints or payload dicts) and check
        the output stream ``sink`` against ``expected``.

        ``seeds`` maps every stream name (inputs and ``sink``) to its driver's seed,
        ``pauses`` to its stall-pattern spec (missing: full rate). ``budget`` is the
        expected stall-free cycle count; ``comparator``, ``noun``, ``render`` and
        ``context`` go to the :class:`~dnnhw.sim.scoreboard.Scoreboard`.
        ``on_transfer(item, cycle)`` sees every output item after the check (in the
        cycle's read-only phase: it may read other outputs). With ``fail_fast=False`` a
        mismatch or a timeout does not raise: the :class:`Run` says what happened.
        ``more`` maps further output streams to their expected items (a core with a
        status stream beside its data): each gets its own sink, stall pattern and seed
        (from ``pauses`` and ``seeds``) and scoreboard, and the run waits for all of them
        (``Run.more_sinks``, ``Run.more_scoreboards``).
        """
        await self.start()
        dut, sidecar = self.dut, self.sidecar
        pauses = dict(pauses or {})
        more = dict(more or {})
        unknown = sorted(set(pauses) - set(inputs) - {sink} - set(more))
        if unknown:
            raise ValueError(f"pauses for unknown stream(s) {', '.join(unknown)}")
        patterns = {name: stall_pattern(pauses.get(name))
                    for name in [*inputs, sink, *more]}
        sources = {name: StreamSource(dut, sidecar, name, pause=patterns[name],
                                      seed=seeds[name])
                   for name in inputs}
        snk = StreamSink(dut, sidecar, sink, pause=patterns[sink], seed=seeds[sink],
                         unpack=unpack)
        board = Scoreboard(expected, comparator=comparator or Exact(), label=label,
                           noun=noun, render=render, context=context, fail_fast=fail_fast)
        more_sinks = {name: StreamSink(dut, sidecar, name, pause=patterns[name],
                                       seed=seeds[name], unpack=unpack) for name in more}
        more_boards = {name: Scoreboard(items, comparator=Exact(), label=f"{label} {name}",
                                        noun=f"{name} beat", fail_fast=fail_fast)
                       for name, items in more.items()}
        for name, extra in more_sinks.items():
            extra.callback = more_boards[name].check

        def check(item, cycle):
            board.check(item, cycle)
            if on_transfer is not None:
                on_transfer(item, cycle)
        snk.callback = check

        rate = math.prod(p.rate for p in patterns.values())
        if rate < 1:
            budget = int(budget / max(1e-3, rate))
        snk.start()
        for extra in more_sinks.values():
            extra.start()
        for src in sources.values():
            src.start()
        for name, items in inputs.items():
            sources[name].send(items)
        timed_out = False
        try:
            await snk.wait_for(len(expected),
                               timeout_cycles=2 * budget + self.cfg["timeout_cycles"])
            for name, extra in more_sinks.items():
                await extra.wait_for(len(more[name]),
                                     timeout_cycles=2 * budget + self.cfg["timeout_cycles"])
        except TimeoutError:
            if fail_fast:
                raise
            timed_out = True
        if drain_cycles is None:
            drain_cycles = 2 * (self.latency if self.latency is not None else 8) + 8
        await ClockCycles(self.clk, drain_cycles)
        for end in (*sources.values(), snk, *more_sinks.values()):
            end.stop()
        tally_beats({name: len(end.cycles) for name, end in
                     [*sources.items(), (sink, snk), *more_sinks.items()]})
        run = Run(sources, snk, board, patterns, timed_out, more_sinks, more_boards)
        if fail_fast:
            board.finish()
            for extra in more_boards.values():
                extra.finish()
            for name, src in sources.items():
                if src.pending:
                    raise MismatchError(
                        f"{label}: the DUT took {len(src.cycles)} of "
                        f"{len(src.cycles) + src.pending} beats on stream {name!r} "
                        f"and stopped")
        return run
