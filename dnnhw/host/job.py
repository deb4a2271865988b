"""A job for the board (``dnnhw board run``): the tensors a user brings, laid out as the
beats of a core's streams, with the golden model's answer to check the board against.

Each catalog row that can run over the link names its job maker (``Core.board_job``,
``module:function``), with the signature ``make(arrays, params, sidecar, rng)``:

``arrays``
    The user's tensors by name (:func:`load_arrays`: one ``.npy`` is ``{"x": ...}``, an
    ``.npz`` gives its own names); empty for the maker's own example data.
``params``
    The core's parameters, resolved (every one present).
``sidecar``
    The core's sidecar, for its stream fields (:class:`dnnhw.sim.payload.PayloadFormat`).
``rng``
    A NumPy generator, for example data.

It returns a :class:`BoardJob`, or raises :class:`ValueError` naming the array and what
it must be. :func:`run_job` sends the job through a :class:`~dnnhw.host.board.Board` and
compares every output beat.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


__all__ = ["BoardJob", "JobResult", "load_arrays", "run_job"]


@dataclass(frozen=True)
class BoardJob:
    """One run of a core over the link.

    Members
    -------
    inputs : dict of str to list of int
        Beats for each sink stream, by the sidecar's names.
    expected : dict of str to list of int
        The golden model's beats for each source stream.
    describe : str
        What the job is, in one line (shapes, data, what the golden model predicts).
    core_error : bool or None
        The core's ``error``/``overflow`` the golden model predicts after the job (STATE
        bit 1), or None when the core has no such output.
    decode : callable or None
        ``decode(outputs) -> dict of str to ndarray``: the source beats as the user's
        tensors (``dnnhw board run -o`` saves them).
    """
    inputs: dict
    expected: dict
    describe: str
    core_error: bool = None
    decode: object = None

    @property
    def expect(self):
        """Beats to wait for, per source stream."""
        return {name: len(beats) for name, beats in self.expected.items()}


@dataclass(frozen=True)
class JobResult:
    """What :func:`run_job` found.

    Members
    -------
    outputs : dict of str to list of int
        The beats the board sent.
    mismatches : list of str
        Every difference from the job's golden beats, first ones first (at most
        ``limit`` described, then a count); empty when the board is bit-exact.
    state : dict
        :meth:`Board.status` after the job.
    throughput : :class:`~dnnhw.host.board.Throughput`
    notes : list of str
        What is worth saying but is no difference (a sticky flag set earlier).
    """
    outputs: dict
    mismatches: list
    state: dict
    throughput: object
    notes: list = field(default_factory=list)
    job: BoardJob = field(repr=False, default=None)

    @property
    def passed(self):
        return not self.mismatches


def load_arrays(path):
    """The tensors in ``path``: a ``.npy`` file is ``{"x": array}``, an ``.npz`` file its
    arrays by name. Pickled objects are refused (a tensor file never needs them)."""
    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"input {path} does not exist")
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise ValueError(f"input {path} is not a .npy or .npz file of plain arrays: "
                         f"{error}") from None
    if isinstance(loaded, np.ndarray):
        return {"x": loaded}
    with loaded:
        return {name: loaded[name] for name in loaded.files}


def _compare(name, got, want, limit):
    problems = []
    for index, (g, w) in enumerate(zip(got, want)):
        if g != w:
            problems.append(f"{name}[{index}]: board {g:#x}, golden {w:#x}")
    if len(got) != len(want):
        problems.append(f"{name}: {len(got)} beats from the board, {len(want)} golden")
    if len(problems) > limit:
        problems = problems[:limit] + [f"{name}: {len(problems) - limit} more differences"]
    return problems


def run_job(board, job, *, timeout=None, limit=5):
    """Run ``job`` on ``board`` (a :class:`~dnnhw.host.board.Board`): write every
    input, collect the expected number of beats on every output, read ``STATE``, and
    compare. Returns a :class:`JobResult`; a board that stops answering raises
    :class:`~dnnhw.host.board.BoardError`."""
    if not isinstance(job, BoardJob):
        raise TypeError(f"job must be a BoardJob, got {type(job).__name__}")
    outputs = board.run(job.inputs, expect=job.expect, timeout=timeout)
    state = board.status()
    mismatches = []
    for name, want in job.expected.items():
        mismatches += _compare(name, outputs[name], want, limit)
    notes = []
    if job.core_error and not state["core_error"]:
        mismatches.append("the golden model sets the core's error/overflow flag; the "
                          "board's is clear")
    elif state["core_error"] and job.core_error is False:
        # The flag is sticky: an earlier job since the board was programmed may have set it.
        notes.append("the core's error/overflow flag is set, from an earlier job: the "
                     "golden model does not set it for this one")
    return JobResult(outputs=outputs, mismatches=mismatches, state=state,
                     throughput=board.last_run, notes=notes, job=job)
