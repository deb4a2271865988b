"""The cDMA zero-value compressor and decompressor (``zvc-*`` cores): legal sizes."""

#: Elements per window (N): one input beat of the compressor.
LANES = (4, 8, 16, 32)
#: Bits per element (W), also the slot size of the compressed stream.
WIDTHS = (8, 16, 32)
