"""Morph's mapping model by brute force: an element-by-element walk of the loop nest.

:func:`walk` follows ``docs/morph.md`` literally and independently of the closed form
(:func:`dnnhw.golden.morph.counts`), which it is meant to check. It shares only the data
types, the constants, :func:`~dnnhw.golden.morph.empty_traffic` and
:func:`~dnnhw.golden.morph.validate` with :mod:`dnnhw.golden.morph`.

What it does
------------
For each image, each L2 step (the L2 tile loops in ``outer_order``), each L1 step (the L1
tiles of that L2 tile in ``inner_order``, restarting at the L2 tile's origin), each PE
block (``Kp x 1 x Hp x Wp`` of the L1 output tile) and each cycle ``(c, t, r, s)``, it

- keeps, per level and operand, the resident tile's key (the tile coordinates of the
  rules: the image and the start of each dimension that indexes the operand) and its
  contents as a dict from element coordinates to values;
- on a change, evicts and fills by enumerating the tile's elements: every input position
  of the clipped halo box is tested against the input bounds (padding is not stored);
- counts each PE read (one input word per active output position whose tap is inside the
  input, one weight word per active filter), each MAC, each accumulator load and drain,
  and the partial sums' write-backs, spills and refills by the "first contribution is
  channel 0" rule;
- adds the cycles of the "Cycles" section where they arise: at each transfer, each L2
  and L1 step and each PE block.

It also checks itself: it carries real values (small random integers) through the
hierarchy and compares the outputs that reach DRAM with a direct convolution; it asserts
that every L1 fill is a subset of the L2 tile, that every PE read finds its word resident
in the L1, that each resident tile fits in its banks, and that every output is written to
DRAM exactly once. A violation raises ``AssertionError``.

It is slow (pure Python, a few microseconds per MAC): meant for layers of up to some
20 000 MACs.

Readings of the rules
---------------------
Where ``docs/morph.md`` leaves room, the walk reads it so:

- "starts at channel 0" (accumulator loads, L1 and L2 partial-sum fills) means the
  absolute channel 0 of the layer, not the first channel of the enclosing L2 tile.
- Residency compares tile coordinates, not contents: two tiles with different
  coordinates but the same clipped input elements are still evicted and filled.
- A fill is a fill even when it moves no words (an input tile whose halo box lies wholly
  in the padding): it costs ``dram_latency`` at the DRAM and ``l2_latency`` (plus
  ``ceil(0 / ...) = 0``) between the L2 and the L1.
- A PE block reads one weight word per active filter every cycle, even a cycle whose
  taps are all in the padding for every position of the block.
- An input tile is the whole clipped halo box, so with a stride larger than the kernel
  it includes inputs that no output of the tile reads.
"""

import itertools
import math

import numpy as np

from .morph import DEFAULT_HARDWARE, DIMS, OPERANDS, Counts, empty_traffic, validate


__all__ = ["walk"]


def _pieces(start, length, tile):
    """``[(start, length), ...]``: the tiles of ``start .. start + length - 1`` of size
    ``tile``, starting at ``start``, the last one ragged."""
    out = []
    pos, end = start, start + length
    while pos < end:
        out.append((pos, min(tile, end - pos)))
        pos += tile
    return out


def _reference_conv(x, wgt, stride, padding):
    """``conv3d`` (cross-correlation, no bias) of ``x`` ``(N, C, F, H, W)`` with ``wgt``
    ``(K, C, T, R, S)``, in int64: the values the walk's outputs must equal."""
    n_img, _, f_in, h_in, w_in = x.shape
    k_out, _, t_k, r_k, s_k = wgt.shape
    (sf, sh, sw), (pf, ph, pw) = stride, padding
    fo = (f_in + 2 * pf - t_k) // sf + 1
    ho = (h_in + 2 * ph - r_k) // sh + 1
    wo = (w_in + 2 * pw - s_k) // sw + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pf, pf), (ph, ph), (pw, pw)))
    out = np.zeros((n_img, k_out, fo, ho, wo), dtype=np.int64)
    for t in range(t_k):
        for r in range(r_k):
            for s in range(s_k):
                win = xp[:, :, t:t + sf * (fo - 1) + 1:sf, r:r + sh * (ho - 1) + 1:sh,
                         s:s + sw * (wo - 1) + 1:sw]
                out += np.einsum("ncfhw,kc->nkfhw", win, wgt[:, :, t, r, s])
    return out


class _Tally:
    """The counters of one walk."""

    def __init__(self):
        self.traffic = empty_traffic()
        self.spills = 0
        self.refills = 0
        self.macs = 0
        self.cycles = {"dram": 0, "l2": 0, "compute": 0}

    def move(self, src, dst, operand, words):
        """``words`` of ``operand`` read from level ``src`` and written into ``dst``."""
        self.traffic[src][operand]["reads"] += words
        self.traffic[dst][operand]["writes"] += words


def walk(layer, mapping, hardware=DEFAULT_HARDWARE, seed=0):
    """The exact :class:`~dnnhw.golden.morph.Counts` of ``layer`` under ``mapping`` on
    ``hardware``, by walking the loop nest of ``docs/morph.md`` element by element.

    ``seed`` picks the random operand values the walk carries to check itself (the counts
    do not depend on it). Raises :class:`~dnnhw.golden.morph.MappingError` for an illegal
    mapping (:func:`~dnnhw.golden.morph.validate`) and ``AssertionError`` if the walk finds
    the rules inconsistent (a word read that is not resident, a tile over its banks, an
    output not written exactly once or with the wrong value).
    """
    validate(layer, mapping, hardware)
    hw = hardware
    tally = _Tally()

    n_img, n_ch, n_k = layer.N, layer.C, layer.K
    f_in, h_in, w_in = layer.F, layer.H, layer.W
    t_k, r_k, s_k = layer.T, layer.R, layer.S
    (sf, sh, sw), (pf, ph, pw) = layer.stride, layer.padding
    taps = t_k * r_k * s_k
    size = {"K": n_k, "C": n_ch, "F": (f_in + 2 * pf - t_k) // sf + 1,
            "H": (h_in + 2 * ph - r_k) // sh + 1, "W": (w_in + 2 * pw - s_k) // sw + 1}
    l2_tile = dict(zip(DIMS, mapping.l2_tile))
    l1_tile = dict(zip(DIMS, mapping.l1_tile))
    kp, hp, wp = mapping.parallel
    capacity = {level: {op: banks * hw.bank_words(level)
                        for op, banks in zip(OPERANDS, mapping.banks(level))}
                for level in ("l2", "l1")}

    rng = np.random.default_rng(seed)
    x_arr = rng.integers(-8, 9, size=(n_img, n_ch, f_in, h_in, w_in), dtype=np.int64)
    w_arr = rng.integers(-8, 9, size=(n_k, n_ch, t_k, r_k, s_k), dtype=np.int64)
    x_val, w_val = x_arr.tolist(), w_arr.tolist()

    # DRAM partial sums: spilled values by coordinate, and how often each output was
    # written as a finished output.
    dram_psum = {}
    written = {}

    def dram_fill_cycles(words):
        return hw.dram_latency + math.ceil(words / hw.dram_words_per_cycle)

    def dram_write_cycles(words):
        return hw.dram_write_latency + math.ceil(words / hw.dram_words_per_cycle)

    def l2_cycles(words):
        """One transfer between the L2 and the L1, either way."""
        return hw.l2_latency + math.ceil(words / hw.l2_words_per_cycle)

    def input_coords(axis_size, kernel, stride, pad, start, length):
        """Input positions of the halo box of outputs ``start .. start+length-1`` that lie
        inside the input: each candidate tested against the bounds."""
        lo = start * stride - pad
        hi = (start + length - 1) * stride - pad + kernel - 1
        return [i for i in range(lo, hi + 1) if 0 <= i < axis_size]

    def input_elements(n, tile):
        """The input elements ``(n, c, f, h, w)`` of the tile ``{dim: (start, length)}``."""
        c0, cl = tile["C"]
        fs = input_coords(f_in, t_k, sf, pf, *tile["F"])
        hs = input_coords(h_in, r_k, sh, ph, *tile["H"])
        ws = input_coords(w_in, s_k, sw, pw, *tile["W"])
        return [(n, c, f, h, w) for c in range(c0, c0 + cl) for f in fs for h in hs
                for w in ws]

    def weight_elements(tile):
        k0, kl = tile["K"]
        c0, cl = tile["C"]
        return [(k, c, t, r, s) for k in range(k0, k0 + kl) for c in range(c0, c0 + cl)
                for t in range(t_k) for r in range(r_k) for s in range(s_k)]

    def psum_elements(n, tile):
        k0, kl = tile["K"]
        (f0, fl), (h0, hl), (w0, wl) = tile["F"], tile["H"], tile["W"]
        return [(n, k, f, h, w) for k in range(k0, k0 + kl) for f in range(f0, f0 + fl)
                for h in range(h0, h0 + hl) for w in range(w0, w0 + wl)]

    def keys(n, tile):
        """Each operand's tile coordinates: the image (inputs, psums) and the start of
        each dimension that indexes it."""
        start = {d: tile[d][0] for d in DIMS}
        return {"inputs": (n, start["C"], start["F"], start["H"], start["W"]),
                "weights": (start["K"], start["C"]),
                "psums": (n, start["K"], start["F"], start["H"], start["W"])}

    def fits(level, operand, words):
        assert words <= capacity[level][operand], (
            f"{level} {operand}: a tile of {words} words exceeds its banks' "
            f"{capacity[level][operand]} words (validate passed the mapping)")

    # --- residency state ------------------------------------------------------------
    l2 = {op: {"key": None, "data": {}} for op in OPERANDS}
    l2_psum_c_end = None  # channels the held L2 psum tile has accumulated up to

    def l2_psum_writeback():
        """Evict the L2 partial-sum tile to DRAM: a spill or the output write."""
        held = l2["psums"]
        words = len(held["tile_elements"])
        finished = l2_psum_c_end == n_ch
        for e in held["tile_elements"]:
            assert e in held["data"], f"L2 psum {e} written back without a value"
            dram_psum[e] = held["data"][e]
            if finished:
                written[e] = written.get(e, 0) + 1
        tally.move("l2", "dram", "psums", words)
        if not finished:
            tally.spills += words
        tally.cycles["dram"] += dram_write_cycles(words)

    def l1_step(n, t1, l1):
        """One L1 step: evictions and fills from the L2, then the PE blocks."""
        need = keys(n, t1)
        c0, cl = t1["C"]
        # The step's own cost, in the L2-to-L1 phase: the one that fills the L1.
        tally.cycles["l2"] += hw.l1_step_overhead
        # Partial sums written back first.
        if l1["psums"]["key"] is not None and l1["psums"]["key"] != need["psums"]:
            l1_psum_writeback(l1)
        for op, elements_of in (("inputs", lambda: input_elements(n, t1)),
                                ("weights", lambda: weight_elements(t1))):
            if l1[op]["key"] != need[op]:
                elements = elements_of()
                fits("l1", op, len(elements))
                src = l2[op]["data"]
                data = {}
                for e in elements:
                    assert e in src, f"L1 {op} element {e} is not in the L2 tile"
                    data[e] = src[e]
                l1[op] = {"key": need[op], "data": data}
                tally.move("l2", "l1", op, len(elements))
                tally.cycles["l2"] += l2_cycles(len(elements))
        if l1["psums"]["key"] != need["psums"]:
            elems = psum_elements(n, t1)
            fits("l1", "psums", len(elems))
            l2_elems = l2["psums"]["tile_set"]
            data = {}
            for e in elems:
                assert e in l2_elems, f"L1 psum {e} is not in the L2 tile"
            if c0 != 0:  # not the first contribution: fill from the L2
                src = l2["psums"]["data"]
                for e in elems:
                    assert e in src, f"L1 psum fill of {e}: no value in the L2"
                    data[e] = src[e]
                tally.move("l2", "l1", "psums", len(elems))
                tally.cycles["l2"] += l2_cycles(len(elems))
            l1["psums"] = {"key": need["psums"], "data": data, "tile_elements": elems}
        pe_blocks(n, t1, l1)

    def l1_psum_writeback(l1):
        held = l1["psums"]
        dst = l2["psums"]["data"]
        for e in held["tile_elements"]:
            assert e in held["data"], f"L1 psum {e} written back without a value"
            dst[e] = held["data"][e]
        words = len(held["tile_elements"])
        tally.move("l1", "l2", "psums", words)
        tally.cycles["l2"] += l2_cycles(words)

    def pe_blocks(n, t1, l1):
        (k1, kl), (c1, cl), (f1, fl), (h1, hl), (w1, wl) = (t1[d] for d in DIMS)
        x_l1, w_l1 = l1["inputs"]["data"], l1["weights"]["data"]
        p_l1 = l1["psums"]["data"]
        tr = tally.traffic["l1"]
        for kb in range(k1, k1 + kl, kp):
            ks = range(kb, min(kb + kp, k1 + kl))
            for f in range(f1, f1 + fl):
                for hb in range(h1, h1 + hl, hp):
                    hs = range(hb, min(hb + hp, h1 + hl))
                    for wb in range(w1, w1 + wl, wp):
                        ws = range(wb, min(wb + wp, w1 + wl))
                        positions = [(h, w) for h in hs for w in ws]
                        pes = [(k, h, w) for k in ks for (h, w) in positions]
                        tally.cycles["compute"] += cl * taps + hw.block_overhead
                        # Accumulators: loaded unless the L1 step starts at channel 0.
                        acc = {}
                        for pe in pes:
                            if c1 != 0:
                                e = (n, pe[0], f, pe[1], pe[2])
                                assert e in p_l1, f"accumulator load of {e}: no value"
                                acc[pe] = p_l1[e]
                                tr["psums"]["reads"] += 1
                            else:
                                acc[pe] = 0
                        for c in range(c1, c1 + cl):
                            for t in range(t_k):
                                fi = f * sf - pf + t
                                for r in range(r_k):
                                    for s in range(s_k):
                                        # One cycle.
                                        xin = {}
                                        for (h, w) in positions:
                                            hi = h * sh - ph + r
                                            wi = w * sw - pw + s
                                            if (0 <= fi < f_in and 0 <= hi < h_in
                                                    and 0 <= wi < w_in):
                                                e = (n, c, fi, hi, wi)
                                                assert e in x_l1, f"input {e} not in L1"
                                                xin[h, w] = x_l1[e]
                                                tr["inputs"]["reads"] += 1
                                            else:
                                                xin[h, w] = 0  # padding: no read
                                        win = {}
                                        for k in ks:
                                            e = (k, c, t, r, s)
                                            assert e in w_l1, f"weight {e} not in L1"
                                            win[k] = w_l1[e]
                                            tr["weights"]["reads"] += 1
                                        for pe in pes:
                                            acc[pe] += win[pe[0]] * xin[pe[1], pe[2]]
                                            tally.macs += 1
                        # Drain: always, one L1 write per active PE.
                        for pe, value in acc.items():
                            p_l1[n, pe[0], f, pe[1], pe[2]] = value
                            tr["psums"]["writes"] += 1

    # --- the loop nest ----------------------------------------------------------------
    l2_pieces = {d: _pieces(0, size[d], l2_tile[d]) for d in DIMS}
    outer, inner = mapping.outer_order, mapping.inner_order
    for n in range(n_img):
        for idx in itertools.product(*(range(len(l2_pieces[d])) for d in outer)):
            t2 = {d: l2_pieces[d][i] for d, i in zip(outer, idx)}
            need = keys(n, t2)
            c0, cl = t2["C"]
            # The step's own cost, in the DRAM phase: the one that fills the L2.
            tally.cycles["dram"] += hw.l2_step_overhead
            # Partial sums written back first.
            if l2["psums"]["key"] is not None and l2["psums"]["key"] != need["psums"]:
                l2_psum_writeback()
            if l2["inputs"]["key"] != need["inputs"]:
                elems = input_elements(n, t2)
                fits("l2", "inputs", len(elems))
                l2["inputs"] = {"key": need["inputs"],
                                "data": {e: x_val[e[0]][e[1]][e[2]][e[3]][e[4]]
                                         for e in elems}}
                tally.move("dram", "l2", "inputs", len(elems))
                tally.cycles["dram"] += dram_fill_cycles(len(elems))
            if l2["weights"]["key"] != need["weights"]:
                elems = weight_elements(t2)
                fits("l2", "weights", len(elems))
                l2["weights"] = {"key": need["weights"],
                                 "data": {e: w_val[e[0]][e[1]][e[2]][e[3]][e[4]]
                                          for e in elems}}
                tally.move("dram", "l2", "weights", len(elems))
                tally.cycles["dram"] += dram_fill_cycles(len(elems))
            if l2["psums"]["key"] != need["psums"]:
                elems = psum_elements(n, t2)
                fits("l2", "psums", len(elems))
                data = {}
                if c0 != 0:  # a refill of spilled partial sums
                    for e in elems:
                        assert e in dram_psum, f"refill of {e}: never spilled"
                        assert written.get(e, 0) == 0, f"refill of finished output {e}"
                        data[e] = dram_psum[e]
                    tally.move("dram", "l2", "psums", len(elems))
                    tally.refills += len(elems)
                    tally.cycles["dram"] += dram_fill_cycles(len(elems))
                l2["psums"] = {"key": need["psums"], "data": data,
                               "tile_elements": elems, "tile_set": set(elems)}
            l2_psum_c_end = c0 + cl

            # The L1 starts empty at every L2 step.
            l1 = {op: {"key": None, "data": {}} for op in OPERANDS}
            l1_pieces = {d: _pieces(t2[d][0], t2[d][1], l1_tile[d]) for d in DIMS}
            for jdx in itertools.product(*(range(len(l1_pieces[d])) for d in inner)):
                t1 = {d: l1_pieces[d][j] for d, j in zip(inner, jdx)}
                l1_step(n, t1, l1)
            # The L1 partial-sum tile held at the end of the L2 step goes back to the L2.
            l1_psum_writeback(l1)
    # The last L2 partial-sum tile is written back at the end.
    l2_psum_writeback()
    tally.cycles["dram"] += hw.layer_overhead   # once per layer (starting, finishing)

    # --- self-checks ------------------------------------------------------------------
    expect = _reference_conv(x_arr, w_arr, layer.stride, layer.padding)
    outputs = expect.size
    assert len(written) == outputs and all(v == 1 for v in written.values()), (
        "not every output was written to DRAM exactly once")
    got = np.zeros_like(expect)
    for (n, k, f, h, w) in written:
        got[n, k, f, h, w] = dram_psum[n, k, f, h, w]
    assert np.array_equal(got, expect), "the walk's outputs differ from conv3d"
    assert tally.macs == layer.macs
    assert tally.traffic["dram"]["psums"]["writes"] == tally.spills + outputs

    cycles = dict(tally.cycles)
    cycles["total"] = cycles["dram"] + cycles["l2"] + cycles["compute"]
    return Counts(traffic=tally.traffic, spills=tally.spills, refills=tally.refills,
                  macs=tally.macs, cycles=cycles, pes=hw.pes)
