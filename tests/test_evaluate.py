"""The evaluator on surrogates whose errors are known in advance.

- ``ExactMap``: a linear recurrence set to the exact discrete-time map of
  ``x'' + eta x' + x = F`` with F linear between samples (``expm`` of the
  system augmented with F and its slope): its only error is the forcing's
  interpolation, so it matches RK4 fed the same samples and is near zero;
- ``Zeros``: predicts 0, so its NRMSE is ``rms(ref) / std(ref)``;
- a copy of ``ExactMap`` that blows up on chosen trajectories.
"""

from __future__ import annotations

import importlib
import json
import math

import numpy as np
import pytest
from scipy.linalg import expm

from odernn.assess.evaluate import evaluate
from odernn.assess.metrics import reference_scale
from odernn.assess.resonance import (
    ResonanceSettings,
    decay_rate,
    fit_steady_state,
    measure_resonance,
    plan_sweep,
)
from odernn.assess.results import Evaluation
from odernn.data.forcing import forcing_from_params
from odernn.data.integrators import INTEGRATORS
from odernn.data.systems import Oscillator
from odernn.data.trajectories import Trajectories
from odernn.errors import DataError, SpecError
from odernn.learn.models.base import Rollout

SAMPLED_FORCING = [name for name, entry in INTEGRATORS.items() if entry.sampled_forcing]

DT = 0.05


def make_test_set(n: int = 8, n_steps: int = 400, seed: int = 0,
                  forcing: str = "cosine", t0: float = 0.0) -> Trajectories:
    """N oscillators with cosine drives, stored values from the exact solution."""
    rng = np.random.default_rng(seed)
    t = t0 + DT * np.arange(n_steps)
    params = {"eta": rng.uniform(0.1, 0.5, n), "x0": rng.uniform(-1, 1, n),
              "v0": rng.uniform(-1, 1, n)}
    if forcing == "cosine":
        params.update(F0=rng.uniform(0.2, 1.0, n), omega=rng.uniform(0.5, 1.5, n),
                      phase=rng.uniform(0, 2 * np.pi, n))
    system = Oscillator.linear(params["eta"], forcing_from_params(forcing, params))
    x, v = INTEGRATORS["exact"](system, params["x0"], params["v0"], t)
    return Trajectories(t, x, v, system.forcing(t), params, {"forcing": forcing, "seed": seed})


class ExactMap:
    """The exact propagator of the oscillator under piecewise-linear forcing, per eta."""

    family = "exact-map"
    target = "state"

    def __init__(self, dt: float = DT, parameters: tuple[str, ...] = ("eta",),
                 warmup_steps: int = 0) -> None:
        self.dt, self.parameter_inputs, self.warmup_steps = dt, parameters, warmup_steps
        self.calls: list[dict] = []

    def propagator(self, eta: float) -> np.ndarray:
        a = np.array([[0.0, 1.0, 0.0, 0.0], [-1.0, -eta, 1.0, 0.0],
                      [0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
        return expm(a * self.dt)[:2]

    def rollout(self, x0, v0, F, params=None, warmup=None) -> Rollout:
        self.calls.append({"params": params, "warmup": warmup})
        eta = None if params is None else params["eta"]
        if eta is None:  # a stand-in for a model that infers eta from its warm-up; the
            eta = self.hidden_eta[:len(x0)]  # evaluator's untimed first call has 2 rows
        m = np.stack([self.propagator(e) for e in eta])
        x, v = np.empty_like(F), np.empty_like(F)
        x[:, 0], v[:, 0] = x0, v0
        for i in range(F.shape[1] - 1):
            z = np.stack([x[:, i], v[:, i], F[:, i], (F[:, i + 1] - F[:, i]) / self.dt], axis=1)
            x[:, i + 1], v[:, i + 1] = np.einsum("nij,nj->in", m, z)
        return Rollout(x, v, np.full(F.shape[0], -1), warmup=self.warmup_steps)


class Zeros:
    family = "zeros"
    target = "state"

    def rollout(self, x0, v0, F, params=None, warmup=None) -> Rollout:
        return Rollout(np.zeros_like(F), np.zeros_like(F), np.full(F.shape[0], -1))


class Exploding(ExactMap):
    """Exact, except that the chosen trajectories blow up at step 50."""

    family = "exploding"

    def __init__(self, rows: list[int]) -> None:
        super().__init__()
        self.rows = rows

    def rollout(self, x0, v0, F, params=None, warmup=None) -> Rollout:
        r = super().rollout(x0, v0, F, params, warmup)
        x, v, at = r.x.copy(), r.v.copy(), r.diverged_at.copy()
        rows = [i for i in self.rows if i < len(x0)]  # the evaluator's warm-up call has 2
        x[rows, 50:] = v[rows, 50:] = np.inf
        at[rows] = 50
        return Rollout(x, v, at)


FAST = {"work_precision": False, "resonance": False, "progress": False}


@pytest.fixture(scope="module")
def test_set() -> Trajectories:
    return make_test_set()


@pytest.fixture(scope="module")
def full(test_set: Trajectories) -> Evaluation:
    """Every integrator, the work-precision sweep and the resonance check, once."""
    res = ResonanceSettings(n_omega=8, transient_tol=1e-3)
    return evaluate(test_set, {"exact-map": ExactMap(), "zeros": Zeros()}, resonance=res,
                    progress=False)


def test_exact_map_is_near_zero_and_matches_rk4_on_samples(full: Evaluation) -> None:
    m = full.metrics
    assert m["exact"]["nrmse_x"] == 0.0 and m["exact"]["n_diverged"] == 0
    # its only error is the linear interpolation of F between samples: O(dt^2), small
    assert m["exact-map"]["nrmse_x"] < 1e-3 and m["exact-map"]["nrmse_v"] < 1e-3
    # RK4 on the same samples solves the same interpolated system, up to its O(dt^4)
    assert m["exact-map"]["nrmse_x"] == pytest.approx(m["rk4-sampled"]["nrmse_x"], rel=1e-2)
    # with the forcing known between samples, RK4 is far better than anything fed samples
    assert m["rk4"]["nrmse_x"] < 1e-2 * m["exact-map"]["nrmse_x"]
    assert m["exact-map"]["valid_time_median"] == pytest.approx(full.test.t[-1])


def test_exact_map_is_exact_without_forcing() -> None:
    test = make_test_set(n=4, n_steps=200, forcing="none")
    ev = evaluate(test, {"exact-map": ExactMap()}, integrators=("euler",), **FAST)
    assert ev.metrics["exact-map"]["nrmse_x"] < 1e-12
    assert ev.metrics["exact-map"]["nrmse_v"] < 1e-12
    # forward Euler on the same data is visibly wrong (first-order, energy grows)
    assert ev.metrics["euler"]["nrmse_x"] > 1e-2
    assert ev.metrics["euler"]["energy_balance"] > 1e3 * ev.metrics["exact-map"]["energy_balance"]


def test_zeros_give_the_predicted_error(full: Evaluation, test_set: Trajectories) -> None:
    ref_x = full.methods["exact"].x[:, 1:]
    ref_v = full.methods["exact"].v[:, 1:]
    m = full.metrics["zeros"]
    assert m["nrmse_x"] == pytest.approx(np.sqrt(np.mean(ref_x**2)) / np.std(ref_x), rel=1e-12)
    assert m["rmse_v"] == pytest.approx(np.sqrt(np.mean(ref_v**2)), rel=1e-12)
    tenth = ref_x[:, :39]  # steps 1..39: the first tenth of 399 steps
    assert m["nrmse_x_first_tenth"] == pytest.approx(
        np.sqrt(np.mean(tenth**2)) / np.std(ref_x), rel=1e-12)
    # the error of zeros at step k is |x_ref(t_k)|: the median curve is its median
    np.testing.assert_allclose(full.methods["zeros"].error_x[0][1:],
                               np.median(np.abs(ref_x), axis=0) / np.std(ref_x), rtol=1e-12)
    # v over its own scale, which differs from x's here (a swap would show)
    assert abs(np.std(ref_v) / np.std(ref_x) - 1) > 0.01
    assert m["nrmse_v"] == pytest.approx(np.sqrt(np.mean(ref_v**2)) / np.std(ref_v), rel=1e-12)
    assert m["nrmse_v_first_tenth"] == pytest.approx(
        np.sqrt(np.mean(ref_v[:, :39]**2)) / np.std(ref_v), rel=1e-12)
    assert m["median_nrmse_v"] == pytest.approx(np.median(
        np.sqrt(np.mean(ref_v**2, axis=1)) / np.std(ref_v)), rel=1e-12)
    np.testing.assert_allclose(full.methods["zeros"].error_v[0][1:],
                               np.median(np.abs(ref_v), axis=0) / np.std(ref_v), rtol=1e-12)


def test_diverged_trajectories_are_counted_and_aggregates_inf(test_set: Trajectories) -> None:
    ev = evaluate(test_set, {"boom": Exploding([1, 4])}, integrators=("rk4",), **FAST)
    m = ev.metrics["boom"]
    assert m["n_diverged"] == 2
    assert math.isinf(m["nrmse_x"]) and math.isinf(m["rmse_v"]) and math.isinf(m["energy_balance"])
    assert math.isfinite(m["median_nrmse_x"]) and m["median_nrmse_x"] < 1e-3
    # the first tenth ends at step 40, before the blow-up at step 50
    assert math.isfinite(m["nrmse_x_first_tenth"])
    doc = json.loads(json.dumps(ev.to_json(), allow_nan=False))
    assert doc["methods"]["boom"]["metrics"]["nrmse_x"] == "inf"


def test_warmup_and_withheld_eta(test_set: Trajectories) -> None:
    blind = ExactMap(parameters=(), warmup_steps=10)
    blind.hidden_eta = test_set.params["eta"]
    said: list[str] = []
    ev = evaluate(test_set, {"blind": blind, "zeros": Zeros()}, integrators=("rk4",),
                  work_precision=False, resonance=False, progress=said.append)
    assert [m.message.split(":")[0] for m in said if m.stage != "done"] == [
        "exact", "rk4", "blind", "zeros", "bifurcation diagram skipped"]
    call = blind.calls[-1]  # calls[0] is the untimed call on 2 trajectories
    assert call["params"] is None
    np.testing.assert_array_equal(call["warmup"][0], test_set.x[:, :10])
    assert ev.start == 10
    # every method, not only the one that asked, is measured from step 10 on
    ref_x = ev.methods["exact"].x
    assert ev.metrics["zeros"]["rmse_x"] == pytest.approx(np.sqrt(np.mean(ref_x[:, 10:] ** 2)))
    # each trajectory's NRMSE (the best, median and worst shown) from step 10 on too
    np.testing.assert_allclose(ev.methods["zeros"].nrmse_x, np.sqrt(
        np.mean(ref_x[:, 10:] ** 2, axis=1)) / reference_scale(ref_x), rtol=1e-12)
    assert ev.methods["blind"].settings["warmup_steps"] == 10


def test_the_work_precision_sweep_measures_from_the_warm_up_on_too(test_set) -> None:
    """With a surrogate's warm-up every error starts at step 10, the sweep's too: its rk4 at
    the data's own step is the main table's rk4, and the speed-ups compare like with like."""
    blind = ExactMap(parameters=(), warmup_steps=10)
    blind.hidden_eta = test_set.params["eta"]
    ev = evaluate(test_set, {"blind": blind}, integrators=("rk4",), resonance=False,
                  progress=False)
    at_dt = [p for p in ev.work_precision["integrators"]
             if p["method"] == "rk4" and p["value"] == pytest.approx(DT)]
    assert ev.start == 10 and len(at_dt) == 1
    assert at_dt[0]["error"] == pytest.approx(ev.metrics["rk4"]["nrmse_x"], rel=1e-12)


def test_work_precision_speedup_is_over_the_cheapest_as_accurate(full: Evaluation) -> None:
    wp = full.work_precision
    methods = {p["method"] for p in wp["integrators"]}
    assert methods == {"scipy", "euler", "semi-implicit-euler", "rk4", *SAMPLED_FORCING}
    # the sampled-forcing methods only at the whole factors 4, 2, 1: every k-th sample
    assert len(wp["integrators"]) == 3 * 6 + 5 * 3 + 5
    for p in wp["integrators"]:
        if p["method"] in SAMPLED_FORCING:
            k = round(p["value"] / DT)
            assert k >= 1 and p["value"] == pytest.approx(k * DT)
    # refining the step reduces RK4's error by ~16 per halving
    rk4 = sorted((p["value"], p["error"]) for p in wp["integrators"] if p["method"] == "rk4")
    assert rk4[1][1] / rk4[0][1] == pytest.approx(16.0, rel=0.2)
    s = wp["speedup"]["exact-map"]
    good = [p for p in wp["integrators"] if p["error"] <= full.metrics["exact-map"]["nrmse_x"]]
    cheapest = min(good, key=lambda p: p["wall_time_s"])
    assert s["over"] == f"{cheapest['method']} {cheapest['setting']}"
    assert s["speedup"] == pytest.approx(
        cheapest["wall_time_s"] / full.metrics["exact-map"]["wall_time_s"])
    assert full.metrics["exact-map"]["speedup"] == s["speedup"]


def test_same_information_baseline_is_the_most_accurate_causal_sampled_method(
        full: Evaluation) -> None:
    """Given the samples a surrogate has by each step: the cubic, the spline and the 2 dt
    step, which read later samples, are reported but are not the baseline (the spline was,
    and read ten times more accurate than any integrator a surrogate could match)."""
    same = full.info["same_information"]
    m = full.metrics
    causal = [n for n in SAMPLED_FORCING if INTEGRATORS[n].causal]
    assert same["candidates"] == causal == ["rk4-sampled", "rk4-sampled-causal"]
    assert same["baseline"] == min(causal, key=lambda n: m[n]["nrmse_x"])
    # given only those samples, order 3 beats linear interpolation by far on smooth forcing
    assert same["nrmse_x"] < 1e-1 * m["rk4-sampled"]["nrmse_x"]
    assert m["rk4-sampled-spline"]["nrmse_x"] < same["nrmse_x"]  # it reads the future
    for name in ("exact-map", "zeros"):
        s = same["surrogates"][name]
        assert s["error_ratio"] == m[name]["nrmse_x"] / same["nrmse_x"]
        assert s["time_ratio"] == m[name]["wall_time_s"] / same["wall_time_s"]
    # the exact map interpolates F linearly: as accurate as rk4-sampled, not as the baseline
    assert same["surrogates"]["exact-map"]["error_ratio"] > 100


def test_the_baseline_is_chosen_by_accuracy_first_and_time_only_on_ties(
        full: Evaluation) -> None:
    """The more accurate candidate is the baseline even where it is the slower one (in the
    fixture the most accurate is also the fastest, so a choice by time passed), and of two
    equally accurate the faster."""
    from dataclasses import replace

    from odernn.assess.baselines import same_information

    def timed(name: str, error: float, wall: float):
        m = full.methods[name]
        return replace(m, metrics={**m.metrics, "nrmse_x": error, "wall_time_s": wall})

    methods = dict(full.methods)
    methods["rk4-sampled"] = timed("rk4-sampled", 1e-6, 2.0)
    methods["rk4-sampled-causal"] = timed("rk4-sampled-causal", 1e-3, 0.1)
    assert same_information(methods)["baseline"] == "rk4-sampled"
    methods["rk4-sampled-causal"] = timed("rk4-sampled-causal", 1e-6, 0.1)
    assert same_information(methods)["baseline"] == "rk4-sampled-causal"


def test_same_information_needs_a_sampled_method(test_set: Trajectories) -> None:
    ev = evaluate(test_set, {"zeros": Zeros()}, integrators=("rk4",), **FAST)
    assert ev.info["same_information"] is None
    ev = evaluate(test_set, {"zeros": Zeros()}, integrators=("rk4", "rk4-sampled-2dt"), **FAST)
    assert ev.info["same_information"] is None  # it reads F_i+2: not a surrogate's information
    ev = evaluate(test_set, {"zeros": Zeros()}, integrators=("rk4", "rk4-sampled-causal"),
                  **FAST)
    assert ev.info["same_information"]["baseline"] == "rk4-sampled-causal"


def test_every_timed_run_follows_an_untimed_one(test_set: Trajectories, monkeypatch) -> None:
    """Integrators in the work-precision sweep get the same untimed first call (on 2
    trajectories) as the surrogates and the main table."""
    real, calls = importlib.import_module("odernn.assess.work_precision").timed, []

    def spy(run, warmup=None):
        calls.append(warmup)
        return real(run, warmup)

    for module in ("odernn.assess.evaluate", "odernn.assess.work_precision"):
        monkeypatch.setattr(importlib.import_module(module), "timed", spy)
    ev = evaluate(test_set, {"zeros": Zeros()}, integrators=("rk4", "scipy", "rk4-sampled-2dt"),
                  resonance=False, progress=False)
    assert len(calls) == 5 + len(ev.work_precision["integrators"])  # exact, 3, zeros, sweep
    assert all(w is not None for w in calls)
    for w in calls:  # each on 2 trajectories: a Rollout (surrogate) or (x, v)
        out = w()
        assert np.shape(out.x if isinstance(out, Rollout) else out[0])[0] == 2


def test_timed_runs_the_warm_up_first_untimed_and_keeps_the_best_time(monkeypatch) -> None:
    """``timed``: the warm-up once, before and outside the clock (a compilation in it is not
    the method's speed), then up to three runs while under the time limit, the best kept."""
    from types import SimpleNamespace

    from odernn.assess import work_precision

    clock, order = iter([0.0, 3.0, 10.0, 11.0, 20.0, 22.0]), []
    monkeypatch.setattr(work_precision, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    monkeypatch.setattr(work_precision, "MIN_TIMING_S", 100.0)
    out, best = work_precision.timed(lambda: order.append("run") or len(order),
                                     lambda: order.append("warm-up"))
    assert order == ["warm-up", "run", "run", "run"]
    assert (out, best) == (4, 1.0)  # the runs took 3, 1 and 2


def test_resonance_of_the_exact_solution_matches_the_formula(full: Evaluation) -> None:
    res = full.resonance
    assert res["transient_left"] <= 1e-3
    exact = res["methods"]["exact"]
    assert exact["amplitude_rel_error_max"] < 2e-3
    assert exact["lag_error_max"] < 2e-3
    np.testing.assert_allclose(exact["amplitude"], res["analytic"]["amplitude"], rtol=2e-3)
    # the exact map only interpolates the drive: close too
    assert res["methods"]["exact-map"]["amplitude_rel_error_max"] < 1e-2
    # zeros have no response at all
    assert res["methods"]["zeros"]["amplitude_rel_error_max"] == pytest.approx(1.0)


def test_an_overdamped_sweep_waits_for_its_slow_mode(test_set: Trajectories) -> None:
    """eta > 2: the transient's slow mode decays at the slower real root, not at eta / 2.
    Before, the horizon was sized by eta / 2: here the exact solution missed the formula's
    amplitude by 1.7e-2 while the transient left was reported as 2e-5."""
    for eta in (0.3, 1.0, 1.9, 2.5, 4.5):
        slowest = -max(np.roots([1.0, eta, 1.0]).real)
        assert decay_rate(eta) == pytest.approx(slowest, rel=1e-9)
    res = measure_resonance(test_set, {}, ResonanceSettings(n_omega=5, etas=(3.0, 4.5)),
                            lambda message: None)
    assert res["transient_left"] <= 1e-3
    assert res["methods"]["exact"]["amplitude_rel_error_max"] < 1e-3


def test_fit_steady_state_recovers_amplitude_and_lag() -> None:
    t = np.linspace(0, 40, 2001)
    omega = np.array([0.7, 1.3])
    lag = np.array([0.4, 3.0])  # 3.0 stays near pi, not wrapped to -3.28
    x = np.array([2.0, 0.5])[:, None] * np.cos(omega[:, None] * t - lag[:, None]) + 0.3
    amp, got = fit_steady_state(x, t, omega, np.array([10.0, 20.0]))
    np.testing.assert_allclose(amp, [2.0, 0.5], rtol=1e-12)
    np.testing.assert_allclose(got, lag, rtol=1e-12)
    x[1, -1] = np.inf
    amp, got = fit_steady_state(x, t, omega, np.array([10.0, 20.0]))
    assert math.isinf(amp[1]) and math.isnan(got[1]) and amp[0] == pytest.approx(2.0)


def test_sweep_stays_in_the_test_ranges(test_set: Trajectories) -> None:
    sweep = plan_sweep(test_set, ResonanceSettings(n_omega=5))
    eta = test_set.params["eta"]
    assert eta.min() <= sweep.eta.min() and sweep.eta.max() <= eta.max()
    w = test_set.params["omega"]
    assert sweep.omega.min() == pytest.approx(w.min()) and sweep.omega.max() == pytest.approx(
        w.max())
    assert abs(sweep.F0 / np.median(test_set.params["F0"]) - 1) < 0.05
    unforced = make_test_set(n=2, n_steps=50, forcing="none")
    assert "no forcing" in plan_sweep(unforced, ResonanceSettings())
    with pytest.raises(SpecError, match="positive"):
        plan_sweep(test_set, ResonanceSettings(etas=(0.0, 0.2)))


def test_the_sweeps_dampings_are_the_quartiles_of_the_damped_trajectories(
        test_set: Trajectories) -> None:
    """Undamped trajectories (eta = 0) have no steady state and are left out of the
    quartiles: counted, they would pull the sweep's damping down to the undamped end."""
    from dataclasses import replace

    eta = np.asarray(test_set.params["eta"], dtype=np.float64).copy()
    eta[: eta.size // 2] = 0.0
    damped = replace(test_set, params={**test_set.params, "eta": eta})
    sweep = plan_sweep(damped, ResonanceSettings(n_omega=3))
    np.testing.assert_array_equal(np.unique(sweep.eta),
                                  np.unique(np.quantile(eta[eta > 0], [0.25, 0.75])))


def test_metrics_json_is_strict_and_complete(full: Evaluation) -> None:
    doc = json.loads(json.dumps(full.to_json(), allow_nan=False))
    assert doc["schema"] == "odernn.metrics" and doc["schema_version"] == 1
    assert list(doc["methods"]) == ["exact", "scipy", "euler", "semi-implicit-euler", "rk4",
                                    *SAMPLED_FORCING, "exact-map", "zeros"]
    assert doc["same_information"]["baseline"] in SAMPLED_FORCING
    assert doc["methods"]["scipy"]["settings"]["rtol"] == 1e-9
    assert doc["data"]["stored_vs_exact_rmse"]["x"] < 1e-12
    assert len(doc["error_vs_time"]["t"]) == 200
    for m in doc["methods"].values():
        assert set(m["metrics"]) >= {"nrmse_x", "rmse_v", "valid_time_median", "wall_time_s"}
    ref_x, ref_v = full.methods["exact"].x[:, 1:], full.methods["exact"].v[:, 1:]
    assert doc["settings"]["error_scale"] == pytest.approx({"x": np.std(ref_x),
                                                            "v": np.std(ref_v)}, rel=1e-12)


def test_stored_against_exact_is_each_variables_own(test_set: Trajectories) -> None:
    """metrics.json's ``stored_vs_exact_rmse``: x's and v's differences each, on a set whose
    stored v alone is off (a swap would report it for x)."""
    from dataclasses import replace

    v = np.asarray(test_set.v).copy()
    v[:, 1:] += 1e-3  # the initial state, which the exact solution starts from, unchanged
    doc = evaluate(replace(test_set, v=v), {}, integrators=(), **FAST).to_json()
    rmse = doc["data"]["stored_vs_exact_rmse"]
    assert rmse["x"] < 1e-12
    assert rmse["v"] == pytest.approx(1e-3 * np.sqrt(1 - 1 / v.shape[1]), rel=1e-6)


def test_a_signal_after_the_last_stage_still_stops(test_set: Trajectories, monkeypatch) -> None:
    """The flag is checked once more before the result is returned: no signal is lost."""
    import os
    import signal

    evaluate_module = importlib.import_module("odernn.assess.evaluate")

    real = evaluate_module._measure

    def signalled(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate_module, "_measure", signalled)
    with pytest.raises(KeyboardInterrupt):
        evaluate(test_set, {}, work_precision=False, resonance=False, progress=False)


@pytest.mark.parametrize("bad, error, match", [
    ("series", DataError, "univariate"),
    ("no-eta", DataError, "eta"),
    ("integrator", SpecError, "unknown integrator"),
    ("name", SpecError, "integrator's name"),
    ("shape", DataError, "returned x"),
])
def test_bad_input_is_one_clear_error(test_set: Trajectories, bad, error, match) -> None:
    surrogates: dict = {"ok": Zeros()}
    test, integrators = test_set, ("rk4",)
    if bad == "series":
        test = Trajectories(test_set.t, test_set.x, params=test_set.params)
    elif bad == "no-eta":
        test = Trajectories(test_set.t, test_set.x, test_set.v, test_set.F, {}, test_set.attrs)
    elif bad == "integrator":
        integrators = ("rk5",)
    elif bad == "name":
        surrogates = {"rk4": Zeros()}
    else:
        short = Zeros()
        short.rollout = lambda x0, v0, F, params=None, warmup=None: Rollout(
            F[:, :-1], F[:, :-1], np.full(F.shape[0], -1))
        surrogates = {"short": short}
    with pytest.raises(error, match=match):
        evaluate(test, surrogates, integrators=integrators, **FAST)


def test_check_data_of_the_surrogate_is_called(test_set: Trajectories) -> None:
    picky = Zeros()

    def refuse(data, where):
        raise DataError(f"{where} has dt = {data.dt}; the model was built for dt = 0.1")

    picky.check_data = refuse
    with pytest.raises(DataError, match="surrogate 'picky'.*dt"):
        evaluate(test_set, {"picky": picky}, integrators=(), **FAST)


@pytest.mark.parametrize(("a", "b", "want"), [(0.0, 0.0, 1.0), (2.0, 0.0, math.inf),
                                               (math.inf, math.inf, math.inf),
                                               (math.inf, 2.0, math.inf), (1.0, 4.0, 0.25),
                                               (math.nan, 1.0, math.nan)])
def test_error_and_time_ratios(a, b, want) -> None:
    """A surrogate diverged against a baseline diverged too is as far off (inf), not nan."""
    from odernn.assess.baselines import ratio

    assert ratio(a, b) == want or (math.isnan(want) and math.isnan(ratio(a, b)))


def test_a_fitted_lag_is_in_the_range_a_driven_oscillator_can_have() -> None:
    """The lag of ``A cos(omega t - lag)`` is returned in ``[-pi / 2, 3 pi / 2)``, around the
    damped oscillator's ``[0, pi]``: 3.15 (just past pi, a surrogate slightly off at a high
    drive) stays 3.15, not 3.15 - 2 pi; -0.1 stays -0.1."""
    from odernn.assess.resonance import fit_steady_state

    t = 0.05 * np.arange(800)
    lags = np.array([3.15, -0.1, 1.0, 4.8])
    x = 0.7 * np.cos(1.3 * t[None] - lags[:, None])
    amplitude, lag = fit_steady_state(x, t, np.full(4, 1.3), np.zeros(4))
    np.testing.assert_allclose(amplitude, 0.7, rtol=1e-12)
    np.testing.assert_allclose(lag, [3.15, -0.1, 1.0, 4.8 - 2 * math.pi], rtol=1e-12)


@pytest.mark.parametrize("work_precision", [False, True])
def test_the_memory_check_counts_the_peak_of_the_arrays(work_precision, monkeypatch):
    """evaluate refuses what would pass the memory budget before any work, so its count must
    hold the peak of what it allocates (numpy's allocations, traced). It did not: every
    method's rollout was kept beside its scored copy until all were scored, and the
    work-precision study's finest grid was counted apart from what the table held; a set that
    passed the check ran out of memory with a traceback. Checked without a surrogate, whose
    torch tensors tracemalloc does not see."""
    import tracemalloc

    from odernn import budget
    from odernn.assess.work_precision import WorkPrecisionSettings
    from odernn.data.simulate import simulate_trajectories
    from odernn.data.spec import load_spec

    test = simulate_trajectories(load_spec("test").with_overrides(
        n=64, n_steps=3000, integrator="exact"))
    counted = []
    check = budget.check

    def spy(what, need, advice):
        if what.startswith("evaluate:"):
            counted.append(need)
        check(what, need, advice)

    monkeypatch.setattr(budget, "check", spy)
    wp = WorkPrecisionSettings(step_factors=(2.0, 1.0, 0.5)) if work_precision else False
    options = {"work_precision": wp, "resonance": False, "chaos": False, "bifurcation": False,
               "progress": False}
    evaluate(test.take(slice(0, 2)), {}, **options)  # compiled and imported: not counted
    tracemalloc.start()
    try:
        evaluate(test, {}, **options)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    array = 8 * test.n * test.n_steps
    assert len(counted) == 2
    assert peak <= counted[1], (peak / array, counted[1] / array)


def test_a_test_set_too_stiff_for_scipy_is_evaluated_without_it(tmp_path):
    """``eta = 10^9``: explicit DOP853 would take steps of 10^-9 (a day for this set). SciPy
    gives up (``StiffProblem``) and the evaluation goes on without it: its row is in the
    table, its description says why, its work-precision points are left out, and the report
    is written (an error figure of values near float64's limit overflowed matplotlib's
    ticks). The slow root of so strongly overdamped a system is ``1 / eta``, not the 0 that
    ``(eta - sqrt(eta^2 - 4)) / 2`` cancels to (a resonance sweep divided by it)."""
    import odernn
    from odernn.assess.report import write_report

    test = odernn.simulate_trajectories(odernn.load_spec("test").with_overrides(
        n=4, n_steps=20, integrator="exact", eta=[1e9, 1e9]))
    ev = evaluate(test, {}, resonance=False, chaos=False, bifurcation=False, progress=False)
    scipy = ev.methods["scipy"]
    assert "gave up on this test set" in scipy.description and "stiff" in scipy.description
    assert math.isnan(scipy.metrics["wall_time_s"]) and scipy.metrics["n_diverged"] == 4
    assert ev.methods["exact"].metrics["nrmse_x"] == 0
    methods = {p["method"] for p in ev.work_precision["integrators"]}
    assert "scipy" not in methods and "rk4" in methods
    write_report(ev, tmp_path / "report")
    assert (tmp_path / "report" / "report.html").is_file()
    assert decay_rate(np.array([1e9, 1e300]), 1.0).tolist() == [1e-9, 1e-300]
    eta = np.linspace(0.0, 1.999, 100)  # underdamped: eta / 2 as before, bit for bit
    assert np.array_equal(decay_rate(eta), eta / 2)


def test_a_resonance_sweep_whose_solver_gives_up_is_skipped(monkeypatch, small_linear_sets):
    """A nonlinear system's frequency response is SciPy's, which gives up on a stiff set
    (``StiffProblem``): the sweep is skipped with the reason, the evaluation goes on."""
    from odernn.assess import evaluate as module
    from odernn.errors import StiffProblem

    def stiff(*args, **kwargs):
        raise StiffProblem("scipy: ... the problem is stiff for this method")

    monkeypatch.setattr(module, "measure_resonance", stiff)
    _, test = small_linear_sets
    ev = evaluate(test, {}, work_precision=False, chaos=False, bifurcation=False,
                  progress=False)
    assert "stiff for its solver" in ev.resonance["skipped"]
