"""Cores on FPGA boards, talking to the host over the board's UART (docs/board.md).

``dnnhw.boards.board``  :data:`BOARDS`: the iCEBreaker and the ULX3S-85F, one row each.
``dnnhw.boards.top``    :class:`BoardTop`: a catalog core behind the UART bridge, on the
                        board's pins and LEDs.
``dnnhw.boards.build``  :func:`build`: the amaranth-boards build with the YoWASP tools,
                        checked against the board clock; :func:`program`.
"""

from .board import BOARDS, Board, get_board
from .build import BoardBuildError, ProgrammerNotFound, build, program
from .top import BoardTop


__all__ = ["BOARDS", "Board", "BoardBuildError", "BoardTop", "ProgrammerNotFound",
           "build", "get_board", "program"]
