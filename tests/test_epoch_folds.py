"""Cross-validation by trajectory for the gradient families (``val_folds``): the folds' pooled
closed-loop error per epoch, the final run's checkpoint chosen on it, interrupts, refusals."""

from __future__ import annotations

import math
import os
import signal

import numpy as np
import pytest
import torch
from test_models import oscillator_data, small_config

from odernn import budget, load_surrogate
from odernn.assess.metrics import nrmse
from odernn.data.filerows import FileRows
from odernn.data.simulate import simulate
from odernn.data.spec import load_spec
from odernn.errors import DataError, SpecError
from odernn.learn import distributed as dd
from odernn.learn import epoch_folds, stream
from odernn.learn.models import from_record
from odernn.learn.outcome import TrainResult
from odernn.learn.training import train
from odernn.learn.windows import folds_by_trajectory


@pytest.fixture(scope="module")
def data():
    return oscillator_data(n=6, n_steps=80)


@pytest.mark.parametrize("n", [6, 7])
def test_pooled_error_is_the_closed_loop_error_of_each_trajectory_by_the_model_without_it(
        data, n):
    """The pooled score equals the NRMSE of x over all the trajectories, each rolled out by
    the fold model that did not train on it (one scale: all of them), with folds of equal
    size and, of 7 trajectories, of 3, 2 and 2 (each fold weighted by its size). One epoch,
    so that each fold's best checkpoint holds the weights its score is of."""
    data = data if n == 6 else oscillator_data(n=7, n_steps=80)
    config = small_config("gru", val_folds=3, epochs=1, val_every=1)
    labels = folds_by_trajectory(data.n, 3, config.seed)
    assert sorted(np.bincount(labels)) == ([2, 2, 2] if n == 6 else [2, 2, 3])
    pred = np.full_like(data.x, np.nan)

    def run(part, held, fold_config, k):
        assert fold_config.patience is None and not fold_config.val_folds
        assert part.n + held.n == data.n and held.n == np.sum(labels == k)
        result = train(part, fold_config, None, val=held, progress=False)
        model = from_record(result.best_record)
        pred[labels == k] = model.rollout(held.x[:, 0], held.v[:, 0], held.F, held.params).x
        return result

    scores = epoch_folds.fold_scores(data, config, run)
    assert scores.folds == 3 and len(scores.errors) == 1 and math.isfinite(scores.errors[0])
    assert scores.errors[0] == pytest.approx(nrmse(pred, data.x), rel=1e-9)


def test_the_final_run_keeps_the_epoch_the_folds_score_best_and_is_reproducible(data, tmp_path):
    config = small_config("gru", val_folds=3, epochs=4, val_every=1)
    result = train(data, config, tmp_path / "run", progress=False)
    scores = epoch_folds.fold_scores(data, config, lambda p, h, c, k: train(
        p, c, None, val=h, progress=False))
    assert [h["val_nrmse_x"] for h in result.history] == list(scores.errors)
    assert result.best_epoch == int(np.argmin(scores.errors))
    assert result.best_val_nrmse == min(scores.errors)
    assert all(math.isnan(h["val_loss"]) for h in result.history)  # nothing held out
    again = train(data, config, None, progress=False)
    assert [h["val_nrmse_x"] for h in again.history] == list(scores.errors)
    assert again.best_record["config"]["val_folds"] == 3


def test_folds_differ_from_the_holdout_and_train_on_every_trajectory(data, monkeypatch):
    """The holdout validates on one trajectory and trains on five; the folds' final run
    trains on all six (another model), after six trainings on five."""
    from odernn.learn import gradient

    trained, source = [], gradient.window_source
    monkeypatch.setattr(gradient, "window_source",
                        lambda rows, *a, **k: trained.append(rows.n) or source(rows, *a, **k))
    holdout = train(data, small_config("gru", val_fraction=0.2), None, progress=False)
    assert data.n == 6 and trained == [5]
    folds = train(data, small_config("gru", val_folds=6), None, progress=False)
    assert trained == [5] + [5] * 6 + [6]
    h, f = (from_record(r.best_record) for r in (holdout, folds))
    assert not np.array_equal(h.rollout(data.x[:, 0], data.v[:, 0], data.F, data.params).x,
                              f.rollout(data.x[:, 0], data.v[:, 0], data.F, data.params).x)
    assert folds.best_record["config"]["val_folds"] == 6


def test_an_interrupted_fold_writes_nothing_and_keeps_the_previous_run(data, tmp_path):
    run_dir = tmp_path / "run"
    train(data, small_config("gru"), run_dir, progress=False)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    presses = []

    def ctrl_c(event):
        if event.stage == "epoch" and "fold 2 of 3" in event.task and not presses:
            presses.append(event)
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        train(data, small_config("gru", val_folds=3), run_dir, progress=ctrl_c, overwrite=True)
    assert presses and {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_a_fold_that_diverged_makes_its_epochs_infinite(data):
    """Epochs a fold did not reach (its run stopped on a non-finite loss) score inf."""
    config = small_config("gru", val_folds=2, epochs=3, val_every=1)

    def run(part, held, fold_config, k):
        history = [{"epoch": e + 1, "val_nrmse_x": 0.5} for e in range(3 if k == 0 else 1)]
        return TrainResult(None, "ok" if k == 0 else "diverged", "", 0, 0.5, history, 0.0)

    scores = epoch_folds.fold_scores(data, config, run)
    assert math.isfinite(scores.errors[0]) and scores.errors[1:] == (math.inf, math.inf)


def test_val_folds_on_one_trajectory_is_refused_before_anything_is_written(data, tmp_path):
    with pytest.raises(DataError, match="at least 2 folds of at least 2 trajectories"):
        train(data.take(np.arange(1)), small_config("gru", val_folds=3), tmp_path / "r",
              progress=False)
    assert not (tmp_path / "r").exists()


def test_a_run_interrupted_after_its_folds_resumes_to_the_uninterrupted_result(data, tmp_path):
    """The folds are trained again on resume (in memory, deterministic on the CPU): the
    resumed run ends with the uninterrupted one's history and weights."""
    config = small_config("gru", val_folds=3)
    whole = train(data, config, None, progress=False)

    def ctrl_c(event):  # the final run's second epoch, first batch
        if event.task == "train gru" and event.stage == "epoch" and \
                (event.values["epoch"], event.values["batch"]) == (2, 1):
            os.kill(os.getpid(), signal.SIGINT)

    run_dir = tmp_path / "run"
    assert train(data, config, run_dir, progress=ctrl_c).status == "interrupted"
    resumed = train(data, config, run_dir, resume=True, progress=False)
    np.testing.assert_array_equal([h["val_nrmse_x"] for h in resumed.history],
                                  [h["val_nrmse_x"] for h in whole.history])  # nan: unvalidated
    kept = load_surrogate(run_dir / "best.pt").state_dict()
    assert kept.keys() == whole.best_record["state_dict"].keys()
    assert all(torch.equal(kept[k], v) for k, v in whole.best_record["state_dict"].items())
    assert resumed.best_epoch == whole.best_epoch


def test_val_folds_of_a_gradient_family_is_refused_under_data_parallel_training(data, tmp_path,
                                                                                monkeypatch):
    monkeypatch.setattr(dd, "world_size", lambda: 2)  # as under torchrun with two ranks
    monkeypatch.setattr(dd, "setup", lambda device: (device, False))  # no process group
    with pytest.raises(SpecError, match="trains in one process"):
        train(data, small_config("gru", val_folds=3), tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("streamed", [False, True])
def test_val_folds_whose_fold_trainings_exceed_the_budget_are_refused_before_any_read(
        data, tmp_path, monkeypatch, streamed):
    """The folds train in memory on copies of the trajectories: data that fits a training in
    memory but not the folds' (a streamed file too) is refused in one line, nothing written,
    the file not read."""
    source = data
    if streamed:
        spec = load_spec("train").with_overrides(n=6, n_steps=80, integrator="exact")
        source = FileRows(simulate(spec, tmp_path / "train.h5", progress=False))
        monkeypatch.setattr(FileRows, "read", lambda *a, **k: pytest.fail("the file was read"))
    config = small_config("gru", val_folds=3)
    monkeypatch.setenv(budget.ENV, str(stream.in_memory_bytes(source, copies=3) - 1))
    assert stream.in_memory_bytes(source) <= budget.memory_budget()[0]  # training alone fits
    with pytest.raises(budget.BudgetError, match="val_folds = 3 with a gradient family: 6 "
                       "trajectories of 80 points .* use val_fraction or a validation set"):
        train(source, config, tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()
