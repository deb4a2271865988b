"""The Morph walk (:mod:`dnnhw.golden.morph_walk`) against figures worked out by hand.

Each test builds a tiny layer whose counts can be read off the rules of ``docs/morph.md``
and checks the walk's exact figures. The expected numbers are written out with the
reasoning in comments, not computed by a second model.
"""

import dataclasses

import numpy as np
import pytest

from dnnhw.golden.morph import Hardware, Layer, Mapping, MappingError, check
from dnnhw.golden.morph_walk import walk
from morph_cases import ROOMY, hand_cases, random_case

#: Round timing constants: DRAM latency 10, 2 words/cycle; L2 4 words/cycle; 1 cycle of
#: block overhead.
HW = ROOMY


def mapping(outer="KCFHW", inner="KCFHW", l2=None, l1=None, parallel=(1, 1, 1)):
    return Mapping(outer_order=outer, inner_order=inner, l2_tile=l2, l1_tile=l1 or l2,
                   parallel=parallel, l2_banks=(1, 1, 1), l1_banks=(1, 1, 1))


def traffic(counts, level, operand):
    t = counts.traffic[level][operand]
    return t["reads"], t["writes"]


def row(W, S=1, pad=0, C=1, K=1, N=1, stride=1):
    """A 1D layer along the columns: F = H = 1, T = R = 1."""
    return Layer(C=C, F=1, H=1, W=W, K=K, T=1, R=1, S=S, N=N, stride=(1, 1, stride),
                 padding=(0, 0, pad))


# --- one tile ---------------------------------------------------------------------------

CONV = Layer(C=3, F=4, H=5, W=5, K=4, T=3, R=3, S=3, padding=1)   # out 4 x 4 x 5 x 5


def test_one_tile_moves_each_tensor_once():
    full = CONV.shape                                 # (4, 3, 4, 5, 5)
    c = walk(CONV, mapping(l2=full, parallel=(4, 5, 5)), HW)
    inputs, weights, outputs = 3 * 4 * 5 * 5, 4 * 3 * 27, 4 * 4 * 5 * 5   # 300, 324, 400
    assert traffic(c, "dram", "inputs") == (inputs, 0)
    assert traffic(c, "dram", "weights") == (weights, 0)
    assert traffic(c, "dram", "psums") == (0, outputs)
    assert traffic(c, "l2", "inputs") == (inputs, inputs)
    assert traffic(c, "l2", "weights") == (weights, weights)
    # The L2 psums: written once from the L1, read once to DRAM; no fill (channel 0).
    assert traffic(c, "l2", "psums") == (outputs, outputs)
    assert c.spills == 0 and c.refills == 0
    assert c.macs == CONV.macs == 400 * 81
    # PE blocks: one per output frame (4 x 5 x 5 PEs), 3 * 27 cycles each.
    # L1 psums: no accumulator loads (channel 0), 400 drains, 400 written back.
    assert traffic(c, "l1", "psums") == (outputs, outputs)
    # Inputs: along an axis of n outputs with 3 taps and padding 1, 3n - 2 (output, tap)
    # pairs fall inside: 10 x 13 x 13 per channel, read once for the 4 filters.
    assert traffic(c, "l1", "inputs") == (3 * 10 * 13 * 13, inputs)
    # Weights: each of the 4 blocks reads all 324 weights once.
    assert traffic(c, "l1", "weights") == (4 * weights, weights)
    # Cycles: DRAM fills 10 + 300/2, 10 + 324/2, write-back 400/2; L2 300/4 + 324/4 + 400/4;
    # compute 4 blocks x (81 + 1).
    assert c.cycles == {"dram": 160 + 172 + 200, "l2": 75 + 81 + 100, "compute": 4 * 82,
                        "total": 532 + 256 + 328}
    assert c.pes == HW.pes


def test_one_pe_per_block_cycles_and_weight_reads():
    # 1D: W = 4, S = 2, no padding: Wo = 3; C = 2, K = 2; Kp = Wp = 1: 2 x 3 blocks.
    layer = row(W=4, S=2, C=2, K=2)
    c = walk(layer, mapping(l2=(2, 2, 1, 1, 3)), HW)
    assert c.cycles["compute"] == 6 * (2 * 2 + 1)
    assert c.macs == 2 * 3 * 2 * 2 == 24
    # Every cycle reads one input and one weight word: 24 each.
    assert traffic(c, "l1", "inputs")[0] == 24
    assert traffic(c, "l1", "weights")[0] == 24
    assert c.compute_utilization == pytest.approx(24 / (30 * HW.pes))


# --- reuse and re-fetch -----------------------------------------------------------------

def test_c_outermost_spills_every_partial_tile():
    # C = 3 in L2 tiles of 1, outermost; two K tiles: each psum tile is evicted after each
    # of channels 0 and 1 (a spill) and refilled for channels 1 and 2.
    outputs = 4 * 4 * 5 * 5
    m = mapping(outer="CKFHW", l2=(2, 1, 4, 5, 5), l1=(1, 1, 2, 3, 5), parallel=(1, 3, 5))
    c = walk(CONV, m, HW)
    assert c.spills == (3 - 1) * outputs
    assert c.refills == (3 - 1) * outputs
    assert traffic(c, "dram", "psums") == (2 * outputs, 3 * outputs)
    # With C innermost the psum tile stays in the L2 while the channels go by.
    c = walk(CONV, Mapping(**{**m.as_dict(), "outer_order": "KFHWC"}), HW)
    assert c.spills == 0 and c.refills == 0
    assert traffic(c, "dram", "psums") == (0, outputs)


def test_single_psum_tile_never_spills():
    # One psum tile: C tiled outermost changes nothing, the tile is held throughout.
    c = walk(CONV, mapping(outer="CKFHW", l2=(4, 1, 4, 5, 5), l1=(1, 1, 1, 1, 1)), HW)
    assert c.spills == 0
    assert traffic(c, "dram", "psums") == (0, 400)


def test_k_outside_the_input_loops_refetches_inputs():
    # W = 6, S = 3: Wo = 4 in L2 tiles of 2, reading inputs 0..3 and 2..5 (4 words each,
    # the halo fetched twice). K = 2 in tiles of 1.
    layer = row(W=6, S=3, K=2)
    k_outer = walk(layer, mapping(outer="KWCFH", l2=(1, 1, 1, 1, 2)), HW)
    w_outer = walk(layer, mapping(outer="WKCFH", l2=(1, 1, 1, 1, 2)), HW)
    assert traffic(k_outer, "dram", "inputs")[0] == 2 * (4 + 4)
    assert traffic(w_outer, "dram", "inputs")[0] == 4 + 4
    # And the weights the other way round: 2 fills of 3 words, or 4.
    assert traffic(k_outer, "dram", "weights")[0] == 2 * 3
    assert traffic(w_outer, "dram", "weights")[0] == 4 * 3
    # DRAM cycles: K outer 4 input fills of 10 + 2 and 2 weight fills of 10 + 2, 4 psum
    # write-backs of 1 (2 words at 2 a cycle).
    assert k_outer.cycles["dram"] == 4 * 12 + 2 * 12 + 4 * 1


def test_l1_is_empty_at_every_l2_step():
    # Two L2 steps that differ only in K: the L2 keeps the input tile, the L1 refills it.
    layer = row(W=5, S=2, K=2)                      # Wo = 4, inputs 5 words
    c = walk(layer, mapping(l2=(1, 1, 1, 1, 4)), HW)
    assert traffic(c, "dram", "inputs") == (5, 0)
    assert traffic(c, "l2", "inputs") == (2 * 5, 5)
    assert traffic(c, "l1", "inputs")[1] == 2 * 5


def test_weights_stay_in_the_l2_across_images():
    layer = Layer(C=2, F=2, H=3, W=3, K=2, T=1, R=2, S=2, N=2, padding=0)  # out 2x2x2x2
    c = walk(layer, mapping(l2=layer.shape, parallel=(2, 2, 2)), HW)
    assert traffic(c, "dram", "weights") == (2 * 2 * 4, 0)
    assert traffic(c, "dram", "inputs") == (2 * 2 * 2 * 3 * 3, 0)
    assert traffic(c, "dram", "psums") == (0, 2 * 2 * 2 * 2 * 2)
    # But the L1 is emptied at each L2 step (one per image): weights filled twice.
    assert traffic(c, "l2", "weights") == (2 * 16, 16)


# --- partial sums in the L1 -------------------------------------------------------------

def test_accumulator_loads_and_l1_psum_fills():
    # C = 3, K = 2, 1 x 2 x 2 outputs, 1x1x1 filters: 8 outputs. One L2 tile; L1 tiles of
    # one channel and one filter, C outermost: the L1 psum tile changes at every L1 step.
    layer = Layer(C=3, F=1, H=2, W=2, K=2, T=1, R=1, S=1, padding=0)
    c = walk(layer, mapping(inner="CKFHW", l2=(2, 3, 1, 2, 2), l1=(1, 1, 1, 2, 2),
                            parallel=(1, 2, 2)), HW)
    # 6 L1 steps of 4 outputs: loads at the 4 steps past channel 0 (16), drains 24;
    # write-backs 24 (each step's tile), fills from the L2 at the 4 steps past channel 0.
    assert traffic(c, "l1", "psums") == (16 + 24, 24 + 16)
    assert traffic(c, "l2", "psums") == (16 + 8, 24)
    assert c.cycles["l2"] == (6 + 4) * 1 + 3 * 1 + 6 * 1   # psums; inputs 3 x 4; weights
    # C innermost: the L1 psum tile is held across the channels: no L1 fills.
    c = walk(layer, mapping(inner="KFHWC", l2=(2, 3, 1, 2, 2), l1=(1, 1, 1, 2, 2),
                            parallel=(1, 2, 2)), HW)
    assert traffic(c, "l1", "psums") == (16 + 8, 24)
    assert traffic(c, "l2", "psums") == (8, 8)


def test_channel_zero_is_absolute():
    # L2 C tiles of 2 (channels 0-1, 2-3), L1 C tiles of 2: the L1 step of channels 2-3
    # starts an L2 tile but not the output, so its accumulators load.
    layer = Layer(C=4, F=1, H=1, W=3, K=1, T=1, R=1, S=1, padding=0)     # 3 outputs
    c = walk(layer, mapping(outer="KFHWC", l2=(1, 2, 1, 1, 3), parallel=(1, 1, 3)), HW)
    # L1 reads: 3 loads (channels 2-3) + 2 x 3 write-backs; writes: 2 x 3 drains + the
    # fill of channels 2-3's L1 tile from the L2 (3).
    assert traffic(c, "l1", "psums") == (3 + 2 * 3, 2 * 3 + 3)
    assert c.spills == 0 and c.refills == 0


# --- the fixed costs of a PE array -----------------------------------------------------

def test_array_costs_by_hand():
    # W = 2, C = 2, K = 1, 1x1x1 filters: inputs 4 words, weights 2, outputs 2, 4 MACs.
    # Tiles of one everywhere, C outermost: L2 steps (c0, w0), (c0, w1), (c1, w0), (c1, w1),
    # one L1 step each. The one psum tile of each w is spilled after channel 0 and refilled.
    layer = row(W=2, C=2)
    hw = dataclasses.replace(HW, dram_write_latency=3, l2_latency=2, l2_step_overhead=5,
                             l1_step_overhead=7)
    c = walk(layer, mapping(outer="CKFHW", l2=(1, 1, 1, 1, 1)), hw)
    assert c.spills == c.refills == 2
    # DRAM (latency 10, 2 words a cycle): a fill of 1 word 10 + 1, a write-back 3 + 1.
    #   (c0, w0): input 11, weight 11, no psum fill (channel 0), step 5     = 27
    #   (c0, w1): spill of w0 4, input 11, weight resident, step 5         = 20
    #   (c1, w0): spill of w1 4, input 11, weight 11, refill 11, step 5    = 42
    #   (c1, w1): output w0 4, input 11, weight resident, refill 11, step 5 = 31
    #   end: output w1 4                                                    =  4
    # L2 to L1 (4 words a cycle): any transfer of 1 word 2 + 1; the L1 is empty at each
    # L2 step: input 3, weight 3, step 7, the write-back at the step's end 3, and on
    # channel 1 a psum fill from the L2 3:  16 + 16 + 19 + 19.
    # Compute: 4 blocks of 1 channel x 1 tap + block_overhead 1.
    assert c.cycles == {"dram": 27 + 20 + 42 + 31 + 4, "l2": 16 + 16 + 19 + 19,
                        "compute": 4 * 2, "total": 124 + 70 + 8}
    # The same by events: 8 DRAM fills (4 inputs, 2 weights, 2 refills) of 10 + 1, 4
    # write-backs of 3 + 1, 4 L2 steps; 14 L2-L1 transfers (4 inputs, 4 weights, 2 psum
    # fills, 4 write-backs) of 2 + 1, 4 L1 steps.
    assert c.cycles["dram"] == 8 * 11 + 4 * 4 + 4 * 5
    assert c.cycles["l2"] == 14 * 3 + 4 * 7
    # With the four constants at 0 (HW) only the beats and the fills' DRAM latency remain.
    base = walk(layer, mapping(outer="CKFHW", l2=(1, 1, 1, 1, 1)), HW)
    assert base.cycles["dram"] == 8 * 11 + 4 * 1 and base.cycles["l2"] == 14 * 1


# --- padding, halos and ragged tiles ----------------------------------------------------

def test_padded_taps_are_not_read():
    # W = 3, S = 3, padding 1: Wo = 3; outputs 0 and 2 have one tap in the padding:
    # 2 + 3 + 2 = 7 taps inside per channel; C = 2, K = 2 = Kp.
    layer = row(W=3, S=3, pad=1, C=2, K=2)
    c = walk(layer, mapping(l2=(2, 2, 1, 1, 3), parallel=(2, 1, 3)), HW)
    assert c.macs == 2 * 3 * 2 * 3 == 36                  # padded taps included
    assert traffic(c, "l1", "inputs")[0] == 2 * 7 == 14 < c.macs // 2
    assert traffic(c, "l1", "weights")[0] == 2 * 3 * 2     # 6 cycles x 2 filters
    # One position per block: 3 blocks, each cycle one weight word per filter.
    c = walk(layer, mapping(l2=(2, 2, 1, 1, 3), parallel=(2, 1, 1)), HW)
    assert traffic(c, "l1", "inputs")[0] == 14
    assert traffic(c, "l1", "weights")[0] == 3 * 6 * 2
    # Without padding every tap is read: MACs / Kp.
    plain = row(W=5, S=3, C=2, K=2)
    c = walk(plain, mapping(l2=(2, 2, 1, 1, 3), parallel=(2, 1, 3)), HW)
    assert traffic(c, "l1", "inputs")[0] == c.macs // 2 == 18


def test_padding_is_not_moved():
    # H = 3, padding 1, 3 taps: the one tile's rows -1..3 clip to 0..2.
    layer = Layer(C=1, F=1, H=3, W=1, K=1, T=1, R=3, S=1, padding=(0, 1, 0))   # Ho = 3
    c = walk(layer, mapping(l2=(1, 1, 1, 3, 1)), HW)
    assert traffic(c, "dram", "inputs")[0] == 3
    # Row tiles of 1: rows -1..1, 0..2, 1..3 clip to 2, 3, 2 words.
    c = walk(layer, mapping(l2=(1, 1, 1, 1, 1)), HW)
    assert traffic(c, "dram", "inputs")[0] == 2 + 3 + 2


def test_tiles_entirely_in_the_padding():
    # R = 1 with padding 1: output rows 0 and 4 of Ho = 5 read only padding. Row tiles of
    # 1: 5 input fills of 0, 2, 2, 2, 0 words (W = 2, no column padding).
    # Interpretation: an input tile fill of 0 words is still a fill and pays the DRAM
    # latency (docs/morph.md charges "each tile fill").
    layer = Layer(C=1, F=1, H=3, W=2, K=1, T=1, R=1, S=1, padding=(0, 1, 0))
    c = walk(layer, mapping(l2=(1, 1, 1, 1, 2), parallel=(1, 1, 2)), HW)
    assert traffic(c, "dram", "inputs")[0] == 3 * 2
    assert traffic(c, "l1", "inputs")[0] == 3 * 2            # each input read once
    assert c.macs == 5 * 2
    # DRAM: 5 input fills (10 + 0, 10 + 1 x 3, 10 + 0), 1 weight fill (10 + 1),
    # 5 output write-backs of 2 words (1 each).
    assert c.cycles["dram"] == 5 * 10 + 3 + 11 + 5
    # Between the L2 and the L1 an empty fill pays l2_latency too. Per L2 step (one L1
    # step each, the L1 empty): an input fill (0 or 2 words), a weight fill (1), the
    # write-back of 2 outputs; no psum fill (channel 0). 15 transfers of latency 2 on top
    # of 0 + 1 + 1 + 1 + 0 input, 5 weight and 5 write-back beats.
    c = walk(layer, mapping(l2=(1, 1, 1, 1, 2), parallel=(1, 1, 2)),
             dataclasses.replace(HW, l2_latency=2))
    assert c.cycles["l2"] == 3 + 5 + 5 + 15 * 2


def test_ragged_l1_tiles_restart_at_the_l2_origin():
    # W = 8, S = 3: Wo = 6 in L2 tiles of 3 (0-2, 3-5) and L1 tiles of 2 inside each:
    # 0-1, 2, 3-4, 5, reading 4, 3, 4, 3 inputs (a plain tiling by 2 would be 4, 4, 4).
    layer = row(W=8, S=3)
    c = walk(layer, mapping(l2=(1, 1, 1, 1, 3), l1=(1, 1, 1, 1, 2), parallel=(1, 1, 2)),
             HW)
    assert traffic(c, "l1", "inputs")[1] == 4 + 3 + 4 + 3
    assert traffic(c, "dram", "inputs")[0] == 5 + 5           # inputs 0..4 and 3..7
    # PE blocks: 2 + 1 + 2 + 1 positions, one block per L1 tile, 3 + 1 cycles each.
    assert c.cycles["compute"] == 4 * 4
    assert c.macs == 6 * 3


def test_ragged_pe_blocks_idle_at_the_edge():
    # Wo = 5 in blocks of Wp = 2: 2, 2, 1; K = 3 in blocks of Kp = 2: 2, 1.
    layer = row(W=5, C=2, K=3)
    c = walk(layer, mapping(l2=(3, 2, 1, 1, 5), parallel=(2, 1, 2)), HW)
    assert c.cycles["compute"] == 2 * 3 * (2 + 1)
    assert c.macs == 3 * 5 * 2
    assert traffic(c, "l1", "weights")[0] == 3 * 2 * 3     # 3 W blocks x 2 cycles x 3 filters
    assert traffic(c, "l1", "inputs")[0] == 2 * 2 * 5      # 2 K blocks x 2 cycles x 5
    # L1 psums: no loads (channel 0); 15 drains; the write-back to the L2 reads 15.
    assert traffic(c, "l1", "psums") == (15, 15)
    assert traffic(c, "l2", "psums") == (15, 15)


def test_strided_halo():
    # W = 7, S = 1, stride 2: Wo = 4; L2 tiles of 2 outputs (0, 1 and 2, 3) read inputs
    # 0..2 and 4..6: column 3 is fetched by neither; the box includes unused columns 1, 5.
    layer = row(W=7, S=1, stride=2)
    c = walk(layer, mapping(l2=(1, 1, 1, 1, 2)), HW)
    assert traffic(c, "dram", "inputs")[0] == 3 + 3
    assert traffic(c, "l1", "inputs")[0] == 4              # only the taps are read


# --- legality, totals, random cases -----------------------------------------------------

def test_illegal_mapping_raises():
    m = mapping(l2=CONV.shape, parallel=(4, 5, 5))
    small = Hardware(pes=8)
    with pytest.raises(MappingError):
        walk(CONV, m, small)
    tight = Hardware(l1_banks=3, l1_bank_words=100)            # 300 input words in 100
    with pytest.raises(MappingError):
        walk(CONV, m, tight)


def test_hand_cases_macs_and_invariants():
    for name, layer, m, hw in hand_cases():
        c = walk(layer, m, hw)
        outputs = layer.operand_words()["psums"]
        assert c.macs == layer.macs, name
        assert c.refills == c.spills, name
        assert traffic(c, "dram", "psums") == (c.refills, c.spills + outputs), name
        assert c.cycles["total"] == c.cycles["dram"] + c.cycles["l2"] + c.cycles["compute"]


def test_random_cases_are_legal_and_walk():
    rng = np.random.default_rng(20181020)
    ragged = 0
    for _ in range(25):
        layer, m, hw = random_case(rng)
        assert check(layer, m, hw) == []
        c = walk(layer, m, hw)
        outputs = layer.operand_words()["psums"]
        assert c.macs == layer.macs
        assert c.refills == c.spills
        assert traffic(c, "dram", "psums") == (c.refills, c.spills + outputs)
        # One input read per active position and tap inside: at most one per MAC, and
        # without padding at least MACs / Kp (a ragged K block broadcasts to fewer PEs).
        assert traffic(c, "l1", "inputs")[0] <= c.macs
        if not any(layer.padding):
            assert traffic(c, "l1", "inputs")[0] >= c.macs / m.parallel[0]
        ragged += any(size % t for size, t in zip(layer.shape, m.l2_tile))
    assert ragged > 0


def test_l1_capacity_counts_the_tiles_as_placed():
    # W = 2 with padding 3: Wo = 8. L2 tiles of 3 (0-2, 3-5, 6-7), L1 tiles of 2 inside:
    # the L1 tile of outputs 3-4 reads inputs 0..1 (2 words), while a plain tiling by 2
    # (0-1, 2-3, 4-5, 6-7) needs at most 1. The walk asserts every tile fits its banks.
    layer = Layer(C=1, F=1, H=1, W=2, K=1, T=1, R=1, S=1, padding=(0, 0, 3))
    hw = Hardware(pes=2, l2_banks=3, l2_bank_words=4, l1_banks=5, l1_bank_words=1)
    m = Mapping(outer_order="KCFHW", inner_order="KCFHW", l2_tile=(1, 1, 1, 1, 3),
                l1_tile=(1, 1, 1, 1, 2), parallel=(1, 1, 2), l2_banks=(1, 1, 1),
                l1_banks=(2, 1, 2))
    c = walk(layer, m, hw)
    # Output o reads input o - 3. L1 input fills: outputs 0-1, 2 (0 words), 3-4 (inputs
    # 0 and 1), 5, 6-7 (0 words); each input read once.
    assert traffic(c, "l1", "inputs") == (2, 2)
    with pytest.raises(MappingError):
        walk(layer, Mapping(**{**m.as_dict(), "l1_banks": (1, 1, 2)}), hw)
