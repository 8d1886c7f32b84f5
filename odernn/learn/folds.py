"""Cross-validation by trajectory for the reservoir's readout (the training option ``val_folds``).

The training trajectories are split into K folds of whole trajectories
(:func:`~odernn.learn.windows.folds_by_trajectory`; K >= N: leave one trajectory out). One
run of the reservoir over them accumulates the normal equations of all of them, as the
holdout accumulates its own, and of each fold, ``X_k^T X_k``, ``X_k^T Y_k`` and rows
(:class:`FoldSums`); the readout that did not see fold k solves with the totals less fold
k's (downdating: no fit per fold). A ridge strength's score (:func:`cv_error`) is the
closed-loop NRMSE(x) of every training trajectory, each rolled out from its initial state
with the readout that did not see it, pooled over the N trajectories as
:func:`~odernn.learn.outcome.closed_loop_nrmse` pools a validation set (one scale, the std of
all N; inf when any diverged): one batched rollout, trajectory ``i`` read out by its fold's
readout. The readout kept is then solved from the totals at the chosen ridge: the same
readout whatever K (the totals are not the sum of the folds', which would differ in its
rounding with K, and a weak ridge amplifies rounding).

The inputs' normalisation (means and spreads) is that of all N trajectories, fold k's
included: only the readout is kept from the fold it scores. Per-fold statistics would change
every reservoir state, so K + 1 runs of the reservoir in place of one. (A gradient family's
folds, :mod:`~odernn.learn.epoch_folds`, are trainings of their own, each normalised by its
own trajectories.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from odernn import budget
from odernn.data.trajectories import Trajectories
from odernn.learn import distributed as dd
from odernn.learn.models.esn import ESN, add_products
from odernn.learn.outcome import closed_loop_nrmse
from odernn.learn.stream import Data, tensor_blocks

BLOCK = 64
"""Trajectories run through the reservoir at a time while accumulating."""


@dataclass
class FoldSums:
    """The normal equations of all the trajectories, ``total = (gram (F, F), cross (F, O),
    rows)`` in float64, accumulated as the holdout accumulates its own (so the readout kept
    is the same whatever the folds), and each fold's, ``gram (K, F, F)``, ``cross (K, F, O)``,
    ``rows (K,)`` (empty without folds)."""

    total: tuple[Tensor, Tensor, int]
    gram: Tensor
    cross: Tensor
    rows: list[int]

    def without(self, k: int) -> tuple[Tensor, Tensor, int]:
        """The normal equations of every fold but ``k`` (the totals less fold ``k``'s)."""
        gram, cross, rows = self.total
        return gram - self.gram[k], cross - self.cross[k], rows - self.rows[k]


def check_budget(folds: int, features: int, outputs: int, n: int, base: int) -> None:
    """Refuse ``folds`` sets of normal equations, with a fold's complement and the rollout's
    per-trajectory readouts, on top of ``base`` (the reservoir's own training estimate), over
    the memory budget, before they are allocated."""
    need = base + (folds + 1) * features * (features + outputs) * 8 + n * outputs * features * 4
    budget.check(f"val_folds = {folds} (folds of {n} trajectories, {features} regressors)",
                 need, "each fold keeps its normal equations, (units + inputs + 1) squared "
                 "in float64; reduce val_folds (0: the holdout, also when it was automatic) "
                 "or units")


def accumulate(model: ESN, data: Data, labels: np.ndarray | None,
               report: Callable[[int, int], None]) -> FoldSums:
    """One run of the reservoir over ``data`` (in memory or streamed): the normal equations of
    all of it and of each fold of ``labels (N,)`` (None: no folds), summed over the ranks
    when distributed (each rank runs its contiguous share). ``report(done, total)`` per
    block."""
    k = 0 if labels is None else int(labels.max()) + 1
    nf, no, device = model.n_features, model.layout.n_outputs, model.device
    gram = torch.zeros(k + 1, nf, nf, dtype=torch.float64, device=device)  # [k]: the total
    cross = torch.zeros(k + 1, nf, no, dtype=torch.float64, device=device)
    rows = np.zeros(k + 1, dtype=np.int64)
    mine = dd.share(data.n)  # each rank accumulates its contiguous share of trajectories
    # in memory or read block by block from the file (never the whole set: stream.py)
    for done, block in tensor_blocks(data, model.layout, model.device, BLOCK, mine):
        part = None if labels is None else labels[mine.start + done - block.n:mine.start + done]
        for x, y in model.regressors(block.z, block.e):
            xs = x.reshape(-1, nf)
            add_products(gram[k], cross[k], xs, y.reshape(xs.shape[0], -1))
            rows[k] += xs.shape[0]
            for fold in [] if part is None else np.unique(part).tolist():
                sel = torch.as_tensor(part == fold, device=device)
                xs = x[sel].reshape(-1, nf)
                add_products(gram[fold], cross[fold], xs, y[sel].reshape(xs.shape[0], -1))
                rows[fold] += xs.shape[0]
        report(done, mine.stop - mine.start)
    dd.all_sum(gram)
    dd.all_sum(cross)
    summed = [int(r) for r in dd.all_sum(torch.as_tensor(rows, dtype=torch.float64)).tolist()]
    return FoldSums((gram[k], cross[k], summed[k]), gram[:k], cross[:k], summed[:k])


def readouts(model: ESN, sums: FoldSums, ridge: float) -> Tensor:
    """Each fold's readout at ``ridge``, solved without that fold: ``(K, O, F)``."""
    out = []
    for k in range(len(sums.rows)):
        model.solve_readout(*sums.without(k), ridge)
        out.append(model.W_out.detach().clone())
    return torch.stack(out)


def cv_error(model: ESN, sums: FoldSums, labels: np.ndarray, data: Trajectories,
             ridge: float, n_steps: int | None) -> float:
    """The cross-validated closed-loop NRMSE(x) at ``ridge`` (the module's docstring): the
    trajectories ``data`` (all N, in the order of ``labels``) rolled out together, each with
    the readout of its fold's complement. Leaves ``model``'s own readout unspecified."""
    w = readouts(model, sums, ridge)[torch.as_tensor(labels, device=model.device)]
    with read_out_by(model, w):
        return closed_loop_nrmse(model, data, n_steps)


@contextmanager
def read_out_by(model: ESN, w: Tensor) -> Iterator[None]:
    """Inside, ``model``'s closed loop reads trajectory ``i`` out with ``w[i] (O, F)`` (the
    features ``[1, u, r]`` of :meth:`ESN.readout`, applied in float32 as it applies its own):
    its inference step is replaced on the instance, and restored on leaving."""
    def step(u: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        r = model.reservoir_step(u, state[0])
        c = u.shape[-1]
        y = torch.baddbmm(w[:, :, :1], w[:, :, 1:1 + c], u[:, :, None])
        return y.baddbmm_(w[:, :, 1 + c:], r[:, :, None])[..., 0], (r,)

    model.inference_step = lambda: step
    try:
        yield
    finally:
        del model.inference_step
