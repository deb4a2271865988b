"""Property-based tests of the golden models (hypothesis): the ZV round trip over any
lanes, width and data; every corrupted stream either decodes (it is still well formed) or
raises the documented ZVCFormatError, never anything else, and the hardware contract
flags exactly the streams the reference rejects; the integer convolutions equal each
other on any shape the API accepts."""

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from dnnhw.golden.conv import conv2d_direct_int, conv2d_im2col_int, conv3d_direct_int, \
    conv3d_im2col_int
from dnnhw.golden.zvc import (LANES, WIDTHS, ZVCFormatError, compress_frame,
                              decompress_frame, decompress_stream)

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def frames(draw, max_frames=3):
    """``(lanes, width, [frame, ...])``: each frame 1..5 windows of ReLU-like data (a mix
    of zeros and values over the whole range)."""
    lanes = draw(st.sampled_from(LANES))
    width = draw(st.sampled_from(WIDTHS))
    element = st.one_of(st.just(0), st.integers(0, (1 << width) - 1))
    result = []
    for _ in range(draw(st.integers(1, max_frames))):
        n = draw(st.integers(1, 5))
        values = draw(st.lists(element, min_size=n * lanes, max_size=n * lanes))
        result.append(np.array(values, dtype=np.uint64).reshape(n, lanes))
    return lanes, width, result


def _stream(frame_list, width):
    words, lengths, lasts = [], [], []
    for frame in frame_list:
        w, last_length = compress_frame(frame, width=width)
        for k, word in enumerate(w):
            final = k == len(w) - 1
            words.append(word)
            lengths.append(last_length if final else len(word))
            lasts.append(int(final))
    return np.array(words, dtype=np.uint64), lengths, lasts


@SETTINGS
@given(frames(max_frames=1))
def test_frame_round_trip(case):
    lanes, width, (frame,) = case
    words, last_length = compress_frame(frame, width=width)
    assert words.shape[1] == lanes and 1 <= last_length <= lanes
    np.testing.assert_array_equal(decompress_frame(words, last_length, width=width), frame)


@SETTINGS
@given(frames())
def test_stream_round_trip_in_both_modes(case):
    lanes, width, frame_list = case
    words, lengths, lasts = _stream(frame_list, width)
    decoded = decompress_stream(words, lengths, lasts, width=width)
    assert len(decoded) == len(frame_list)
    for got, want in zip(decoded, frame_list):
        np.testing.assert_array_equal(got, want)
    hardware = decompress_stream(words, lengths, lasts, width=width, malformed="hardware")
    assert not hardware.error
    np.testing.assert_array_equal(hardware.windows, np.concatenate(frame_list))


@SETTINGS
@given(frames(), st.data())
def test_corrupted_streams_raise_only_the_documented_error(case, data):
    lanes, width, frame_list = case
    words, lengths, lasts = _stream(frame_list, width)
    words = words.copy()
    for _ in range(data.draw(st.integers(1, 3))):
        k = data.draw(st.integers(0, len(words) - 1))
        what = data.draw(st.sampled_from(("slot", "length", "last")))
        if what == "slot":
            words[k, data.draw(st.integers(0, lanes - 1))] = data.draw(
                st.integers(0, (1 << width) - 1))
        elif what == "length":
            lengths[k] = data.draw(st.integers(0, lanes + 3))
        else:
            lasts[k] ^= 1
    lasts[-1] = 1   # a terminated stream: the hardware flags what the reference rejects
    try:
        decompress_stream(words, lengths, lasts, width=width)
        rejected = False
    except ZVCFormatError:
        rejected = True
    hardware = decompress_stream(words, lengths, lasts, width=width, malformed="hardware")
    assert hardware.error == rejected


_CONV = {2: (conv2d_direct_int, conv2d_im2col_int), 3: (conv3d_direct_int, conv3d_im2col_int)}


@st.composite
def conv_cases(draw):
    dims = draw(st.sampled_from((2, 3)))
    groups = draw(st.integers(1, 3))
    channels = groups * draw(st.integers(1, 2))
    filters = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    stride = draw(st.integers(1, 2))
    dilation = draw(st.integers(1, 2))
    padding = draw(st.integers(0, 2))
    size = tuple(draw(st.integers(1, 6)) for _ in kernel)
    batch = draw(st.integers(1, 2))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(batch, channels, *size), dtype=np.int64)
    w = rng.integers(-128, 128, size=(filters, channels // groups, *kernel), dtype=np.int64)
    return dims, x, w, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


@SETTINGS
@given(conv_cases())
def test_integer_convolutions_agree(case):
    dims, x, w, options = case
    direct, im2col = _CONV[dims]
    try:
        want = direct(x, w, **options)
    except ValueError as error:
        # A shape the API rejects (an empty output) is rejected by both, with one message.
        with pytest.raises(ValueError, match=re.escape(str(error))):
            im2col(x, w, **options)
        return
    got = im2col(x, w, **options)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    # Against a plain loop for one output element, so that the two cannot share a bug.
    k = (0, 0) + tuple(0 for _ in range(dims))
    stride, padding, dilation, groups = (options[n] for n in ("stride", "padding",
                                                              "dilation", "groups"))
    per_group = x.shape[1] // groups
    xp = np.pad(x, [(0, 0), (0, 0)] + [(padding, padding)] * dims)
    taps = w[0]
    window = xp[0, :per_group][(slice(None),) + tuple(
        slice(0, (t - 1) * dilation + 1, dilation) for t in taps.shape[1:])]
    assert want[k] == int((window * taps).sum())
