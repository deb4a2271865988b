"""The streaming fixed-point FFT: a radix-2 single-path delay-feedback (R2SDF) pipeline,
decimation in frequency, then a bit-reversal reorder buffer. ``docs/fft.md`` is the
contract (the arithmetic of section 2 bit for bit, the ports and timing of section 3).

**The stages.** Stage ``s`` (span ``D = n >> (s + 1)``) takes one sample per *step* and
keeps a delay line of ``D`` samples. In the first half of a block of ``2 D`` it stores
the sample that comes in and sends out the one the delay line returns (the previous
block's difference, to be rotated); in the second half it forms ``a + b`` and ``a - b``
from the stored ``a`` and the incoming ``b``, sends out the sum and stores the
difference. A stage's output is its input delayed by ``D`` steps, so the pipeline holds
``n - 1`` samples in its delay lines. The rotation by ``W(j << s)`` follows the
butterfly; the sum goes through the same multiplier by ``W(0)``, which is exact.

Per stage the registers are: the butterfly result (and the twiddle ROM's read), the
four products (written as ``*``: the DSP blocks, which absorb the butterfly register and
the product register on the UP5K), and the rounded, saturated stage output, which is the
next stage's input. The last two stages have only twiddles in ``{0, +-2 ** F}``
(``W(0)`` and ``W(n / 4)``): they have no multiplier and no product register, only sign
changes and swaps. Delay lines of ``RAM_DELAY`` samples or more are block RAM
(:class:`~dnnhw.rtl.ram.BlockRam`, read one word ahead so that a read never meets the
write); shorter ones are shift registers.

**Saturation of a shifted difference.** With ``shift_s == 1`` the sum
``rnd(a + b, 1)`` fits ``width`` bits, but the difference ``rnd(a - b, 1)`` reaches ``M``
when ``a - b = 2 M - 1``; section 2 saturates it (to ``M - 1``, setting ``overflow``), so
every stored difference and every multiplier operand is ``width`` bits.

**Steps and bubbles.** Every register moves when ``advance`` is high: when the last
stage's output is not a real sample waiting for the reorder buffer, or the buffer takes
it. A register holds a sample or a bubble (a valid bit); a stage steps (its counter,
delay line and block tag) only for a sample, so bubbles cost no step and the pipeline
registers drain by themselves. Each sample carries a tag, real or ghost; the reorder
buffer takes only real ones.

**Ghost frames.** With no framing signal, the core counts the samples of the frame
going in. In a cycle at a frame boundary that finds the input not valid, if a real
sample went in since the last ghost frame started, the core enters a zero frame of ``n``
ghost samples, whole: its first sample in that cycle (``input.ready`` was high, as it
never looks at ``input.valid``), the other ``n - 1`` with ``input.ready`` low. Those
``n`` steps push every real result out of the delay lines (they hold ``n - 1``); the
pipeline registers drain with bubbles, so one ghost frame is always enough. A pause
inside a frame only leaves bubbles.
"""

import math

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from dnnhw.spec.fft import (POINTS, TWIDDLE_WIDTHS, WIDTHS, check_shifts,
                             twiddle_fraction_bits)
from ._checks import check_bool, check_in, check_int
from .bit_reverse import BitReverseBuffer, reorder_start
from .ram import BlockRam


__all__ = ["StreamingFFT", "sample_layout", "twiddle_table"]


#: Delay lines of at least this many samples are block RAM; shorter ones flip-flops.
RAM_DELAY = 16


def sample_layout(width):
    """A complex sample: ``re`` and ``im``, ``signed(width)`` each."""
    return data.StructLayout({"re": signed(width), "im": signed(width)})


def twiddle_table(n, twiddle_width, inverse=False):
    """The contract's ``W(k) = (c, s)`` for ``k = 0 .. n/2 - 1``, as a list of int pairs."""
    f = twiddle_fraction_bits(twiddle_width)
    sign = 1 if inverse else -1
    return [(math.floor(math.cos(2 * math.pi * k / n) * 2 ** f + 0.5),
             math.floor(sign * math.sin(2 * math.pi * k / n) * 2 ** f + 0.5))
            for k in range(n // 2)]


def _saturate(m, value, width, name):
    """``value`` clamped to ``signed(width)``: the clamped signal and whether it changed."""
    hi, lo = (1 << (width - 1)) - 1, -(1 << (width - 1))
    out = Signal(signed(width), name=name)
    changed = Signal(name=f"{name}_sat")
    m.d.comb += changed.eq((value > hi) | (value < lo))
    m.d.comb += out.eq(Mux(value > hi, hi, Mux(value < lo, lo, value)))
    return out, changed


class StreamingFFT(wiring.Component):
    """Streaming ``n``-point fixed-point FFT (or inverse), a sample a cycle, natural order
    out.

    The arithmetic is ``docs/fft.md`` section 2, bit for bit: stage ``s`` halves its
    outputs when ``shifts[s]`` is 1, rounds half up, saturates, and sets ``overflow``
    when a saturation changes a value of a real sample. Frames are consecutive groups of
    ``n`` samples; the output is frame by frame, bin 0 first. When the input pauses at a
    frame boundary the core pushes a ghost (zero) frame through to flush the last real
    one: ``input.ready`` is low for the next ``n - 1`` cycles (longer if the output
    stalls).

    Timing with no stalls: a frame's first output comes :attr:`latency` cycles after its
    first input (``n + 3 log2(n) - 1 + reorder_start``, e.g. 20 for ``n = 8``, 131 for
    ``n = 64``), then one a cycle, frames back to back: the last sample of ``m`` frames
    comes out ``m * n + latency - 1`` cycles after the first went in. A frame that the
    input does not follow comes out as fast (its ghost frame starts at once).

    Parameters
    ----------
    n : int
        Points of a frame, a power of two in 8 .. 4096.
    width : int
        Bits of a sample's real and imaginary parts (signed), 8 .. 24.
    twiddle_width : int
        Bits of a twiddle's parts (signed), 8 .. 18; ``F = twiddle_width - 2`` fraction
        bits.
    inverse : bool
        The inverse transform (twiddles ``e^{+2 pi i k / n}``).
    shifts : None, int or sequence of int
        Per stage, 1 to halve its outputs: ``log2(n)`` bits (0 or 1), or an int mask
        (bit ``s`` for stage ``s``); default all 1.

    Members
    -------
    input : In(stream.Signature(sample_layout(width)))
        Samples in, frame after frame. ``ready`` depends on no input of this cycle (not
        on ``input.valid``, not on ``output.ready``).
    output : Out(stream.Signature(sample_layout(width)))
        The transforms, in natural order. ``valid`` and ``payload`` are registers.
    overflow : Out(1)
        Sticky: a saturation changed a value of a real (not ghost) sample since reset or
        the last ``clear_overflow``; it rises two cycles after the saturating step.
    clear_overflow : In(1)
        Clears ``overflow`` (a saturation of the cycle before sets it again).
    """

    def __init__(self, *, n, width, twiddle_width, inverse=False, shifts=None):
        check_int("n", n, POINTS[0], POINTS[-1])
        if n not in POINTS:
            raise ValueError(f"n must be a power of two in {POINTS[0]}..{POINTS[-1]}, "
                             f"got {n}")
        check_in("width", width, WIDTHS)
        check_in("twiddle_width", twiddle_width, TWIDDLE_WIDTHS)
        check_bool("inverse", inverse)
        self._n, self._width, self._twiddle_width = n, width, twiddle_width
        self._inverse = inverse
        self._shifts = check_shifts(shifts, exact_log2(n))
        self._table = None
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
    def stages(self):
        """``L = log2(n)``."""
        return exact_log2(self._n)

    @property
    def fraction_bits(self):
        """``F = twiddle_width - 2``."""
        return twiddle_fraction_bits(self._twiddle_width)

    def span(self, stage):
        """``D = n >> (stage + 1)``: the delay line of a stage."""
        return self._n >> (stage + 1)

    def stage_twiddles(self, stage):
        """The twiddles stage ``stage`` applies, ``W(j << stage)`` for ``j < D``."""
        if self._table is None:
            self._table = twiddle_table(self._n, self._twiddle_width, self._inverse)
        return [self._table[j << stage] for j in range(self.span(stage))]

    def multiplies(self, stage):
        """Whether a stage needs multipliers: some twiddle is not in ``{0, +-2 ** F}``."""
        one = 1 << self.fraction_bits
        return any(c not in (0, one, -one) or s not in (0, one, -one)
                   for c, s in self.stage_twiddles(stage))

    def stage_registers(self, stage):
        """Registers a sample passes in a stage, besides its delay line: 3 with a
        multiplier (butterfly, products, output), 2 without."""
        return 3 if self.multiplies(stage) else 2

    @property
    def multipliers(self):
        """Products the core computes each cycle: four per stage with a multiplier."""
        return 4 * sum(self.multiplies(s) for s in range(self.stages))

    @property
    def pipeline_registers(self):
        """Registers a sample passes from ``input`` to the reorder buffer, besides the
        delay lines: the input register and every stage's."""
        return 1 + sum(self.stage_registers(s) for s in range(self.stages))

    @property
    def reorder_start(self):
        """Words of a frame in the reorder buffer before its first read
        (:attr:`BitReverseBuffer.start`)."""
        return reorder_start(self._n)

    @property
    def latency(self):
        """Cycles from a frame's first sample in to its first sample out, no stalls:
        ``n - 1`` steps in the delay lines, :attr:`pipeline_registers`, the reorder
        buffer's :attr:`reorder_start` words and its read register:
        ``n + pipeline_registers + reorder_start``."""
        return self._n + self.pipeline_registers + self.reorder_start

    def elaborate(self, platform):
        m = Module()
        n, width, L = self._n, self._width, self.stages

        m.submodules.reorder = reorder = BitReverseBuffer(n=n, shape=sample_layout(width))
        wiring.connect(m, reorder.o, wiring.flipped(self.output))

        advance = Signal()
        overflows = []                  # per cause: a real sample saturated this cycle

        # --- The input register: a real sample, a ghost zero, or a bubble. ---
        pos = Signal(range(n))          # position in its frame of the next sample in
        ghost = Signal()                # entering a ghost frame (past its first sample)
        dirty = Signal()                # a real sample went in since the last ghost frame
        ghost_now = Signal()
        m.d.comb += [
            ghost_now.eq(ghost | ((pos == 0) & ~self.input.valid & dirty)),
            self.input.ready.eq(advance & ~ghost),
        ]
        x_re = Signal(signed(width), name="in_re", reset_less=True)
        x_im = Signal(signed(width), name="in_im", reset_less=True)
        x_valid = Signal(name="in_valid")
        x_real = Signal(name="in_real")
        with m.If(advance):
            enter = ghost_now | self.input.valid
            m.d.sync += [
                x_re.eq(Mux(ghost_now, 0, self.input.payload.re)),
                x_im.eq(Mux(ghost_now, 0, self.input.payload.im)),
                x_valid.eq(enter),
                x_real.eq(~ghost_now),
            ]
            with m.If(enter):
                m.d.sync += pos.eq(pos + 1)
                with m.If(ghost_now):
                    m.d.sync += [ghost.eq(pos != n - 1), dirty.eq(0)]
                with m.Else():
                    m.d.sync += dirty.eq(1)

        for s in range(L):
            x_re, x_im, x_valid, x_real = self._stage(
                m, s, x_re, x_im, x_valid, x_real, advance, overflows)

        # --- The reorder buffer takes the real samples; ghosts and bubbles vanish. ---
        m.d.comb += [
            reorder.i.valid.eq(x_valid & x_real),
            reorder.i.payload.re.eq(x_re),
            reorder.i.payload.im.eq(x_im),
            advance.eq(~reorder.i.valid | reorder.i.ready),
        ]

        # Each stage's saturation events are registered before they meet: the OR of all
        # of them behind the saturation compares was the critical path of large n.
        events = Signal(len(overflows))
        m.d.sync += events.eq(Cat(*overflows))
        with m.If(events.any()):
            m.d.sync += self.overflow.eq(1)
        with m.Elif(self.clear_overflow):
            m.d.sync += self.overflow.eq(0)
        return m

    def _stage(self, m, s, x_re, x_im, x_valid, x_real, advance, overflows):
        """Stage ``s`` from its input registers; returns its output registers."""
        width, F = self._width, self.fraction_bits
        D = self.span(s)
        shift = self._shifts[s]
        one = 1 << F
        p = f"s{s}_"

        step = Signal(name=f"{p}step")
        m.d.comb += step.eq(advance & x_valid)
        count = Signal(range(2 * D), name=f"{p}count")
        with m.If(step):
            m.d.sync += count.eq(count + 1)
        half = count[-1]                # 1: the second half of the block (butterflies)
        j = count[:-1]                  # index in the half (no bits when D == 1)

        # The delay line: fb is what went in D steps ago.
        push = Signal(2 * width, name=f"{p}push")
        fb = Signal(2 * width, name=f"{p}fb")
        if D >= RAM_DELAY:
            ram = BlockRam(shape=2 * width, depth=D)
            m.submodules[f"{p}delay"] = ram
            # Registered read one word ahead of the write: the word read at this step is
            # written D - 1 steps back; it leaves the read register at the next step.
            m.d.comb += [
                ram.write_en.eq(step), ram.write_addr.eq(j), ram.write_data.eq(push),
                ram.read_en.eq(step), ram.read_addr.eq((j + 1)[:len(j)]),
                fb.eq(ram.read_data),
            ]
        else:
            chain = [Signal(2 * width, name=f"{p}delay{k}", reset_less=True)
                     for k in range(D)]
            with m.If(step):
                m.d.sync += chain[0].eq(push)
                m.d.sync += [chain[k].eq(chain[k - 1]) for k in range(1, D)]
            m.d.comb += fb.eq(chain[-1])
        a_re, a_im = fb[:width].as_signed(), fb[width:].as_signed()

        # The butterfly (second half): u = rnd(a + b), v = rnd(a - b), saturated.
        u, d = [], []
        for a, b, part in ((a_re, x_re, "r"), (a_im, x_im, "i")):
            if shift:
                su, cu = self._fit(m, (a + b + 1) >> 1, f"{p}u_{part}"), None
                sd, cd = _saturate(m, (a - b + 1) >> 1, width, f"{p}v_{part}")
            else:
                su, cu = _saturate(m, a + b, width, f"{p}u_{part}")
                sd, cd = _saturate(m, a - b, width, f"{p}v_{part}")
            u.append(su)
            d.append(sd)
            event = Signal(name=f"{p}bfly_ovf_{part}")
            m.d.comb += event.eq(step & half & x_real & (cd if cu is None else cu | cd))
            overflows.append(event)
        m.d.comb += push.eq(Mux(half, Cat(d[0], d[1]), Cat(x_re, x_im)))

        # The block's tag: a stage's output is its input D steps back, the previous
        # block's in the first half.
        block_real = Signal(name=f"{p}block_real")
        with m.If(step & half):
            m.d.sync += block_real.eq(x_real)

        # Register 1: the butterfly's output (the sum, or the stored difference).
        p_re = Signal(signed(width), name=f"{p}p_re", reset_less=True)
        p_im = Signal(signed(width), name=f"{p}p_im", reset_less=True)
        p_valid = Signal(name=f"{p}p_valid")
        p_real = Signal(name=f"{p}p_real")
        p_half = Signal(name=f"{p}p_half", reset_less=True)
        p_j = Signal(len(j), name=f"{p}p_j", reset_less=True)
        with m.If(advance):
            m.d.sync += [
                p_re.eq(Mux(half, u[0], a_re)), p_im.eq(Mux(half, u[1], a_im)),
                p_valid.eq(x_valid), p_real.eq(Mux(half, x_real, block_real)),
                p_half.eq(half), p_j.eq(j),
            ]

        # The rotation of a first-half output by W(j << s), of a second-half one by W(0).
        twiddles = self.stage_twiddles(s)
        if self.multiplies(s):
            rom = Memory(shape=data.StructLayout({"c": signed(self._twiddle_width),
                                                  "s": signed(self._twiddle_width)}),
                         depth=D, init=[{"c": c, "s": t} for c, t in twiddles])
            m.submodules[f"{p}twiddles"] = rom
            port = rom.read_port(domain="sync")
            m.d.comb += [port.addr.eq(j), port.en.eq(advance)]
            w_c = Mux(p_half, one, port.data.c)
            w_s = Mux(p_half, 0, port.data.s)
            # Register 2: the four products.
            products = [Signal(signed(width + self._twiddle_width), name=f"{p}m{k}",
                               reset_less=True) for k in range(4)]
            m_valid = Signal(name=f"{p}m_valid")
            m_real = Signal(name=f"{p}m_real")
            with m.If(advance):
                m.d.sync += [
                    products[0].eq(p_re * w_c), products[1].eq(p_im * w_s),
                    products[2].eq(p_re * w_s), products[3].eq(p_im * w_c),
                    m_valid.eq(p_valid), m_real.eq(p_real),
                ]
            rounding = 1 << (F - 1)
            full_re = (products[0] - products[1] + rounding) >> F
            full_im = (products[2] + products[3] + rounding) >> F
            last_valid, last_real = m_valid, m_real
        else:
            # Twiddles in {0, +-2 ** F}: re = cr * p_re - sr * p_im, im = sr * p_re +
            # cr * p_im with cr, sr in {-1, 0, 1}, chosen by j (W(0) in the second half).
            def rotate(c, t):
                cr, sr = c >> F if c else 0, t >> F if t else 0
                re = sum_terms([(cr, p_re), (-sr, p_im)])
                im = sum_terms([(sr, p_re), (cr, p_im)])
                return re, im

            def sum_terms(terms):
                value = Const(0, signed(2))
                for k, term in terms:
                    if k == 1:
                        value = value + term
                    elif k == -1:
                        value = value - term
                return value

            for index, (c, t) in reversed(list(enumerate(twiddles))):
                re, im = rotate(c, t)
                if index == len(twiddles) - 1:
                    sel_re, sel_im = re, im
                else:
                    sel_re = Mux(p_j == index, re, sel_re)
                    sel_im = Mux(p_j == index, im, sel_im)
            full_re = Mux(p_half, p_re, sel_re)
            full_im = Mux(p_half, p_im, sel_im)
            last_valid, last_real = p_valid, p_real

        y_sat_re, c_re = _saturate(m, full_re, width, f"{p}y_sat_re")
        y_sat_im, c_im = _saturate(m, full_im, width, f"{p}y_sat_im")
        event = Signal(name=f"{p}rot_ovf")
        m.d.comb += event.eq(advance & last_valid & last_real & (c_re | c_im))
        overflows.append(event)

        # Register 3: the stage's output.
        y_re = Signal(signed(width), name=f"{p}y_re", reset_less=True)
        y_im = Signal(signed(width), name=f"{p}y_im", reset_less=True)
        y_valid = Signal(name=f"{p}y_valid")
        y_real = Signal(name=f"{p}y_real")
        with m.If(advance):
            m.d.sync += [y_re.eq(y_sat_re), y_im.eq(y_sat_im),
                         y_valid.eq(last_valid), y_real.eq(last_real)]
        return y_re, y_im, y_valid, y_real

    def _fit(self, m, value, name):
        """``value``, known to fit ``signed(width)``, as such a signal."""
        out = Signal(signed(self._width), name=name)
        m.d.comb += out.eq(value)
        return out
