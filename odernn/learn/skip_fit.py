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
"""... nor more than this fraction of the memory budget: a chunk holds about four times its
features (the float64 and float32 features, the targets, the trajectories joined), so the
fit stays within half the budget. Only a budget under 512 MiB makes the chunks smaller, and
then the skip's rounding depends on it, the same in memory and streamed."""


def fit_skip(model, blocks: Iterable[SequenceTensors]) -> None:
    """Start the linear skip ``D u + c`` at the least-squares fit of the teacher-forced outputs,
    so the recurrent part learns only what is not linear in the inputs: the normal equations
    summed in float64 over chunks of trajectories (:func:`_chunks`), with a tiny ridge
    (:data:`SKIP_RIDGE`)."""
    gram = cross = None
    with torch.no_grad():
        for z, e in _chunks(model, blocks):
            u = skip_features(model, model.codec.encode(z[:, :-1], e[:, :-1]))
            u = u.reshape(-1, model.D.shape[1])
            y = model.codec.target(z[:, :-1], z[:, 1:], e[:, :-1])
            x = torch.cat([u, torch.ones_like(u[:, :1])], dim=1).double().cpu()
            y = y.reshape(u.shape[0], -1).double().cpu()
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
    """The trajectories of ``blocks`` as ``(z, e)`` in chunks whose float64 skip features take at
    most :data:`SKIP_CHUNK_BYTES` (:data:`SKIP_BUDGET_SHARE`): the same chunks, so the same
    sums to the last bit, whether they come in one block (in memory) or in many (streamed
    from a file): a streamed run's skip once differed from an in-memory one's by its
    rounding, which Adam carried into the weights (docs/scaling.md)."""
    held: list[SequenceTensors] = []
    n = rows = 0
    for block in blocks:
        if not rows:
            limit = min(SKIP_CHUNK_BYTES, budget.memory_budget()[0] // SKIP_BUDGET_SHARE)
            rows = max(1, limit // (8 * (model.D.shape[1] + 1) * block.n_steps))
        lo = 0
        while lo < block.n:
            take = min(rows - n, block.n - lo)
            held.append(SequenceTensors(block.z[lo:lo + take], block.e[lo:lo + take]))
            n, lo = n + take, lo + take
            if n == rows:
                yield _joined(held)
                held, n = [], 0
    if held:
        yield _joined(held)


def _joined(parts: list[SequenceTensors]) -> tuple[Tensor, Tensor]:
    if len(parts) == 1:  # in memory: a slice of the one block, no copy
        return parts[0].z, parts[0].e
    return torch.cat([p.z for p in parts]), torch.cat([p.e for p in parts])
