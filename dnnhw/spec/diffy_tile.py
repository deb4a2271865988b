"""The Diffy tile (``diffy-tile``): its modes, term encodings and legal parameter ranges.

The ranges are ``range`` objects (``WIDTHS[0]`` .. ``WIDTHS[-1]`` inclusive); the
published cycle models of ``dnnhw.golden.diffy_published`` take the same ``WIDTHS`` and
``SHIFTER_BITS``, so every tile the catalog allows is one the models can count.
"""

#: The generator's modes: Diffy, Pragmatic, Stripes and the bit-parallel baseline.
MODES = ("diffy", "pragmatic", "stripes", "bitparallel")
#: The modes that process activation terms one step at a time.
TERM_SERIAL_MODES = ("diffy", "pragmatic")

#: Term encodings, the default first: per value the fewer of ``csd`` and ``plain``;
#: canonical signed digits; the set bits of the magnitude.
ENCODINGS = ("best", "csd", "plain")

#: Activation lanes (input channels per brick), filters (PE rows), windows (PE columns).
LANES = range(1, 17)
FILTERS = range(1, 17)
WINDOWS = range(1, 17)
#: Bits of activations and weights (signed two's complement).
WIDTHS = range(8, 17)
#: B: a lane's shifter reaches ``2**B - 1`` term offsets above the column's base.
SHIFTER_BITS = range(0, 5)
#: Products summed into one output (``C * R * S`` of a layer): sizes the accumulators.
MAX_PRODUCTS = range(1, (1 << 20) + 1)
