"""SpectralMAC (Python simulator) against a NumPy model written here from
``docs/bandlimit-conv.md`` (sections 2, 3 steps 2-5, 4, 5): every output sample exact,
whatever the stalls on the three streams; bank ping-pong over tiles back to back; the
mirrored bins; the sticky overflow flag; the filter loading rules; the dropped bins
passing at one a cycle while the multiplier works, one op and one readout sample a
cycle, the stall-free tile period of section 6; the kept-bin queue's depth; the latency;
the accumulator hazard's worst case from a full queue; the parameter errors."""

import random
import re

import numpy as np
import pytest
from amaranth.back import rtlil, verilog
from amaranth.sim import Simulator

from dnnhw.rtl import spectral_mac
from dnnhw.rtl.spectral_mac import SpectralMAC
from dnnhw.spec.bandlimit import kept_half_width


# --- The model ---------------------------------------------------------------------------

class Layout:
    """The contract's bins of one configuration, from a loop over the stream positions:
    ``kept``, ``mirrored`` and ``word`` (the storage index) per position, ``words`` (per
    filter)."""

    def __init__(self, dims, n, compression_rate):
        half = kept_half_width(n, dims, compression_rate)
        axis = [k for k in range(n) if k <= half or k >= n - half]    # increasing k
        index = {k: i for i, k in enumerate(axis)}
        rows = len(axis)
        columns = len([k for k in axis if k <= n // 2])
        self.words = columns * (rows if dims == 2 else 1)
        self.kept, self.mirrored, self.word = [], [], []
        for p in range(n ** dims):
            k1, k2 = (p % n, p // n) if dims == 2 else (0, p)
            kept = k2 in index and (dims == 1 or k1 in index)
            mirrored = kept and k2 > n // 2
            if mirrored:                      # the word of (-k1 mod n, n - k2), conjugated
                k1, k2 = (-k1) % n, n - k2
            word = (k2 if dims == 1 else k2 * rows + index[k1]) if kept else -1
            self.kept.append(kept)
            self.mirrored.append(mirrored)
            self.word.append(word)


def model(dut, tiles, filter_sets):
    """``(outputs, overflow, mirrored_used)``: outputs ``(tiles, out_channels, bins, 2)``;
    tile ``t`` of ``tiles`` ``(tiles, in_channels, bins, 2)`` uses
    ``filter_sets[t]`` ``(out_channels, in_channels, words, 2)``. ``mirrored_used``
    counts mirrored kept bins with nonzero data and coefficient."""
    layout = Layout(dut.dims, dut.n, dut.compression_rate)
    shift, top = dut.spectrum_shift, 1 << (dut.width - 1)
    outputs = np.zeros((len(tiles), dut.out_channels, dut.n ** dut.dims, 2), np.int64)
    overflow, mirrored_used = False, 0
    for t, (x, f) in enumerate(zip(tiles, filter_sets)):
        for p in range(dut.n ** dut.dims):
            if not layout.kept[p]:
                continue
            w = f[:, :, layout.word[p]].astype(np.int64).copy()   # (out, in, 2)
            if layout.mirrored[p]:
                w[..., 1] = -w[..., 1]
                mirrored_used += int(np.any(x[:, p] != 0) and np.any(w != 0))
            xr, xi = x[:, p, 0].astype(np.int64), x[:, p, 1].astype(np.int64)
            a_re = (xr * w[..., 0] - xi * w[..., 1]).sum(axis=1)
            a_im = (xr * w[..., 1] + xi * w[..., 0]).sum(axis=1)
            for part, a in ((0, a_re), (1, a_im)):
                rounded = (a + (1 << (shift - 1))) >> shift if shift else a
                clipped = np.clip(rounded, -top, top - 1)
                overflow |= bool(np.any(clipped != rounded))
                outputs[t, :, p, part] = clipped
    return outputs, overflow, mirrored_used


def _data(rng, shape, width, scale=1.0):
    top = 1 << (width - 1)
    lim = max(1, int(top * scale))
    return rng.integers(-min(lim, top), min(lim, top - 1) + 1, size=shape).astype(np.int64)


def _tiles(dut, rng, count, scale=1.0):
    return _data(rng, (count, dut.in_channels, dut.n ** dut.dims, 2), dut.width, scale)


def _filters(dut, rng, scale=1.0):
    return _data(rng, (dut.out_channels, dut.in_channels, dut.words_per_filter, 2),
                 dut.coefficient_width, scale)


# --- The driver --------------------------------------------------------------------------

class Run:
    """What :func:`_run` saw: ``out`` (output pairs in order); the cycles of the transfers
    ``in_cycles``, ``filter_cycles``, ``out_cycles``, and ``op_cycles``, those where an op
    issued (the component's ``_issue``: the multiplier is inside, not on a port); per
    cycle ``loaded`` (``filters_loaded``), ``in_ready`` and ``overflows``; ``overflow`` at
    the end; ``cycles``."""


def _run(dut, phases, *, p_input=1.0, p_filter=1.0, p_output=1.0, accept=None, seed=0,
         serialize=True, clear=None):
    """Drive ``phases`` (a list of ``("filters", set)`` with a set ``(out, in, words, 2)``
    and ``("tile", x)`` with ``x`` ``(in, bins, 2)``) into ``dut`` and collect every
    output sample.

    Each source offers its next beat with probability ``p_input`` / ``p_filter`` when it
    holds none (a beat held stays valid, its payload unchanged, until taken; while it
    holds none the payload is random); the sink is ready with probability ``p_output``,
    or when ``accept(cycle)``. With ``serialize`` a phase's beats are offered only once
    every beat of the phases before is taken; without, each stream goes through its own
    phases in order, independently of the other. Asserts the stream rules on the output
    (valid and payload hold until the transfer) and that nothing more comes out.
    ``clear(cycle)`` drives ``clear_overflow``.
    """
    rng = random.Random(seed)
    beats = {"filters": [], "input": []}        # (phase, payload)
    for phase, (kind, values) in enumerate(phases):
        stream = "filters" if kind == "filters" else "input"
        for row in np.asarray(values).reshape(-1, 2).tolist():
            beats[stream].append((phase, {"re": row[0], "im": row[1]}))
    expected_out = dut.out_channels * dut.n ** dut.dims * sum(
        kind == "tile" for kind, _ in phases)
    ports = {"filters": dut.filters, "input": dut.input}
    chance = {"filters": p_filter, "input": p_input}
    bits = {s: len(port.payload.as_value()) for s, port in ports.items()}
    run = Run()
    run.out, run.out_cycles, run.loaded, run.in_ready = [], [], [], []
    run.overflows, run.op_cycles = [], []
    cycles = {"filters": [], "input": []}
    limit = 40 * (len(beats["input"]) + len(beats["filters"]) + expected_out) + 2000

    async def bench(ctx):
        sent = {"filters": 0, "input": 0}
        holding = {"filters": False, "input": False}
        held_out, cycle = None, 0
        while (len(run.out) < expected_out or sent["input"] < len(beats["input"])
               or sent["filters"] < len(beats["filters"])):
            # the first phase with a beat not yet taken
            current_phase = min((beats[s][sent[s]][0] for s in beats
                              if sent[s] < len(beats[s])), default=len(phases))
            for s, port in ports.items():
                if sent[s] < len(beats[s]) and not holding[s]:
                    phase, payload = beats[s][sent[s]]
                    if (not serialize or phase == current_phase) and rng.random() < chance[s]:
                        holding[s] = True
                        ctx.set(port.payload, payload)
                if not holding[s]:
                    ctx.set(port.payload.as_value(), rng.getrandbits(bits[s]))
                ctx.set(port.valid, holding[s])
            ready = accept(cycle) if accept is not None else rng.random() < p_output
            ctx.set(dut.output.ready, ready)
            if clear is not None:
                ctx.set(dut.clear_overflow, clear(cycle))
            run.overflows.append(ctx.get(dut.overflow))
            run.loaded.append(ctx.get(dut.filters_loaded))
            run.in_ready.append(ctx.get(dut.input.ready))
            if ctx.get(dut._issue):
                run.op_cycles.append(cycle)
            for s, port in ports.items():
                if holding[s] and ctx.get(port.ready):
                    holding[s] = False
                    sent[s] += 1
                    cycles[s].append(cycle)
            valid = ctx.get(dut.output.valid)
            pair = (ctx.get(dut.output.payload.re), ctx.get(dut.output.payload.im))
            if held_out is not None:
                assert valid and pair == held_out, \
                    f"cycle {cycle}: output changed before its transfer"
            held_out = None
            if valid:
                if ready:
                    run.out.append(pair)
                    run.out_cycles.append(cycle)
                else:
                    held_out = pair
            await ctx.tick()
            cycle += 1
            assert cycle < limit, (f"stuck after {cycle} cycles: {sent} sent, "
                                   f"{len(run.out)} of {expected_out} out")
        # nothing more comes out
        for _ in range(dut.latency + 4):
            ctx.set(dut.output.ready, 1)
            assert not ctx.get(dut.output.valid), "an output sample too many"
            await ctx.tick()
        run.overflow = ctx.get(dut.overflow)
        run.cycles = cycle

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    run.in_cycles, run.filter_cycles = cycles["input"], cycles["filters"]
    return run


def _assert_outputs(run, want):
    assert len(run.out) == want.size // 2, f"{len(run.out)} samples out"
    got = np.array(run.out, dtype=np.int64).reshape(want.shape)
    for t, o in np.ndindex(want.shape[:2]):
        bad = np.argwhere(np.any(got[t, o] != want[t, o], axis=-1)).ravel()
        assert bad.size == 0, (f"tile {t}, output channel {o}: positions "
                               f"{bad[:8].tolist()} differ: got "
                               f"{got[t, o][bad[:4]].tolist()}, want "
                               f"{want[t, o][bad[:4]].tolist()}")


def _check(dut, run, tiles, filter_sets):
    """Every output exact and the flag at the end the model's; a 2D run must have
    multiplied mirrored bins with data. Returns the model's outputs."""
    want, overflow, mirrored_used = model(dut, tiles, filter_sets)
    _assert_outputs(run, want)
    assert bool(run.overflow) == overflow
    if dut.dims == 2:
        assert mirrored_used > 0, "no mirrored bin with data in this test"
    return want


def _mac(dims, n, c, in_channels, out_channels, width=12, coefficient_width=10,
         spectrum_shift=None):
    if spectrum_shift is None:
        spectrum_shift = coefficient_width - 1
    return SpectralMAC(dims=dims, n=n, in_channels=in_channels, out_channels=out_channels,
                       compression_rate=c, width=width, coefficient_width=coefficient_width,
                       spectrum_shift=spectrum_shift)


def _one_set(f, x):
    return [("filters", f)] + [("tile", tile) for tile in x]


# --- Exact against the model, with stalls ------------------------------------------------

@pytest.mark.parametrize("dims, n, c, in_channels, out_channels, stalls, seed", [
    (1, 8, 0, 1, 1, (1.0, 1.0, 1.0), 0),
    (1, 8, 50, 2, 3, (0.7, 0.8, 0.6), 1),
    (1, 16, 25, 3, 2, (0.5, 0.9, 0.8), 2),
    (1, 16, 90, 3, 1, (0.8, 0.6, 0.4), 3),
    (2, 8, 0, 2, 2, (0.8, 0.7, 0.7), 4),
    (2, 8, 50, 1, 3, (0.6, 0.5, 0.9), 5),
    (2, 16, 90, 3, 2, (0.9, 0.8, 0.5), 6),
    (2, 16, 75, 2, 1, (0.7, 0.9, 0.7), 7),
], ids=lambda v: str(v))
def test_matches_model(dims, n, c, in_channels, out_channels, stalls, seed):
    dut = _mac(dims, n, c, in_channels, out_channels)
    rng = np.random.default_rng(seed)
    f, x = _filters(dut, rng), _tiles(dut, rng, 3)
    p_input, p_filter, p_output = stalls
    run = _run(dut, _one_set(f, x), p_input=p_input, p_filter=p_filter, p_output=p_output,
               seed=seed)
    want = _check(dut, run, x, [f] * len(x))
    # the zero-fill: positions that are not kept are 0, and some are (unless c = 0)
    kept = np.array(Layout(dims, n, c).kept)
    assert np.all(want[:, :, ~kept] == 0) and (c == 0) == kept.all()


@pytest.mark.parametrize("seed", range(6))
def test_random_configurations_with_random_stalls(seed):
    # Widths, rates and channel counts drawn per seed (2D rates that keep mirrored
    # bins); the shift near the one that keeps full-scale data at full scale, so some
    # values saturate and most do not.
    pick = random.Random(100 + seed)
    dims = pick.choice((1, 2))
    n = pick.choice((8, 16))
    while True:
        c = pick.choice((0, 10, 33.3, 50, 60, 75, 90, 99))
        layout = Layout(dims, n, c)
        if dims == 1 or any(layout.mirrored):
            break
    width, coefficient_width = pick.choice((8, 12, 16, 24)), pick.choice((8, 13, 18))
    dut = SpectralMAC(dims=dims, n=n, in_channels=pick.randint(1, 3),
                      out_channels=pick.randint(1, 3), compression_rate=c, width=width,
                      coefficient_width=coefficient_width,
                      spectrum_shift=pick.randint(coefficient_width - 2,
                                                  coefficient_width + 2))
    rng = np.random.default_rng(seed)
    f, x = _filters(dut, rng), _tiles(dut, rng, 3)
    run = _run(dut, _one_set(f, x), p_input=pick.uniform(0.4, 1), seed=seed,
               p_filter=pick.uniform(0.4, 1), p_output=pick.uniform(0.3, 1))
    # _check asserts every output sample against the test's NumPy model, in order, and
    # the overflow flag.
    _check(dut, run, x, [f] * len(x))


def test_long_output_stalls_fill_both_banks_and_the_queue_and_hold_the_input():
    # The sink is ready in bursts: both banks fill, the multiplier waits for a bank while
    # the queue fills with the next tile's kept bins, then the input waits; nothing is
    # lost.
    dut = _mac(2, 8, 50, 2, 2)
    rng = np.random.default_rng(12)
    f, x = _filters(dut, rng), _tiles(dut, rng, 5)
    run = _run(dut, _one_set(f, x), accept=lambda cycle: (cycle // 60) % 4 == 3, seed=12)
    _check(dut, run, x, [f] * len(x))
    assert max(np.diff(run.op_cycles)) > dut.readout_cycles, "no op waited for a bank"
    assert max(_in_gaps(run)) > dut.readout_cycles, "the input never waited"
    assert _queue_peak(dut, run) == dut.queue_depth


def test_layout_of_the_model_matches_the_contracts_counts():
    # The published (2m + 1) x (m + 1) block and the kept counts, by hand.
    assert Layout(2, 8, 0).words == 8 * 5 and sum(Layout(2, 8, 0).kept) == 64
    assert Layout(2, 16, 90).words == 3 * 2 and sum(Layout(2, 16, 90).kept) == 9
    assert Layout(1, 16, 25).words == 6 and sum(Layout(1, 16, 25).kept) == 11
    assert sum(Layout(1, 8, 90).kept) == 1 and Layout(1, 8, 90).words == 1
    # mirrored 1D bin k uses word n - k; 2D bin (1, 15) of n = 16 at c = 90 (T = 3:
    # rows 0, 1, 15) uses column 1, row idx(15) = 2
    layout = Layout(1, 16, 25)
    assert [layout.word[k] for k in (11, 15)] == [5, 1] and layout.mirrored[11]
    layout = Layout(2, 16, 90)
    assert layout.word[15 * 16 + 1] == 1 * 3 + 2 and layout.mirrored[15 * 16 + 1]
    for dims, n, c in [(1, 16, 25), (2, 16, 90), (2, 8, 50), (1, 64, 10), (2, 64, 33)]:
        dut = _mac(dims, n, c, 2, 3)
        layout = Layout(dims, n, c)
        assert dut.words_per_filter == layout.words
        assert dut.kept_bins == sum(layout.kept)


# --- Throughput, latency, the queue, the hazard ------------------------------------------

def _in_gaps(run):
    return np.diff(run.in_cycles).tolist()


def _kept_transfers(dut, run):
    """Per input transfer, whether its bin is kept."""
    kept = Layout(dut.dims, dut.n, dut.compression_rate).kept
    return [kept[i % dut.bins] for i in range(len(run.in_cycles))]


def _queue_level(dut, run):
    """``{cycle: kept bins in the queue after it}`` at every cycle where a kept bin went
    in or one left (with its last op)."""
    changes = {}
    for cycle, kept in zip(run.in_cycles, _kept_transfers(dut, run)):
        if kept:
            changes[cycle] = changes.get(cycle, 0) + 1
    for cycle in run.op_cycles[dut.out_channels - 1::dut.out_channels]:
        changes[cycle] = changes.get(cycle, 0) - 1
    level, levels = 0, {}
    for cycle in sorted(changes):
        level += changes[cycle]
        levels[cycle] = level
    return levels


def _queue_peak(dut, run):
    return max(_queue_level(dut, run).values())


def _ops_per_tile(dut):
    return dut.in_channels * dut.kept_bins * dut.out_channels


def test_one_op_a_cycle_when_the_multiplier_is_the_bottleneck():
    # 1D n = 16, c = 25 (11 kept), 3 input channels, 2 output channels: a tile holds the
    # multiplier for 3 * 11 * 2 = 66 cycles, more than the input's 48 and the readout's
    # 32; tiles back to back, the multiplier never idle, the dropped bins pass at once.
    dut = _mac(1, 16, 25, 3, 2)
    tiles = 4
    rng = np.random.default_rng(10)
    f, x = _filters(dut, rng), _tiles(dut, rng, tiles)
    run = _run(dut, _one_set(f, x))
    _check(dut, run, x, [f] * tiles)
    assert dut.accumulate_cycles == 66 == dut.tile_period
    # one op a cycle from the first op to the last, over all tiles: the queue bridges
    # the runs of dropped bins
    first_op = run.op_cycles[0]
    assert run.op_cycles == list(range(first_op, first_op + tiles * dut.accumulate_cycles))
    assert first_op - run.in_cycles[0] == dut.queue_latency == 2
    # the input waits (the queue is full) only at kept bins; a dropped bin goes the
    # cycle after the bin before it
    gaps = _in_gaps(run)
    kept = _kept_transfers(dut, run)
    assert max(gaps) > 1
    assert all(gap == 1 for gap, k in zip(gaps, kept[1:]) if not k)
    assert _queue_peak(dut, run) == dut.queue_depth
    # the readout: a sample a cycle, tile t's while tile t + 1 accumulates; the first
    # sample latency cycles after the tile's last op
    per_tile = _ops_per_tile(dut)
    for t in range(tiles):
        cycles = run.out_cycles[t * dut.readout_cycles:(t + 1) * dut.readout_cycles]
        assert cycles == list(range(cycles[0], cycles[0] + dut.readout_cycles))
        assert cycles[0] - run.op_cycles[(t + 1) * per_tile - 1] == dut.latency == 8
        if t + 1 < tiles:
            assert run.op_cycles[(t + 1) * per_tile] < cycles[0]
            assert cycles[-1] < run.op_cycles[(t + 2) * per_tile - 1]


def test_one_readout_sample_a_cycle_when_the_readout_is_the_bottleneck():
    # 1 input channel, 3 output channels, 2D: the readout (3 * 64 samples) is longer than
    # the accumulation (25 * 3): the output is valid every cycle, tile after tile.
    dut = _mac(2, 8, 50, 1, 3)
    tiles = 4
    rng = np.random.default_rng(11)
    f, x = _filters(dut, rng), _tiles(dut, rng, tiles)
    run = _run(dut, _one_set(f, x))
    _check(dut, run, x, [f] * tiles)
    assert dut.readout_cycles > dut.accumulate_cycles
    first = run.out_cycles[0]
    assert run.out_cycles == list(range(first, first + tiles * dut.readout_cycles))
    # the first tile: its first bin is taken the cycle after the set is in and
    # multiplied queue_latency later; the readout starts latency cycles after its last
    # op. The queue is the smallest: a tile's ops, idle at the dropped columns, still
    # take less than the readout.
    per_tile = _ops_per_tile(dut)
    assert run.filter_cycles[-1] == dut.filter_words - 1
    assert run.in_cycles[0] == dut.filter_words
    assert run.op_cycles[0] == dut.filter_words + dut.queue_latency
    assert first - run.op_cycles[per_tile - 1] == dut.latency
    assert dut.queue_depth == 2
    for t in range(tiles):
        ops = run.op_cycles[t * per_tile:(t + 1) * per_tile]
        assert dut.accumulate_cycles < ops[-1] - ops[0] + 1 < dut.readout_cycles


@pytest.mark.parametrize("dims, n, c, in_channels, out_channels, case", [
    # 121 of 256 bins kept: the multiplier needs 242 cycles a channel, the input 256; the
    # readout takes as long as the input (the queue's hand-over entries)
    (2, 16, 50, 2, 2, "input"),
    # 25 kept x 3 = 75 > 64 a channel: 225 cycles a tile against 192 and 192
    (2, 8, 50, 3, 3, "multiplier"),
    (2, 8, 50, 1, 3, "readout"),      # 192 against 64 and 75
    # accumulate 60, readout 64: 4 apart, just the hand-over, no loss
    (1, 16, 60, 3, 4, "readout"),
    # accumulate 30, readout 32: within the hand-over, the period alternates 32, 34
    (1, 16, 10, 1, 2, "hand-over"),
], ids=lambda v: str(v))
def test_stall_free_tile_period(dims, n, c, in_channels, out_channels, case):
    # Section 6: the period is the largest of the input's, the multiplier's and the
    # readout's cycles, plus at most half the bank hand-over (2 cycles) when the
    # accumulation and the readout take within 4 cycles of each other.
    dut = _mac(dims, n, c, in_channels, out_channels)
    tiles = 6
    rng = np.random.default_rng(13)
    f, x = _filters(dut, rng), _tiles(dut, rng, tiles)
    run = _run(dut, _one_set(f, x))
    _check(dut, run, x, [f] * tiles)
    parts = {"input": in_channels * dut.bins,
             "multiplier": in_channels * dut.kept_bins * out_channels,
             "readout": out_channels * dut.bins}
    contract = max(parts.values())
    assert (dut.input_cycles, dut.accumulate_cycles, dut.readout_cycles) == tuple(
        parts.values())
    if case in parts:
        assert parts[case] == contract and dut.tile_period == contract
    else:
        assert dut.tile_period == contract + 1 <= contract + dut.bank_handover_cycles / 2
        assert dut.bank_handover_cycles == 4
    # measured: tile t's first output to tile t + 1's, in steady state (from tile 1 on),
    # by pairs of tiles (the banks alternate)
    starts = [run.out_cycles[t * dut.readout_cycles] for t in range(tiles)]
    periods = np.diff(starts).tolist()
    for pair in range(1, tiles - 2, 2):
        assert (periods[pair] + periods[pair + 1]) / 2 == dut.tile_period, periods
    if case == "input":          # the input never waited
        assert _in_gaps(run) == [1] * (len(run.in_cycles) - 1)
        assert periods[1:] == [contract] * (tiles - 2)
    if case == "multiplier":     # the multiplier never idled, after the first tile
        ops = run.op_cycles[_ops_per_tile(dut):]
        assert ops == list(range(ops[0], ops[0] + len(ops)))
    if case == "hand-over":
        assert sorted(set(periods[1:])) == [contract, contract + 2]


@pytest.mark.parametrize("dims, n, c, in_channels, out_channels, keeps_up", [
    (1, 64, 50, 3, 2, True),      # 31 kept x 2 <= 64: the input at one a cycle
    (1, 16, 25, 3, 2, False),     # 11 x 2 > 16: the multiplier at one op a cycle
], ids=lambda v: str(v))
def test_queue_depth_is_the_least_that_keeps_the_pace(monkeypatch, dims, n, c,
                                                      in_channels, out_channels, keeps_up):
    # The RTL at the model's depth keeps the pace, one entry less does not: the depth is
    # derived, not guessed (and the model is the hardware's).
    depth = _mac(dims, n, c, in_channels, out_channels).queue_depth
    paces = []
    for d in (depth, depth - 1):
        monkeypatch.setattr(spectral_mac, "queue_depth_for", lambda *args, d=d: d)
        dut = _mac(dims, n, c, in_channels, out_channels)
        assert dut.queue_depth == d
        rng = np.random.default_rng(14)
        f, x = _filters(dut, rng), _tiles(dut, rng, 3)
        run = _run(dut, _one_set(f, x))
        _check(dut, run, x, [f] * 3)
        if keeps_up:
            paces.append(max(_in_gaps(run)) == 1)
        else:
            ops = run.op_cycles[_ops_per_tile(dut):]    # steady state: after tile 0
            paces.append(ops == list(range(ops[0], ops[0] + len(ops))))
    assert paces == [True, False]


def test_queue_depth_rule():
    # 2D n = 16, 2 x 2 channels: c = 0, the multiplier is the bottleneck with nothing to
    # bridge; c = 50, 35 for the backlog where the frames meet (T = 11 kept columns in a
    # row, 11 kept bins arriving for 8 served in each) and the hand-over's 4 (the
    # readout takes as long as the input); c = 90, 3 and 4.
    assert [_mac(2, 16, c, 2, 2).queue_depth for c in (0, 50, 90)] == [2, 39, 7]
    assert _mac(2, 16, 50, 3, 2).queue_depth == 35       # no hand-over entries
    assert _mac(1, 64, 50, 2, 2).queue_depth == 21 and _mac(1, 64, 50, 3, 2).queue_depth == 17
    # multiplier-bound (33 x 33 x 4 > 64 x 64), but 1984 positions of dropped columns a
    # frame to bridge at 4 cycles a kept bin; with one input channel the readout is the
    # bottleneck (4 x 4096 cycles): the smallest queue
    big = _mac(2, 64, 72, 4, 4)
    assert big.kept_per_axis == 33 and big.accumulate_cycles > big.readout_cycles
    assert big.queue_depth == 497 and 1984 / 4 < big.queue_depth < 1984 / 4 + 64
    assert _mac(2, 64, 72, 1, 4).queue_depth == 2
    # the largest legal need: 1D n = 4096, T = 2047, 2 output channels; the limit
    wide = _mac(1, 4096, 50, 3, 2)
    assert wide.kept_bins == 2047 and wide.queue_depth == spectral_mac.QUEUE_DEPTH_LIMIT
    assert _mac(1, 4096, 50, 2, 2).queue_depth == 1025     # capped: 4 short
    assert _mac(1, 4096, 50, 1, 2).queue_depth == 2        # readout-bound
    # the model itself: one entry less, the input waits (or the multiplier idles; 4
    # input channels, so that the readout is not the bottleneck)
    for dims, n, c, o in [(2, 16, 50, 2), (1, 64, 50, 2), (2, 16, 50, 3), (2, 8, 50, 3)]:
        dut = _mac(dims, n, c, 4, o)
        positions = [p for p, k in enumerate(Layout(dims, n, c).kept) if k]
        keeps_up = dut.kept_bins * o <= dut.bins
        for depth, enough in ((dut.queue_depth, True), (dut.queue_depth - 1, False)):
            wait, period = spectral_mac._frame_model(positions, dut.bins, o, 1, depth, 4)
            assert ((wait == 0) if keeps_up else (period == dut.kept_bins * o)) == enough


def test_queue_is_a_memory_without_collision_logic():
    # The queue: a memory of queue_depth - 1 words of the sample's 2 * width bits (Yosys
    # maps a deep one to block RAM), marked no_rw_check like the banks.
    dut = _mac(2, 16, 50, 2, 2, width=12)
    text = rtlil.convert(dut)
    memories = re.findall(r"attribute \\no_rw_check 1\n  memory width (\d+) size (\d+)",
                          text)
    assert (str(2 * 12), str(dut.queue_depth - 1)) in memories
    assert len(memories) == 4          # the filters, the two banks, the queue


@pytest.mark.parametrize("out_channels, stalls, seed", [
    (1, (1.0, 1.0, 1.0), 20), (1, (0.6, 1.0, 0.5), 21), (1, (0.9, 1.0, 0.2), 22),
    (2, (1.0, 1.0, 1.0), 23), (2, (0.7, 1.0, 0.3), 24),
])
def test_accumulator_hazard_worst_case(out_channels, stalls, seed):
    # 1D n = 8, c = 90: one kept bin (k = 0): all four channels of a tile accumulate
    # into one word per output channel; the ops go op_spacing apart.
    dut = _mac(1, 8, 90, 4, out_channels)
    assert dut.kept_bins == 1 and dut.accumulator_words == out_channels
    assert dut.op_spacing == {1: 3, 2: 2}[out_channels]
    rng = np.random.default_rng(seed)
    f, x = _filters(dut, rng), _tiles(dut, rng, 5)
    p_input, p_filter, p_output = stalls
    run = _run(dut, _one_set(f, x), p_input=p_input, p_filter=p_filter, p_output=p_output,
               seed=seed)
    _check(dut, run, x, [f] * len(x))
    assert min(np.diff(run.op_cycles)) >= dut.op_spacing
    if p_input == 1.0 and p_output == 1.0:
        assert _in_gaps(run) == [1] * (len(run.in_cycles) - 1)
        # the readout waits for the last write (one output channel: its first read is
        # of that word) or only for the last read (two)
        assert (dut.bank_full_stage, dut.latency) == {1: (5, 10), 2: (3, 8)}[out_channels]
        per_tile = _ops_per_tile(dut)
        for t in range(len(x)):
            last_op = run.op_cycles[(t + 1) * per_tile - 1]
            assert run.out_cycles[t * dut.readout_cycles] - last_op == dut.latency


@pytest.mark.parametrize("out_channels", [1, 2])
def test_accumulator_hazard_from_a_full_queue(monkeypatch, out_channels):
    # The same worst case with the filters late: the queue fills with the first tile's
    # bins (the input waits at a kept bin), then the multiplier serves them at full rate,
    # the ops on one word HAZARD_DISTANCE apart. Without the spacing the same run is
    # wrong: the test sees the hazard.
    results = []
    for spacing in (None, 1):
        if spacing is not None:
            monkeypatch.setattr(SpectralMAC, "op_spacing", property(lambda self: spacing))
        dut = _mac(1, 8, 90, 4, out_channels)
        rng = np.random.default_rng(25)
        f, x = _filters(dut, rng), _tiles(dut, rng, 3)
        run = _run(dut, _one_set(f, x), p_filter=0.1, serialize=False, seed=25)
        first = run.op_cycles[0]
        assert sum(c < first for c in run.in_cycles) > dut.queue_depth * dut.bins - 8
        served = np.diff(run.op_cycles[:dut.queue_depth * out_channels]).tolist()
        assert served == [dut.op_spacing] * len(served)
        want, _, _ = model(dut, x, [f] * len(x))
        got = np.array(run.out, dtype=np.int64).reshape(want.shape)
        results.append(np.array_equal(got, want))
    assert results == [True, False]


# --- Scaling and overflow ----------------------------------------------------------------

@pytest.mark.parametrize("shift_below, values, saturates", [
    (1, [-511, 511, 0, 1, -1, 2, -2, 300], False),    # -X fits exactly: M - 1 at most
    (1, [-512, 5, -7], True),                         # -(-M) = M saturates
    (0, [-512, 511, 1, -1, 2, -2, 3, -3], False),     # rnd halves, half up
    (-1, [-512, 511, 1, -1, 2, -2, 3, -3, 4], False),
])
def test_scaling_rounds_half_up_and_saturates_at_the_edge(shift_below, values, saturates):
    # Every coefficient -2 ** (cw - 1) (real): A = -X * 2 ** (cw - 1) exactly, so
    # spectrum_shift = cw - 1 gives -X (saturating only -(-M)), cw and cw + 1 halve and
    # quarter it with the rounding at the half.
    cw, width = 8, 10
    dut = _mac(1, 8, 0, 1, 1, width=width, coefficient_width=cw,
               spectrum_shift=cw - shift_below)
    f = np.zeros((1, 1, dut.words_per_filter, 2), np.int64)
    f[..., 0] = -(1 << (cw - 1))
    x = np.array([[[[values[k % len(values)], values[(k + 1) % len(values)]]
                    for k in range(dut.bins)]]], np.int64)
    run = _run(dut, _one_set(f, x))
    want = _check(dut, run, x, [f])
    assert bool(run.overflow) == saturates
    if shift_below == 1 and not saturates:           # -X: the mirrored bins too
        assert np.array_equal(want[0, 0], -x[0, 0])


def test_a_saturation_of_the_imaginary_part_alone_sets_overflow():
    # w = -i 2 ** (cw - 1), spectrum_shift = cw - 1: Y = (X.im, -X.re) (mirrored:
    # (-X.im, X.re)); X.re = -M saturates the imaginary part only, at unmirrored bins.
    cw = 8
    dut = _mac(1, 8, 0, 1, 1, width=10, coefficient_width=cw, spectrum_shift=cw - 1)
    f = np.zeros((1, 1, dut.words_per_filter, 2), np.int64)
    f[..., 1] = -(1 << (cw - 1))
    x = np.zeros((1, 1, dut.bins, 2), np.int64)
    x[..., 0], x[..., 1] = -(1 << 9), 5
    run = _run(dut, _one_set(f, x))
    want = _check(dut, run, x, [f])
    assert run.overflow and np.all(np.abs(want[..., 0]) == 5)


def test_spectrum_shift_zero_passes_the_sum():
    # rnd(A, 0) = A: small data, so that it fits.
    dut = _mac(2, 8, 50, 3, 2, spectrum_shift=0)
    rng = np.random.default_rng(33)
    f, x = _filters(dut, rng, 1 / 64), _tiles(dut, rng, 2, 1 / 64)
    run = _run(dut, _one_set(f, x), p_input=0.8, p_output=0.8, seed=33)
    want = _check(dut, run, x, [f] * 2)
    assert not run.overflow and np.abs(want).max() > 100


def test_largest_spectrum_shift_rounds_the_largest_sums():
    # X = (-M, -M), w = (-2 ** (cw - 1), -2 ** (cw - 1)), three channels: A = 3 * 2 **
    # (width + cw - 1) in one part (im, or re at the mirrored bins), 0 in the other;
    # shifted by width + cw that is 1.5, rounded half up to 2.
    dut = _mac(2, 8, 50, 3, 2, spectrum_shift=12 + 10)
    f = np.full((2, 3, dut.words_per_filter, 2), -(1 << 9), np.int64)
    x = np.full((1, 3, dut.bins, 2), -(1 << 11), np.int64)
    run = _run(dut, _one_set(f, x))
    want = _check(dut, run, x, [f])
    kept = np.array(Layout(2, 8, 50).kept)
    assert np.all(want[..., kept, :].sum(axis=-1) == 2) and not run.overflow


def test_overflow_flag_per_tile_and_clear():
    # Driven by hand: one tile, all its outputs, then the flag; it holds; clear_overflow
    # clears it; the next small tile leaves it low.
    dut = _mac(1, 8, 0, 2, 2, width=10, coefficient_width=8, spectrum_shift=4)
    rng = np.random.default_rng(31)
    f = _filters(dut, rng)
    small = _tiles(dut, rng, 1, scale=1 / 64)[0]
    large = _tiles(dut, rng, 1)[0]
    tiles = [small, large, small, large, small]
    flags = [model(dut, [t], [f])[1] for t in tiles]
    assert flags == [False, True, False, True, False]
    seen, outs = [], []

    async def bench(ctx):
        ctx.set(dut.output.ready, 1)
        for row in f.reshape(-1, 2).tolist():
            ctx.set(dut.filters.valid, 1)
            ctx.set(dut.filters.payload, {"re": row[0], "im": row[1]})
            await ctx.tick().until(dut.filters.ready)
        ctx.set(dut.filters.valid, 0)

        async def cycle():
            if ctx.get(dut.output.valid):
                outs.append((ctx.get(dut.output.payload.re),
                             ctx.get(dut.output.payload.im)))
            await ctx.tick()

        for t, tile in enumerate(tiles):
            for row in tile.reshape(-1, 2).tolist():
                ctx.set(dut.input.valid, 1)
                ctx.set(dut.input.payload, {"re": row[0], "im": row[1]})
                while True:
                    taken = ctx.get(dut.input.ready)
                    await cycle()
                    if taken:
                        break
            ctx.set(dut.input.valid, 0)
            while len(outs) < (t + 1) * dut.readout_cycles:
                await cycle()
            await ctx.tick()
            seen.append(ctx.get(dut.overflow))
            await ctx.tick().repeat(5)
            assert ctx.get(dut.overflow) == seen[-1], "the flag did not hold"
            ctx.set(dut.clear_overflow, 1)
            await ctx.tick()
            ctx.set(dut.clear_overflow, 0)
            assert ctx.get(dut.overflow) == 0

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert [bool(v) for v in seen] == flags
    want, _, _ = model(dut, tiles, [f] * len(tiles))
    _assert_outputs(type("Outputs", (), {"out": outs}), want)


@pytest.mark.parametrize("scale, saturates", [(1.0, True), (1 / 64, False)])
def test_a_saturation_sets_the_flag_while_clear_is_held(scale, saturates):
    # clear_overflow high all along: a saturating readout still raises the flag (the
    # cycle after each saturation), a small one never; low at the end either way.
    dut = _mac(1, 8, 0, 2, 2, width=10, coefficient_width=8, spectrum_shift=4)
    rng = np.random.default_rng(32)
    f, x = _filters(dut, rng), _tiles(dut, rng, 1, scale)
    want, overflow, _ = model(dut, x, [f])
    assert overflow == saturates
    run = _run(dut, _one_set(f, x), clear=lambda cycle: True)
    _assert_outputs(run, want)
    assert any(run.overflows) == saturates and not run.overflow


# --- Filter loading ----------------------------------------------------------------------

def test_no_op_before_the_set_is_complete():
    # The input is offered from cycle 0, the words slowly: the queue takes the first kept
    # bins (and the dropped ones between) until it is full, then the input waits at a
    # kept bin; no op issues until the set is in; filters_loaded rises the cycle after
    # its last word, and the first op issues then.
    dut = _mac(2, 8, 50, 2, 2)
    rng = np.random.default_rng(40)
    f, x = _filters(dut, rng), _tiles(dut, rng, 2)
    run = _run(dut, _one_set(f, x), p_filter=0.3, serialize=False, seed=40)
    last_word = run.filter_cycles[-1]
    assert len(run.filter_cycles) == dut.filter_words
    assert not any(run.loaded[:last_word + 1]) and all(run.loaded[last_word + 1:])
    assert run.op_cycles[0] == last_word + 1
    kept = _kept_transfers(dut, run)
    before = [k for c, k in zip(run.in_cycles, kept) if c <= last_word]
    assert sum(before) == dut.queue_depth and kept[len(before)]   # it waits at a kept bin
    assert not all(run.in_ready[:last_word + 1])
    _check(dut, run, x, [f] * len(x))


@pytest.mark.parametrize("dims, n, c, p_output, seed",
                         [(1, 8, 50, 0.4, 41), (2, 8, 0, 0.25, 42), (2, 16, 75, 0.4, 45)])
def test_reload_races_tiles_by_the_rules(dims, n, c, p_output, seed):
    # Three sets and five tiles, each stream on its own (not serialized), random stalls:
    # no word is taken while a tile is in the multiplier (from its first op to its last),
    # no tile starts while a set is half written, and each tile uses the last set
    # complete before its first op. A slow sink makes the multiplier wait for a bank
    # between tiles, which is where a set gets in (with the next tile's bins queued and
    # a bank free, tiles follow back to back).
    dut = _mac(dims, n, c, 2, 2)
    rng = np.random.default_rng(seed)
    sets = [_filters(dut, rng) for _ in range(3)]
    x = _tiles(dut, rng, 5)
    phases = [("filters", sets[0]), ("tile", x[0]), ("filters", sets[1]), ("tile", x[1]),
              ("tile", x[2]), ("filters", sets[2]), ("tile", x[3]), ("tile", x[4])]
    run = _run(dut, phases, p_input=0.5, p_filter=0.7, p_output=p_output, serialize=False,
               seed=seed)
    words = np.array(run.filter_cycles)
    per_tile = _ops_per_tile(dut)
    used = []
    for t in range(5):
        first_op = run.op_cycles[t * per_tile]
        last_op = run.op_cycles[(t + 1) * per_tile - 1]
        assert not np.any((words >= first_op) & (words <= last_op))
        written = int(np.sum(words < first_op))
        assert written % dut.filter_words == 0, f"tile {t} started in a half-written set"
        used.append(written // dut.filter_words - 1)
    _check(dut, run, x, [sets[k] for k in used])
    assert len(set(used)) > 1, "no reload took effect: a weak test"


def test_reload_between_tiles_applies_to_the_next_tile():
    # Serialized: set A, two tiles, set B (sent once the tiles are in), two tiles.
    dut = _mac(1, 16, 50, 2, 3)
    rng = np.random.default_rng(43)
    a, b = _filters(dut, rng), _filters(dut, rng)
    x = _tiles(dut, rng, 4)
    phases = [("filters", a), ("tile", x[0]), ("tile", x[1]), ("filters", b),
              ("tile", x[2]), ("tile", x[3])]
    run = _run(dut, phases, p_input=0.8, p_filter=0.8, p_output=0.7, seed=43)
    _check(dut, run, x, [a, a, b, b])
    assert not np.array_equal(model(dut, x[2:3], [a])[0], model(dut, x[2:3], [b])[0])


def test_filter_words_wait_for_the_tile_in_the_multiplier():
    # The new set is offered from the cycle the first is in, while tile 0 (offered from
    # cycle 0) goes in slowly: the tile starts first (its first bins are queued; it wins
    # the tie at the set boundary), no word is taken until its last op; tile 0 uses the
    # old set, tile 1 (queued, but waiting for the whole new set) the new one.
    dut = _mac(1, 8, 0, 3, 1)
    rng = np.random.default_rng(44)
    a, b = _filters(dut, rng), _filters(dut, rng)
    x = _tiles(dut, rng, 2)
    phases = [("filters", a), ("tile", x[0]), ("filters", b), ("tile", x[1])]
    run = _run(dut, phases, p_input=0.3, serialize=False, seed=44)
    per_tile = _ops_per_tile(dut)
    new_words = run.filter_cycles[dut.filter_words:]
    assert run.in_cycles[0] < dut.filter_words
    assert run.op_cycles[0] == dut.filter_words       # the cycle after the first set
    assert new_words[0] > run.op_cycles[per_tile - 1]
    assert run.op_cycles[per_tile] > new_words[-1]
    _check(dut, run, x, [a, b])


# --- Parameters --------------------------------------------------------------------------

_GOOD = {"dims": 2, "n": 16, "in_channels": 3, "out_channels": 2, "compression_rate": 50,
         "width": 16, "coefficient_width": 12, "spectrum_shift": 10}


@pytest.mark.parametrize("kwargs, error, message", [
    ({"dims": 3}, ValueError, r"dims must be in 1\.\.2, got 3"),
    ({"dims": 0}, ValueError, r"dims must be in 1\.\.2"),
    ({"dims": 2.0}, TypeError, "dims must be an integer"),
    ({"n": 128}, ValueError, r"n must be in 8\.\.64, got 128"),
    ({"n": 12}, ValueError, r"n must be a power of two in 8\.\.64 for dims = 2, got 12"),
    ({"dims": 1, "n": 8192}, ValueError, r"n must be in 8\.\.4096, got 8192"),
    ({"dims": 1, "n": 100}, ValueError, r"n must be a power of two in 8\.\.4096"),
    ({"n": 4}, ValueError, r"n must be in 8\.\.64, got 4"),
    ({"in_channels": 0}, ValueError, r"in_channels must be in 1\.\.256, got 0"),
    ({"in_channels": 257}, ValueError, r"in_channels must be in 1\.\.256"),
    ({"out_channels": 0}, ValueError, r"out_channels must be in 1\.\.256, got 0"),
    ({"out_channels": 300}, ValueError, r"out_channels must be in 1\.\.256"),
    ({"out_channels": True}, TypeError, "out_channels must be an integer"),
    ({"compression_rate": 100}, ValueError, r"compression_rate must be in \[0, 100\)"),
    ({"compression_rate": -1}, ValueError, r"compression_rate must be in \[0, 100\)"),
    ({"compression_rate": "50"}, TypeError, r"compression_rate must be a number"),
    ({"width": 7}, ValueError, r"width must be in 8\.\.24, got 7"),
    ({"width": 25}, ValueError, r"width must be in 8\.\.24"),
    ({"coefficient_width": 7}, ValueError, r"coefficient_width must be in 8\.\.18, got 7"),
    ({"coefficient_width": 19}, ValueError, r"coefficient_width must be in 8\.\.18"),
    ({"spectrum_shift": 29}, ValueError, r"spectrum_shift must be in 0\.\.28, got 29"),
    ({"spectrum_shift": -1}, ValueError, r"spectrum_shift must be in 0\.\.28"),
    ({"spectrum_shift": 1.5}, TypeError, "spectrum_shift must be an integer"),
])
def test_bad_parameters_name_the_range(kwargs, error, message):
    with pytest.raises(error, match=message):
        SpectralMAC(**{**_GOOD, **kwargs})


def test_derived_values():
    dut = SpectralMAC(**_GOOD)
    # 2D n = 16, c = 50: m + 1 = int(9 * sqrt(0.5)) = 6, T = 11, Q = 6
    assert (dut.half_width, dut.kept_per_axis, dut.columns) == (5, 11, 6)
    assert dut.words_per_filter == 66 and dut.kept_bins == 121 and dut.bins == 256
    assert dut.filter_words == 2 * 3 * 66
    assert dut.filter_memory_bits == 2 * 3 * 66 * 24
    assert dut.accumulator_width == 16 + 12 + 1 + 2
    assert dut.accumulator_words == 2 * 121
    # the multiplier: 2 ops a kept bin, none for the others; the input a bin a cycle
    assert dut.accumulate_cycles == 3 * 121 * 2 and dut.op_spacing == 1
    assert dut.input_cycles == 3 * 256 and dut.readout_cycles == 2 * 256
    assert dut.tile_period == 3 * 256 and dut.bank_handover_cycles == 4
    assert (dut.queue_depth, dut.queue_latency, dut.latency) == (35, 2, 8)
    assert dut.compression_rate == 50.0 and isinstance(dut.compression_rate, float)
    one = SpectralMAC(**{**_GOOD, "dims": 1, "n": 64, "compression_rate": 0,
                         "in_channels": 1})
    # 1D c = 0: everything kept, m = n / 2, Q = n / 2 + 1 words a filter
    assert (one.half_width, one.kept_per_axis, one.columns) == (32, 64, 33)
    assert one.words_per_filter == 33 and one.accumulator_width == 16 + 12 + 1


@pytest.mark.parametrize("dims, n", [(2, 16), (1, 64)])
def test_converts_to_verilog(dims, n):
    dut = _mac(dims, n, 50, 2, 2)
    text = verilog.convert(dut, name="spectral_mac")
    assert "module spectral_mac" in text
