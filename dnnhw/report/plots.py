"""Plot helpers for report sections: one look for every plot, no empty plots.

:func:`style` gives series ``i`` a colour and a marker of its own (20 colours, 12
markers, so no two of the first 20 series look alike), :func:`draw` makes, finishes and
saves a figure only when something was drawn in it.
"""

__all__ = ["style", "draw"]

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")


def style(index):
    """``{"color", "marker"}`` of series ``index``."""
    import matplotlib
    colours = matplotlib.colormaps["tab20"].colors
    # Even entries of tab20 first (the saturated ones), then the light ones.
    order = colours[0::2] + colours[1::2]
    return {"color": order[index % len(order)], "marker": _MARKERS[index % len(_MARKERS)]}


def draw(path, plot, *, panels=None, size=(6.4, 4.2)):
    """Call ``plot(ax)`` with one axis, or, given a number of ``panels``, with a list of
    that many side by side; it returns how many series it drew. Save to ``path`` and
    return ``True`` when that is at least one, else write nothing and return ``False``."""
    import matplotlib.pyplot as plt
    count = panels or 1
    fig, axes = plt.subplots(1, count, figsize=(size[0] * count, size[1]), squeeze=False)
    axes = list(axes[0])
    try:
        drawn = plot(axes[0] if panels is None else axes)
        if not drawn:
            return False
        for ax in axes:
            ax.grid(True, alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        return True
    finally:
        plt.close(fig)
