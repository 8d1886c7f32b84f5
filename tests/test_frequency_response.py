"""The frequency response of the nonlinear systems, against what physics predicts.

- Duffing with a small cubic term follows first-order harmonic balance, the implicit
  backbone equation ``A^2 [(alpha - omega^2 + 3/4 beta A^2)^2 + (eta omega)^2] = F0^2``,
  to the size of the neglected third harmonic's feedback, ``(beta A^2)^2``; and with a
  large one the up and down sweeps land on its two stable branches (the jump);
- Duffing with ``beta = 0`` is the linear oscillator: the integrator's response is the
  analytic one;
- a surrogate that integrates the system scores ~0, one with the wrong beta does not;
- Van der Pol with a large mu under a weak drive far from its limit cycle is not
  entrained: every drive is reported not periodic and none is scored.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from odernn.assess.evaluate import evaluate
from odernn.assess.figures import method_colors
from odernn.assess.frequency_response import measure_frequency_response, plan_response
from odernn.assess.report import write_report
from odernn.assess.report_resonance import resonance_section
from odernn.assess.resonance import ResonanceSettings, measure_resonance
from odernn.data.exact import steady_state_response
from odernn.data.forcing import SampledForcing, forcing_from_params
from odernn.data.integrators import INTEGRATORS
from odernn.data.systems import Oscillator
from odernn.data.trajectories import Trajectories
from odernn.errors import SpecError
from odernn.learn.models.base import Rollout

DT = 0.05
DEFAULTS = {"duffing": {"eta": 0.3, "alpha": 1.0, "beta": 0.5}, "van-der-pol": {"mu": 1.0}}


def make_set(system: str, n_steps: int = 10, seed: int = 0, **fixed: float) -> Trajectories:
    """Four cosine-driven oscillators of ``system`` (its parameters :data:`DEFAULTS` but
    those ``fixed``), stored from the integrator."""
    rng = np.random.default_rng(seed)
    n = 4
    params = {"x0": rng.uniform(-1, 1, n), "v0": rng.uniform(-1, 1, n),
              "F0": rng.uniform(0.2, 1.0, n), "omega": np.array([0.5, 1.0, 1.5, 2.0]),
              "phase": np.zeros(n)}
    params.update({k: np.full(n, v) for k, v in {**DEFAULTS[system], **fixed}.items()})
    t = DT * np.arange(n_steps)
    system_ = Oscillator.of(system, params, forcing_from_params("cosine", params))
    x, v = INTEGRATORS["scipy"](system_, params["x0"], params["v0"], t)
    return Trajectories(t, x, v, system_.forcing(t), params,
                        {"system": system, "forcing": "cosine"})


def harmonic_balance(omega: float, eta: float, alpha: float, beta: float,
                     F0: float) -> np.ndarray:
    """Every amplitude A > 0 of the first-order harmonic balance at ``omega``, ascending
    (three inside the jump region: the middle one unstable)."""
    d, b = alpha - omega**2, 0.75 * beta
    roots = np.roots([b * b, 2 * d * b, d * d + (eta * omega) ** 2, -F0**2])  # in A^2
    return np.sqrt(np.sort(roots[(np.abs(roots.imag) < 1e-9) & (roots.real > 0)].real))


def quiet(message: str) -> None:
    pass


class Integrating:
    """A surrogate that is the integrator: RK4 on the forcing samples (spline at the half
    steps), its only error ``~(omega dt)^4``; ``scale`` multiplies its beta."""

    target = "state"
    warmup_steps = 0

    def __init__(self, system: str, parameters: tuple[str, ...], scale: float = 1.0) -> None:
        self.system, self.parameter_inputs, self.scale = system, parameters, scale
        self.family = "integrating"

    def rollout(self, x0, v0, F, params=None, warmup=None) -> Rollout:
        t = DT * np.arange(F.shape[1])
        params = {**params, **({"beta": self.scale * params["beta"]} if "beta" in params
                               else {})}
        system = Oscillator.of(self.system, params, SampledForcing(t, F))
        x, v = INTEGRATORS["rk4-sampled-spline"](system, x0, v0, t)
        return Rollout(x, v, np.full(F.shape[0], -1))


def test_weak_duffing_follows_harmonic_balance() -> None:
    eta, alpha, beta, F0 = 0.5, 1.0, 0.05, 0.3
    omegas = (0.5, 0.8, 1.0, 1.2, 1.6)
    res = measure_frequency_response(
        make_set("duffing"), {}, ResonanceSettings(
            etas=(eta,), omegas=omegas, F0=F0, parameters={"alpha": alpha, "beta": beta},
            transient_tol=1e-6, continuation=False), quiet)
    amp = res["integrator"]["amplitude"]
    assert res["n_periodic"] == len(omegas) and np.all(res["integrator"]["periodicity"] < 1e-4)
    predicted = np.array([harmonic_balance(w, eta, alpha, beta, F0)[0] for w in omegas])
    # the neglected third harmonic feeds back on the first at order (beta A^2)^2 (measured:
    # 6% of it), far above the transient left (1e-6) and the fit's error
    tolerance = (beta * predicted**2) ** 2
    np.testing.assert_array_less(np.abs(amp / predicted - 1), tolerance)
    # and the test can tell: the linear formula misses by far more than that
    linear = steady_state_response(np.array(omegas), np.full(len(omegas), eta), F0)[0]
    assert np.max(np.abs(amp / linear - 1)) > 10 * np.max(tolerance)


def test_hardening_duffing_sweeps_land_on_both_branches() -> None:
    """Inside the jump region (HB: three roots at omega 1.4) the up sweep stays on the upper
    branch and the down sweep on the lower; elsewhere both give the one response."""
    eta, alpha, beta, F0 = 0.2, 1.0, 0.55, 0.5
    res = measure_frequency_response(
        make_set("duffing"), {}, ResonanceSettings(
            etas=(eta,), omegas=(1.25, 1.4, 1.6), F0=F0,
            parameters={"alpha": alpha, "beta": beta}), quiet)
    assert res["direction"] == ["up"] * 3 + ["down"] * 3
    up, down = np.split(np.asarray(res["integrator"]["amplitude"]), 2)
    down = down[::-1]
    low, _, high = harmonic_balance(1.4, eta, alpha, beta, F0)
    assert up[1] > 2.5 * down[1]
    # beta A^2 is ~1.4 here, so first-order HB is rougher: the third harmonic is ~2% of the
    # first (beta A^2 / (4 (9 omega^2 - 1))); measured within 1.1%
    assert abs(up[1] / high - 1) < 0.03 and abs(down[1] / low - 1) < 0.03
    for w, a, b in ((1.25, up[0], down[0]), (1.6, up[2], down[2])):
        (single,) = harmonic_balance(w, eta, alpha, beta, F0)
        assert abs(a / single - 1) < 0.03 and abs(b / a - 1) < 1e-3
    (shape,) = res["shape"]
    assert shape["hysteresis"] == [1.4, 1.4]
    assert shape["peak"]["up"]["omega"] == 1.4 and shape["peak"]["down"]["omega"] == 1.25


def test_linear_duffing_through_the_integrator_is_the_analytic_response() -> None:
    omegas, eta, F0 = (0.6, 1.0, 1.7), 1.0, 0.5
    res = measure_frequency_response(
        make_set("duffing"), {}, ResonanceSettings(
            etas=(eta,), omegas=omegas, F0=F0, parameters={"alpha": 1.0, "beta": 0.0},
            transient_tol=1e-8), quiet)
    amp, lag = steady_state_response(np.asarray(res["omega"]), np.full(6, eta), F0)
    np.testing.assert_allclose(res["integrator"]["amplitude"], amp, rtol=1e-6)
    np.testing.assert_allclose(res["integrator"]["lag"], lag, atol=1e-6)
    assert res["transient_left"] <= 1e-8 and res["backbone"]["omega"][-1] == 1.0


def test_an_overdamped_sweep_waits_for_its_slow_mode() -> None:
    """eta 3 on x'' + eta x' + x: the slow mode decays at (3 - sqrt(5)) / 2, not 3 / 2. The
    horizon was sized by eta / 2: the integrator's amplitude then missed the formula."""
    omegas, eta, F0 = (1.7, 2.0), 3.0, 0.5
    res = measure_frequency_response(
        make_set("duffing"), {}, ResonanceSettings(
            etas=(eta,), omegas=omegas, F0=F0, parameters={"alpha": 1.0, "beta": 0.0},
            transient_tol=1e-6, continuation=False), quiet)
    amp, _ = steady_state_response(np.asarray(res["omega"]), np.full(2, eta), F0)
    np.testing.assert_allclose(res["integrator"]["amplitude"], amp, rtol=1e-5)
    assert res["transient_left"] <= 1e-6 and "overdamped at rest" in res["horizon"]


def test_a_surrogate_that_integrates_scores_near_zero() -> None:
    names = ("eta", "alpha", "beta")
    surrogates = {"integrating": Integrating("duffing", names),
                  "stiffer": Integrating("duffing", names, scale=1.5)}
    res = measure_frequency_response(
        make_set("duffing"), surrogates, ResonanceSettings(
            etas=(0.5,), omegas=(0.7, 1.2, 1.8), F0=0.5,
            parameters={"alpha": 1.0, "beta": 0.5}), quiet)
    good, wrong = res["methods"]["integrating"], res["methods"]["stiffer"]
    assert good["n_scored"] == res["n_periodic"] == 6
    assert good["amplitude_rel_error_max"] < 1e-4 and good["lag_error_max"] < 1e-4
    assert good["n_diverged"] == good["n_not_periodic"] == 0
    assert wrong["amplitude_rel_error_max"] > 1e-2


def test_the_drive_is_phase_continuous_across_every_segment() -> None:
    """Each segment's drive starts at the phase the previous one ended with, over a sweep of
    several segments (dropping the earlier segments' advance passed with two)."""
    plan = plan_response(make_set("duffing"), ResonanceSettings(
        etas=(0.5,), omegas=(0.7, 1.2, 1.8, 2.3), F0=0.5,
        parameters={"alpha": 1.0, "beta": 0.5}))
    end = plan.phase + plan.omega * plan.dt * plan.steps  # each segment's phase at its end
    gap = np.angle(np.exp(1j * (plan.phase[:, 1:] - end[:, :-1])))
    assert plan.omega.shape[1] == 4 and np.all(np.abs(gap) < 1e-9)


def test_scores_are_over_the_reference_amplitude_and_the_scored_drives() -> None:
    """Relative amplitude errors over the reference's amplitude, their worst and median, and
    the method's not-periodic answers counted over the scored drives alone."""
    from odernn.assess.frequency_response import scores

    reference = {"amplitude": np.array([1.0, 2.0, 4.0, 3.0]), "lag": np.zeros(4)}
    method = {"amplitude": np.array([1.1, 2.0, 40.0, 3.0]), "lag": np.zeros(4),
              "periodicity": np.array([0.0, 1.0, 0.0, 1.0])}
    out = scores(reference, method, np.array([True, True, True, False]), tol=0.5)
    assert out["amplitude_rel_error_max"] == pytest.approx(9.0)  # |40 - 4| / 4
    assert out["amplitude_rel_error_median"] == pytest.approx(0.1)
    assert (out["n_scored"], out["n_not_periodic"]) == (3, 1)


def test_the_resonance_errors_are_worst_and_median_over_the_sweep() -> None:
    """The linear check's amplitude and lag errors against the analytic response: the worst
    over the sweep is its maximum (the median passed for it), lags compared modulo 2 pi."""
    from types import SimpleNamespace

    from odernn.assess.resonance import response_errors

    sweep = SimpleNamespace(analytic=lambda: (np.array([1.0, 2.0, 4.0]), np.zeros(3)))
    out = response_errors(sweep, np.array([1.0, 2.2, 5.0]),
                          np.array([0.0, 2 * math.pi + 0.1, -0.3]))
    assert out["amplitude_rel_error_max"] == pytest.approx(0.25)
    assert out["amplitude_rel_error_median"] == pytest.approx(0.1)
    assert out["lag_error_max"] == pytest.approx(0.3)
    assert out["lag_error_median"] == pytest.approx(0.1)


def test_weak_drive_of_a_strong_van_der_pol_is_not_periodic() -> None:
    """mu = 3 oscillates by itself near omega 0.8 (relaxation); a weak drive far from that
    does not entrain it, so no drive has a sharp amplitude and none is scored. A strong
    drive near omega 1 at mu = 1 does: the flag tells the two apart."""
    free = {"mu": 3.0, "F0": 0.1, "omegas": (0.5, 1.3, 2.0)}
    locked = {"mu": 1.0, "F0": 1.0, "omegas": (0.9, 1.1)}
    out = {}
    for name, case in {"free": free, "locked": locked}.items():
        out[name] = measure_resonance(
            make_set("van-der-pol"), {"integrating": Integrating("van-der-pol", ("mu",))},
            ResonanceSettings(etas=(case["mu"],), omegas=case["omegas"], F0=case["F0"],
                              continuation=False, periods=6), quiet)
    free_res, locked_res = out["free"], out["locked"]
    assert free_res["kind"] == "frequency-response" and free_res["parameter"] == "mu"
    assert free_res["n_periodic"] == 0 and np.all(free_res["integrator"]["periodicity"] > 1)
    scored = free_res["methods"]["integrating"]
    assert scored["n_scored"] == 0 and math.isnan(scored["amplitude_rel_error_max"])
    assert locked_res["n_periodic"] == 2
    assert np.all(locked_res["integrator"]["periodicity"] < 1e-3)
    assert locked_res["transient_left"] is None and "6 periods" in locked_res["horizon"]


@pytest.mark.parametrize("settings, match", [
    ({"parameters": {"betta": 1.0}}, "did you mean 'beta'"),
    ({"parameters": {"eta": 0.3}}, r"eta takes etas"),
    ({"parameters": {"beta": math.inf}}, "outside its valid range"),
    ({"etas": (0.0, 0.2)}, "positive"),
    ({"periodic_tol": 0.0}, r"periodic_tol must be in \(0, 1\)"),
    ({"fit_periods": 0}, "fit_periods must be a whole number >= 1"),
    ({"F0": -1.0}, "F0 must be a positive number"),
])
def test_bad_settings_are_refused_in_one_line(settings, match) -> None:
    with pytest.raises(SpecError, match=match) as err:
        plan_response(make_set("duffing"),
                      ResonanceSettings(**settings))
    assert "\n" not in str(err.value)


def test_the_report_shows_the_frequency_response(tmp_path) -> None:
    test = make_set("duffing", n_steps=60, alpha=1.0, beta=0.5, eta=0.5)
    settings = ResonanceSettings(etas=(0.5,), omegas=(0.7, 1.2, 1.8))
    ev = evaluate(test, {"integrating": Integrating("duffing", ("eta", "alpha", "beta"))},
                  integrators=("rk4",), work_precision=False, resonance=settings,
                  bifurcation=False, progress=False)
    out = write_report(ev, tmp_path / "report")
    assert (out / "frequency-response.png").stat().st_size > 0
    assert not (out / "resonance.png").exists()
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["resonance"]["kind"] == "frequency-response"
    assert doc["resonance"]["reference_settings"]["rtol"] == 1e-12
    text = (out / "report.md").read_text()
    assert "Frequency response" in text and "is hardening" in text
    assert "0 of 6 reference drives were not" in text
    assert "within" in text and "of the integrator's" in text
    fewer = dataclasses.replace(ev, resonance={**ev.resonance, "n_periodic": 4})
    assert "; 2 of 6 reference drives were not" in resonance_section(
        fewer, method_colors(fewer)).text


@pytest.mark.parametrize("continuation", [True, False])
def test_each_sweeps_peak_is_its_highest_periodic_response(continuation) -> None:
    """Up, down, or the drives from rest one row each: the peak of a response that peaks at
    omega = 1.2 is found at the drive nearest it, whatever the rows."""
    from odernn.assess.frequency_response import shape
    from odernn.data.simulate import simulate_trajectories
    from odernn.data.spec import load_spec

    test = simulate_trajectories(dataclasses.replace(load_spec("duffing-test"), n=8,
                                                     n_steps=50))
    plan = plan_response(test, ResonanceSettings(continuation=continuation, n_omega=5))
    periodic = plan.omega < plan.omega.max()  # an aperiodic drive is never the peak,
    amplitude = np.where(periodic, np.exp(-(plan.omega - 1.2) ** 2), 10.0)  # however large
    nearest = plan.omega.ravel()[np.argmin(np.where(periodic, np.abs(plan.omega - 1.2),
                                                    np.inf))]
    for entry in shape(plan, {"amplitude": amplitude}, periodic):
        assert set(entry["peak"]) == ({"up", "down"} if continuation else {"rest"})
        assert all(p["omega"] == nearest for p in entry["peak"].values())


@pytest.mark.parametrize(("alpha", "eta", "rate"), [
    (-1.0, 0.2, 0.1),  # double well: the rest state is unstable, transients decay at eta / 2
    (1.0, 0.2, 0.1),  # underdamped at rest
    (1.0, 3.0, (3 - math.sqrt(5)) / 2)])  # overdamped at rest: the slow mode
def test_each_sweep_settles_for_ln_1_over_tol_over_its_decay_rate(alpha, eta, rate) -> None:
    settings = ResonanceSettings(etas=(eta,), omegas=(1.0, 1.5), F0=0.3, transient_tol=1e-3,
                                 parameters={"alpha": alpha, "beta": 1.0}, max_steps=10**6)
    plan = plan_response(make_set("duffing"), settings)
    settle, window = math.log(1e3) / rate, settings.fit_periods * 2 * math.pi / 1.0
    np.testing.assert_array_equal(plan.steps, np.ceil((settle + window) / DT))


def test_the_backbone_is_first_order_harmonic_balance() -> None:
    """Duffing: ``omega^2 = alpha + 3/4 beta A^2``. The pendulum's follows its exact free
    frequency ``pi / (2 K(sin^2(A / 2)))`` to O(A^4) (2e-4 at A = 0.5)."""
    from types import SimpleNamespace

    from scipy.special import ellipk

    from odernn.assess.frequency_response import backbone

    curve = backbone(SimpleNamespace(system="duffing", fixed={"alpha": 1.0, "beta": 0.5}), 2.0)
    A = np.asarray(curve["amplitude"])
    np.testing.assert_allclose(curve["omega"], np.sqrt(1 + 0.375 * A**2), rtol=1e-12)
    curve = backbone(SimpleNamespace(system="pendulum", fixed={}), 0.5)
    A = np.asarray(curve["amplitude"])
    exact = math.pi / (2 * ellipk(np.sin(A / 2) ** 2))
    assert A[-1] == 0.5 and np.abs(np.asarray(curve["omega"]) - exact).max() < 3e-4
