"""The public API re-exported from the package root: light to import, complete, usable."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import odernn
from odernn.assess.work_precision import WorkPrecisionSettings
from odernn.cli.app import main
from odernn.errors import DataError, OutputError, SpecError
from odernn.learn.config import TrainConfig


def test_importing_odernn_and_naming_the_api_loads_no_torch():
    code = ("import sys, odernn; odernn.fit, odernn.simulate, odernn.evaluate, "
            "odernn.write_report, odernn.load_surrogate, odernn.read_trajectories, "
            "odernn.load_spec, odernn.INTEGRATORS, odernn.SPECS; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_the_command_line_help_loads_no_numba():
    """numba (about 0.3 s to import and set up) is imported when an integrator first runs."""
    code = ("import sys; from odernn.cli.app import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('numba' in sys.modules, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip().endswith("False"), out.stderr


def test_reading_a_dataset_loads_no_numba(tmp_path):
    """Every read checks a file's forcing samples against its parameters; that stays numpy,
    so that train and inspect pay no compiled start-up."""
    path = odernn.simulate(odernn.load_spec("train").with_overrides(n=3, n_steps=200),
                           tmp_path / "d.h5")
    code = (f"import sys, odernn; odernn.read_trajectories({str(path)!r}); "
            "print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_every_public_name_resolves_and_unknown_names_raise():
    for name in odernn.__all__:
        assert getattr(odernn, name) is not None, name
    assert "train" in odernn.SPECS and "exact" in odernn.INTEGRATORS and "esn" in odernn.MODELS
    try:
        odernn.no_such_thing  # noqa: B018
    except AttributeError as err:
        assert "no_such_thing" in str(err)
    else:
        raise AssertionError("an unknown name resolved")


@pytest.mark.parametrize("options", [
    {"model": "esn", "units": 40},
    {"model": "gru", "hidden": 8, "epochs": 2, "window": 20},
    # the best epoch is not the last: the model kept in memory is the best epoch's, not the
    # last (its record once held the model's own tensors, which training went on to change)
    {"model": "gru", "hidden": 8, "epochs": 6, "window": 20, "val_every": 1, "lr": 0.1,
     "seed": 3},
])
def test_fit_in_memory_writes_nothing_and_equals_a_run_directory(tmp_path, monkeypatch,
                                                                options):
    spec = odernn.load_spec("train").with_overrides(n=8, n_steps=120, integrator="exact")
    data = odernn.simulate_trajectories(spec)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    model, result = odernn.fit(data, **options)
    assert result.status == "ok" and result.run_dir is None and list(tmp_path.iterdir()) == []
    if options.get("seed") == 3:
        assert result.best_epoch < len(result.history) - 1
    a = model.rollout(data.x[:, 0], data.v[:, 0], data.F, data.params["eta"])
    _, kept = odernn.fit(data, options, run_dir=tmp_path / "run")
    assert [r["val_nrmse_x"] for r in kept.history] == [r["val_nrmse_x"] for r in result.history]
    b = odernn.load_surrogate(tmp_path / "run").rollout(data.x[:, 0], data.v[:, 0], data.F,
                                                        data.params["eta"])
    np.testing.assert_array_equal(a.x, b.x)


def test_fit_in_memory_and_into_a_run_directory_give_the_same_model(tmp_path):
    spec = odernn.load_spec("train").with_overrides(n=8, n_steps=120, integrator="exact")
    data = odernn.simulate_trajectories(spec)
    model, result = odernn.fit(data, model="esn", units=40)
    again, kept = odernn.fit(data, {"model": "esn", "units": 40}, run_dir=tmp_path / "run")
    assert (tmp_path / "run" / "best.pt").exists()
    assert [r["val_nrmse_x"] for r in kept.history] == [r["val_nrmse_x"] for r in result.history]
    a = model.rollout(data.x[:, 0], data.v[:, 0], data.F, data.params["eta"])
    b = odernn.load_surrogate(tmp_path / "run").rollout(data.x[:, 0], data.v[:, 0], data.F,
                                                        data.params["eta"])
    np.testing.assert_array_equal(a.x, b.x)
    assert again.family == "esn"
    # an existing output is refused in the caller's words: the keyword, then the flag
    odernn.fit_seeds(data, model="esn", units=40, seeds=2, run_dir=tmp_path / "group")
    odernn.simulate(spec, tmp_path / "data.h5")
    for call in (lambda: odernn.fit(data, model="esn", units=40, run_dir=tmp_path / "run"),
                 lambda: odernn.fit_seeds(data, model="esn", units=40, seeds=2,
                                          run_dir=tmp_path / "group"),
                 lambda: odernn.simulate(spec, tmp_path / "data.h5")):
        with pytest.raises(OutputError, match=r"pass --overwrite.* \(in Python overwrite=True"):
            call()


def test_a_recorded_config_refits_with_its_own_validation_set(small_linear_sets):
    """``config.to_dict()`` records val_fraction (its default) even for a run given ``val``:
    fitting from it again with a validation set is no holdout asked for twice."""
    from odernn.learn.config import TrainConfig

    train, test = small_linear_sets
    config = TrainConfig(model="esn", units=30)
    _, result = odernn.fit(train, config.to_dict(), val=test)
    assert result.status == "ok"
    with pytest.raises(SpecError, match="with val"):
        odernn.fit(train, {**config.to_dict(), "val_fraction": 0.3}, val=test)


def test_a_reservoir_given_a_val_fraction_on_few_trajectories_holds_them_out(
        small_linear_sets, tmp_path):
    """On 2 to 10 trajectories the reservoir leaves one out by default; a val_fraction of the
    user's own asks for the holdout instead (it was ignored, then refused as given with the
    automatic folds)."""
    few = small_linear_sets[0].take(np.arange(5))
    recorded = {}
    for name, options in (("auto", {}), ("held", {"val_fraction": 0.4})):
        odernn.fit(few, model="esn", units=30, run_dir=tmp_path / name, **options)
        recorded[name] = json.loads((tmp_path / name / "config.json").read_text())
    assert recorded["auto"]["config"]["val_folds"] == 5
    assert recorded["held"]["config"]["val_folds"] is None
    assert recorded["held"]["data"]["val_fraction"] == 0.4


def test_version_flag(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"odernn {odernn.__version__}"


def test_the_api_reference_is_generated_from_the_code():
    script = Path(__file__).parents[1] / "docs" / "api.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr


class Fitted:
    """Enough of a fitted model for evaluate to take it (its names are checked first)."""

    def rollout(self, *args, **kwargs):
        raise AssertionError("evaluate should have refused before rolling out")


@pytest.mark.parametrize(("call", "error", "needle"), [
    (lambda d: odernn.fit([1, 2, 3], model="esn"), DataError, "got list"),
    (lambda d: odernn.fit({"x": 1}, model="esn"), DataError, "got dict"),
    (lambda d: odernn.fit(None, model="esn"), DataError, "got NoneType"),
    (lambda d: odernn.fit_seeds([1], model="esn"), DataError, "got list"),
    (lambda d: odernn.fit(d, "esn"), SpecError, "fit(data, model='esn')"),
    (lambda d: odernn.fit(d, model="esn", val=[1]), DataError, "val must be"),
    (lambda d: odernn.fit(d, model="esn", val=d, val_fraction=0.5), SpecError,
     "with val (--val) they are all trained on"),  # was dropped silently (the CLI refused it)
    (lambda d: odernn.fit_seeds(d, {"model": "esn", "val_fraction": 0.5}, val=d), SpecError,
     "with val (--val) they are all trained on"),
    # an API audit's: each was a traceback from inside the library or a silent wrong model
    (lambda d: odernn.Trajectories(d.t**1.1, d.x, d.v, d.F, d.params, d.attrs), DataError,
     "uniform time grid"),  # fit trained at dt = t[1] - t[0]
    (lambda d: odernn.Trajectories(d.t[:-1], d.x, d.v, d.F), DataError, "t (T,) and x (N, T)"),
    (lambda d: odernn.Trajectories(d.t, d.x, d.v, d.F, {"eta": np.array([0.1])}), DataError,
     "params/eta must hold one value (or row) per trajectory, (4,)"),  # was a fixed eta
    (lambda d: odernn.Trajectories(d.t, d.x[0], d.v[0], d.F[0]), DataError, "x (N, T)"),
    (lambda d: odernn.Trajectories(d.t, d.x, d.v[:, :-1], d.F), DataError, "v of x's shape"),
    (lambda d: odernn.evaluate(d, [1]), SpecError, "mapping of names to fitted models"),
    (lambda d: odernn.evaluate(3, {}), DataError, "trajectories or a file's path"),
    (lambda d: odernn.evaluate(d, {}, integratorz=("rk4",)), SpecError,
     "did you mean 'integrators'"),  # was Python's own TypeError
    (lambda d: odernn.write_report(None, "report"), SpecError, "takes what odernn.evaluate"),
    # a researcher's walk through the API: each was silently wrong or a traceback
    (lambda d: odernn.evaluate(dataclasses.replace(d, F=0 * d.F), {}), DataError,
     "F[0, 0] = 0"),  # the integrators rebuilt from params measured other forcing
    (lambda d: odernn.fit(dataclasses.replace(d, F=0 * d.F), model="esn"), DataError,
     "F[0, 0] = 0"),
    (lambda d: odernn.evaluate(d, {}, threshold=float("nan")), SpecError,
     "threshold must be a positive number"),  # every valid time was the whole horizon
    (lambda d: odernn.evaluate(d, {}, threshold=-1), SpecError, "threshold"),
    (lambda d: odernn.evaluate(d, {}, scipy_options={"rtl": 1e-3}), SpecError,
     "'rtl' unknown (did you mean 'rtol'?)"),
    (lambda d: odernn.evaluate(d, {}, scipy_options={"rtol": 1e-15}), SpecError,
     "rtol must be at least SciPy's floor"),  # refused after the reference had run
    (lambda d: WorkPrecisionSettings(scipy_rtols=(1e-15,)), SpecError,
     "scipy_rtols must be positive numbers of at least 100 eps"),
    (lambda d: odernn.evaluate(d, {1: Fitted()}), SpecError, "surrogate name 1"),
    (lambda d: odernn.evaluate(d, {"a\nb": Fitted()}), SpecError, "printable"),
    (lambda d: odernn.fit(d, TrainConfig(model="rnn", hidden=8.5)), SpecError,
     "'hidden' = 8.5 is invalid"),  # a TrainConfig built directly was not checked
    (lambda d: TrainConfig(model="rnn", withhold="eta"), SpecError,
     "'withhold' = 'eta' is invalid; allowed: a list of str"),  # was split into letters
    (lambda d: TrainConfig(model="rnn", epochs=1.5), SpecError, "an integer"),
    (lambda d: TrainConfig(model="rnn", prior_set=None), SpecError,  # was "cannot be empty"
     "'prior_set' = None is invalid; leave it out for its default"),
    (lambda d: TrainConfig(model="rnn", prior="duffing", prior_set={"beta": "x"}), SpecError,
     "'prior_set.beta' = 'x' is invalid; allowed: a finite number"),
    (lambda d: odernn.load_spec("train").with_overrides(n_steps=50.5), SpecError,
     "n_steps must be an integer"),  # simulated 51 points and recorded n_steps = 50.5
    (lambda d: odernn.load_spec("train").with_overrides(n=True), SpecError,
     "n must be an integer"),
    (lambda d: odernn.load_spec("train").with_overrides(dt="0.1"), SpecError,
     "dt must be a finite number"),
    (lambda d: odernn.load_spec("train").with_overrides(name=7), SpecError,
     "name must be a string, got 7"),  # was stored as "7"
    (lambda d: odernn.load_spec("train").with_overrides(description=["a"]), SpecError,
     "description must be a string, got ['a']"),
    (lambda d: odernn.fit_seeds(d, model="esn", seeds=0), SpecError, "seeds (--seeds)"),
    # an audit of the API (7 December 2026): each was Python's, numpy's or pathlib's own
    # exception, or no error at all
    (lambda d: odernn.load_spec("train").with_overrides(dt=10**400), SpecError,
     "dt must be a finite number"),  # OverflowError
    (lambda d: odernn.load_spec("train").with_overrides(eta=[0, 10**400]), SpecError,
     "eta must be a finite number"),
    (lambda d: odernn.load_spec("train").with_overrides(integrator=np.array(["exact"])),
     SpecError, "is a ndarray, not a value a spec takes"),  # "truth value ... ambiguous"
    (lambda d: odernn.load_spec("train").with_overrides(family=np.array(["none"])),
     SpecError, "unknown forcing.family"),
    (lambda d: odernn.Trajectories(d.t[:0], d.x[:, :0], None, None, {}, {}), DataError,
     "T >= 1"),  # a ZeroDivisionError later
    (lambda d: odernn.fit(dataclasses.replace(d, t=d.t[:1], x=d.x[:, :1], v=d.v[:, :1],
                                              F=d.F[:, :1]), model="esn"), DataError,
     "one time point have no step dt"),  # an IndexError
    (lambda d: dataclasses.replace(d, attrs=None), DataError, "attrs must be a mapping"),
    (lambda d: dataclasses.replace(d, params={**d.params, 3: d.params["eta"]}), DataError,
     "named by strings; got the key 3"),  # a TypeError in sorting the names
    (lambda d: odernn.evaluate(dataclasses.replace(d, x=np.where(d.x > 0.5, np.nan, d.x)),
                               {}), DataError, "x holds non-finite values"),  # scored
    (lambda d: odernn.evaluate(d, {}, integrators=None), SpecError,
     "integrators must be a collection"),  # a TypeError
    (lambda d: odernn.evaluate(d, {}, integrators="rk4"), SpecError,
     "integrators must be a collection"),  # "unknown integrator 'r'"
    (lambda d: odernn.read_trajectories(3), SpecError,
     "a trajectory file's path must be a str or os.PathLike, got int 3"),
    (lambda d: odernn.load_spec(None), SpecError, "must be a str or os.PathLike"),
    (lambda d: odernn.simulate_trajectories({"n": 2}), SpecError,
     "must be a str or os.PathLike, got dict"),
    (lambda d: odernn.load_surrogate(None), SpecError, "load_surrogate's path must be"),
    (lambda d: odernn.simulate("train", 3), SpecError, "simulate's output must be"),
    (lambda d: odernn.fit(d, model="esn", units=10, run_dir=3), SpecError,
     "run_dir must be"),
])
def test_arguments_of_the_wrong_type_are_refused_in_words(call, error, needle):
    data = odernn.simulate_trajectories(odernn.load_spec("train").with_overrides(
        n=4, n_steps=40, integrator="exact"))
    with pytest.raises(error) as caught:
        call(data)
    assert needle in str(caught.value)


def test_a_gpu_asked_for_where_there_is_none_is_refused_in_words(small_linear_sets, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is available here")
    odernn.fit(small_linear_sets[0], model="esn", units=20, run_dir=tmp_path / "run")
    for device in ("cuda", "cuda:0"):
        with pytest.raises(SpecError, match="no CUDA GPU is available"):
            odernn.load_surrogate(tmp_path / "run", device=device)
    with pytest.raises(SpecError, match="'tpu' unknown"):
        odernn.load_surrogate(tmp_path / "run", device="tpu")
    assert odernn.load_surrogate(tmp_path / "run", device="cpu").family == "esn"


def test_hand_made_trajectories_of_anything_but_real_numbers_are_refused(small_linear_sets):
    """Complex numbers (a complex grid was fitted and evaluated, its imaginary part dropped),
    strings, ragged lists and params that are no mapping: one DataError line each, where
    they failed later in numba's or numpy's tracebacks, or not at all."""
    import warnings

    test = small_linear_sets[1]
    t, x, v, F, params = test.t, test.x, test.v, test.F, test.params
    ragged = [list(row) for row in x]
    ragged[0] = ragged[0][:-1]
    cases = [((t + 1e-3j, x, v, F, params), "t must hold real numbers, not complex"),
             ((t, x.astype(str), v, F, params), "x must hold real numbers"),
             ((t, x, v + 0j, F, params), "v must hold real numbers"),
             ((t, ragged, v, F, params), "x must be an array of real numbers"),
             ((t, x, v, F, {**params, "eta": params["eta"].astype(str)}), "params/eta must"),
             ((t, x, v, F, None), "params must be a mapping")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning: refused, not cast
        for args, needle in cases:
            with pytest.raises(DataError, match=needle):
                odernn.Trajectories(*args, test.attrs)


def test_hand_made_trajectories_are_arrays_and_float32_grids_pass(small_linear_sets, tmp_path):
    """Lists are taken as arrays; a float32 grid is uniform to its own rounding (evaluate
    refused it as "not uniform"); evaluate takes a file's path as fit does; an oscillator's
    rollout refuses n_steps (ignored before); a recurrent model pickles (the identity
    activation was a lambda)."""
    import pickle

    train, test = small_linear_sets
    listed = odernn.Trajectories(test.t.tolist(), test.x.tolist(), test.v, test.F,
                                 {k: list(p) for k, p in test.params.items()}, test.attrs)
    assert isinstance(listed.x, np.ndarray) and listed.params["eta"].shape == (test.n,)
    small = odernn.Trajectories(test.t.astype(np.float32), test.x, test.v, test.F,
                                test.params, test.attrs)
    options = {"work_precision": False, "resonance": False, "chaos": False,
               "bifurcation": False, "integrators": ("rk4",), "progress": False}
    assert odernn.evaluate(small, {}, **options).metrics["rk4"]["nrmse_x"] < 1e-3
    path, spec = tmp_path / "test.h5", tmp_path / "small.toml"
    spec.write_text(odernn.load_spec("test").with_overrides(n=3, n_steps=50).to_toml())
    odernn.simulate(str(spec), path)  # a spec file's path, as the command line takes
    assert odernn.evaluate(str(path), {}, **options).info["data"]["path"] == str(path)
    model, _ = odernn.fit(train, model="rnn", hidden=8, epochs=1)
    again = pickle.loads(pickle.dumps(model))
    x0, v0 = test.x[:, 0], test.v[:, 0]
    np.testing.assert_array_equal(again.rollout(x0, v0, test.F, test.params).x,
                                  model.rollout(x0, v0, test.F, test.params).x)
    with pytest.raises(DataError, match="n_steps is for a series"):
        model.rollout(x0, v0, test.F, test.params, n_steps=10)
    with pytest.raises(DataError, match="needs v_obs"):  # was "got (6, 3), ()"
        model.rollout(x0, v0, test.F, test.params, warmup=(test.x[:, :3], None))
    with pytest.raises(DataError, match="at least one trajectory"):  # raised inside
        model.rollout(x0[:0], v0[:0], test.F[:0], {"eta": test.params["eta"][:0]})
    run = tmp_path / "run"
    odernn.fit(train, model="esn", units=30, run_dir=run)
    assert odernn.load_surrogate(run, device="cpu:0").device.type == "cpu"  # was "unreadable"


def test_numpy_numbers_are_numbers_and_a_stepper_owns_its_inputs(small_linear_sets, tmp_path):
    """From a researcher's walk through the API: NumPy's scalars are taken where Python's are
    (np.int64 seeds and sizes were refused "allowed: an integer"); a stepper copies the
    parameters it is given (changing the caller's array changed its later steps) and hands
    out a copy of diverged_at (writing to it made every later output inf); load_surrogate
    takes device "auto" as fit does (torch's RuntimeError); a series' rollout refuses the
    v0, F, params and warm-up v_obs it would ignore; non-finite starts or drives are
    refused, not reported as the model diverging; simulate_trajectories takes a spec's name
    as simulate does."""
    train, test = small_linear_sets
    model, _ = odernn.fit(train, model="esn", units=np.int64(30), spectral_radius=np.float32(.5),
                          seed=np.int64(3), run_dir=tmp_path / "run")
    assert odernn.load_surrogate(tmp_path / "run", device="auto").family == "esn"
    assert odernn.load_spec("test").with_overrides(n=np.int64(2), n_steps=np.int64(9)).n == 2
    config = TrainConfig(model="esn", ridge_grid=np.logspace(-8, -2, 4), withhold={"eta"},
                         inputs=np.array(["x", "v", "F"]))  # any list-like, as before
    assert config.withhold == ("eta",) and config.inputs == ("x", "v", "F")
    x0, v0, eta = test.x[:, 0], test.v[:, 0], test.params["eta"].copy()
    whole = model.rollout(x0, v0, test.F, {"eta": test.params["eta"]})
    stepper = model.stepper(x0, v0, {"eta": eta})
    eta[:] = 0.01
    for i in range(5):
        x, _ = stepper.step(test.F[:, i], test.F[:, i + 1])
    np.testing.assert_array_equal(x, whole.x[:, 5])
    stepper.diverged_at[:] = 0
    assert (stepper.diverged_at == -1).all() and np.isfinite(stepper.step(
        test.F[:, 5], test.F[:, 6])[0]).all()
    F = test.F.copy()
    F[2, 7] = np.nan
    with pytest.raises(DataError, match=r"F holds nan at index \[2, 7\]"):
        model.rollout(x0, v0, F, test.params)
    with pytest.raises(DataError, match="eta holds inf"):
        model.stepper(x0, v0, {"eta": np.full(test.n, np.inf)})
    series = odernn.simulate_trajectories("sine")
    fitted, _ = odernn.fit(series, model="esn", units=20, target="next-value", val=series)
    with pytest.raises(DataError, match="takes no v0, F or params"):
        fitted.rollout(series.x[:, 0], series.x[:, 0], n_steps=20)
    with pytest.raises(DataError, match="whole number n_steps"):
        fitted.rollout(series.x[:, 0], n_steps=20.0)
    with pytest.raises(DataError, match="has no v_obs to take"):
        fitted.rollout(series.x[:, 0], n_steps=20, warmup=(series.x[:, :3], series.x[:, :3]))
    with pytest.raises(DataError, match="has no v to take"):
        fitted.stepper(series.x[:, 0]).observe(series.x[:, 1], series.x[:, 1])


@pytest.mark.parametrize("name, value, needle", [
    ("F", None, "the name of an input channel"),
    ("x", None, "the name of an input channel"),
    ("k2", "two columns", r"shape \(N, 2\): a model takes parameters of one value"),
])
def test_a_hand_made_parameter_a_model_cannot_take_is_refused_in_words(name, value, needle):
    """Data built by hand (import refuses both): a parameter named as an input channel was
    silently dropped from the model's inputs, and one of (N, K) ended in numpy's traceback."""
    import dataclasses

    from odernn.data.simulate import simulate_trajectories
    from odernn.data.spec import load_spec
    from odernn.errors import SpecError

    data = simulate_trajectories(load_spec("test").with_overrides(n=16, n_steps=60))
    eta = data.params["eta"]
    given = np.stack([eta, eta], 1) if value else eta
    params = {**{k: p for k, p in data.params.items() if k != "eta"}, name: given}
    data = dataclasses.replace(data, params=params, attrs={**data.attrs, "system": "external"})
    with pytest.raises(SpecError, match=needle):
        odernn.fit(data, model="gru", hidden=4, epochs=1)


def test_rows_that_select_no_trajectory_are_refused(tmp_path):
    """``read_trajectories(path, rows)`` with rows past the end, reversed or empty returned a
    set of no trajectory, which failed later in other words ("the reference has std nan");
    a step of True was taken as 1."""
    path = tmp_path / "d.h5"
    odernn.simulate(odernn.load_spec("train").with_overrides(n=6, n_steps=40,
                                                             integrator="exact"), path)
    for rows in (slice(100, 200), slice(5, 2), slice(0, 0)):
        with pytest.raises(SpecError, match="select none of the 6 trajectories"):
            odernn.read_trajectories(path, rows=rows)
    with pytest.raises(SpecError, match="rows must be a slice of whole numbers with step 1"):
        odernn.read_trajectories(path, rows=slice(0, 3, True))
    assert odernn.read_trajectories(path, rows=slice(-2, None)).n == 2


def test_a_rollout_checks_its_memory_before_it_copies_the_forcing(monkeypatch):
    """A broadcast view of many samples (a few bytes) was copied to float64 and checked for
    finiteness before the closed loop's memory was: 2.8 GB under a budget of 512 MiB before
    the refusal. Now refused first."""
    import tracemalloc

    from odernn import budget

    data = odernn.simulate_trajectories(odernn.load_spec("train").with_overrides(
        n=8, n_steps=40, integrator="exact"))
    model, _ = odernn.fit(data, model="esn", units=20)
    F = np.broadcast_to(np.zeros(1), (1, 3 * 10**7))  # 240 MB as a float64 copy
    monkeypatch.setenv(budget.ENV, "64M")
    tracemalloc.start()
    try:
        with pytest.raises(budget.BudgetError, match="closed loop: 1 trajectories"):
            model.rollout(np.zeros(1), np.zeros(1), F, {"eta": np.full(1, 0.1)})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20


@pytest.mark.parametrize("flag", ["no", "False", 0, 1, None, [False]])
def test_overwrite_and_resume_take_true_or_false_only(tmp_path, flag):
    """Any object has a truth value: ``overwrite="no"`` replaced an existing dataset (and,
    given to fit, wiped a run). Only True or False (numpy's too) are taken; resume without a
    run directory was ignored (the model trained from scratch)."""
    spec = odernn.load_spec("train").with_overrides(n=2, n_steps=20)
    out = odernn.simulate(spec, tmp_path / "d.h5", progress=False)
    before = out.read_bytes()
    with pytest.raises(SpecError, match="overwrite must be True or False"):
        odernn.simulate(spec, out, overwrite=flag, progress=False)
    assert out.read_bytes() == before
    with pytest.raises(SpecError, match="resume must be True or False"):
        odernn.fit(out, model="ffn", run_dir=tmp_path / "run", resume=flag, epochs=1)
    with pytest.raises(SpecError, match="resume needs run_dir"):
        odernn.fit(out, model="ffn", resume=True, epochs=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5"]
    odernn.simulate(spec, out, overwrite=np.bool_(True), progress=False)


def test_arguments_of_the_wrong_kind_are_refused_in_words(tmp_path):
    """Each failed deep inside (no attribute 'v', pathlib's TypeError, numpy's IndexError, a
    KeyError) or, two integrators of one name, was taken."""
    from test_step_api import tiny_data, tiny_model

    from odernn.data.importer import ImportOptions
    from odernn.data.trajectories import Trajectories

    model, test = tiny_model("gru", "state"), tiny_data()[1]
    with pytest.raises(SpecError, match="train_data must be a path or Trajectories, got int 5"):
        odernn.evaluate(test, {"gru": model}, train_data=5, progress=False)
    with pytest.raises(SpecError, match="integrators names one twice"):
        odernn.evaluate(test, {"gru": model}, integrators=["rk4", "rk4"], progress=False)
    with pytest.raises(SpecError, match="source must be a str or os.PathLike"):
        odernn.import_file(5, tmp_path / "o.h5", ImportOptions(v="v"))
    with pytest.raises(DataError, match=r"take: trajectory indices must be in \[-5, 5\)"):
        test.take(np.array([5000]))
    bare = Trajectories(test.t, test.x, test.v, test.F, attrs={"forcing": "cosine"})
    with pytest.raises(DataError, match="lack the parameter 'F0' of their 'cosine' forcing"):
        bare.oscillator()
