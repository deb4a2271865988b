"""Golden model of Diffy (Mahmoud et al., MICRO 2018) and its bit-serial lineage.

Everything here is integer arithmetic on two's-complement fixed-point values of
``width`` bits (8..16, default 16).  The module has three parts:

1. **Term encodings.**  A value is split into signed power-of-two *terms*
   ``(offset, sign)``, meaning ``sign * 2**offset``, lowest offset first.

   * ``"plain"``: the set bits of the magnitude, all with the value's sign
     (sign-magnitude; Pragmatic's "effectual bits").
   * ``"csd"``: the canonical signed digit / non-adjacent form (NAF) of the
     magnitude, each digit's sign multiplied by the value's sign.  NAF is the
     unique signed-binary form with no two adjacent non-zero digits and has the
     minimum number of non-zero digits of all signed-binary forms.
   * ``"best"`` (default, what the paper and DNNsim do: "Booth-like recoding
     kept only where it yields fewer terms"): per value, CSD if it has strictly
     fewer terms than plain, else plain.  Because NAF is minimal, "best" always
     has exactly ``min(plain, csd)`` terms; on a tie plain wins (no negative
     terms, hence simpler hardware and the same cycle count).

   Term offsets: a raw ``width``-bit value has magnitude <= 2**(width-1) and
   offsets 0..width-1 in every encoding; a delta has magnitude <= 2**width - 1
   and offsets 0..width (NAF may need one digit above the top magnitude bit).
   Vectorised counting goes through one lookup table over all magnitudes
   0..2**16, which covers raw values and deltas of every legal width.

2. **Differential convolution.**  ``window_deltas`` builds what the Diffy tile
   sees: the im2col-style windows of the zero-padded input, and for every
   output column ``ox >= 1`` the difference between the window at ``ox`` and
   the window at ``ox - 1`` (element by element; that is
   ``P(y, ox*s + j) - P(y, (ox-1)*s + j) = P(x) - P(x - s)`` on the padded
   input ``P``).  The first window of every output row is raw.
   ``diffy_conv2d`` convolves the weights with these deltas and rebuilds the
   outputs with a running sum along X; it is bit-exact equal to a plain
   integer convolution for every layer.  ``input_deltas`` gives the same
   deltas in storage form (one value per padded-input element, step = stride
   along X); it agrees with ``window_deltas`` everywhere except inside the
   first window of a row when the kernel is wider than the stride, where the
   hardware needs raw values.  That is why the cycle models use
   ``window_deltas``: it is exactly what DNNsim's BitPragmatic-with-Diffy
   feeds to its lanes.  Delta values need ``width + 1`` bits:
   ``delta_range(width) == (-(2**width - 1), 2**width - 1)``.

3. **Cycle models** of one tile (``TileConfig``): ``lanes`` L activations
   (input channels) per brick, ``filters`` F, ``windows`` W (output positions
   processed together, one column each), ``shifter_bits`` B.  A *brick* is L
   activations of one window at one kernel position (r, s) and one group of L
   channels.  A *pallet* is the W bricks of the W windows at the same (r, s,
   channel group): the tile broadcasts the same weights to all W columns, so
   the columns are synchronised per pallet.

   * ``bit_parallel_cycles``: value-agnostic DaDianNao-like engine, one brick
     of L activations x F filters for ``TileConfig.bit_parallel_windows``
     windows per cycle (default 1: DaDianNao, and DNNsim's ``base_cycles``;
     the bit-serial engines compensate for being serial with their W
     columns).  Set ``bit_parallel_windows=W`` for a bit-parallel engine as
     wide as the bit-serial tile.
   * ``stripes_cycles``: ``precision`` cycles per pallet; precision is
     ``"layer"`` (Stripes: one profiled precision for the whole input tensor,
     default), ``"group"`` (Dynamic Stripes: the precision of the values in
     each synchronised group) or a fixed int.
   * ``pragmatic_cycles`` / ``diffy_cycles``: the term-serial rule
     (``brick_steps``) over the raw window terms / the window-delta terms.

   Synchronisation (``sync``): ``"windows"`` (published DNNsim rule with
   ``COLUMN_REGISTERS = 0``): each pallet costs the max over its W bricks.
   With ``column_registers = R > 0`` DNNsim's column-register rule lets a
   column run ahead: after pallet t, a column whose finish time is <= the
   slowest column's finish time of pallet t - R is moved to that time + 1.
   ``"column"``: every column runs alone through the whole layer and the layer
   costs the max over columns of their sums (an idealised lower bound).
   Cycle counts are per tile; every tile works on another set of F filters
   with the same activations, so a layer costs ``ceil(K / (F * tiles))``
   passes.  Windows are grouped W at a time in raster order (DNNsim's
   ``iterateWindows``; groups may straddle output rows) unless
   ``row_aligned=True``.  Batches are summed image by image.

The core rule is ``brick_steps`` (readable, per lane offset lists) and its
vectorised twin ``brick_steps_masks``; the layer functions compose it, so a
different hardware rule (the RTL-exact one) only needs a new per-brick
function or a new ``sync`` mode in ``combine_pallets``.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
from typing import Iterable, Sequence

import numpy as np

from dnnhw.spec import diffy_tile as _tile_spec

from ._checks import check_int
from . import conv_common

__all__ = [
    "WIDTH_RANGE",
    "SHIFTER_BITS_RANGE",
    "ENCODINGS",
    "SYNC_MODES",
    "TileConfig",
    "value_range",
    "delta_range",
    "check_width",
    "check_values",
    "quantize",
    "plain_terms",
    "csd_terms",
    "encode_terms",
    "terms_value",
    "term_count",
    "term_masks",
    "term_neg_masks",
    "precision_bits",
    "im2col_windows",
    "window_deltas",
    "input_deltas",
    "diffy_conv2d",
    "brick_steps",
    "brick_steps_masks",
    "window_groups",
    "pallets",
    "combine_pallets",
    "bit_parallel_cycles",
    "stripes_cycles",
    "pragmatic_cycles",
    "diffy_cycles",
    "activation_stats",
    "layer_report",
]

# The tile's legal widths and shifters are the models' (inclusive bounds).
WIDTH_RANGE = (_tile_spec.WIDTHS[0], _tile_spec.WIDTHS[-1])
SHIFTER_BITS_RANGE = (_tile_spec.SHIFTER_BITS[0], _tile_spec.SHIFTER_BITS[-1])
ENCODINGS = _tile_spec.ENCODINGS
SYNC_MODES = ("windows", "column")

_LUT_MAX_MAGNITUDE = 1 << WIDTH_RANGE[1]  # covers raw values and deltas of every width


# --------------------------------------------------------------------------
# validation helpers


def check_width(width) -> int:
    """Validate an activation/weight width (8..16 bits) and return it as int."""
    return check_int("width", width, *WIDTH_RANGE)


def _check_shifter_bits(shifter_bits) -> int:
    return check_int("shifter_bits", shifter_bits, *SHIFTER_BITS_RANGE)


def _check_encoding(encoding) -> str:
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    return encoding


def value_range(width: int = 16) -> tuple[int, int]:
    """Range of a ``width``-bit two's-complement value."""
    width = check_width(width)
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


def delta_range(width: int = 16) -> tuple[int, int]:
    """Range of the difference of two ``width``-bit values (needs width + 1 bits)."""
    width = check_width(width)
    return -((1 << width) - 1), (1 << width) - 1


def _as_int_array(name: str, values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def check_values(name: str, values, width: int = 16, *, delta: bool = False) -> np.ndarray:
    """Return ``values`` as int64 after checking they fit ``width`` bits.

    With ``delta=True`` the legal range is that of deltas of ``width``-bit
    values (``width + 1`` bits, see ``delta_range``).
    """
    width = check_width(width)
    arr = _as_int_array(name, values)
    lo, hi = delta_range(width) if delta else value_range(width)
    if arr.size:
        amin, amax = int(arr.min()), int(arr.max())
        if amin < lo or amax > hi:
            kind = f"delta range of {width}-bit values" if delta else f"{width}-bit two's complement range"
            raise ValueError(
                f"{name} has values in [{amin}, {amax}], outside the {kind} [{lo}, {hi}]"
            )
    return arr


def quantize(x, width: int = 16, frac_bits: int = 0) -> np.ndarray:
    """Round real ``x * 2**frac_bits`` to nearest (ties to even) and saturate to ``width`` bits."""
    width = check_width(width)
    frac_bits = check_int("frac_bits", frac_bits, 0, width - 1)
    lo, hi = value_range(width)
    scaled = np.rint(np.asarray(x, dtype=np.float64) * (1 << frac_bits))
    return np.clip(scaled, lo, hi).astype(np.int64)


# --------------------------------------------------------------------------
# term encodings (scalar reference implementations)


def _check_scalar(value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"value must be an int, got {type(value).__name__} {value!r}")
    return int(value)


def plain_terms(value: int) -> list[tuple[int, int]]:
    """Set bits of ``|value|`` as ``(offset, sign)`` terms, lowest offset first."""
    value = _check_scalar(value)
    sign = -1 if value < 0 else 1
    mag = abs(value)
    out = []
    offset = 0
    while mag:
        if mag & 1:
            out.append((offset, sign))
        mag >>= 1
        offset += 1
    return out


def csd_terms(value: int) -> list[tuple[int, int]]:
    """Canonical signed digit (non-adjacent form) of ``|value|``, times the value's sign.

    Digits are produced LSB first: when the remaining magnitude is odd the
    digit is ``2 - (m mod 4)`` (+1 or -1), which makes the next digit zero.
    """
    value = _check_scalar(value)
    sign = -1 if value < 0 else 1
    mag = abs(value)
    out = []
    offset = 0
    while mag:
        if mag & 1:
            digit = 2 - (mag & 3)
            out.append((offset, sign * digit))
            mag -= digit
        mag >>= 1
        offset += 1
    return out


def encode_terms(value: int, width: int = 16, encoding: str = "best", *,
                 delta: bool = False) -> list[tuple[int, int]]:
    """Terms of one ``width``-bit value (or delta with ``delta=True``) in ``encoding``.

    ``"best"`` returns the CSD terms when they are strictly fewer than the
    plain ones, otherwise the plain terms.
    """
    _check_encoding(encoding)
    value = _check_scalar(value)
    check_values("value", np.array([value]), width, delta=delta)
    if encoding == "plain":
        return plain_terms(value)
    if encoding == "csd":
        return csd_terms(value)
    plain, csd = plain_terms(value), csd_terms(value)
    return csd if len(csd) < len(plain) else plain


def terms_value(terms: Iterable[tuple[int, int]]) -> int:
    """Rebuild the integer ``sum(sign * 2**offset)`` from terms."""
    total = 0
    for offset, sign in terms:
        if sign not in (1, -1):
            raise ValueError(f"term sign must be +1 or -1, got {sign!r}")
        if offset < 0:
            raise ValueError(f"term offset must be >= 0, got {offset!r}")
        total += sign << offset
    return total


# --------------------------------------------------------------------------
# term encodings (vectorised through a lookup table over magnitudes)


def _popcount(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.int64, copy=True)
    count = np.zeros(a.shape, dtype=np.int64)
    while np.any(a):
        count += a & 1
        a >>= 1
    return count


@functools.lru_cache(maxsize=None)
def _lut() -> dict[str, np.ndarray]:
    """Per magnitude 0..2**16: offset masks and term counts for every encoding."""
    mags = np.arange(_LUT_MAX_MAGNITUDE + 1, dtype=np.int64)
    pos = np.zeros_like(mags)
    neg = np.zeros_like(mags)
    m = mags.copy()
    bit = 0
    while np.any(m):
        odd = (m & 1) == 1
        digit = np.where(odd, 2 - (m & 3), 0)
        pos |= np.where(digit == 1, 1 << bit, 0)
        neg |= np.where(digit == -1, 1 << bit, 0)
        m = (m - digit) >> 1
        bit += 1
    plain_count = _popcount(mags)
    csd_mask = pos | neg
    csd_count = _popcount(csd_mask)
    use_csd = csd_count < plain_count
    tables = {
        "plain_mask": mags.astype(np.int32),
        "plain_neg": np.zeros(mags.shape, dtype=np.int32),
        "plain_count": plain_count.astype(np.uint8),
        "csd_mask": csd_mask.astype(np.int32),
        "csd_neg": neg.astype(np.int32),
        "csd_count": csd_count.astype(np.uint8),
        "best_mask": np.where(use_csd, csd_mask, mags).astype(np.int32),
        "best_neg": np.where(use_csd, neg, 0).astype(np.int32),
        "best_count": np.minimum(plain_count, csd_count).astype(np.uint8),
    }
    for t in tables.values():
        t.setflags(write=False)
    return tables


def term_count(values, width: int = 16, encoding: str = "best", *, delta: bool = False) -> np.ndarray:
    """Number of terms of every element (uint8 array of the same shape)."""
    _check_encoding(encoding)
    arr = check_values("values", values, width, delta=delta)
    return _lut()[f"{encoding}_count"][np.abs(arr)]


def term_masks(values, width: int = 16, encoding: str = "best", *, delta: bool = False) -> np.ndarray:
    """Bit mask of the term offsets of every element (bit k set: a term 2**k).

    Term signs do not matter for timing; ``encode_terms`` gives them.
    """
    _check_encoding(encoding)
    arr = check_values("values", values, width, delta=delta)
    return _lut()[f"{encoding}_mask"][np.abs(arr)]


def term_neg_masks(values, width: int = 16, encoding: str = "best", *, delta: bool = False) -> np.ndarray:
    """Bit mask of the offsets whose term is negative (value's sign applied).

    Together with ``term_masks`` this is the vectorised form of
    ``encode_terms`` (what a hardware term encoder emits).
    """
    _check_encoding(encoding)
    arr = check_values("values", values, width, delta=delta)
    mag = np.abs(arr)
    mask = _lut()[f"{encoding}_mask"][mag]
    neg = _lut()[f"{encoding}_neg"][mag]
    return np.where(arr < 0, mask ^ neg, neg).astype(np.int32)


def precision_bits(values) -> int:
    """Bits needed to hold ``values``: unsigned if none is negative, else two's complement.

    At least 1 (an all-zero group still takes one bit-serial cycle).  Only
    leading bits are trimmed (trailing zero bits still cost cycles).
    """
    arr = _as_int_array("values", values)
    if arr.size == 0:
        return 1
    amin, amax = int(arr.min()), int(arr.max())
    if amin >= 0:
        return max(1, amax.bit_length())
    return max(amax.bit_length(), (-amin - 1).bit_length()) + 1


def _bit_length(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.int64)
    n = np.zeros(a.shape, dtype=np.int64)
    while np.any(a):
        n += a != 0
        a >>= 1
    return n


def _precision_bits_array(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Element-wise ``precision_bits([lo, hi])`` (lo <= hi, lo <= 0 <= hi not required)."""
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    unsigned = np.maximum(_bit_length(np.maximum(hi, 0)), 1)
    signed = np.maximum(_bit_length(np.maximum(hi, 0)), _bit_length(np.maximum(-lo - 1, 0))) + 1
    return np.where(lo >= 0, unsigned, signed)


# --------------------------------------------------------------------------
# convolution geometry and deltas


def _as_batched(name: str, x) -> tuple[np.ndarray, bool]:
    arr = _as_int_array(name, x)
    if arr.ndim == 3:
        return arr[None], True
    if arr.ndim == 4:
        return arr, False
    raise ValueError(f"{name} must have shape (C, H, W) or (N, C, H, W), got {arr.shape}")


def _geometry(xb: np.ndarray, kernel, stride, padding) -> conv_common.ConvGeometry:
    """The 2D convolution geometry of the batched ``xb`` and an (R, S) ``kernel`` (an int
    or a pair, like ``stride`` and ``padding``)."""
    kernel = conv_common.check_int_tuple(kernel, "kernel", 2, 1)
    return conv_common.conv_geometry(xb.shape, (1, xb.shape[1]) + kernel, spatial_ndim=2,
                                     stride=stride, padding=padding)


def _windows(xb: np.ndarray, geometry: conv_common.ConvGeometry) -> np.ndarray:
    """(N, C, OH, OW, R, S) view of the padded input's windows."""
    padded, _ = conv_common.pad_input(xb, geometry, np.int64)
    view = np.lib.stride_tricks.sliding_window_view(padded, geometry.kernel_shape, axis=(2, 3))
    sy, sx = geometry.stride
    return view[:, :, ::sy, ::sx]


def im2col_windows(x, kernel, stride=1, padding=0) -> np.ndarray:
    """Raw windows, shape (C, OH, OW, R, S) (or with a leading N), int64 copy."""
    xb, squeeze = _as_batched("x", x)
    win = np.array(_windows(xb, _geometry(xb, kernel, stride, padding)), order="C")
    return win[0] if squeeze else win


def _window_deltas_b(xb, geometry) -> np.ndarray:
    win = _windows(xb, geometry)
    d = np.array(win, dtype=np.int64)
    d[:, :, :, 1:] -= win[:, :, :, :-1]
    return d


def window_deltas(x, kernel, stride=1, padding=0) -> np.ndarray:
    """The delta tensor the Diffy tile sees, shape (C, OH, OW, R, S) (or with leading N).

    ``d[c, oy, ox, r, s] = win[c, oy, ox, r, s] - win[c, oy, ox - 1, r, s]`` for
    ``ox >= 1`` and the raw window for ``ox == 0``, where ``win`` are the
    windows of the zero-padded input: the window at ``ox`` reads padded columns
    ``ox*stride .. ox*stride + S - 1``, so every delta is ``P(x) - P(x - stride)``.
    Values lie in ``delta_range(width)`` for ``width``-bit inputs.
    """
    xb, squeeze = _as_batched("x", x)
    d = _window_deltas_b(xb, _geometry(xb, kernel, stride, padding))
    return d[0] if squeeze else d


def input_deltas(x, stride=1, padding=0) -> np.ndarray:
    """Storage-form deltas of the zero-padded input along X with step ``stride``.

    ``D[c, y, p] = P[c, y, p] - P[c, y, p - sx]`` for ``p >= sx`` and raw
    ``P[c, y, p]`` for the first ``sx`` columns (``sx`` = X stride).  For
    ``ox >= 1`` the window deltas are a gather of these
    (``window_deltas[..., oy, ox, r, s] == D[..., oy*sy + r, ox*sx + s]``); the
    first window of a row differs when the kernel is wider than the stride.
    """
    xb, squeeze = _as_batched("x", x)
    geometry = _geometry(xb, 1, stride, padding)
    _, sx = geometry.stride
    padded, _ = conv_common.pad_input(xb, geometry, np.int64)
    d = padded.copy()
    if sx < padded.shape[-1]:
        d[..., sx:] -= padded[..., :-sx]
    return d[0] if squeeze else d


def _check_layer(x, w, width, check_w_range=True):
    xb, squeeze = _as_batched("x", x)
    xb = check_values("x", xb, width)
    wt = _as_int_array("w", w)
    if wt.ndim != 4:
        raise ValueError(f"w must have shape (K, C, R, S), got {wt.shape}")
    if wt.shape[1] != xb.shape[1]:
        raise ValueError(f"w has {wt.shape[1]} input channels but x has {xb.shape[1]}")
    if check_w_range:
        wt = check_values("w", wt, width)
    return xb, squeeze, wt


def diffy_conv2d(x, w, stride=1, padding=0, *, width: int = 16) -> np.ndarray:
    """Convolution computed the Diffy way, bit-exact with a plain integer conv.

    Each output row: the first output column convolves the raw window; every
    next column adds the convolution of the weights with the window delta to
    the previous output (a running sum along X).  ``x`` is (C, H, W) or
    (N, C, H, W), ``w`` is (K, C, R, S), both ``width``-bit; returns int64
    (K, OH, OW) or (N, K, OH, OW).
    """
    width = check_width(width)
    xb, squeeze, wt = _check_layer(x, w, width)
    d = _window_deltas_b(xb, _geometry(xb, wt.shape[2:], stride, padding))
    lo, hi = delta_range(width)
    assert d.size == 0 or (d.min() >= lo and d.max() <= hi)
    # partial[n, oy, ox, k] = sum_{c, r, s} w[k, c, r, s] * d[n, c, oy, ox, r, s]
    partial = np.tensordot(d, wt, axes=([1, 4, 5], [1, 2, 3]))
    out = np.cumsum(partial, axis=2).transpose(0, 3, 1, 2)
    out = np.ascontiguousarray(out, dtype=np.int64)
    return out[0] if squeeze else out


# --------------------------------------------------------------------------
# the core term-serial rule


def brick_steps(lane_offsets: Sequence[Iterable[int]], shifter_bits: int = 2, *,
                empty_cycles: int = 1) -> int:
    """Cycles one brick takes on the Pragmatic / Diffy term-serial lanes.

    ``lane_offsets[i]`` are the term offsets of lane i (any order).  Each step
    the base is the lowest remaining offset over all lanes; every lane whose
    lowest remaining offset is within ``[base, base + 2**shifter_bits - 1]``
    retires that one term.  Steps run until every lane is empty.  A brick
    with no terms at all costs ``empty_cycles`` (1 in the published model).
    """
    shifter_bits = _check_shifter_bits(shifter_bits)
    empty_cycles = check_int("empty_cycles", empty_cycles, 0)
    lanes = []
    for i, offs in enumerate(lane_offsets):
        offs = sorted(int(o) for o in offs)
        if offs and offs[0] < 0:
            raise ValueError(f"lane {i} has a negative term offset {offs[0]}")
        lanes.append(offs)
    span = (1 << shifter_bits) - 1
    steps = 0
    while any(lanes):
        base = min(offs[0] for offs in lanes if offs)
        for offs in lanes:
            if offs and offs[0] <= base + span:
                offs.pop(0)
        steps += 1
    return steps if steps else empty_cycles


def brick_steps_masks(masks, shifter_bits: int = 2, *, empty_cycles: int = 1) -> np.ndarray:
    """Vectorised ``brick_steps``: ``masks[..., lane]`` are term-offset bit masks.

    Returns an int64 array of shape ``masks.shape[:-1]`` with the steps of
    every brick.  Each step removes every term at the base offset, so a brick
    takes at most as many steps as it has distinct offsets.
    """
    shifter_bits = _check_shifter_bits(shifter_bits)
    empty_cycles = check_int("empty_cycles", empty_cycles, 0)
    m = _as_int_array("masks", masks)
    if m.ndim < 1 or m.shape[-1] < 1:
        raise ValueError(f"masks must have a non-empty lane axis (last axis), got shape {m.shape}")
    if m.size and m.min() < 0:
        raise ValueError("masks must be non-negative offset bit masks")
    if m.size and int(m.max()).bit_length() > 40:
        raise ValueError("masks may hold offsets 0..39 only")
    shape = m.shape[:-1]
    flat = m.reshape(-1, m.shape[-1])
    steps = np.zeros(flat.shape[0], dtype=np.int64)
    active = np.flatnonzero((flat != 0).any(axis=1))
    sub = flat[active]
    shift = (1 << shifter_bits) - 1
    big = np.int64(1) << np.int64(62)
    while active.size:
        low = sub & -sub                       # lowest remaining term (as a power of two)
        base = np.where(sub != 0, low, big).min(axis=1, keepdims=True)
        retire = (sub != 0) & (low <= (base << shift))
        sub = np.where(retire, sub ^ low, sub)
        steps[active] += 1
        keep = (sub != 0).any(axis=1)
        active, sub = active[keep], sub[keep]
    steps[steps == 0] = empty_cycles
    return steps.reshape(shape)


# --------------------------------------------------------------------------
# tile configuration, pallets, synchronisation


@dataclasses.dataclass(frozen=True)
class TileConfig:
    """One tile of a bit-serial accelerator (Diffy's: 16 x 16 x 16, B = 2).

    lanes                L activations (input channels) per brick
    filters              F filters per tile (all see the same activations)
    windows              W windows (output positions) per tile, one column each
    shifter_bits         B: a lane can take a term up to 2**B - 1 above the base
    tiles                tiles working on different filters in lockstep
    bit_parallel_windows windows per cycle of the bit-parallel baseline
                         (1 = DaDianNao / DNNsim's baseline)
    sync                 "windows" (pallet lockstep, published) or "column"
    column_registers     DNNsim column registers (sync="windows" only; 0 = lockstep)
    row_aligned          True: window groups never straddle output rows
    empty_cycles         cycles of an all-zero brick (1 published)
    """

    lanes: int = 16
    filters: int = 16
    windows: int = 16
    shifter_bits: int = 2
    tiles: int = 1
    bit_parallel_windows: int = 1
    sync: str = "windows"
    column_registers: int = 0
    row_aligned: bool = False
    empty_cycles: int = 1

    def __post_init__(self):
        for name in ("lanes", "filters", "windows", "tiles", "bit_parallel_windows"):
            check_int(name, getattr(self, name), 1)
        _check_shifter_bits(self.shifter_bits)
        check_int("column_registers", self.column_registers, 0)
        check_int("empty_cycles", self.empty_cycles, 0)
        if self.sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {SYNC_MODES}, got {self.sync!r}")
        if self.sync == "column" and self.column_registers:
            raise ValueError("column_registers applies to sync='windows' only; use 0 with sync='column'")
        if not isinstance(self.row_aligned, bool):
            raise TypeError(f"row_aligned must be a bool, got {self.row_aligned!r}")


def _check_tile(tile) -> TileConfig:
    if tile is None:
        return TileConfig()
    if not isinstance(tile, TileConfig):
        raise TypeError(f"tile must be a TileConfig, got {type(tile).__name__}")
    return tile


def window_groups(out_h: int, out_w: int, windows: int, row_aligned: bool = False) -> np.ndarray:
    """Flat output-position indices processed together, shape (G, windows); -1 = idle column.

    Raster order (oy major, ox minor) chunked ``windows`` at a time, like
    DNNsim's ``iterateWindows``; with ``row_aligned`` every output row starts
    a new group.
    """
    out_h = check_int("out_h", out_h, 1)
    out_w = check_int("out_w", out_w, 1)
    windows = check_int("windows", windows, 1)
    if row_aligned:
        per_row = -(-out_w // windows)
        idx = np.full((out_h, per_row * windows), -1, dtype=np.int64)
        idx[:, :out_w] = np.arange(out_h * out_w).reshape(out_h, out_w)
        return idx.reshape(-1, windows)
    n = out_h * out_w
    g = -(-n // windows)
    idx = np.full(g * windows, -1, dtype=np.int64)
    idx[:n] = np.arange(n)
    return idx.reshape(g, windows)


def pallets(win: np.ndarray, tile: TileConfig) -> tuple[np.ndarray, np.ndarray]:
    """Arrange (N, C, OH, OW, R, S) window values into pallets.

    Returns ``(values, valid)``: ``values`` has shape (N, P, W, L), ``valid``
    (P, W) says which columns hold a real window.  Pallet order is the DNNsim
    loop order: window group, then kernel row r, kernel column s, channel
    group.  Missing channels (C not a multiple of L) and idle columns hold 0.
    """
    tile = _check_tile(tile)
    N, C, OH, OW, R, S = win.shape
    L, W = tile.lanes, tile.windows
    groups = window_groups(OH, OW, W, tile.row_aligned)        # (G, W)
    G = groups.shape[0]
    CG = -(-C // L)
    flat = win.reshape(N, C, OH * OW, R, S)
    g = flat[:, :, np.clip(groups, 0, None)]                    # (N, C, G, W, R, S)
    g = np.where((groups >= 0)[None, None, :, :, None, None], g, 0)
    if CG * L != C:
        g = np.concatenate([g, np.zeros((N, CG * L - C) + g.shape[2:], dtype=g.dtype)], axis=1)
    g = g.reshape(N, CG, L, G, W, R, S).transpose(0, 3, 5, 6, 1, 4, 2)  # (N, G, R, S, CG, W, L)
    values = np.ascontiguousarray(g).reshape(N, G * R * S * CG, W, L)
    valid = np.repeat(groups >= 0, R * S * CG, axis=0)           # (P, W)
    return values, valid


def combine_pallets(cycles, sync: str = "windows", column_registers: int = 0) -> int:
    """Total cycles of a sequence of pallets, ``cycles[t, w]`` = brick cycles.

    ``"windows"``, no registers: ``sum_t max_w``.  ``"windows"`` with R column
    registers: DNNsim's rule (see module docstring).  ``"column"``:
    ``max_w sum_t``.  Idle columns should carry 0.
    """
    c = _as_int_array("cycles", cycles)
    if c.ndim != 2:
        raise ValueError(f"cycles must have shape (pallets, windows), got {c.shape}")
    if sync not in SYNC_MODES:
        raise ValueError(f"sync must be one of {SYNC_MODES}, got {sync!r}")
    column_registers = check_int("column_registers", column_registers, 0)
    if c.size == 0:
        return 0
    if sync == "column":
        return int(c.sum(axis=0).max())
    if column_registers == 0:
        return int(c.max(axis=1).sum())
    col = np.zeros(c.shape[1], dtype=np.int64)
    end_prev = [0] * column_registers
    for row in c:
        col += row
        floor = end_prev[0]
        col = np.where(col <= floor, floor + 1, col)
        end_prev = end_prev[1:] + [int(col.max())]
    return int(col.max())


def _filter_passes(k: int, tile: TileConfig) -> int:
    return -(-k // (tile.filters * tile.tiles))


def _layer_geometry(x, w, stride, padding, width):
    width = check_width(width)
    xb, _, wt = _check_layer(x, w, width, check_w_range=False)
    return xb, wt, _geometry(xb, wt.shape[2:], stride, padding), width


def _combine_images(brick_cycles: np.ndarray, valid: np.ndarray, tile: TileConfig) -> int:
    brick_cycles = np.where(valid[None], brick_cycles, 0)
    return sum(combine_pallets(img, tile.sync, tile.column_registers) for img in brick_cycles)


def bit_parallel_cycles(x, w, stride=1, padding=0, *, tile: TileConfig | None = None,
                        width: int = 16) -> int:
    """Value-agnostic bit-parallel engine: one brick (L acts x F filters) of
    ``tile.bit_parallel_windows`` windows per cycle."""
    tile = _check_tile(tile)
    xb, wt, geometry, width = _layer_geometry(x, w, stride, padding, width)
    N, C = xb.shape[:2]
    K, _, R, S = wt.shape
    G = window_groups(*geometry.out_shape, tile.bit_parallel_windows, tile.row_aligned).shape[0]
    return N * G * R * S * (-(-C // tile.lanes)) * _filter_passes(K, tile)


def stripes_cycles(x, w, stride=1, padding=0, *, tile: TileConfig | None = None,
                   width: int = 16, precision="layer") -> int:
    """Stripes: ``precision`` cycles per pallet.

    ``precision``: ``"layer"`` (one precision for the whole input tensor,
    ``precision_bits(x)``; Stripes), ``"group"`` (per synchronised group: the
    W x L values of a pallet with sync="windows", each brick with
    sync="column"; Dynamic Stripes) or an int 1..width.
    """
    tile = _check_tile(tile)
    xb, wt, geometry, width = _layer_geometry(x, w, stride, padding, width)
    win = _windows(xb, geometry)
    if isinstance(precision, str):
        if precision not in ("layer", "group"):
            raise ValueError(f"precision must be 'layer', 'group' or an int 1..{width}, got {precision!r}")
    else:
        precision = check_int("precision", precision, 1, width)
    values, valid = pallets(win, tile)
    N, P, W, L = values.shape
    if precision == "group":
        bmax, bmin = values.max(axis=-1), values.min(axis=-1)              # (N, P, W)
        if tile.sync == "windows":
            bmax = np.broadcast_to(np.where(valid, bmax, 0).max(axis=-1, keepdims=True), bmax.shape)
            bmin = np.broadcast_to(np.where(valid, bmin, 0).min(axis=-1, keepdims=True), bmin.shape)
        cyc = _precision_bits_array(bmin, bmax)
    else:
        p = precision_bits(xb) if precision == "layer" else precision
        cyc = np.full((N, P, W), p, dtype=np.int64)
    return _combine_images(cyc, valid, tile) * _filter_passes(wt.shape[0], tile)


def _term_serial_cycles(win, k, tile, width, encoding, delta) -> int:
    values, valid = pallets(win, tile)
    masks = term_masks(values, width, encoding, delta=delta)
    cyc = brick_steps_masks(masks, tile.shifter_bits, empty_cycles=tile.empty_cycles)
    return _combine_images(cyc, valid, tile) * _filter_passes(k, tile)


def pragmatic_cycles(x, w, stride=1, padding=0, *, tile: TileConfig | None = None,
                     width: int = 16, encoding: str = "best") -> int:
    """Pragmatic: ``brick_steps`` over the terms of the raw windows."""
    tile = _check_tile(tile)
    _check_encoding(encoding)
    xb, wt, geometry, width = _layer_geometry(x, w, stride, padding, width)
    return _term_serial_cycles(_windows(xb, geometry), wt.shape[0], tile, width, encoding,
                               False)


def diffy_cycles(x, w, stride=1, padding=0, *, tile: TileConfig | None = None,
                 width: int = 16, encoding: str = "best") -> int:
    """Diffy: ``brick_steps`` over the terms of ``window_deltas``."""
    tile = _check_tile(tile)
    _check_encoding(encoding)
    xb, wt, geometry, width = _layer_geometry(x, w, stride, padding, width)
    return _term_serial_cycles(_window_deltas_b(xb, geometry), wt.shape[0], tile, width,
                               encoding, True)


# --------------------------------------------------------------------------
# statistics and report


def activation_stats(x, width: int = 16, stride=1, encoding: str = "best") -> dict:
    """Terms per activation and zero fraction, raw vs delta, per stored element.

    Deltas are ``input_deltas(x, stride, padding=0)`` (along X with step
    stride; the first ``stride`` columns of each row raw), i.e. one value per
    activation, which is what the paper's 3.6 vs 1.9 terms compare.
    """
    width = check_width(width)
    xb, _ = _as_batched("x", x)
    xb = check_values("x", xb, width)
    d = input_deltas(xb, stride, 0)
    raw_t = term_count(xb, width, encoding)
    del_t = term_count(d, width, encoding, delta=True)
    n = xb.size
    return {
        "activations": int(n),
        "raw_terms_per_activation": float(raw_t.mean()) if n else 0.0,
        "delta_terms_per_activation": float(del_t.mean()) if n else 0.0,
        "raw_zero_fraction": float((xb == 0).mean()) if n else 0.0,
        "delta_zero_fraction": float((d == 0).mean()) if n else 0.0,
        "delta_min": int(d.min()) if n else 0,
        "delta_max": int(d.max()) if n else 0,
    }


def layer_report(x, w, stride=1, padding=0, tile: TileConfig | None = None, *,
                 width: int = 16, encoding: str = "best", stripes_precision="layer") -> dict:
    """Cycles of every engine for one conv layer and Diffy's speedups.

    Returns ``{"cycles": {...}, "speedup": {...}, "stats": {...}, "config": {...}}``
    where ``speedup["diffy_over_X"] = cycles[X] / cycles["diffy"]``.
    """
    tile = _check_tile(tile)
    _check_encoding(encoding)
    xb, wt, geometry, width = _layer_geometry(x, w, stride, padding, width)
    st, pd = geometry.stride, geometry.padding
    cycles = {
        "bit_parallel": bit_parallel_cycles(xb, wt, st, pd, tile=tile, width=width),
        "stripes": stripes_cycles(xb, wt, st, pd, tile=tile, width=width, precision=stripes_precision),
        "pragmatic": pragmatic_cycles(xb, wt, st, pd, tile=tile, width=width, encoding=encoding),
        "diffy": diffy_cycles(xb, wt, st, pd, tile=tile, width=width, encoding=encoding),
    }
    speedup = {f"diffy_over_{k}": cycles[k] / cycles["diffy"]
               for k in ("bit_parallel", "stripes", "pragmatic")}
    speedup["pragmatic_over_bit_parallel"] = cycles["bit_parallel"] / cycles["pragmatic"]
    speedup["stripes_over_bit_parallel"] = cycles["bit_parallel"] / cycles["stripes"]
    stats = activation_stats(xb, width, st, encoding)
    win = _windows(xb, geometry)
    dwin = _window_deltas_b(xb, geometry)
    stats["window_raw_terms_per_activation"] = float(term_count(win, width, encoding).mean())
    stats["window_delta_terms_per_activation"] = float(
        term_count(dwin, width, encoding, delta=True).mean())
    stats["stripes_layer_precision"] = precision_bits(xb)
    N, C, H, Wd = xb.shape
    K, _, R, S = wt.shape
    return {
        "cycles": cycles,
        "speedup": speedup,
        "stats": stats,
        "config": {
            "input_shape": (N, C, H, Wd), "weight_shape": (K, C, R, S),
            "stride": st, "padding": pd, "width": width, "encoding": encoding,
            "stripes_precision": stripes_precision, "tile": dataclasses.asdict(tile),
        },
    }
