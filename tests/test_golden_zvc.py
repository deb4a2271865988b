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


# --- streams and the malformed-input contract ------------------------------------------

from dnnhw.golden.zvc import MALFORMED_CLASSES, decompress_stream  # noqa: E402


def _stream(frames, width):
    """Words, lengths, lasts of well-formed frames, by the golden compressor."""
    words, lengths, lasts = [], [], []
    lanes = frames[0].shape[1]
    for frame in frames:
        w, last_length = compress_frame(frame, width=width)
        words += w.tolist()
        lengths += [lanes] * (len(w) - 1) + [last_length]
        lasts += [0] * (len(w) - 1) + [1]
    return words, lengths, lasts


def _hw(words, lengths, lasts, width):
    d = decompress_stream(words, lengths, lasts, width=width, malformed="hardware")
    return ([w for w in d.windows.tolist()], [int(v) for v in d.last],
            [int(v) for v in d.error_at], d)


@pytest.mark.parametrize("lanes,width", [(4, 8), (8, 16), (16, 8), (32, 8), (32, 32)])
def test_stream_well_formed_both_modes(lanes, width):
    rng = np.random.default_rng(lanes * 7 + width)
    frames = [_random_frame(rng, int(rng.integers(1, 9)), lanes, width, d)
              for d in (0.0, 0.3, 1.0, 0.6, 0.05)]
    words, lengths, lasts = _stream(frames, width)
    decoded = decompress_stream(words, lengths, lasts, width=width)
    assert [f.tolist() for f in decoded] == [f.tolist() for f in frames]
    windows, last, error_at, d = _hw(words, lengths, lasts, width)
    assert windows == np.vstack(frames).tolist()
    assert last == [int(k == len(f) - 1) for f in frames for k in range(len(f))]
    assert not any(error_at) and not d.error and d.malformed == [False] * len(frames)
    assert d.frame_windows == [len(f) for f in frames] and d.pending_slots == 0


# The cases of issue 16 at lanes 8, width 16, and what the contract makes of them (worked
# out by hand from the README's rules, not by running the model).
Z8 = [0] * 8


def test_issue16_non_zero_padding():
    windows, last, error_at, d = _hw([[1, 5, 7, 0, 0, 0, 0, 0]], [2], [1], 16)
    assert windows == [[5, 0, 0, 0, 0, 0, 0, 0]] and last == [1] and error_at == [1]
    with pytest.raises(ZVCFormatError, match="non-zero padding"):
        decompress_stream([[1, 5, 7, 0, 0, 0, 0, 0]], [2], [1], width=16)


def test_issue16_length_zero_ends_the_frame_with_a_zero_window():
    words = [[0x66, 1, 2, 3, 4, 0x27, 5, 6], [7, 8, 0xF2, 9, 10, 11, 12, 13],
             [0xDF, 1, 2, 3, 4, 5, 6, 7], Z8]
    windows, last, error_at, _ = _hw(words, [8, 8, 8, 0], [0, 1, 0, 1], 16)
    assert windows == [[0, 1, 2, 0, 0, 3, 4, 0],      # 0x66: lanes 1, 2, 5, 6
                       [5, 6, 7, 0, 0, 8, 0, 0],      # 0x27: lanes 0, 1, 2, 5
                       [0, 9, 0, 0, 10, 11, 12, 13],  # 0xf2: lanes 1, 4..7; frame 0 ends
                       [1, 2, 3, 4, 5, 0, 6, 7],      # 0xdf fills word 2: not the end
                       Z8]                            # length 0: one zero slot, last
    assert last == [0, 0, 1, 0, 1]
    assert error_at == [0, 0, 0, 0, 1]
    with pytest.raises(ZVCFormatError, match=r"frame 1 \(words 2..3\): word 3, the frame's "
                                             r"last, has length 0"):
        decompress_stream(words, [8, 8, 8, 0], [0, 1, 0, 1], width=16)


def test_issue16_length_past_n_does_not_merge_frames():
    words = [[1, 5] + [0] * 6, [1, 6] + [0] * 6]
    windows, last, error_at, _ = _hw(words, [9, 2], [1, 1], 16)
    # Length 9 is read as 8: the window [5, ...], then six zero masks; frame 1 is intact.
    assert windows == [[5] + [0] * 7] + [Z8] * 6 + [[6] + [0] * 7]
    assert last == [0, 0, 0, 0, 0, 0, 1, 1]
    assert error_at == [0, 0, 0, 0, 0, 0, 1, 1]


def test_issue16_mask_bits_past_n_and_short_non_last_word():
    windows, last, error_at, _ = _hw([[0x0101, 5] + [0] * 6], [2], [1], 16)
    assert windows == [[5] + [0] * 7] and last == [1] and error_at == [1]
    # A short word without last: decoded as N slots, flagged.
    words = [[0x66, 1, 2, 3, 4, 0x27, 5, 6], [7, 8] + [0] * 6]
    windows, last, error_at, d = _hw(words, [3, 2], [0, 1], 16)
    assert windows == [[0, 1, 2, 0, 0, 3, 4, 0], [5, 6, 7, 0, 0, 8, 0, 0]]
    assert last == [0, 1] and error_at == [0, 1]
    assert [c for c, _ in d.defects[0]] == ["short non-last word"]
    with pytest.raises(ZVCFormatError, match="word 0 has no last and length 3"):
        decompress_stream(words, [3, 2], [0, 1], width=16)


@pytest.mark.parametrize("lanes,width,words,lengths,lasts,windows,last,classes", [
    # lanes 4, width 8 (M = 1, mask bits 4..7 lie past N).
    (4, 8, [[0b0111, 5, 6, 0]], [3], [1], [[5, 6, 0, 0]], [1], ["truncated window"]),
    (4, 8, [[0, 0, 0, 0]], [0], [1], [[0, 0, 0, 0]], [1], ["empty frame"]),
    (4, 8, [[3, 3, 3, 3]], [0], [1], [[0, 0, 0, 0]], [1], ["empty frame", "non-zero padding"]),
    (4, 8, [[0b1001, 1, 2, 0]], [7], [1], [[1, 0, 0, 2], [0, 0, 0, 0]], [0, 1], ["length > N"]),
    (4, 8, [[0x11, 9, 0, 0]], [2], [1], [[9, 0, 0, 0]], [1], ["mask bits past N"]),
    (4, 8, [[0b1111, 1, 2, 3], [4, 0, 0, 0]], [0, 1], [0, 1], [[1, 2, 3, 4]], [1],
     ["short non-last word"]),
    # A window ending at the end of a word without last is not the frame's last.
    (4, 8, [[0b0111, 1, 2, 3], [0, 0, 0, 0]], [4, 1], [0, 1],
     [[1, 2, 3, 0], [0, 0, 0, 0]], [0, 1], []),
    (4, 8, [[0b0111, 1, 2, 3], [0, 0, 0, 0]], [4, 0], [0, 1],
     [[1, 2, 3, 0], [0, 0, 0, 0]], [0, 1], ["length 0"]),
    # A dense window cut by the frame's end spanning into a length-0 last word.
    (4, 8, [[0, 0b1111, 1, 2], [0, 0, 0, 0]], [4, 0], [0, 1],
     [[0, 0, 0, 0], [1, 2, 0, 0]], [0, 1], ["length 0", "truncated window"]),
    # lanes 16, width 8 (M = 2): one slot of a mask left.
    (16, 8, [[0, 0, 1] + [0] * 13], [3], [1], [[0] * 16, [0] * 16], [0, 1], ["truncated mask"]),
    # lanes 32, width 8 (M = 4): a window of 3 elements (7 slots), 6 zero windows (24), and a
    # mask starting in the last slot of word 0 with two more slots in the last word.
    (32, 8, [[7, 0, 0, 0, 1, 2, 3] + [0] * 24 + [0xAB], [0] * 32], [32, 2], [0, 1],
     [[1, 2, 3] + [0] * 29] + [[0] * 32] * 7, [0] * 7 + [1], ["truncated mask"]),
])
def test_contract_by_hand(lanes, width, words, lengths, lasts, windows, last, classes):
    got_w, got_last, error_at, d = _hw(words, lengths, lasts, width)
    assert got_w == windows and got_last == last
    assert sorted(c for c, _ in d.defects[0]) == sorted(classes)
    assert error_at[-1] == bool(classes) and d.error == bool(classes)
    assert set(classes) <= set(MALFORMED_CLASSES)
    if classes:
        with pytest.raises(ZVCFormatError):
            decompress_stream(words, lengths, lasts, width=width)
    else:
        decompress_stream(words, lengths, lasts, width=width)


@pytest.mark.parametrize("lanes,width", [(4, 8), (8, 16), (16, 8), (32, 8), (32, 32)])
def test_random_corruption_strict_and_hardware_agree(lanes, width):
    """Strict mode raises exactly when the hardware mode finds a defect; every frame ends
    with one last; the untouched frames decode to their windows; error rises with the
    last window of the first malformed frame and stays."""
    from dnnhw.sim.zvc_data import corrupted_stream
    rng = np.random.default_rng([lanes, width, 16])
    seen = set()
    for _ in range(60):
        stream, kinds = corrupted_stream(rng, lanes, width, frames=6)
        d = stream.decode(width)
        try:
            stream.decode(width, malformed="raise")
            strict_ok = True
        except ZVCFormatError:
            strict_ok = False
        assert strict_ok == (not any(d.malformed))
        last = d.last.astype(int)
        assert int(last.sum()) == len(d.frame_windows)     # one last per input frame
        ends = np.cumsum(d.frame_windows) - 1
        assert list(np.flatnonzero(last)) == list(ends)
        first_bad = next((f for f, bad in enumerate(d.malformed) if bad), None)
        expect = np.zeros(len(last), dtype=bool)
        if first_bad is not None:
            expect[ends[first_bad]:] = True
        assert (d.error_at == expect).all()
        for defects in d.defects:
            seen |= {c for c, _ in defects}
    assert {"truncated window", "non-zero padding", "short non-last word"} <= seen


def test_stream_recovery_after_every_corruption():
    # A clean frame after a corrupted one decodes to its own windows.
    from dnnhw.sim.zvc_data import CORRUPTIONS, corrupted_stream, frames_stream
    rng = np.random.default_rng(99)
    clean = _random_frame(rng, 3, 8, 16, 0.5)
    for _ in range(100):
        bad, kinds = corrupted_stream(rng, 8, 16, frames=1, corrupt=1.0)
        d = (bad + frames_stream([clean], 16)).decode(16)
        assert kinds[0] in CORRUPTIONS
        assert d.windows[-3:].tolist() == clean.tolist()
        assert d.last[-3:].tolist() == [False, False, True]


def test_stream_without_last_waits():
    words = [[1, 5, 0, 0, 0, 0, 0, 0], [0b11, 1, 2, 0, 0, 0, 0, 0xFF]]
    windows, last, error_at, d = _hw(words, [8, 8], [1, 0], 16)
    # Frame 0: [5] and six zero masks. Frame 1 has no last: its complete windows come out
    # (mask 0b11 with 1, 2; four zero masks); the mask 0xff in slot 7 waits for 8 more.
    assert windows[:7] == [[5] + [0] * 7] + [Z8] * 6
    assert windows[7:] == [[1, 2] + [0] * 6] + [Z8] * 4 and not any(last[7:])
    assert d.pending_slots == 1 and not d.error
    with pytest.raises(ZVCFormatError, match="ends inside a frame"):
        decompress_stream(words, [8, 8], [1, 0], width=16)
    # The next word completes it.
    windows, last, _, d = _hw(words + [list(range(1, 9))], [8, 8, 8], [1, 0, 0], 16)
    assert windows[-1] == list(range(1, 9)) and d.pending_slots == 0


@pytest.mark.parametrize("call,message", [
    (lambda: decompress_stream([[0] * 4], [1], [1], width=8, malformed="ignore"),
     "malformed must be 'raise' or 'hardware'"),
    (lambda: decompress_stream([[0] * 4], [1, 1], [1], width=8), "lengths has 2 entries for 1 words"),
    (lambda: decompress_stream([[0] * 4], [1], [], width=8), "lasts has 0 entries"),
    (lambda: decompress_stream([[256] * 4], [1], [1], width=8), "unsigned 8-bit"),
    (lambda: decompress_stream([[0] * 4], [-1], [1], width=8), "lengths must be >= 0"),
    (lambda: decompress_stream([0] * 4, [1], [1], width=8), "2-D array"),
])
def test_stream_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()
