"""Golden model of the cDMA zero-value (ZV) compressor, and the RL / ZL sizes it is
compared with (Rhu et al., HPCA 2018).

The ZV word format, shared bit for bit with ``dnnhw.rtl.zvc``:

- A *window* is ``lanes`` (N) elements of ``width`` (W) bits, unsigned bit patterns; an
  element is zero when all its bits are zero.
- A *slot* is W bits. The mask takes ``M = ceil(N / W)`` slots: mask bit ``j`` is 1 when
  element ``j`` is non-zero, LSB first (slot ``k`` holds mask bits ``k*W .. k*W + W - 1``;
  bits at or past N are zero).
- A compressed window is its M mask slots followed by its non-zero elements in element
  order: ``M + nnz`` slots.
- A *frame* (a run of windows ended by ``last``) is the concatenation of its compressed
  windows with no gaps, packed into *words* of N slots, slot ``s`` of a word at bits
  ``[s*W, (s+1)*W)``. The last word is zero-padded; ``last_length`` (1..N) says how many
  of its slots are valid, which is what tells a trailing all-zero window (mask slots of
  zero) from padding. Every frame starts on a new word.

Slot-granular packing keeps the hardware's shifters in units of whole elements; it costs
``M*W - N`` bits per window over bit-granular packing, none for the paper's 32 x 32-bit
window (128 B in, 4 B .. 132 B out).

Malformed input
---------------
A compressed *stream* is a sequence of words ``(data, length, last)``; a frame is the words
up to and including one with ``last``. A frame is well formed when every word without
``last`` has ``length`` N, its last word has ``length`` 1..N and zero slots past it, and its
valid slots split exactly into compressed windows whose masks have no bit at or past N.
:func:`decompress_frame` and :func:`decompress_stream` raise :class:`ZVCFormatError` on
anything else. ``decompress_stream(..., malformed="hardware")`` returns instead what
:class:`dnnhw.rtl.zvc.ZVCDecompressor` emits for any input, by this contract (the
README's "The ZV format" states it too):

1. *A frame's valid slots.* A word without ``last`` gives its N slots, whatever its
   ``length`` (**short non-last word**: ``length`` < N; **length > N**; both malformed).
   The last word gives its first ``length`` slots; with ``length`` > N all N (**length
   > N**); with ``length`` 0 one slot of value zero (**length 0**, or an **empty frame**
   when it is the frame's only word). Non-zero slots past the valid ones are ignored
   (**non-zero padding**). So every frame has at least one valid slot.
2. *Windows.* From the first valid slot, one window at a time: if fewer than M valid slots
   are left, an all-zero window (**truncated mask**; only when M > 1). Else the M mask
   slots; mask bits at or past N are ignored (**mask bits past N**; only when M*W > N);
   the window's elements follow its mask; those missing past the frame's last valid slot
   are zero (**truncated window**).
3. *last.* The window in which the frame's valid slots end carries ``last`` (the one
   that ends exactly at the last valid slot, a truncated window, or the all-zero window of
   a truncated mask); decoding resumes at the next frame's first word. So every input
   frame gives one output frame, and the next frame decodes intact. A window that ends
   exactly at the end of a word without ``last`` never carries ``last``.
4. *error.* A frame is malformed when any class above occurs in it. The sticky ``error``
   output rises in the first cycle in which the output offers the window carrying the
   ``last`` of a malformed frame, and stays 1 until reset; at every output transfer it
   is therefore 1 exactly when a malformed frame has ended at or before that window,
   whatever the stalls.
5. *A frame without last* (the stream stops inside a frame): the windows whose slots
   have all arrived come out, without ``last``; the rest waits.
"""

import zlib

import numpy as np

from dnnhw.spec.zvc import LANES, WIDTHS


__all__ = [
    "ZVCFormatError", "MALFORMED_CLASSES", "DecodedStream", "mask_slots", "compress_window",
    "compress_frame", "decompress_frame", "decompress_stream",
    "zv_compressed_bits", "rl_compressed_bits", "zl_compressed_bits", "compression_ratios",
    "relu_like", "WIDTHS", "LANES",
]


class ZVCFormatError(ValueError):
    """Compressed data that does not decode: truncated frame, mask / length mismatch."""


#: The malformed-input classes of the contract (module docstring), in its order.
MALFORMED_CLASSES = ("short non-last word", "length > N", "length 0", "empty frame",
                     "non-zero padding", "truncated mask", "mask bits past N",
                     "truncated window")


def _check_geometry(lanes, width):
    if not isinstance(lanes, (int, np.integer)) or isinstance(lanes, bool) or lanes < 1:
        raise ValueError(f"lanes must be a positive integer, got {lanes!r}")
    if width not in WIDTHS:
        raise ValueError(f"width must be one of {', '.join(map(str, WIDTHS))}, got {width!r}")


def mask_slots(lanes, width):
    """Slots the mask of one window takes: ``ceil(lanes / width)``."""
    _check_geometry(lanes, width)
    return -(-lanes // width)


def _as_windows(windows, width):
    windows = np.asarray(windows)
    if windows.ndim != 2 or windows.shape[0] < 1:
        raise ValueError(f"windows must be a 2-D array (n_windows >= 1, lanes), "
                         f"got shape {windows.shape}")
    if not np.issubdtype(windows.dtype, np.integer):
        raise TypeError(f"windows must hold integers, got dtype {windows.dtype}")
    if windows.min() < 0 or int(windows.max()) >> width:
        raise ValueError(f"window elements must be unsigned {width}-bit values "
                         f"(0..{(1 << width) - 1}), got range {windows.min()}..{windows.max()}")
    return windows.astype(np.uint64)


def compress_window(window, *, width):
    """Slots (uint64) of one compressed window: M mask slots, then the non-zeros."""
    window = _as_windows(np.asarray(window)[None, :], width)[0]
    lanes = window.shape[0]
    m = mask_slots(lanes, width)
    mask = 0
    for j, value in enumerate(window):
        if value:
            mask |= 1 << j
    mask_part = [(mask >> (k * width)) & ((1 << width) - 1) for k in range(m)]
    return np.array(mask_part + [v for v in window if v], dtype=np.uint64)


def compress_frame(windows, *, width):
    """Compress one frame of windows (shape ``(n_windows, lanes)``).

    Returns ``(words, last_length)``: ``words`` is ``(n_words, lanes)`` uint64 slots, the
    last word zero-padded past ``last_length`` valid slots.
    """
    windows = _as_windows(windows, width)
    lanes = windows.shape[1]
    _check_geometry(lanes, width)
    slots = np.concatenate([compress_window(w, width=width) for w in windows])
    n_words = -(-len(slots) // lanes)
    words = np.zeros(n_words * lanes, dtype=np.uint64)
    words[:len(slots)] = slots
    return words.reshape(n_words, lanes), len(slots) - (n_words - 1) * lanes


def decompress_frame(words, last_length, *, width):
    """Inverse of :func:`compress_frame`; raises :class:`ZVCFormatError` on malformed input."""
    words = np.asarray(words)
    if words.ndim != 2 or words.shape[0] < 1:
        raise ValueError(f"words must be a 2-D array (n_words >= 1, lanes), got shape {words.shape}")
    lanes = words.shape[1]
    _check_geometry(lanes, width)
    if not 1 <= last_length <= lanes:
        raise ZVCFormatError(f"last_length must be in 1..{lanes}, got {last_length}")
    words = words.astype(np.uint64)
    if words.max() >> np.uint64(width) if width < 64 else False:
        raise ValueError(f"slots must be unsigned {width}-bit values")
    total = (words.shape[0] - 1) * lanes + last_length
    flat = words.reshape(-1)
    if flat[total:].any():
        raise ZVCFormatError(f"non-zero padding after the frame's {total} valid slots")
    slots = flat[:total]
    m = mask_slots(lanes, width)
    windows, pos = [], 0
    while pos < total:
        if pos + m > total:
            raise ZVCFormatError(
                f"frame ends inside a mask: {total - pos} slot(s) left at slot {pos}, "
                f"a mask takes {m} (length does not match the masks)")
        mask = 0
        for k in range(m):
            mask |= int(slots[pos + k]) << (k * width)
        if mask >> lanes:
            raise ZVCFormatError(f"mask at slot {pos} has bits set at or past lane {lanes}")
        nnz = bin(mask).count("1")
        if pos + m + nnz > total:
            raise ZVCFormatError(
                f"truncated frame: the mask at slot {pos} announces {nnz} non-zero "
                f"element(s) but only {total - pos - m} slot(s) remain")
        values = iter(slots[pos + m:pos + m + nnz])
        windows.append([int(next(values)) if (mask >> j) & 1 else 0 for j in range(lanes)])
        pos += m + nnz
    return np.array(windows, dtype=np.uint64)


def _as_stream(words, lengths, lasts, width):
    words = np.asarray(words)
    if words.ndim != 2:
        raise ValueError(f"words must be a 2-D array (n_words, lanes), got shape {words.shape}")
    lanes = words.shape[1]
    _check_geometry(lanes, width)
    if not np.issubdtype(words.dtype, np.integer):
        raise TypeError(f"words must hold integers, got dtype {words.dtype}")
    if words.size and (words.min() < 0 or int(words.max()) >> width):
        raise ValueError(f"slots must be unsigned {width}-bit values")
    lengths = np.asarray(lengths).reshape(-1)
    lasts = np.asarray(lasts).reshape(-1)
    for name, column in (("lengths", lengths), ("lasts", lasts)):
        if len(column) != len(words):
            raise ValueError(f"{name} has {len(column)} entries for {len(words)} words")
    if lengths.size and lengths.min() < 0:
        raise ValueError("lengths must be >= 0")
    return words.astype(np.uint64), [int(v) for v in lengths], [bool(v) for v in lasts]


def _stream_frames(lasts):
    """``(first word, end word (exclusive), terminated)`` of every frame."""
    frames, first = [], 0
    for k, last in enumerate(lasts):
        if last:
            frames.append((first, k + 1, True))
            first = k + 1
    if first < len(lasts):
        frames.append((first, len(lasts), False))
    return frames


class DecodedStream:
    """What :class:`dnnhw.rtl.zvc.ZVCDecompressor` emits for a stream (the contract of
    the module docstring).

    Members
    -------
    windows : ndarray, (n, lanes) uint64
        The output windows, in order.
    last : ndarray, (n,) bool
        Their ``last`` bits.
    error_at : ndarray, (n,) bool
        The ``error`` output while each window is offered (and when it is taken).
    frame_of : ndarray, (n,) int
        The input frame each window comes from.
    defects : list of list of (class, message)
        Per input frame (an unterminated trailing frame included), what is malformed in it;
        classes from :data:`MALFORMED_CLASSES`.
    frame_windows : list of int
        Output windows per input frame.
    pending_slots : int
        Valid slots of an unterminated trailing frame not yet decoded (0 when the stream
        ends with ``last``).
    error : bool
        ``error`` once everything has come out: some terminated frame was malformed.
    """

    def __init__(self, lanes):
        self.lanes = lanes
        self._windows, self._last, self._error_at, self._frame_of = [], [], [], []
        self.defects, self.frame_windows = [], []
        self.pending_slots = 0
        self.error = False

    def _finish(self):
        self.windows = np.array(self._windows, dtype=np.uint64).reshape(-1, self.lanes)
        self.last = np.array(self._last, dtype=bool)
        self.error_at = np.array(self._error_at, dtype=bool)
        self.frame_of = np.array(self._frame_of, dtype=int)
        del self._windows, self._last, self._error_at, self._frame_of
        return self

    @property
    def malformed(self):
        """Per input frame: whether it is malformed."""
        return [bool(d) for d in self.defects]


def _frame_slots(words, lengths, lasts, lanes, first):
    """Contract step 1: a frame's valid slots, and the word-level defects."""
    slots, defects = [], []
    for k, (word, length, last) in enumerate(zip(words, lengths, lasts)):
        where = f"word {first + k}"
        word = [int(v) for v in word]
        if not last:
            if length > lanes:
                defects.append(("length > N", f"{where}: length {length} > N = {lanes}"))
            elif length != lanes:
                defects.append(("short non-last word",
                                f"{where}: a word without last has length {length}; only a "
                                f"frame's last word may hold fewer than N = {lanes} slots"))
            slots.extend(word)
            continue
        if length == 0:
            if k == 0:
                defects.append(("empty frame", f"{where}: an empty frame (a single last "
                                               f"word with length 0)"))
            else:
                defects.append(("length 0", f"{where}: a frame's last word with length 0 "
                                            f"(it holds 1..{lanes} valid slots)"))
            valid, padding = [0], word
        elif length > lanes:
            defects.append(("length > N", f"{where}: length {length} > N = {lanes}"))
            valid, padding = word, []
        else:
            valid, padding = word[:length], word[length:]
        if any(padding):
            defects.append(("non-zero padding",
                            f"{where}: non-zero slot(s) past the last word's "
                            f"{min(length, lanes)} valid slot(s)"))
        slots.extend(valid)
    return slots, defects


def _decode_slots(slots, lanes, width, terminated, out, defects):
    """Contract steps 2 and 3: windows from a frame's valid slots, appended to ``out``."""
    m = mask_slots(lanes, width)
    total, pos, count = len(slots), 0, 0
    low = (1 << lanes) - 1
    while pos < total:
        left = total - pos
        if left < m:
            if not terminated:
                break
            defects.append(("truncated mask", f"slot {pos}: {left} slot(s) left, a mask "
                                              f"takes {m}"))
            out.append(([0] * lanes, True))
            count += 1
            pos = total
            break
        mask = 0
        for k in range(m):
            mask |= slots[pos + k] << (k * width)
        nnz = bin(mask & low).count("1")
        if pos + m + nnz > total and not terminated:
            break
        if mask >> lanes:
            defects.append(("mask bits past N", f"slot {pos}: mask bits set at or past "
                                                f"lane {lanes}"))
        values = slots[pos + m:pos + m + nnz]
        truncated = len(values) < nnz
        if truncated:
            defects.append(("truncated window", f"slot {pos}: the mask announces {nnz} "
                                                f"element(s), {len(values)} slot(s) left"))
            values = values + [0] * (nnz - len(values))
        it = iter(values)
        window = [next(it) if (mask >> j) & 1 else 0 for j in range(lanes)]
        pos += m + nnz
        is_last = terminated and pos >= total
        out.append((window, is_last))
        count += 1
        if is_last:
            break
    return count, total - pos


def decompress_stream(words, lengths, lasts, *, width, malformed="raise"):
    """Decode a stream of compressed words holding any number of frames.

    Parameters
    ----------
    words : array, (n_words, lanes)
        Slots of every word.
    lengths, lasts : sequences of n_words ints
        Each word's ``length`` and ``last`` fields.
    width : int
    malformed : "raise" or "hardware"
        ``"raise"`` (the reference): every frame must be well formed; returns the list of
        decoded frames (``(n_windows, lanes)`` uint64 each) or raises
        :class:`ZVCFormatError` naming the frame, the word or slot and what is wrong
        (the stream must also end with ``last``). ``"hardware"``: returns the
        :class:`DecodedStream` the decompressor emits, for any input (module docstring).
    """
    if malformed not in ("raise", "hardware"):
        raise ValueError(f"malformed must be 'raise' or 'hardware', got {malformed!r}")
    words, lengths, lasts = _as_stream(words, lengths, lasts, width)
    lanes = words.shape[1]
    frames = _stream_frames(lasts)
    if malformed == "raise":
        decoded = []
        for f, (a, b, terminated) in enumerate(frames):
            where = f"frame {f} (words {a}..{b - 1})"
            if not terminated:
                raise ZVCFormatError(f"{where}: the stream ends inside a frame (word "
                                     f"{b - 1} has no last)")
            for k in range(a, b - 1):
                if lengths[k] != lanes:
                    raise ZVCFormatError(f"{where}: word {k} has no last and length "
                                         f"{lengths[k]}; every word but a frame's last "
                                         f"holds N = {lanes} valid slots")
            if lengths[b - 1] == 0 and b - a == 1:
                raise ZVCFormatError(f"{where}: an empty frame (its only word has length 0)")
            if not 1 <= lengths[b - 1] <= lanes:
                raise ZVCFormatError(f"{where}: word {b - 1}, the frame's last, has length "
                                     f"{lengths[b - 1]}; it holds 1..{lanes} valid slots")
            try:
                decoded.append(decompress_frame(words[a:b], lengths[b - 1], width=width))
            except ZVCFormatError as error:
                raise ZVCFormatError(f"{where}: {error}") from None
        return decoded
    result = DecodedStream(lanes)
    sticky = False
    for f, (a, b, terminated) in enumerate(frames):
        slots, defects = _frame_slots(words[a:b], lengths[a:b], lasts[a:b], lanes, a)
        out = []
        count, pending = _decode_slots(slots, lanes, width, terminated, out, defects)
        bad = terminated and bool(defects)
        for window, is_last in out:
            sticky = sticky or (is_last and bad)
            result._windows.append(window)
            result._last.append(is_last)
            result._error_at.append(sticky)
            result._frame_of.append(f)
        result.defects.append(defects)
        result.frame_windows.append(count)
        if not terminated:
            result.pending_slots = pending
    result.error = sticky
    return result._finish()


# --- sizes of a tensor under ZV, RL and ZL -------------------------------------------------

def _as_words(tensor, width):
    """A tensor as a flat array of unsigned ``width``-bit words (floats by their bits)."""
    tensor = np.asarray(tensor)
    if np.issubdtype(tensor.dtype, np.floating):
        kind = {16: np.uint16, 32: np.uint32, 64: np.uint64}[tensor.dtype.itemsize * 8]
        if tensor.dtype.itemsize * 8 != width:
            raise ValueError(f"a {tensor.dtype} tensor has {tensor.dtype.itemsize * 8}-bit "
                             f"words, but width={width}")
        return tensor.reshape(-1).view(kind).astype(np.uint64)
    if not np.issubdtype(tensor.dtype, np.integer):
        raise TypeError(f"tensor must hold integers or floats, got dtype {tensor.dtype}")
    flat = tensor.reshape(-1).astype(np.int64)
    lo, hi = -(1 << (width - 1)), (1 << width) - 1
    if flat.size and (flat.min() < lo or flat.max() > hi):
        raise ValueError(f"tensor values must fit in {width} bits ({lo}..{hi})")
    return (flat & ((1 << width) - 1)).astype(np.uint64)


def zv_compressed_bits(tensor, *, lanes, width):
    """Bits of the ZV stream of ``tensor`` sent as one frame (word padding included)."""
    words = _as_words(tensor, width)
    m = mask_slots(lanes, width)
    n_windows = -(-words.size // lanes)
    slots = n_windows * m + int(np.count_nonzero(words))
    return -(-slots // lanes) * lanes * width


def rl_compressed_bits(tensor, *, width, run_bits=4):
    """Bits of a zero run-length (RL) encoding: a stream of ``(run, value)`` tokens.

    A token stands for ``run`` zeros followed by ``value``; a run longer than
    ``2**run_bits - 1`` zeros is split with tokens whose value is zero. A token costs
    ``run_bits + width`` bits.
    """
    if not 1 <= run_bits <= 16:
        raise ValueError(f"run_bits must be in 1..16, got {run_bits}")
    words = _as_words(tensor, width)
    max_run = (1 << run_bits) - 1
    nonzero = np.flatnonzero(words)
    # Zeros before each non-zero, and after the last one.
    gaps = np.diff(np.concatenate(([-1], nonzero, [words.size]))) - 1
    # A gap of g zeros before a value needs floor(g / (max_run + 1)) filler tokens;
    # the trailing gap needs ceil(g / (max_run + 1)) tokens of its own.
    fillers = int((gaps[:-1] // (max_run + 1)).sum())
    tail = -(-int(gaps[-1]) // (max_run + 1))
    tokens = nonzero.size + fillers + tail
    return tokens * (run_bits + width)


def zl_compressed_bits(tensor, *, width, level=6):
    """Bits of the zlib (ZL) stream of the tensor's little-endian words."""
    words = _as_words(tensor, width)
    raw = words.astype({8: "<u1", 16: "<u2", 32: "<u4"}[width]).tobytes()
    return 8 * len(zlib.compress(raw, level))


def compression_ratios(tensor, *, lanes=32, width=32, run_bits=4):
    """Uncompressed / compressed size for ZV, RL and ZL, and the density of ``tensor``."""
    words = _as_words(tensor, width)
    raw = words.size * width
    return {
        "elements": int(words.size),
        "density": float(np.count_nonzero(words) / max(words.size, 1)),
        "zv": raw / zv_compressed_bits(tensor, lanes=lanes, width=width),
        "rl": raw / rl_compressed_bits(tensor, width=width, run_bits=run_bits),
        "zl": raw / zl_compressed_bits(tensor, width=width),
    }


def relu_like(shape, density, *, dtype=np.float32, rng=None, scale=1.0):
    """A ReLU output with the given fraction of non-zeros, as float or signed fixed point.

    ``max(0, x - t)`` with standard Gaussian ``x`` and ``t`` its ``(1 - density)``
    quantile (a small offset keeps every kept value non-zero). For an integer ``dtype`` the
    values are scaled so the largest is a quarter of the type's range (headroom, as a
    quantized activation would have) and rounded up, so no kept value becomes zero.
    """
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"density must be in [0, 1], got {density}")
    rng = np.random.default_rng(rng)
    x = rng.standard_normal(shape)
    if density == 0:
        return np.zeros(shape, dtype=dtype)
    threshold = np.quantile(x, 1.0 - density) if density < 1 else x.min() - 1.0
    y = np.where(x > threshold, x - threshold + 1e-3, 0.0) * scale
    if np.issubdtype(np.dtype(dtype), np.integer):
        top = np.iinfo(dtype).max
        y = np.clip(np.ceil(y * (top / 4 / max(y.max(), 1e-9))), 0, top)
    return y.astype(dtype)
