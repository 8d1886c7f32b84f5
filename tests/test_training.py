"""Training: options, the run directory, divergence, early stopping, target modes, truncation."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import re
import shutil

import numpy as np
import pytest
import torch
from conftest import drawn_readout
from test_models import interrupt_at, oscillator_data, same_weights, series_data, small_config

import odernn.learn.gradient as gradient
import odernn.learn.rundir as rundir
from odernn.assess.metrics import nrmse
from odernn.errors import DataError, OutputError, SpecError
from odernn.learn.checkpoint import read_checkpoint, save_checkpoint
from odernn.learn.config import HF_OPTIONS, TrainConfig
from odernn.learn.hessian_free import mse
from odernn.learn.models import REGISTRY, build, load_surrogate
from odernn.learn.models.layout import Layout
from odernn.learn.outcome import closed_loop_nrmse
from odernn.learn.schedules import momentum_at
from odernn.learn.training import resolve_device, train
from odernn.learn.windows import compute_stats, to_tensors


@pytest.fixture(scope="module")
def data():
    return oscillator_data(n=12, n_steps=100)


def quick(family: str = "gru", **changes) -> TrainConfig:
    return small_config(family, **{"epochs": 2, "window": 10, "horizon": 10, "batch_size": 8,
                                    **changes}) \
        if family != "esn" else small_config(family, **changes)


# -- options ---------------------------------------------------------------------------------


def test_defaults_follow_the_family():
    assert TrainConfig(model="esn").units == 1000
    assert TrainConfig(model="esn").hidden is None
    lstm = TrainConfig(model="lstm")
    assert (lstm.hidden, lstm.units, lstm.skip) == (64, None, True)
    assert TrainConfig(model="rnn", skip=False).model_args()["skip"] is False
    assert lstm.layout(0.05) == Layout(dt=0.05, inputs=("x", "v", "F", "F_next", "F_prev", "eta"))
    assert TrainConfig(model="esn").layout(0.05) == Layout(dt=0.05)  # the reservoir: no F_prev
    assert "eta" not in TrainConfig(withhold=("eta",)).layout(0.05).inputs
    assert TrainConfig.from_dict({"use_eta": False}).withhold == ("eta",)  # older runs


@pytest.mark.parametrize("family", sorted(REGISTRY))
def test_options_round_trip_through_plain_data(family):
    config = TrainConfig.from_dict({"model": family, "seed": 4})
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_unknown_option_gets_a_suggestion():
    with pytest.raises(SpecError, match=r"unknown training option 'hiden' \(did you mean 'hidden'"):
        TrainConfig.from_dict({"hiden": 32})


def test_an_option_that_may_be_off_is_turned_off_by_none():
    """TOML and --set have no null: clip (documented "None: off") could not be switched off
    but from Python. "none" now says it, for every option that may be None but a string's."""
    assert TrainConfig.from_dict({"clip": "none", "patience": "None"}).clip is None
    assert TrainConfig.from_dict({"patience": "none"}).patience is None
    with pytest.raises(SpecError, match=r"'clip' = 'abc' is invalid; allowed: a finite "
                                        r"number .*, or none"):
        TrainConfig.from_dict({"clip": "abc"})
    with pytest.raises(SpecError, match=r"clip must be > 0, or none \(no clipping\)"):
        TrainConfig.from_dict({"clip": 0})


def test_a_series_given_to_an_oscillator_model_says_so_before_a_split_fails(tmp_path):
    """One series trajectory (the built-in sine): the holdout's "cannot hold out 1 of 1"
    came first, and only with a validation set did the real mismatch show."""
    series = series_data(n=1, n_steps=60)
    with pytest.raises(DataError, match="training data holds a univariate series; this model "
                                        r"\(state mode\) needs oscillator trajectories .*"
                                        r"\(train a series model with --target next-value\)"):
        train(series, quick(), tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()
    with pytest.raises(DataError, match=r"cannot hold out 1 of 1 .* \(--val FILE: another "
                                        r"recording imported the same way, or the same spec "
                                        r"simulated with another --seed\)"):
        train(series, quick(target="next-value"), tmp_path / "r", progress=False)


def test_option_of_another_family_is_refused():
    with pytest.raises(SpecError, match="'units' does not apply to model 'lstm'.*esn"):
        TrainConfig.from_dict({"model": "lstm", "units": 100})
    with pytest.raises(SpecError, match="'lr' does not apply to model 'esn'"):
        TrainConfig.from_dict({"model": "esn", "lr": 0.1})


@pytest.mark.parametrize(("bad", "needle"), [
    ({"lr": "fast"}, "option 'lr' = 'fast' is invalid"),
    ({"epochs": 2.5}, "option 'epochs' = 2.5 is invalid"),
    ({"optimizer": "adagrad"}, "optimizer 'adagrad' unknown"),
    ({"model": "transformer"}, "model 'transformer' unknown"),
    ({"clip": -1.0}, "clip must be > 0"),
    ({"device": "tpu"}, "device 'tpu' unknown"),
    ({"use_eta": "yes"}, "option 'use_eta' = 'yes' is invalid"),
    ({"inputs": "x"}, "option 'inputs' = 'x' is invalid"),
    ({"target": "acc"}, "target 'acc' unknown"),
    ({"lr": math.inf}, "option 'lr' = inf is invalid"),
    ({"horizon": 5, "horizon_start": 10}, "horizon_start must be in 0..horizon (5), got 10"),
    ({"val_fraction": 1.0}, "val_fraction must be in (0, 1), got 1.0"),
    ({"optimizer": "hf", "damping": 0.0}, "damping must be > 0, got 0.0"),
    ({"optimizer": "hf", "structural_damping": -0.1}, "structural_damping must be >= 0"),
    ({"optimizer": "hf", "max_cg_iters": 0}, "max_cg_iters must be >= 1, got 0"),
    ({"optimizer": "hf", "horizon": 5}, "horizon must be 0 with optimizer 'hf'"),
    ({"optimizer": "hf", "tbptt": 5}, "tbptt must be None with optimizer 'hf'"),
    ({"damping": 2.0}, "damping applies to optimizer 'hf' only"),
    ({"structural_damping": 0.5}, "structural_damping applies to optimizer 'hf' only"),
    ({"model": "esn", "structural_damping": 0.5},
     "'structural_damping' does not apply to model 'esn'"),
    ({"momentum_schedule": "linear"}, "momentum_schedule 'linear' unknown"),
    ({"momentum_schedule": "sutskever"}, "'sutskever' needs optimizer 'sgd'"),
    ({"optimizer": "sgd", "momentum_schedule": "sutskever", "momentum": 1.0},
     "and 0 < momentum < 1"),
    ({"model": "lstm", "init": "esn"}, "option 'init' does not apply to model 'lstm'"),
    ({"model": "ffn", "optimizer": "hf", "structural_damping": 0.1},
     "needs hidden states: the ffn family has none"),
])
def test_bad_values_are_spec_errors(bad, needle):
    with pytest.raises(SpecError, match="^config: .*" + re.escape(needle)):
        TrainConfig.from_dict(bad)


@pytest.mark.parametrize(("given", "needle"), [
    ({"epochs": 1, "horizon": 10}, "horizon 10 is never trained"),
    ({"epochs": 10, "horizon": 10, "closed_loop_from": 0.96}, "horizon 10 is never trained"),
    ({"horizon_start": 20}, "horizon_start must be in 0..horizon"),
    ({"momentum": 0.2}, "momentum is not used by optimizer 'adam'"),
    ({"nesterov": False}, "nesterov is not used by optimizer 'adam'"),
    ({"optimizer": "rmsprop", "nesterov": False}, "nesterov is not used by optimizer 'rmsprop'"),
    ({"optimizer": "hf", "lr": 5.0}, "lr is not used by optimizer 'hf' (it takes damping"),
    ({"optimizer": "hf", "clip": 0.01}, "clip is not used by optimizer 'hf'"),
    ({"optimizer": "hf", "schedule": "constant"}, "schedule is not used by optimizer 'hf'"),
    ({"optimizer": "sgd", "momentum": 5.0}, "momentum must be < 1"),
    ({"optimizer": "rmsprop", "momentum": 1.0}, "momentum must be < 1"),
    ({"epochs": 2, "warmup_epochs": 10}, "warmup_epochs 10 is not less than the 2 epochs"),
    # lr/(W+1) up to lr only at epoch W: with W = epochs it peaked at 0.92 lr
    ({"epochs": 2, "warmup_epochs": 2}, "warmup_epochs 2 is not less than the 2 epochs"),
    # each trained the same bits as without it, and config.json recorded it
    ({"horizon": 0, "closed_loop_weight": 5.0}, "closed_loop_weight shapes the closed-loop"),
    ({"horizon": 0, "closed_loop_from": 0.5}, "closed_loop_from shapes the closed-loop loss"),
    ({"horizon": 10, "closed_loop_weight": 0.0}, "so horizon 10 would not be trained"),
    ({"model": "ffn", "tbptt": 1}, "the ffn family has none"),
    ({"model": "rnn", "skip": False, "products": 3}, "options of the skip: not with skip"),
    ({"model": "rnn", "skip": False, "start_as_skip": True}, "options of the skip"),
    ({"inputs": ["x", "v", "F", "eta", "eta"]}, "name a channel or parameter twice"),
    ({"val_folds": 2, "val_fraction": 0.5}, "which val_folds K >= 2 replaces"),
    ({"model": "esn", "val_folds": 3, "val_fraction": 0.5}, "which val_folds K >= 2 replaces"),
])
def test_an_option_that_would_be_ignored_is_refused(given, needle):
    """Taken and not used, an option reads in config.json as if the run had trained with it
    (a horizon never reached, an optimiser's option another optimiser ignores, ...)."""
    with pytest.raises(SpecError, match=re.escape(needle)):
        TrainConfig.from_dict(given)


def test_cuda_without_a_gpu_is_a_spec_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(SpecError, match="cuda"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")


# -- run directory -----------------------------------------------------------------------------


def test_run_directory_files(data, tmp_path):
    result = train(data, quick(), tmp_path, progress=False)
    assert {p.name for p in tmp_path.iterdir()} == {"config.json", "history.csv", "best.pt",
                                                    "last.pt", ".odernn-lock"}
    saved = json.loads((tmp_path / "config.json").read_text())
    assert TrainConfig.from_dict(saved["config"]) == quick()
    assert saved["data"]["train"]["n"] == data.n and len(saved["data"]["train"]["sha256"]) == 64
    with open(tmp_path / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for column in ("loss", "tf_loss", "cl_loss", "val_loss", "val_nrmse_x", "grad_norm", "lr",
                   "steps_per_s", "time"):
        assert math.isfinite(float(rows[-1][column])), column
    best = read_checkpoint(tmp_path / "best.pt")
    assert best["family"] == "gru" and best["args"]["layout"]["target"] == "state"
    assert "resume" in read_checkpoint(tmp_path / "last.pt") and "resume" not in best
    assert result.best_val_nrmse == pytest.approx(best["metrics"]["val_nrmse_x"])


def test_progress_in_a_log_is_one_plain_line_per_epoch(data, tmp_path, capsys):
    train(data, quick(), tmp_path, progress=True)  # stderr is captured: not a terminal
    err = capsys.readouterr().err
    assert "\r" not in err and "\033" not in err
    lines = err.splitlines()
    assert all(line.startswith("train gru: epoch ") for line in lines)
    assert [line.split()[3] for line in lines] == ["1/2", "2/2"]
    assert "closed-loop val NRMSE(x)" in lines[-1]  # the last epoch is always validated


def test_existing_run_is_not_overwritten_without_permission(data, tmp_path):
    train(data, quick(), tmp_path, progress=False)
    with pytest.raises(OutputError, match="overwrite"):
        train(data, quick(), tmp_path, progress=False)
    train(data, quick(epochs=1), tmp_path, progress=False, overwrite=True)
    with pytest.raises(DataError, match="resume"):
        train(data, quick(), tmp_path / "new", progress=False, resume=True)


def test_resume_refuses_other_data_or_options(data, tmp_path):
    train(data, quick(), tmp_path, progress=False)
    with pytest.raises(DataError, match="other data"):
        train(oscillator_data(n=12, n_steps=100, seed=5), quick(), tmp_path, resume=True,
              progress=False)
    with pytest.raises(SpecError, match="lr"):
        train(data, quick(lr=0.5), tmp_path, resume=True, progress=False)
    # val_every follows epochs when not given: only the option the user changed is named
    train(data, quick(val_every=None), tmp_path / "derived", progress=False)
    with pytest.raises(SpecError, match=r"with other options \(epochs\); resume"):
        train(data, quick(epochs=60, val_every=None), tmp_path / "derived", resume=True,
              progress=False)


def test_resume_refuses_other_validation_data(data, tmp_path):
    """The best epoch compares validation errors: a run resumes only on the validation it
    started with (another set, or a set where it held trajectories out, would mix two)."""
    val, other = oscillator_data(n=4, n_steps=100, seed=7), oscillator_data(n=4, n_steps=100,
                                                                             seed=8)
    train(data, quick(), tmp_path / "given", val=val, progress=False)
    with pytest.raises(DataError, match="validated on validation data with sha256"):
        train(data, quick(), tmp_path / "given", val=other, resume=True, progress=False)
    train(data, quick(), tmp_path / "holdout", progress=False)
    with pytest.raises(DataError, match="validated on a holdout of val_fraction = 0.25"):
        train(data, quick(), tmp_path / "holdout", val=val, resume=True, progress=False)
    assert train(data, quick(), tmp_path / "given", val=val, resume=True,
                 progress=False).status == "ok"


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory):
    run = tmp_path_factory.mktemp("finished") / "run"
    train(data, quick(), run, progress=False)
    return run


@pytest.mark.parametrize("field, forged", [
    ("epoch", "x"), ("epoch", 1.5), ("batch", -1), ("best_epoch", True), ("since_best", None),
    ("best_val", None), ("best_val", math.nan), ("elapsed", "z"), ("elapsed", -1.0),
    ("history", [1]), ("history", [{"loss": "low"}]), ("partial", {"batches": "a"}),
    ("optimizer", {}), ("optimizer", None), ("rng", torch.zeros(3, dtype=torch.uint8)),
    (None, [1, 2])])
def test_a_forged_resume_state_is_refused_before_it_is_used(data, finished, tmp_path, field,
                                                           forged):
    """A value the loop did not write: one line (DataError), last.pt left as it was; before,
    a traceback from deep in the loop (TypeError, KeyError, RuntimeError) or, for
    ``epoch = 1.5``, a run that went on."""
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    record = read_checkpoint(run / "last.pt")
    if field is None:
        record["resume"] = forged
    else:
        record["resume"][field] = forged
    save_checkpoint(run / "last.pt", {k: v for k, v in record.items()
                                      if k not in ("format", "format_version", "odernn_version")})
    before = (run / "last.pt").read_bytes()
    with pytest.raises(DataError, match="cannot resume: .*(resume state|optimiser or gen)"):
        train(data, quick(), run, resume=True, progress=False)
    assert (run / "last.pt").read_bytes() == before


def _moments(record, change):
    for moments in record["resume"]["optimizer"]["state"].values():
        change(moments)


FORGED_RECORDS = {
    "partial sums without counters": lambda r: r["resume"].update(partial={}),
    "a batch past the epoch": lambda r: r["resume"].update(batch=10**9, partial={
        "batches": 10**9, "steps": 0, "time": 0.0}),
    "a negative best error": lambda r: r["resume"].update(best_val=-math.inf),
    # these three resumed as a finished run, 'trained', with the forged weights
    "an epoch past the run's": lambda r: r["resume"].update(
        epoch=10**6, history=r["resume"]["history"] * 10**6),
    "a history of another length": lambda r: r["resume"]["history"].pop(),
    "a best epoch not yet done": lambda r: r["resume"].update(best_epoch=r["resume"]["epoch"]),
    "a moment of another shape": lambda r: _moments(r, lambda m: m.update(
        exp_avg=m["exp_avg"].reshape(-1)[:1].clone())),
    "a moment missing": lambda r: _moments(r, lambda m: m.pop("exp_avg_sq")),
    "a moment not finite": lambda r: _moments(r, lambda m: m["exp_avg"].fill_(math.nan)),
    "betas a number": lambda r: r["resume"]["optimizer"]["param_groups"][0].update(betas=5),
    "data a list": lambda r: r.update(data=[1]),
    "config a string": lambda r: r.update(config="abc"),
    "no training data": lambda r: r["data"].update(train=None),  # "trained on other data"
}


@pytest.mark.parametrize("what", list(FORGED_RECORDS))
def test_a_forged_record_around_the_resume_state_is_refused(data, finished, tmp_path, what):
    """The audit's: each raised inside training (KeyError, RuntimeError, TypeError,
    AttributeError) or, for a negative best error, ended a run as diverged."""
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    record = read_checkpoint(run / "last.pt")
    FORGED_RECORDS[what](record)
    save_checkpoint(run / "last.pt", {k: v for k, v in record.items()
                                      if k not in ("format", "format_version", "odernn_version")})
    with pytest.raises(DataError, match="cannot resume"):
        train(data, quick(), run, resume=True, progress=False)


def test_a_history_with_other_columns_resumes_and_keeps_every_column(data, tmp_path):
    """A run saved by an earlier odernn, whose rows lack a column the loop writes now (here
    ``lr``): the resumed run's history.csv has every column, the old rows' cell blank.
    Before, the first save after the resume raised ValueError, last.pt already rewritten."""
    run = tmp_path / "run"
    stopped = train(data, quick(epochs=3), run, progress=interrupt_at(2, 1))
    assert stopped.status == "interrupted"
    record = read_checkpoint(run / "last.pt")
    for row in record["resume"]["history"]:
        del row["lr"]
    save_checkpoint(run / "last.pt", {k: v for k, v in record.items()
                                      if k not in ("format", "format_version", "odernn_version")})
    assert train(data, quick(epochs=3), run, resume=True, progress=False).status == "ok"
    with open(run / "history.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["lr"] == "" for r in rows] == [True, False, False]


def test_a_run_from_before_an_option_existed_resumes(data, tmp_path):
    train(data, quick(), tmp_path, progress=False)
    record = read_checkpoint(tmp_path / "last.pt")
    del record["config"]["momentum_schedule"]  # added after the first runs were made
    save_checkpoint(tmp_path / "last.pt", record)
    result = train(data, quick(), tmp_path, resume=True, progress=False)
    assert result.status == "ok"


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(data, tmp_path, monkeypatch):
    after_epoch_1 = []
    real = gradient._teacher_forced_loss

    def poisoned(*args, **kwargs):
        loss = real(*args, **kwargs)
        return loss * math.nan if after_epoch_1 else loss

    def progress(info):
        if info.stage == "epoch" and info.values["batch"] == info.values["batches"]:
            after_epoch_1.append(True)

    monkeypatch.setattr(gradient, "_teacher_forced_loss", poisoned)
    result = train(data, quick(epochs=4, val_every=1), tmp_path, progress=progress)
    assert result.status == "diverged"
    assert "non-finite loss at epoch 2" in result.message and "lr" in result.message
    last = read_checkpoint(tmp_path / "last.pt")
    assert last["resume"]["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in last["state_dict"].values())
    assert load_surrogate(tmp_path).rollout(
        data.x[:, 0], data.v[:, 0], data.F, data.params["eta"]).n_diverged == 0


def test_a_full_disk_keeps_a_resumable_run(data, tmp_path, monkeypatch):
    """best.pt cannot be written at the first validated epoch (2), but last.pt of epoch 1 is
    there: the run directory stays, and resumes once there is room."""
    real = rundir.save_checkpoint

    def full_for_best(path, payload):
        if path.name == "best.pt":
            raise OutputError(f"cannot write checkpoint {path}: No space left on device")
        real(path, payload)

    monkeypatch.setattr(rundir, "save_checkpoint", full_for_best)
    with pytest.raises(OutputError, match="No space"):
        train(data, quick(epochs=2, val_every=2), tmp_path / "run", progress=False)
    assert read_checkpoint(tmp_path / "run" / "last.pt")["resume"]["epoch"] == 1
    monkeypatch.undo()
    result = train(data, quick(epochs=2, val_every=2), tmp_path / "run", resume=True,
                   progress=False)
    assert result.status == "ok" and (tmp_path / "run" / "best.pt").exists()


def test_a_full_disk_before_any_checkpoint_leaves_nothing(data, tmp_path, monkeypatch):
    def full(path, payload):
        raise OutputError(f"cannot write checkpoint {path}: No space left on device")

    monkeypatch.setattr(rundir, "save_checkpoint", full)
    with pytest.raises(OutputError, match="No space"):
        train(data, quick(), tmp_path / "run", progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("previous", [False, True])
def test_a_run_diverged_before_any_checkpoint_leaves_nothing(data, tmp_path, monkeypatch,
                                                              previous):
    """As a failure: no new directory holding only config.json (which would refuse the same
    command again, and --resume), no staging beside a previous run, which stays."""
    run = tmp_path / "run"
    if previous:
        train(data, quick(epochs=1), run, progress=False)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    monkeypatch.setattr(gradient, "_teacher_forced_loss",
                        lambda *a, **k: torch.tensor(math.nan, requires_grad=True))
    result = train(data, quick(), run, progress=False, overwrite=previous)
    assert result.status == "diverged" and "no checkpoint written" in result.message
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_divergence_before_any_validation_says_no_best_checkpoint(data, tmp_path,
                                                                   monkeypatch):
    real, calls = gradient._teacher_forced_loss, []

    def poisoned_in_epoch_2(*args, **kwargs):
        calls.append(1)
        loss = real(*args, **kwargs)
        return loss * math.nan if len(calls) > 2 else loss  # 2 batches an epoch

    monkeypatch.setattr(gradient, "_teacher_forced_loss", poisoned_in_epoch_2)
    result = train(data, quick(epochs=4, val_every=3, batch_size=64), tmp_path,
                   progress=False)
    assert result.status == "diverged" and not (tmp_path / "best.pt").exists()
    assert "no best.pt (no finite closed-loop validation yet) and last.pt (epoch 1)" in \
        result.message


def test_early_stopping_when_validation_stops_improving(data, tmp_path):
    result = train(data, quick(epochs=6, lr=1e-12, val_every=1, patience=2, clip=None),
                   tmp_path, progress=False)
    assert result.status == "early-stopped"
    assert len(result.history) == 3 and result.best_epoch == 0
    assert "no better closed-loop validation error in 2 validations" in result.message
    last = (tmp_path / "last.pt").read_bytes()
    again = train(data, quick(epochs=6, lr=1e-12, val_every=1, patience=2, clip=None),
                  tmp_path, resume=True, progress=False)  # a finished run: nothing to train
    assert again.status == "early-stopped" and len(again.history) == 3
    assert (tmp_path / "last.pt").read_bytes() == last
    spaced = train(data, quick(epochs=6, lr=1e-12, val_every=2, patience=1, clip=None),
                   tmp_path / "spaced", progress=False)
    assert "in 1 validations (2 epochs)" in spaced.message


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "sgd"])
def test_each_optimizer_reduces_the_loss(data, tmp_path, optimizer):
    lr = {"adam": 1e-2, "rmsprop": 1e-3, "sgd": 0.05}[optimizer]
    result = train(data, quick(optimizer=optimizer, lr=lr, epochs=3, horizon=0,
                               horizon_start=0, skip=False), tmp_path, progress=False)
    losses = [row["tf_loss"] for row in result.history]
    assert losses[-1] < 0.5 * losses[0]


def hf(**changes) -> TrainConfig:
    """A small vanilla RNN trained by Hessian-free steps (about a second per epoch)."""
    return quick("rnn", **{"optimizer": "hf", "max_cg_iters": 20, **NO_CLOSED_LOOP, **changes})


NO_CLOSED_LOOP = {"horizon": 0, "horizon_start": 0, "skip": False, "epochs": 1, "hidden": 8}


def test_hf_options_are_kept_only_for_hf():
    assert "damping" not in TrainConfig().to_dict()
    config = TrainConfig.from_dict({"model": "gru", "optimizer": "hf", "structural_damping": 0.3,
                                    "max_cg_iters": 7})
    assert {k: config.to_dict()[k] for k in HF_OPTIONS} == \
        {"damping": 1.0, "structural_damping": 0.3, "max_cg_iters": 7}
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize("structural_damping", [0.0, 0.3])
def test_hf_fits_the_gradient_paths_loss(data, structural_damping):
    """HF's functional model gives the outputs (and hidden states) of the teacher-forced
    windows, so HF minimises exactly the loss of the gradient path."""
    layout = Layout(dt=data.dt)
    model = drawn_readout(build("lstm", layout, compute_stats(data, layout), hidden=8, seed=1))
    config = hf(model="lstm", structural_damping=structural_damping)
    w = to_tensors(data, layout).windows(torch.arange(5), torch.full((5,), 3), config.window)
    optimizer = gradient._hessian_free(model, config)
    z, e = w.z[:, :config.window + 1], w.e[:, :config.window + 1]
    inputs = (model.codec.encode(z[:, :-1], e[:, :-1]), model.codec.init_features(z[:, 0],
                                                                                  e[:, 0]))
    out = optimizer.f(optimizer.params, inputs)
    y = out[0] if structural_damping else out
    target = model.codec.target(z[:, :-1], z[:, 1:])
    with torch.no_grad():
        torch.testing.assert_close(mse(y, target), gradient._teacher_forced_loss(
            model, w, config.window, None))
    if structural_damping:  # the hidden states, against the fused kernel's
        with torch.no_grad():
            hs, _ = model.cell.sequence(inputs[0], model.initial_state(inputs[1]))
        torch.testing.assert_close(out[1], hs)
    assert list(optimizer.params) == [f"net.{k}" for k, _ in model.named_parameters()]


def test_hf_reduces_the_loss_more_than_sgd_in_as_many_steps(data, tmp_path):
    start = []

    def first_batch(info):
        if info.stage == "epoch" and (info.values["epoch"], info.values["batch"]) == (1, 1):
            start.append(info.values["loss"])  # the loss before any step

    result = train(data, hf(epochs=2), tmp_path / "hf", progress=first_batch)
    sgd = train(data, quick("rnn", **{**NO_CLOSED_LOOP, "epochs": 2, "optimizer": "sgd",
                                      "lr": 0.05}), tmp_path / "sgd", progress=False)
    end = result.history[-1]["tf_loss"]
    assert end < 0.1 * start[0] and end < 0.5 * sgd.history[-1]["tf_loss"]
    row = result.history[-1]
    assert 0 < row["hf_lambda"] < 1 and 1 <= row["hf_cg_iters"] <= 20
    assert 0 < row["hf_alpha"] <= 1 and math.isnan(row["lr"]) and "grad_norm" not in row
    with open(tmp_path / "hf" / "history.csv") as f:
        assert {"hf_lambda", "hf_cg_iters", "hf_alpha"} <= set(next(csv.DictReader(f)))


def test_hf_trains_the_memoryless_ffn(data, tmp_path):
    result = train(data, hf(model="ffn", epochs=2), tmp_path, progress=False)
    assert result.history[-1]["tf_loss"] < 0.5 * result.history[0]["tf_loss"]


def test_hf_resume_equals_no_interrupt(data, tmp_path):
    config = hf(epochs=2, structural_damping=0.3, val_every=1, max_cg_iters=10)
    whole = train(data, config, tmp_path / "whole", progress=False)
    stopped = train(data, config, tmp_path / "run", progress=interrupt_at(2, 3))
    assert stopped.status == "interrupted"
    saved = read_checkpoint(tmp_path / "run" / "last.pt")["resume"]["optimizer"]
    assert saved["steps"] > 0 and saved["damping"] < 1.0
    resumed = train(data, config, tmp_path / "run", resume=True, progress=False)
    assert resumed.status == "ok"
    for a, b in zip(whole.history, resumed.history, strict=True):
        assert [a[k] for k in ("loss", "hf_lambda", "val_nrmse_x")] == \
            [b[k] for k in ("loss", "hf_lambda", "val_nrmse_x")]
    for name in ("best.pt", "last.pt"):
        a = read_checkpoint(tmp_path / "whole" / name)["state_dict"]
        assert same_weights(a, read_checkpoint(tmp_path / "run" / name)["state_dict"]), name


def test_sutskever_momentum_schedule():
    """``mu_t = min(1 - 2^(-1 - log2(floor(t/250) + 1)), mu_max) = 1 - 1/(2 (k + 1))``."""
    steps = [0, 249, 250, 499, 500, 750, 2499, 2500]
    expected = [0.5, 0.5, 0.75, 0.75, 1 - 1 / 6, 0.875, 0.95, 1 - 1 / 22]
    assert [momentum_at(t, 0.99) for t in steps] == pytest.approx(expected, rel=1e-12)
    assert momentum_at(10**6, 0.99) == 0.99 and momentum_at(0, 0.3) == 0.3


def test_esn_init_trains_with_the_momentum_schedule(data, tmp_path, monkeypatch):
    config = quick("rnn", init="esn", optimizer="sgd", momentum_schedule="sutskever",
                   momentum=0.99, lr=0.03, epochs=3, **{k: NO_CLOSED_LOOP[k] for k in
                                                       ("horizon", "horizon_start", "skip")})
    asked = []  # the schedule counts optimiser steps over the whole run, not within an epoch

    def spy(step, mu_max):
        asked.append(step)
        return momentum_at(step, mu_max)

    monkeypatch.setattr(gradient, "momentum_at", spy)
    result = train(data, config, tmp_path, progress=False)
    assert asked == list(range(3 * 12))
    losses = [row["tf_loss"] for row in result.history]
    assert result.status == "ok" and losses[-1] < 0.5 * losses[0]
    resume = read_checkpoint(tmp_path / "last.pt")["resume"]
    steps = 3 * 12  # 3 epochs of 12 batches: still in the first 250 steps
    assert resume["optimizer"]["param_groups"][0]["momentum"] == momentum_at(steps - 1, 0.99)
    assert load_surrogate(tmp_path).hparams["init"] == "esn"


# -- what is trained ---------------------------------------------------------------------------


def test_truncated_bptt_cuts_the_gradient_only_at_the_truncation(data):
    layout = Layout(dt=data.dt)
    model = build("lstm", layout, compute_stats(data, layout), hidden=8, start_as_skip=False)
    w = to_tensors(data, layout).windows(torch.arange(4), torch.zeros(4, dtype=torch.long), 12)

    def grads(tbptt):
        model.zero_grad()
        gradient._teacher_forced_loss(model, w, 12, tbptt).backward()
        return [p.grad.clone() for p in model.parameters()]

    full, same, cut = grads(None), grads(12), grads(4)
    assert all(torch.equal(a, b) for a, b in zip(full, same, strict=True))
    assert not all(torch.allclose(a, b) for a, b in zip(full, cut, strict=True))
    # the same loss step by step, the carried state detached before steps 4 and 8 alone
    model.zero_grad()
    codec = model.codec
    state = model.initial_state(codec.init_features(w.z[:, 0], w.e[:, 0]))
    total = 0.0
    for i in range(12):
        if i in (4, 8):
            state = tuple(h.detach() for h in state)
        y, state = model.step(codec.encode(w.z[:, i], w.e[:, i]), state)
        target = codec.target(w.z[:, i], w.z[:, i + 1], w.e[:, i])
        total = total + torch.sum(torch.square(y - target))
    (total / (12 * target.numel())).backward()
    for a, b in zip(cut, (p.grad for p in model.parameters()), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_closed_loop_loss_feeds_the_predictions_back(data):
    layout = Layout(dt=data.dt)
    model = drawn_readout(build("gru", layout, compute_stats(data, layout), hidden=8))
    w = to_tensors(data, layout).windows(torch.arange(3), torch.full((3,), 7), 6)
    with torch.no_grad():
        loss = gradient._closed_loop_loss(model, w, 6)
        z = w.z[:, 0]
        state = model.initial_state(model.codec.init_features(z, w.e[:, 0]))
        errors = []
        for i in range(6):
            y, state = model.step(model.codec.encode(z, w.e[:, i]), state)
            z = model.codec.decode(z, y)
            errors.append((z - w.z[:, i + 1]) / model.codec.state_std())
    torch.testing.assert_close(loss, torch.mean(torch.square(torch.stack(errors))))


def test_velocity_mode_advances_x_by_the_trapezoid_rule(data, tmp_path):
    train(data, quick("lstm", target="velocity", epochs=4), tmp_path, progress=False)
    model = load_surrogate(tmp_path)
    assert model.target == "velocity" and "v" not in model.layout.inputs
    out = model.rollout(data.x[:, 0], data.v[:, 0], data.F, data.params["eta"])
    trapezoid = out.x[:, :1] + np.concatenate(
        [np.zeros((data.n, 1)), np.cumsum(0.5 * data.dt * (out.v[:, 1:] + out.v[:, :-1]), 1)], 1)
    np.testing.assert_allclose(out.x, trapezoid, rtol=1e-4, atol=1e-5)


def test_next_value_mode_in_the_notes_keras_layout(tmp_path):
    """``SimpleRNN(relu)`` on windows of one step holding the last 4 values, ``Dense(8, relu)``."""
    series = series_data(n=6, n_steps=150)
    config = small_config("rnn", target="next-value", lags=4, window=1, horizon=10,
                          activation="relu", head=[8], epochs=6, val_fraction=0.34)
    train(series, config, tmp_path, progress=False)
    model = load_surrogate(tmp_path)
    assert (model.layout.n_inputs, model.layout.n_outputs) == (4, 1)
    out = model.rollout(series.x[:, 0], warmup=(series.x[:, :4], None), n_steps=series.n_steps)
    assert out.v is None and out.x.shape == series.x.shape and out.warmup == 4
    np.testing.assert_allclose(out.x[:, :4], series.x[:, :4], rtol=1e-6, atol=1e-6)
    with pytest.raises(DataError, match="series"):
        model.check_data(oscillator_data(n=2, n_steps=20))


def test_eta_withheld_needs_and_uses_a_warmup(data, tmp_path):
    train(data, quick(withhold=["eta"], warmup=10, horizon=12), tmp_path, progress=False)
    model = load_surrogate(tmp_path)
    assert (model.parameter_inputs, model.warmup_steps) == ((), 10)
    with pytest.raises(DataError, match="warm-up of 10"):
        model.rollout(data.x[:, 0], data.v[:, 0], data.F)
    out = model.rollout(data.x[:, 0], data.v[:, 0], data.F,
                        warmup=(data.x[:, :10], data.v[:, :10]))
    assert out.warmup == 10
    err = closed_loop_nrmse(model, data)
    assert err == pytest.approx(nrmse(out.x, data.x, start=10))


def test_validation_set_of_another_layout_is_refused(data, tmp_path):
    other = dataclasses.replace(oscillator_data(n=3, n_steps=100, dt=0.1))
    with pytest.raises(DataError, match="validation data has dt"):
        train(data, quick(), tmp_path, val=other, progress=False)


@pytest.mark.parametrize("previous", [False, True])
def test_the_command_line_says_nothing_was_written_when_a_run_diverged_before_any_checkpoint(
        tmp_path, monkeypatch, capsys, previous):
    """Exit 1 and the divergence message, but no "run in OUTPUT" for a run that was not
    written (found by make fuzz: a relu RNN at lr 10 diverged in its first epoch); a previous
    run in its place stays."""
    from odernn.cli.app import main
    from odernn.data.simulate import simulate
    from odernn.data.spec import load_spec

    path = simulate(load_spec("train").with_overrides(n=8, n_steps=120, integrator="exact"),
                    tmp_path / "train.h5", progress=False)
    run = tmp_path / "run"
    args = ["train", str(path), "-m", "rnn", "-o", str(run), "-q", "--epochs", "1"]
    if previous:
        assert main(args) == 0
        before = (run / "best.pt").read_bytes()
        capsys.readouterr()
    monkeypatch.setattr(gradient, "_teacher_forced_loss",
                        lambda *a, **k: torch.tensor(math.nan, requires_grad=True))
    assert main([*args, *(["--overwrite"] if previous else [])]) == 1
    printed = capsys.readouterr().out
    assert "no checkpoint written" in printed and "run in" not in printed
    assert (run / "best.pt").read_bytes() == before if previous else not run.exists()


def test_a_run_from_before_a_defaults_change_resumes_with_its_own_model(tmp_path):
    """A run started when a linear system's gradient families had no F_prev, products of
    degree 1 and V drawn (its options stored as defaults: inputs and products None) resumes
    with the model it stored, not one rebuilt under today's defaults."""
    data = oscillator_data(n=8, n_steps=60)
    then = {"inputs": ["x", "v", "F", "F_next"], "products": 1, "start_as_skip": False}
    options = {"model": "gru", "hidden": 4, "epochs": 2, "batch_size": 8, "window": 10,
               "horizon": 0}
    run = tmp_path / "run"
    whole = train(data, TrainConfig.from_dict({**options, **then}), None, progress=False)
    stopped = train(data, TrainConfig.from_dict({**options, **then}), run,
                    progress=interrupt_at(2, 1))
    assert stopped.status == "interrupted"
    record = read_checkpoint(run / "last.pt")  # written as an earlier odernn wrote it
    record["config"].update(inputs=None, products=None)
    record["config"].pop("start_as_skip", None)
    record["args"]["hparams"]["products"] = True
    record["args"]["hparams"].pop("start_as_skip", None)
    save_checkpoint(run / "last.pt", record)
    stored = json.loads((run / "config.json").read_text())
    stored.update(inputs=None, products=None)
    stored.pop("start_as_skip", None)
    (run / "config.json").write_text(json.dumps(stored))
    resumed = train(data, TrainConfig.from_dict(options), run, resume=True, progress=False)
    assert resumed.status == "ok"
    assert load_surrogate(run).layout.inputs == ("x", "v", "F", "F_next", "eta")
    assert [h["val_nrmse_x"] for h in resumed.history] == [h["val_nrmse_x"] for h in
                                                           whole.history]


def test_the_validation_loss_is_taken_a_batch_at_a_time(data, monkeypatch):
    """The teacher-forced validation pass ran on the whole validation set at once, outside
    the budget check (5.8 GB at 20000 validation trajectories under a 600 MiB budget); in
    parts of batch_size trajectories its mean is the whole set's to float32 rounding."""
    from odernn.learn.models.surrogate import RecurrentSurrogate

    config = quick(val_fraction=0.5, batch_size=4)  # 6 validation trajectories: two parts
    rows, whole = [], RecurrentSurrogate.teacher_forced
    monkeypatch.setattr(RecurrentSurrogate, "teacher_forced",
                        lambda self, z, e, *a, **k: rows.append(z.shape[0]) or whole(
                            self, z, e, *a, **k))
    train(data, config, None, progress=False)
    assert max(rows) <= 4 and rows.count(2) == config.epochs  # 6 = 4 + 2, each epoch
    layout = config.layout(data.dt)
    model = drawn_readout(build("gru", layout, compute_stats(data, layout),
                                **config.model_args()).eval())  # the loss sees the cell
    tensors = to_tensors(data, layout)
    n = config.window
    with torch.no_grad():
        y, y_true = whole(model, tensors.z[:, :n + 1], tensors.e[:, :n + 1])
        expected = torch.mean(torch.square(y - y_true)).item()
        assert math.isclose(gradient._validation_loss(model, tensors, n, 5), expected,
                            rel_tol=1e-6)
        assert gradient._validation_loss(model, tensors, n, 12) == expected  # one part


def test_a_validation_rollout_over_the_budget_is_refused_before_any_epoch(data, tmp_path,
                                                                         monkeypatch):
    """The closed-loop validation's memory was checked when it first ran, after the first
    epoch (val_every = 4: after three epochs, with config.json, history.csv and last.pt
    written, and a --resume failed there again)."""
    from odernn import budget
    from odernn.learn import stream

    config = quick(val_fraction=0.5, val_every=2)
    # the in-memory set's own check (larger here, on 12 short trajectories) set aside
    monkeypatch.setattr(stream, "in_memory_bytes", lambda data, copies=2: 0)
    needs, check = [], budget.check
    monkeypatch.setattr(budget, "check", lambda what, need, hint: (
        needs.append((what, need)), check(what, need, hint)))
    train(data, config, None, progress=False)
    closed = min(n for what, n in needs if what.startswith("closed loop: 6 trajectories"))
    first = next(i for i, (what, _) in enumerate(needs) if what.startswith("closed loop"))
    assert all(n < closed for _, n in needs[:first])  # the checks before it pass
    monkeypatch.setenv(budget.ENV, str(int(closed) - 1))
    epochs = []
    with pytest.raises(budget.BudgetError, match="closed loop: 6 trajectories x 100 steps"):
        train(data, config, tmp_path / "run", progress=lambda e: epochs.append(e.stage))
    assert "epoch" not in epochs and not (tmp_path / "run").exists()


def test_a_gradient_familys_folds_check_each_folds_rollout_not_all_of_them(data, monkeypatch):
    """Cross-validated over folds, a gradient family rolls out each fold's held-out part; the
    check before the first epoch sized one rollout of every trajectory and refused training
    that fitted (5000 trajectories, val_folds = 5, under 160 MiB)."""
    from odernn import budget

    checked, check = [], budget.check
    monkeypatch.setattr(budget, "check", lambda what, need, hint: (
        checked.append(what), check(what, need, hint)))
    train(data, quick(val_folds=2, epochs=1), None, progress=False)
    closed = [what for what in checked if what.startswith("closed loop")]
    assert closed and not [w for w in closed if w.startswith("closed loop: 12 trajectories")]


def test_the_horizon_and_learning_rate_schedules():
    """The closed-loop horizon: 0 before its first epoch, then linear to its target over half
    of the remaining epochs; the learning rate: a linear warm-up, then a cosine to 1/100 of
    it at the last epoch (neither schedule was checked)."""
    from types import SimpleNamespace

    from odernn.learn.schedules import horizon_at, lr_at

    ramp = SimpleNamespace(epochs=10, closed_loop_from=0.2, horizon_start=2, horizon=10)
    assert [horizon_at(ramp, e) for e in range(10)] == [0, 0, 2, 4, 6, 8, 10, 10, 10, 10]
    assert horizon_at(SimpleNamespace(**{**vars(ramp), "horizon": 0}), 9) == 0
    cosine = SimpleNamespace(lr=1e-2, warmup_epochs=2, epochs=12, schedule="cosine")
    got = [lr_at(cosine, p) for p in (0.0, 1.0, 2.0, 7.0, 12.0)]
    assert got == pytest.approx([1e-2 / 3, 2e-2 / 3, 1e-2, 0.505e-2, 1e-4], rel=1e-12)
    constant = SimpleNamespace(**{**vars(cosine), "schedule": "constant"})
    assert lr_at(constant, 11.0) == 1e-2


def test_a_run_killed_between_epochs_resumes_to_the_uninterrupted_weights(data, tmp_path,
                                                                         monkeypatch):
    """A process killed just after an epoch's last.pt (no handler ran: a crash, SIGKILL)
    resumes from that file with the next epoch's random windows, not that epoch's again: the
    run directory as it was then, resumed, ends with the uninterrupted run's weights."""
    config = quick(epochs=3, val_every=3)
    real = gradient._save_last

    def save_and_copy(out, model, optimizer, config, source, state, rng_state):
        real(out, model, optimizer, config, source, state, rng_state)
        if state["epoch"] == 1 and not (tmp_path / "run").exists():
            shutil.copytree(out.target, tmp_path / "run")  # the directory a kill leaves

    monkeypatch.setattr(gradient, "_save_last", save_and_copy)
    train(data, config, tmp_path / "whole", progress=False)
    monkeypatch.undo()
    assert read_checkpoint(tmp_path / "run" / "last.pt")["resume"]["epoch"] == 1
    (tmp_path / "run" / rundir.LOCK).unlink(missing_ok=True)  # the killed process's lock
    train(data, config, tmp_path / "run", resume=True, progress=False)
    assert same_weights(read_checkpoint(tmp_path / "whole" / "last.pt")["state_dict"],
                        read_checkpoint(tmp_path / "run" / "last.pt")["state_dict"])


def test_a_batchs_loss_the_clip_and_the_epochs_means(data, tmp_path, monkeypatch):
    """Each batch's loss is tf + closed_loop_weight * cl; a step of plain SGD moves the weights
    by at most lr * clip; the history's epoch loss is the mean of its batches'."""
    seen = []
    real = gradient._train_batch

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        seen.append(out)
        return out

    monkeypatch.setattr(gradient, "_train_batch", spy)
    config = quick(epochs=1, closed_loop_weight=5.0, optimizer="sgd", momentum=0.0, lr=0.1,
                   clip=1e-3, skip=False)
    result = train(data, config, tmp_path, progress=False)
    for b in seen:
        assert b["loss"] == pytest.approx(b["tf_loss"] + 5.0 * b["cl_loss"], rel=1e-6)
        assert b["cl_loss"] > 0
    assert result.history[0]["loss"] == pytest.approx(np.mean([b["loss"] for b in seen]),
                                                      rel=1e-9)
    assert max(b["grad_norm"] for b in seen) > 1e-3  # the clip acted
    seen.clear()
    model = build("gru", *_layout_and_stats(data), hidden=config.hidden)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(list(model.parameters()), lr=0.1)
    w = to_tensors(data, model.layout)
    real(model, config, optimizer, list(model.parameters()), w, 10)
    moved = torch.linalg.vector_norm(torch.cat([(p.detach() - q).flatten() for p, q in
                                                zip(model.parameters(), before, strict=True)]))
    assert 0 < moved <= 0.1 * 1e-3 * (1 + 1e-5)


def _layout_and_stats(data):
    layout = Layout(dt=data.dt)
    return layout, compute_stats(data, layout)


def test_patience_counts_validations_and_a_run_whose_validations_all_diverged_says_so(
        data, tmp_path, monkeypatch):
    spaced = train(data, quick(epochs=6, lr=1e-12, val_every=2, patience=1, clip=None),
                   tmp_path / "spaced", progress=False)
    assert spaced.status == "early-stopped" and len(spaced.history) == 4  # epochs 2 and 4
    monkeypatch.setattr(gradient, "closed_loop_nrmse", lambda *a, **k: math.inf)
    gone = train(data, quick(epochs=6, val_every=1, patience=1), tmp_path / "gone",
                 progress=False)
    assert gone.status == "diverged" and "every closed-loop validation diverged" in gone.message


@pytest.mark.parametrize(("name", "changes", "group"), [
    ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
     {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
    ("sgd", {"momentum": 0.9, "nesterov": False}, {"nesterov": False}),
    ("sgd", {"momentum": 0.0, "nesterov": True}, {"nesterov": False}),  # needs momentum
    ("adam", {"weight_decay": 1e-4}, {"weight_decay": 1e-4}),
    ("rmsprop", {"momentum": 0.5, "weight_decay": 1e-4}, {"momentum": 0.5, "weight_decay": 1e-4}),
])
def test_each_optimizer_takes_the_options_it_is_given(name, changes, group):
    config = quick(optimizer=name, lr=0.01, **changes)
    optimizer = gradient._optimizer(config, [torch.nn.Parameter(torch.zeros(2))])
    assert type(optimizer).__name__.lower() == name
    assert {k: optimizer.param_groups[0][k] for k in group} == group
    assert optimizer.param_groups[0]["lr"] == 0.01


def test_a_resumed_runs_time_goes_on_from_the_interrupted_ones(data, tmp_path):
    config = quick(epochs=3)
    first = train(data, config, tmp_path, progress=interrupt_at(2, 1))
    assert first.status == "interrupted" and first.history
    record = read_checkpoint(tmp_path / "last.pt")
    assert record["resume"]["elapsed"] == first.train_time_s > 0
    record["resume"]["elapsed"] = 1000.0  # as if the first part had taken 1000 s
    save_checkpoint(tmp_path / "last.pt", record)
    resumed = train(data, config, tmp_path, resume=True, progress=False)
    assert resumed.train_time_s > 1000.0 and resumed.history[-1]["time"] > 1000.0
    assert resumed.history[0]["time"] == first.history[0]["time"]


def broadcast_set(n: int, steps: int):
    """A set of ``n x steps`` zeros that takes no memory (broadcast views): what training
    copies of it is all that a measurement sees."""
    from odernn.data.trajectories import Trajectories

    zeros, z = np.broadcast_to(0.0, (n, steps)), np.zeros(n)
    return Trajectories(np.arange(steps) * 0.05, zeros, zeros, zeros,
                        params={"eta": z + 0.1, "x0": z, "v0": z},
                        attrs={"forcing": "none", "system": "oscillator"})


def test_a_set_in_memory_too_large_to_train_is_refused_before_it_is_copied(monkeypatch):
    """A set of 2000 x 100000 points given in memory took 10.3 GB (its hash's float64 copies,
    the validation split, the statistics) before a check refused its validation rollout.
    What training it in memory holds is checked first, as for a file read into memory, and
    its fingerprint hashes a block of rows at a time, to the same digest."""
    import hashlib
    import tracemalloc

    import odernn
    from odernn import budget
    from odernn.learn.windows import fingerprint

    big = broadcast_set(2000, 100_000)
    monkeypatch.setenv(budget.ENV, "1G")
    tracemalloc.start()
    try:
        with pytest.raises(budget.BudgetError, match="training in memory: 2000 trajectories of "
                                                     "100000 points"):
            odernn.fit(big, model="ffn", epochs=1)
        digest = fingerprint(broadcast_set(300, 100_000))["sha256"]  # 720 MB as float64
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, f"{peak >> 20} MiB"
    small = oscillator_data(n=3, n_steps=40)
    whole = hashlib.sha256()
    for a in (small.t, small.x, small.v, small.F):
        whole.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    for k in sorted(small.params):
        whole.update(k.encode())
        whole.update(np.ascontiguousarray(small.params[k], dtype=np.float64).tobytes())
    assert fingerprint(small)["sha256"] == whole.hexdigest()  # a run's recorded source
    assert len(digest) == 64
