"""``dnnhw board build``, ``dnnhw board program`` and ``dnnhw board run``: the parser and
the commands, kept here so that :mod:`dnnhw.cli` only registers them."""

import json
import sys
from pathlib import Path

from dnnhw.catalog import ParameterError, get_core

from .board import BOARDS


__all__ = ["add_board_parser", "cmd_board"]


def add_board_parser(sub, core_args):
    """Add ``board`` to the subparsers ``sub``; ``core_args(p)`` adds CORE and ``-p``."""
    board = sub.add_parser("board", help="build a core's bitstream for a board behind "
                           "the UART bridge, or load one")
    actions = board.add_subparsers(dest="board_command", required=True)

    p = actions.add_parser("build", help="bitstream, sidecar and board.json "
                           "(utilization, timing at the board clock)")
    core_args(p)
    p.add_argument("--board", required=True, choices=BOARDS)
    p.add_argument("-o", "--output", default="dnnhw-board", help="output directory")
    p.add_argument("--baud", type=int, default=115200, help="UART line rate (default 115200)")
    p.add_argument("--max-payload", type=int, default=256,
                   help="the bridge's frame buffer, bytes (default 256)")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placer seed")

    p = actions.add_parser("program", help="load a bitstream with iceprog or openFPGALoader")
    p.add_argument("bitstream", help="the bitstream, or the output directory of "
                   "`dnnhw board build` (its board.json names the bitstream and board)")
    p.add_argument("--board", choices=BOARDS,
                   help="the board (default: the one in the directory's board.json)")

    p = actions.add_parser("run", help="stream tensors through the core on a board, check "
                           "the result against the golden model, report the throughput")
    core_args(p)
    p.add_argument("--port", required=True, help="the board's serial port, e.g. /dev/ttyUSB1")
    p.add_argument("--input", help="the tensors: a .npy file (x) or an .npz file of named "
                   "arrays, as the core's board job takes them (default: example data)")
    p.add_argument("--baud", type=int, default=115200,
                   help="the UART's line rate the board was built for (default 115200)")
    p.add_argument("--timeout", type=float, default=5.0,
                   help="seconds with nothing from the board before giving up (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the example data")
    p.add_argument("-o", "--output", help="save the board's outputs as an .npz file")


def _build(args):
    from . import BoardBuildError, build
    from dnnhw.cli import _parse_params
    try:
        record = build(args.core, _parse_params(args.param), board=args.board,
                       out_dir=args.output, baud=args.baud, max_payload=args.max_payload,
                       seed=args.seed)
    except BoardBuildError as error:
        # Not a usage error: the parameters are legal, the board is too small or slow.
        print(f"dnnhw: {error}", file=sys.stderr)
        return 1
    used = record["utilization"]
    cells = used["logic_cells"]
    print(f"{record['module']} on the {record['board']} ({record['target']}):")
    print(f"  {cells['bel']} {cells['used']} of {cells['available']} "
          f"({100 * cells['used'] / cells['available']:.0f} %); LUT {used['lut']}, "
          f"FF {used['ff']}, carry {used['carry']}, BRAM {used['bram']}, DSP {used['dsp']}")
    timing = record["timing"]
    print(f"  Fmax {timing['fmax_mhz']:.2f} MHz at a {timing['board_clock_mhz']:g} MHz "
          f"board clock: margin {timing['margin_mhz']:.2f} MHz "
          f"({timing['margin_percent']:.0f} %)")
    print(f"  UART {record['baud']} baud (divisor {record['divisor']})")
    for kind in ("bitstream", "sidecar", "board"):
        print(f"  {kind}: {record['files'][kind]}")
    return 0


def _program(args):
    from . import ProgrammerNotFound, program
    path, board = Path(args.bitstream), args.board
    if path.is_dir():
        try:
            record = json.loads((path / "board.json").read_text())
        except (OSError, ValueError) as error:
            raise ParameterError(f"{path} holds no board.json of `dnnhw board build`: "
                                 f"{error}") from None
        path, board = Path(record["files"]["bitstream"]), board or record["board"]
    if board is None:
        raise ParameterError(f"--board is needed with a bitstream file; boards: "
                             f"{', '.join(BOARDS)}")
    try:
        command = program(path, board=board)
    except ProgrammerNotFound as error:
        print(f"dnnhw: error: {error}", file=sys.stderr)
        return 2
    print(" ".join(command))
    return 0


def _run(args):
    import numpy as np

    from dnnhw.cli import _parse_params
    from dnnhw.host.board import BoardError
    from .run import run_on_board
    try:
        result = run_on_board(args.core, _parse_params(args.param), port=args.port,
                              input_path=args.input, baud=args.baud, timeout=args.timeout,
                              seed=args.seed)
    except BoardError as error:
        print(f"dnnhw: the board failed: {error}", file=sys.stderr)
        return 1
    except OSError as error:          # the port cannot be opened
        print(f"dnnhw: cannot open --port {args.port}: {error}", file=sys.stderr)
        return 1
    job = result.job
    print(f"{args.core}: {job.describe}")
    print(f"  link: {result.throughput.summary()}")
    for note in result.notes:
        print(f"  note: {note}")
    if args.output and job.decode is not None:
        np.savez(args.output, **job.decode(result.outputs))
        print(f"  outputs: {args.output}")
    if result.mismatches:
        print(f"  DIFFERS from the golden model ({get_core(args.core).golden}):",
              file=sys.stderr)
        for line in result.mismatches:
            print(f"    {line}", file=sys.stderr)
        return 1
    beats = sum(len(v) for v in result.outputs.values())
    print(f"  {beats} output beats bit-exact against the golden model "
          f"({get_core(args.core).golden})")
    return 0


def cmd_board(args):
    return {"build": _build, "program": _program, "run": _run}[args.board_command](args)
