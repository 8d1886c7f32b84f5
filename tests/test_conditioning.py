"""Surrogates condition on the system's parameters: those that vary are inputs, withheld ones
are not, and a model is refused data of another system or data lacking what it takes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_cli import SPEC, assert_one_line_error, run
from test_models import oscillator_data

from odernn.assess.evaluate import evaluate
from odernn.data.simulate import simulate, simulate_trajectories
from odernn.data.spec import parse_spec
from odernn.errors import DataError, SpecError
from odernn.learn.config import TrainConfig
from odernn.learn.models import load_surrogate
from odernn.learn.models.layout import Layout
from odernn.learn.training import train


def duffing_spec(alpha: str = "1.0", n: int = 16, seed: int = 3):
    """Small cosine-driven Duffing oscillators; ``alpha`` a TOML number or range."""
    return parse_spec(f"""
name = "duffing"
system = "duffing"
n = {n}
seed = {seed}
dt = 0.05
n_steps = 200
[integrator]
name = "rk4"
[parameters]
eta = [0.2, 0.4]
alpha = {alpha}
beta = [0.1, 1.0]
x0 = [-1.0, 1.0]
v0 = [-1.0, 1.0]
[forcing]
family = "cosine"
F0 = [0.0, 0.5]
omega = [0.5, 1.5]
phase = 0.0
""")


def duffing_data(alpha: str = "1.0"):
    return simulate_trajectories(duffing_spec(alpha))


ESN = {"model": "esn", "units": 40, "val_fraction": 0.25, "device": "cpu"}


def fit(data, tmp_path, **options):
    train(data, TrainConfig.from_dict({**ESN, **options}), tmp_path, progress=False)
    return load_surrogate(tmp_path)


@pytest.fixture(scope="module")
def duffing():
    return duffing_data("[0.5, 1.5]")


def test_every_varying_parameter_is_an_input(duffing, tmp_path):
    model = fit(duffing, tmp_path)
    assert model.layout.system == "duffing"
    assert model.parameter_inputs == ("eta", "alpha", "beta")
    assert model.layout.inputs == ("x", "v", "F", "F_next", "eta", "alpha", "beta")
    assert model.layout.n_init == 5 and {"eta", "alpha", "beta"} <= set(model.codec.stats.mean)
    out = model.rollout(duffing.x[:, 0], duffing.v[:, 0], duffing.F, duffing.params)
    assert out.x.shape == duffing.x.shape and out.n_diverged == 0
    with pytest.raises(DataError, match="give params as a mapping"):
        model.rollout(duffing.x[:, 0], duffing.v[:, 0], duffing.F, duffing.params["eta"])
    with pytest.raises(DataError, match="no beta"):
        model.rollout(duffing.x[:, 0], duffing.v[:, 0], duffing.F,
                      {k: duffing.params[k] for k in ("eta", "alpha")})


def test_a_fixed_parameter_is_not_an_input(tmp_path):
    data = duffing_data("1.0")
    model = fit(data, tmp_path)
    assert model.parameter_inputs == ("eta", "beta")
    assert "alpha" not in model.codec.stats.mean


def test_withhold_removes_a_parameter(duffing, tmp_path):
    model = fit(duffing, tmp_path, withhold=["beta"], warmup=5)
    assert (model.parameter_inputs, model.warmup_steps) == (("eta", "alpha"), 5)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["config"]["withhold"] == ["beta"]


def test_withholding_what_the_system_lacks_is_one_spec_error(duffing, tmp_path):
    with pytest.raises(SpecError, match=r"withhold 'mu': not a parameter of system 'duffing'"):
        train(duffing, TrainConfig.from_dict({**ESN, "withhold": ["mu"]}), tmp_path / "r",
              progress=False)
    assert not (tmp_path / "r").exists()
    with pytest.raises(SpecError, match="did you mean 'alpha'"):
        TrainConfig.from_dict({**ESN, "withhold": ["alpah"]})


def test_data_of_another_system_is_refused_naming_both(duffing, tmp_path):
    model = fit(duffing, tmp_path)
    oscillator = oscillator_data(n=4, n_steps=50)
    with pytest.raises(DataError, match="system 'oscillator'; this model was trained on "
                                        "system 'duffing'") as err:
        evaluate(oscillator, {"esn": model}, integrators=("rk4",), work_precision=False,
                 resonance=False, progress=False)
    assert "\n" not in str(err.value)


def test_data_lacking_a_parameter_the_model_takes_is_refused(duffing, tmp_path):
    model = fit(duffing, tmp_path)
    lacking = duffing.take(slice(0, 4))
    params = {k: v for k, v in lacking.params.items() if k != "alpha"}
    with pytest.raises(DataError, match="no params/alpha; the model takes eta, alpha, beta"):
        model.check_data(type(lacking)(lacking.t, lacking.x, lacking.v, lacking.F, params,
                                       lacking.attrs))


def test_layouts_stored_before_the_system_read_as_the_oscillator():
    old = {"target": "state", "inputs": ["x", "v", "F", "F_next", "eta"], "dt": 0.05,
           "lags": 1, "warmup": 0}
    layout = Layout.from_dict(old)
    assert layout.system == "oscillator" and layout.parameters == ("eta",)
    assert layout == Layout(dt=0.05) and layout.n_inputs == 5 and layout.n_init == 3
    assert Layout.from_dict(layout.to_dict()) == layout
    with pytest.raises(SpecError, match="allowed a subset of"):
        Layout(inputs=("x", "v", "alpha"))  # not a parameter of the linear oscillator
    assert Layout(inputs=("beta", "x", "v", "eta"), system="duffing").inputs == (
        "x", "v", "eta", "beta")


def test_oscillator_default_and_older_configs(tmp_path):
    data = oscillator_data(n=8, n_steps=60)
    config = TrainConfig.from_dict({**ESN, "use_eta": False})
    assert config.withhold == ("eta",) and "use_eta" not in config.to_dict()
    assert TrainConfig.from_dict(ESN).layout(data.dt, data.system, data.params) == Layout(
        dt=data.dt)
    fixed = {**data.params, "eta": np.full(data.n, 0.2)}  # a fixed damping tells nothing
    assert TrainConfig.from_dict(ESN).layout(data.dt, "oscillator", fixed).parameters == ()
    with pytest.raises(SpecError, match="contradicts"):
        TrainConfig.from_dict({**ESN, "use_eta": True, "withhold": ["eta"]})


def test_cli_withhold_and_the_refusals(tmp_path, capsys):
    data, other, spec = tmp_path / "duffing.h5", tmp_path / "oscillator.h5", tmp_path / "o.toml"
    simulate(duffing_spec("[0.5, 1.5]"), data)
    spec.write_text(SPEC)
    assert run(["simulate", spec, "-o", other, "-q"], capsys)[0] == 0
    code, _, err = run(["train", data, "-o", tmp_path / "no", "--model", "esn", "--units", "30",
                        "--withhold", "mu", "-q"], capsys)
    assert_one_line_error(code, err, "withhold 'mu'", "system 'duffing'")
    assert not (tmp_path / "no").exists()
    code, _, err = run(["train", data, "-o", tmp_path / "run", "--model", "esn", "--units", "30",
                        "--withhold", "beta", "--no-eta", "--warmup", "3", "-q"], capsys)
    assert code == 0, err
    assert load_surrogate(tmp_path / "run").parameter_inputs == ("alpha",)
    code, _, err = run(["evaluate", tmp_path / "run", "--data", other, "-o", tmp_path / "r"],
                       capsys)
    assert_one_line_error(code, err, "system 'oscillator'", "system 'duffing'")
    assert not (tmp_path / "r").exists()
