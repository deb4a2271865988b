"""The Diffy tile's data, NumPy only (no cocotb): the layers its testbench runs
(:mod:`dnnhw.sim.diffy_tile`), a layer's tensors as the tile's beats, and the tile's
board job (``dnnhw board run``)."""

import numpy as np

from dnnhw.golden.diffy_published import window_groups
from dnnhw.golden.diffy_tile import tile_schedule

from .payload import PayloadFormat


__all__ = ["DEFAULT_LAYERS", "EXAMPLE_LAYER", "layer_data", "layer_file", "schedule", "pack_inputs",
           "pack_outputs", "board_job"]


DEFAULT_LAYERS = [
    {"channels": 3, "filters": 5, "size": [6, 9], "kernel": 3, "stride": 1, "padding": 1,
     "images": 1, "data": "image"},
    {"channels": 7, "filters": 3, "size": [7, 8], "kernel": 3, "stride": 2, "padding": 1,
     "images": 1, "data": "signed"},
    {"channels": 9, "filters": 4, "size": [5, 7], "kernel": 1, "stride": 1, "padding": 0,
     "images": 2, "data": "image"},
    {"channels": 2, "filters": 2, "size": [6, 6], "kernel": 1, "stride": 2, "padding": 0,
     "images": 1, "data": "signed"},
]


#: The board job's example layer: small, as a UART moves about 10 kB a second.
EXAMPLE_LAYER = {"channels": 3, "filters": 3, "size": [4, 5], "kernel": 3, "stride": 1,
                 "padding": 1, "images": 1, "data": "image"}


def layer_data(rng, layer, width):
    """``(x, w)`` int64 arrays for ``layer``: a dict with ``channels``, ``filters``,
    ``size`` ([H, W]), ``kernel``, ``images`` and ``data``: ``"image"`` (smooth
    non-negative rows, like a photograph after a ReLU: neighbours are close, which is what
    Diffy exploits) or ``"signed"`` (uniform signed values over the full width; corner
    values included). Weights are uniform signed over ``width - 2`` bits."""
    c, k = layer["channels"], layer["filters"]
    h, wd = layer["size"]
    n, kern = layer["images"], layer["kernel"]
    top = (1 << (width - 1)) - 1
    if layer["data"] == "image":
        # Rows that wander: a random start, small steps along X, an occasional edge.
        start = rng.integers(0, top // 2, size=(n, c, h, 1))
        steps = rng.integers(-top // 64, top // 64 + 1, size=(n, c, h, wd))
        edges = (rng.random((n, c, h, wd)) < 0.1) * rng.integers(-top // 4, top // 4 + 1,
                                                                     size=(n, c, h, wd))
        x = np.clip(start + np.cumsum(steps + edges, axis=-1), 0, top)
    elif layer["data"] == "signed":
        x = rng.integers(-top - 1, top + 1, size=(n, c, h, wd))
        corner = rng.random(x.shape) < 0.05
        x[corner] = rng.choice([-top - 1, top, -1, 1, 0], size=int(corner.sum()))
    else:
        raise ValueError(f"layer data must be 'image' or 'signed', got {layer['data']!r}")
    wmax = (1 << (width - 2)) - 1
    w = rng.integers(-wmax, wmax + 1, size=(k, c, kern, kern))
    return x.astype(np.int64), w.astype(np.int64)


def layer_file(arrays, name="input"):
    """``(x, w, stride, padding)`` of a layer's tensors: ``x`` (C, H, W) or (N, C, H, W),
    ``w`` (K, C, R, S), and optional scalars ``stride`` (default 1) and ``padding``
    (default 0), all integers; ``name`` is what an error calls the tensors' source."""
    missing = [key for key in ("x", "w") if key not in arrays]
    if missing:
        raise ValueError(f"{name} needs the arrays x (N, C, H, W) and w (K, C, R, S); it "
                         f"has no {', '.join(missing)} (arrays: {', '.join(arrays) or 'none'})")
    unknown = set(arrays) - {"x", "w", "stride", "padding"}
    if unknown:
        raise ValueError(f"{name} has arrays {', '.join(sorted(unknown))}; a layer takes "
                         f"x, w, stride and padding")
    values = {}
    for key in arrays:
        value = np.asarray(arrays[key])
        if not np.issubdtype(value.dtype, np.integer):
            raise ValueError(f"{name}: {key} must hold integers, got dtype {value.dtype}")
        values[key] = value.astype(np.int64)
    x = values["x"][None] if values["x"].ndim == 3 else values["x"]
    scalars = {}
    for key, default in (("stride", 1), ("padding", 0)):
        value = values.get(key, np.int64(default))
        if value.ndim != 0:
            raise ValueError(f"{name}: {key} must be a scalar, got shape {value.shape}")
        scalars[key] = int(value)
    return x, values["w"], scalars["stride"], scalars["padding"]


def schedule(x, w, stride, padding, params):
    """:func:`~dnnhw.golden.diffy_tile.tile_schedule` of the layer on a tile of
    ``params``, refusing a layer that sums more products than ``max_products``."""
    products = x.shape[-3] * w.shape[-2] * w.shape[-1]
    if products > params["max_products"]:
        raise ValueError(f"the layer sums C * R * S = {products} products per output; the "
                         f"tile takes max_products={params['max_products']}")
    return tile_schedule(x, w, stride, padding, lanes=params["lanes"],
                         filters=params["filters"], windows=params["windows"],
                         width=params["width"], mode=params["mode"],
                         encoding=params["encoding"], shifter_bits=params["shifter_bits"])


def pack_inputs(formats, sched, width, windows):
    """``(a beats, w beats)`` of ``sched``: activations, the brick before, the raw bits and
    ``last`` per pallet; the weights per pallet (``formats``: stream name ->
    :class:`PayloadFormat`)."""
    wmask = (1 << width) - 1
    raw_bits = (sched.raw.astype(np.int64) << np.arange(windows)).sum(axis=1)
    a = formats["a"].pack_many(acts=sched.acts.reshape(len(sched.acts), -1) & wmask,
                               prev=sched.prev & wmask, raw=raw_bits,
                               last=sched.last.astype(np.int64))
    w = formats["w"].pack_many(weights=sched.weights.reshape(len(sched.weights), -1) & wmask)
    return a, w


def pack_outputs(fmt, outputs):
    """The output beats of ``outputs`` ``(G, F, W)``, the sums as two's complement."""
    amask = (1 << fmt.fields["sums"][3]) - 1
    return fmt.pack_many(sums=outputs.reshape(len(outputs), -1) & amask)


def board_job(arrays, params, sidecar, rng):
    """diffy-tile: a conv layer (``x``, ``w``, ``stride``, ``padding``; else
    :data:`EXAMPLE_LAYER` on random data) as the pallets of the tile's two input
    streams, the golden convolution's output beats out.

    In ``stripes`` mode the board holds ``msb`` and ``msb_signed`` at their defaults
    (every bit, signed: the tile's full precision), which any layer's values fit."""
    from dnnhw.host.job import BoardJob

    if arrays:
        x, w, stride, padding = layer_file(arrays)
        source = "x and w"
    else:
        layer = EXAMPLE_LAYER
        x, w = layer_data(rng, layer, params["width"])
        stride, padding, source = layer["stride"], layer["padding"], "random example layer"
    sched = schedule(x, w, stride, padding, params)
    formats = {name: PayloadFormat(entry) for name, entry in sidecar["streams"].items()}
    a, wt = pack_inputs(formats, sched, params["width"], params["windows"])
    o_fmt = formats["o"]
    acc_width = o_fmt.fields["sums"][3]
    half = 1 << (acc_width - 1)

    N, C, H, W = x.shape
    K, _, R, S = w.shape
    out_h, out_w = (H + 2 * padding - R) // stride + 1, (W + 2 * padding - S) // stride + 1
    groups = window_groups(out_h, out_w, params["windows"])     # (G, windows), -1 idle
    filters = params["filters"]
    passes = -(-K // filters)

    def decode(outputs):
        """``sums`` (beats, filters, windows) as sent, and ``y`` (N, K, OH, OW): the
        layer's output feature maps, put back from the beats' filter and window order."""
        sums = np.array([o_fmt.unpack(beat)["sums"] for beat in outputs["o"]],
                        dtype=np.int64)
        sums = ((sums ^ half) - half).reshape(len(sums), filters, params["windows"])
        by_filter = sums.reshape(N, passes, len(groups), filters, -1).transpose(0, 1, 3, 2, 4)
        by_filter = by_filter.reshape(N, passes * filters, -1)     # (N, Kp, G * windows)
        y = np.zeros((N, passes * filters, out_h * out_w), dtype=np.int64)
        used = groups.ravel() >= 0
        y[:, :, groups.ravel()[used]] = by_filter[:, :, used]
        return {"sums": sums, "y": y[:, :K].reshape(N, K, out_h, out_w)}

    return BoardJob(
        inputs={"a": [int(v) for v in a], "w": [int(v) for v in wt]},
        expected={"o": [int(v) for v in pack_outputs(o_fmt, sched.outputs)]},
        describe=(f"{N} x {C} x {H} x {W} * {K} x {C} x {R} x {S}, stride {stride}, padding {padding} ({source}): "
                  f"{len(a)} pallets, {len(sched.outputs)} output beats, golden "
                  f"{sched.steps} steps in {params['mode']}"),
        decode=decode)
