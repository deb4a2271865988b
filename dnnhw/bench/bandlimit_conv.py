"""The band-limited convolution engine's figures, from its bit-exact golden model
(:mod:`dnnhw.golden.bandlimit_conv_fixed`): the filter memory against c, the error
against direct convolution against c (float band-limiting alone, and the engine's fixed
point), and the SQNR against the float band-limited convolution per data width. The
main job runs it as the ``bandlimit-conv`` core's analysis; the report's
``bandlimit-conv-figures`` section renders it. ``dnnhw bench bandlimit-conv`` runs it
alone.

The data: ``n x n`` patches (2D) or rows of ``n`` pixels (1D) of scikit-image's
photographs (the testbench's, :mod:`dnnhw.sim.bandlimit_conv`), and random samples, at
half scale; the filters: normal random numbers divided by their sum of magnitudes.
"""

import argparse

import numpy as np

from ..golden import bandlimit_conv_fixed as golden
from ..sim.fft_data import IMAGES, grey_image, real_sqnr_db, relative_error, unit_filters
from ..spec.bandlimit import COEFFICIENT_WIDTHS
from ..spec.fft import TWIDDLE_WIDTHS
from ..text import markdown_table
from . import Benchmark, show_study


__all__ = ["study", "flow_figures", "figures", "render", "main", "RATES", "SHAPES"]

#: The compression rates of every table (percent).
RATES = (0, 10, 25, 50, 75, 90, 95)
#: ``(dims, n, taps)`` of the memory and error tables.
SHAPES = ((1, 64, 5), (1, 1024, 9), (2, 16, 3), (2, 32, 5), (2, 64, 5))
#: Data widths of the SQNR table, and the rates it is measured at.
WIDTHS = (8, 10, 12, 14, 16, 18, 20, 24)
SQNR_RATES = (0, 50, 90)
#: The tables' engine: 2 channels in, 2 out; the memory table's coefficients of 16 bits.
CHANNELS = 2
COEFFICIENT_WIDTH = 16


def _patches(dims, n, count, rng):
    """``count`` half-scale unit patches ``(count, *(n,) * dims)`` in [-0.5, 0.5], spread
    evenly over the photographs."""
    out = []
    for k, name in enumerate(IMAGES):
        grey = grey_image(name)
        share = count // len(IMAGES) + (k < count % len(IMAGES))
        if dims == 2:
            rows, cols = grey.shape[0] - n, grey.shape[1] - n
            spots = np.linspace(0, rows * cols - 1, share).astype(int)
            out += [grey[s // cols:s // cols + n, s % cols:s % cols + n] for s in spots]
        else:
            flat = grey.ravel()
            starts = np.linspace(0, flat.size - n, share).astype(int)
            out += [flat[s:s + n] for s in starts]
    return np.array(out) - 0.5


def _tiles(unit, width):
    """Unit samples in [-0.5, 0.5] as ``width``-bit integers (half scale)."""
    return np.rint(unit * (1 << (width - 1))).astype(np.int64)


def _coefficient_width(width):
    """Coefficients as wide as the data (the DSP's 18 bits at most), twiddles too; the
    filters (unit sum of magnitudes, so every coefficient within 1) scaled by
    ``2 ** (coefficient_width - 2)``."""
    return min(width, COEFFICIENT_WIDTHS[-1])


def _engine(x, words, dims, n, taps, c, width):
    coefficient_width = _coefficient_width(width)
    return golden.conv(x, words, dims=dims, n=n, taps=taps, compression_rate=c, width=width,
                       twiddle_width=min(width, TWIDDLE_WIDTHS[-1]),
                       coefficient_width=coefficient_width,
                       spectrum_shift=coefficient_width - 2)


def _quantized(w, n, c, width):
    coefficient_width = _coefficient_width(width)
    return golden.filter_spectra(w, n=n, compression_rate=c,
                                 coefficient_width=coefficient_width,
                                 coefficient_shift=coefficient_width - 2)


def memory_rows(shapes=SHAPES, rates=RATES):
    """Per shape and c: the kept bins a channel, the words of one filter (the stored
    one-sided part) and their share of the whole one-sided spectrum, and the bits of a
    64-in, 64-out layer's filters at 16-bit coefficients."""
    rows = []
    for dims, n, taps in shapes:
        full = golden.band(n, dims, 0).words_per_filter
        for c in rates:
            band = golden.band(n, dims, c)
            rows.append({
                "dims": dims, "n": n, "c": c, "m": band.m,
                "kept_bins": band.kept_bins, "bins": n ** dims,
                "words_per_filter": band.words_per_filter, "full_words": full,
                "fraction": band.words_per_filter / full,
                "layer_bits": golden.filter_memory_bits(
                    dims=dims, n=n, in_channels=64, out_channels=64, compression_rate=c,
                    coefficient_width=COEFFICIENT_WIDTH)})
    return rows


def error_rows(shapes, rates, tiles, width=16, seed=0):
    """Per shape and c, on photograph patches: the error of float band-limiting against
    direct convolution, and of the engine (its golden model at ``width`` bits)."""
    rows = []
    for dims, n, taps in shapes:
        rng = np.random.default_rng([seed, dims, n, taps])
        unit = _patches(dims, n, tiles * CHANNELS, rng).reshape(tiles, CHANNELS,
                                                                *(n,) * dims)
        x = _tiles(unit, width)
        w = unit_filters(rng, CHANNELS, CHANNELS, taps, dims)
        direct = golden.direct_reference(x, w, dims=dims, taps=taps)
        for c in rates:
            ideal = golden.float_reference(x, w, dims=dims, n=n, compression_rate=c)
            y, overflow = _engine(x, _quantized(w, n, c, width), dims, n, taps, c, width)
            rows.append({"dims": dims, "n": n, "taps": taps, "c": c, "tiles": tiles,
                         "float_error": relative_error(ideal, direct),
                         "fixed_error": relative_error(y, direct),
                         "fixed_vs_float_sqnr_db": real_sqnr_db(y, ideal),
                         "overflow": bool(overflow)})
    return rows


def sqnr_rows(shape, widths, rates, tiles, seed=0):
    """Per width and c: the engine's SQNR against the float band-limited convolution
    (same n, same kept bins), on photograph patches and on random samples."""
    dims, n, taps = shape
    rng = np.random.default_rng([seed, dims, n, taps, 1])
    images = _patches(dims, n, tiles * CHANNELS, rng).reshape(tiles, CHANNELS,
                                                               *(n,) * dims)
    noise = rng.uniform(-0.5, 0.5, size=images.shape)
    w = unit_filters(rng, CHANNELS, CHANNELS, taps, dims)
    rows = []
    for width in widths:
        for c in rates:
            words = _quantized(w, n, c, width)
            for source, unit in (("image", images), ("random", noise)):
                x = _tiles(unit, width)
                ideal = golden.float_reference(x, w, dims=dims, n=n, compression_rate=c)
                y, overflow = _engine(x, words, dims, n, taps, c, width)
                rows.append({"dims": dims, "n": n, "taps": taps, "width": width, "c": c,
                             "data": source, "sqnr_db": real_sqnr_db(y, ideal),
                             "overflow": bool(overflow)})
    return rows


def study(quick=False, seed=0):
    """Every table: memory (exact), error against c and SQNR against width (on fewer
    tiles and shapes with ``quick``)."""
    shapes = SHAPES if not quick else ((1, 64, 5), (2, 16, 3))
    tiles = 4 if quick else 16
    sqnr_shape = (2, 16, 3)
    return {
        "config": {"quick": quick, "seed": seed, "tiles": tiles, "channels": CHANNELS,
                   "coefficient_width": COEFFICIENT_WIDTH, "images": list(IMAGES)},
        "memory": memory_rows(),
        "error": error_rows(shapes, RATES, tiles, seed=seed),
        "sqnr": sqnr_rows(sqnr_shape, WIDTHS if not quick else (10, 12, 16), SQNR_RATES,
                          tiles, seed=seed),
    }


def flow_figures(configs=None):
    """The core's analysis in the main job: the whole study (about 3 s)."""
    return study()


# --- rendering ---------------------------------------------------------------------------

def _shape_text(dims, n):
    return f"{n} x {n}" if dims == 2 else f"{n}"


def memory_table(results):
    rows = [[f"{r['dims']}D", _shape_text(r["dims"], r["n"]), f"{r['c']:g} %", r["m"],
             f"{r['kept_bins']:,} of {r['bins']:,}",
             f"{r['words_per_filter']:,} of {r['full_words']:,}",
             f"{100 * r['fraction']:.1f} %", f"{r['layer_bits'] / 8 / 1024:,.1f}"]
            for r in results["memory"]]
    return markdown_table(["", "tile", "c", "m", "kept bins", "words / filter",
                           "of the full spectrum", "64 x 64 layer (KiB)"], rows,
                          align="llrrrrrr")


def error_table(results):
    rows = [[f"{r['dims']}D", _shape_text(r["dims"], r["n"]), r["taps"], f"{r['c']:g} %",
             f"{100 * r['float_error']:.2f} %", f"{100 * r['fixed_error']:.2f} %",
             "-" if r["fixed_vs_float_sqnr_db"] is None
             else f"{r['fixed_vs_float_sqnr_db']:.1f}" + ("*" if r["overflow"] else "")]
            for r in results["error"]]
    return markdown_table(["", "tile", "taps", "c", "float band-limited vs direct",
                           "engine (16-bit) vs direct", "engine vs float band-limited (dB)"],
                          rows, align="llrrrrr")


def sqnr_table(results):
    rates = sorted({r["c"] for r in results["sqnr"]})
    widths = sorted({r["width"] for r in results["sqnr"]})
    header = ["width"] + [f"c {c:g} %: {data}" for c in rates for data in ("image", "random")]
    rows = []
    for width in widths:
        row = [width]
        for c in rates:
            for data in ("image", "random"):
                hit = next(r for r in results["sqnr"]
                           if (r["width"], r["c"], r["data"]) == (width, c, data))
                row.append("-" if hit["sqnr_db"] is None else
                           f"{hit['sqnr_db']:.1f}" + ("*" if hit["overflow"] else ""))
        rows.append(row)
    return markdown_table(header, rows, align="r" * len(header))


def render(results):
    config = results["config"]
    sqnr = results["sqnr"][0]
    lines = [
        "The engine's golden model (bit-exact with the RTL) on "
        f"{' and '.join(config['images'])} patches at half scale, "
        f"{config['channels']} channels in and out, random filters of unit sum of "
        "magnitudes, coefficients and twiddles as wide as the data (18 bits at most)"
        + (" (`--quick`: fewer tiles and shapes)" if config["quick"] else "") + ".",
        "",
        "**Filter memory against c** (exact: the stored one-sided part of the kept block, "
        "`docs/bandlimit-conv.md` section 2):", "", memory_table(results), "",
        "**Error against direct convolution** (relative L2 over the outputs; `*`: the "
        "engine saturated somewhere):", "", error_table(results), "",
        f"**SQNR against the float band-limited convolution**, {sqnr['dims']}D "
        f"{_shape_text(sqnr['dims'], sqnr['n'])}, {sqnr['taps']} taps, twiddles of "
        "min(width, 18) bits:", "", sqnr_table(results)]
    return "\n".join(lines)


def figures(results):
    from ..report.plots import draw, style
    made = {}

    def memory(ax):
        drawn = 0
        shapes = list(dict.fromkeys((r["dims"], r["n"]) for r in results["memory"]))
        for k, (dims, n) in enumerate(shapes):
            rows = [r for r in results["memory"] if (r["dims"], r["n"]) == (dims, n)]
            ax.plot([r["c"] for r in rows], [100 * r["fraction"] for r in rows],
                    label=f"{dims}D {_shape_text(dims, n)}", **style(k))
            drawn += 1
        cs = np.linspace(0, 95, 96)
        ax.plot(cs, 100 - cs, color="black", linestyle=":", label="100 - c (the target)")
        ax.set_xlabel("compression rate c (%)")
        ax.set_ylabel("filter memory, % of the full one-sided spectrum")
        return drawn

    def error(ax):
        drawn = 0
        shapes = list(dict.fromkeys((r["dims"], r["n"], r["taps"]) for r in results["error"]))
        for k, (dims, n, taps) in enumerate(shapes):
            rows = [r for r in results["error"] if (r["dims"], r["n"], r["taps"]) ==
                    (dims, n, taps)]
            look = style(k)
            name = f"{dims}D {_shape_text(dims, n)}, {taps} taps"
            ax.plot([r["c"] for r in rows], [100 * r["float_error"] for r in rows],
                    label=f"{name}: float", **look)
            ax.plot([r["c"] for r in rows], [100 * r["fixed_error"] for r in rows],
                    label=f"{name}: engine 16-bit", linestyle="--", fillstyle="none", **look)
            drawn += 2
        ax.set_yscale("symlog", linthresh=0.1)
        ax.set_xlabel("compression rate c (%)")
        ax.set_ylabel("error against direct convolution (%)")
        return drawn

    def sqnr(ax):
        drawn = 0
        keys = list(dict.fromkeys((r["c"], r["data"]) for r in results["sqnr"]))
        for k, (c, data) in enumerate(keys):
            rows = [r for r in results["sqnr"] if (r["c"], r["data"]) == (c, data)
                    and r["sqnr_db"] is not None]
            if rows:
                ax.plot([r["width"] for r in rows], [r["sqnr_db"] for r in rows],
                        label=f"c {c:g} %, {data}", **style(k))
                drawn += 1
        widths = sorted({r["width"] for r in results["sqnr"]})
        if drawn and widths:
            base = next((r["sqnr_db"] for r in results["sqnr"] if r["width"] == widths[0]
                         and r["sqnr_db"] is not None), None)
            if base is not None:
                ax.plot(widths, [base + 6.02 * (w - widths[0]) for w in widths],
                        color="black", linestyle=":", label="6.02 dB per bit")
        ax.set_xlabel("width (bits)")
        ax.set_ylabel("SQNR against float band-limited (dB)")
        return drawn

    made["memory"] = lambda path: draw(path, memory)
    made["error"] = lambda path: draw(path, error)
    made["sqnr"] = lambda path: draw(path, sqnr)
    return made


# --- the command -------------------------------------------------------------------------

def _parser():
    p = argparse.ArgumentParser(prog="dnnhw bench bandlimit-conv",
                                description="The band-limited convolution engine's "
                                "figures from its golden model: filter memory and error "
                                "against c, SQNR against width.")
    p.add_argument("--quick", action="store_true", help="fewer tiles, shapes and widths")
    p.add_argument("--seed", type=int, default=0, help="filters and random data (default 0)")
    p.add_argument("--out", default=None, help="also write the tables, JSON and plots here")
    return p


def main(argv=None):
    """Run the study; ``argv`` as for ``dnnhw bench bandlimit-conv``. Returns the exit
    status."""
    args = _parser().parse_args(argv)
    results = study(quick=args.quick, seed=args.seed)
    show_study(results, args.out, "bandlimit_conv", figures=figures, render=render)
    return 0


BENCHMARK = Benchmark(
    "bandlimit-conv", f"{__name__}:main",
    "band-limited convolution engine (golden): filter memory and error against c, SQNR "
    "against width")


if __name__ == "__main__":
    raise SystemExit(main())
