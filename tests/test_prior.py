"""Hybrid surrogates: a prior equation's one rk4-sampled step as an input, the surrogate
learning the correction (``--prior SYSTEM --prior-set NAME=VALUE``). The prior's step is
odernn's integrator's, in numpy and in torch; a hybrid with the exact prior is at least as
good as the prior's integrator, and with a wrong prior it beats both the prior alone and the
pure surrogate; a hybrid saves, loads, steps and checks its input like any surrogate."""

from __future__ import annotations

import dataclasses
import functools
import json

import numpy as np
import pytest
import torch
from conftest import dev_extra
from test_cli import SPEC
from test_step_api import one_torch_thread  # noqa: F401  (autouse: one torch thread)

import odernn
from odernn.assess.evaluate import evaluate
from odernn.cli.app import main
from odernn.data.forcing import SampledForcing
from odernn.data.integrators import integrate
from odernn.data.simulate import simulate_trajectories
from odernn.data.spec import load_spec
from odernn.data.systems import SYSTEMS, Oscillator
from odernn.errors import DataError, SpecError
from odernn.learn.config import TrainConfig
from odernn.learn.models.layout import Layout
from odernn.learn.models.prior import prior_step

BETA = 1.0
"""The cubic stiffness of the test data, fixed, so that a prior can be wrong by 20%."""
ESN = {"model": "esn", "units": 200, "ridge": 1e-10, "device": "cpu", "seed": 0}
WRONG = {"beta+20%": ("duffing", (("beta", 1.2 * BETA),)), "linear": ("oscillator", ())}
"""Wrong priors: the prior's system and set parameters (the others are the data's)."""


@functools.cache
def duffing(name: str, n: int, n_steps: int = 300):
    """Built-in spec ``name``, shortened, with beta fixed at :data:`BETA`."""
    return simulate_trajectories(load_spec(name).with_overrides(n=n, n_steps=n_steps,
                                                                beta=BETA))


@functools.cache
def fitted(prior: str | None = None, prior_set: tuple = ()):
    """The ESN of :data:`ESN` on the training data, a hybrid with ``prior``."""
    options = {**ESN, "prior": prior, "prior_set": dict(prior_set)}
    model, result = odernn.fit(duffing("duffing-train", 16), options)
    assert result.status == "ok", result.message
    return model


def nrmse(x, ref) -> float:
    return float(np.sqrt(np.mean((x - ref) ** 2)) / np.std(ref))


def prior_alone(data, system: str, prior_set=None) -> np.ndarray:
    """x of the prior's integrator, rk4-sampled on the samples of ``data``."""
    given = dict(prior_set or ())
    params = {n: np.full(data.n, given[n]) if n in given else data.params[n]
              for n in SYSTEMS[system].names}
    oscillator = Oscillator.of(system, params, SampledForcing(data.t, data.F))
    return integrate("rk4-sampled", oscillator, data.x[:, 0], data.v[:, 0], data.t)[0]


def surrogate_x(model, data) -> np.ndarray:
    out = model.rollout(data.x[:, 0], data.v[:, 0], data.F, data.params)
    assert out.n_diverged == 0
    return out.x


# -- the prior's step -------------------------------------------------------------------------
@pytest.mark.parametrize("system", SYSTEMS)
def test_the_prior_step_is_the_rk4_sampled_integrators_step(system):
    rng = np.random.default_rng(1)
    n, dt = 50, 0.05
    params = {p.name: rng.uniform(0.1, 1.5, n) for p in SYSTEMS[system].parameters}
    x, v, F = rng.uniform(-2, 2, n), rng.uniform(-2, 2, n), rng.uniform(-1, 1, (n, 2))
    t = np.array([0.0, dt])
    want = integrate("rk4-sampled", Oscillator.of(system, params, SampledForcing(t, F)), x, v, t)
    got = prior_step(SYSTEMS[system], params, x, v, F[:, 0], F[:, 1], dt)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b[:, 1], rtol=0, atol=1e-12)
    for dtype, tol in ((torch.float64, 1e-13), (torch.float32, 2e-6)):
        def tensor(a, dtype=dtype):
            return torch.as_tensor(a, dtype=dtype)

        got_t = prior_step(SYSTEMS[system], {k: tensor(p) for k, p in params.items()},
                           tensor(x), tensor(v), tensor(F[:, 0]), tensor(F[:, 1]), dt)
        for a, b in zip(got_t, got, strict=True):
            np.testing.assert_allclose(a.double().numpy(), b, rtol=tol, atol=tol)


# -- accuracy ---------------------------------------------------------------------------------
def test_with_the_exact_prior_the_hybrid_is_at_least_the_prior_integrator():
    test = duffing("duffing-test", 8)
    model = fitted("duffing")
    assert model.layout.n_inputs == len(model.layout.inputs) + 2
    hybrid, alone = nrmse(surrogate_x(model, test), test.x), nrmse(prior_alone(test, "duffing"),
                                                                  test.x)
    # measured: hybrid 7e-5, rk4-sampled 9e-4 (it learns the half-step interpolation's
    # error); a hybrid that dropped its correction would be the prior itself, equal to it
    assert hybrid < 0.3 * alone, (hybrid, alone)


def test_a_hybrid_on_the_datas_own_equation_knows_the_equation():
    """The report's information classes: a hybrid whose prior is the data's equation with the
    data's parameters knows what an integrator knows (it was put among those knowing an
    approximate model), one on a wrong prior an approximate model, a pure surrogate the
    data only."""
    from odernn.assess.results import information_class

    test = duffing("duffing-test", 4)
    system, prior_set = WRONG["beta+20%"]
    ev = evaluate(test, {"exact-prior": fitted("duffing"), "wrong-prior": fitted(system,
                                                                                  prior_set),
                         "pure": fitted()}, integrators=("rk4",), work_precision=False,
                  resonance=False, chaos=False, bifurcation=False, progress=False)
    classes = {name: information_class(m) for name, m in ev.methods.items()}
    assert classes == {"data": None, "rk4": "knows the equation",
                       "exact-prior": "knows the equation",
                       "wrong-prior": "knows an approximate model", "pure": "data only"}


@pytest.mark.parametrize("wrong", WRONG)
def test_with_a_wrong_prior_the_hybrid_beats_the_prior_and_the_pure_esn(wrong):
    test = duffing("duffing-test", 8)
    system, prior_set = WRONG[wrong]
    hybrid = nrmse(surrogate_x(fitted(system, prior_set), test), test.x)
    alone = nrmse(prior_alone(test, system, prior_set), test.x)
    pure = nrmse(surrogate_x(fitted(), test), test.x)
    assert hybrid < 0.5 * alone and hybrid < 0.5 * pure, (hybrid, alone, pure)


def test_a_gru_hybrid_trains_and_beats_its_wrong_prior():
    train, test = duffing("duffing-train", 16), duffing("duffing-test", 8)
    system, prior_set = WRONG["beta+20%"]
    model, result = odernn.fit(train, model="gru", hidden=32, epochs=5, window=20, batch_size=64,
                               device="cpu", prior=system, prior_set=dict(prior_set))
    assert result.status == "ok", result.message
    hybrid = nrmse(surrogate_x(model, test), test.x)
    alone = nrmse(prior_alone(test, system, prior_set), test.x)
    assert hybrid < 0.7 * alone, (hybrid, alone)  # measured (5 Dec 2026): 0.012 against 0.22


# -- a model like any other -------------------------------------------------------------------
@pytest.mark.parametrize("beta", [1e30, 1e20])
def test_a_prior_that_overflows_on_the_data_is_refused_before_training(tmp_path, beta):
    """beta = 1e200 was a finite number in its range, but the prior's prediction overflowed:
    the reservoir trained, said 'every ridge strength diverged' and left a run that could not
    load (a NaN normalisation); the gradient families said 'try a lower lr'. (An option beyond
    float32's range is now refused as an option.) With 1e30 the prediction overflows float32;
    with 1e20 the statistics were finite in float64 and infinite in the float32 codec: the
    same."""
    train = duffing("duffing-train", 8, n_steps=100)
    run = tmp_path / "run"
    with pytest.raises(DataError, match=r"y0 has a \w+ of .*float32 number: the prior duffing.*"
                                        "overflows"):
        odernn.fit(train, model="esn", units=20, prior="duffing", prior_set={"beta": beta},
                   run_dir=run)
    assert not run.exists()


def test_a_prior_for_a_series_is_refused_as_a_series_first():
    """The prior's missing eta was said first, and giving it led to the series refusal."""
    series = simulate_trajectories(load_spec("sine"))
    with pytest.raises(DataError, match="univariate series"):
        odernn.fit(series, model="esn", units=20, prior="linear")


def test_a_saved_hybrid_loads_rolls_out_and_steps_to_the_last_bit(tmp_path):
    train, test = duffing("duffing-train", 16), duffing("duffing-test", 4)
    model, _ = odernn.fit(train, {**ESN, "units": 60, "prior": "duffing",
                                  "prior_set": {"beta": 1.2}}, run_dir=tmp_path / "run")
    loaded = odernn.load_surrogate(tmp_path / "run")
    assert loaded.layout == model.layout and loaded.layout.prior_set == (("beta", 1.2),)
    want = model.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params)
    got = loaded.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params)
    np.testing.assert_array_equal(got.x, want.x)
    np.testing.assert_array_equal(got.v, want.v)
    stepper = loaded.stepper(test.x[:, 0], test.v[:, 0], test.params)
    for i in range(test.n_steps - 1):
        x, v = stepper.step(test.F[:, i], test.F[:, i + 1])
        np.testing.assert_array_equal(x, want.x[:, i + 1])
        np.testing.assert_array_equal(v, want.v[:, i + 1])
    report = evaluate(test, {"hybrid": loaded}, integrators=["rk4-sampled"], progress=False,
                      work_precision=False, resonance=False, chaos=False, bifurcation=False)
    assert "hybrid with prior duffing(beta=1.2; eta, alpha from the data)" in \
        report.methods["hybrid"].description


def test_the_layout_stores_the_prior_and_an_old_layout_has_none():
    layout = Layout("state", ("x", "v", "F", "F_next", "eta"), 0.05, system="duffing",
                    fixed={"alpha": 1.0}, prior="linear", prior_set={})
    assert layout.prior == "oscillator" and layout.n_inputs == 7
    hybrid = Layout("state", ("x", "v", "F", "F_next", "eta"), 0.05, system="duffing",
                    fixed={"alpha": 1.0}, prior="duffing", prior_set={"beta": 1.2})
    stored = hybrid.to_dict()
    assert stored["prior"] == "duffing" and stored["prior_set"] == {"beta": 1.2}
    assert Layout.from_dict(stored) == hybrid
    old = {k: v for k, v in stored.items() if k not in ("prior", "prior_set")}
    assert Layout.from_dict(old).prior is None and Layout.from_dict(old).n_inputs == 5


@pytest.mark.parametrize(("options", "needle"), [
    ({"prior": "dufing"}, "did you mean 'duffing'"),
    ({"prior": "duffing", "prior_set": {"gamma": 1.0}}, "no parameter 'gamma'"),
    ({"prior": "duffing", "prior_set": {"eta": -1.0}}, "outside its valid range"),
    ({"prior": "duffing", "prior_set": {"beta": "big"}}, "prior_set"),
    ({"prior_set": {"beta": 1.0}}, "--prior SYSTEM"),
    ({"prior": "duffing", "target": "velocity"}, "target 'state'"),
    ({"prior": "duffing", "inputs": ["x", "v", "F"]}, "F_next"),
])
def test_bad_priors_are_refused_before_the_data(options, needle):
    with pytest.raises(SpecError, match=needle):
        TrainConfig.from_dict({"model": "esn", **options})


def test_a_prior_parameter_the_data_does_not_give_is_refused():
    config = TrainConfig.from_dict({"model": "esn", "prior": "duffing", "withhold": ["beta"]})
    params = {"eta": np.array([0.1, 0.2]), "alpha": np.ones(2), "beta": np.array([0.5, 0.9])}
    with pytest.raises(SpecError, match="the prior duffing needs beta: give --prior-set beta="):
        config.layout(0.05, "duffing", params)  # beta varies and is withheld: no value
    fixed = config.layout(0.05, "duffing", {**params, "beta": np.full(2, 0.7)})
    assert fixed.fixed == (("alpha", 1.0), ("beta", 0.7))  # withheld but constant: fixed


def test_odernn_train_takes_a_prior_and_export_names_it(tmp_path, capsys):
    spec = tmp_path / "small.toml"
    spec.write_text(SPEC)
    data, run_dir = tmp_path / "small.h5", tmp_path / "run"
    assert main(["simulate", str(spec), "-o", str(data), "-q"]) == 0
    assert main(["train", str(data), "-o", str(run_dir), "--model", "esn", "--units", "30",
                 "--prior", "linear", "--prior-set", "eta=0.2", "--quiet"]) == 0
    config = json.loads((run_dir / "config.json").read_text())["config"]
    assert config["prior"] == "oscillator" and config["prior_set"] == {"eta": 0.2}
    assert odernn.load_surrogate(run_dir).layout.prior_label == "oscillator(eta=0.2)"
    onnx = dev_extra("onnx")
    path = odernn.export_onnx(odernn.load_surrogate(run_dir), tmp_path / "hybrid.onnx")
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert meta["prior"] == "oscillator" and meta["prior_set"] == "eta=0.2"
    capsys.readouterr()


def test_a_prior_parameter_from_the_data_outside_its_range_is_refused(tmp_path):
    """A file's own parameter values feed the prior where prior_set does not: an imported
    negative damping trained a duffing prior that is not the Duffing oscillator (prior_set
    eta = -0.1 was refused); now refused as prior_set's is, before anything is written."""
    data = duffing("duffing-train", 8, n_steps=100)
    forged = dataclasses.replace(data, attrs={**data.attrs, "system": "external"},
                                 params={**data.params, "eta": -data.params["eta"]})
    run = tmp_path / "run"
    with pytest.raises(SpecError, match=r"prior duffing: eta = -0\.\d+ is outside its valid "
                       r"range \[0, inf\) in the training data; give --prior-set eta=VALUE"):
        odernn.fit(forged, model="esn", units=20, prior="duffing", run_dir=run)
    assert not run.exists()
    model, result = odernn.fit(forged, model="esn", units=20, prior="duffing",
                               prior_set={"eta": 0.1})
    assert result.status == "ok"
    hybrid, _ = odernn.fit(data, model="esn", units=20, prior="duffing")  # test data: the
    with pytest.raises(SpecError, match=r"eta = -0\.\d+ is outside its valid range \[0, inf\) "
                       "in test.h5; the prior duffing is not defined there"):  # same check
        hybrid.check_data(dataclasses.replace(forged, attrs=data.attrs), where="test.h5")
    with pytest.raises(SpecError, match="in rollout params; the prior duffing is not"):
        hybrid.rollout(forged.x[:, 0], forged.v[:, 0], forged.F, forged.params)


def test_a_config_files_prior_set_is_merged_with_prior_set_flags(tmp_path, capsys):
    """--prior-set eta=0.2 replaced the whole [prior_set] of --config: its beta = 1.2 was
    dropped, and a 'wrong prior' experiment ran with the data's true beta."""
    data, run_dir = tmp_path / "d.h5", tmp_path / "run"
    assert main(["simulate", "duffing-train", "-o", str(data), "--n", "8", "--n-steps", "60",
                 "-q"]) == 0
    (tmp_path / "c.toml").write_text('prior = "duffing"\n[prior_set]\nbeta = 1.2\n')
    assert main(["train", str(data), "-o", str(run_dir), "--model", "esn", "--units", "20",
                 "--config", str(tmp_path / "c.toml"), "--prior-set", "eta=0.2", "-q"]) == 0
    config = json.loads((run_dir / "config.json").read_text())["config"]
    assert config["prior_set"] == {"beta": 1.2, "eta": 0.2}
    assert main(["train", str(data), "-o", str(run_dir), "--model", "esn", "--units", "20",
                 "--config", str(tmp_path / "c.toml"), "--prior", "pendulum", "--prior-set",
                 "eta=0.2", "--overwrite", "-q"]) == 0  # another prior: the flags' alone
    config = json.loads((run_dir / "config.json").read_text())["config"]
    assert config["prior"] == "pendulum" and config["prior_set"] == {"eta": 0.2}
    assert main(["train", str(data), "-o", str(run_dir), "--model", "esn", "--units", "20",
                 "--config", str(tmp_path / "c.toml"), "--prior-set", "beta=0.7",
                 "--overwrite", "-q"]) == 0  # the same key: the flag wins
    config = json.loads((run_dir / "config.json").read_text())["config"]
    assert config["prior_set"] == {"beta": 0.7}
    capsys.readouterr()
