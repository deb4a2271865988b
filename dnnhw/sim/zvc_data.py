"""ZVC test data: random frames, the corner-case frames, and (below) the malformed-input
cases and random corruptions the decompressor's bench and tests feed.

Pure NumPy and the golden model (no cocotb), so the Amaranth-simulator tests use the same
data as the cocotb benches.

Elements: non-zero with probability ``density``; a non-zero value is uniform in
``1 .. 2**W - 1``, and with probability ``corner_values`` one of ``1``, ``2**(W-1)``,
``2**W - 1`` (the all-ones pattern is otherwise never drawn at W = 32).
"""

import math

import numpy as np

from dnnhw.golden import zvc as golden


__all__ = ["random_frame", "frame_lengths", "corner_frames", "Stream", "MalformedCase",
           "malformed_cases", "CORRUPTIONS", "corrupted_stream", "frames_stream",
           "length_max", "user_frames", "compress_job", "decompress_job", "loopback_job"]


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


# --- compressed streams, well formed or not -------------------------------------------

class Stream:
    """Compressed words with their fields: ``words`` (n, lanes) uint64, ``lengths`` and
    ``lasts`` (lists of ints). ``+`` concatenates."""

    def __init__(self, words, lengths, lasts, lanes):
        self.words = np.asarray(words, dtype=np.uint64).reshape(-1, lanes)
        self.lengths = [int(v) for v in lengths]
        self.lasts = [int(v) for v in lasts]
        self.lanes = lanes

    def __len__(self):
        return len(self.lengths)

    def __add__(self, other):
        return Stream(np.vstack([self.words, other.words]), self.lengths + other.lengths,
                      self.lasts + other.lasts, self.lanes)

    def beats(self):
        """Payload dicts (``data``, ``length``, ``last``), one per word."""
        return [{"data": [int(v) for v in word], "length": length, "last": last}
                for word, length, last in zip(self.words, self.lengths, self.lasts)]

    def decode(self, width, malformed="hardware"):
        return golden.decompress_stream(self.words, self.lengths, self.lasts, width=width,
                                        malformed=malformed)

    def verdict(self, width):
        """The golden model's verdict: ``"well-formed"`` or the ZVCFormatError message."""
        try:
            self.decode(width, malformed="raise")
        except golden.ZVCFormatError as error:
            return str(error)
        return "well-formed"


def frames_stream(frames, width):
    """The golden compressor's stream of ``frames`` (well formed)."""
    lanes = frames[0].shape[1]
    words, lengths, lasts = [], [], []
    for frame in frames:
        w, last_length = golden.compress_frame(frame, width=width)
        words.append(w)
        lengths += [lanes] * (len(w) - 1) + [last_length]
        lasts += [0] * (len(w) - 1) + [1]
    return Stream(np.vstack(words), lengths, lasts, lanes)


def length_max(lanes):
    """The largest value the ``length`` field holds (``range(lanes + 1)`` in Amaranth)."""
    return (1 << int(lanes).bit_length()) - 1


class MalformedCase:
    """One hand-made case of the malformed-input contract: its ``cls`` (a
    :data:`dnnhw.golden.zvc.MALFORMED_CLASSES` entry, or ``"well-formed"`` for the
    controls), a ``description`` and its ``stream``."""

    def __init__(self, cls, summary, stream):
        self.cls = cls
        self.stream = stream
        self.description = f"{summary}: {_describe(stream)}"

    def __repr__(self):
        return f"MalformedCase({self.cls!r}, {self.description!r})"


def _describe(stream):
    parts = []
    for word, length, last in zip(stream.words.tolist(), stream.lengths, stream.lasts):
        used = max([k + 1 for k, v in enumerate(word) if v] + [0])
        shown = [f"{v:#x}" if v > 9 else str(v) for v in word[:max(used, 1)]]
        if used < len(word):
            shown.append("0 ...")
        parts.append(f"{'last ' if last else ''}word [{', '.join(shown)}] length {length}")
    return "; ".join(parts)


def malformed_cases(lanes, width):
    """The hand-made cases at ``lanes`` x ``width``: two well-formed controls, then at least
    one case of every malformed class that can occur at this geometry (a truncated mask
    needs M > 1, mask bits past N need M*W > N)."""
    n, w = lanes, width
    m = golden.mask_slots(n, w)
    top = (1 << w) - 1
    lmax = length_max(n)

    def mask(*set_lanes):
        value = sum(1 << j for j in set_lanes)
        return [(value >> (k * w)) & top for k in range(m)]

    def word(slots):
        slots = list(slots)
        assert len(slots) <= n, (len(slots), n)
        return slots + [0] * (n - len(slots))

    def stream(*words):
        return Stream([word(s) for s, _, _ in words], [length for _, length, _ in words],
                      [last for _, _, last in words], n)

    cases = []
    # A window of N - M non-zeros fills word 0 exactly; the frame goes on in word 1.
    fill = mask(*range(n - m)) + list(range(1, n - m + 1))
    cases.append(MalformedCase(
        "well-formed", "a window ending exactly at a word's end, then a zero window",
        stream((fill, n, 0), (mask(), m, 1))))
    control = np.zeros((3, n), dtype=np.uint64)
    control[0, ::3] = np.arange(1, len(control[0, ::3]) + 1)
    control[2, :] = top
    cases.append(MalformedCase(
        "well-formed", "three windows (sparse, zero, dense) across words",
        frames_stream([control], w)))
    cases.append(MalformedCase(
        "short non-last word", f"word 0 without last has length {n // 2} (< N)",
        stream((fill, n // 2, 0), (mask(), m, 1))))
    cases.append(MalformedCase(
        "short non-last word", "word 0 without last has length 0",
        stream((fill, 0, 0), (mask(), m, 1))))
    cases.append(MalformedCase(
        "length > N", f"a last word with length N + 1 = {n + 1}",
        stream((mask(0) + [5], n + 1, 1))))
    cases.append(MalformedCase(
        "length > N", f"a last word with length {lmax}, the field's largest",
        stream((mask(0) + [5], lmax, 1))))
    cases.append(MalformedCase(
        "length > N", f"word 0 without last has length N + 1 = {n + 1}",
        stream((fill, n + 1, 0), (mask(), m, 1))))
    cases.append(MalformedCase(
        "length 0", "a full word, then a last word with length 0",
        stream((fill, n, 0), ([], 0, 1))))
    cases.append(MalformedCase(
        "empty frame", "one last word with length 0", stream(([], 0, 1))))
    cases.append(MalformedCase(
        "non-zero padding", "a non-zero slot right after the valid ones",
        stream((mask(0) + [5, 7], m + 1, 1))))
    cases.append(MalformedCase(
        "non-zero padding", "a non-zero top slot",
        stream((mask(0) + [5] + [0] * (n - m - 2) + [9], m + 1, 1))))
    if m > 1:
        cases.append(MalformedCase(
            "truncated mask", f"a zero window, then 1 of a mask's {m} slots",
            stream((mask() + [1], m + 1, 1))))
    if m > 2:
        first = mask(*range(n - m - 1)) + list(range(1, n - m)) + [0]
        cases.append(MalformedCase(
            "truncated mask", f"a mask starting in word 0's last slot, {m - 2} more slot(s) "
                              f"in the last word",
            stream((first, n, 0), ([0] * (m - 2), m - 2, 1))))
    if m * w > n:
        cases.append(MalformedCase(
            "mask bits past N", f"mask bit {n} set",
            stream(([mask(0)[0] | (1 << n), 5], 2, 1))))
        cases.append(MalformedCase(
            "mask bits past N", f"mask bit {w - 1}, the slot's top bit, set, then a "
                                f"second window",
            stream(([mask(1)[0] | (1 << (w - 1)), 6] + mask(0) + [7], 2 + m + 1, 1))))
    cases.append(MalformedCase(
        "truncated window", "a mask announcing 3 non-zeros with 2 slots left",
        stream((mask(0, 1, 2) + [5, 6], m + 2, 1))))
    dense = mask() + mask(*range(n)) + list(range(1, n - 2 * m + 1))
    cases.append(MalformedCase(
        "truncated window", "a dense window starting in word 0, cut by a 1-slot last word",
        stream((dense, n, 0), ([n - 2 * m + 1], 1, 1))))
    return cases


#: What :func:`corrupted_stream` does to a frame.
CORRUPTIONS = ("flip mask bit", "flip slot bit", "cut frame", "wrong length",
               "garbage padding", "drop last", "drop word")


def corrupted_stream(rng, lanes, width, *, frames=8, max_windows=5, corrupt=0.6,
                     corner_values=0.05):
    """Random frames from the golden compressor, about ``corrupt`` of them damaged by one
    of :data:`CORRUPTIONS` (drawn with ``rng``, a NumPy generator), then one clean frame so
    the stream ends with ``last``. Returns ``(stream, kinds)``: what was done to each
    frame (``None`` for the clean ones)."""
    n, w = lanes, width
    m = golden.mask_slots(n, w)
    lmax = length_max(n)
    densities = [0.0, 0.1, 0.5, 0.9, 1.0]
    out, kinds = None, []
    for f in range(frames + 1):
        windows = random_frame(rng, int(rng.integers(1, max_windows + 1)), n, w,
                               float(rng.choice(densities)), corner_values)
        part = frames_stream([windows], w)
        kind = None
        if f < frames and rng.random() < corrupt:
            kind = str(rng.choice(CORRUPTIONS))
            part, kind = _corrupt(rng, part, windows, kind, n, w, m, lmax)
        kinds.append(kind)
        out = part if out is None else out + part
    return out, kinds[:-1]


def _corrupt(rng, part, windows, kind, n, w, m, lmax):
    flat = part.words.reshape(-1).copy()
    lengths, lasts = list(part.lengths), list(part.lasts)
    total = (len(lengths) - 1) * n + lengths[-1]
    slots_per_window = m + np.count_nonzero(windows, axis=1)
    starts = np.concatenate([[0], np.cumsum(slots_per_window)[:-1]])
    if kind == "flip mask bit":
        j = int(rng.integers(len(windows)))
        slot = int(starts[j]) + int(rng.integers(m))
        flat[slot] ^= np.uint64(1 << int(rng.integers(w)))
    elif kind == "flip slot bit":
        slot = int(rng.integers(total))
        flat[slot] ^= np.uint64(1 << int(rng.integers(w)))
    elif kind == "cut frame":
        if total < 2:
            return _corrupt(rng, part, windows, "wrong length", n, w, m, lmax)
        cut = int(rng.integers(1, total))          # keep slots 0 .. cut - 1
        keep = -(-cut // n)
        flat[cut:] = 0
        flat = flat[:keep * n]
        lengths = [n] * (keep - 1) + [cut - (keep - 1) * n]
        lasts = [0] * (keep - 1) + [1]
    elif kind == "wrong length":
        k = int(rng.integers(len(lengths)))
        choices = [v for v in range(lmax + 1) if v != lengths[k]]
        lengths[k] = int(rng.choice(choices))
    elif kind == "garbage padding":
        if lengths[-1] == n:
            return _corrupt(rng, part, windows, "flip slot bit", n, w, m, lmax)
        base = (len(lengths) - 1) * n
        pad = np.arange(base + lengths[-1], base + n)
        hit = pad[rng.random(len(pad)) < 0.5]
        if not len(hit):
            hit = pad[:1]
        flat[hit] = rng.integers(1, (1 << w) - 1, size=len(hit), dtype=np.uint64,
                                 endpoint=True)
    elif kind == "drop last":
        lasts[-1] = 0                               # merges with the next frame
    elif kind == "drop word":
        if len(lengths) < 2:
            return _corrupt(rng, part, windows, "cut frame", n, w, m, lmax)
        k = int(rng.integers(len(lengths) - 1))
        keep = [i for i in range(len(lengths)) if i != k]
        flat = flat.reshape(-1, n)[keep].reshape(-1)
        lengths = [lengths[i] for i in keep]
        lasts = [lasts[i] for i in keep]
    return Stream(flat.reshape(-1, n), lengths, lasts, n), kind


# --- board jobs (dnnhw board run, dnnhw.host.job) -----------------------------------------

#: Frames, windows a frame at most, and densities of the example data of a board job.
EXAMPLE_FRAMES, EXAMPLE_WINDOWS, EXAMPLE_DENSITIES = 4, 12, (0.0, 0.3, 0.7, 1.0)


def user_frames(x, lanes, width):
    """Frames (``(windows, lanes)`` uint64 each) of the user's tensor ``x``:

    - ``(frames, windows, lanes)``: those frames; ``(windows, lanes)``: one frame;
      any other shape: flattened in C order, zero-padded to whole windows, one frame;
    - integers, unsigned ``width``-bit or signed (stored as their two's complement);
      ``float32`` at ``width`` 32 and ``float16`` at 16 as their bit patterns (the
      paper's fp32 activations: zero is the all-zero pattern, ``-0.0`` is not zero).
    """
    x = np.asarray(x)
    bit_pattern = {32: np.float32, 16: np.float16}.get(width)
    # (np.dtype(None) is float64, so a width without a float type must not compare.)
    if bit_pattern is not None and x.dtype == bit_pattern:
        x = x.view(f"<u{width // 8}")
    elif not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"input x must hold integers (or float{width} bit patterns at "
                         f"width {width}), got dtype {x.dtype}")
    if x.size == 0:
        raise ValueError("input x is empty")
    lo, hi = -(1 << (width - 1)), (1 << width) - 1
    if int(x.min()) < lo or int(x.max()) > hi:
        raise ValueError(f"input x must hold {width}-bit values, {lo}..{hi} (negative ones "
                         f"as two's complement), got {x.min()}..{x.max()}")
    bits = (x.astype(np.int64) & ((1 << width) - 1)).astype(np.uint64)
    if bits.ndim == 3 and bits.shape[-1] == lanes and bits.shape[1] > 0:
        return list(bits)
    if bits.ndim == 2 and bits.shape[-1] == lanes:
        return [bits]
    flat = bits.ravel()
    padded = np.zeros(-(-flat.size // lanes) * lanes, dtype=np.uint64)
    padded[:flat.size] = flat
    return [padded.reshape(-1, lanes)]


def _job_frames(arrays, params, rng):
    lanes, width = int(params["lanes"]), int(params["width"])
    unknown = set(arrays) - {"x"}
    if unknown:
        raise ValueError(f"a ZVC job takes one array, x; got {', '.join(sorted(arrays))}")
    if "x" in arrays:
        return user_frames(arrays["x"], lanes, width), "x"
    frames = [random_frame(rng, int(rng.integers(1, EXAMPLE_WINDOWS + 1)), lanes, width,
                           density)
              for density in rng.choice(EXAMPLE_DENSITIES, size=EXAMPLE_FRAMES)]
    return frames, "random example data"


def _pack_windows(fmt, frames):
    lasts = np.concatenate([[0] * (len(f) - 1) + [1] for f in frames]).astype(np.uint64)
    return [int(v) for v in fmt.pack_many(data=np.vstack(frames), last=lasts)]


def _pack_words(fmt, stream):
    return [int(v) for v in fmt.pack_many(
        data=stream.words, length=np.array(stream.lengths, dtype=np.uint64),
        last=np.array(stream.lasts, dtype=np.uint64))]


def _unpack(fmt, beats, names):
    rows = [fmt.unpack(beat) for beat in beats]
    return {name: np.array([row[name] for row in rows], dtype=np.uint64)
            for name in names}


def _summary(frames, stream, width, source):
    windows = sum(len(f) for f in frames)
    lanes = frames[0].shape[1]
    nonzero = sum(int(np.count_nonzero(f)) for f in frames)
    ratio = windows / len(stream) if len(stream) else float("nan")
    return (f"{len(frames)} frames, {windows} windows of {lanes} x {width} bits "
            f"({100 * nonzero / (windows * lanes):.0f} % non-zero, {source}); golden: "
            f"{len(stream)} words, ratio {ratio:.2f}x")


def _job(arrays, params, sidecar, rng, *, takes, gives, core_error):
    """The board job of a ZVC core whose sink takes ``takes`` and whose source gives
    ``gives`` (``"windows"`` or ``"words"``)."""
    from dnnhw.host.job import BoardJob
    from .payload import PayloadFormat
    frames, source = _job_frames(arrays, params, rng)
    width = int(params["width"])
    stream = frames_stream(frames, width)
    i_fmt, o_fmt = (PayloadFormat(sidecar["streams"][n]) for n in ("i", "o"))

    def beats(fmt, kind):
        return _pack_windows(fmt, frames) if kind == "windows" else _pack_words(fmt, stream)

    fields = {"windows": ("data", "last"), "words": ("data", "length", "last")}[gives]
    return BoardJob(
        inputs={"i": beats(i_fmt, takes)}, expected={"o": beats(o_fmt, gives)},
        describe=_summary(frames, stream, width, source), core_error=core_error,
        decode=lambda out: _unpack(o_fmt, out["o"], fields))


def compress_job(arrays, params, sidecar, rng):
    """zvc-compress: the user's windows in, the golden compressor's words out."""
    return _job(arrays, params, sidecar, rng, takes="windows", gives="words",
                core_error=None)


def decompress_job(arrays, params, sidecar, rng):
    """zvc-decompress: the user's windows compressed by the golden model on the host,
    those words in, the windows back out; well-formed words never raise ``error``."""
    return _job(arrays, params, sidecar, rng, takes="words", gives="windows",
                core_error=False)


def loopback_job(arrays, params, sidecar, rng):
    """zvc-loopback: the windows in, the same windows out."""
    return _job(arrays, params, sidecar, rng, takes="windows", gives="windows",
                core_error=False)
