"""A stream payload's fields packed into the port's flat integer and back, from the
sidecar (``streams[name]["fields"]``). Pure Python and NumPy, no cocotb: the cocotb
drivers (:mod:`dnnhw.sim.streams`), the test-data modules and the host's board jobs
(:mod:`dnnhw.host.job`) all pack beats with it."""


__all__ = ["PayloadFormat"]

class PayloadFormat:
    """Pack/unpack a stream payload described by a sidecar ``streams`` entry.

    ``fields`` maps a name to ``{"offset", "width"}`` plus ``{"count",
    "element_width"}`` for arrays. A payload without fields (a plain shape) is packed
    from and to a bare int under the name ``None``.
    """

    def __init__(self, entry):
        self.width = int(entry["width"])
        self.fields = {}
        for name, f in entry.get("fields", {}).items():
            count = f.get("count")
            elem = f.get("element_width")
            if count is not None and elem is None:
                elem = f["width"] // count
            self.fields[name] = (int(f["offset"]), int(f["width"]),
                                 None if count is None else int(count),
                                 None if elem is None else int(elem))

    def pack(self, fields):
        """The port value of ``fields`` (a dict; missing fields are 0, arrays are lists
        of ints, element 0 at the lowest bits)."""
        if not self.fields:
            value = int(fields)
            if value < 0 or value >> self.width:
                raise ValueError(f"payload {value} does not fit in {self.width} bits")
            return value
        value = 0
        for name, v in fields.items():
            offset, width, count, elem = self.field(name)
            if count is not None:
                if len(v) != count:
                    raise ValueError(f"field {name!r} takes {count} elements, got {len(v)}")
                packed, limit = 0, 1 << elem
                for k, e in enumerate(v):
                    e = int(e)
                    if e < 0 or e >= limit:
                        raise ValueError(f"{name}[{k}] = {e} does not fit in {elem} bits")
                    packed |= e << (k * elem)
                v = packed
            else:
                v = int(v)
                if v < 0 or v >> width:
                    raise ValueError(f"field {name!r} = {v} does not fit in {width} bits")
            value |= v << offset
        return value

    def field(self, name):
        """``(offset, width, count, element width)`` of the field ``name``; ``count`` and
        the element width are ``None`` for a plain field."""
        try:
            return self.fields[name]
        except KeyError:
            raise KeyError(f"payload has no field {name!r}; fields: "
                           f"{', '.join(self.fields)}") from None

    def pack_many(self, **columns):
        """Pack many payloads at once: each keyword is a field, given as a sequence with
        one entry per payload (arrays: a 2-D array, one row per payload). Returns a list
        of port values; fields not given are 0. Uses a byte-level fast path for arrays of
        8/16/32/64-bit elements (NumPy)."""
        import numpy as np
        count = None
        parts = []
        for name, column in columns.items():
            offset, width, n, elem = self.field(name)
            column = np.asarray(column)
            if count is None:
                count = len(column)
            elif len(column) != count:
                raise ValueError(f"field {name!r} has {len(column)} entries, expected {count}")
            if column.size and (column.min() < 0 or (int(column.max()) >> (elem or width))):
                raise ValueError(f"field {name!r} has values that do not fit in "
                                 f"{elem or width} bits")
            if n is not None:
                if column.ndim != 2 or column.shape[1] != n:
                    raise ValueError(f"field {name!r} needs shape (payloads, {n}), "
                                     f"got {column.shape}")
                if elem in (8, 16, 32, 64):
                    raw = np.ascontiguousarray(column.astype(f"<u{elem // 8}"))
                    step = n * elem // 8
                    blob = raw.tobytes()
                    values = [int.from_bytes(blob[k * step:(k + 1) * step], "little")
                              for k in range(count)]
                else:
                    values = [sum(int(e) << (j * elem) for j, e in enumerate(row))
                              for row in column]
            else:
                values = [int(v) for v in column]
            parts.append((offset, values))
        out = [0] * (count or 0)
        for offset, values in parts:
            for k, v in enumerate(values):
                out[k] |= v << offset
        return out

    def unpack(self, value):
        """The fields of port value ``value``: ints, arrays as lists of ints."""
        value = int(value)
        if not self.fields:
            return value
        out = {}
        for name, (offset, width, count, elem) in self.fields.items():
            v = (value >> offset) & ((1 << width) - 1)
            if count is not None:
                mask = (1 << elem) - 1
                out[name] = [(v >> (k * elem)) & mask for k in range(count)]
            else:
                out[name] = v
        return out
