"""The ``ridge`` recipe: a reservoir's linear readout, solved in closed form.

One pass over the training trajectories (in memory, or read from the file block by block)
accumulates the normal equations ``X^T X`` and ``X^T Y`` (block by block, summed over the
ranks when distributed; with ``val_folds``, one set per fold, :mod:`odernn.learn.folds`);
the ridge strength is then chosen on closed-loop validation error (:func:`choose_ridge`: of
the validation trajectories, or cross-validated by trajectory) or taken as given.
Deterministic: a resumed fit simply runs again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from odernn.data.trajectories import Trajectories
from odernn.interrupt import interrupt_guard
from odernn.learn import distributed as dd
from odernn.learn import folds
from odernn.learn.config import TrainConfig
from odernn.learn.models.esn import ESN
from odernn.learn.outcome import TrainResult, closed_loop_nrmse
from odernn.learn.rundir import run_record
from odernn.learn.stream import Data, layout_params
from odernn.learn.windows import folds_by_trajectory
from odernn.progress import Event, Progress


def check(data: Data, config: TrainConfig) -> None:
    """With ``val_folds``: at least two trajectories, and the folds' normal equations within
    the memory budget (:func:`odernn.learn.folds.check_budget`)."""
    if not config.val_folds:  # None or 0: the holdout
        return
    labels = folds_by_trajectory(data.n, config.val_folds, config.seed)
    layout = config.layout(data.dt, data.system, layout_params(data))
    features = 1 + layout.n_inputs + int(config.units)  # the readout's regressors [1, u, r]
    folds.check_budget(int(labels.max()) + 1, features, layout.n_outputs, data.n,
                       ESN.training_bytes(config.model_args(), *layout.sizes))


def fit(model: ESN, config: TrainConfig, train: Data, val: Trajectories, out: Any,
        source: dict[str, Any], previous: dict[str, Any] | None, report: Progress) -> TrainResult:
    """Accumulate the normal equations once, then pick the ridge on closed-loop validation:
    of ``val`` (a holdout), or with ``val_folds`` cross-validated over ``train`` (``val`` is
    then the training trajectories in memory, :mod:`odernn.learn.folds`).

    One pass, deterministic: a resumed fit simply runs again (``previous`` is not needed).
    """
    start = time.perf_counter()
    task = f"train {config.model}"
    labels = (folds_by_trajectory(train.n, config.val_folds, config.seed) if config.val_folds
              else None)
    sums = folds.accumulate(model, train, labels, lambda done, total: report(Event(
        task, "reservoir", done, total, "accumulating the normal equations")))
    gram, cross, rows = sums.total
    history: list[dict[str, float]] = []

    def score(ridge: float) -> float:
        if labels is None:
            model.solve_readout(gram, cross, rows, ridge)
            err = closed_loop_nrmse(model, val, config.val_steps)
        else:
            err = folds.cv_error(model, sums, labels, val, ridge, config.val_steps)
        history.append({"ridge": ridge, "val_nrmse_x": err, "time": time.perf_counter() - start})
        report(Event(task, "ridge", len(history), None, f"ridge candidate {len(history)}: "
                     f"{ridge:g}, closed-loop val NRMSE(x) {err:.3g}", history[-1], log=True))
        return err

    if config.ridge is not None:
        best, note = (score(config.ridge), config.ridge), "given"
    else:
        best, note = choose_ridge(score, config.ridge_grid)
    model.solve_readout(gram, cross, rows, best[1])
    elapsed = time.perf_counter() - start
    record = run_record(model, config, source, {"val_nrmse_x": best[0], "ridge": best[1],
                                                "train_time_s": elapsed})
    if dd.rank() == 0:
        with interrupt_guard():  # both or neither: a signal between them left best.pt alone
            out.save_best(record)
            out.save_last(record, history)
    dd.barrier()
    status = "ok" if math.isfinite(best[0]) else "diverged"
    if labels is not None:
        k = int(labels.max()) + 1
        note += (f"; {k}-fold cross-validation by trajectory" if k < train.n else
                 f"; leave-one-trajectory-out cross-validation over {k}")
    message = (f"ridge {best[1]:g} chosen ({note})"
               if status == "ok" else "every ridge strength diverged in closed loop; try a "
               "smaller spectral_radius, input_scaling or bias, or larger ridge values")
    # the chosen readout's figures, as a gradient family's epochs are (--tensorboard)
    report(Event(task, "validated", len(history), len(history), message,
                 {"ridge": best[1], "val_nrmse_x": best[0], "time": elapsed}))
    report(Event(task, "done", len(history), len(history), message))
    return TrainResult(out.target, status, message, 0, best[0], history, elapsed)


RIDGE_TOLERANCE = 0.05
"""Ridge strengths whose validation error is within this fraction of the lowest count as equal:
the largest of them is chosen (the most regularised readout that loses nothing measurable)."""
RIDGE_STEP, RIDGE_FLOOR, RIDGE_CEILING = 100.0, 1e-24, 1e4
"""The grid is widened by this factor per step, within these bounds (below the floor: 0)."""


def choose_ridge(score: Callable[[float], float], grid: tuple[float, ...]
                 ) -> tuple[tuple[float, float], str]:
    """The ridge strength to keep, ``((error, ridge), how it was chosen)``.

    ``score(ridge)`` is the closed-loop validation error. Starting from ``grid``, the largest
    ridge within :data:`RIDGE_TOLERANCE` of the lowest error is chosen; while that choice is
    an end of the values tried, the grid is widened beyond it, so the choice is bracketed
    (worse or equal errors on both sides) or the note says why it is not.
    """
    errors = {r: score(r) for r in sorted(set(grid))}

    def pick() -> tuple[float, float]:
        low = min(errors.values())
        if not math.isfinite(low):
            return low, min(errors)
        return low, max(r for r, e in errors.items() if e <= low * (1 + RIDGE_TOLERANCE))

    while True:
        low, ridge = pick()
        lo, hi = min(errors), max(errors)
        if ridge == hi and hi > 0 and hi * RIDGE_STEP <= RIDGE_CEILING and math.isfinite(low):
            errors[hi * RIDGE_STEP] = score(hi * RIDGE_STEP)
        elif ridge == lo and lo > 0 and math.isfinite(low):
            below = lo / RIDGE_STEP if lo / RIDGE_STEP >= RIDGE_FLOOR else 0.0
            errors[below] = score(below)
        else:
            break
    if ridge == 0.0:
        note = "no regularisation was best: least squares, ridge 0"
    elif ridge == max(errors) and len(errors) > 1:
        note = f"the largest tried: the grid is not widened above {RIDGE_CEILING:g}"
    else:
        note = (f"the largest within {RIDGE_TOLERANCE:.0%} of the lowest closed-loop error, "
                f"bracketed by {min(errors):g}..{max(errors):g}")
    return (errors[ridge], ridge), note
