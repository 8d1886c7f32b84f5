"""The bifurcation diagram against known physics and on synthetic samples.

- The double-well Duffing ``x'' + 0.3 x' - x + x^3 = F0 cos(1.2 t)`` has a period-1
  response in each well at small F0, a period-2 one after the first period doubling and
  chaos at F0 0.5 (``test_lyapunov.py``: a positive exponent there);
- a surrogate that integrates the system gets every class right and ~0 Wasserstein
  distance where the response is periodic; one with the wrong cubic stiffness does not;
- the classification rule on synthetic stroboscopic sequences; bad settings; what is
  skipped; the report's section.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from test_evaluate import make_test_set
from test_frequency_response import Integrating

from odernn.assess.bifurcation import (
    DIVERGED,
    NOT_PERIODIC,
    BifurcationPlan,
    BifurcationSettings,
    label,
    measure_bifurcation,
    period_of,
    plan_bifurcation,
    score,
    stroboscope,
)
from odernn.assess.evaluate import evaluate
from odernn.assess.frequency_response import REFERENCE_SOLVER, reference_run
from odernn.assess.report import write_report
from odernn.assess.statistics import circular_wasserstein_1, wasserstein_1
from odernn.data.forcing import forcing_from_params
from odernn.data.integrators import INTEGRATORS
from odernn.data.systems import Oscillator
from odernn.data.trajectories import Trajectories
from odernn.errors import OdernnError, SpecError

DT = 0.05
# Measured with the reference (DOP853 rtol 1e-12, 64 transient + 32 sampled periods, from
# (x0, v0) = (-0.5, 0), (0.5, 0), (0, 0)) over F0 = 0.10, 0.12, ..., 0.48: period 1 up to
# 0.26 (one response in each well: at 0.12 the samples are x = -0.812 and 1.132), period 2
# at 0.28 (x = 0.246, 0.586 in the right well, -1.23, -0.906 in the left: the first period
# doubling lies between 0.26 and 0.28), not periodic from 0.30 on but for a period-5 window
# at 0.36-0.38. Below, 32 transient periods suffice for all three.
SMALL, DOUBLED, CHAOTIC = 0.12, 0.28, 0.5
SETTINGS = BifurcationSettings(amplitudes=(SMALL, DOUBLED, CHAOTIC), transient=32,
                               periods=16)
NAMES = ("eta", "alpha", "beta")


def double_well(n_steps: int = 20) -> Trajectories:
    """Two double-well Duffing trajectories from (-0.5, 0) and (0.5, 0), F0 0.2 and 0.3 (the
    range a surrogate was trained on), omega 1.2, stored from the integrator."""
    params = {"x0": np.array([-0.5, 0.5]), "v0": np.zeros(2), "F0": np.array([0.2, 0.3]),
              "omega": np.full(2, 1.2), "phase": np.zeros(2), "eta": np.full(2, 0.3),
              "alpha": np.full(2, -1.0), "beta": np.ones(2)}
    t = DT * np.arange(n_steps)
    system = Oscillator.of("duffing", params, forcing_from_params("cosine", params))
    x, v = INTEGRATORS["scipy"](system, params["x0"], params["v0"], t)
    return Trajectories(t, x, v, system.forcing(t), params,
                        {"system": "duffing", "forcing": "cosine"})


def test_a_drive_that_escapes_is_diverged_and_the_others_are_scored() -> None:
    """A softening Duffing (beta < 0) driven over its well's edge escapes to infinity in
    finite time; SciPy's step then collapses for the whole stack, and the whole evaluation
    failed. Now that drive is isolated and classed diverged; the others, integrated apart,
    agree with a run of their own."""
    params = {"x0": np.array([0.0, 0.1]), "v0": np.zeros(2), "F0": np.array([0.05, 0.1]),
              "omega": np.full(2, 0.8), "phase": np.zeros(2), "eta": np.full(2, 0.2),
              "alpha": np.ones(2), "beta": -np.ones(2)}
    t = DT * np.arange(20)
    system = Oscillator.of("duffing", params, forcing_from_params("cosine", params))
    x, v = INTEGRATORS["scipy"](system, params["x0"], params["v0"], t)
    test = Trajectories(t, x, v, system.forcing(t), params,
                        {"system": "duffing", "forcing": "cosine"})
    settings = BifurcationSettings(amplitudes=(0.05, 0.6, 0.1), transient=8, periods=8,
                                   max_period=4)
    out = measure_bifurcation(test, {"integrating": Integrating("duffing", NAMES)}, settings)
    assert out["integrator"]["labels"] == ["period 1", "diverged", "period 1"]
    method = out["methods"]["integrating"]  # its RK4 escapes too: the same classes
    assert method["labels"] == ["period 1", "diverged", "period 1"] and method["agrees"].all()
    plan = plan_bifurcation(test, settings)
    kept = plan.oscillator().take(np.array([0, 1, 4, 5]))
    x0, v0 = np.tile(plan.x0, 2), np.tile(plan.v0, 2)
    with pytest.raises(OdernnError, match="Required step size"):
        INTEGRATORS["scipy"](plan.oscillator(), np.tile(plan.x0, 3), np.tile(plan.v0, 3),
                             plan.t, **REFERENCE_SOLVER)
    x, _ = reference_run(plan.oscillator(), np.tile(plan.x0, 3), np.tile(plan.v0, 3), plan.t)
    alone, _ = INTEGRATORS["scipy"](kept, x0, v0, plan.t, **REFERENCE_SOLVER)
    assert np.isnan(x[2:4]).all()
    np.testing.assert_allclose(x[[0, 1, 4, 5]], alone, rtol=0, atol=1e-9)
    x0[1] = np.nan  # a drive from a state not finite (a frequency sweep's next segment)
    x, _ = reference_run(kept, x0, v0, plan.t)
    assert np.isnan(x[1]).all()
    np.testing.assert_allclose(x[[0, 2, 3]], alone[[0, 2, 3]], rtol=0, atol=1e-9)


@pytest.fixture(scope="module")
def diagram() -> dict:
    surrogates = {"integrating": Integrating("duffing", NAMES),
                  "stiffer": Integrating("duffing", NAMES, scale=1.5)}
    return measure_bifurcation(double_well(), surrogates, SETTINGS)


def test_double_well_duffing_reference_classes(diagram) -> None:
    ref = diagram["integrator"]
    assert ref["labels"] == ["period 1", "period 2", "not periodic"]
    assert ref["classes"].tolist() == [1, 1, 2, 2, NOT_PERIODIC, NOT_PERIODIC]
    x = ref["samples"]  # rows: F0 0.12 from x0 -0.5 and 0.5, then 0.28, then 0.5
    # two coexisting period-1 responses, one in each well (measured: -0.812 and 1.132)
    np.testing.assert_allclose(x[0], -0.812, atol=2e-3)
    np.testing.assert_allclose(x[1], 1.132, atol=2e-3)
    assert abs(x[2, 0] - x[2, 1]) > 0.1 and abs(x[2, 0] - x[2, 2]) < 1e-3  # period 2
    assert np.ptp(x[4]) > 1.0  # chaos spreads over both wells
    assert diagram["inside"].tolist() == [False, True, False]
    assert diagram["trained_range"] == [0.2, 0.3]
    assert diagram["integrator"]["counts"] == {"not periodic": 1, "period 1": 1, "period 2": 1}


def test_a_surrogate_that_integrates_gets_every_class_and_no_distance(diagram) -> None:
    """RK4 on the samples (spline at the half steps) is the system to ~(omega dt)^4: the
    same attractors. Where the response is chaotic its samples are another stretch of the
    same attractor (W1 small, not zero)."""
    good = diagram["methods"]["integrating"]
    assert good["agreement"] == good["agreement_inside"] == good["agreement_beyond"] == 1.0
    assert good["agrees"].tolist() == [True, True, True]
    assert np.all(good["w1"][:2] < 1e-3) and good["w1_median"] < 1e-3
    assert good["w1"][2] < 0.5 and good["n_diverged"] == 0


def test_a_surrogate_with_the_wrong_stiffness_scores_lower(diagram) -> None:
    """beta 1.5 moves the wells to x = +-0.82: other responses, other classes."""
    good, wrong = diagram["methods"]["integrating"], diagram["methods"]["stiffer"]
    assert wrong["agreement"] < good["agreement"]
    assert wrong["w1_median"] > 100 * good["w1_median"]


def test_the_score_splits_inside_and_beyond_the_test_range() -> None:
    """Agreement and distance inside the test set's range of F0 and beyond it, each over its
    own amplitudes (only surrogates that agree everywhere were scored before, where a swap
    of the two halves changes nothing)."""
    from types import SimpleNamespace

    from odernn.assess.bifurcation import score

    plan = SimpleNamespace(amplitudes=np.array([0.1, 0.3, 0.5]), x0=np.zeros(1),
                           inside=np.array([False, True, False]), system="duffing")
    reference = {"labels": ["period 1", "period 2", "period 1"],
                 "samples": np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])}
    samples = reference["samples"] + np.array([[0.0], [0.5], [0.0]])  # off by 0.5 inside
    out = score(plan, reference, samples, np.array([1, 1, 1]), scale=2.0)
    assert out["agrees"].tolist() == [True, False, True]
    assert (out["agreement"], out["agreement_inside"], out["agreement_beyond"]) == (
        pytest.approx(2 / 3), 0.0, 1.0)
    assert (out["w1_median_inside"], out["w1_median_beyond"]) == (0.25, 0.0)


@pytest.mark.parametrize(("period", "noise"), [(1, 0.0), (2, 1e-4), (3, 1e-4), (5, 0.0)])
def test_period_of_periodic_sequences(period: int, noise: float) -> None:
    rng = np.random.default_rng(period)
    cycle = rng.uniform(-1, 1, (2, 1, period))  # x and v, one row
    samples = np.tile(cycle, (1, 1, 40 // period + 1))[..., :40]
    samples = samples + noise * rng.standard_normal(samples.shape)
    assert period_of(samples, 1e-2, max_period=8).tolist() == [period]
    # a tolerance below the noise finds no period
    if noise:
        assert period_of(samples, noise / 10, max_period=8).tolist() == [NOT_PERIODIC]


def test_period_of_noise_long_periods_and_non_finite_rows() -> None:
    rng = np.random.default_rng(0)
    noise = rng.uniform(-1, 1, 32)
    long = np.tile([0.1, 0.4, -0.3, 0.9, -0.7, 0.2, 0.5, -0.1, 0.8], 4)[:32]  # period 9
    broken = np.where(np.arange(32) < 20, 0.5, np.nan)
    rows = np.stack((noise, long, broken, np.full(32, 0.3)))
    assert period_of(rows, np.array([0.1, 0.1, 0.1, 0.0]), max_period=8).tolist() == [
        NOT_PERIODIC, NOT_PERIODIC, DIVERGED, 1]
    assert period_of(long[None], 0.1, max_period=9).tolist() == [9]
    with pytest.raises(ValueError, match="more than max_period"):
        period_of(rows[:, :8], 0.1, max_period=8)


def test_period_of_angles_is_modulo_two_pi() -> None:
    """A pendulum rotating once a drive period: its angle grows by 2 pi a sample."""
    x = 0.3 + 2 * math.pi * np.arange(20)
    v = np.full(20, 1.0)
    samples = np.stack((x, v))[:, None]
    assert period_of(samples, 1e-6, max_period=4, angle=True).tolist() == [1]
    assert period_of(samples, 1e-6, max_period=4).tolist() == [NOT_PERIODIC]


def test_a_pendulums_distances_are_over_its_std_on_the_circle() -> None:
    """W1 over the test set's std of x: of an angle, wrapped; the unwrapped angle's grows
    with the turns the test set makes (a diagram half a turn off scored four times better
    on a rotating test set four times as long)."""
    from odernn.assess.metrics import reference_scale, x_scale

    params = {"x0": np.array([0.2, -0.4]), "v0": np.zeros(2), "F0": np.array([0.3, 0.4]),
              "omega": np.full(2, 1.2), "phase": np.zeros(2), "eta": np.full(2, 0.3)}
    t = DT * np.arange(20)
    system = Oscillator.of("pendulum", params, forcing_from_params("cosine", params))
    x, v = INTEGRATORS["scipy"](system, params["x0"], params["v0"], t)
    x = x + 2 * math.pi * np.array([[4], [-7]])  # the same states, whole turns away
    test = Trajectories(t, x, v, system.forcing(t), params,
                        {"system": "pendulum", "forcing": "cosine"})
    out = measure_bifurcation(test, {}, BifurcationSettings(
        amplitudes=(0.35,), transient=8, periods=8, max_period=4, initial_states=1))
    assert out["scale"] == x_scale(x, "pendulum") < reference_scale(x) / 10


def test_the_circular_distance_is_the_integral_over_the_circle() -> None:
    """Against the definition on a fine grid of angles (min over alpha of the integral of
    |F_a - F_b - alpha|), and the line's distance where the samples leave a gap at the cut."""
    rng = np.random.default_rng(5)
    grid = np.linspace(0, 2 * math.pi, 200_000, endpoint=False)
    for _ in range(4):
        a, b = rng.vonmises(2.5, 3, size=13), rng.vonmises(-2.8, 1, size=7)
        F = [np.searchsorted(np.sort(np.mod(s, 2 * math.pi)), grid, side="right") / s.size
             for s in (a, b)]
        D = F[0] - F[1]
        brute = min(np.mean(np.abs(D - alpha)) * 2 * math.pi for alpha in np.unique(D))
        assert math.isclose(circular_wasserstein_1(a[None], b[None])[0], brute, rel_tol=1e-4)
    a, b = rng.uniform(-1, 1, (3, 40)), rng.uniform(-0.5, 1.5, (3, 30))
    np.testing.assert_allclose(circular_wasserstein_1(a, b), wasserstein_1(a, b), rtol=1e-12)


def test_a_pendulums_diagram_is_scored_on_the_circle() -> None:
    """A rotating orbit sampled at the cut: the reference at pi - 1e-6, a method at
    -pi + 1e-6 (pi + 1e-6 wrapped) scored W1 = 2 pi on the line."""
    plan = BifurcationPlan("pendulum", {"eta": 0.2}, 1.0, 0.0, np.array([2.0]), (1.0, 3.0),
                           np.zeros(1), np.zeros(1), np.arange(3.0), np.arange(2.0))
    reference = {"samples": np.full((1, 2), math.pi - 1e-6), "labels": ["period 1"]}
    scored = score(plan, reference, np.full((1, 2), -math.pi + 1e-6), np.array([1]), 1.0)
    assert scored["w1"][0] == pytest.approx(2e-6, abs=1e-12) and scored["agrees"].all()


@pytest.mark.parametrize(("eps", "period"), [(0.03, 2), (0.003, 1)])
def test_the_tolerance_is_relative_to_the_attractor_in_x_and_v_over_omega(eps, period):
    """A period-1 orbit at omega = 10 with a period-2 part of size ``eps``: consecutive
    samples differ by 2 eps, against a tolerance of 1 % of the attractor's size, 2 (x and
    v / omega each span about 2). Sized by v itself (span 20), or with the transient before
    the samples (a jump of 5), the tolerance would be 10 or 3.5 times larger, and the
    period-2 orbit called period 1."""
    omega, dt = 10.0, 2 * math.pi / 10.0 / 200
    t = dt * np.arange(200 * 48 + 1)
    strobe = 2 * math.pi / omega * (16 + np.arange(32))
    x = np.cos(omega * t) + eps * np.cos(omega * t / 2)
    v = -omega * np.sin(omega * t) - eps * omega / 2 * np.sin(omega * t / 2)
    x = x + 5.0 * (t < strobe[0] - 10 * dt)  # a transient, before the samples
    plan = BifurcationPlan("duffing", {"eta": 0.1, "alpha": 1.0, "beta": 1.0}, omega, 0.0,
                           np.array([1.0]), (1.0, 1.0), np.zeros(1), np.zeros(1), t, strobe)
    samples, classes = stroboscope(plan, x[None], v[None], BifurcationSettings())
    assert classes.tolist() == [period]
    np.testing.assert_allclose(samples[0, ::2], 1 + eps, atol=1e-6)


def test_labels_list_each_class_once_in_order() -> None:
    assert label([1, 1]) == "period 1"
    assert label([3, 1, NOT_PERIODIC, 3]) == "period 1 + period 3 + not periodic"
    assert label([DIVERGED, 2]) == "period 2 + diverged"


def test_default_amplitudes_extend_the_test_sets_range() -> None:
    plan = plan_bifurcation(double_well(), BifurcationSettings())
    assert plan.amplitudes.size == 40
    np.testing.assert_allclose(plan.amplitudes[[0, -1]], [0.2 * 0.7, 0.3 * 1.3])
    assert plan.inside.sum() == np.count_nonzero((plan.amplitudes >= 0.2)
                                                  & (plan.amplitudes <= 0.3))
    assert plan.omega == 1.2 and plan.params == {"eta": 0.3, "alpha": -1.0, "beta": 1.0}
    assert plan.strobe.size == 32 and plan.strobe[0] == pytest.approx(32 * 2 * math.pi / 1.2)
    assert plan.x0.tolist() == [-0.5, 0.5]


@pytest.mark.parametrize(("settings", "match"), [
    ({"periods": 10}, r"periods must be a whole number >= 16 \(2 max_period\), got 10"),
    ({"max_period": 0}, "max_period must be a whole number >= 1"),
    ({"initial_states": 1.5}, "initial_states must be a whole number >= 1"),
    ({"n_amplitudes": True}, "n_amplitudes must be a whole number"),
    ({"tolerance": 0.0}, r"tolerance must be in \(0, 1\)"),
    ({"extension": 1.0}, r"extension must be in \[0, 1\)"),
    ({"amplitudes": (0.1, -0.2)}, "amplitudes must be positive numbers"),
    ({"amplitudes": ()}, "amplitudes must be positive numbers"),
])
def test_bad_settings_are_refused_in_one_line(settings, match) -> None:
    with pytest.raises(SpecError, match=match) as err:
        BifurcationSettings(**settings)
    assert "\n" not in str(err.value)


def test_linear_and_non_cosine_test_sets_are_skipped() -> None:
    linear = measure_bifurcation(make_test_set(n=2, n_steps=10), {})
    assert "no bifurcations" in linear["skipped"]
    random = make_test_set(n=2, n_steps=10)
    random = Trajectories(random.t, random.x, random.v, random.F,
                          {**random.params, "alpha": np.ones(2), "beta": np.ones(2)},
                          {"system": "duffing", "forcing": "random"})
    assert "not one cosine" in measure_bifurcation(random, {})["skipped"]


def test_the_report_shows_the_bifurcation_diagram(tmp_path) -> None:
    settings = BifurcationSettings(amplitudes=(SMALL, CHAOTIC), transient=8, periods=16)
    ev = evaluate(double_well(60), {"integrating": Integrating("duffing", NAMES)},
                  integrators=("rk4",), work_precision=False, resonance=False,
                  bifurcation=settings, progress=False)
    out = write_report(ev, tmp_path / "report")
    assert (out / "bifurcation.png").stat().st_size > 0
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["bifurcation"]["methods"]["integrating"]["agreement"] == 1.0
    assert doc["bifurcation"]["reference_settings"]["rtol"] == 1e-12
    text = (out / "report.md").read_text()
    assert "## Bifurcation diagram" in text and "](bifurcation.png)" in text
    assert "not periodic at 1 amplitude; period 1 at 1 amplitude." in text
    assert "has the reference's class at every amplitude" in text
    linear = evaluate(make_test_set(n=3, n_steps=100), {}, integrators=("rk4",),
                      work_precision=False, resonance=False, progress=False)
    text = (write_report(linear, tmp_path / "linear") / "report.md").read_text()
    assert "No bifurcation diagram" in text and "no bifurcations" in text
    off = evaluate(make_test_set(n=3, n_steps=100), {}, integrators=("rk4",),
                   work_precision=False, resonance=False, bifurcation=False, progress=False)
    assert off.bifurcation is None and off.to_json()["bifurcation"] is None


def test_a_diagram_whose_reference_has_no_finite_point_is_drawn():
    """A reference that diverged at every drive (RK4 on a van der Pol oscillator of
    ``mu = 10^9``) left the shared vertical axis's limits NaN: a traceback instead of the
    report. The panels are drawn on matplotlib's own limits."""
    import io
    from types import SimpleNamespace

    from odernn.assess.figures import bifurcation_plot

    amplitudes, x0 = np.linspace(0.1, 1.0, 4), np.zeros(2)
    samples = np.full((8, 5), np.nan)
    res = {"reference": "rk4", "integrator": {"samples": samples}, "amplitudes": amplitudes,
           "initial_states": {"x0": x0, "v0": x0}, "trained_range": [0.2, 0.8],
           "methods": {"m": {"samples": np.ones((8, 5)), "agreement": 0.0}}}
    fig = bifurcation_plot(SimpleNamespace(bifurcation=res), {"m": "#ff0000"})
    fig.savefig(io.BytesIO(), format="png")
