"""The per-layer mapping optimizer of Morph's model (:mod:`dnnhw.golden.morph`).

The search space, per layer
    - L2 tiles: for each of K, C, F, H, W, every divisor of the layer's size and every
      power of two below it (:func:`tile_candidates`);
    - the outer order: all 120 permutations;
    - L1 tiles: the same candidates below the L2 tile, all 120 inner orders;
    - PE blocks ``Kp x Hp x Wp``: every product of powers of two (or the L1 tile's size)
      that no dimension can double within the array (:func:`parallel_candidates`);
    - the bank partition: the fewest banks that hold each operand's tile. A partition
      with more banks changes no count, so this loses nothing.

How it searches
    Energy and cycles are each a sum of three parts that depend on disjoint choices: the
    DRAM-L2 traffic (the L2 tile and the outer order), the L2-L1 traffic (the L2 tile,
    the L1 tile and the inner order) and the PE reads and compute (the L1 tiles and the
    PE block). For every L2 tile the first part is minimized over the outer orders, and a
    lower bound of the other two is added: the L1 must receive each L2 tile at least once
    per L2 step, and the PEs need at least the reads of the best unragged PE block. L2
    tiles are then expanded best bound first; each expansion searches every L1 tile,
    inner order and PE block exactly (NumPy over the candidates). The search stops when
    the next bound is no better than the best mapping found, which proves that mapping
    optimal over the space, or after ``max_l2`` expansions; the result then carries the
    gap between its cost and the lowest bound left unexpanded, so the optimum can be at
    most that much better.
    For ``edp`` the parts do not add: each expansion keeps the energy-best and the
    cycle-best choice of every part and takes the best product of those, and the bound
    is the product of the two bounds.

Members
-------
:func:`best_mapping`, :class:`SearchResult`, :func:`tile_candidates`,
:func:`parallel_candidates`, :func:`all_orders`, :func:`minimal_banks`.
"""

import dataclasses
import itertools
import math
import time
from dataclasses import dataclass

import numpy as np

from . import morph
from ._checks import check_int
from .morph import DIMS, OPERANDS


__all__ = ["OBJECTIVES", "best_mapping", "SearchResult", "tile_candidates",
           "parallel_candidates", "all_orders", "minimal_banks", "clip", "fixed_mapping"]

#: What :func:`best_mapping` can minimize.
OBJECTIVES = ("energy", "cycles", "edp")


def tile_candidates(size):
    """Every divisor of ``size`` and every power of two below it, ascending."""
    values = {d for d in range(1, size + 1) if size % d == 0}
    values |= {1 << i for i in range(size.bit_length()) if 1 << i < size}
    return sorted(values)


def all_orders():
    """The 120 loop orders (permutations of :data:`~dnnhw.golden.morph.DIMS`)."""
    return ["".join(p) for p in itertools.permutations(DIMS)]


def parallel_candidates(pes, k, h, w):
    """PE blocks ``(Kp, Hp, Wp)`` with each side a power of two or the bound ``k``, ``h``,
    ``w`` itself, at most that bound, their product at most ``pes``, and maximal: no side
    can grow to its next candidate without leaving the array."""
    def sides(bound):
        return sorted({1 << i for i in range(bound.bit_length()) if 1 << i <= bound} | {bound})
    options = [(a, b, c) for a in sides(k) for b in sides(h) for c in sides(w)
               if a * b * c <= pes]
    def grows(option, i):
        bound = (k, h, w)[i]
        larger = [v for v in sides(bound) if v > option[i]]
        if not larger:
            return False
        grown = list(option)
        grown[i] = larger[0]
        return math.prod(grown) <= pes
    return [o for o in options if not any(grows(o, i) for i in range(3))]


def minimal_banks(words, bank_words):
    """The fewest banks of ``bank_words`` that hold ``words`` (at least one)."""
    return max(1, -(-words // bank_words))


@dataclass(frozen=True)
class SearchResult:
    """What :func:`best_mapping` found.

    Members
    -------
    mapping : :class:`~dnnhw.golden.morph.Mapping`
    counts : :class:`~dnnhw.golden.morph.Counts`
        Its exact counts (:func:`~dnnhw.golden.morph.counts`).
    energy_pj : dict
        Its energy by level.
    objective : str
    cost : float
        The objective's value: pJ, cycles, or pJ x cycles.
    proven : bool
        Whether the search proved the mapping optimal over the space.
    gap : float
        At most how much lower (as a fraction of ``cost``) the optimum over the space can
        be; 0 when proven.
    l2_tiles, l2_expanded, evaluated : int
        Legal L2 tiles, how many were expanded, and the mappings scored in all.
    seconds : float
    """
    mapping: morph.Mapping
    counts: morph.Counts
    energy_pj: dict
    objective: str
    cost: float
    proven: bool
    gap: float
    l2_tiles: int
    l2_expanded: int
    evaluated: int
    seconds: float


def _combine(layer, axes, capacity, level, hardware):
    """Index arrays of every combination of the per-dimension candidates whose tiles fit
    the level with the fewest banks each, and those banks per operand."""
    grids = np.meshgrid(*(np.arange(len(capacity[d]["tile"])) for d in DIMS), indexing="ij")
    index = {d: g.ravel() for d, g in zip(DIMS, grids)}
    tile = {d: capacity[d]["tile"][index[d]] for d in DIMS}
    need = {
        "inputs": tile["C"] * capacity["F"]["span"][index["F"]]
                  * capacity["H"]["span"][index["H"]] * capacity["W"]["span"][index["W"]],
        "weights": tile["K"] * tile["C"] * layer.taps,
        "psums": tile["K"] * tile["F"] * tile["H"] * tile["W"],
    }
    size = hardware.bank_words(level)
    banks = {op: np.maximum(1, -(-need[op] // size)) for op in OPERANDS}
    fits = sum(banks.values()) <= hardware.banks(level)
    return {d: index[d][fits] for d in DIMS}, {op: banks[op][fits] for op in OPERANDS}


def _axes(layer, parents, candidates):
    """Per dimension: the stacked classes of every candidate tile, and the tile sizes and
    largest input spans the capacity check needs."""
    axes, capacity = {}, {}
    for d in DIMS:
        classes = [morph.axis_classes(layer, d, parents[d], t) for t in candidates[d]]
        axes[d] = morph.stack_classes(classes)
        spans = [max(size for entry in c for size in entry["sizes"]["inputs"])
                 if d in "FHW" else 0 for c in classes]
        capacity[d] = {"tile": np.array(candidates[d]), "span": np.array(spans),
                       "classes": classes}
    return axes, capacity


def _transfer_costs(layer, terms, orders, batch_loop, hardware, upper, width, latency):
    """Energy and cycles of the transfers between a level and the one above, for every
    order: arrays ``[order, combination]``. Cycles count ``words / width`` per transfer
    (the exact ceiling is :func:`~dnnhw.golden.morph.counts`'s)."""
    per_word = hardware.energy_pj[upper] + hardware.energy_pj["l2" if upper == "dram" else "l1"]
    energy, cycles = [], []
    for order in orders:
        moves, first = morph.level_moves(layer, terms, order, batch_loop)
        # inputs and weights come down; partial sums go up after every pass and come
        # back down for all but their first.
        down = moves["inputs"][0] + moves["weights"][0]
        words = down + 2 * moves["psums"][0] - first[0]
        fills = moves["inputs"][1] + moves["weights"][1] + moves["psums"][1] - first[1]
        energy.append(per_word * words)
        cycles.append(words / width + fills * latency)
    return np.array(energy, dtype=float), np.array(cycles, dtype=float)


def _pe_costs(layer, l1_capacity, index, hardware):
    """Energy and cycles of the PE side for every combination and every PE block:
    arrays ``[combination, block]`` (``inf`` where the block exceeds the L1 tile)."""
    tiles = {d: l1_capacity[d]["tile"][index[d]] for d in DIMS}
    bound = hardware.max_block or (hardware.pes,) * 3   # a built array's sides
    options = sorted({o for k in np.unique(tiles["K"]) for h in np.unique(tiles["H"])
                      for w in np.unique(tiles["W"])
                      for o in parallel_candidates(hardware.pes, min(int(k), bound[0]),
                                                   min(int(h), bound[1]),
                                                   min(int(w), bound[2]))})
    blocks = {}
    for d, i in (("K", 0), ("H", 1), ("W", 2)):
        for per in {o[i] for o in options}:
            table = np.array([morph.block_counts(c, per) for c in l1_capacity[d]["classes"]])
            blocks[d, per] = table[index[d]]
    c_tiles = np.array([morph.channel_tiles(c) for c in l1_capacity["C"]["classes"]])[index["C"]]
    energy = np.full((len(index["K"]), len(options)), np.inf)
    cycles = np.full_like(energy, np.inf)
    outputs = layer.operand_words()["psums"]
    for j, (kp, hp, wp) in enumerate(options):
        pe = morph.pe_counts(layer, blocks["K", kp], blocks["H", hp], blocks["W", wp],
                             c_tiles, hardware.block_overhead)
        ok = (kp <= tiles["K"]) & (hp <= tiles["H"]) & (wp <= tiles["W"])
        l1_accesses = pe["input_reads"] + pe["weight_reads"] + 2 * pe["drains"] - outputs
        e = hardware.energy_pj["l1"] * l1_accesses
        energy[:, j] = np.where(ok, e, np.inf)
        cycles[:, j] = np.where(ok, pe["compute"], np.inf)
    return energy, cycles, options


def _score(objective, energy, cycles):
    if objective == "energy":
        return energy
    if objective == "cycles":
        return cycles
    return energy * cycles


def _l2_stage(layer, hardware, candidates=None):
    """Every legal L2 tile (index arrays into the per-dimension candidates) and, for each
    outer order, the energy and cycles of its DRAM-L2 traffic: ``[order, tile]``."""
    candidates = dict(candidates or {})
    for d in DIMS:
        candidates.setdefault(d, tile_candidates(layer.size(d)))
    whole = {d: [(0, layer.size(d))] for d in DIMS}
    axes, capacity = _axes(layer, whole, candidates)
    index, _ = _combine(layer, axes, capacity, "l2", hardware)
    if len(index["K"]) == 0:
        raise morph.MappingError([morph.Violation(
            f"no mapping fits: even the smallest tiles exceed the L2 "
            f"({hardware.l2_banks} banks of {hardware.l2_bank_words} words)", level="l2")])
    terms = morph.level_terms(layer, axes, index, batch_loop=True)
    energy, cycles = _transfer_costs(layer, terms, all_orders(), True, hardware, "dram",
                                     hardware.dram_words_per_cycle, hardware.dram_latency)
    return {"axes": axes, "capacity": capacity, "index": index, "terms": terms,
            "energy": energy, "cycles": cycles}


def _l1_stage(layer, hardware, l2_tile):
    """Under one L2 tile: every legal L1 tile and, for each inner order, the energy and
    cycles of its L2-L1 traffic (``[order, tile]``), and for each PE block those of the
    PE side (``[tile, block]``); None when no L1 tile fits."""
    parents = {d: morph.tiles(layer.size(d), t) for d, t in zip(DIMS, l2_tile)}
    candidates = {d: tile_candidates(t) for d, t in zip(DIMS, l2_tile)}
    axes, capacity = _axes(layer, parents, candidates)
    index, _ = _combine(layer, axes, capacity, "l1", hardware)
    if len(index["K"]) == 0:
        return None
    terms = morph.level_terms(layer, axes, index, batch_loop=False)
    energy, cycles = _transfer_costs(layer, terms, all_orders(), False, hardware, "l2",
                                     hardware.l2_words_per_cycle, 0)
    pe_energy, pe_cycles, options = _pe_costs(layer, capacity, index, hardware)
    return {"capacity": capacity, "index": index, "energy": energy, "cycles": cycles,
            "pe_energy": pe_energy, "pe_cycles": pe_cycles, "options": options}


def _lower_bounds(layer, hardware, stage):
    """Per L2 tile, lower bounds of the energy and cycles of the L2-L1 and PE parts."""
    axes, index = stage["axes"], stage["index"]
    # An L1 keeps nothing across L2 steps, so each step brings the L2 tile of inputs and
    # weights down at least once, and sends its partial sums up once and (but at
    # channel 0) back down once.
    trips = {d: axes[d]["trips"][index[d], 0] for d in DIMS}
    (term,) = stage["terms"]
    every_step = {}
    for op in OPERANDS:
        words, _ = term["ops"][op]
        others = math.prod(trips[d] for d in DIMS if d not in morph.RELEVANT[op])
        every_step[op] = words * others * (layer.N if op == "weights" else 1)
    outputs = layer.operand_words()["psums"]
    words = every_step["inputs"] + every_step["weights"] + 2 * every_step["psums"] - outputs
    l1_energy = words * (hardware.energy_pj["l2"] + hardware.energy_pj["l1"])
    l1_cycles = words / hardware.l2_words_per_cycle
    # The PEs: any block Kp x (Hp Wp <= q) takes at least ceil(K / Kp) filter blocks and
    # Ho Wo / q position blocks; one drain per output and C step, a load on all but the
    # first.
    inside = math.prod(morph.inside_taps(layer, d) for d in "FHW")
    reads, compute = math.inf, math.inf
    for kp in range(1, min(layer.K, hardware.pes) + 1):
        q = min(hardware.pes // kp, layer.Ho * layer.Wo)
        k_blocks, hw_blocks = -(-layer.K // kp), layer.Ho * layer.Wo / q
        reads = min(reads, layer.N * layer.C * (k_blocks * inside
                                                + layer.K * layer.Fo * hw_blocks * layer.taps))
        compute = min(compute, layer.N * k_blocks * layer.Fo * hw_blocks * layer.C * layer.taps)
    pe_energy = hardware.energy_pj["l1"] * (reads + (2 * trips["C"] - 1) * outputs)
    return l1_energy + pe_energy, l1_cycles + compute


def outer_space(layer, hardware=morph.DEFAULT_HARDWARE):
    """The DRAM-L2 energy (pJ) of every legal L2 tile under every outer order, flat."""
    return _l2_stage(layer, hardware)["energy"].ravel()


def inner_space(layer, hardware, mapping):
    """The total energy (pJ) of every legal L1 tile, inner order and PE block under
    ``mapping``'s L2 tile and outer order, flat."""
    stage = _l1_stage(layer, hardware, mapping.l2_tile)
    upper = morph.counts(layer, mapping, hardware).accesses("dram") * (
        hardware.energy_pj["dram"] + hardware.energy_pj["l2"])
    pe = stage["pe_energy"]
    total = (upper + layer.macs * hardware.energy_pj["mac"]
             + stage["energy"][:, :, None] + pe[None, :, :])
    return total[np.isfinite(total)]


def best_mapping(layer, hardware=morph.DEFAULT_HARDWARE, objective="energy", *, max_l2=64,
                 candidates=None):
    """The best mapping of ``layer`` on ``hardware`` for ``objective`` (see the module's
    docstring for the space and the bound): a :class:`SearchResult`.

    ``candidates`` may map dimensions to their own L2 tile candidates (for tests and
    quick runs); ``max_l2`` caps the L2 tiles expanded."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    max_l2 = check_int("max_l2", max_l2, 1)
    started = time.perf_counter()
    stage = _l2_stage(layer, hardware, candidates)
    dram_e, dram_c = stage["energy"], stage["cycles"]
    mac_e = layer.macs * hardware.energy_pj["mac"]
    rest_e, rest_c = _lower_bounds(layer, hardware, stage)
    lower_e = dram_e.min(axis=0) + rest_e + mac_e
    lower_c = dram_c.min(axis=0) + rest_c
    lower = _score(objective, lower_e, lower_c)

    tiles_count = len(stage["index"]["K"])
    best, expanded, evaluated = None, 0, len(all_orders()) * tiles_count
    queue = np.argsort(lower, kind="stable")
    stopped = len(queue)
    for rank, row in enumerate(queue):
        if (best is not None and lower[row] >= best[0]) or expanded == max_l2:
            stopped = rank
            break
        expanded += 1
        l2_tile = tuple(int(stage["capacity"][d]["tile"][stage["index"][d][row]]) for d in DIMS)
        found, scored = _expand(layer, hardware, objective, l2_tile, dram_e[:, row],
                                dram_c[:, row], mac_e)
        evaluated += scored
        if found is not None and (best is None or found[0] < best[0]):
            best = found
    if best is None:
        raise morph.MappingError([morph.Violation(
            f"no L1 tile fits under any of the {expanded} best L2 tiles: the L1 "
            f"({hardware.l1_banks} banks of {hardware.l1_bank_words} words) is too small",
            level="l1")])
    cost, mapping = best
    floor = float(lower[queue[stopped:]].min()) if stopped < len(queue) else math.inf
    proven = floor >= cost
    counts = morph.counts(layer, mapping, hardware)
    energy = counts.energy_pj(hardware)
    exact = float(_score(objective, energy["total"], counts.cycles["total"]))
    return SearchResult(
        mapping=mapping, counts=counts, energy_pj=energy, objective=objective, cost=exact,
        proven=bool(proven), gap=0.0 if proven else max(0.0, 1 - floor / exact),
        l2_tiles=int(tiles_count), l2_expanded=expanded, evaluated=int(evaluated),
        seconds=time.perf_counter() - started)


def _expand(layer, hardware, objective, l2_tile, dram_e, dram_c, mac_e):
    """The best L1 tile, inner order, PE block and outer order under one L2 tile:
    ``((cost, mapping) or None when no L1 tile fits, mappings scored)``."""
    stage = _l1_stage(layer, hardware, l2_tile)
    if stage is None:
        return None, 0
    orders = all_orders()
    capacity, index, options = stage["capacity"], stage["index"], stage["options"]
    scored = len(orders) * len(index["K"]) * len(options)
    # Each part's energy-best and cycle-best choice: for energy or cycles alone the
    # matching choices are exact, for EDP the best product of the eight combinations.
    parts = ((dram_e, dram_c, 0), (stage["energy"], stage["cycles"], 0),
             (stage["pe_energy"], stage["pe_cycles"], 1))
    picks = [(np.argmin(e, axis=axis), np.argmin(c, axis=axis)) for e, c, axis in parts]
    wanted = {"energy": [(0, 0, 0)], "cycles": [(1, 1, 1)]}.get(
        objective, list(itertools.product(range(2), repeat=3)))
    rows = np.arange(len(index["K"]))
    best = None
    for a, b, c in wanted:
        outer, inner, block = picks[0][a], picks[1][b], picks[2][c]
        energy = dram_e[outer] + stage["energy"][inner, rows] + stage["pe_energy"][rows, block] + mac_e
        cycles = dram_c[outer] + stage["cycles"][inner, rows] + stage["pe_cycles"][rows, block]
        score = _score(objective, energy, cycles)
        i = int(np.argmin(score))
        if best is None or score[i] < best[0]:
            best = (float(score[i]), int(outer), int(inner[i]), int(block[i]), i)
    cost, outer, inner, block, i = best
    l1_tile = tuple(int(capacity[d]["tile"][index[d][i]]) for d in DIMS)
    need2 = morph.tile_words(layer, l2_tile)
    need1 = morph.tile_words(layer, l1_tile, within=l2_tile)
    mapping = morph.Mapping(
        outer_order=orders[outer], inner_order=orders[inner], l2_tile=l2_tile,
        l1_tile=l1_tile, parallel=options[block],
        l2_banks=tuple(minimal_banks(need2[op], hardware.l2_bank_words) for op in OPERANDS),
        l1_banks=tuple(minimal_banks(need1[op], hardware.l1_bank_words) for op in OPERANDS))
    return (cost, mapping), scored


# ---- the fixed-dataflow baseline: one mapping for every layer of a network ----------

def clip(mapping, layer):
    """``mapping`` with its tiles and PE block shrunk to fit a smaller ``layer``."""
    l2 = tuple(min(t, s) for t, s in zip(mapping.l2_tile, layer.shape))
    l1 = tuple(min(t, s) for t, s in zip(mapping.l1_tile, l2))
    limits = (l1[0], l1[3], l1[4])
    parallel = tuple(min(p, s) for p, s in zip(mapping.parallel, limits))
    return dataclasses.replace(mapping, l2_tile=l2, l1_tile=l1, parallel=parallel)


def _total_energy(mapping, network, hardware):
    total = 0.0
    for layer in network:
        clipped = clip(mapping, layer)
        if morph.check(layer, clipped, hardware):
            return math.inf
        total += morph.counts(layer, clipped, hardware).energy_pj(hardware)["total"]
    return total


def _neighbours(mapping):
    """Every mapping one change away: one tile size doubled or halved, one PE side
    doubled or halved (the other sides adjusted to stay within the array), two loops of
    one order swapped, one operand's banks one more or one fewer."""
    out = []
    for level in ("l2_tile", "l1_tile"):
        tile = getattr(mapping, level)
        for i in range(5):
            for value in (tile[i] * 2, tile[i] // 2):
                if value >= 1:
                    out.append(dataclasses.replace(mapping, **{level: tile[:i] + (value,) + tile[i + 1:]}))
    for i in range(3):
        for value in (mapping.parallel[i] * 2, mapping.parallel[i] // 2):
            if value >= 1:
                out.append(dataclasses.replace(mapping, parallel=mapping.parallel[:i] + (value,)
                                   + mapping.parallel[i + 1:]))
    for level in ("outer_order", "inner_order"):
        order = getattr(mapping, level)
        for i in range(5):
            for j in range(i + 1, 5):
                swapped = list(order)
                swapped[i], swapped[j] = swapped[j], swapped[i]
                out.append(dataclasses.replace(mapping, **{level: "".join(swapped)}))
    for level in ("l2_banks", "l1_banks"):
        banks = getattr(mapping, level)
        for i in range(3):
            for value in (banks[i] + 1, banks[i] - 1):
                if value >= 1:
                    out.append(dataclasses.replace(mapping, **{level: banks[:i] + (value,) + banks[i + 1:]}))
    return out


def fixed_mapping(network, hardware, starts):
    """The best single mapping for every layer of ``network``: the best of ``starts``
    (mappings, each legal on some layer), then a descent over :func:`_neighbours` until
    no single change lowers the total energy. Returns ``(mapping, total pJ, tried)``."""
    scored = [(_total_energy(m, network, hardware), i, m) for i, m in enumerate(starts)]
    best_energy, _, best = min(scored, key=lambda s: (s[0], s[1]))
    tried = len(starts)
    seen = {best}
    improved = True
    while improved:
        improved = False
        for candidate in _neighbours(best):
            if candidate in seen:
                continue
            seen.add(candidate)
            tried += 1
            energy = _total_energy(candidate, network, hardware)
            if energy < best_energy:
                best, best_energy, improved = candidate, energy, True
                break
    return best, best_energy, tried
