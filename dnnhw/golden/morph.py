"""Morph's mapping model: a 3D convolution layer on a tiled PE array with an L2 and an L1.

The rules are written down in ``docs/morph.md``; this module computes them in closed form
(per-dimension sums over the tiles, never a walk over elements), and
:mod:`dnnhw.golden.morph_walk` walks the loop nest element by element, so that each checks
the other.

Members
-------
:class:`Layer`
    One 3D convolution (``K x C x T x R x S`` filters over ``N x C x F x H x W``).
:class:`Hardware`
    The accelerator: PEs, banks and bank sizes per level, energy per access, the timing
    constants of the cycle rules.
:class:`Mapping`
    Loop orders, tile sizes per level, PE parallelism and the bank partition.
:func:`check`, :func:`validate`
    Why a mapping does not fit (a list of :class:`Violation`), or a :class:`MappingError`.
:func:`counts`
    The exact :class:`Counts`: per level and operand reads and writes, MACs, cycles.
:func:`tiles`, :func:`input_extent`, :func:`tile_words`
    The tiles of a dimension, the clipped input rows an output range reads, the words
    each operand's tile needs.
:func:`multiplier`, :func:`axis_classes`, :func:`level_terms`, :func:`level_moves`, :func:`pe_counts`
    The closed form's pieces; :mod:`dnnhw.golden.morph_search` runs them on NumPy arrays
    of candidate tiles.
"""

import itertools
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ._checks import check_int


__all__ = ["DIMS", "OPERANDS", "LEVELS", "RELEVANT", "Layer", "Hardware", "Mapping",
           "Violation", "MappingError", "check", "validate", "counts", "Counts",
           "empty_traffic", "tiles", "input_extent", "tile_words", "DEFAULT_HARDWARE",
           # the closed form's pieces, which the optimizer runs on arrays of candidates
           "multiplier", "axis_classes", "stack_classes", "level_terms", "level_moves",
           "block_counts", "channel_tiles", "inside_taps", "pe_counts"]

#: The tiled dimensions, in the order tile tuples list them: filters, input channels,
#: output frames, rows and columns.
DIMS = "KCFHW"
#: The operands, in the order bank tuples list them.
OPERANDS = ("inputs", "weights", "psums")
#: The storage levels, outermost first.
LEVELS = ("dram", "l2", "l1")
#: The dimensions that index each operand's tiles (the batch index also indexes inputs
#: and partial sums).
RELEVANT = {"inputs": "CFHW", "weights": "KC", "psums": "KFHW"}


class MappingError(ValueError):
    """A mapping that does not fit; ``violations`` lists every reason."""

    def __init__(self, violations):
        self.violations = list(violations)
        super().__init__("; ".join(str(v) for v in self.violations))


def _triple(name, value, lo):
    if isinstance(value, (tuple, list)):
        if len(value) != 3:
            raise ValueError(f"{name} must be one int or three (frames, rows, columns), "
                             f"got {len(value)}")
        return tuple(check_int(f"{name}[{i}]", v, lo) for i, v in enumerate(value))
    value = check_int(name, value, lo)
    return (value,) * 3


@dataclass(frozen=True)
class Layer:
    """One 3D convolution layer.

    Members
    -------
    C, F, H, W : int
        Input channels, frames, rows and columns (each at least 1).
    K : int
        Filters.
    T, R, S : int
        Filter frames, rows, columns (each at least 1).
    N : int
        Images (clips) in the batch.
    stride, padding : int or (int, int, int)
        Per spatial axis (frames, rows, columns); stride at least 1, padding at least 0.
    name : str

    Derived: :attr:`Fo`, :attr:`Ho`, :attr:`Wo` (output size), :attr:`macs`,
    :meth:`size` (a dimension of :data:`DIMS`).
    """
    C: int
    F: int
    H: int
    W: int
    K: int
    T: int = 3
    R: int = 3
    S: int = 3
    N: int = 1
    stride: tuple = 1
    padding: tuple = 1
    name: str = ""

    def __post_init__(self):
        for dim in ("C", "F", "H", "W", "K", "T", "R", "S", "N"):
            check_int(dim, getattr(self, dim), 1)
        object.__setattr__(self, "stride", _triple("stride", self.stride, 1))
        object.__setattr__(self, "padding", _triple("padding", self.padding, 0))
        for axis, size, kernel, pad in zip("FHW", (self.F, self.H, self.W),
                                           (self.T, self.R, self.S), self.padding):
            if kernel > size + 2 * pad:
                raise ValueError(f"the filter's {kernel} taps along {axis} exceed the "
                                 f"padded input ({size} + 2 * {pad})")

    @property
    def Fo(self):
        return (self.F + 2 * self.padding[0] - self.T) // self.stride[0] + 1

    @property
    def Ho(self):
        return (self.H + 2 * self.padding[1] - self.R) // self.stride[1] + 1

    @property
    def Wo(self):
        return (self.W + 2 * self.padding[2] - self.S) // self.stride[2] + 1

    @property
    def taps(self):
        return self.T * self.R * self.S

    def size(self, dim):
        """The extent of a tiled dimension (``K``, ``C`` or an output ``F``, ``H``, ``W``)."""
        return {"K": self.K, "C": self.C, "F": self.Fo, "H": self.Ho, "W": self.Wo}[dim]

    @property
    def shape(self):
        """``(K, C, Fo, Ho, Wo)``: the sizes tile tuples are checked against."""
        return tuple(self.size(d) for d in DIMS)

    @property
    def macs(self):
        return self.N * self.K * self.Fo * self.Ho * self.Wo * self.C * self.taps

    def operand_words(self):
        """Words of each tensor: ``{"inputs", "weights", "psums"}`` (psums: the output)."""
        return {"inputs": self.N * self.C * self.F * self.H * self.W,
                "weights": self.K * self.C * self.taps,
                "psums": self.N * self.K * self.Fo * self.Ho * self.Wo}

    def axis(self, dim):
        """``(input size, kernel taps, stride, padding)`` of spatial dim F, H or W."""
        i = "FHW".index(dim)
        return ((self.F, self.H, self.W)[i], (self.T, self.R, self.S)[i], self.stride[i],
                self.padding[i])

    def describe(self):
        return (f"{self.C}->{self.K} @{self.F}x{self.H}x{self.W} "
                f"k{self.T}x{self.R}x{self.S}" + (f" N={self.N}" if self.N > 1 else ""))


@dataclass(frozen=True)
class Hardware:
    """The modelled accelerator.

    Members
    -------
    pes : int
        MAC units.
    l2_banks, l2_bank_words, l1_banks, l1_bank_words : int
        Banks per level and words per bank.
    energy_pj : dict
        Energy per word access of ``dram``, ``l2``, ``l1`` and per ``mac``, in pJ.
    dram_latency, dram_write_latency, dram_words_per_cycle : int
        DRAM fills cost ``dram_latency + ceil(words / dram_words_per_cycle)`` cycles,
        write-backs ``dram_write_latency + ceil(words / dram_words_per_cycle)``.
    l2_latency, l2_words_per_cycle : int
        Each L2-L1 transfer costs ``l2_latency + ceil(words / l2_words_per_cycle)``.
    l2_step_overhead, l1_step_overhead, block_overhead, layer_overhead : int
        Fixed cycles per L2 step, per L1 step, per PE block and per layer.
    max_block : tuple of 3 ints or None
        The largest ``(Kp, Hp, Wp)`` of a built array (each side of a mapping's block at
        most its own); ``None``: any block of at most ``pes`` PEs.

    The cycle rules are in ``docs/morph.md``; the latencies and overheads are at least 0,
    the other members at least 1.
    name : str
    """
    pes: int = 256
    l2_banks: int = 16
    l2_bank_words: int = 32 * 1024
    l1_banks: int = 16
    l1_bank_words: int = 1024
    energy_pj: dict = field(default_factory=lambda: {
        "dram": 640.0, "l2": 50.0, "l1": 5.0, "mac": 0.9})
    dram_latency: int = 100
    dram_words_per_cycle: int = 1
    l2_words_per_cycle: int = 8
    block_overhead: int = 0
    # Fixed costs of a PE array (docs/morph-array.md); 0 keeps the study's figures.
    dram_write_latency: int = 0
    l2_latency: int = 0
    l2_step_overhead: int = 0
    l1_step_overhead: int = 0
    layer_overhead: int = 0
    max_block: tuple = None
    name: str = "morph-256"

    def __post_init__(self):
        for name in ("pes", "l2_banks", "l2_bank_words", "l1_banks", "l1_bank_words",
                     "dram_words_per_cycle", "l2_words_per_cycle"):
            check_int(name, getattr(self, name), 1)
        for name in ("dram_latency", "dram_write_latency", "l2_latency", "l2_step_overhead",
                     "l1_step_overhead", "block_overhead", "layer_overhead"):
            check_int(name, getattr(self, name), 0)
        if self.max_block is not None:
            if not isinstance(self.max_block, tuple) or len(self.max_block) != 3:
                raise ValueError(f"max_block must be None or 3 ints (Kp, Hp, Wp), got "
                                 f"{self.max_block!r}")
            for name, value in zip(("Kp", "Hp", "Wp"), self.max_block):
                check_int(f"max_block {name}", value, 1)
        missing = {"dram", "l2", "l1", "mac"} - set(self.energy_pj)
        if missing:
            raise ValueError(f"energy_pj needs dram, l2, l1 and mac; missing "
                             f"{', '.join(sorted(missing))}")

    def banks(self, level):
        return {"l2": self.l2_banks, "l1": self.l1_banks}[level]

    def bank_words(self, level):
        return {"l2": self.l2_bank_words, "l1": self.l1_bank_words}[level]

    def describe(self):
        return (f"{self.pes} PEs; L2 {self.l2_banks} x {self.l2_bank_words} words; "
                f"L1 {self.l1_banks} x {self.l1_bank_words} words")


#: The accelerator of the study (``docs/morph.md``).
DEFAULT_HARDWARE = Hardware()


@dataclass(frozen=True)
class Mapping:
    """One mapping of a layer (see ``docs/morph.md``).

    Members
    -------
    outer_order, inner_order : str
        Permutations of :data:`DIMS`, outermost loop first: over the L2 tiles, and over
        the L1 tiles inside one L2 tile.
    l2_tile, l1_tile : tuple of 5 ints
        ``(Kt, Ct, Ft, Ht, Wt)`` per level (output frames, rows and columns).
    parallel : tuple of 3 ints
        ``(Kp, Hp, Wp)``: the PE block.
    l2_banks, l1_banks : tuple of 3 ints
        Banks of each level given to ``(inputs, weights, psums)``.
    """
    outer_order: str
    inner_order: str
    l2_tile: tuple
    l1_tile: tuple
    parallel: tuple
    l2_banks: tuple
    l1_banks: tuple

    def __post_init__(self):
        for name in ("l2_tile", "l1_tile", "parallel", "l2_banks", "l1_banks"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def tile(self, level):
        return {"l2": self.l2_tile, "l1": self.l1_tile}[level]

    def order(self, level):
        return {"l2": self.outer_order, "l1": self.inner_order}[level]

    def banks(self, level):
        return {"l2": self.l2_banks, "l1": self.l1_banks}[level]

    def describe(self):
        def tile(t):
            return " ".join(f"{d}{v}" for d, v in zip(DIMS, t))
        return (f"L2 [{tile(self.l2_tile)}] {self.outer_order}; "
                f"L1 [{tile(self.l1_tile)}] {self.inner_order}; "
                f"PE {'x'.join(map(str, self.parallel))} (KxHxW); "
                f"banks L2 {'/'.join(map(str, self.l2_banks))} "
                f"L1 {'/'.join(map(str, self.l1_banks))} (in/w/psum)")

    def as_dict(self):
        return {"outer_order": self.outer_order, "inner_order": self.inner_order,
                "l2_tile": list(self.l2_tile), "l1_tile": list(self.l1_tile),
                "parallel": list(self.parallel), "l2_banks": list(self.l2_banks),
                "l1_banks": list(self.l1_banks)}


@dataclass(frozen=True)
class Violation:
    """Why a mapping does not fit. ``level`` and ``operand`` may be None (a parameter
    outside its range); ``needed`` and ``available`` are words where they apply."""
    message: str
    level: str | None = None
    operand: str | None = None
    needed: int | None = None
    available: int | None = None

    @property
    def over(self):
        if self.needed is None or self.available is None:
            return None
        return self.needed - self.available

    def __str__(self):
        return self.message


def tiles(size, tile):
    """``[(start, length), ...]``: the tiles of a dimension of ``size`` with tile ``tile``
    (the last one ragged)."""
    return [(start, min(tile, size - start)) for start in range(0, size, tile)]


def input_extent(layer, dim, start, length):
    """Input positions an output range ``start .. start + length - 1`` of spatial ``dim``
    reads, clipped to the input (padding is not stored): their count."""
    size, taps, stride, pad = layer.axis(dim)
    lo = start * stride - pad
    hi = (start + length - 1) * stride - pad + taps - 1
    return max(0, min(hi, size - 1) - max(lo, 0) + 1)


def tile_words(layer, tile, within=None):
    """Capacity each operand needs for a tile ``(Kt, Ct, Ft, Ht, Wt)``: inputs take the
    largest clipped extent of any such tile along each spatial axis. ``within`` (an L2
    tile) makes these the L1 tiles that restart at each L2 tile's origin."""
    k, c, f, h, w = tile
    inputs = c
    for dim, t in zip("FHW", (f, h, w)):
        parents = [(0, layer.size(dim))] if within is None else \
            tiles(layer.size(dim), within[DIMS.index(dim)])
        inputs *= max(input_extent(layer, dim, start + s, n)
                      for start, length in parents for s, n in tiles(length, t))
    return {"inputs": inputs, "weights": k * c * layer.taps, "psums": k * f * h * w}


def check(layer, mapping, hardware=DEFAULT_HARDWARE):
    """Every reason ``mapping`` does not fit ``layer`` on ``hardware``: a list of
    :class:`Violation` (empty when it fits)."""
    problems = []

    def bad(message, **where):
        problems.append(Violation(message, **where))

    for name in ("outer_order", "inner_order"):
        order = getattr(mapping, name)
        if not isinstance(order, str) or sorted(order) != sorted(DIMS):
            bad(f"{name} must be a permutation of {DIMS!r}, got {order!r}")
    shapes_ok = True
    for name, length in (("l2_tile", 5), ("l1_tile", 5), ("parallel", 3), ("l2_banks", 3),
                         ("l1_banks", 3)):
        value = getattr(mapping, name)
        if len(value) != length or not all(isinstance(v, int) and not isinstance(v, bool)
                                           for v in value):
            bad(f"{name} must be {length} ints, got {value!r}")
            shapes_ok = False
    if not shapes_ok:
        return problems
    for i, dim in enumerate(DIMS):
        size, l2, l1 = layer.size(dim), mapping.l2_tile[i], mapping.l1_tile[i]
        if not 1 <= l2 <= size:
            bad(f"l2_tile {dim}t must be in 1..{size} (the layer's {dim}), got {l2}",
                level="l2")
        if not 1 <= l1 <= max(1, min(l2, size)):
            bad(f"l1_tile {dim}t must be in 1..{min(l2, size)} (the L2 tile's {dim}t), "
                f"got {l1}", level="l1")
    for name, dim, value in zip(("Kp", "Hp", "Wp"), "KHW", mapping.parallel):
        limit = mapping.l1_tile[DIMS.index(dim)]
        if not 1 <= value <= max(1, limit):
            bad(f"parallel {name} must be in 1..{limit} (the L1 tile's {dim}t), got {value}",
                level="pe")
    if hardware.max_block is not None:
        for name, value, built in zip(("Kp", "Hp", "Wp"), mapping.parallel,
                                      hardware.max_block):
            if value > built:
                bad(f"parallel {name} must be in 1..{built} (the built block), got {value}",
                    level="pe", needed=value, available=built)
    used = math.prod(mapping.parallel)
    if used > hardware.pes:
        bad(f"parallel {'x'.join(map(str, mapping.parallel))} uses {used} PEs, "
            f"the array has {hardware.pes}", level="pe", needed=used,
            available=hardware.pes)
    if problems:
        return problems
    for level in ("l2", "l1"):
        banks = mapping.banks(level)
        for operand, count in zip(OPERANDS, banks):
            if count < 1:
                bad(f"{level.upper()} {operand}: needs at least 1 bank, got {count}",
                    level=level, operand=operand)
        if sum(banks) > hardware.banks(level):
            bad(f"{level.upper()} banks: the partition {'/'.join(map(str, banks))} uses "
                f"{sum(banks)} of {hardware.banks(level)}", level=level,
                needed=sum(banks), available=hardware.banks(level))
        needed = tile_words(layer, mapping.tile(level),
                            within=mapping.l2_tile if level == "l1" else None)
        for operand, count in zip(OPERANDS, banks):
            held = max(count, 0) * hardware.bank_words(level)
            if needed[operand] > held:
                bad(f"{level.upper()} {operand}: the tile needs {needed[operand]} words, "
                    f"its {count} bank(s) hold {held} ({needed[operand] - held} words over)",
                    level=level, operand=operand, needed=needed[operand], available=held)
    return problems


def validate(layer, mapping, hardware=DEFAULT_HARDWARE):
    """Raise a :class:`MappingError` naming every violation, or return None."""
    problems = check(layer, mapping, hardware)
    if problems:
        raise MappingError(problems)


@dataclass(frozen=True)
class Counts:
    """Every access of one layer under one mapping (``docs/morph.md``).

    Members
    -------
    traffic : dict
        ``traffic[level][operand] = {"reads": n, "writes": n}`` in words, for the levels
        of :data:`LEVELS` and the operands of :data:`OPERANDS`. DRAM ``psums`` writes are
        the spills plus the outputs; its reads are the refills. L1 reads of ``inputs``
        and ``weights`` include the PEs' operand reads; L1 ``psums`` include the
        accumulators' loads and drains.
    spills, refills : int
        Partial-sum words written to DRAM before their channels finish, and read back.
    macs : int
    cycles : dict
        ``{"dram", "l2", "compute", "total"}``: the phases of the cycle rules.
    pes : int
        The array's PEs (for the utilizations).
    """
    traffic: dict
    spills: int
    refills: int
    macs: int
    cycles: dict
    pes: int

    def reads(self, level, operand=None):
        ops = OPERANDS if operand is None else (operand,)
        return sum(self.traffic[level][op]["reads"] for op in ops)

    def writes(self, level, operand=None):
        ops = OPERANDS if operand is None else (operand,)
        return sum(self.traffic[level][op]["writes"] for op in ops)

    def accesses(self, level, operand=None):
        return self.reads(level, operand) + self.writes(level, operand)

    @property
    def utilization(self):
        """MACs over the PE cycles of the whole run."""
        return self.macs / (self.cycles["total"] * self.pes)

    @property
    def compute_utilization(self):
        """MACs over the PE cycles of the compute phase: the PE blocks' occupancy."""
        return self.macs / (self.cycles["compute"] * self.pes)

    def energy_pj(self, hardware):
        """``{"dram", "l2", "l1", "mac", "total"}`` in pJ."""
        table = hardware.energy_pj
        parts = {level: self.accesses(level) * table[level] for level in LEVELS}
        parts["mac"] = self.macs * table["mac"]
        parts["total"] = sum(parts.values())
        return parts

    def as_dict(self):
        return {"traffic": self.traffic, "spills": self.spills, "refills": self.refills,
                "macs": self.macs, "cycles": dict(self.cycles), "pes": self.pes}


def empty_traffic():
    """``traffic`` with every count zero, for builders of :class:`Counts`."""
    return {level: {op: {"reads": 0, "writes": 0} for op in OPERANDS} for level in LEVELS}


# --- the closed form -------------------------------------------------------------------
#
# Every count is a sum over tiles that factors by dimension: a tile's words are a product
# of per-dimension extents, and a level's tiles are the Cartesian product of the
# per-dimension tiles. An operand's tile changes at every iteration of the loops down to
# the innermost loop that indexes it (a loop of one trip changes nothing), so the loops
# that do not index it but sit outside that one multiply its fills (:func:`multiplier`).
# The L1 counts repeat per L2 step, so each dimension's L2 tiles are grouped into
# classes by what the L1 loops do inside them: their trip count and, along C, whether
# they start at channel 0. The same functions serve one mapping (:func:`counts`) and
# arrays of candidate tiles (the optimizer, :mod:`dnnhw.golden.morph_search`).


def multiplier(order, trips, relevant):
    """Fills of each distinct tile of an operand indexed by the ``relevant`` dimensions,
    under the loops ``order`` (outermost first) with ``trips`` (ints or NumPy arrays): the
    product of the trips of the loops that do not index it, outside its innermost loop
    of more than one trip."""
    mult, outside = 1, 1
    for dim in order:
        trip = trips[dim]
        if dim in relevant:
            mult = np.where(trip > 1, outside, mult)
        else:
            outside = outside * trip
    return mult


def _extent(layer, operand, dim, start, length):
    if operand == "inputs" and dim in "FHW":
        return input_extent(layer, dim, start, length)
    return length


def axis_classes(layer, dim, parents, tile):
    """One dimension at one level: the parent tiles ``parents`` (start, length) cut into
    child tiles of ``tile``, grouped by the child loop's trips and, along C, by whether the
    parent starts at channel 0. Each class is a dict: ``trips``, ``steps`` (its parent
    tiles), ``first``, ``tiles`` (its child tiles), ``words`` (per operand that the
    dimension indexes: the sum of the child tiles' extents) and ``sizes`` (a Counter of
    those extents)."""
    classes = {}
    for start, length in parents:
        children = [(start + s, n) for s, n in tiles(length, tile)]
        key = (len(children), dim == "C" and start == 0)
        entry = classes.setdefault(key, {
            "trips": key[0], "steps": 0, "first": key[1], "tiles": 0,
            "words": {op: 0 for op in OPERANDS if dim in RELEVANT[op]},
            "sizes": {op: Counter() for op in OPERANDS if dim in RELEVANT[op]}})
        entry["steps"] += 1
        entry["tiles"] += len(children)
        for op in entry["words"]:
            extents = [_extent(layer, op, dim, s, n) for s, n in children]
            entry["words"][op] += sum(extents)
            entry["sizes"][op].update(extents)
    return list(classes.values())


def stack_classes(per_candidate):
    """NumPy arrays ``[candidate, class]`` of the :func:`axis_classes` of several
    candidate tiles of one dimension; absent classes have one trip and no steps."""
    width = max(len(classes) for classes in per_candidate)
    ops = per_candidate[0][0]["words"].keys()

    def table(get, dtype=np.int64, pad=0):
        out = np.full((len(per_candidate), width), pad, dtype=dtype)
        for i, classes in enumerate(per_candidate):
            for j, entry in enumerate(classes):
                out[i, j] = get(entry)
        return out
    return {"classes": width, "trips": table(lambda e: e["trips"], pad=1),
            "steps": table(lambda e: e["steps"]), "first": table(lambda e: e["first"], bool),
            "tiles": table(lambda e: e["tiles"]),
            "words": {op: table(lambda e, op=op: e["words"][op]) for op in ops}}


def level_terms(layer, axes, index, batch_loop):
    """The order-independent terms of one level, one per combination of classes.

    ``axes`` maps each dimension to :func:`stack_classes` arrays and ``index`` maps it to
    the array of candidate rows to combine (one mapping per element). With ``batch_loop``
    the images are this level's outermost loop (the DRAM level); otherwise every image
    repeats the level (the L1). A term holds the trips of its classes and, per operand,
    the words and tile transfers of one pass over its distinct tiles, before the order's
    :func:`multiplier`; ``first`` holds the partial-sum tiles whose pass starts at
    channel 0 (filled from nothing)."""
    terms = []
    for combo in itertools.product(*(range(axes[d]["classes"]) for d in DIMS)):
        pick = {d: (index[d], j) for d, j in zip(DIMS, combo)}
        steps = {d: axes[d]["steps"][pick[d]] for d in DIMS}
        if not np.any(math.prod(steps.values())):
            continue
        term = {"trips": {d: axes[d]["trips"][pick[d]] for d in DIMS}, "ops": {}}
        for op in OPERANDS:
            indexed = RELEVANT[op]
            words = math.prod(axes[d]["words"][op][pick[d]] for d in indexed)
            transfers = math.prod(axes[d]["tiles"][pick[d]] for d in indexed)
            copies = math.prod(steps[d] for d in DIMS if d not in indexed)
            copies = copies * (1 if batch_loop and op == "weights" else layer.N)
            if op == "weights":
                words = words * layer.taps
            term["ops"][op] = (copies * words, copies * transfers)
        first = axes["C"]["first"][pick["C"]]   # such a class has exactly one C step
        term["first"] = tuple(np.where(first, x, 0) for x in term["ops"]["psums"])
        terms.append(term)
    return terms


def level_moves(layer, terms, order, batch_loop):
    """Per operand, ``(words, transfers)`` filled into the level below over the whole
    layer under ``order``, and ``(words, transfers)`` of the partial sums' first passes.
    Partial sums: every pass ends in a write-back; all but the first pass are refills."""
    loops = ("N" + order) if batch_loop else order
    moves = {op: [0, 0] for op in OPERANDS}
    first = [0, 0]
    for term in terms:
        trips = dict(term["trips"], N=layer.N)
        for op in OPERANDS:
            relevant = RELEVANT[op] + ("N" if op != "weights" else "")
            mult = multiplier(loops, trips, relevant)
            words, transfers = term["ops"][op]
            moves[op][0] = moves[op][0] + mult * words
            moves[op][1] = moves[op][1] + mult * transfers
        first[0] = first[0] + term["first"][0]
        first[1] = first[1] + term["first"][1]
    return moves, first


def block_counts(classes, per):
    """PE blocks of ``per`` along one dimension over the child tiles of ``classes``
    (:func:`axis_classes`; a ragged tile takes a last, partly idle block)."""
    return sum(count * -(-size // per) for entry in classes
               for size, count in entry["sizes"]["psums"].items())


def channel_tiles(classes):
    """Child tiles along C over ``classes``: the PE passes each output takes."""
    return sum(entry["tiles"] for entry in classes)


def inside_taps(layer, dim):
    """Output positions times taps along spatial ``dim`` that read an input (not padding)."""
    size, kernel, stride, pad = layer.axis(dim)
    return sum(0 <= o * stride - pad + t < size
               for o in range(layer.size(dim)) for t in range(kernel))


def pe_counts(layer, k_blocks, h_blocks, w_blocks, c_tiles, block_overhead):
    """PE-side counts from the PE blocks along K, H, W and the L1 tiles along C over the
    whole layer (ints or NumPy arrays): operand reads from the L1, accumulator drains to
    it, compute cycles."""
    N, C, taps = layer.N, layer.C, layer.taps
    inside = inside_taps(layer, "F") * inside_taps(layer, "H") * inside_taps(layer, "W")
    return {
        "input_reads": N * k_blocks * C * inside,
        "weight_reads": N * layer.K * layer.Fo * h_blocks * w_blocks * C * taps,
        "drains": layer.operand_words()["psums"] * c_tiles,
        "compute": N * k_blocks * layer.Fo * h_blocks * w_blocks
                   * (C * taps + c_tiles * block_overhead),
    }


def _beats(layer, terms_classes, order, batch_loop, width):
    """Exact transfer cycles ``sum(ceil(words / width))`` per operand (and of the first
    partial-sum passes), over the same class combinations as :func:`level_terms`."""
    loops = ("N" + order) if batch_loop else order
    beats = dict.fromkeys(OPERANDS, 0)
    first = 0
    for combo in itertools.product(*terms_classes):
        chosen = dict(zip(DIMS, combo))
        steps = {d: chosen[d]["steps"] for d in DIMS}
        trips = {d: chosen[d]["trips"] for d in DIMS}
        trips["N"] = layer.N
        for op in OPERANDS:
            indexed = RELEVANT[op]
            sizes = Counter({1: 1})
            for d in indexed:
                sizes = _product(sizes, chosen[d]["sizes"][op])
            scale = layer.taps if op == "weights" else 1
            one_pass = sum(count * -(-(size * scale) // width) for size, count in sizes.items())
            copies = math.prod(steps[d] for d in DIMS if d not in indexed)
            copies *= 1 if batch_loop and op == "weights" else layer.N
            relevant = indexed + ("N" if op != "weights" else "")
            beats[op] += int(multiplier(loops, trips, relevant)) * copies * one_pass
            if op == "psums" and chosen["C"]["first"]:
                first += copies * one_pass
    return beats, first


def _product(left, right):
    out = Counter()
    for a, na in left.items():
        for b, nb in right.items():
            out[a * b] += na * nb
    return out


def counts(layer, mapping, hardware=DEFAULT_HARDWARE):
    """The exact :class:`Counts` of ``layer`` under ``mapping`` (validated first)."""
    validate(layer, mapping, hardware)
    whole = {d: [(0, layer.size(d))] for d in DIMS}
    l2_tiles = {d: tiles(layer.size(d), t) for d, t in zip(DIMS, mapping.l2_tile)}
    one = {d: np.zeros(1, dtype=np.int64) for d in DIMS}
    levels = {}
    for name, parents, tile, order, batch_loop, width in (
            ("l2", whole, mapping.l2_tile, mapping.outer_order, True,
             hardware.dram_words_per_cycle),
            ("l1", l2_tiles, mapping.l1_tile, mapping.inner_order, False,
             hardware.l2_words_per_cycle)):
        classes = {d: axis_classes(layer, d, parents[d], t) for d, t in zip(DIMS, tile)}
        axes = {d: stack_classes([classes[d]]) for d in DIMS}
        moves, first = level_moves(layer, level_terms(layer, axes, one, batch_loop), order,
                                   batch_loop)
        beats, first_beats = _beats(layer, [classes[d] for d in DIMS], order, batch_loop,
                                    width)
        levels[name] = {
            "moves": {op: (int(w[0]), int(t[0])) for op, (w, t) in moves.items()},
            "first": (int(first[0][0]), int(first[1][0])), "beats": beats,
            "first_beats": first_beats, "classes": classes}
    l1_classes = levels["l1"]["classes"]
    kp, hp, wp = mapping.parallel
    pe = pe_counts(layer, block_counts(l1_classes["K"], kp), block_counts(l1_classes["H"], hp),
                   block_counts(l1_classes["W"], wp), channel_tiles(l1_classes["C"]),
                   hardware.block_overhead)
    outputs = layer.operand_words()["psums"]

    def psum_flow(level):
        """(write-backs, refills) as (words, transfers, beats) of one level's psums."""
        words, transfers = levels[level]["moves"]["psums"]
        first_words, first_transfers = levels[level]["first"]
        beats = levels[level]["beats"]["psums"]
        return ((words, transfers, beats),
                (words - first_words, transfers - first_transfers,
                 beats - levels[level]["first_beats"]))
    (dram_wb, dram_rf), (l1_wb, l1_rf) = psum_flow("l2"), psum_flow("l1")
    spills = dram_wb[0] - outputs
    fills2 = {op: levels["l2"]["moves"][op][0] for op in ("inputs", "weights")}
    fills1 = {op: levels["l1"]["moves"][op][0] for op in ("inputs", "weights")}
    loads = pe["drains"] - outputs

    traffic = empty_traffic()
    for op in ("inputs", "weights"):
        traffic["dram"][op]["reads"] = fills2[op]
        traffic["l2"][op] = {"reads": fills1[op], "writes": fills2[op]}
        traffic["l1"][op]["writes"] = fills1[op]
    traffic["l1"]["inputs"]["reads"] = pe["input_reads"]
    traffic["l1"]["weights"]["reads"] = pe["weight_reads"]
    traffic["dram"]["psums"] = {"reads": dram_rf[0], "writes": dram_wb[0]}
    traffic["l2"]["psums"] = {"reads": dram_wb[0] + l1_rf[0], "writes": dram_rf[0] + l1_wb[0]}
    traffic["l1"]["psums"] = {"reads": l1_wb[0] + loads, "writes": l1_rf[0] + pe["drains"]}

    # Steps: one per image and L2 tile, and one per image and L1 tile of each L2 tile
    # (channel_tiles counts the child tiles along any dimension).
    l2_steps = layer.N * math.prod(len(l2_tiles[d]) for d in DIMS)
    l1_steps = layer.N * math.prod(channel_tiles(l1_classes[d]) for d in DIMS)
    dram_fill_transfers = (sum(levels["l2"]["moves"][op][1] for op in ("inputs", "weights"))
                           + dram_rf[1])
    dram_cycles = (levels["l2"]["beats"]["inputs"] + levels["l2"]["beats"]["weights"]
                   + dram_rf[2] + dram_wb[2] + dram_fill_transfers * hardware.dram_latency
                   + dram_wb[1] * hardware.dram_write_latency
                   + l2_steps * hardware.l2_step_overhead + hardware.layer_overhead)
    l2_transfers = (sum(levels["l1"]["moves"][op][1] for op in ("inputs", "weights"))
                    + l1_rf[1] + l1_wb[1])
    l2_cycles = (levels["l1"]["beats"]["inputs"] + levels["l1"]["beats"]["weights"]
                 + l1_rf[2] + l1_wb[2] + l2_transfers * hardware.l2_latency
                 + l1_steps * hardware.l1_step_overhead)
    cycles = {"dram": dram_cycles, "l2": l2_cycles, "compute": pe["compute"],
              "total": dram_cycles + l2_cycles + pe["compute"]}
    return Counts(traffic=traffic, spills=spills, refills=dram_rf[0], macs=layer.macs,
                  cycles=cycles, pes=hardware.pes)
