"""The boards a core can be built for: one row each, as the catalog has one per core."""

from dataclasses import dataclass
import importlib

from dnnhw.catalog import ParameterError


__all__ = ["Board", "BOARDS", "get_board"]


@dataclass(frozen=True)
class Board:
    """One board.

    Members
    -------
    name : str
        The name on the command line, e.g. ``icebreaker``.
    platform : str
        ``module:Class`` of its amaranth-boards platform (imported lazily).
    target : str
        The key of :data:`dnnhw.synth.build.TARGETS` for its FPGA: the board build uses
        that target's Yosys options, nextpnr placer and router, so that a board build and
        the core's out-of-context record are made the same way.
    bitstream : str
        The suffix of the bitstream amaranth-boards writes (``.bin``, ``.bit``).
    leds : tuple of str
        What the user LEDs ``led`` 0, 1, ... show, each a name of :data:`INDICATORS`.
    programmers : tuple of (str, tuple of str)
        The tools that load a bitstream into it, in order of preference, with their
        arguments (``{bitstream}`` stands for the file).
    """
    name: str
    platform: str
    target: str
    bitstream: str
    leds: tuple
    programmers: tuple

    def platform_class(self):
        module, _, cls = self.platform.partition(":")
        return getattr(importlib.import_module(module), cls)


#: What an LED can show: the bridge's ``activity`` (a frame coming in or going out),
#: ``busy`` (a WRITE's beats going into the core), ``frame_error`` (sticky), the core's
#: ``core_error`` (its error/overflow outputs), and ``error``: either of the last two,
#: for a board with few LEDs.
INDICATORS = ("activity", "busy", "frame_error", "core_error", "error")

BOARDS = {board.name: board for board in (
    # Two user LEDs on the board itself (led 0 red, led 1 green); the five on the
    # break-off PMOD are left alone, as the PMOD may be snapped off.
    Board("icebreaker", "amaranth_boards.icebreaker:ICEBreakerPlatform", "ice40-up5k",
          ".bin", leds=("error", "activity"),
          programmers=(("iceprog", ("{bitstream}",)),
                       ("openFPGALoader", ("-b", "icebreaker", "{bitstream}")))),
    Board("ulx3s", "amaranth_boards.ulx3s:ULX3S_85F_Platform", "ecp5-85f", ".bit",
          leds=("activity", "busy", "frame_error", "core_error"),
          programmers=(("openFPGALoader", ("-b", "ulx3s", "{bitstream}")),)),
)}


def get_board(name):
    """The row of :data:`BOARDS` called ``name``, or :class:`ParameterError` naming the
    boards."""
    if name not in BOARDS:
        raise ParameterError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}")
    return BOARDS[name]
