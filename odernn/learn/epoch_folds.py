"""Cross-validation by trajectory for the gradient families (the training option ``val_folds``):
which epoch's weights to keep.

The training trajectories are split into K folds of whole trajectories
(:func:`~odernn.learn.windows.folds_by_trajectory`; K >= N: leave one trajectory out). Fold
k's training runs on the other folds with the same options and seed, and is validated in
closed loop on fold k each time a run validates (``val_every``), as a validation set is. At
each such epoch the folds' errors are pooled over the N trajectories as
:func:`~odernn.learn.outcome.closed_loop_nrmse` pools a validation set: one scale, the std of
all N, so the pooled error is ``sqrt(sum_k n_k RMSE_k^2 / N) / scale`` (inf when any fold
diverged). The training on all N trajectories then keeps the weights of the epoch whose pooled
error is lowest (:class:`FoldScores` stands in for its validation set): K + 1 trainings, where
the holdout costs one and leaves a tenth of the trajectories out of the training.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from odernn.assess.metrics import reference_scale
from odernn.data.trajectories import Trajectories
from odernn.learn.config import TrainConfig
from odernn.learn.outcome import TrainResult
from odernn.learn.windows import folds_by_trajectory

FoldRun = Callable[[Trajectories, Trajectories, TrainConfig, int], TrainResult]
"""Trains on the first trajectories, validating on the second, with the given options; the
last argument is the fold's index (for its progress)."""


@dataclass(frozen=True)
class FoldScores:
    """The folds' pooled closed-loop NRMSE of x at each epoch (1-based epochs ``1 ..
    len(errors)``; nan at an epoch where the runs did not validate)."""

    errors: tuple[float, ...]
    folds: int

    def at(self, epoch: int) -> float:
        """The pooled error after 0-based ``epoch`` (nan past the folds' epochs)."""
        return self.errors[epoch] if epoch < len(self.errors) else math.nan


def fold_scores(train: Trajectories, config: TrainConfig, run: FoldRun) -> FoldScores:
    """Train once per fold of ``train``'s trajectories (``config.val_folds`` of them, each
    run without early stopping, so that every fold validates at every epoch the final run
    does) and pool their validation errors per epoch. Raises KeyboardInterrupt if a fold's
    run was interrupted (nothing is kept: the folds are in memory)."""
    labels = folds_by_trajectory(train.n, config.val_folds, config.seed)
    steps = train.n_steps if config.val_steps is None else min(config.val_steps, train.n_steps)
    scale = reference_scale(train.x[:, :steps])
    fold_config = dataclasses.replace(config, val_folds=0, patience=None)
    squares = np.zeros(config.epochs)  # sum over folds of n_k RMSE_k^2, per epoch
    for k in range(int(labels.max()) + 1):
        held = labels == k
        result = run(train.take(np.flatnonzero(~held)), train.take(np.flatnonzero(held)),
                     fold_config, k)
        if result.status == "interrupted":
            raise KeyboardInterrupt
        fold_scale = reference_scale(train.x[held, :steps])
        errors = np.full(config.epochs, math.inf)  # epochs a diverged run did not reach
        for row in result.history:
            errors[row["epoch"] - 1] = row["val_nrmse_x"]
        with np.errstate(over="ignore", invalid="ignore"):
            squares += held.sum() * np.square(errors * fold_scale)
    pooled = np.sqrt(squares / train.n) / scale
    return FoldScores(tuple(float(e) for e in pooled), int(labels.max()) + 1)
