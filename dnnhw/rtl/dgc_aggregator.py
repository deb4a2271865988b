"""The aggregator of Deep Gradient Compression (Lin et al., ICLR 2018): the K workers'
sparse frames summed into a dense buffer, then the SGD step on the weights streaming by.

It computes ``dnnhw.golden.dgc_fixed.aggregate`` and ``apply_update`` bit for bit
(``docs/dgc.md``: section 2's last paragraph is the arithmetic, section 3 "Aggregator" the
ports). A step is one ``cmd`` beat (``length`` n, ``lr``), one sparse frame from every
worker, merged into the sum at one beat a cycle, then the update pass: n weights in on
``w_in``, ``satW(w - ((lr * agg + 2**(LR_FRAC-1)) >> LR_FRAC))`` out on ``w_out``, one a
cycle, the sum cleared behind it.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ._checks import check_in
from .ram import BlockRam
from .skid_buffer import SkidBuffer
from dnnhw.spec.dgc import (LR_FRAC, REGISTER_BITS, STATE_WIDTHS, WEIGHT_WIDTHS, WORKERS,
                            capacity_bits)


__all__ = ["ERRORS", "command_layout", "sparse_layout", "weight_layout", "DgcAggregator"]


#: ``error_code`` values, by index: the first error since reset.
ERRORS = ("none", "index", "length")


def command_layout(capacity):
    """A step's command: ``length`` (n, 1 .. capacity, in ``log2(capacity) + 1`` bits) and
    ``lr`` (``lr_q``: lr = lr_q / 2**LR_FRAC, so lr < 1)."""
    bits = capacity_bits(capacity)
    return data.StructLayout({"length": unsigned(bits + 1), "lr": unsigned(REGISTER_BITS)})


def sparse_layout(capacity, value_width):
    """A worker's sparse beat: ``index`` (``log2(capacity)`` bits), ``value``, ``last``."""
    bits = capacity_bits(capacity)
    return data.StructLayout({"index": unsigned(bits), "value": signed(value_width),
                              "last": 1})


def weight_layout(weight_width):
    """A weight beat of ``w_in`` and ``w_out``: ``value`` and ``last``."""
    return data.StructLayout({"value": signed(weight_width), "last": 1})


def _select(values, index):
    """``values[index]`` as a tree of two-way ``Mux``es (padded to a power of two with the
    last value; an index past the end selects it)."""
    level = list(values)
    while len(level) < 1 << len(index):
        level.append(level[-1])
    for bit in range(len(index)):
        level = [Mux(index[bit], level[k + 1], level[k]) for k in range(0, len(level), 2)]
    assert len(level) == 1
    return level[0]


class DgcAggregator(wiring.Component):
    """Merges K workers' sparse frames into a dense sum and applies it to the weights.

    A step:

    1. **Command.** One ``cmd`` beat: ``length`` n and ``lr``. Taken in the ``CMD`` phase
       only (after the reset clear pass, and after the previous step's update pass).
    2. **Merge.** Every cycle one sparse beat is taken, in round robin over the workers
       that offer a beat and whose frame has not ended (a frame ends with its ``last``
       beat; its later beats wait for the next step). The round robin's pointer (the
       worker after the last one granted) carries over from step to step. The beat's
       index reads its word of the sum in block RAM (an asynchronous read port and a
       register, see below), the next cycle writes ``word + value`` back: one beat a
       cycle (II = 1), whatever the indices. A beat whose index is ``>= n`` sets the sticky
       ``index`` error, is taken and writes nothing.
    3. **Update.** Once every worker's frame has ended, ``w_in`` is taken: n beats, one a
       cycle, starting the cycle after the final sparse beat. Beat j reads word j of the
       sum (``agg_j``), writes zero to it the next cycle, and ``satW(w_j - ((lr * agg_j
       + 2**(LR_FRAC-1)) >> LR_FRAC))`` leaves on ``w_out`` :attr:`UPDATE_LATENCY` cycles
       later (the read, a multiply by ``lr`` into a register (a DSP), the round, subtract
       and clamp into a skid buffer, the output). ``w_out``'s ``last`` is on the pass's
       final beat. Then the next ``cmd`` beat may come.

    With no stalls a step takes ``1 + B + n`` cycles (:meth:`step_cycles`), ``B`` the
    sparse beats of all workers together (at least K: a frame has a beat), from its
    ``cmd`` transfer to the next step's. After reset a clear pass writes zero to every
    word, ``capacity`` cycles with ``cmd`` not ready (:attr:`clear_cycles`).

    The sum. One word of :attr:`acc_width` bits an element: exact for sums of up to
    ``2 ** ceil(log2 K)`` values of S bits in a word (one a worker, as the sparsifier
    sends them, or a few repeats); more wrap modulo ``2 ** acc_width``.

    Malformed input never hangs the core (``error`` is sticky, ``error_code`` the first
    error, an index into :data:`ERRORS`):

    - ``index``: a sparse index ``>= n`` (taken, not written; the rest of the step runs).
    - ``length``: a ``w_in`` ``last`` away from beat n - 1. An early ``last`` ends the pass
      there (``w_out``'s ``last`` on it); the sum words after it are cleared by a sweep,
      one a cycle with nothing taken (``n - j`` cycles for an early ``last`` on beat j,
      the first being beat j's own clear), so the next step starts from zero. A missing
      ``last`` ends the pass at beat n - 1; the next beat belongs to the next step's
      frame.
    - ``length`` too: a ``cmd`` with ``length`` 0 or above ``capacity`` (the field has
      ``log2(capacity) + 1`` bits). The step runs with n = capacity.

    Parameters
    ----------
    workers : int
        K, the sparse inputs, 1 to 16.
    capacity : int
        Words of the sum, the largest n: a power of two, 2**4 to 2**20.
    value_width : int
        S, bits of a sparse value (signed), 12 to 32.
    weight_width : int
        W, bits of a weight (signed, clamped symmetrically), 8 to 32.

    Members
    -------
    cmd : In(stream.Signature(command_layout(capacity)))
        One beat a step: ``length``, ``lr``.
    inputs : In(stream.Signature(sparse_layout(capacity, value_width))).array(workers)
        Worker k's sparse frame: ``index``, ``value``, ``last``. ``ready`` may depend on
        every input's ``valid`` (the round robin).
    w_in : In(stream.Signature(weight_layout(weight_width)))
        The weights, n beats a step, taken once every worker's frame has ended.
    w_out : Out(stream.Signature(weight_layout(weight_width)))
        The updated weights, n beats a step, ``last`` on the final one.
    error : Out(1)
        Sticky until reset.
    error_code : Out(range(len(ERRORS)))
        The first error: ``ERRORS.index("index")`` or ``ERRORS.index("length")``.
    """

    #: Cycles from a ``w_in`` transfer to its ``w_out`` beat's ``valid`` (no stalls).
    UPDATE_LATENCY = 3

    def __init__(self, *, workers=4, capacity=2 ** 12, value_width=16, weight_width=16):
        self._workers = check_in("workers", workers, WORKERS)
        self._capacity_bits = capacity_bits(capacity)
        self._capacity = capacity
        self._value_width = check_in("value_width", value_width, STATE_WIDTHS)
        self._weight_width = check_in("weight_width", weight_width, WEIGHT_WIDTHS)
        super().__init__({
            "cmd": In(stream.Signature(command_layout(capacity))),
            "inputs": In(stream.Signature(sparse_layout(capacity, value_width))).array(workers),
            "w_in": In(stream.Signature(weight_layout(weight_width))),
            "w_out": Out(stream.Signature(weight_layout(weight_width))),
            "error": Out(1),
            "error_code": Out(range(len(ERRORS))),
        })

    @property
    def workers(self):
        return self._workers

    @property
    def capacity(self):
        return self._capacity

    @property
    def value_width(self):
        return self._value_width

    @property
    def weight_width(self):
        return self._weight_width

    @property
    def capacity_bits(self):
        """``log2(capacity)``: bits of an index."""
        return self._capacity_bits

    @property
    def acc_width(self):
        """Bits of a word of the sum: ``value_width + ceil(log2(workers))``."""
        return self._value_width + ceil_log2(self._workers)

    @property
    def clear_cycles(self):
        """Cycles of the clear pass after reset (``cmd`` not ready): ``capacity``."""
        return self._capacity

    def step_cycles(self, beats, length):
        """Cycles from a step's ``cmd`` transfer to the next step's with no stalls:
        ``1 + beats + length`` (the command, the merge, the update pass)."""
        return 1 + beats + length

    def elaborate(self, platform):
        m = Module()
        k_count, cb, aw, ww = self._workers, self._capacity_bits, self.acc_width, \
            self._weight_width
        ports = list(self.inputs)

        # ---- step registers ------------------------------------------------------------
        last_addr = Signal(cb, init=self._capacity - 1)  # n - 1 (the sweep's end)
        lr = Signal(REGISTER_BITS)
        ended = Signal(k_count)             # workers whose frame has ended
        remaining = Signal(range(k_count + 1))  # workers whose frame has not ended
        rr = Signal(range(k_count))         # round robin: the first worker to look at
        addr = Signal(cb)                   # the update pass: the next word
        clr_addr = Signal(cb)               # the word the next clear writes
        clear_pending = Signal()            # the update pass read clr_addr last cycle
        error_code = Signal(range(len(ERRORS)))
        err_index = Signal()
        err_command = Signal()
        err_last = Signal()
        m.d.comb += [self.error_code.eq(error_code), self.error.eq(error_code != 0)]
        with m.If(error_code == 0):
            with m.If(err_index):
                m.d.sync += error_code.eq(ERRORS.index("index"))
            with m.Elif(err_command | err_last):
                m.d.sync += error_code.eq(ERRORS.index("length"))

        # ---- the update pipeline's registers (declared here: the phases look at them) ---
        # Stage U0: the read of agg_j (`read_data`, `hit`) and w_j; stage U1: the product;
        # then the skid buffer, whose `i.ready` (a register) is the pipeline's enable.
        m.submodules.out_buffer = out_buffer = SkidBuffer(shape=weight_layout(ww))
        advance = Signal()
        m.d.comb += advance.eq(out_buffer.i.ready)
        u0_valid = Signal()
        u0_weight = Signal(signed(ww), reset_less=True)
        u0_last = Signal(reset_less=True)
        u1_valid = Signal()
        u1_weight = Signal(signed(ww), reset_less=True)
        u1_last = Signal(reset_less=True)
        u1_product = Signal(signed(aw + REGISTER_BITS + 1), reset_less=True)

        # ---- the sum -------------------------------------------------------------------
        # A BlockRam (no collision logic): no read data is ever used that was read from a
        # word while it was being written. The reads that do meet a write to their word are
        # exactly those of the beat after a merged beat to the same word (the read of beat t
        # + 1 in the cycle beat t writes), and of the update pass's first read when the
        # final sparse beat, written that cycle, was to word 0: `hit` marks them, and the
        # word is then taken from `last_sum` (forwarding), the value being written. The
        # update pass writes its zero one cycle after the read, while it reads the next
        # word, and a clear sweep reads nothing.
        m.submodules.sum = memory = BlockRam(shape=signed(aw), depth=self._capacity)
        read_data = memory.read_data
        hit = Signal(reset_less=True)       # read_data is stale: use last_sum
        last_sum = Signal(signed(aw), reset_less=True)  # the word written last cycle

        # Merge stage 1: the beat taken last cycle, adding its value to its word.
        s1_write = Signal()                 # a beat, and its index is in range
        s1_index = Signal(cb, reset_less=True)
        s1_value = Signal(signed(self._value_width), reset_less=True)
        base = Signal(signed(aw))           # the word read by the stage-1 / U0 beat
        total = Signal(signed(aw))
        m.d.comb += [
            base.eq(Mux(hit, last_sum, read_data)),
            total.eq(base + s1_value),      # modulo 2**aw (exact within the docstring's rule)
        ]
        with m.If(s1_write):
            m.d.sync += last_sum.eq(total)

        # ---- the phases ----------------------------------------------------------------
        merging = Signal()
        updating = Signal()
        sweeping = Signal()
        in_cmd = Signal()
        merge_done = Signal()               # every frame has ended (with this cycle's beat)
        update_done = Signal()              # the pass's final beat, at n - 1
        update_early = Signal()             # the pass's final beat, an early `last`
        m.d.sync += clear_pending.eq(0)
        with m.FSM(init="SWEEP"):
            with m.State("SWEEP"):
                # After reset (capacity - 1 is last_addr's reset value): every word.
                # After an early `last` on w_in: from its word (the sweep's first write is
                # that word's clear) to n - 1.
                m.d.comb += sweeping.eq(1)
                m.d.sync += clr_addr.eq(clr_addr + 1)
                with m.If(clr_addr == last_addr):
                    m.next = "CMD"
            with m.State("CMD"):
                m.d.comb += in_cmd.eq(1)
                with m.If(self.cmd.valid & self.cmd.ready):
                    m.next = "MERGE"
            with m.State("MERGE"):
                m.d.comb += merging.eq(1)
                with m.If(merge_done):
                    m.next = "UPDATE"
            with m.State("UPDATE"):
                m.d.comb += updating.eq(1)
                with m.If(update_done):
                    m.next = "CMD"
                with m.If(update_early):
                    m.next = "SWEEP"

        # ---- command -------------------------------------------------------------------
        # The multiplier reads `lr`: a new command waits until the U0 beat (if any, the
        # previous pass's last) moves to U1 by this cycle, which also empties U0 before
        # the merge, which shares `read_data`.
        length = self.cmd.payload.length
        length_bad = Signal()
        m.d.comb += [
            self.cmd.ready.eq(in_cmd & (~u0_valid | advance)),
            length_bad.eq((length == 0) | (length > self._capacity)),
        ]
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [
                lr.eq(self.cmd.payload.lr),
                last_addr.eq(Mux(length_bad, self._capacity - 1, length - 1)),
                ended.eq(0),
                remaining.eq(k_count),
                addr.eq(0),
            ]
            m.d.comb += err_command.eq(length_bad)

        # ---- merge: round robin, read, add, write --------------------------------------
        wanting = Signal(k_count)           # a beat offered by a worker still in its frame
        m.d.comb += wanting.eq(Cat(port.valid for port in ports) & ~ended)
        grant = Signal(range(k_count))
        # The first wanting worker at or after `rr`, else the first one (later statements
        # win: the loops run downwards so the lowest index wins).
        for k in reversed(range(k_count)):
            with m.If(wanting[k]):
                m.d.comb += grant.eq(k)
        for k in reversed(range(k_count)):
            with m.If(wanting[k] & (rr <= k)):
                m.d.comb += grant.eq(k)
        take = Signal()
        m.d.comb += take.eq(merging & wanting.any())
        for k, port in enumerate(ports):
            m.d.comb += port.ready.eq(merging & ~ended[k] & (grant == k))
        beat = Signal(sparse_layout(self._capacity, self._value_width))
        m.d.comb += beat.eq(_select([port.payload.as_value() for port in ports], grant))
        in_range = Signal()
        m.d.comb += in_range.eq(beat.index <= last_addr)
        with m.If(take):
            if k_count > 1:
                m.d.sync += rr.eq(Mux(grant == k_count - 1, 0, grant + 1))
            with m.If(beat.last):
                m.d.sync += [ended.eq(ended | (1 << grant)[:k_count]),
                             remaining.eq(remaining - 1)]
        m.d.comb += [
            # The granted worker has not ended: the step's final beat is a `last` when it
            # is the only one left (a counter, off the path through the grant).
            merge_done.eq(take & beat.last & (remaining == 1)),
            err_index.eq(take & ~in_range),
        ]
        m.d.sync += [
            s1_write.eq(take & in_range),
            s1_index.eq(beat.index),
            s1_value.eq(beat.value),
        ]

        # ---- update pass: w_in taken --------------------------------------------------
        w_take = Signal()
        at_end = Signal()                   # beat n - 1 by the count
        final = Signal()                    # the pass's final beat
        m.d.comb += [
            self.w_in.ready.eq(updating & advance),
            w_take.eq(self.w_in.valid & self.w_in.ready),
            at_end.eq(addr == last_addr),
            final.eq(at_end | self.w_in.payload.last),
            update_done.eq(w_take & at_end),
            update_early.eq(w_take & ~at_end & self.w_in.payload.last),
            err_last.eq(w_take & (self.w_in.payload.last != at_end)),
        ]
        with m.If(w_take):
            m.d.sync += [
                addr.eq(addr + 1),
                clr_addr.eq(addr),
                clear_pending.eq(1),
                u0_weight.eq(self.w_in.payload.value),
                u0_last.eq(final),
            ]

        # ---- the memory's ports ---------------------------------------------------------
        read_addr = Signal(cb)
        m.d.comb += [
            read_addr.eq(Mux(merging, beat.index, addr)),
            memory.read_addr.eq(read_addr),
            memory.read_en.eq(take | w_take),
        ]
        with m.If(take | w_take):
            # The word is being written this cycle (by the stage-1 beat): forward.
            m.d.sync += hit.eq(s1_write & (s1_index == read_addr))
        # A merge write never meets a clear: clears come in a sweep, or in the cycle after
        # an update beat, and the merge writes in the cycle after a merged beat.
        clear = Signal()
        m.d.comb += [
            clear.eq(sweeping | clear_pending),
            memory.write_en.eq(s1_write | clear),
            memory.write_addr.eq(Mux(s1_write, s1_index, clr_addr)),
            memory.write_data.eq(Mux(s1_write, total, 0)),
        ]

        # ---- update pipeline: product, round, subtract, clamp --------------------------
        with m.If(advance):
            m.d.sync += [
                u0_valid.eq(w_take),
                u1_valid.eq(u0_valid),
                u1_weight.eq(u0_weight),
                u1_last.eq(u0_last),
                u1_product.eq(base * lr),
            ]
        # (lr * agg + half) >> LR_FRAC: |step| <= 2**(aw-1), as lr < 1.
        step = Signal(signed(aw + 2))
        m.d.comb += step.eq((u1_product + (1 << (LR_FRAC - 1))) >> LR_FRAC)
        updated = Signal(signed(max(ww, aw + 2) + 1))
        m.d.comb += updated.eq(u1_weight - step)
        top = (1 << (ww - 1)) - 1
        clamped = Signal(signed(ww))
        m.d.comb += clamped.eq(Mux(updated > top, top, Mux(updated < -top, -top, updated)))
        m.d.comb += [
            out_buffer.i.valid.eq(u1_valid),
            out_buffer.i.payload.value.eq(clamped),
            out_buffer.i.payload.last.eq(u1_last),
        ]
        wiring.connect(m, out_buffer.o, wiring.flipped(self.w_out))
        return m
