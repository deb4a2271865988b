"""The RTL Diffy tile's contract: the pallet stream it consumes, the beats it must
produce, and the exact number of steps it takes (``dnnhw.rtl.diffy_tile.DiffyTile``).

:func:`tile_schedule` lays a conv layer out the way the tile works on it:

- for every image, filter pass (``filters`` filters at a time), window group
  (``windows`` output positions in raster order, the last group padded with idle
  columns), kernel row r, kernel column s and channel group (``lanes`` channels, the
  last padded with zeros): one *pallet*, i.e. one beat on the activation stream and one
  on the weight stream;
- an activation beat holds the raw window values of every column, the ``prev`` brick
  (the same kernel position of the window just before column 0, when it is in the same
  output row) and the ``raw`` flags (column starts an output row, or is idle); the last
  pallet of a group has ``last``;
- every group yields one output beat with the F x W convolution outputs (plain integer
  convolution, ``conv2d_direct_int``; 0 for idle columns and missing filters).

The step model (``pallet_steps``) is the RTL's synchronisation: all W columns work on
one pallet in lockstep, so a pallet takes the most steps of any of its columns, and at
least one: ``brick_steps_masks`` over the terms of each column's values (the window
deltas of ``window_deltas`` for Diffy, the raw windows for Pragmatic), ``precision``
steps for Stripes and one for the bit-parallel mode. This is the published rule with
``sync="windows"`` and no column registers, so ``steps`` equals
``diffy_cycles``/``pragmatic_cycles``/``stripes_cycles`` of a single tile (a test checks
it). With inputs always valid and the output always ready the RTL's last output leaves
``steps + latency - 1`` cycles after its first input transfer.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dnnhw.spec.diffy_tile import MODES, TERM_SERIAL_MODES

from . import diffy_published as _diffy
from .conv import conv2d_direct_int


__all__ = ["MODES", "TileSchedule", "tile_schedule", "published_cycles"]


@dataclasses.dataclass
class TileSchedule:
    """One layer laid out for the tile (P pallets, G output beats).

    Members
    -------
    acts : (P, W, L) int64, raw activations per column and lane
    prev : (P, L) int64, the brick of the window before column 0 (0 if none)
    raw : (P, W) bool, column starts an output row or is idle
    last : (P,) bool, the pallet ends its group
    weights : (P, F, L) int64
    outputs : (G, F, W) int64, the sums of every output beat
    pallet_steps : (P,) int64, steps the RTL takes on each pallet
    steps : int, their sum
    stripes_msb, stripes_signed : the Stripes precision of the layer (``msb + 1`` bits)
    """
    acts: np.ndarray
    prev: np.ndarray
    raw: np.ndarray
    last: np.ndarray
    weights: np.ndarray
    outputs: np.ndarray
    pallet_steps: np.ndarray
    steps: int
    stripes_msb: int
    stripes_signed: bool


def _check_mode(mode):
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def tile_schedule(x, w, stride=1, padding=0, *, lanes, filters, windows, width=16,
                  mode="diffy", encoding="best", shifter_bits=2) -> TileSchedule:
    """Lay the layer ``x`` (C, H, W) or (N, C, H, W) * ``w`` (K, C, R, S) out as the tile's
    streams; see the module docstring. Values must be ``width``-bit signed integers."""
    _check_mode(mode)
    tile = _diffy.TileConfig(lanes=lanes, filters=filters, windows=windows,
                             shifter_bits=shifter_bits)
    width = _diffy.check_width(width)
    xb = np.asarray(x, dtype=np.int64)
    if xb.ndim == 3:
        xb = xb[None]
    wt = np.asarray(w, dtype=np.int64)
    if xb.ndim != 4 or wt.ndim != 4:
        raise ValueError(f"x must be (C, H, W) or (N, C, H, W) and w (K, C, R, S), "
                         f"got {np.shape(x)} and {np.shape(w)}")
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    for name, arr in (("x", xb), ("w", wt)):
        if arr.size and (arr.min() < lo or arr.max() > hi):
            raise ValueError(f"{name} must hold {width}-bit values {lo}..{hi}")
    N, C, H, Wd = xb.shape
    K, Cw, R, S = wt.shape
    if Cw != C:
        raise ValueError(f"w has {Cw} input channels but x has {C}")
    L, F, W = lanes, filters, windows
    win = _diffy.im2col_windows(xb, (R, S), stride, padding)        # (N, C, OH, OW, R, S)
    OH, OW = win.shape[2], win.shape[3]
    CG, FP = -(-C // L), -(-K // F)
    Cp, Kp = CG * L, FP * F
    flat = np.zeros((N, Cp, OH * OW, R, S), dtype=np.int64)
    flat[:, :C] = win.reshape(N, C, OH * OW, R, S)
    groups = _diffy.window_groups(OH, OW, W)                          # (G, W), -1 idle
    G = groups.shape[0]
    idle = groups < 0

    def gather(index):
        """(N, Cp, *index.shape, R, S) window values at flat positions ``index``."""
        vals = flat[:, :, np.where(index < 0, 0, index)]
        return np.where((index >= 0)[None, None, ..., None, None], vals, 0)

    # acts[n, g, r, s, cg, w, l]
    acts = gather(groups).reshape(N, CG, L, G, W, R, S).transpose(0, 3, 5, 6, 1, 4, 2)
    first_col = groups[:, 0]
    before = np.where((first_col >= 0) & (first_col % OW != 0), first_col - 1, -1)
    prev = gather(before).reshape(N, CG, L, G, R, S).transpose(0, 3, 4, 5, 1, 2)
    raw = idle | (groups % OW == 0)                                    # (G, W)

    wp = np.zeros((Kp, Cp, R, S), dtype=np.int64)
    wp[:K, :C] = wt
    weights = wp.reshape(FP, F, CG, L, R, S).transpose(0, 4, 5, 2, 1, 3)  # (FP, R, S, CG, F, L)

    # Pallet order: image, filter pass, group, r, s, channel group.
    per = (N, FP, G, R, S, CG)
    P = int(np.prod(per))
    acts_p = np.broadcast_to(acts[:, None], per + (W, L)).reshape(P, W, L)
    prev_p = np.broadcast_to(prev[:, None], per + (L,)).reshape(P, L)
    raw_p = np.broadcast_to(raw[None, None, :, None, None, None], per + (W,)).reshape(P, W)
    last = np.zeros(per, dtype=bool)
    last[..., -1, -1, -1] = True
    weights_p = np.broadcast_to(weights[None, :, None], per + (F, L)).reshape(P, F, L)

    out = conv2d_direct_int(xb, wt, stride=stride, padding=padding)  # (N, K, OH, OW)
    outp = np.zeros((N, Kp, OH * OW), dtype=np.int64)
    outp[:, :K] = out.reshape(N, K, OH * OW)
    sums = np.where(idle[None, None], 0, outp[:, :, np.where(idle, 0, groups)])  # (N, Kp, G, W)
    outputs = sums.reshape(N, FP, F, G, W).transpose(0, 1, 3, 2, 4).reshape(N * FP * G, F, W)

    stripes_msb = _diffy.precision_bits(xb) - 1
    stripes_signed = bool(xb.size and xb.min() < 0)
    if mode in TERM_SERIAL_MODES:
        # The values each column works on, from the golden delta definition (not from the
        # prev/raw fields above, which are what the RTL's front-end subtracts).
        source = (_diffy.window_deltas(xb, (R, S), stride, padding) if mode == "diffy"
                  else win)
        sflat = np.zeros((N, Cp, OH * OW, R, S), dtype=np.int64)
        sflat[:, :C] = source.reshape(N, C, OH * OW, R, S)
        vals = np.where(idle[None, None, ..., None, None],
                        0, sflat[:, :, np.where(idle, 0, groups)])
        vals = vals.reshape(N, CG, L, G, W, R, S).transpose(0, 3, 5, 6, 1, 4, 2)
        masks = _diffy.term_masks(vals, width, encoding, delta=mode == "diffy")
        col_steps = _diffy.brick_steps_masks(masks, tile.shifter_bits)   # (N, G, R, S, CG, W)
        steps = np.maximum(col_steps.max(axis=-1), 1)
        pallet_steps = np.broadcast_to(steps[:, None], per).reshape(P)
    elif mode == "stripes":
        pallet_steps = np.full(P, stripes_msb + 1, dtype=np.int64)
    else:
        pallet_steps = np.ones(P, dtype=np.int64)
    return TileSchedule(
        acts=np.ascontiguousarray(acts_p), prev=np.ascontiguousarray(prev_p),
        raw=np.ascontiguousarray(raw_p), last=last.reshape(P),
        weights=np.ascontiguousarray(weights_p), outputs=outputs,
        pallet_steps=np.ascontiguousarray(pallet_steps, dtype=np.int64),
        steps=int(pallet_steps.sum()), stripes_msb=stripes_msb,
        stripes_signed=stripes_signed)


def published_cycles(x, w, stride=1, padding=0, *, mode, lanes, filters, windows, width=16,
                     encoding="best", shifter_bits=2) -> int:
    """Cycles of one tile of this geometry in ``mode`` by the published models of
    ``dnnhw.golden.diffy_published``: ``diffy_cycles``, ``pragmatic_cycles``, ``stripes_cycles``
    (the layer's precision) or ``bit_parallel_cycles`` with ``windows`` windows per
    cycle; equal to ``tile_schedule(...).steps`` (tested)."""
    _check_mode(mode)
    tile = _diffy.TileConfig(lanes=lanes, filters=filters, windows=windows,
                             shifter_bits=shifter_bits, bit_parallel_windows=windows)
    if mode == "bitparallel":
        return _diffy.bit_parallel_cycles(x, w, stride, padding, tile=tile, width=width)
    if mode == "stripes":
        return _diffy.stripes_cycles(x, w, stride, padding, tile=tile, width=width)
    model = _diffy.diffy_cycles if mode == "diffy" else _diffy.pragmatic_cycles
    return model(x, w, stride, padding, tile=tile, width=width, encoding=encoding)
