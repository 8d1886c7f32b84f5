"""The linear skip's start: ``D u + c`` at the least-squares fit of the teacher-forced
outputs before the first gradient step, so the recurrent part learns only what is not
linear in the inputs (:mod:`odernn.learn.models.readout`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import Tensor

from odernn import budget
from odernn.learn.models.readout import skip_features
from odernn.learn.windows import SequenceTensors

SKIP_RIDGE = 1e-10
"""The skip's least squares: a ridge of this times the mean diagonal of its normal equations.
Its features can be nearly collinear (three forcing samples a step apart, the parameters'
powers): without it the weakest directions' coefficients depend on rounding, so that a
streamed and an in-memory fit, or two summation orders, could differ in them."""


SKIP_CHUNK_BYTES = 64 << 20
"""The skip's least squares sums its normal equations over chunks of trajectories whose
float64 features take at most this many bytes, not the whole set's at once ..."""
SKIP_BUDGET_SHARE = 8
"""... nor more than this fraction of the memory budget: the fit holds a chunk's regressors,
its targets (at most as large) and a few trajectories' features (:data:`PIECE_BYTES`), a
quarter of the budget at most. Only a budget under 512 MiB makes the chunks smaller, and
then the skip's rounding depends on it, the same in memory and streamed."""


NORMAL_ARRAYS = 5
"""Square float64 arrays of the skip's normal equations held at once: their sum, a chunk's
product, the ridged copy, torch's identity and the factorisation (with 120 parameter inputs
and products = 3 they asked for 18 TB, unchecked)."""
PIECE_BYTES = 4 << 20
"""The features are computed a few trajectories at a time, whose float32 features take at most
this many bytes, straight into the chunk's float64 regressors, one pair of arrays for every
chunk: the chunk's trajectories joined, its float32 features, their concatenation and a new
pair of arrays for the next chunk while the last was still held took three times the
regressors (a streamed LSTM's peak went from 460 to 630 MiB, docs/scaling.md)."""


def fit_skip(model, blocks: Iterable[SequenceTensors]) -> None:
    """Start the linear skip ``D u + c`` at the least-squares fit of the teacher-forced outputs,
    so the recurrent part learns only what is not linear in the inputs: the normal equations
    summed in float64 over chunks of trajectories (:func:`_chunks`), with a tiny ridge
    (:data:`SKIP_RIDGE`)."""
    gram = cross = None
    with torch.no_grad():
        for x, y in _chunks(model, blocks):
            if gram is None:
                gram, cross = x.T @ x, x.T @ y
            else:
                gram += x.T @ x
                cross += x.T @ y
        ridge = SKIP_RIDGE * float(gram.diagonal().mean())
        coef = torch.linalg.solve(gram + ridge * torch.eye(gram.shape[0], dtype=gram.dtype),
                                  cross).to(model.D)
        model.D.copy_(coef[:-1].T)
        model.c.copy_(coef[-1])


def _chunks(model, blocks: Iterable[SequenceTensors]) -> Iterator[tuple[Tensor, Tensor]]:
    """The regressors ``[features, 1]`` and targets, float64 on the CPU, one row per step, of
    the trajectories of ``blocks`` in chunks whose regressors take at most
    :data:`SKIP_CHUNK_BYTES` (:data:`SKIP_BUDGET_SHARE`; the arrays of one chunk are those of
    the next, overwritten, and the last is a view of their first rows): the same chunks, so
    the same sums to the last bit, whether the trajectories come in one block (in memory) or
    in many (streamed from a file): a streamed run's skip once differed from an in-memory
    one's by its rounding, which Adam carried into the weights (docs/scaling.md)."""
    width, outputs = model.D.shape[1] + 1, model.D.shape[0]
    x = y = None
    n = rows = 0
    for block in blocks:
        steps = block.n_steps - 1
        if not rows:
            limit = min(SKIP_CHUNK_BYTES, budget.memory_budget()[0] // SKIP_BUDGET_SHARE)
            rows = max(1, limit // (8 * width * block.n_steps))
            piece = max(1, PIECE_BYTES // (4 * width * block.n_steps))
            held = min(rows, block.n)  # a chunk's pages are touched as they are filled
            budget.check(f"the linear skip's least squares over {width - 1} features",
                         NORMAL_ARRAYS * 8 * width * width + (8 * held * (width + outputs)
                                                              + 4 * min(piece, held) * width)
                         * block.n_steps,
                         "that is for its normal equations and a chunk of its regressors; "
                         "give fewer parameter products (products = 1 or 0) or no skip")
        lo = 0
        while lo < block.n:
            if x is None:  # one pair for every chunk (a chunk is summed before the next is
                # filled), its pages touched as they are filled: a set shorter than a chunk
                # takes its own size
                x = torch.empty(rows * steps, width, dtype=torch.float64)
                y = torch.empty(rows * steps, outputs, dtype=torch.float64)
            take = min(rows - n, block.n - lo)
            for a in range(lo, lo + take, piece):
                b = min(a + piece, lo + take)
                z, e = block.z[a:b], block.e[a:b]
                at = slice((n + a - lo) * steps, (n + b - lo) * steps)
                u = skip_features(model, model.codec.encode(z[:, :-1], e[:, :-1]))
                x[at, :-1] = u.reshape(-1, width - 1)
                x[at, -1] = 1.0
                y[at] = model.codec.target(z[:, :-1], z[:, 1:], e[:, :-1]).reshape(-1, outputs)
            n, lo = n + take, lo + take
            if n == rows:
                yield x, y
                n = 0
    if n:
        yield x[:n * steps], y[:n * steps]
