"""Parts a component builds in its constructor (so that their checks run up front and
their sizes and latencies are the component's properties) but elaborates only in its own
``elaborate``."""


def owned(part):
    """``part``, exempt from Amaranth's "created but never used" warning: the component
    that owns it warns for itself when it is not elaborated."""
    part._MustUse__silence = True
    return part
