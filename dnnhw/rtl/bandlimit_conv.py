"""The band-limited convolution engine: FFT, keep the low-frequency block, multiply by the
stored band-limited filter spectra, sum over input channels, zero-fill, inverse FFT, crop.
``docs/bandlimit-conv.md`` is the contract (the arithmetic of section 3 bit for bit, the
ports of section 5, the structure and timing of section 6).

The parts, each its own component and test: the forward transform
(:class:`~dnnhw.rtl.fft.StreamingFFT` in 1D, :class:`~dnnhw.rtl.fft2d.StreamingFFT2D` in
2D), the :class:`~dnnhw.rtl.spectral_mac.SpectralMAC` (band selection, the filter memory,
the channel sums in two accumulator banks, the zero-filled read-out), the inverse
transform, and here only the glue: a real sample in becomes a complex one with imaginary
part 0, and the crop keeps the real part of the valid window.
"""


from amaranth.hdl import Module, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from dnnhw.spec.bandlimit import CHANNELS, COEFFICIENT_WIDTHS, DIMS, check_compression_rate, points_for
from dnnhw.spec.fft import TWIDDLE_WIDTHS, WIDTHS, check_shifts
from ._checks import check_in, check_int
from ._parts import owned
from .fft import StreamingFFT
from .fft2d import StreamingFFT2D
from .spectral_mac import SpectralMAC, coefficient_layout


__all__ = ["BandLimitedConv", "coefficient_layout"]


class BandLimitedConv(wiring.Component):
    """Band-limited FFT convolution (correlation, as in deep learning) of ``in_channels``
    real tiles into ``out_channels`` real results, a sample a cycle in.

    Per tile: the forward transform of each input channel, the kept bins multiplied by
    the stored filter spectra and summed over the channels (``out_channels`` products a
    kept bin, one a cycle), then per output channel the zero-filled spectrum through the
    inverse transform, cropped to the ``n - taps + 1`` valid positions per axis. Tile
    ``t + 1`` is transformed and accumulated while tile ``t`` is read out.

    Parameters
    ----------
    dims : int
        1 (a tile is ``n`` samples) or 2 (``n x n``, row-major).
    n : int
        FFT points per axis: 8 .. 4096 in 1D, 8 .. 64 in 2D.
    taps : int
        Filter side, 1 .. ``n``.
    in_channels, out_channels : int
        1 .. 256.
    compression_rate : int or float
        ``c`` in percent, ``0 <= c < 100``: fixed at generation time (it sizes the filter
        memory and the accumulators).
    width : int
        Bits of a sample (signed), 8 .. 24.
    twiddle_width : int
        Bits of a twiddle's parts, 8 .. 18.
    coefficient_width : int
        Bits of a filter coefficient's parts, 8 .. 18.
    spectrum_shift : int
        Right shift (rounded) of the channel sums before the inverse, 0 .. ``width +
        coefficient_width``.
    forward_shifts, inverse_shifts : None, int or sequence of int
        The FFT ``shifts`` of every forward / inverse pass; default all 1 / all 0.

    Members
    -------
    filters : In(stream.Signature(coefficient_layout(coefficient_width)))
        Filter words at consecutive addresses (``docs/bandlimit-conv.md`` section 4).
    input : In(stream.Signature(signed(width)))
        Tiles: channel after channel, each ``n ** dims`` samples row-major.
    output : Out(stream.Signature(signed(width)))
        Per tile, output channel after channel, each ``(n - taps + 1) ** dims`` samples
        row-major.
    overflow : Out(1)
        Sticky: a saturation changed a value in a transform or in the scaling.
    clear_overflow : In(1)
    filters_loaded : Out(1)
        A whole filter set has been written since reset; no tile is multiplied before.
    """

    def __init__(self, *, dims, n, taps, in_channels, out_channels, compression_rate,
                 width, twiddle_width, coefficient_width, spectrum_shift,
                 forward_shifts=None, inverse_shifts=None):
        check_int("dims", dims, DIMS[0], DIMS[-1])
        legal_n = points_for(dims)
        check_int("n", n, legal_n[0], legal_n[-1])
        if n not in legal_n:
            raise ValueError(f"n must be a power of two in {legal_n[0]}..{legal_n[-1]} "
                             f"for dims={dims}, got {n}")
        check_int("taps", taps, 1, n)
        check_in("in_channels", in_channels, CHANNELS)
        check_in("out_channels", out_channels, CHANNELS)
        self._c = check_compression_rate(compression_rate)
        check_in("width", width, WIDTHS)
        check_in("twiddle_width", twiddle_width, TWIDDLE_WIDTHS)
        check_in("coefficient_width", coefficient_width, COEFFICIENT_WIDTHS)
        check_int("spectrum_shift", spectrum_shift, 0, width + coefficient_width)
        stages = exact_log2(n)
        self._forward_shifts = check_shifts(forward_shifts, stages, "forward_shifts")
        self._inverse_shifts = check_shifts((0,) * stages if inverse_shifts is None
                                            else inverse_shifts, stages, "inverse_shifts")
        self._dims, self._n, self._taps = dims, n, taps
        self._in_channels, self._out_channels = in_channels, out_channels
        self._width, self._twiddle_width = width, twiddle_width
        self._coefficient_width, self._spectrum_shift = coefficient_width, spectrum_shift
        # The parts are built here so that their properties (sizes, latencies) are ours.
        self._forward = self._transform(inverse=False)
        self._inverse = self._transform(inverse=True)
        self._mac = owned(SpectralMAC(dims=dims, n=n, in_channels=in_channels,
                                      out_channels=out_channels, compression_rate=self._c,
                                      width=width, coefficient_width=coefficient_width,
                                      spectrum_shift=spectrum_shift))
        super().__init__({
            "filters": In(stream.Signature(coefficient_layout(coefficient_width))),
            "input": In(stream.Signature(signed(width))),
            "output": Out(stream.Signature(signed(width))),
            "overflow": Out(1),
            "clear_overflow": In(1),
            "filters_loaded": Out(1),
        })

    def _transform(self, *, inverse):
        shifts = self._inverse_shifts if inverse else self._forward_shifts
        part = StreamingFFT if self._dims == 1 else StreamingFFT2D
        return owned(part(n=self._n, width=self._width, twiddle_width=self._twiddle_width,
                          inverse=inverse, shifts=shifts))

    dims = property(lambda self: self._dims)
    n = property(lambda self: self._n)
    taps = property(lambda self: self._taps)
    in_channels = property(lambda self: self._in_channels)
    out_channels = property(lambda self: self._out_channels)
    compression_rate = property(lambda self: self._c)
    width = property(lambda self: self._width)
    twiddle_width = property(lambda self: self._twiddle_width)
    coefficient_width = property(lambda self: self._coefficient_width)
    spectrum_shift = property(lambda self: self._spectrum_shift)
    forward_shifts = property(lambda self: self._forward_shifts)
    inverse_shifts = property(lambda self: self._inverse_shifts)

    @property
    def out(self):
        """Valid outputs per axis: ``n - taps + 1``."""
        return self._n - self._taps + 1

    @property
    def tile_samples(self):
        """Input samples of a tile: ``in_channels * n ** dims``."""
        return self._in_channels * self._n ** self._dims

    @property
    def result_samples(self):
        """Output samples of a tile: ``out_channels * out ** dims``."""
        return self._out_channels * self.out ** self._dims

    @property
    def kept_bins(self):
        """Bins of a channel's spectrum the multiplier sees: ``T ** dims``."""
        return self._mac.kept_bins

    @property
    def words_per_filter(self):
        return self._mac.words_per_filter

    @property
    def filter_words(self):
        """Words of a whole filter set: ``out_channels * in_channels * words_per_filter``."""
        return self._mac.filter_words

    @property
    def filter_memory_bits(self):
        return self._mac.filter_memory_bits

    @property
    def accumulator_width(self):
        return self._mac.accumulator_width

    @property
    def multipliers(self):
        """Real products a cycle: the transforms' and the MAC's four."""
        return self._forward.multipliers + self._inverse.multipliers + 4

    @property
    def cycles_per_tile(self):
        """The stall-free tile period in steady state: the MAC's
        :attr:`~dnnhw.rtl.spectral_mac.SpectralMAC.tile_period`, the largest of the forward
        path's ``in_channels * n ** dims`` samples, the multiplier's ``in_channels *
        kept_bins * out_channels`` products and the read-out's ``out_channels * n **
        dims`` (plus up to 2 cycles of bank hand-over when the last two are within 4).
        Where the multiplier and the read-out take the same time, a pause of the read-out
        at a frame boundary makes the inverse transform flush with a ghost frame, and a
        tile can take up to ``n`` cycles more (the testbench's ``PERIOD_SLACK``)."""
        return self._mac.tile_period

    @property
    def throughput(self):
        """Input samples a cycle in steady state, no stalls."""
        return self.tile_samples / self.cycles_per_tile

    def elaborate(self, platform):
        m = Module()
        m.submodules.forward = forward = self._forward
        m.submodules.mac = mac = self._mac
        m.submodules.inverse = inverse = self._inverse

        # A real sample in is a complex one with imaginary part 0.
        m.d.comb += [
            forward.input.valid.eq(self.input.valid),
            forward.input.payload.re.eq(self.input.payload),
            forward.input.payload.im.eq(0),
            self.input.ready.eq(forward.input.ready),
        ]
        wiring.connect(m, forward.output, mac.input)
        wiring.connect(m, wiring.flipped(self.filters), mac.filters)
        wiring.connect(m, mac.output, inverse.input)

        # The crop: position (row, column) of the inverse's row-major output; the valid
        # window is the top-left out x out (1D: the first out).
        n, out = self._n, self.out
        column = Signal(range(n))
        row = Signal(range(n))
        keep = Signal()
        if self._dims == 1:
            m.d.comb += keep.eq(column < out)
        else:
            m.d.comb += keep.eq((column < out) & (row < out))
        m.d.comb += [
            self.output.valid.eq(inverse.output.valid & keep),
            self.output.payload.eq(inverse.output.payload.re),
            inverse.output.ready.eq(self.output.ready | ~keep),
        ]
        with m.If(inverse.output.valid & inverse.output.ready):
            m.d.sync += column.eq(column + 1)
            with m.If(column == n - 1):
                m.d.sync += [column.eq(0), row.eq(row + 1)]

        m.d.comb += [
            self.overflow.eq(forward.overflow | mac.overflow | inverse.overflow),
            forward.clear_overflow.eq(self.clear_overflow),
            mac.clear_overflow.eq(self.clear_overflow),
            inverse.clear_overflow.eq(self.clear_overflow),
            self.filters_loaded.eq(mac.filters_loaded),
        ]
        return m
