"""Surrogates condition on the system's parameters: those that vary are inputs, withheld ones
are not, and a model is refused data of another system, data lacking what it takes, or data
with another value of a parameter it was trained with fixed."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
from test_cli import SPEC, assert_one_line_error, run
from test_models import oscillator_data

from odernn.assess.evaluate import evaluate
from odernn.data.simulate import simulate, simulate_trajectories
from odernn.data.spec import parse_spec
from odernn.errors import DataError, SpecError
from odernn.learn.checkpoint import read_checkpoint
from odernn.learn.config import TrainConfig
from odernn.learn.models import from_record, load_surrogate
from odernn.learn.models.layout import Layout, check_data, check_fixed
from odernn.learn.training import train
from odernn.learn.windows import split_by_trajectory


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
    assert model.layout.fixed == (("alpha", 1.0),)
    assert json.loads((tmp_path / "config.json").read_text())["config"]["withhold"] == []


def test_a_parameter_varying_only_in_the_held_out_part_is_an_input(tmp_path):
    """Which parameters vary is decided on the data before the validation split: a parameter
    that happens to hold one value in the training part is still an input, not refused."""
    data = duffing_data("1.0")
    _, val = split_by_trajectory(data, ESN["val_fraction"], 0)
    held_out = np.isin(data.x[:, 0], val.x[:, 0])
    params = {**data.params, "alpha": np.where(held_out, 1.5, 1.0)}
    model = fit(dataclasses.replace(data, params=params), tmp_path)
    assert model.parameter_inputs == ("eta", "alpha", "beta") and model.layout.fixed == ()


def test_a_fixed_parameter_is_compared_in_its_own_units():
    """A value fixed at 1e-13 (a mass in kg) is not 9e-13: relative to it only (an absolute
    1e-12 let it pass), to rounding (1e-9 of it)."""
    layout = Layout(system="duffing", inputs=("x", "v", "F", "F_next"),
                    fixed={"eta": 0.1, "alpha": 1e-13, "beta": 1.0})
    params = {"eta": np.full(3, 0.1), "beta": np.ones(3)}
    check_fixed({**params, "alpha": np.full(3, 1e-13 * (1 + 1e-12))}, layout, "test.h5")
    with pytest.raises(DataError, match="test.h5 has alpha = 9e-13; this model was trained "
                                        "with alpha fixed at 1e-13"):
        check_fixed({**params, "alpha": np.full(3, 9e-13)}, layout, "test.h5")
    # a value a few parts in a thousand off is another value, not rounding
    with pytest.raises(DataError, match="test.h5 has eta = 0.1002; this model was trained "):
        check_fixed({**params, "eta": np.full(3, 0.1002), "alpha": np.full(3, 1e-13)}, layout,
                    "test.h5")
    # rounding is 1e-9 of it: one part in a million off is another value too
    with pytest.raises(DataError, match=r"test.h5 has beta = 1\.000001; this model"):
        check_fixed({**params, "beta": np.full(3, 1 + 1e-6), "alpha": np.full(3, 1e-13)},
                    layout, "test.h5")
    check_fixed({**params, "beta": np.full(3, 1 + 1e-10), "alpha": np.full(3, 1e-13)}, layout,
                "test.h5")


def test_data_at_another_value_of_a_fixed_parameter_is_refused(tmp_path):
    model = fit(duffing_data("1.0"), tmp_path)
    other = duffing_data("-1.0")
    message = re.escape("has alpha = -1; this model was trained with alpha fixed at 1 "
                        "(not an input)")
    with pytest.raises(DataError, match=message) as err:
        model.check_data(other, where="test.h5")
    assert str(err.value).startswith("test.h5 has alpha = -1")
    with pytest.raises(DataError, match=r"\(for surrogate 'esn'\) " + message) as err:
        evaluate(other, {"esn": model}, integrators=("rk4",), work_precision=False,
                 resonance=False, progress=False)
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match=r"has alpha from 0\.5\d* to 1\.4\d*; this model"):
        model.check_data(duffing_data("[0.5, 1.5]"))
    with pytest.raises(DataError, match="rollout params has alpha = -1"):
        model.rollout(other.x[:, 0], other.v[:, 0], other.F, other.params)
    same = duffing_data("1.0")  # the trained value (to rounding) passes
    model.check_data(same)
    nudged = {**same.params, "alpha": same.params["alpha"] * (1 + 1e-12)}
    model.rollout(same.x[:, 0], same.v[:, 0], same.F, nudged)
    with pytest.raises(DataError, match="has no params/alpha; this model was trained with "
                                        "alpha fixed at 1"):
        model.check_data(type(same)(same.t, same.x, same.v, same.F,
                                    {k: v for k, v in same.params.items() if k != "alpha"},
                                    same.attrs))


@pytest.mark.parametrize("name", ["x", "v", "F", "params/eta"])
def test_data_with_a_value_not_finite_is_refused_in_one_line(name):
    """In-memory data (a file is checked when read): a NaN in x was evaluated as if it
    were a measurement, and fitting it said "mean is nan" instead of naming it."""
    import dataclasses

    data = duffing_data("1.0")
    if name.startswith("params/"):
        bad = dataclasses.replace(data, params={**data.params, "eta": data.params["eta"].copy()})
        bad.params["eta"][1] = np.nan
    else:
        bad = dataclasses.replace(data, **{name: getattr(data, name).copy()})
        getattr(bad, name)[1, 5] = np.inf
    with pytest.raises(DataError, match=rf"^test\.h5: {name} contains non-finite values$"):
        check_data(bad, Layout(dt=data.dt, system="duffing"), where="test.h5")


def test_what_is_recorded_as_fixed():
    n = 6
    params = {"eta": np.linspace(0.1, 0.5, n), "alpha": np.full(n, -1.0), "beta": np.ones(n)}
    config = TrainConfig.from_dict(ESN)
    layout = config.layout(0.05, "duffing", params)
    assert layout.parameters == ("eta",) and layout.fixed == (("alpha", -1.0), ("beta", 1.0))
    # withheld and constant: one value, recorded; withheld while it varies: nothing recorded
    blind = TrainConfig.from_dict({**ESN, "withhold": ["eta", "beta"]}).layout(
        0.05, "duffing", params)
    assert blind.parameters == () and dict(blind.fixed) == {"alpha": -1.0, "beta": 1.0}
    # a constant the user lists as an input is refused: it was taken, unchecked, and the
    # model had learnt nothing of it (README: data with another value is refused)
    listed = TrainConfig.from_dict({**ESN, "inputs": ["x", "v", "F", "alpha"]})
    with pytest.raises(SpecError, match=r"inputs name 'alpha', which takes one value \(-1\) "
                                        "in the training data"):
        listed.layout(0.05, "duffing", params)
    assert TrainConfig.from_dict({**ESN, "inputs": ["x", "v", "F", "eta"]}).layout(
        0.05, "duffing", params).parameters == ("eta",)  # varying: taken
    assert config.layout(0.05, "duffing").fixed == ()  # no data: nothing known
    assert Layout.from_dict(json.loads(json.dumps(layout.to_dict()))) == layout
    assert layout.to_dict()["fixed"] == {"alpha": -1.0, "beta": 1.0}
    with pytest.raises(SpecError, match="fixed eta"):
        Layout(inputs=("x", "v", "eta"), system="duffing", fixed={"eta": 0.2})  # an input
    with pytest.raises(SpecError, match="fixed mu"):
        Layout(inputs=("x", "v"), system="duffing", fixed={"mu": 1.0})


def test_withhold_removes_a_parameter(duffing, tmp_path):
    model = fit(duffing, tmp_path, withhold=["beta"], warmup=5)
    assert (model.parameter_inputs, model.warmup_steps) == (("eta", "alpha"), 5)
    assert model.layout.fixed == ()  # beta varied: no single value to hold data to
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["config"]["withhold"] == ["beta"]


def test_withholding_what_the_system_lacks_is_one_spec_error(duffing, tmp_path):
    with pytest.raises(SpecError, match=r"withhold 'mu': not a parameter of system 'duffing'"):
        train(duffing, TrainConfig.from_dict({**ESN, "withhold": ["mu"]}), tmp_path / "r",
              progress=False)
    assert not (tmp_path / "r").exists()
    with pytest.raises(SpecError, match="did you mean 'alpha'"):  # checked against the data
        train(duffing, TrainConfig.from_dict({**ESN, "withhold": ["alpah"]}), tmp_path / "r",
              progress=False)
    assert not (tmp_path / "r").exists()
    for name in ("x0", ""):  # no parameter's name whatever the data
        with pytest.raises(SpecError, match="give a parameter's name"):
            TrainConfig.from_dict({**ESN, "withhold": [name]})


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


def test_layouts_stored_before_fixed_values_load_and_check_none(tmp_path):
    old = {"target": "state", "inputs": ["x", "v", "F", "F_next", "eta", "beta"], "dt": 0.05,
           "lags": 1, "warmup": 0, "system": "duffing"}
    layout = Layout.from_dict(old)
    assert layout.fixed == () and layout.parameters == ("eta", "beta")
    data = duffing_data("-1.0")
    check_data(data, layout)  # nothing recorded, nothing refused
    model = fit(duffing_data("1.0"), tmp_path)
    record = read_checkpoint(tmp_path / "best.pt")
    assert record["args"]["layout"]["fixed"] == {"alpha": 1.0}
    del record["args"]["layout"]["fixed"]
    older = from_record(record, "older.pt")
    assert older.layout == dataclasses.replace(model.layout, fixed=())
    older.check_data(data)


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


def test_cli_refuses_data_at_another_value_of_a_fixed_parameter(tmp_path, capsys):
    data, other = tmp_path / "alpha1.h5", tmp_path / "test.h5"
    simulate(duffing_spec("1.0"), data)
    simulate(duffing_spec("-1.0", n=8, seed=5), other)
    code, _, err = run(["train", data, "-o", tmp_path / "run", "--model", "esn", "--units", "30",
                        "-q"], capsys)
    assert code == 0, err
    code, _, err = run(["evaluate", tmp_path / "run", "--data", other, "-o", tmp_path / "r"],
                       capsys)
    assert_one_line_error(code, err, "test.h5 (for surrogate", "has alpha = -1; this model was "
                          "trained with alpha fixed at 1 (not an input)")
    assert not (tmp_path / "r").exists()
    code, _, err = run(["train", data, "--val", other, "-o", tmp_path / "v", "--model", "esn",
                        "--units", "30", "-q"], capsys)
    assert_one_line_error(code, err, "validation data has alpha = -1", "fixed at 1")
    assert not (tmp_path / "v").exists()
