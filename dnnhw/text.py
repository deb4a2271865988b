"""Text helpers every layer may use: the one markdown table writer and the one log tail.

Stdlib only, so that ``synth``, ``sim``, ``bench`` and ``report`` can all import it.
"""

from pathlib import Path


__all__ = ["markdown_table", "tail"]


def markdown_table(header, rows, align=None):
    """A markdown table.

    ``header`` is a sequence of column titles, ``rows`` a sequence of sequences of cells
    (formatted with ``str``). ``align`` is a string with one character per column, ``l``
    (left, the default for every column when ``align`` is ``None``) or ``r`` (right, for
    numbers).
    """
    header = [str(h) for h in header]
    align = align or "l" * len(header)
    if len(align) != len(header):
        raise ValueError(f"align has {len(align)} characters for {len(header)} columns")
    if set(align) - {"l", "r"}:
        raise ValueError(f"align takes only 'l' and 'r', got {align!r}")
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    for row in rows:
        row = [str(cell) for cell in row]
        if len(row) != len(header):
            raise ValueError(f"row {row} has {len(row)} cells for {len(header)} columns")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def tail(path, lines=40):
    """The last ``lines`` lines of the text file at ``path``, or ``None`` if it cannot be
    read."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return None
    return "\n".join(text.splitlines()[-lines:])
