"""Cross-validation by trajectory for the reservoir's ridge (``val_folds``): the folds, the
downdated normal equations, the pooled closed-loop score, the option's refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_cli import assert_one_line_error
from test_distributed import ESN, odernn
from test_esn import esn
from test_models import oscillator_data, small_config

from odernn import budget
from odernn.assess.metrics import nrmse
from odernn.cli.app import main
from odernn.data.filerows import FileRows
from odernn.data.simulate import simulate
from odernn.data.spec import load_spec
from odernn.data.store import read_trajectories
from odernn.errors import DataError, SpecError
from odernn.learn import folds
from odernn.learn.checkpoint import read_checkpoint
from odernn.learn.config import VAL_FRACTION, TrainConfig
from odernn.learn.ridge import RIDGE_TOLERANCE
from odernn.learn.training import train
from odernn.learn.windows import folds_by_trajectory, to_tensors


@pytest.fixture(scope="module")
def data():
    return oscillator_data(n=7, n_steps=80)


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    """A file of 9 linear oscillators of 80 points."""
    spec = load_spec("train").with_overrides(n=9, n_steps=80, integrator="exact")
    return simulate(spec, tmp_path_factory.mktemp("folds") / "train.h5", progress=False)


def quiet(done: int, total: int) -> None:
    pass


def from_scratch(model, part):
    """The normal equations of ``part`` alone, accumulated as the holdout accumulates them."""
    t = to_tensors(part, model.layout)
    gram = torch.zeros(model.n_features, model.n_features, dtype=torch.float64)
    cross = torch.zeros(model.n_features, 2, dtype=torch.float64)
    return gram, cross, model.accumulate(t.z, t.e, gram, cross)


def test_folds_are_whole_trajectories_even_and_fixed_by_the_seed():
    labels = folds_by_trajectory(10, 3, seed=4)
    assert sorted(np.bincount(labels)) == [3, 3, 4]
    assert np.array_equal(labels, folds_by_trajectory(10, 3, seed=4))
    assert not np.array_equal(labels, folds_by_trajectory(10, 3, seed=5))
    for k in (10, 11, 1000):  # K >= N: leave one trajectory out, N folds of one
        assert sorted(folds_by_trajectory(10, k, seed=0)) == list(range(10))
    for n, k in ((10, 1), (1, 2)):
        with pytest.raises(DataError, match="at least 2 folds"):
            folds_by_trajectory(n, k, seed=0)


def test_downdated_fold_equations_equal_those_accumulated_without_the_fold(data):
    """Total less fold k = the complement accumulated from scratch; the readouts solved from
    both agree to float64 rounding. The reservoir runs in float64 here: in float32 a
    trajectory's states differ in their last bits with the batch it runs in."""
    model = esn(data).double()
    labels = folds_by_trajectory(data.n, 3, seed=0)
    sums = folds.accumulate(model, data, labels, quiet)
    assert sums.rows == [np.sum(labels == k) * 79 for k in range(3)]
    ridge = 1e-4  # condition ~1e5: a solve loses about 5 of float64's 16 digits
    stored = folds.readouts(model, sums, ridge)
    for k in range(3):
        gram, cross, rows = sums.without(k)
        g0, c0, n0 = from_scratch(model, data.take(np.flatnonzero(labels != k)))
        assert rows == n0
        torch.testing.assert_close(gram, g0, rtol=1e-12, atol=1e-10)
        torch.testing.assert_close(cross, c0, rtol=1e-12, atol=1e-10)
        eye = ridge * torch.eye(model.n_features, dtype=torch.float64)
        w, w0 = (torch.linalg.solve(g / n + eye, c / n) for g, c, n in ((gram, cross, rows),
                                                                        (g0, c0, n0)))
        torch.testing.assert_close(w, w0, rtol=1e-9, atol=1e-10)
        model.solve_readout(g0, c0, n0, ridge)
        torch.testing.assert_close(stored[k], model.W_out.detach(), rtol=1e-9, atol=1e-10)
        torch.testing.assert_close(stored[k], w.T, rtol=1e-9, atol=1e-10)


def test_the_score_pools_every_trajectory_rolled_out_by_the_readout_that_did_not_see_it(data):
    """One batched rollout with per-trajectory readouts = each fold rolled out on its own with
    its complement's readout, pooled as the holdout pools its validation set."""
    model = esn(data)
    labels = folds_by_trajectory(data.n, 3, seed=1)
    sums = folds.accumulate(model, data, labels, quiet)
    ridge = 1e-6
    score = folds.cv_error(model, sums, labels, data, ridge, None)
    assert "inference_step" not in vars(model)  # the model's own step is back
    x = np.empty_like(data.x)
    for k in range(3):
        model.solve_readout(*sums.without(k), ridge)
        part = np.flatnonzero(labels == k)
        held = data.take(part)
        x[part] = model.rollout(held.x[:, 0], held.v[:, 0], held.F, held.params).x
    assert score == pytest.approx(nrmse(x, data.x), rel=1e-4)
    # the one-fold (holdout) sums are the plain normal equations, no copy
    one = folds.accumulate(model, data, None, quiet)
    g0, c0, n0 = from_scratch(model, data)
    assert one.total[2] == n0 and torch.equal(one.total[0], g0) and torch.equal(one.total[1], c0)


def test_leave_one_out_chooses_among_its_folds_and_keeps_the_readout_of_all(data):
    """N folds; the chosen ridge's score is the history's; the readout kept is solved from
    every trajectory, to the bit what any K would keep; the run is deterministic."""
    grid = [1e-10, 1e-6, 1e-2]
    config = small_config("esn", units=60, ridge_grid=grid, val_folds=100)
    result = train(data, config, None, progress=False)
    again = train(data, config, None, progress=False)
    assert "leave-one-trajectory-out cross-validation over 7" in result.message
    assert [h["val_nrmse_x"] for h in result.history] == [h["val_nrmse_x"] for h in
                                                          again.history]
    model = esn(data, **config.model_args())
    labels = folds_by_trajectory(data.n, 100, config.seed)
    assert len(set(labels)) == data.n
    sums = folds.accumulate(model, data, labels, quiet)
    errors = {h["ridge"]: h["val_nrmse_x"] for h in result.history}
    for ridge, err in errors.items():
        assert folds.cv_error(model, sums, labels, data, ridge, None) == err
    low = min(errors.values())
    chosen = max(r for r, e in errors.items() if e <= low * (1 + RIDGE_TOLERANCE))
    assert result.best_record["metrics"]["ridge"] == chosen
    assert result.best_val_nrmse == errors[chosen]
    model.solve_readout(*from_scratch(model, data), chosen)  # all N, as a holdout sums them
    assert torch.equal(result.best_record["state_dict"]["W_out"], model.W_out.detach())


def test_by_default_few_trajectories_are_left_out_one_at_a_time_and_more_held_out(data):
    """val_folds None: on 7 trajectories leave one out, as val_folds = 7 (recorded so), with
    another score and readout than the holdout (val_folds = 0); on 11, the holdout, to the
    bit; with a validation set given, that set."""
    def run(trajectories, folds, **given):
        options = {"units": 60, "ridge_grid": [1e-10, 1e-6, 1e-2], "val_folds": folds,
                   "val_fraction": VAL_FRACTION}  # the default: a fraction given holds out
        result = train(trajectories, small_config("esn", **options), None, progress=False,
                       **given)
        return ([h["val_nrmse_x"] for h in result.history], result.best_record["config"],
                result.best_record["state_dict"]["W_out"])

    default, loo, holdout = run(data, None), run(data, 7), run(data, 0)
    assert default[0] == loo[0] and default[1] == loo[1] and default[1]["val_folds"] == 7
    assert torch.equal(default[2], loo[2])
    assert holdout[0] != loo[0] and not torch.equal(holdout[2], loo[2])
    more = oscillator_data(n=11, n_steps=80)
    default, holdout = run(more, None), run(more, 0)
    assert default[0] == holdout[0] and torch.equal(default[2], holdout[2])
    assert default[1]["val_folds"] is None
    given, zero = run(data, None, val=more), run(data, 0, val=more)
    assert given[0] == zero[0] and torch.equal(given[2], zero[2])


def test_streamed_folds_follow_the_folds_in_memory(path):
    config = small_config("esn", units=60, ridge_grid=[1e-10, 1e-6, 1e-2], val_folds=3)
    memory = train(read_trajectories(path), config, None, progress=False)
    streamed = train(FileRows(path), config, None, progress=False)
    assert streamed.best_record["metrics"]["ridge"] == memory.best_record["metrics"]["ridge"]
    for a, b in zip(memory.history, streamed.history, strict=True):
        assert b["val_nrmse_x"] == pytest.approx(a["val_nrmse_x"], rel=1e-4)


def test_two_ranks_cross_validate_as_one_process(path, tmp_path):
    """Each rank accumulates its share of every fold; the folds' sums reduced over the ranks
    give the single process's cross-validated score (of each fold's readout) and readout
    (a ridge given: in float32 the states differ in their last bits with the batch, which a
    weak ridge would amplify)."""
    args = [*ESN, "--set", "val_folds=4"]
    odernn("train", str(path), "-o", str(tmp_path / "one"), *args)
    odernn("train", str(path), "-o", str(tmp_path / "two"), *args, "--nproc", "2")
    one, two = (read_checkpoint(tmp_path / k / "best.pt") for k in ("one", "two"))
    torch.testing.assert_close(two["state_dict"], one["state_dict"], rtol=1e-4, atol=1e-5)
    assert two["metrics"]["val_nrmse_x"] == pytest.approx(one["metrics"]["val_nrmse_x"],
                                                          rel=1e-4)


@pytest.mark.parametrize(("options", "needle"), [
    ({"model": "esn", "val_folds": 1}, "val_folds must be an integer >= 2"),
    ({"model": "esn", "val_folds": -3}, "0 .the holdout. or None .automatic."),
    ({"model": "esn", "val_folds": 2.5}, "allowed: an integer"),
    ({"model": "lstm", "ridge": 1e-6}, "does not apply to model 'lstm'"),
])
def test_bad_val_folds_are_refused_in_one_line(options, needle):
    with pytest.raises(SpecError, match=needle):
        TrainConfig.from_dict(options)


def test_val_folds_with_a_validation_set_or_one_trajectory_is_refused(data):
    with pytest.raises(SpecError, match="give it or a validation set, not both"):
        train(data, small_config("esn", val_folds=3), None, val=data, progress=False)
    with pytest.raises(DataError, match="at least 2 folds of at least 2 trajectories"):
        train(data.take(np.arange(1)), small_config("esn", val_folds=3), None, progress=False)


def test_the_folds_equations_are_checked_against_the_budget_first(path, tmp_path, monkeypatch,
                                                                   capsys):
    monkeypatch.setenv(budget.ENV, "30M")  # the model fits (~26 MB), with 9 folds it does not
    run = ["train", str(path), "--model", "esn", "--units", "400", "--set", "ridge=1e-6",
           "--quiet"]
    assert main([*run, "-o", str(tmp_path / "holdout"), "--set", "val_folds=0"]) == 0
    code = main([*run, "-o", str(tmp_path / "folds")])  # 9 trajectories: leave one out
    assert_one_line_error(code, capsys.readouterr().err, "val_folds = 9", "0: the holdout")
    assert not (tmp_path / "folds").exists()
