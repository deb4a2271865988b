"""The streaming 2D FFT of the band-limited convolution engine: a pass of
:class:`~dnnhw.rtl.fft.StreamingFFT` over each frame, a
:class:`~dnnhw.rtl.transpose.TransposeBuffer`, a second pass over each frame of the
transposed tile. ``docs/bandlimit-conv.md`` section 6 is the contract; every pass is the
FFT of ``docs/fft.md``, bit for bit.

Forward, the input is a tile row-major (position ``i * n + j`` is ``x[i, j]``): the
first pass transforms each row (over ``j``), the second each column (over ``i``), and the
output is column-major (position ``k2 * n + k1`` is bin ``(k1, k2)``). The inverse is the
same structure: fed the spectrum column-major it transforms over ``k1`` first, then over
``k2``, and its output is row-major.

The passes keep their own flushing: a pause of the input at a frame boundary makes the
first pass push a ghost frame (``input.ready`` low for ``n - 1`` cycles), and a pause of
the transpose buffer's output (waiting for a whole tile) does the same in the second.
"""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from dnnhw.spec.bandlimit import POINTS_2D
from dnnhw.spec.fft import check_shifts
from ._checks import check_bool, check_int
from ._parts import owned
from .fft import StreamingFFT, sample_layout
from .transpose import TransposeBuffer


__all__ = ["StreamingFFT2D"]


class StreamingFFT2D(wiring.Component):
    """Streaming ``n x n``-point fixed-point 2D FFT (or inverse), a sample a cycle.

    In, tiles of ``n * n`` samples; out, each tile's transform with the frames of the
    first pass as columns: forward, row-major samples in and the spectrum column-major
    out (stream position ``k2 * n + k1`` is bin ``(k1, k2)``); inverse, the spectrum
    column-major in and row-major samples out. Both passes use the same ``shifts``.
    Tiles are consecutive groups of ``n * n`` samples, with no framing signal.

    Timing with no stalls: a tile's first sample out comes :attr:`latency` cycles after
    its first in (``2 * StreamingFFT.latency + n * n + 1``, 105 for ``n = 8``, 331 for
    ``n = 16``), then one a cycle, tiles back to back.

    Parameters
    ----------
    n : int
        Points per axis, a power of two in 8 .. 64.
    width : int
        Bits of a sample's real and imaginary parts (signed), in, out and between the
        passes, 8 .. 24.
    twiddle_width : int
        Bits of a twiddle's parts (signed), 8 .. 18.
    inverse : bool
        Both passes inverse (twiddles ``e^{+2 pi i k / n}``).
    shifts : None, int or sequence of int
        Per stage of each pass, 1 to halve its outputs: ``log2(n)`` bits (0 or 1), or an
        int mask (bit ``s`` for stage ``s``); default all 1.

    Members
    -------
    input : In(stream.Signature(sample_layout(width)))
        Tiles in. ``ready`` is the first pass's: it depends on no input of this cycle.
    output : Out(stream.Signature(sample_layout(width)))
        The transforms. ``valid`` and ``payload`` are the second pass's registers.
    overflow : Out(1)
        Sticky: a saturation in either pass changed a value since reset or the last
        ``clear_overflow`` (the OR of the two passes' flags).
    clear_overflow : In(1)
        Clears both passes' flags.
    """

    def __init__(self, *, n, width, twiddle_width, inverse=False, shifts=None):
        check_int("n", n, POINTS_2D[0], POINTS_2D[-1])
        if n not in POINTS_2D:
            raise ValueError(f"n must be a power of two in {POINTS_2D[0]}..{POINTS_2D[-1]}, "
                             f"got {n}")
        check_bool("inverse", inverse)
        self._n, self._width, self._twiddle_width = n, width, twiddle_width
        self._inverse = inverse
        self._shifts = check_shifts(shifts, exact_log2(n))
        # The passes are built here: their constructors check width and twiddle_width
        # (with StreamingFFT's messages), and their latency is the block's.
        self._first_pass, self._second_pass = (
            owned(StreamingFFT(n=n, width=width, twiddle_width=twiddle_width,
                               inverse=inverse, shifts=self._shifts)) for _ in range(2))
        self._transpose = owned(TransposeBuffer(rows=n, columns=n,
                                                shape=sample_layout(width)))
        layout = sample_layout(width)
        super().__init__({
            "input": In(stream.Signature(layout)),
            "output": Out(stream.Signature(layout)),
            "overflow": Out(1),
            "clear_overflow": In(1),
        })

    n = property(lambda self: self._n)
    width = property(lambda self: self._width)
    twiddle_width = property(lambda self: self._twiddle_width)
    inverse = property(lambda self: self._inverse)
    shifts = property(lambda self: self._shifts, doc="Per stage, 0 or 1 (a tuple).")

    @property
    def multipliers(self):
        """Products the block computes each cycle: both passes'."""
        return 2 * self._first_pass.multipliers

    @property
    def pass_latency(self):
        """:attr:`StreamingFFT.latency` of each pass."""
        return self._first_pass.latency

    @property
    def latency(self):
        """Cycles from a tile's first sample in to its first sample out, no stalls: the
        first pass's latency, the other ``n * n - 1`` samples of the tile, the transpose
        buffer's :attr:`~TransposeBuffer.latency` and the second pass's latency:
        ``2 * pass_latency + n * n - 1 + 2``."""
        return 2 * self.pass_latency + self._n * self._n - 1 + self._transpose.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.first_pass = first = self._first_pass
        m.submodules.transpose = transpose = self._transpose
        m.submodules.second_pass = second = self._second_pass

        wiring.connect(m, wiring.flipped(self.input), first.input)
        wiring.connect(m, first.output, transpose.input)
        wiring.connect(m, transpose.output, second.input)
        wiring.connect(m, second.output, wiring.flipped(self.output))
        m.d.comb += [
            self.overflow.eq(first.overflow | second.overflow),
            first.clear_overflow.eq(self.clear_overflow),
            second.clear_overflow.eq(self.clear_overflow),
        ]
        return m
