"""The chaotic-data statistics against hand computations: zero for identical inputs, the
Wasserstein distance of shifted samples, spectra of sinusoids, relative errors of scaled
responses, Lyapunov times, the rule for diverged trajectories, and a seed group's median
estimates never farther off than its median member's."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from scipy.stats import wasserstein_distance

from odernn.assess.statistics import (
    STATISTICS,
    lyapunov_times,
    members_median_statistics,
    power_spectrum,
    relative_error,
    response_statistics,
    spectrum_error,
    statistics_per_trajectory,
    steady_start,
    summarize_statistics,
    wasserstein_1,
)
from odernn.errors import SpecError

DT = 0.05
T = np.arange(1000) * DT
RNG = np.random.default_rng(0)
REF_X = np.stack([np.sin(T + phase) * (1 + 0.1 * k) for k, phase in enumerate(RNG.uniform(0, 6,
                                                                                         4))])
REF_V = np.gradient(REF_X, DT, axis=1)
EXPONENT = np.array([0.15, 0.2, 0.005, np.nan])


def test_identical_inputs_give_zero():
    per = statistics_per_trajectory(REF_X, REF_V, REF_X, REF_V, T, exponent=EXPONENT)
    for key in ("x2_max_rel_error", "x2_mean_rel_error", "w1_x", "w1_v", "spectrum_error_x"):
        np.testing.assert_array_equal(per[key], 0.0)
    np.testing.assert_array_equal(per["valid_time"], T[-1])  # censored at the horizon
    summary = summarize_statistics(REF_X, REF_V, REF_X, REF_V, T, exponent=EXPONENT)
    assert set(summary) == set(STATISTICS)
    for key, value in summary.items():
        if key.startswith(("x2_", "w1_", "spectrum_")):
            assert value == 0.0, key
    # valid time in Lyapunov times: only the two chaotic trajectories (exponent > 0.01)
    assert summary["n_chaotic"] == 2
    assert summary["valid_lyapunov_median"] == pytest.approx(T[-1] * (0.15 + 0.2) / 2)
    assert summary["valid_lyapunov_censored"] == 2  # both valid to the end: lower bounds
    np.testing.assert_array_equal(per["valid_censored"], True)
    off = summarize_statistics(REF_X + 1.0, REF_V, REF_X, REF_V, T, exponent=EXPONENT)
    assert off["valid_lyapunov_censored"] == 0 and off["n_chaotic"] == 2


def test_wasserstein_of_shifted_samples_is_the_shift():
    a = RNG.normal(size=(3, 500))
    np.testing.assert_allclose(wasserstein_1(a, a + 0.7), 0.7, rtol=1e-12)
    np.testing.assert_allclose(wasserstein_1(a, a[:, ::-1]), 0.0, atol=1e-15)  # order-free


def test_wasserstein_of_unequal_sizes_matches_scipy():
    a, b = RNG.normal(size=(3, 37)), RNG.exponential(size=(3, 58))
    expected = [wasserstein_distance(a[i], b[i]) for i in range(3)]
    np.testing.assert_allclose(wasserstein_1(a, b), expected, rtol=1e-12)
    np.testing.assert_allclose(wasserstein_1(np.zeros((1, 3)), np.ones((1, 5))), 1.0)


def test_spectrum_error_of_a_sinusoid():
    """Against itself shifted in phase: ~0; against another frequency: ~1 (no power shared)."""
    t = np.arange(800) * DT
    x = np.sin(1.2 * t)[None]
    assert spectrum_error(np.sin(1.2 * t + 1.0)[None], x, DT)[0] < 0.02
    assert spectrum_error(np.sin(3.0 * t)[None], x, DT)[0] > 0.9
    assert spectrum_error(0 * x, x, DT)[0] == 1.0  # a constant signal has no spectrum


def test_power_spectrum_is_welchs():
    """The spectrum is scipy.signal.welch's (Hann, half overlap, mean removed), normalised."""
    from scipy.signal import welch

    for length in (800, 801, 37):
        x = RNG.normal(size=(2, length)).cumsum(axis=1)
        f, p = welch(x, fs=1 / DT, window="hann", nperseg=min(length // 2, 1024), axis=-1)
        freqs, power = power_spectrum(x, DT)
        np.testing.assert_allclose(freqs, f, rtol=1e-14)
        np.testing.assert_allclose(power, p / p.sum(axis=1, keepdims=True), atol=1e-15)


def test_response_statistics_and_their_relative_errors():
    """``1.1 sin`` against ``sin`` over whole periods: both ``max x^2`` and ``mean x^2`` are
    1.21 times the reference's (1 and 1/2)."""
    t = np.arange(0, 20 * math.pi, 0.01)
    ref = np.sin(t)[None]
    max_x2, mean_x2 = response_statistics(ref)
    assert max_x2[0] == pytest.approx(1.0, abs=1e-8)
    assert mean_x2[0] == pytest.approx(0.5, abs=1e-4)
    for pred, value in zip(response_statistics(1.1 * ref), (max_x2, mean_x2), strict=True):
        np.testing.assert_allclose(relative_error(pred, value), 0.21, rtol=1e-12)
    np.testing.assert_array_equal(relative_error(np.array([0.0, 1.0, np.inf]),
                                                 np.array([0.0, 0.0, 1.0])), [0.0, np.inf, np.inf])


def test_the_steady_state_statistics_ignore_the_transient():
    """A prediction that is wrong during the transient only (here: zero) and right after it
    scores zero on every steady-state statistic, per trajectory and pooled (a spectrum taken
    from step 1 on passed every other test); its valid time is 0."""
    k = steady_start(T)
    pred_x, pred_v = REF_X.copy(), REF_V.copy()
    pred_x[:, 1:k] = pred_v[:, 1:k] = 0.0
    per = statistics_per_trajectory(pred_x, pred_v, REF_X, REF_V, T, exponent=EXPONENT)
    for key in ("x2_max_rel_error", "x2_mean_rel_error", "w1_x", "w1_v", "spectrum_error_x"):
        np.testing.assert_array_equal(per[key], 0.0, err_msg=key)
    summary = summarize_statistics(pred_x, pred_v, REF_X, REF_V, T, exponent=EXPONENT)
    for key, value in summary.items():
        if key.startswith(("x2_", "w1_", "spectrum_")):
            assert value == 0.0, key
    assert summary["valid_lyapunov_median"] == pytest.approx(DT * (0.15 + 0.2) / 2)


def test_the_tenth_percentile_of_the_valid_lyapunov_times():
    """``valid_lyapunov_p10``: the lower tail over the chaotic trajectories, by the inverted
    CDF (an order statistic), with every trajectory's valid time different."""
    n = 20
    t, ref_x = T, np.tile(REF_X[:1], (n, 1))
    pred_x = ref_x.copy()
    for i in range(n):  # trajectory i valid until step 10 (i + 1)
        pred_x[i, 10 * (i + 1):] += 10.0
    exponent = np.full(n, 0.2)
    summary = summarize_statistics(pred_x, ref_x, ref_x, ref_x, t, exponent=exponent)
    valid = 0.2 * DT * 10 * (np.arange(n) + 1)
    assert summary["n_chaotic"] == n
    assert summary["valid_lyapunov_p10"] == pytest.approx(np.sort(valid)[1])  # 2nd of 20
    assert summary["valid_lyapunov_median"] == pytest.approx(np.median(valid))


def test_lyapunov_times_only_where_the_exponent_is_positive():
    out = lyapunov_times(np.array([10.0, 10.0, 10.0, 10.0]), EXPONENT)
    np.testing.assert_allclose(out[:2], [1.5, 2.0])
    assert np.all(np.isnan(out[2:]))


def test_the_steady_state_starts_after_the_transient():
    assert steady_start(T) == 200  # a fifth of the horizon 49.95: t_200 = 10 >= 9.99
    assert steady_start(T, 0.0) == 1 and steady_start(T, 0.0, start=5) == 5
    assert steady_start(T, 10.0) == 200
    for bad in (49.5, -1.0, math.nan):
        with pytest.raises(SpecError, match="statistics: ") as info:
            steady_start(T, bad)
        assert "\n" not in str(info.value)


def test_diverged_rows_are_inf_and_every_pooled_number_with_them():
    """Row 1 reported diverged at step 500, row 2 NaN from step 700: their steady-state
    numbers are ``inf``, the pooled ones too; the others and the medians stay finite."""
    pred_x, pred_v = 1.05 * REF_X, REF_V.copy()
    pred_x[2, 700:] = np.nan
    diverged_at = np.array([-1, 500, -1, -1])
    per = statistics_per_trajectory(pred_x, pred_v, REF_X, REF_V, T, diverged_at,
                                    exponent=EXPONENT)
    for key in ("x2_max_rel_error", "x2_mean_rel_error", "w1_x", "w1_v", "spectrum_error_x"):
        assert np.all(np.isinf(per[key][1:3])), key
        assert np.all(np.isfinite(per[key][[0, 3]])), key
    assert per["valid_time"][1] <= T[500]
    summary = summarize_statistics(pred_x, pred_v, REF_X, REF_V, T, diverged_at,
                                   exponent=EXPONENT)
    for key in ("x2_max_rel_error", "x2_mean_rel_error", "w1_x", "w1_v", "spectrum_error_x"):
        assert summary[key] == math.inf, key
        assert math.isinf(summary[f"{key}_median"])  # two of four rows: the median's upper half
    summary = summarize_statistics(pred_x[[0, 1, 3]], pred_v[[0, 1, 3]], REF_X[[0, 1, 3]],
                                   REF_V[[0, 1, 3]], T, diverged_at[[0, 1, 3]])
    assert summary["x2_max_rel_error"] == math.inf
    assert summary["x2_max_rel_error_median"] == pytest.approx(0.1025, rel=1e-9)


def test_a_groups_statistics_are_the_median_of_its_members_estimates():
    """Members at 0.9, 1.1 and 1.2 times the reference: max and mean x^2 at 0.81, 1.21 and
    1.44 times the reference's, whose median is 1.21 (the mean of the three would be 1.153);
    one member more, the reference but diverged on one trajectory, moves the pooled median to
    (1.21 + 1.44) / 2 and the other trajectories' to (1 + 1.21) / 2; the shapes must agree."""
    members = [scale * REF_X for scale in (0.9, 1.2, 1.1)]
    out = members_median_statistics(members, REF_X, T)
    assert set(out) == {f"x2_{s}_rel_error{m}" for s in ("max", "mean") for m in ("", "_median")}
    for value in out.values():
        assert value == pytest.approx(0.21, rel=1e-9)
    diverged = REF_X.copy()
    diverged[1, 600:] = np.inf
    out = members_median_statistics([*members, diverged], REF_X, T)
    assert out["x2_mean_rel_error"] == pytest.approx((0.21 + 0.44) / 2, rel=1e-9)
    assert out["x2_mean_rel_error_median"] == pytest.approx(0.21 / 2, rel=1e-9)
    with pytest.raises(ValueError, match="differ"):
        members_median_statistics([REF_X[:2]], REF_X, T)


@given(scales=st.lists(st.tuples(st.floats(0.1, 3.0), st.floats(-1.0, 1.0),
                                 st.integers(-1, 999)), min_size=1, max_size=6))
@example(scales=[(1.0, 0.0, -1), (0.5, 0.0, 300)])  # even: one member diverged in the steady state
@example(scales=[(0.2, 0.0, -1), (2.0, 0.0, -1), (1.5, 0.9, -1), (0.9, -0.9, 10)])
def test_a_groups_estimates_are_never_farther_off_than_its_median_member(scales):
    """Members scaled, shifted and diverged (from a step, -1 never) at will: each pooled
    relative error of the median estimates is at most the median of the members' own
    (:func:`summarize_statistics`), for any number of members."""
    members = []
    for scale, shift, step in scales:
        x = scale * REF_X + shift
        if step >= 0:
            x[:, step:] = np.nan
        members.append(x)
    group = members_median_statistics(members, REF_X, T)
    own = [summarize_statistics(x, REF_V, REF_X, REF_V, T) for x in members]
    for key in ("x2_max_rel_error", "x2_mean_rel_error"):
        median = float(np.median([o[key] for o in own]))
        assert group[key] <= median * (1 + 1e-12), key



def test_each_distance_is_over_its_own_variables_scale():
    """w1_x over the scale of x, w1_v over that of v: v shifted by 1 under scales 1 and 10
    scores 0.1 in every row, x 0."""
    rng = np.random.default_rng(4)
    rx, rv = rng.normal(size=(2, 5, 300))
    t = 0.1 * np.arange(300)
    per = statistics_per_trajectory(rx, rv + 1, rx, rv, t, scale_x=1.0, scale_v=10.0)
    np.testing.assert_allclose(per["w1_v"], 0.1, rtol=1e-12)
    np.testing.assert_array_equal(per["w1_x"], 0.0)
    pooled = summarize_statistics(rx, rv + 1, rx, rv, t, scale_x=1.0, scale_v=10.0)
    assert pooled["w1_v"] == pytest.approx(0.1, rel=1e-12)
    assert pooled["w1_v_median"] == pytest.approx(0.1, rel=1e-12)


def _rotating_pendulum(n: int = 6, t_end: float = 150.0) -> tuple[np.ndarray, ...]:
    """The chaotic driven pendulum (eta 0.5, omega 2/3, F0 1.15), whose angle turns over
    now one way, now the other: reference from ``x0`` and a prediction from ``x0 + 1e-3``
    (the same attractor, another trajectory), by RK4 at dt 0.05."""
    from odernn.data.forcing import forcing_from_params
    from odernn.data.integrators import INTEGRATORS
    from odernn.data.systems import SYSTEMS, Oscillator

    rng = np.random.default_rng(7)
    p = {"F0": np.full(n, 1.15), "omega": np.full(n, 2 / 3), "phase": np.zeros(n)}
    system = Oscillator(SYSTEMS["pendulum"], {"eta": np.full(n, 0.5)},
                        forcing_from_params("cosine", p))
    t = np.arange(int(t_end / 0.05) + 1) * 0.05
    x0, v0 = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    rx, rv = INTEGRATORS["rk4"](system, x0, v0, t)
    px, pv = INTEGRATORS["rk4"](system, x0 + 1e-3, v0, t)
    return px, pv, rx, rv, t


def test_a_pendulums_angle_is_compared_on_the_circle():
    """The pendulum's x is an angle: its steady-state statistics are the circle's. A
    prediction on the same chaotic attractor but another trajectory, which turns over
    another number of times, was scored as a wrong attractor: on the line the distribution
    of the unwrapped angle measures how far the pendulum has turned. Whole turns added at
    random to every sample change no statistic of x; they do change the valid time (a turn
    more is an error of the trajectory)."""
    px, pv, rx, rv, t = _rotating_pendulum()
    assert np.all(np.ptp(rx, axis=1) > 4 * np.pi)  # each turns over, more than twice
    line = summarize_statistics(px, pv, rx, rv, t)
    circle = summarize_statistics(px, pv, rx, rv, t, angle=True)
    # docs/metrics.md quotes these: 0.23 and 0.73 on the line, 0.018 and 0.014 on the circle
    assert (line["w1_x"], line["x2_mean_rel_error"]) == pytest.approx((0.23, 0.73), abs=5e-3)
    assert (circle["w1_x"], circle["x2_mean_rel_error"]) == pytest.approx((0.018, 0.014),
                                                                           abs=5e-4)
    rest = summarize_statistics(0 * px, 0 * pv, rx, rv, t, angle=True)  # stuck at the bottom
    assert rest["w1_x"] > 40 * circle["w1_x"]
    shifted = rx + 2 * np.pi * np.arange(len(rx))[:, None] * 7  # the same states, whole turns
    for pred, score in ((px, circle), (0 * px, rest)):  # the review's: the scale grew with them
        again = summarize_statistics(pred, pv, shifted, rv, t, angle=True)
        assert again["w1_x"] == pytest.approx(score["w1_x"], rel=1e-9)
    assert circle["w1_v"] == line["w1_v"] == pytest.approx(0.023, abs=5e-4)
    assert circle["x2_max_rel_error"] < 1e-3
    rng = np.random.default_rng(8)
    turned = px + 2 * np.pi * rng.integers(-3, 4, size=px.shape)
    again = summarize_statistics(turned, pv, rx, rv, t, angle=True)
    for key in ("x2_max_rel_error", "x2_mean_rel_error", "w1_x", "spectrum_error_x",
                "x2_mean_rel_error_median", "w1_x_median", "spectrum_error_x_median"):
        assert again[key] == pytest.approx(circle[key], rel=1e-9, abs=1e-12), key
    per = statistics_per_trajectory(turned, pv, rx, rv, t, angle=True)
    assert np.all(per["valid_time"] < t[-1] / 2)  # pointwise, on the unwrapped angle
    assert np.all(per["x2_max"] <= np.pi ** 2) and np.all(per["x2_max_ref"] <= np.pi ** 2)
    group = members_median_statistics([px, turned], rx, t, angle=True)
    assert group["x2_mean_rel_error"] == pytest.approx(circle["x2_mean_rel_error"], rel=1e-9)


def test_an_angles_error_scale_is_its_std_on_the_circle(monkeypatch):
    """A rotating pendulum's unwrapped angle spreads with every turn: its std was the
    error scale, so the valid-time threshold grew with the turns (half a turn of error
    counted valid on a long one). The wrapped angle's std ignores whole
    turns; another system's x is its own. The valid time and the trust horizon use it."""
    from odernn.assess import trust
    from odernn.assess.metrics import reference_scale, wrap_angle, x_scale
    from odernn.assess.trust import data_trust_horizon
    from odernn.data.forcing import forcing_from_params
    from odernn.data.trajectories import Trajectories

    px, pv, rx, rv, t = _rotating_pendulum(n=3, t_end=40.0)
    turned = rx + 2 * np.pi * np.array([[5], [-3], [9]])  # the same states, whole turns
    assert reference_scale(turned) > 3 * reference_scale(rx)  # on the line it grows
    assert x_scale(turned, "pendulum") == pytest.approx(x_scale(rx, "pendulum"), rel=1e-12)
    assert x_scale(rx, "pendulum") == reference_scale(wrap_angle(rx)) < np.pi
    assert x_scale(rx, "duffing") == reference_scale(rx)
    off = statistics_per_trajectory(px + 0.25 + turned - rx, pv, turned, rv, t, angle=True)
    assert np.all(off["valid_time"] == t[1])  # 0.25 rad: past 0.1 of the circle's std, 0.18
    p = {"F0": np.full(3, 1.15), "omega": np.full(3, 2 / 3), "phase": np.zeros(3),
         "eta": np.full(3, 0.5)}
    data = Trajectories(t, turned, rv, forcing_from_params("cosine", p)(t), p,
                        {"system": "pendulum", "forcing": "cosine", "integrator": "rk4"})
    scales = []
    monkeypatch.setattr(trust, "valid_prediction_time",
                        lambda *a, **k: scales.append(a[4]) or np.zeros(3))
    data_trust_horizon(data)
    assert scales == [x_scale(turned, "pendulum")]


def test_an_angle_that_diverges_is_inf_on_the_circle_too():
    px, pv, rx, rv, t = _rotating_pendulum(n=3, t_end=20.0)
    px[1, 200:] = np.nan
    per = statistics_per_trajectory(px, pv, rx, rv, t, angle=True)
    for key in ("x2_max_rel_error", "x2_mean_rel_error", "w1_x", "spectrum_error_x"):
        assert per[key][1] == math.inf and np.all(np.isfinite(per[key][[0, 2]])), key
    summary = summarize_statistics(px, pv, rx, rv, t, angle=True)
    assert summary["w1_x"] == summary["x2_mean_rel_error"] == math.inf


def test_only_the_pendulums_x_is_an_angle():
    from odernn.data.systems import SYSTEMS, x_is_angle

    assert [name for name in SYSTEMS if x_is_angle(name)] == ["pendulum"]
    assert not x_is_angle("external")
