"""Golden ZV model: format, round trip, malformed input, RL / ZL sizes."""

import zlib

import numpy as np
import pytest

from dnnhw.golden.zvc import (
    ZVCFormatError, mask_slots, compress_window, compress_frame, decompress_frame,
    zv_compressed_bits, rl_compressed_bits, zl_compressed_bits, compression_ratios, relu_like,
)


def _random_frame(rng, n_windows, lanes, width, density):
    values = rng.integers(1, 1 << width, size=(n_windows, lanes), dtype=np.uint64)
    return np.where(rng.random((n_windows, lanes)) < density, values, 0).astype(np.uint64)


def test_mask_slots():
    assert mask_slots(32, 32) == 1
    assert mask_slots(8, 16) == 1
    assert mask_slots(32, 8) == 4
    assert mask_slots(16, 8) == 2


def test_window_layout_by_hand():
    # lanes 4, width 8: mask LSB-first in one slot, then the non-zeros in order.
    slots = compress_window([0, 7, 0, 255], width=8)
    assert slots.tolist() == [0b1010, 7, 255]
    assert compress_window([0, 0, 0, 0], width=8).tolist() == [0]
    # lanes 32, width 8: the mask takes 4 slots, low mask byte first.
    window = [0] * 32
    window[0], window[9], window[31] = 1, 2, 3
    slots = compress_window(window, width=8)
    assert slots.tolist() == [0x01, 0x02, 0x00, 0x80, 1, 2, 3]


def test_paper_window_best_and_worst_case():
    # The paper's 128-byte window (32 x 4 B): 4 B when all zero, 132 B when dense.
    zero = np.zeros((1, 32), dtype=np.uint64)
    dense = np.full((1, 32), 0xDEADBEEF, dtype=np.uint64)
    assert len(compress_window(zero[0], width=32)) * 4 == 4
    assert len(compress_window(dense[0], width=32)) * 4 == 132


def test_frame_packing_and_length():
    # lanes 4 width 8: windows of 1 + nnz slots packed into 4-slot words with no gaps.
    windows = np.array([[1, 2, 3, 4], [0, 0, 0, 0], [0, 5, 0, 0]], dtype=np.uint64)
    words, last_length = compress_frame(windows, width=8)
    flat = [0b1111, 1, 2, 3, 4, 0, 0b0010, 5]
    assert words.tolist() == [flat[0:4], flat[4:8]]
    assert last_length == 4
    words, last_length = compress_frame(windows[1:], width=8)
    assert words.tolist() == [[0, 0b0010, 5, 0]]
    assert last_length == 3


@pytest.mark.parametrize("lanes", [4, 8, 16, 32])
@pytest.mark.parametrize("width", [8, 16, 32])
@pytest.mark.parametrize("density", [0.0, 0.01, 0.1, 0.5, 0.9, 1.0])
def test_round_trip(lanes, width, density):
    rng = np.random.default_rng(lanes * 1000 + width + int(density * 100))
    for n_windows in (1, 2, 7, 50):
        windows = _random_frame(rng, n_windows, lanes, width, density)
        words, last_length = compress_frame(windows, width=width)
        slots = n_windows * mask_slots(lanes, width) + np.count_nonzero(windows)
        assert (words.shape[0] - 1) * lanes + last_length == slots
        assert np.array_equal(decompress_frame(words, last_length, width=width), windows)


def test_trailing_zero_window_is_not_padding():
    windows = np.array([[3, 0, 0, 0], [0, 0, 0, 0]], dtype=np.uint64)
    words, last_length = compress_frame(windows, width=8)
    assert last_length == 3
    assert np.array_equal(decompress_frame(words, last_length, width=8), windows)
    # Treating the zero mask as padding would lose the second window.
    assert len(decompress_frame(words, 2, width=8)) == 1


@pytest.mark.parametrize("words,last_length,width,message", [
    ([[0b0111, 1, 2, 0]], 3, 8, "truncated frame: the mask at slot 0 announces 3"),
    ([[0b0001, 1, 0, 0]], 3, 8, None),  # a window, then a trailing all-zero window
    ([[0b0011, 1, 0, 0]], 2, 8, r"announces 2 non-zero element\(s\) but only 1 slot\(s\) remain"),
    ([[0, 0, 0, 0], [0, 0, 0, 0]], 1, 8, None),
    ([[0x10, 0, 0, 0]], 1, 8, "bits set at or past lane 4"),
    ([[1, 9, 0, 0]], 2, 8, None),
    ([[1, 9, 0, 5]], 2, 8, "non-zero padding after the frame's 2 valid slots"),
])
def test_malformed_frames(words, last_length, width, message):
    words = np.array(words, dtype=np.uint64)
    if message is None:
        decompress_frame(words, last_length, width=width)  # well formed
        return
    with pytest.raises(ZVCFormatError, match=message):
        decompress_frame(words, last_length, width=width)


def test_frame_ending_inside_a_mask():
    # lanes 32 width 8: a mask takes 4 slots; a frame with 2 slots after a window is bad.
    windows = np.zeros((1, 32), dtype=np.uint64)
    words, last_length = compress_frame(windows, width=8)
    with pytest.raises(ZVCFormatError, match="frame ends inside a mask"):
        decompress_frame(words, last_length + 2, width=8)


@pytest.mark.parametrize("call,message", [
    (lambda: compress_frame(np.zeros((1, 4), dtype=np.uint64), width=12), "width must be one of 8, 16, 32"),
    (lambda: compress_frame(np.full((1, 4), 256), width=8), "unsigned 8-bit values"),
    (lambda: compress_frame(np.zeros(4, dtype=np.uint64), width=8), "2-D array"),
    (lambda: compress_frame(np.zeros((1, 4)), width=8), "must hold integers"),
    (lambda: decompress_frame(np.zeros((1, 4), dtype=np.uint64), 5, width=8), r"last_length must be in 1..4"),
    (lambda: rl_compressed_bits(np.zeros(4, dtype=np.int8), width=8, run_bits=0), r"run_bits must be in 1..16"),
    (lambda: relu_like((4,), 1.5), r"density must be in \[0, 1\]"),
])
def test_errors_name_the_argument(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_zv_size_matches_formula_for_fp32():
    # REFERENCE.md: for fp32 words the ZV ratio of a window is 32N / (N + 32 nnz).
    rng = np.random.default_rng(3)
    tensor = relu_like((32 * 64,), 0.3, rng=rng)
    nnz = np.count_nonzero(tensor)
    windows = tensor.size // 32
    bits = zv_compressed_bits(tensor, lanes=32, width=32)
    assert bits == -(-(windows + nnz) // 32) * 32 * 32
    assert abs(bits - (windows * 32 + 32 * nnz)) < 32 * 32


def test_rl_by_hand():
    # run_bits=2 (max run 3): [5, 0, 0, 0, 0, 0, 7, 0]
    # tokens: (0,5), (3,0) filler, (1,7), trailing (1,0) -> 4 tokens of 2 + 8 bits.
    tensor = np.array([5, 0, 0, 0, 0, 0, 7, 0], dtype=np.uint8)
    assert rl_compressed_bits(tensor, width=8, run_bits=2) == 4 * 10
    assert rl_compressed_bits(np.zeros(0, dtype=np.uint8), width=8) == 0


def test_zl_is_zlib_of_the_words():
    tensor = np.arange(100, dtype=np.int16)
    assert zl_compressed_bits(tensor, width=16) == 8 * len(zlib.compress(tensor.astype("<u2").tobytes(), 6))


def test_ratios_follow_density():
    ratios = [compression_ratios(relu_like((64, 27, 27), d, rng=1))["zv"] for d in (0.49, 0.36, 0.31, 0.22)]
    assert ratios == sorted(ratios)
    r = compression_ratios(relu_like((64, 27, 27), 0.22, rng=1))
    assert abs(r["density"] - 0.22) < 0.01
    assert 3.5 < r["zv"] < 32 / (1 + 32 * 0.22) * 1.05
