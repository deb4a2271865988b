"""The sparsifier of Deep Gradient Compression (Lin et al., ICLR 2018): one worker's
momentum correction, local accumulation, threshold and masking on one gradient tensor.

It computes ``dnnhw.golden.dgc_fixed.SparsifierState.step`` bit for bit (``docs/dgc.md``:
section 2 is the arithmetic, section 3 "Sparsifier" the ports and the passes). A step is
one ``cmd`` beat, one gradient frame on ``i`` (two with ``clip``: the first for the
norm), the selected elements on ``o`` and one ``status`` beat.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from ._checks import check_bool, check_in, check_int
from .ram import BlockRam
from .skid_buffer import SkidBuffer
from dnnhw.spec.dgc import (
    ADAPT_ROUNDS, GRAD_WIDTHS, KEY_MANTISSA_BITS, LOWER_BOUND,
    MAX_CLIP_SHIFT, MOMENTUM_FRAC, REGISTER_BITS, STATE_WIDTHS, STRIDE_BITS, UPPER_BOUND,
    capacity_bits, key_count,
)


__all__ = ["ERRORS", "command_layout", "gradient_layout", "sparse_layout", "status_layout",
           "DgcSparsifier"]


#: ``error_code`` values, by index: the first error since reset.
ERRORS = ("none", "command", "length")


def command_layout(capacity, grad_width):
    """A step's command, the fields in ``docs/dgc.md`` order: ``length`` (n),
    ``momentum`` (m = momentum / 2**MOMENTUM_FRAC), ``clip``, ``clip_limit`` (``2 * G +
    log2(capacity)`` bits), ``sample_start``, ``sample_stride``, ``target`` (k) and
    ``sample_target`` (k_s)."""
    bits = capacity_bits(capacity)
    grad_width = check_in("grad_width", grad_width, GRAD_WIDTHS)
    return data.StructLayout({
        "length": range(capacity + 1),
        "momentum": unsigned(REGISTER_BITS),
        "clip": 1,
        "clip_limit": unsigned(2 * grad_width + bits),
        "sample_start": unsigned(STRIDE_BITS),
        "sample_stride": unsigned(STRIDE_BITS),
        "target": range(capacity + 1),
        "sample_target": range(capacity + 1),
    })


def gradient_layout(grad_width):
    """A gradient beat: ``value`` (signed G bits) and ``last``."""
    grad_width = check_in("grad_width", grad_width, GRAD_WIDTHS)
    return data.StructLayout({"value": signed(grad_width), "last": 1})


def sparse_layout(capacity, state_width):
    """A selected element: ``index`` (``log2(capacity)`` bits), ``value`` (v before the
    masking, signed S bits) and ``last``."""
    bits = capacity_bits(capacity)
    state_width = check_in("state_width", state_width, STATE_WIDTHS)
    return data.StructLayout({"index": unsigned(bits), "value": signed(state_width),
                              "last": 1})


def status_layout(capacity, state_width):
    """A step's status: ``selected`` (c(b)), ``threshold`` (b), ``rounds``, ``shift`` (s)."""
    capacity_bits(capacity)
    state_width = check_in("state_width", state_width, STATE_WIDTHS)
    return data.StructLayout({
        "selected": range(capacity + 1),
        "threshold": range(key_count(state_width)),
        "rounds": range(ADAPT_ROUNDS + 1),
        "shift": range(MAX_CLIP_SHIFT + 1),
    })


def _times(value, factor):
    """``value * factor`` for a constant ``factor`` >= 1, as a sum of shifted copies (so no
    tool spends a multiplier on it)."""
    terms = [value << bit for bit in range(factor.bit_length()) if factor >> bit & 1]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def _saturate(value, width):
    """``value`` (signed, wider than ``width``) clamped to the symmetric
    ``[-(2**(width-1) - 1), 2**(width-1) - 1]``, decided from its bits (no compare):
    above when positive with a one at or above bit ``width - 1``; below when negative
    and not all ones there, or all ones there and zeros below (``-2**(width-1)``)."""
    top = (1 << (width - 1)) - 1
    sign = value[-1]
    high = value[width - 1:-1]
    low = value[:width - 1]
    above = ~sign & high.any()
    below = sign & (~high.all() | ~low.any())
    return Mux(above, top, Mux(below, -top, value[:width].as_signed()))


def _key_less(magnitude):
    """The histogram key of a non-zero ``magnitude`` (unsigned) less one: ``e * 2**KM + f``
    with ``e`` the position of its leading one and ``f`` the ``KM`` bits below it (zeros
    shifted in below bit 0), ``KM`` = KEY_MANTISSA_BITS."""
    km = KEY_MANTISSA_BITS
    width = len(magnitude)
    less = Const(0, km + bits_for(width))
    for e in range(width):              # later (higher) leading ones win
        below = Cat(*(magnitude[e - km + j] if e - km + j >= 0 else Const(0, 1)
                      for j in range(km)))
        less = Mux(magnitude[e], Cat(below, Const(e, bits_for(width))), less)
    return less


class DgcSparsifier(wiring.Component):
    """One worker's DGC state for a tensor of up to ``capacity`` elements, and its steps.

    A step (``docs/dgc.md`` section 2, one pass at a time, no overlap between steps):

    1. **Command.** One ``cmd`` beat, taken only in the idle phase. Its check takes
       ``STRIDE_BITS`` cycles (the sample's size, ``ceil((n - start) / stride)``, is
       compared with k_s as ``start + (k_s - 1) * stride < n``, by shift and add) and one
       for the verdict. A bad command sets the ``command`` error and the step is skipped:
       its frames (two with ``clip``) are taken and dropped, and it sends nothing on ``o``
       or ``status``.
    2. **Norm** (``clip`` only). The first frame, one beat a cycle: the squares summed
       (a multiplier, then the accumulator); then the shift search, one candidate a cycle
       from 0 (``s + 1`` cycles): ``sumsq <= limit * 4**s`` is tested as
       ``ceil(sumsq / 4**s) <= limit``, that is ``floor(sumsq / 4**s) + r <= limit``
       with ``r`` = 1 when the shifts have dropped a non-zero bit (the sum is shifted
       down two bits a cycle, no adder).
    3. **Update.** The second (or only) frame, one beat a cycle: the beat is clipped into
       a register, the next cycle ``mu``, ``u`` and ``v`` are computed from the state word
       (combinationally, into the write-back register); ``|v|``, its key and the
       histogram's read and write follow in four stages.
    4. **Select.** The histograms are read from the top key down to key 1, one a cycle
       (``key_count + 1`` cycles with the decision), summing ``c(b)`` and ``cs(b)`` and
       clearing each word behind the read. The scan finds b0 and, for the feedback, two
       keys: ``c`` does not grow with ``b``, so ``10 c(b) > 13 k`` holds exactly for
       ``b <= U`` and ``10 c(b) < 8 k`` exactly for ``b > L``, with U and L the first keys
       of the scan where ``10 c > 13 k`` and ``10 c >= 8 k`` hold (0 when none does). The
       rounds then move ``b`` one a cycle with those two compares (``rounds + 1``
       cycles, the direction chosen once from b0), as ``docs/dgc.md`` step 5 says.
    5. **Emit.** The state is read again in index order, one element a cycle: an element
       with ``key(|v|) >= b`` (compared as ``v >= a`` or ``v <= -a``, ``a`` the smallest
       magnitude with a key of b or more, found once) is held back one selection (so that
       the last one can carry ``last``) and then sent on ``o`` through a skid buffer; its
       state is written back as zero. At the end the held element goes out with ``last``
       (``(0, 0, last)`` when nothing was selected).
    6. **Status.** Once ``o``'s last beat has been taken, one ``status`` beat; the next
       ``cmd`` is taken after it.

    With no stalls a step takes :meth:`step_cycles` cycles from its ``cmd`` transfer to
    the next step's: ``2 n + key_count + rounds + 28``, plus ``n + s + 2`` with ``clip``.
    The norm, update and emit passes take one element a cycle (II = 1).

    The state memory. Word j holds ``u`` and ``v`` of elements 2j and 2j + 1
    (``capacity / 2`` words of ``4 S`` bits) and has one address for its read and its
    write (single port, the UP5K's SPRAM with ``spram``). In the update and emit passes
    element 2j writes word j - 1 back and element 2j + 1 reads word j + 1 (word 0 is
    read before the first element, the final word written after the last): one port
    operation per element, never a read and a write in the same cycle. An element is
    computed from the word in the read register and its partner's old values go into the
    write-back register with it, so an odd ``n`` (or an early ``last``) leaves the
    partner's state as it was.

    The histograms. ``H_all`` and ``H_s`` share one block RAM word a key (``2 (log2
    capacity + 1)`` bits), read in one cycle and written the next, one element a cycle;
    when two consecutive elements have the same key the second read meets the first's
    write, and the value being written is forwarded in its place. Key 0 (``v = 0``) has
    no word and is not counted: the threshold key is never 0, so no sum needs it.
    After reset a clear pass zeroes the state memory (SPRAM has no initial value) and the
    histograms (a reset may come in mid-step): :attr:`clear_cycles` cycles, ``cmd`` not
    ready meanwhile.

    Readings of ``docs/dgc.md`` (those of ``dnnhw.golden.dgc_fixed`` and these):

    - The command check rejects the commands ``Command.check`` rejects: ``length`` outside
      ``1 .. capacity``, ``sample_stride`` 0, ``sample_start >= sample_stride``,
      ``target`` outside ``1 .. length``, ``sample_target`` outside ``1 ..`` the sample's
      size (which is 0 when ``sample_start >= length``). ``momentum``, ``clip`` and
      ``clip_limit`` fill their fields, so every value is legal.
    - A frame ends at its ``last`` or at beat n - 1, whichever comes first; otherwise the
      ``length`` error is set. An early ``last`` in the update frame: the step runs on the
      m elements received (histograms, selection and emission over ``0 .. m - 1``; the
      elements after them keep their state; k and k_s stay the command's). In the norm
      frame: the sum is over the beats received. A skipped step's frames end the same
      way with n read as ``length`` clamped to ``1 .. capacity``.
    - ``o``'s ``value`` is v before the masking. ``status.selected`` is the number of
      elements sent (``c(b)``, the dummy beat not counted); ``status`` comes after
      ``o``'s last beat has been taken, and the next ``cmd`` after ``status``.
    - ``momentum`` is ``REGISTER_BITS`` (16) bits wide, all fraction: m < 1.
    - While the held element waits for the skid buffer, the emit pass stalls even on an
      element that is not selected (the stall does not wait for the key compare).
    - Malformed input never hangs the core: it waits only on handshakes, and a frame
      ends by its count at the latest.

    Parameters
    ----------
    capacity : int
        Elements of the tensor, the largest n: a power of two, 2**4 to 2**20.
    grad_width : int
        G, bits of a gradient element (signed), 8 to 16.
    state_width : int
        S, bits of ``u``, ``v`` and a sent value (signed, symmetric saturation), 12 to 32.
    spram : bool
        Mark the state memory ``ram_style = "huge"`` (the UP5K's SPRAM).

    Members
    -------
    cmd : In(stream.Signature(command_layout(capacity, grad_width)))
        One beat a step.
    i : In(stream.Signature(gradient_layout(grad_width)))
        The gradient: n beats a frame, ``last`` on the final one; two frames with ``clip``.
    o : Out(stream.Signature(sparse_layout(capacity, state_width)))
        The selected elements in index order, ``last`` on the step's final one; a step
        that selects nothing sends ``(0, 0, last=1)``.
    status : Out(stream.Signature(status_layout(capacity, state_width)))
        One beat a step, after ``o``'s last.
    error : Out(1)
        Sticky until reset.
    error_code : Out(range(len(ERRORS)))
        The first error: ``ERRORS.index("command")`` or ``ERRORS.index("length")``.
    """

    def __init__(self, *, capacity=2 ** 12, grad_width=16, state_width=16, spram=False):
        self._capacity_bits = capacity_bits(capacity)
        self._capacity = capacity
        self._grad_width = check_in("grad_width", grad_width, GRAD_WIDTHS)
        self._state_width = check_in("state_width", state_width, STATE_WIDTHS)
        check_bool("spram", spram)
        self._spram = spram
        super().__init__({
            "cmd": In(stream.Signature(command_layout(capacity, grad_width))),
            "i": In(stream.Signature(gradient_layout(grad_width))),
            "o": Out(stream.Signature(sparse_layout(capacity, state_width))),
            "status": Out(stream.Signature(status_layout(capacity, state_width))),
            "error": Out(1),
            "error_code": Out(range(len(ERRORS))),
        })

    @property
    def capacity(self):
        return self._capacity

    @property
    def grad_width(self):
        return self._grad_width

    @property
    def state_width(self):
        return self._state_width

    @property
    def spram(self):
        return self._spram

    @property
    def capacity_bits(self):
        """``log2(capacity)``: bits of an index."""
        return self._capacity_bits

    @property
    def key_count(self):
        """Histogram keys: ``key_count(state_width)`` of :mod:`dnnhw.spec.dgc`."""
        return key_count(self._state_width)

    @property
    def limit_width(self):
        """Bits of ``clip_limit``: ``2 * grad_width + capacity_bits``."""
        return 2 * self._grad_width + self._capacity_bits

    @property
    def sum_width(self):
        """Bits of the sum of squares: ``2 * grad_width - 1 + capacity_bits`` (exact)."""
        return 2 * self._grad_width - 1 + self._capacity_bits

    @property
    def word_width(self):
        """Bits of a state word: ``u`` and ``v`` of two elements, ``4 * state_width``."""
        return 4 * self._state_width

    @property
    def clear_cycles(self):
        """Cycles of the clear pass after reset (``cmd`` not ready):
        ``max(capacity / 2, key_count - 1)``."""
        return max(self._capacity // 2, self.key_count - 1)

    def step_cycles(self, length, *, clip=False, shift=0, rounds=0):
        """Cycles from a step's ``cmd`` transfer to the next step's with no stalls, for a
        good command of ``length`` n: ``2 n + key_count + rounds + 28``, and
        ``n + shift + 2`` more with ``clip``. (The command 1, its check
        ``STRIDE_BITS + 1``, the update pass ``n + 5``, the scan ``key_count + 1``, the
        rounds ``rounds + 1``, the emit pass ``n``, its final beat, ``o``, the status 3;
        the norm pass ``n + 1``, the shift search ``shift + 1``.)"""
        check_int("length", length, 1, self._capacity)
        check_bool("clip", clip)
        check_int("shift", shift, 0, MAX_CLIP_SHIFT)
        check_int("rounds", rounds, 0, ADAPT_ROUNDS)
        cycles = 2 * length + self.key_count + rounds + STRIDE_BITS + 12
        if clip:
            cycles += length + shift + 2
        return cycles

    def elaborate(self, platform):
        m = Module()
        cb, gw, sw = self._capacity_bits, self._grad_width, self._state_width
        kc = self.key_count
        capacity = self._capacity
        words = capacity // 2
        count = range(capacity + 1)

        # ---- the memories ------------------------------------------------------------
        # The state: word j = u, v of elements 2j and 2j + 1. Single port: the passes
        # issue at most one operation (a read or a write) a cycle, so a read never meets
        # a write at all (BlockRam's condition for no_rw_check), and the SPRAM's one
        # address serves both.
        element = data.StructLayout({"u": signed(sw), "v": signed(sw)})
        word_layout = data.ArrayLayout(element, 2)
        m.submodules.state = state = BlockRam(shape=word_layout.size, depth=words,
                                              single_port=True, huge=self._spram)
        # The histograms: H_all and H_s of a key in one word. A read meets a write to its
        # word only in the update pass, when an element's key equals the previous
        # element's (read in the cycle that one writes): that read's data is not used,
        # the written value is forwarded instead. The scan reads key b while it clears
        # key b + 1; the clear pass only writes.
        bin_layout = data.StructLayout({"all": count, "sample": count})
        bins = kc - 1                       # keys 1 .. kc - 1 at words 0 .. kc - 2
        m.submodules.hist = hist = BlockRam(shape=bin_layout.size, depth=bins)
        word = data.View(word_layout, state.read_data)
        wb = Signal(word_layout)            # the write-back word
        clearing = Signal()                 # the clear pass after reset
        state_addr = Signal(range(words))
        m.d.comb += [
            state.read_addr.eq(state_addr),
            state.write_addr.eq(state_addr),
            state.write_data.eq(Mux(clearing, 0, wb)),
        ]
        hist_word = data.View(bin_layout, hist.read_data)

        # ---- errors ------------------------------------------------------------------
        error_code = Signal(range(len(ERRORS)))
        err_command = Signal()
        err_length = Signal()
        m.d.comb += [self.error_code.eq(error_code), self.error.eq(error_code != 0)]
        with m.If(error_code == 0):
            with m.If(err_command):
                m.d.sync += error_code.eq(ERRORS.index("command"))
            with m.Elif(err_length):
                m.d.sync += error_code.eq(ERRORS.index("length"))

        # ---- the command registers -----------------------------------------------------
        cmd = Signal(command_layout(capacity, gw))
        last_index = Signal(cb)             # n - 1 (length clamped to 1 .. capacity)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += cmd.eq(self.cmd.payload)

        # ---- the frame on i: its end and its errors ------------------------------------
        taking = Signal()                   # a pass takes i this cycle
        take = Signal()
        index = Signal(cb)                  # the beat's index in its frame
        at_end = Signal()
        frame_end = Signal()                # this beat ends the frame
        m.d.comb += [
            self.i.ready.eq(taking),
            take.eq(self.i.valid & taking),
            at_end.eq(index == last_index),
            frame_end.eq(at_end | self.i.payload.last),
            err_length.eq(take & (self.i.payload.last != at_end)),
        ]
        with m.If(take):
            m.d.sync += index.eq(Mux(frame_end, 0, index + 1))

        # ---- check -------------------------------------------------------------------
        # (sample_target - 1) * stride, MSB of the stride first, saturating once it
        # passes 2**(cb+1) (more than any n - start).
        product = Signal(cb + 1)
        product_over = Signal()
        stride_bits = Signal(STRIDE_BITS)   # the stride, shifted up a bit a cycle
        check_step = Signal(range(STRIDE_BITS + 1))
        target_less = Signal(cb + 1)       # sample_target - 1
        product_next = Signal(cb + 3)
        m.d.comb += [
            target_less.eq(cmd.sample_target - 1),
            product_next.eq((product << 1) + Mux(stride_bits[-1], target_less, 0)),
        ]
        command_ok = Signal()
        m.d.comb += command_ok.eq(
            (cmd.length != 0) & (cmd.length <= capacity)
            & (cmd.sample_stride != 0)
            & (cmd.sample_start < cmd.sample_stride)
            & (cmd.target != 0) & (cmd.target <= cmd.length)
            & (cmd.sample_target != 0)
            & ~product_over & (product + cmd.sample_start < cmd.length))
        drop_frames = Signal(2)             # frames a skipped step still owes

        # ---- norm pass and shift search ----------------------------------------------
        square = Signal(2 * gw - 1, reset_less=True)
        square_valid = Signal()
        sumsq = Signal(self.sum_width)      # the sum; in the search floor(sum / 4**s)
        inexact = Signal()                  # ... and whether bits were shifted out
        shift = Signal(range(MAX_CLIP_SHIFT + 1))
        m.d.sync += square_valid.eq(0)
        with m.If(square_valid):
            m.d.sync += sumsq.eq(sumsq + square)
        # sum <= limit * 4**s  <=>  ceil(sum / 4**s) <= limit  <=>  floor + inexact <= limit
        shift_done = Signal()
        m.d.comb += shift_done.eq(Mux(inexact, sumsq < cmd.clip_limit,
                                      sumsq <= cmd.clip_limit)
                                  | (shift == MAX_CLIP_SHIFT))

        # ---- update pass -------------------------------------------------------------
        # Stage X: the beat taken last cycle, clipped; the element computed this cycle.
        x_valid = Signal()
        x_value = Signal(signed(gw), reset_less=True)
        x_index = Signal(cb, reset_less=True)
        x_sample = Signal(reset_less=True)
        sample_wait = Signal(STRIDE_BITS)   # elements to the next sample one
        half = Signal(MAX_CLIP_SHIFT)       # 2**(s-1), 0 when s = 0
        m.d.comb += half.eq((Const(1, MAX_CLIP_SHIFT + 1) << shift) >> 1)
        clipped = Signal(signed(max(gw, MAX_CLIP_SHIFT) + 2))
        m.d.comb += clipped.eq((self.i.payload.value + half) >> shift)
        tail_write = Signal()               # write the final word back this cycle
        tail_word = Signal(range(words), reset_less=True)
        final_index = Signal(cb, reset_less=True)   # the update frame's final element
        m.d.sync += [tail_write.eq(0), x_valid.eq(0)]

        old = Signal(element)
        m.d.comb += old.eq(word[x_index[0]])
        product_u = Signal(signed(sw + REGISTER_BITS + 1))
        mu = Signal(signed(sw + 1))
        u_sum = Signal(signed(max(sw + 1, gw) + 1))
        u_new = Signal(signed(sw))
        v_sum = Signal(signed(sw + 1))
        v_new = Signal(signed(sw))
        m.d.comb += [
            product_u.eq(cmd.momentum * old.u),
            # (p + 2**(F-1)) >> F: the carry into bit F is bit F - 1
            mu.eq((product_u >> MOMENTUM_FRAC) + product_u[MOMENTUM_FRAC - 1]),
            u_sum.eq(mu + x_value),
            u_new.eq(_saturate(u_sum, sw)),
            v_sum.eq(old.v + u_new),
            v_new.eq(_saturate(v_sum, sw)),
        ]

        # Histogram stages: KV (the updated v), KM (|v|), KK (its bin, key - 1: the read)
        # and K2 (the write). Key 0 (v = 0) counts nowhere: no b of the threshold is 0.
        kv_valid = Signal()
        kv_v = Signal(signed(sw), reset_less=True)
        kv_sample = Signal(reset_less=True)
        km_valid = Signal()
        km_counted = Signal(reset_less=True)        # v != 0
        km_magnitude = Signal(sw - 1, reset_less=True)
        km_sample = Signal(reset_less=True)
        kk_valid = Signal()
        kk_counted = Signal(reset_less=True)
        kk_bin = Signal(range(bins), reset_less=True)
        kk_sample = Signal(reset_less=True)
        k2_write = Signal()
        k2_bin = Signal(range(bins), reset_less=True)
        k2_sample = Signal(reset_less=True)
        last_write = Signal()               # K2 wrote last cycle ...
        last_bin = Signal(range(bins), reset_less=True)  # ... this bin ...
        last_count = Signal(bin_layout, reset_less=True)  # ... with this value
        base = Signal(bin_layout)
        new_count = Signal(bin_layout)
        m.d.comb += [
            base.eq(Mux(last_write & (last_bin == k2_bin), last_count, hist_word)),
            new_count.all.eq(base.all + 1),
            new_count.sample.eq(base.sample + k2_sample),
        ]
        m.d.sync += [
            kv_valid.eq(x_valid),
            kv_v.eq(v_new),
            kv_sample.eq(x_sample),
            km_valid.eq(kv_valid),
            km_counted.eq(kv_v != 0),
            km_magnitude.eq(abs(kv_v)[:sw - 1]),
            km_sample.eq(kv_sample),
            kk_valid.eq(km_valid),
            kk_counted.eq(km_counted),
            kk_bin.eq(_key_less(km_magnitude)),
            kk_sample.eq(km_sample),
            k2_write.eq(kk_valid & kk_counted),
            k2_bin.eq(kk_bin),
            k2_sample.eq(kk_sample),
            last_write.eq(k2_write),
            last_bin.eq(k2_bin),
            last_count.eq(new_count),
        ]

        # ---- select: the scan and the feedback ----------------------------------------
        scan_addr = Signal(range(bins))
        s2_valid = Signal()                 # the word read last cycle is here
        s2_addr = Signal(range(bins), reset_less=True)
        s2_key = Signal(range(kc))
        m.d.comb += s2_key.eq(s2_addr + 1)
        c_all = Signal(count)               # c(b) after this word
        c_sample = Signal(count)            # cs(b)
        c_all_next = Signal(count)
        c_sample_next = Signal(count)
        m.d.comb += [
            c_all_next.eq(c_all + hist_word.all),
            c_sample_next.eq(c_sample + hist_word.sample),
        ]
        b0 = Signal(range(kc))
        found_b0 = Signal()
        upper = Signal(range(kc))           # U: the largest b with 10 c(b) > 13 k
        found_upper = Signal()
        lower = Signal(range(kc))           # L: the largest b with 10 c(b) >= 8 k
        found_lower = Signal()
        k = cmd.target
        above = Signal()
        not_below = Signal()
        m.d.comb += [
            above.eq(_times(c_all_next, UPPER_BOUND[1]) > _times(k, UPPER_BOUND[0])),
            not_below.eq(_times(c_all_next, LOWER_BOUND[1]) >= _times(k, LOWER_BOUND[0])),
        ]
        with m.If(s2_valid):
            m.d.sync += [c_all.eq(c_all_next), c_sample.eq(c_sample_next)]
            with m.If(~found_b0 & (c_sample_next >= cmd.sample_target)):
                m.d.sync += [b0.eq(s2_key), found_b0.eq(1)]
            with m.If(~found_upper & above):
                m.d.sync += [upper.eq(s2_key), found_upper.eq(1)]
            with m.If(~found_lower & not_below):
                m.d.sync += [lower.eq(s2_key), found_lower.eq(1)]
        m.d.sync += s2_valid.eq(0)

        # The rounds, one a cycle: c(b) does not grow with b, so 10 c(b) > 13 k holds
        # exactly for b <= U and 10 c(b) < 8 k exactly for b > L (0 when none was found).
        threshold = Signal(range(kc))
        rounds = Signal(range(ADAPT_ROUNDS + 1))
        upper_eff = Signal(range(kc))
        lower_eff = Signal(range(kc))
        m.d.comb += [
            upper_eff.eq(Mux(found_upper, upper, 0)),
            lower_eff.eq(Mux(found_lower, lower, 0)),
        ]
        going_up = Signal()                 # the direction, chosen once from c(b0)
        going_down = Signal()
        move_up = Signal()
        move_down = Signal()
        m.d.comb += [
            move_up.eq(going_up & (threshold < kc - 1) & (threshold <= upper_eff)),
            move_down.eq(going_down & (threshold > 1) & (threshold > lower_eff)),
        ]

        # ---- emit pass ---------------------------------------------------------------
        m.submodules.out_buffer = out_buffer = SkidBuffer(
            shape=sparse_layout(capacity, sw))
        wiring.connect(m, out_buffer.o, wiring.flipped(self.o))
        emit_index = Signal(cb)
        emitting = Signal()
        held_valid = Signal()
        held_index = Signal(cb, reset_less=True)
        held_value = Signal(signed(sw), reset_less=True)
        selected = Signal(count)
        current = Signal(element)
        m.d.comb += current.eq(word[emit_index[0]])
        # key(|v|) >= b  <=>  |v| >= a_min(b), the smallest magnitude of key b or more:
        # with b - 1 = e * 2**KM + f, a_min = ceil((2**KM + f) * 2**e / 2**KM). Both signs
        # are compared with registers (no key, no abs, no negation on the path).
        km = KEY_MANTISSA_BITS
        less = Signal(range(kc))
        m.d.comb += less.eq(threshold - 1)
        a_min = Signal(sw - 1)
        a_min_neg = Signal(signed(sw))
        a_min_next = Signal(sw - 1)
        m.d.comb += a_min_next.eq(((Cat(less[:km], Const(1, 1)) << less[km:])
                                   + ((1 << km) - 1)) >> km)
        chosen = Signal()
        m.d.comb += chosen.eq((current.v >= a_min) | (current.v <= a_min_neg))
        advance = Signal()                  # the emit pass moves one element on
        m.d.comb += advance.eq(emitting & (~held_valid | out_buffer.i.ready))

        status = Signal(status_layout(capacity, sw))
        m.d.comb += [
            self.status.payload.eq(status),
            status.selected.eq(selected),
            status.threshold.eq(threshold),
            status.rounds.eq(rounds),
            status.shift.eq(shift),
        ]

        # ---- the state memory's port: one operation a cycle ---------------------------
        # `op_index`: the element computed (update) or moving on (emit) this cycle.
        op_index = Signal(cb)
        op = Signal()
        prefetch = Signal()                 # read word 0 before a pass
        read_first = Signal()               # ... in the update pass's first cycle
        m.d.sync += read_first.eq(0)
        clear_addr = Signal(range(max(words, bins)))
        pair = op_index[1:]
        with m.If(clearing):
            m.d.comb += [
                state_addr.eq(clear_addr),
                state.write_en.eq(clear_addr < words),
            ]
        with m.Elif(prefetch | read_first):
            m.d.comb += [state_addr.eq(0), state.read_en.eq(1)]
        with m.Elif(tail_write):
            m.d.comb += [state_addr.eq(tail_word), state.write_en.eq(1)]
        with m.Elif(op):
            with m.If(op_index[0]):
                m.d.comb += [state_addr.eq(pair + 1), state.read_en.eq(1)]
            with m.Else():
                m.d.comb += [state_addr.eq(pair - 1), state.write_en.eq(pair != 0)]

        # ---- the histograms' ports -----------------------------------------------------
        with m.If(clearing):
            m.d.comb += [hist.write_addr.eq(clear_addr), hist.write_en.eq(clear_addr < bins),
                         hist.write_data.eq(0)]
        with m.Elif(s2_valid):
            m.d.comb += [hist.write_addr.eq(s2_addr), hist.write_en.eq(1),
                         hist.write_data.eq(0)]
        with m.Else():
            m.d.comb += [hist.write_addr.eq(k2_bin), hist.write_en.eq(k2_write),
                         hist.write_data.eq(new_count)]
        scanning = Signal()
        with m.If(scanning):
            m.d.comb += [hist.read_addr.eq(scan_addr), hist.read_en.eq(1)]
        with m.Else():
            m.d.comb += [hist.read_addr.eq(kk_bin), hist.read_en.eq(kk_valid & kk_counted)]

        # ---- the phases ----------------------------------------------------------------
        with m.FSM(init="CLEAR"):
            with m.State("CLEAR"):
                m.d.comb += clearing.eq(1)
                m.d.sync += clear_addr.eq(clear_addr + 1)
                with m.If(clear_addr == max(words, bins) - 1):
                    m.next = "IDLE"

            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [
                        product.eq(0), product_over.eq(0),
                        stride_bits.eq(self.cmd.payload.sample_stride), check_step.eq(0),
                        sumsq.eq(0), inexact.eq(0), shift.eq(0),
                    ]
                    m.next = "CHECK"

            with m.State("CHECK"):
                m.d.sync += [
                    product.eq(product_next),
                    product_over.eq(product_over | (product_next >> (cb + 1) != 0)),
                    stride_bits.eq(stride_bits << 1),
                    check_step.eq(check_step + 1),
                    last_index.eq(Mux(cmd.length == 0, 0,
                                      Mux(cmd.length > capacity, capacity - 1,
                                          cmd.length - 1))),
                    sample_wait.eq(cmd.sample_start),
                ]
                with m.If(check_step == STRIDE_BITS - 1):
                    m.next = "VERDICT"

            with m.State("VERDICT"):
                with m.If(~command_ok):
                    m.d.comb += err_command.eq(1)
                    m.d.sync += drop_frames.eq(Mux(cmd.clip, 2, 1))
                    m.next = "DROP"
                with m.Elif(cmd.clip):
                    m.next = "NORM"
                with m.Else():
                    m.d.sync += read_first.eq(1)
                    m.next = "UPDATE"

            with m.State("DROP"):
                m.d.comb += taking.eq(1)
                with m.If(take & frame_end):
                    m.d.sync += drop_frames.eq(drop_frames - 1)
                    with m.If(drop_frames == 1):
                        m.next = "IDLE"

            with m.State("NORM"):
                m.d.comb += taking.eq(1)
                with m.If(take):
                    m.d.sync += [
                        square.eq(self.i.payload.value * self.i.payload.value),
                        square_valid.eq(1),
                    ]
                    with m.If(frame_end):
                        m.next = "SUM"

            with m.State("SUM"):            # the last square lands
                m.next = "SHIFT"

            with m.State("SHIFT"):
                with m.If(shift_done):
                    m.d.sync += read_first.eq(1)
                    m.next = "UPDATE"
                with m.Else():
                    m.d.sync += [sumsq.eq(sumsq >> 2), inexact.eq(inexact | sumsq[:2].any()),
                                 shift.eq(shift + 1)]

            with m.State("UPDATE"):
                # Word 0 is read in the first cycle (`read_first`); element e is taken
                # in one cycle and computed in the next (`op`).
                m.d.comb += [taking.eq(1), op.eq(x_valid), op_index.eq(x_index)]
                with m.If(take):
                    m.d.sync += [
                        x_valid.eq(1),
                        x_value.eq(clipped),
                        x_index.eq(index),
                        x_sample.eq(sample_wait == 0),
                        sample_wait.eq(Mux(sample_wait == 0, cmd.sample_stride - 1,
                                           sample_wait - 1)),
                    ]
                    with m.If(frame_end):
                        m.next = "UPDATE_END"

            with m.State("UPDATE_END"):
                # The frame's final element is computed in this state's first cycle,
                # its word written back in the second, its histogram bin in the fifth
                # (the scan reads from the next cycle on).
                m.d.comb += [op.eq(x_valid), op_index.eq(x_index)]
                with m.If(x_valid):
                    m.d.sync += [tail_write.eq(1), tail_word.eq(x_index[1:]),
                                 final_index.eq(x_index)]
                with m.Elif(~tail_write & ~kv_valid & ~km_valid & ~kk_valid):
                    m.d.sync += [scan_addr.eq(bins - 1), c_all.eq(0), c_sample.eq(0),
                                 found_b0.eq(0), found_upper.eq(0), found_lower.eq(0)]
                    m.next = "SCAN"

            with m.State("SCAN"):
                m.d.comb += scanning.eq(1)
                m.d.sync += [s2_valid.eq(1), s2_addr.eq(scan_addr),
                             scan_addr.eq(scan_addr - 1)]
                with m.If(scan_addr == 0):
                    m.next = "SCAN_END"

            with m.State("SCAN_END"):       # key 1 is counted and cleared
                m.next = "DECIDE"

            with m.State("DECIDE"):         # b0, U and L are known
                start = Mux(found_b0, b0, 1)
                up = found_upper & (start <= upper)
                m.d.sync += [
                    threshold.eq(start), rounds.eq(0),
                    going_up.eq(up), going_down.eq(~up & (start > lower_eff)),
                ]
                m.next = "ROUNDS"

            with m.State("ROUNDS"):
                with m.If((rounds != ADAPT_ROUNDS) & (move_up | move_down)):
                    m.d.sync += [threshold.eq(Mux(move_up, threshold + 1, threshold - 1)),
                                 rounds.eq(rounds + 1)]
                with m.Else():
                    m.d.comb += prefetch.eq(1)
                    m.d.sync += [emit_index.eq(0), selected.eq(0), held_valid.eq(0),
                                 a_min.eq(a_min_next), a_min_neg.eq(-a_min_next)]
                    m.next = "EMIT"

            with m.State("EMIT"):
                m.d.comb += [emitting.eq(1), op.eq(advance), op_index.eq(emit_index)]
                m.d.comb += [
                    out_buffer.i.valid.eq(held_valid & chosen),
                    out_buffer.i.payload.index.eq(held_index),
                    out_buffer.i.payload.value.eq(held_value),
                ]
                with m.If(advance):
                    m.d.sync += emit_index.eq(emit_index + 1)
                    with m.If(chosen):
                        m.d.sync += [held_valid.eq(1), held_index.eq(emit_index),
                                     held_value.eq(current.v), selected.eq(selected + 1)]
                    with m.If(emit_index == final_index):
                        m.d.sync += [tail_write.eq(1), tail_word.eq(emit_index[1:])]
                        m.next = "FINISH"

            with m.State("FINISH"):
                m.d.comb += [
                    out_buffer.i.valid.eq(1),
                    out_buffer.i.payload.index.eq(Mux(held_valid, held_index, 0)),
                    out_buffer.i.payload.value.eq(Mux(held_valid, held_value, 0)),
                    out_buffer.i.payload.last.eq(1),
                ]
                with m.If(out_buffer.i.ready):
                    m.next = "DRAIN"

            with m.State("DRAIN"):          # o's last beat leaves
                with m.If(self.o.valid & self.o.ready & self.o.payload.last):
                    m.next = "STATUS"

            with m.State("STATUS"):
                m.d.comb += self.status.valid.eq(1)
                with m.If(self.status.ready):
                    m.next = "IDLE"

        # ---- the element datapaths (write-back word) -----------------------------------
        with m.If(op & ~emitting):          # update: the new u, v
            with m.If(x_index[0]):
                m.d.sync += [wb[1].u.eq(u_new), wb[1].v.eq(v_new)]
            with m.Else():
                m.d.sync += [wb[0].u.eq(u_new), wb[0].v.eq(v_new), wb[1].eq(word[1])]
        with m.If(advance):                 # emit: the masked u, v
            masked = Signal(element)
            m.d.comb += masked.eq(Mux(chosen, 0, current))
            with m.If(emit_index[0]):
                m.d.sync += wb[1].eq(masked)
            with m.Else():
                m.d.sync += [wb[0].eq(masked), wb[1].eq(word[1])]
        return m
