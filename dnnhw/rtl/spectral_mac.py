"""The band-limited engine's spectral multiply-accumulate: every input channel's kept bins
times the stored filter spectra, summed over the input channels, per output channel.
``docs/bandlimit-conv.md`` is the contract (the kept set of section 2, steps 2 to 5 of
section 3, the filter words of section 4, the loading rules of section 5, the
``SpectralMAC`` bullet and the throughput of section 6).

**Structure.** Three parts, so that the bins that are not kept pass at one a cycle while
the multiplier works:

- the *input side* takes a bin every cycle, unless the bin is kept and the queue is full.
  Its position counter (``k``, or ``k2 * n + k1`` whose bit fields are ``k1`` and
  ``k2``) decodes the next position's kept flag (comparisons against generation-time
  constants) into a register, so ``input.ready`` depends on registers only. A bin that
  is not kept is dropped here; a kept bin's sample enters the queue;
- the *queue* of kept bins, :attr:`~SpectralMAC.queue_depth` samples (a
  :class:`~dnnhw.rtl.ram.BlockRam` and its read register, below);
- the *multiplier side* takes the kept bins from the queue, ``out_channels`` *ops* each
  (one per output channel ``o``), one op a cycle; the queue's head is taken by its last
  op.

The queue holds the sample alone. The kept bins arrive in the same order in every channel
frame, so the multiplier side counts them itself, over the kept block (a column index
and, in 2D, a row index, ``0 .. T - 1`` each) and the channels, and decodes from its
counters all it needs: the storage index, the mirror flag, the accumulator address, the
first and last channel of a tile. Carrying the position through the queue instead would
widen every queue word by ``log2(n ** dims)`` bits (16-bit parts, 2D ``n = 16``: 40 bits
instead of 32, past the ECP5 block RAM's widest port, 36) and still need the channel
counters on the multiplier side.

**The queue** is Amaranth's ``SyncFIFOBuffered`` rebuilt on :class:`~.ram.BlockRam`:
``queue_depth - 1`` words in the memory, the memory's read register as the head. A read
never meets a write of its word (the memory is read while it holds a word and written
while it has room, and the two addresses meet only when it is empty or full), so the
memory needs none of the collision logic that ``SyncFIFOBuffered``'s memory costs on the
iCE40 and the ECP5 (:mod:`.ram`). A kept bin written in cycle ``t`` is at the head, ready
for its first op, in cycle ``t + 2`` (:attr:`~SpectralMAC.queue_latency`) when the queue
was empty; the head is refilled in the cycle it is taken, so ops run back to back from a
queue that holds bins. ``i.ready`` says the memory has room, so a write in every cycle
needs a depth of 3.

**Queue depth** (:attr:`~SpectralMAC.queue_depth`, generation time, from
:func:`queue_depth_for`). A Python model of the input side, the queue and the multiplier
side, cycle-exact (:func:`_frame_model`), runs four channel frames with no stalls: bins
arrive at one a cycle, the kept ones enter the queue, each is served in ``out_channels``
ops. The depth is the smallest (2 at least) for which

- when the multiplier can keep up (``kept_bins * out_channels <= n ** dims``): the input
  never waits. The backlog peaks where the frames meet: in 2D the last ``m`` kept
  columns of one frame and the first ``m + 1`` of the next are ``T`` kept columns in a
  row (1D: ``T`` kept bins in a row), which arrive faster than they are served and are
  worked off during the columns (1D: bins) that are dropped;
- when the multiplier is the bottleneck: the multiplier never waits, in steady state.
  The input waits anyway, but the queue must bridge the longest run of dropped bins
  (2D: the ``(n - T) * n`` positions of the dropped columns; 1D: ``n - T``): with fewer
  than about ``run / out_channels`` bins queued when it starts, the multiplier idles
  (2D ``n = 64``, ``T = 33``, 4 output channels, as many in as out: 497 entries; a queue
  of a few would idle it for most of the 1984 dropped positions of each 4356-cycle
  frame);
- or whatever the bottleneck, when a tile's ops at the pace of that depth (the model's
  frame period times ``in_channels``) and the bank hand-over take no longer than the
  readout: the banks wait for the readout anyway (the same 2D ``n = 64`` with 1 input
  channel: 2 entries).

When the multiplier keeps up and the readout takes as long as the input
(``out_channels == in_channels``; otherwise they differ by ``n ** dims >= 8`` cycles or
more, beyond the bank hand-over below), the depth has
:attr:`~SpectralMAC.bank_handover_cycles` more entries. The two banks then go round in
two tile periods only if a tile's ops span up to the hand-over less than its input, so
its first op waits for its bank up to that many cycles longer than in the free-running
pattern, at the tile boundary where the backlog peaks, while up to a kept bin a cycle
arrives. Without them the input waits at every other tile (2D ``n = 16``, c = 50, 2 x 2
channels: 35 entries give periods of 512 and 515 by turns, 37 would do; the rule gives
39). Examples: 2D ``n = 16``, 2 x 2 channels: 2 (c = 0), 39 (c = 50), 7 (c = 90, 3 and
the hand-over's 4); 1D ``n = 64``, c = 50, 2 x 2: 21 (17 and 4).

The depth is capped at :data:`QUEUE_DEPTH_LIMIT` = 1025 (a memory of 1024 words). The
backlog is about ``T * (1 - 1 / out_channels)`` kept bins in 1D and ``T * (T - n /
out_channels)`` in 2D (with ``T ** dims * out_channels <= n ** dims``), the bridge of a
multiplier-bound configuration about ``run / out_channels``; both are at most about ``n
** dims / 4``. The largest over every legal configuration is 1025, for 1D ``n = 4096`` at
``T = 2047`` or ``2049`` and two output channels (2D ``n = 64``: 587), so the cap binds
only there, when ``in_channels`` is 2 too, by the hand-over's 4 entries: the period then
alternates 8192 and 8194 cycles, against 8192. Beyond, if the legal ranges grow, the cap
bounds the memory and the input waits for a few cycles at the frame boundaries.

**The multiplier.** One complex multiply-accumulate a cycle. An op takes a cycle of issue
and five of registers (those beyond the operands and the products each cut a path that
limited the clock; with them all, 2D ``n = 16``, 3 x 4 channels, 16-bit parts, c = 50
reaches 115 MHz on the ECP5 and 37 MHz on the UP5K, against 66 and 29 MHz without):

0. issue: the filter memory is read at ``(o * in_channels + c) * words_per_filter +
   j``. The head bin's storage index ``j`` and mirror flag are registers, loaded with the
   kept-bin counters from the next kept bin's decoding;
1. the sample (the queue's head), and the coefficient in the filter memory's read
   register;
2. the multiplier's operands, registered again (off the block RAM);
3. the four products ``X.re w.re``, ``X.im w.im``, ``X.re w.im``, ``X.im w.re`` (the DSP
   blocks); the accumulator bank is read;
4. the complex product, conjugated coefficient or not (a mirrored bin is the sign of two
   sums, so no operand widens), and the bank's read register;
5. both registered again (off the block RAM); their sum, or for channel 0 the product
   alone (so a bank is never cleared), is written at the end of the cycle.

**Accumulator banks.** Two memories of ``out_channels * kept_bins`` words; tile ``t``
accumulates in bank ``t mod 2``. Word ``b * out_channels + o`` holds kept bin ``b`` (in
stream order) of output channel ``o``, so the ops of a channel frame write consecutive
addresses. A bank is *full* from its tile's last op's read (stage 3, or later:
:attr:`~SpectralMAC.bank_full_stage`, below) until the readout has taken its last word;
a tile starts (its first op issues) only in a bank that is not full. Only the multiplier
side waits for a bank: the input side goes on filling the queue with the next tile's
kept bins, which the multiplier then serves back to back. Each bank has one write port
(the accumulation) and one read port, which serves the accumulation while the bank is not
full and the readout while it is: the readout's first read comes the cycle after the
last op's.

**No read-modify-write hazard.** An op reads its accumulator word in stage 3 and writes it
at the end of stage 5, so of two ops on one word the later sees the earlier's write when
they issue at least three cycles apart (:data:`HAZARD_DISTANCE`; two apart, the read
would meet the write). The ops on one word are ``(b, o)`` of consecutive channels of a
tile (the first channel does not read), and the multiplier issues every op of a channel
frame in order, one a cycle at most: between them it issues the frame's ``kept_bins *
out_channels - 1`` other ops, so they are at least ``kept_bins * out_channels`` cycles
apart, however the queue bunches the bins (it can serve a whole tile back to back). That
is 3 or more except when one bin is kept (``T = 1``) and ``out_channels <= 2``: there the
ops issue :attr:`~SpectralMAC.op_spacing` (``ceil(3 / out_channels)``: 3 or 2) cycles
apart, which costs no throughput (``kept_bins * out_channels * op_spacing <= 3`` cycles a
channel against ``n ** dims >= 8`` for the input). The worst case (1D, ``n = 8``, c = 90,
one output channel) reuses the word every 3 cycles from a full queue.

The readout's first step comes before the tile's last two writes land (the last op's and
the one before's, in stages 3 and 4 when the bank turns full), so its reads must come
after them: :func:`_bank_full_stage`. Channel 0's word of the tile's last kept bin is read
at the readout's step ``p`` (the bin's position in the frame, ``n ** dims - 1`` when ``m
>= 1``) and last written by the last channel's op of that bin, ``(out_channels - 1) *
op_spacing`` cycles before the tile's last op: with the flag in stage 3, the read comes
after the write when ``p + (out_channels - 1) * op_spacing >= 2``, and the other words
are written earlier and read later. It fails only for one kept bin and one output channel
(``p = 0``), where the flag waits for stage 5, the last write. So no read meets a write
of its word, in the accumulation or the readout, which lets the memories drop Yosys's
read-during-write logic (``no_rw_check``, as in :mod:`.ram`).

**Readout.** Per output channel, the ``n ** dims`` positions in stream order: a kept one
reads its word and is scaled (``sat(rnd(A, spectrum_shift))`` per part, setting
``overflow`` when the saturation changes a value), the others give 0. Five registers
(the position counter, the bank's read register, the word again, the rounded sum, the
saturated output) that all move when the output register is empty or taken; the bank is
released when its last word leaves its read register.

**Timing, no stalls.** Per tile the input takes ``in_channels * n ** dims`` cycles
(:attr:`~SpectralMAC.input_cycles`), the multiplier ``in_channels * kept_bins *
out_channels`` (:attr:`~SpectralMAC.accumulate_cycles`; times ``op_spacing``), the readout
``out_channels * n ** dims`` (:attr:`~SpectralMAC.readout_cycles`), all overlapped. A
bank goes round in its tile's ops, 3 idle cycles from its last op to the readout's first
step (``bank_full_stage``; 5 for one kept bin and one output channel), the readout's
steps, and 1 idle cycle from the last step to the next tile's first op in it (the last
word leaves the read register): :attr:`~SpectralMAC.bank_handover_cycles` = 4 (6) beyond
the ops and the steps, for two tiles. So the period, averaged over two tiles, is
:attr:`~SpectralMAC.tile_period` = ``max(input, accumulate, readout, (accumulate +
readout + 4) / 2)``: the contract's ``max`` of the three, plus at most 2 cycles, only
when the accumulation and the readout take within 4 cycles of each other; the period
then alternates (1D ``n = 16``, c = 10, 1 in, 2 out: accumulate 30, readout 32, periods
32 and 34). The input's share needs no such term: a tile's ops may start late and catch
up from the queue (*Queue depth*). A tile's first output is valid :attr:`latency` cycles
(8; 10) after its last op issues when the readout is idle.

**Filter loading.** Words are written at consecutive addresses, wrapping to 0 after the
last; ``filters_loaded`` rises when the first set is complete. The queue takes bins at any
time, but a tile starts (its first op issues) only when a set is complete and not half
overwritten; from that op until the tile's last op no filter word is taken, so a tile
uses the set present when its first bin is multiplied. When a tile could start in the
cycle a filter word is offered at a set boundary, the tile goes first. ``filters.ready``
depends on registers only (the queue's head, the counters, the banks' flags). With the
next tile's bins queued and its bank free, tiles follow back to back and a set offered
meanwhile waits until the multiplier pauses between tiles; the contract's host sends a
new set between tiles, after the results of the tiles before, so it does not wait.
"""

import functools

from amaranth.hdl import Module, Mux, Shape, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

from dnnhw.spec.bandlimit import (CHANNELS, COEFFICIENT_WIDTHS, DIMS,
                                  check_compression_rate, kept_count, kept_half_width,
                                  points_for)
from dnnhw.spec.fft import WIDTHS
from ._checks import check_in, check_int
from .fft import sample_layout
from .ram import BlockRam


__all__ = ["SpectralMAC", "coefficient_layout", "queue_depth_for"]


#: An op issued in cycle ``t`` writes its accumulator word at the end of cycle ``t +
#: MAC_LATENCY`` (stage 5) ...
MAC_LATENCY = 5
#: ... and reads it (the bank's one read port) in stage 3.
BANK_READ_STAGE = 3
#: Cycles from an op's issue to the next op on the same accumulator word that sees its
#: write: ``MAC_LATENCY - BANK_READ_STAGE + 1`` (two apart, the read meets the write).
HAZARD_DISTANCE = MAC_LATENCY - BANK_READ_STAGE + 1
#: The most entries of the kept-bin queue: a memory of 1024 words and its read register
#: (the largest legal configuration's need, the module's docstring).
QUEUE_DEPTH_LIMIT = 1025
#: Channel frames the queue-depth model runs: the first from an empty queue, then the
#: backlog's pattern, which repeats from the second frame boundary on.
_MODEL_FRAMES = 4


def coefficient_layout(coefficient_width):
    """A filter word: ``re`` and ``im``, ``signed(coefficient_width)`` each."""
    return data.StructLayout({"re": signed(coefficient_width),
                              "im": signed(coefficient_width)})


def _times(value, constant):
    """``value * constant`` as shifted adds: a product by a constant needs no DSP block."""
    terms = [value << bit for bit in range(constant.bit_length()) if constant >> bit & 1]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def _kept_positions(dims, n, half_width):
    """The stream positions of a channel frame whose bins are kept, in stream order (2D
    column-major: position ``k2 * n + k1``)."""
    def kept(k):
        return k <= half_width or k >= n - half_width
    if dims == 1:
        return [k for k in range(n) if kept(k)]
    return [p for p in range(n * n) if kept(p % n) and kept(p // n)]


def _frame_model(positions, bins, out_channels, op_spacing, depth, frames):
    """The input side, the queue and the multiplier side, cycle for cycle, with no stalls
    on ``input`` and the multiplier never waiting for a bank or the filters: ``frames``
    channel frames of ``bins`` positions, the kept ones at ``positions``. Returns ``(input
    wait, frame period)``: the cycles the input waited in all, and the cycles between the
    last ops of the last two frames.

    Kept bin ``i`` (over all frames, at global position ``g[i]``) is written into the queue
    in cycle ``a[i]``, moves from the memory to the head in cycle ``r[i]``, has its first
    op in ``s[i]`` and its last in ``e[i]``; the queue's memory holds ``depth - 1`` words:

    - ``a[i] = max(a[i - 1] + g[i] - g[i - 1], r[i - depth + 1] + 1)``: the dropped bins
      between pass at one a cycle, and the write waits while the memory is full (the words
      of ``i - depth + 1 .. i - 1``);
    - ``r[i] = max(a[i] + 1, e[i - 1])``: the memory's word moves to the head in the cycle
      the head is taken, or the cycle after its write;
    - ``s[i] = max(r[i] + 1, e[i - 1] + op_spacing)``, ``e[i] = s[i] + (out_channels - 1)
      * op_spacing``.
    """
    written, moved = [], []
    last_write = last_position = None
    last_op = -op_spacing
    frame_ends = []
    for frame in range(frames):
        for position in positions:
            position += frame * bins
            i = len(written)
            write = 0 if last_write is None else last_write + position - last_position
            if i >= depth - 1:
                write = max(write, moved[i - depth + 1] + 1)
            move = max(write + 1, last_op)
            first_op = max(move + 1, last_op + op_spacing)
            last_op = first_op + (out_channels - 1) * op_spacing
            written.append(write)
            moved.append(move)
            last_write, last_position = write, position
        frame_ends.append(last_op)
    return last_write - last_position, frame_ends[-1] - frame_ends[-2]


@functools.lru_cache(maxsize=None)
def queue_depth_for(dims, n, half_width, in_channels, out_channels):
    """The kept-bin queue's depth (the module's docstring: *Queue depth*): the smallest
    depth, 2 at least, at which :func:`_frame_model` shows the input never waiting when
    the multiplier keeps up, the multiplier never waiting (in steady state) when it is
    the bottleneck, or a tile's ops at that pace, with the bank hand-over, taking no
    longer than the readout; plus ``bank_handover_cycles`` when the input and the readout
    take the same time; at most :data:`QUEUE_DEPTH_LIMIT`."""
    positions = _kept_positions(dims, n, half_width)
    bins, kept = n ** dims, len(positions)
    op_spacing = _op_spacing(kept, out_channels)
    frame_cycles = kept * out_channels * op_spacing
    keeps_up = frame_cycles <= bins
    handover = _bank_full_stage(positions, out_channels, op_spacing) + 1
    readout = out_channels * bins

    def enough(depth):
        wait, period = _frame_model(positions, bins, out_channels, op_spacing, depth,
                                    _MODEL_FRAMES)
        if in_channels * period + handover <= readout:
            return True                   # the banks wait for the readout anyway
        return wait == 0 if keeps_up else period == frame_cycles

    low, high = 2, QUEUE_DEPTH_LIMIT      # more depth never delays a bin: bisect
    while low < high:
        middle = (low + high) // 2
        if enough(middle):
            high = middle
        else:
            low = middle + 1
    if keeps_up and in_channels == out_channels:
        low += handover
    return min(low, QUEUE_DEPTH_LIMIT)


def _bank_full_stage(positions, out_channels, op_spacing):
    """The stage of a tile's last op in whose cycle the tile's bank turns full, so that
    the readout's first step is in the cycle after: ``BANK_READ_STAGE``, the readout
    taking the read port just after the last op's read, unless then a read of the
    readout's first output channel would come before the last write of its word.

    Channel 0's word of kept bin ``b`` is read at step ``positions[b]``; its last write is
    by the op of ``b`` in the last channel, ``d = ((K - 1 - b) * out_channels +
    out_channels - 1) * op_spacing`` cycles before the last op, at the end of that op's
    stage ``MAC_LATENCY``. With the last op in cycle ``L`` and the flag in its stage
    ``f``, the read is in cycle ``L + f + 1 + positions[b]``, after the write (the end of
    ``L - d + MAC_LATENCY``) when ``f >= MAC_LATENCY - positions[b] - d``. The later
    channels' reads come ``n ** dims`` steps or more later."""
    kept = len(positions)
    closest = min(position + ((kept - 1 - b) * out_channels + out_channels - 1) * op_spacing
                  for b, position in enumerate(positions))
    return max(BANK_READ_STAGE, MAC_LATENCY - closest)


def _op_spacing(kept_bins, out_channels):
    """Cycles between ops: 1, or enough that ops on one accumulator word (``kept_bins *
    out_channels`` ops apart) are :data:`HAZARD_DISTANCE` cycles apart."""
    return -(-HAZARD_DISTANCE // (kept_bins * out_channels))


class _KeptBinQueue(wiring.Component):
    """First in, first out: ``depth`` entries (2 or more), ``SyncFIFOBuffered``'s
    structure on a :class:`~.ram.BlockRam` (no collision logic; the module's docstring).

    ``depth - 1`` words in the memory, the memory's read register is the head (``o``). A
    word moves to the head when the head is empty or taken; an entry written in cycle
    ``t`` is on ``o`` from ``t + 2`` when the queue was empty. ``i.ready`` (the memory has
    room) and ``o.valid`` are registers.
    """

    def __init__(self, *, shape, depth):
        self._shape = shape
        self._depth = check_int("depth", depth, 2, QUEUE_DEPTH_LIMIT)
        super().__init__({"i": In(stream.Signature(shape)),
                          "o": Out(stream.Signature(shape))})

    depth = property(lambda self: self._depth)

    def elaborate(self, platform):
        m = Module()
        words = self._depth - 1
        # Not "memory": the BlockRam's own array has that name, and would hide it.
        m.submodules.ram = memory = BlockRam(shape=Shape.cast(self._shape).width,
                                             depth=words)
        write_addr = Signal(range(words))
        read_addr = Signal(range(words))
        stored = Signal(range(words + 1))         # words in the memory, not the head
        write = Signal()
        move = Signal()
        m.d.comb += [
            self.i.ready.eq(stored != words),
            write.eq(self.i.valid & self.i.ready),
            move.eq((stored != 0) & (~self.o.valid | self.o.ready)),
            memory.write_addr.eq(write_addr),
            memory.write_data.eq(self.i.payload),
            memory.write_en.eq(write),
            memory.read_addr.eq(read_addr),
            memory.read_en.eq(move),
            self.o.payload.eq(memory.read_data),
        ]
        with m.If(write):
            m.d.sync += write_addr.eq(Mux(write_addr == words - 1, 0, write_addr + 1))
        with m.If(move):
            m.d.sync += read_addr.eq(Mux(read_addr == words - 1, 0, read_addr + 1))
        with m.If(write & ~move):
            m.d.sync += stored.eq(stored + 1)
        with m.Elif(move & ~write):
            m.d.sync += stored.eq(stored - 1)
        with m.If(move):
            m.d.sync += self.o.valid.eq(1)
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


class SpectralMAC(wiring.Component):
    """Multiplies the kept bins of each input channel's spectrum by the stored filter
    spectra, sums over the input channels and streams out each output channel's
    zero-filled, scaled spectrum.

    For each tile and output channel ``o``: ``A[o][k] = sum_c X[c][k] * w`` at every kept
    bin ``k``, with ``w`` the stored word of ``F[o][c]`` at ``k``'s storage index
    (conjugated when ``k`` is mirrored), exact in :attr:`accumulator_width` bits; out,
    ``sat(rnd(A, spectrum_shift))`` per part at kept bins and 0 at the others.

    Timing with no stalls (the module's docstring): the input takes a bin a cycle
    (:attr:`input_cycles` a tile), the dropped ones while the multiplier works on the
    kept ones, which wait in a queue of :attr:`queue_depth`; the multiplier does one op a
    cycle, ``out_channels`` a kept bin (:attr:`accumulate_cycles` a tile); the readout
    gives a sample a cycle (:attr:`readout_cycles` a tile). The three overlap: the tile
    period is :attr:`tile_period`. A kept bin's first op is :attr:`queue_latency` cycles
    after its transfer when the queue is empty and the multiplier free; a tile's first
    output is valid :attr:`latency` cycles after its last op issues when the readout is
    idle.

    Parameters
    ----------
    dims : int
        1 (a tile is a row of ``n`` samples) or 2 (``n x n``).
    n : int
        FFT points per axis: ``POINTS_1D`` (8 .. 4096) for 1D, ``POINTS_2D`` (8 .. 64)
        for 2D.
    in_channels, out_channels : int
        Channels of a tile in and out, 1 .. 256.
    compression_rate : float
        ``c``, percent, ``0 <= c < 100``: sets the kept block (``spec.bandlimit``).
    width : int
        Bits of a sample's parts (signed), 8 .. 24, in and out.
    coefficient_width : int
        Bits of a filter coefficient's parts (signed), 8 .. 18.
    spectrum_shift : int
        Right shift (rounding half up) of the channel sum, 0 .. ``width +
        coefficient_width``.

    Members
    -------
    input : In(stream.Signature(sample_layout(width)))
        Every bin of every channel's spectrum: per tile, channel ``c = 0 .. in_channels -
        1``, each ``n ** dims`` bins in the forward transform's order (1D: ``k``; 2D:
        column-major, position ``k2 * n + k1`` is bin ``(k1, k2)``). ``ready`` depends on
        registers only: low only at a kept bin while the queue is full.
    filters : In(stream.Signature(coefficient_layout(coefficient_width)))
        Filter words at consecutive addresses ``(o * in_channels + c) *
        words_per_filter + j``. ``ready`` is low while a tile is in the multiplier (from
        its first op to its last) and in a cycle where a tile starts; it depends on
        registers only.
    output : Out(stream.Signature(sample_layout(width)))
        Per tile, per output channel ``o = 0 .. out_channels - 1``, ``n ** dims`` samples
        in the input's order. ``valid`` and ``payload`` are registers.
    overflow : Out(1)
        Sticky: a scaling saturation changed a value since reset or ``clear_overflow``.
    clear_overflow : In(1)
        Clears ``overflow`` (a saturation in the same cycle sets it again).
    filters_loaded : Out(1)
        A whole set of filter words has been written since reset.
    """

    #: An op issued in cycle ``t`` writes its bank at the end of cycle ``t + MAC_LATENCY``.
    MAC_LATENCY = MAC_LATENCY
    #: Cycles from the cycle a bank turns full to its tile's first ``output.valid``: the
    #: readout's first step (the read), the bank's read register, the word again, the
    #: rounded sum, the output register.
    READOUT_LATENCY = 5
    #: Cycles from a kept bin's transfer on ``input`` to its first op, the queue empty:
    #: the memory's write, the move to the head.
    QUEUE_LATENCY = 2

    def __init__(self, *, dims, n, in_channels, out_channels, compression_rate, width,
                 coefficient_width, spectrum_shift):
        check_int("dims", dims, DIMS[0], DIMS[-1])
        points = points_for(dims)
        check_int("n", n, points[0], points[-1])
        if n not in points:
            raise ValueError(f"n must be a power of two in {points[0]}..{points[-1]} for "
                             f"dims = {dims}, got {n}")
        check_in("in_channels", in_channels, CHANNELS)
        check_in("out_channels", out_channels, CHANNELS)
        self._compression_rate = check_compression_rate(compression_rate)
        check_in("width", width, WIDTHS)
        check_in("coefficient_width", coefficient_width, COEFFICIENT_WIDTHS)
        check_int("spectrum_shift", spectrum_shift, 0, width + coefficient_width)
        self._dims, self._n = dims, n
        self._in_channels, self._out_channels = in_channels, out_channels
        self._width, self._coefficient_width = width, coefficient_width
        self._spectrum_shift = spectrum_shift
        self._half_width = kept_half_width(n, dims, self._compression_rate)
        self._queue_depth = queue_depth_for(dims, n, self._half_width, in_channels,
                                            out_channels)
        self._bank_full_stage = _bank_full_stage(
            _kept_positions(dims, n, self._half_width), out_channels, self.op_spacing)
        # High in the cycles an op issues: the tests watch the multiplier with it.
        self._issue = Signal(name="issue")
        super().__init__({
            "input": In(stream.Signature(sample_layout(width))),
            "filters": In(stream.Signature(coefficient_layout(coefficient_width))),
            "output": Out(stream.Signature(sample_layout(width))),
            "overflow": Out(1),
            "clear_overflow": In(1),
            "filters_loaded": Out(1),
        })

    dims = property(lambda self: self._dims)
    n = property(lambda self: self._n)
    in_channels = property(lambda self: self._in_channels)
    out_channels = property(lambda self: self._out_channels)
    compression_rate = property(lambda self: self._compression_rate)
    width = property(lambda self: self._width)
    coefficient_width = property(lambda self: self._coefficient_width)
    spectrum_shift = property(lambda self: self._spectrum_shift)

    @property
    def half_width(self):
        """``m``: frequencies ``k <= m`` and ``k >= n - m`` of an axis are kept."""
        return self._half_width

    @property
    def kept_per_axis(self):
        """``T = min(n, 2 m + 1)``: kept frequencies of an axis."""
        return kept_count(self._n, self._half_width)

    @property
    def columns(self):
        """``Q = min(m, n / 2) + 1``: the stored (one-sided) frequencies ``k2``."""
        return min(self._half_width, self._n // 2) + 1

    @property
    def words_per_filter(self):
        """Stored words of one filter: ``Q`` (1D) or ``Q * T`` (2D)."""
        return self.columns * (self.kept_per_axis if self._dims == 2 else 1)

    @property
    def filter_words(self):
        """Words of a whole set: ``out_channels * in_channels * words_per_filter``."""
        return self._out_channels * self._in_channels * self.words_per_filter

    @property
    def filter_memory_bits(self):
        """Bits of the filter memory: ``filter_words`` words of ``2 *
        coefficient_width``."""
        return self.filter_words * 2 * self._coefficient_width

    @property
    def bins(self):
        """Positions of a channel frame: ``n ** dims``."""
        return self._n ** self._dims

    @property
    def kept_bins(self):
        """Kept bins of a channel frame: ``T ** dims``."""
        return self.kept_per_axis ** self._dims

    @property
    def accumulator_width(self):
        """Bits of an accumulator part: ``width + coefficient_width + 1 +
        ceil(log2(in_channels))``, which no channel sum overflows."""
        return (self._width + self._coefficient_width + 1
                + ceil_log2(self._in_channels))

    @property
    def accumulator_words(self):
        """Words of each of the two banks: ``out_channels * kept_bins``."""
        return self._out_channels * self.kept_bins

    @property
    def queue_depth(self):
        """Kept bins the queue between the input and the multiplier holds (the module's
        docstring: *Queue depth*)."""
        return self._queue_depth

    @property
    def queue_latency(self):
        """Cycles from a kept bin's transfer on ``input`` to its first op when the queue
        is empty and the multiplier free: ``QUEUE_LATENCY``."""
        return self.QUEUE_LATENCY

    @property
    def op_spacing(self):
        """Cycles from an op to the next: 1, or 3 (2) when one bin is kept and there is
        one output channel (two), so that ops on one accumulator word are
        ``HAZARD_DISTANCE`` apart."""
        return _op_spacing(self.kept_bins, self._out_channels)

    @property
    def input_cycles(self):
        """Cycles of a tile's input, a bin a cycle: ``in_channels * n ** dims``."""
        return self._in_channels * self.bins

    @property
    def accumulate_cycles(self):
        """Cycles a tile holds the multiplier with no stalls: ``in_channels * kept_bins *
        out_channels`` ops, ``op_spacing`` cycles each (the bins that are not kept cost it
        none)."""
        return (self._in_channels * self.kept_bins * self._out_channels
                * self.op_spacing)

    @property
    def readout_cycles(self):
        """Cycles of a tile's readout with the output always ready: ``out_channels *
        n ** dims``."""
        return self._out_channels * self.bins

    @property
    def bank_full_stage(self):
        """The stage of a tile's last op in whose cycle its bank turns full (the readout
        starts in the cycle after): 3, just after the last op's bank read, or 5 when one
        bin is kept and there is one output channel (the readout's first read would come
        before the last write)."""
        return self._bank_full_stage

    @property
    def bank_handover_cycles(self):
        """Cycles a bank idles per round beyond its tile's ops and readout steps:
        ``bank_full_stage`` from the last op to the first step, 1 from the last step to
        the next tile's first op (the last word leaves the read register)."""
        return self.bank_full_stage + 1

    @property
    def tile_period(self):
        """The tile period with no stalls in steady state, averaged over two tiles (the
        banks alternate): ``max(input_cycles, accumulate_cycles, readout_cycles,
        (accumulate_cycles + readout_cycles + bank_handover_cycles) / 2)``; an ``int``,
        or a half when the last term is largest and odd."""
        two_tiles = max(2 * self.input_cycles, 2 * self.accumulate_cycles,
                        2 * self.readout_cycles,
                        self.accumulate_cycles + self.readout_cycles
                        + self.bank_handover_cycles)
        return two_tiles // 2 if two_tiles % 2 == 0 else two_tiles / 2

    @property
    def latency(self):
        """Cycles from the issue of a tile's last op to its first ``output.valid`` when
        the readout is idle: ``bank_full_stage + READOUT_LATENCY`` (8, or 10)."""
        return self.bank_full_stage + self.READOUT_LATENCY

    # --- Decoding (generation-time constants only) ----------------------------------------

    def _axis_kept(self, k):
        """Whether axis frequency ``k`` is kept: ``k <= m`` or ``k >= n - m``."""
        half = self._half_width
        return (k <= half) | (k >= self._n - half)

    def _kept(self, position):
        """Whether a stream position's bin is kept: along every axis. ``(k1, k2)`` are the
        bit fields of a 2D position."""
        if self._dims == 1:
            return self._axis_kept(position)
        bits = exact_log2(self._n)
        return self._axis_kept(position[:bits]) & self._axis_kept(position[bits:])

    def _storage(self, m, column_index, row_index, prefix):
        """The storage index ``j`` and the mirror flag of the kept bin in kept column
        ``column_index`` (the axis index of ``k2``) and, in 2D, kept row ``row_index``
        (of ``k1``)."""
        T, Q = self.kept_per_axis, self.columns
        mirrored = Signal(name=f"{prefix}_mirrored")
        column = Signal(range(Q), name=f"{prefix}_column")
        m.d.comb += [
            # the stored columns are the kept k2 <= n / 2: axis indices 0 .. Q - 1
            mirrored.eq(column_index >= Q),
            # a mirrored bin uses the word of (-k1 mod n, n - k2); k2 = idx + n - T
            column.eq(Mux(mirrored, T - column_index, column_index)),
        ]
        if row_index is None:
            return column, mirrored
        # idx(-k1 mod n) = (T - idx(k1)) mod T
        row_mirrored = Signal(range(T), name=f"{prefix}_row_mirrored")
        m.d.comb += row_mirrored.eq(Mux(row_index == 0, 0, T - row_index))
        word = Signal(range(self.words_per_filter), name=f"{prefix}_word")
        m.d.comb += word.eq(_times(column, T) + Mux(mirrored, row_mirrored, row_index))
        return word, mirrored

    # --- The hardware ---------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        N, K, T = self.bins, self.kept_bins, self.kept_per_axis
        C, O = self._in_channels, self._out_channels
        W = self.words_per_filter
        width, aw = self._width, self.accumulator_width
        product_shape = signed(width + self._coefficient_width)
        acc_layout = data.StructLayout({"re": signed(aw), "im": signed(aw)})

        # No read meets a write of its word: the filter memory is written only in cycles
        # with no issue, a full bank is not written, an accumulating one is read far from
        # the word being written (the module's docstring).
        no_rw_check = {"no_rw_check": 1}

        # --- Filter memory and loading ---
        m.submodules.filter_memory = filter_memory = Memory(
            shape=coefficient_layout(self._coefficient_width), depth=self.filter_words,
            init=[], attrs=no_rw_check)
        filter_write = filter_memory.write_port()
        filter_read = filter_memory.read_port(domain="sync")
        load_addr = Signal(range(self.filter_words))
        take_word = Signal()
        m.d.comb += [
            take_word.eq(self.filters.valid & self.filters.ready),
            filter_write.addr.eq(load_addr),
            filter_write.data.eq(self.filters.payload),
            filter_write.en.eq(take_word),
        ]
        with m.If(take_word):
            with m.If(load_addr == self.filter_words - 1):
                m.d.sync += [load_addr.eq(0), self.filters_loaded.eq(1)]
            with m.Else():
                m.d.sync += load_addr.eq(load_addr + 1)

        # --- The accumulator banks: one is full from the write of its tile's last op
        # until its readout's last word has left its read register ---
        full = [Signal(name=f"bank{b}_full") for b in range(2)]
        acc_bank = Signal()              # the bank the tile in the multiplier writes
        read_bank = Signal()             # the bank the readout reads next
        bank_writes, bank_reads = [], []
        for b in range(2):
            bank = Memory(shape=acc_layout, depth=self.accumulator_words, init=[],
                          attrs=no_rw_check)
            m.submodules[f"bank{b}"] = bank
            bank_writes.append(bank.write_port())
            bank_reads.append(bank.read_port(domain="sync"))

        # --- The input side: drops the bins that are not kept, queues the others ---
        m.submodules.queue = queue = _KeptBinQueue(shape=sample_layout(width),
                                                   depth=self._queue_depth)
        position = Signal(range(N))      # of the bin at the head of input, in its frame
        # The head bin's kept flag, registered with the position (from the next position)
        # so that input.ready is a register's; position 0 is bin 0, always kept.
        head_kept = Signal(init=1)
        next_position = Signal(range(N))
        m.d.comb += [
            next_position.eq(Mux(position == N - 1, 0, position + 1)),
            queue.i.valid.eq(self.input.valid & head_kept),
            queue.i.payload.eq(self.input.payload),
            self.input.ready.eq(~head_kept | queue.i.ready),
        ]
        with m.If(self.input.valid & self.input.ready):
            m.d.sync += [position.eq(next_position),
                         head_kept.eq(self._kept(next_position))]

        # --- The multiplier side, stage 0: issue. Its own counters over the kept bins
        # (the queue's head) and the channels ---
        column_index = Signal(range(T))  # the head bin's kept column, idx(k2)
        row_index = Signal(range(T)) if self._dims == 2 else None   # idx(k1)
        channel = Signal(range(C))
        op = Signal(range(O))            # output channel of the head bin's next op
        acc_addr = Signal(range(self.accumulator_words))   # kept bin * O + op
        channel_base = Signal(range(self.filter_words))    # c * W
        op_base = Signal(range(self.filter_words))         # (o * C + c) * W
        tile_open = Signal()             # from a tile's first op to its last

        # The head bin's storage index and mirror flag, registered with the counters
        # (from the next kept bin) to keep them off the filter memory's address path; kept
        # bin 0 is word 0, not mirrored.
        word = Signal(range(W))
        mirrored = Signal()
        column_end = Signal()
        next_column = Signal(range(T))
        m.d.comb += [
            column_end.eq(1 if row_index is None else row_index == T - 1),
            next_column.eq(Mux(column_end, Mux(column_index == T - 1, 0, column_index + 1),
                               column_index)),
        ]
        next_row = None
        if row_index is not None:
            next_row = Signal(range(T))
            m.d.comb += next_row.eq(Mux(column_end, 0, row_index + 1))
        next_word, next_mirrored = self._storage(m, next_column, next_row, "next")

        go = Signal()
        issue = self._issue
        take = Signal()                  # the head bin's last op: the queue's head goes
        last_op = op == O - 1
        frame_last_op = acc_addr == self.accumulator_words - 1
        tile_last_op = frame_last_op & (channel == C - 1)
        may_issue = Signal()
        if self.op_spacing > 1:
            # ops on the single accumulator word (of each output channel) HAZARD_DISTANCE
            # apart
            cooldown = Signal(range(self.op_spacing))
            m.d.comb += may_issue.eq(cooldown == 0)
            with m.If(issue):
                m.d.sync += cooldown.eq(self.op_spacing - 1)
            with m.Elif(cooldown != 0):
                m.d.sync += cooldown.eq(cooldown - 1)
        else:
            m.d.comb += may_issue.eq(1)
        m.d.comb += [
            # a tile starts only with a whole set, not half overwritten, in a free bank
            go.eq(may_issue & (tile_open | (self.filters_loaded & (load_addr == 0)
                                            & ~Mux(acc_bank, full[1], full[0])))),
            issue.eq(queue.o.valid & go),
            queue.o.ready.eq(go & last_op),
            take.eq(issue & last_op),
            self.filters.ready.eq(~tile_open & ~issue),
            filter_read.addr.eq(op_base + word),
            filter_read.en.eq(issue),
        ]
        with m.If(issue):
            m.d.sync += [acc_addr.eq(Mux(frame_last_op, 0, acc_addr + 1)),
                         tile_open.eq(~tile_last_op)]
            with m.If(~last_op):
                m.d.sync += [op.eq(op + 1), op_base.eq(op_base + C * W)]
        with m.If(take):
            m.d.sync += [op.eq(0), column_index.eq(next_column), word.eq(next_word),
                         mirrored.eq(next_mirrored)]
            if row_index is not None:
                m.d.sync += row_index.eq(next_row)
            with m.If(frame_last_op):
                next_base = Mux(channel == C - 1, 0, channel_base + W)
                m.d.sync += [channel_base.eq(next_base), op_base.eq(next_base)]
                with m.If(channel == C - 1):
                    m.d.sync += [channel.eq(0), acc_bank.eq(~acc_bank)]
                with m.Else():
                    m.d.sync += channel.eq(channel + 1)
            with m.Else():
                m.d.sync += op_base.eq(channel_base)

        # An op's tags, carried down the pipeline beside its data.
        def tags(stage):
            return {
                "valid": Signal(name=f"s{stage}_valid"),
                "mirrored": Signal(name=f"s{stage}_mirrored", reset_less=True),
                "bank": Signal(name=f"s{stage}_bank", reset_less=True),
                "addr": Signal(range(self.accumulator_words), name=f"s{stage}_addr",
                               reset_less=True),
                "first": Signal(name=f"s{stage}_first", reset_less=True),
                "last": Signal(name=f"s{stage}_last", reset_less=True),
            }

        s0 = {"valid": issue, "mirrored": mirrored, "bank": acc_bank, "addr": acc_addr,
              "first": channel == 0, "last": tile_last_op}
        stages = [s0] + [tags(k) for k in range(1, self.MAC_LATENCY + 1)]
        for src, dst in zip(stages, stages[1:]):
            m.d.sync += [dst[key].eq(src[key]) for key in dst]
        s3, s4, s5 = stages[3], stages[4], stages[5]
        turns_full = stages[self.bank_full_stage]

        # --- Stage 1: the sample; the coefficient in the filter memory's read register ---
        x1_re = Signal(signed(width), name="x1_re", reset_less=True)
        x1_im = Signal(signed(width), name="x1_im", reset_less=True)
        m.d.sync += [x1_re.eq(queue.o.payload.re), x1_im.eq(queue.o.payload.im)]

        # --- Stage 2: the operands again (the block RAM's clock-to-output and the
        # multiplier were one path) ---
        x_re = Signal(signed(width), name="x_re", reset_less=True)
        x_im = Signal(signed(width), name="x_im", reset_less=True)
        w = Signal(coefficient_layout(self._coefficient_width), name="w", reset_less=True)
        m.d.sync += [x_re.eq(x1_re), x_im.eq(x1_im), w.eq(filter_read.data)]

        # --- Stage 3: the four products ---
        rr, ii, ri, ir = (Signal(product_shape, name=f"product_{name}", reset_less=True)
                          for name in ("rr", "ii", "ri", "ir"))
        m.d.sync += [rr.eq(x_re * w.re), ii.eq(x_im * w.im),
                     ri.eq(x_re * w.im), ir.eq(x_im * w.re)]

        # --- Stage 4: the complex product; the bank's read register ---
        # X * w = (rr - ii, ri + ir); X * conj(w) = (rr + ii, ir - ri)
        p_shape = signed(width + self._coefficient_width + 1)
        p_re = Signal(p_shape, name="p_re", reset_less=True)
        p_im = Signal(p_shape, name="p_im", reset_less=True)
        m.d.sync += [p_re.eq(Mux(s3["mirrored"], rr + ii, rr - ii)),
                     p_im.eq(Mux(s3["mirrored"], ir - ri, ri + ir))]

        # --- Stage 5: both again (the block RAM's clock-to-output and the adder were one
        # path); the sum is written ---
        p5 = Signal(acc_layout, name="p5", reset_less=True)
        old = Signal(acc_layout, name="old", reset_less=True)
        m.d.sync += [p5.re.eq(p_re), p5.im.eq(p_im)]
        for part in ("re", "im"):
            m.d.sync += old[part].eq(
                Mux(s4["bank"], bank_reads[1].data[part], bank_reads[0].data[part]))
        for b, write in enumerate(bank_writes):
            m.d.comb += [write.addr.eq(s5["addr"]),
                         write.en.eq(s5["valid"] & (s5["bank"] == b))]
            for part in ("re", "im"):
                m.d.comb += write.data[part].eq(
                    Mux(s5["first"], p5[part], old[part] + p5[part]))
            # full once the last op has read it: its last writes (this and up to
            # MAC_LATENCY - bank_full_stage - 1 more ops') land before the readout reads
            # their words (_bank_full_stage)
            with m.If(turns_full["valid"] & turns_full["last"] & (turns_full["bank"] == b)):
                m.d.sync += full[b].eq(1)

        # --- Readout: the counters read, all registers move together ---
        advance = Signal()
        read_position = Signal(range(N))
        read_channel = Signal(range(O))
        # kept bin * O + o; past a channel's last kept bin, unused until the next channel
        read_addr = Signal(range(self.accumulator_words + O))
        read_kept = Signal()
        active = Mux(read_bank, full[1], full[0])
        step = Signal()
        m.d.comb += [
            read_kept.eq(self._kept(read_position)),
            advance.eq(~self.output.valid | self.output.ready),
            step.eq(advance & active),
        ]
        for b, read in enumerate(bank_reads):
            m.d.comb += [
                read.addr.eq(Mux(full[b], read_addr, s3["addr"])),
                # while full, the read register holds a word until the next stage takes it
                read.en.eq(Mux(full[b], advance & read_kept, 1)),
            ]
        with m.If(step):
            with m.If(read_kept):
                m.d.sync += read_addr.eq(read_addr + O)
            with m.If(read_position == N - 1):
                m.d.sync += read_position.eq(0)
                with m.If(read_channel == O - 1):
                    m.d.sync += [read_channel.eq(0), read_addr.eq(0),
                                 read_bank.eq(~read_bank)]
                with m.Else():
                    m.d.sync += [read_channel.eq(read_channel + 1),
                                 read_addr.eq(read_channel + 1)]
            with m.Else():
                m.d.sync += read_position.eq(read_position + 1)

        # R1: the bank's read register; the bank is free once its last word has left it.
        r1_valid = Signal()
        r1_kept = Signal(reset_less=True)
        r1_bank = Signal(reset_less=True)
        r1_last = Signal(reset_less=True)
        with m.If(advance):
            m.d.sync += [
                r1_valid.eq(active), r1_kept.eq(read_kept), r1_bank.eq(read_bank),
                r1_last.eq((read_position == N - 1) & (read_channel == O - 1)),
            ]
        for b in range(2):
            with m.If(advance & r1_valid & r1_last & (r1_bank == b)):
                m.d.sync += full[b].eq(0)

        # R2: the word again, 0 where not kept; R3: rnd(A, spectrum_shift); the output
        # register saturates (the read, the adder and the compares were one path).
        r2_valid, r3_valid = Signal(), Signal()
        saturated = []
        for part in ("re", "im"):
            channel_sum = Signal(signed(aw), name=f"sum_{part}", reset_less=True)
            rounded = Signal(signed(aw + 1 - self._spectrum_shift), name=f"rounded_{part}",
                             reset_less=True)
            y, changed = self._saturate(m, rounded, part)
            with m.If(advance):
                m.d.sync += [
                    channel_sum.eq(Mux(r1_kept, Mux(r1_bank, bank_reads[1].data[part],
                                                    bank_reads[0].data[part]), 0)),
                    rounded.eq(self._round(channel_sum)),
                    self.output.payload[part].eq(y),
                ]
            saturated.append(changed)
        with m.If(advance):
            m.d.sync += [r2_valid.eq(r1_valid), r3_valid.eq(r2_valid),
                         self.output.valid.eq(r3_valid)]
        overflow_event = advance & r3_valid & (saturated[0] | saturated[1])
        with m.If(overflow_event):
            m.d.sync += self.overflow.eq(1)
        with m.Elif(self.clear_overflow):
            m.d.sync += self.overflow.eq(0)
        return m

    def _round(self, value):
        """``rnd(value, spectrum_shift)``: add half, shift right (arithmetic)."""
        shift = self._spectrum_shift
        return (value + (1 << (shift - 1))) >> shift if shift else value

    def _saturate(self, m, value, part):
        """``value`` clamped to ``signed(width)``, and whether that changed it."""
        hi, lo = (1 << (self._width - 1)) - 1, -(1 << (self._width - 1))
        out = Signal(signed(self._width), name=f"scaled_{part}")
        changed = Signal(name=f"scaled_{part}_sat")
        m.d.comb += [changed.eq((value > hi) | (value < lo)),
                     out.eq(Mux(value > hi, hi, Mux(value < lo, lo, value)))]
        return out, changed
