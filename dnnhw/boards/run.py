"""``dnnhw board run``: a user's tensors through a core on the board, checked against the
golden model, with the link's throughput.

The sidecar comes from the catalog at the given parameters, exactly as ``dnnhw board
build`` made it, so the host refuses a board programmed with another module
(:meth:`dnnhw.host.Board.check`). The tensors become beats by the core's own board job
(``Core.board_job``, :mod:`dnnhw.host.job`).
"""

import numpy as np

from dnnhw.catalog import ParameterError, get_core
from dnnhw.generate import describe
from dnnhw.host.board import Board
from dnnhw.host.job import load_arrays, run_job


__all__ = ["make_job", "run_on_board"]


def make_job(core, params=None, *, arrays=None, seed=0):
    """``(sidecar, job)``: the core's sidecar at ``params`` and its
    :class:`~dnnhw.host.job.BoardJob` for ``arrays`` (tensors by name; None or empty:
    the job's example data, drawn with ``seed``). A tensor the job refuses raises
    :class:`ParameterError` with the job's reason."""
    core = get_core(core) if isinstance(core, str) else core
    maker = core.board_job_maker()
    params = core.resolve(params)
    sidecar = describe(core.build(params), core=core.name, module=core.module_name(params),
                       params=params)
    try:
        job = maker(dict(arrays or {}), params, sidecar, np.random.default_rng(seed))
    except ValueError as error:
        raise ParameterError(f"{core.name}: {error}") from None
    return sidecar, job


def run_on_board(core, params=None, *, port, input_path=None, baud=115200, timeout=5.0,
                 seed=0):
    """Run ``core``'s job for the tensors in the file ``input_path`` (None: example data) on the
    board at ``port``; returns the :class:`~dnnhw.host.job.JobResult`."""
    arrays = None
    if input_path is not None:
        try:
            arrays = load_arrays(input_path)
        except (OSError, ValueError) as error:
            raise ParameterError(f"--input: {error}") from None
    sidecar, job = make_job(core, params, arrays=arrays, seed=seed)
    with Board(port, sidecar=sidecar, baudrate=baud, timeout=timeout) as board:
        board.check()
        return run_job(board, job)
