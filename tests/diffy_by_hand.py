"""Diffy's definitions computed by hand, with plain Python loops, for the tests to compare
the golden models and the benchmark against. Nothing here calls dnnhw: a mistake in the
vectorised models cannot repeat itself here.

- term offsets: plain is the set bits of the magnitude; CSD (non-adjacent form) has a
  non-zero digit at offset k exactly where bit k + 1 of ``3m ^ m`` is set (a closed form,
  not the digit-by-digit recoding the models use); best is CSD when it has strictly
  fewer terms, else plain;
- the term-serial step rule of a brick (the paper's, as ``brick_steps`` documents it);
- the Stripes precision of a set of values;
- every pallet of a layer on an L x F x W tile, in the order the tile streams them;
- the integer convolution as a loop nest.
"""

import itertools


def pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def term_offsets(value, encoding="best"):
    magnitude = abs(int(value))
    plain = [k for k in range(magnitude.bit_length()) if magnitude >> k & 1]
    nonzero = (3 * magnitude) ^ magnitude
    csd = [k for k in range(nonzero.bit_length()) if nonzero >> (k + 1) & 1]
    return {"plain": plain, "csd": csd,
            "best": csd if len(csd) < len(plain) else plain}[encoding]


def brick_steps(lane_offsets, shifter_bits=2):
    """Steps until every lane is empty; each step every lane whose lowest remaining offset
    is within ``2**shifter_bits - 1`` above the lowest of all lanes retires it. A brick
    with no terms takes 0 steps here (the callers apply the one-step minimum)."""
    lanes = [sorted(offsets) for offsets in lane_offsets]
    steps = 0
    while any(lanes):
        base = min(offsets[0] for offsets in lanes if offsets)
        for offsets in lanes:
            if offsets and offsets[0] - base < 1 << shifter_bits:
                offsets.pop(0)
        steps += 1
    return steps


def precision_bits(values):
    """Fewest bits holding every value: unsigned when none is negative, else two's
    complement; at least 1."""
    lo, hi = min(values), max(values)
    bits = 1
    if lo >= 0:
        while hi >= 1 << bits:
            bits += 1
    else:
        while not -(1 << (bits - 1)) <= lo <= hi < 1 << (bits - 1):
            bits += 1
    return bits


def padded_input(x, padding):
    """x[n][c][y][x] as nested lists, zero-padded by ``padding`` on each side."""
    py, px = pair(padding)
    N, C, H, W = x.shape
    return [[[[int(x[n, c, y - py, i - px]) if 0 <= y - py < H and 0 <= i - px < W else 0
               for i in range(W + 2 * px)] for y in range(H + 2 * py)]
             for c in range(C)] for n in range(N)]


def output_size(x_shape, w_shape, stride, padding):
    (sy, sx), (py, px) = pair(stride), pair(padding)
    H, W = x_shape[2:]
    R, S = w_shape[2:]
    return (H + 2 * py - R) // sy + 1, (W + 2 * px - S) // sx + 1


def conv2d(x, w, stride=1, padding=0):
    """out[n][k][oy][ox] of the integer convolution, as nested lists."""
    (sy, sx) = pair(stride)
    P = padded_input(x, padding)
    N, C = x.shape[:2]
    K, _, R, S = w.shape
    OH, OW = output_size(x.shape, w.shape, stride, padding)
    return [[[[sum(int(w[k, c, r, s]) * P[n][c][oy * sy + r][ox * sx + s]
                   for c in range(C) for r in range(R) for s in range(S))
               for ox in range(OW)] for oy in range(OH)] for k in range(K)] for n in range(N)]


def tile_pallets(x, w, stride, padding, lanes, filters, windows):
    """Every pallet of the layer on the tile, in stream order: image, filter pass, window
    group (``windows`` output positions in raster order, the last group padded with idle
    columns), kernel row r, kernel column s, channel group of ``lanes`` channels.

    Each pallet is a dict: ``raw`` and ``delta`` (per column the ``lanes`` values of its
    window, and those minus the same elements of the window one stride to the left, raw
    where the window starts its output row; zeros in idle columns and missing channels),
    ``weights`` (per filter its ``lanes`` weights, zeros for missing filters and channels),
    ``real`` (per column: a real window, not idle), ``key`` (n, filter pass, group, r, s,
    channel group)."""
    sy, sx = pair(stride)
    P = padded_input(x, padding)
    N, C = x.shape[:2]
    K, _, R, S = w.shape
    OH, OW = output_size(x.shape, w.shape, stride, padding)
    L, F, W = lanes, filters, windows
    groups, passes, channel_groups = -(-OH * OW // W), -(-K // F), -(-C // L)
    pallets = []
    for n, fp, g, r, s, cg in itertools.product(range(N), range(passes), range(groups),
                                                range(R), range(S), range(channel_groups)):
        raw, delta, real = [], [], []
        for column in range(W):
            position = g * W + column
            raw_brick, delta_brick = [0] * L, [0] * L
            real.append(position < OH * OW)
            if position < OH * OW:
                oy, ox = divmod(position, OW)
                for lane in range(L):
                    c = cg * L + lane
                    if c < C:
                        row = P[n][c][oy * sy + r]
                        raw_brick[lane] = row[ox * sx + s]
                        delta_brick[lane] = row[ox * sx + s] - (row[(ox - 1) * sx + s]
                                                                if ox else 0)
            raw.append(raw_brick)
            delta.append(delta_brick)
        weights = [[int(w[fp * F + f, cg * L + lane, r, s])
                    if fp * F + f < K and cg * L + lane < C else 0 for lane in range(L)]
                   for f in range(F)]
        pallets.append({"raw": raw, "delta": delta, "weights": weights, "real": real,
                        "key": (n, fp, g, r, s, cg)})
    return pallets


def pallet_steps(pallet, mode, *, encoding="best", shifter_bits=2, precision=None):
    """Steps the tile takes on one pallet: the slowest column and at least one for the
    term-serial modes, ``precision`` for Stripes, one for the bit-parallel mode."""
    if mode == "stripes":
        return precision
    if mode == "bitparallel":
        return 1
    bricks = pallet["delta"] if mode == "diffy" else pallet["raw"]
    return max(1, max(brick_steps([term_offsets(v, encoding) for v in brick], shifter_bits)
                      for brick in bricks))
