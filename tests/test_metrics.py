"""The metrics against hand computations on small arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from odernn.assess.metrics import (
    METRICS,
    divergence_steps,
    energy_balance_error,
    error_vs_time,
    first_tenth_stop,
    mark_diverged,
    nrmse,
    nrmse_per_trajectory,
    reference_scale,
    rmse,
    summarize,
    valid_prediction_time,
    valid_times,
)
from odernn.errors import DataError

T = np.array([0.0, 0.5, 1.0, 1.5])
REF = np.array([[0.0, 1.0, 2.0, 3.0], [0.0, -1.0, -2.0, -3.0]])
# Step 0 is wrong on purpose: it is given, so never counted.
PRED = np.array([[5.0, 1.0, 2.0, 4.0], [5.0, -1.0, -1.0, -3.0]])
STD = math.sqrt(14.0 / 3.0)  # std of [1, 2, 3, -1, -2, -3]


def test_scale_is_the_std_over_steps_1_to_end() -> None:
    assert reference_scale(REF) == pytest.approx(STD, rel=1e-14)


def test_rmse_and_nrmse_by_hand() -> None:
    # errors over steps 1..3: [0, 0, 1] and [0, 1, 0] -> mean square 1/3
    assert rmse(PRED, REF) == pytest.approx(math.sqrt(1.0 / 3.0), rel=1e-14)
    assert nrmse(PRED, REF) == pytest.approx(1.0 / math.sqrt(14.0), rel=1e-14)
    assert rmse(PRED, REF, start=0) == pytest.approx(math.sqrt(52.0 / 8.0), rel=1e-14)


def test_sub_horizon_keeps_the_full_scale() -> None:
    # steps 2..2 only: errors [0, 1] -> rmse sqrt(1/2), still divided by the std over 1..3
    assert rmse(PRED, REF, start=2, stop=3) == pytest.approx(math.sqrt(0.5), rel=1e-14)
    assert nrmse(PRED, REF, start=2, stop=3) == pytest.approx(math.sqrt(0.5) / STD, rel=1e-14)
    assert nrmse(PRED, REF, scale=2.0) == pytest.approx(math.sqrt(1.0 / 3.0) / 2.0, rel=1e-14)


def test_per_trajectory_nrmse() -> None:
    per = nrmse_per_trajectory(PRED, REF)
    np.testing.assert_allclose(per, [math.sqrt(1.0 / 3.0) / STD] * 2, rtol=1e-14, strict=True)
    exact_second = PRED.copy()  # rows of different errors: each row its own, in its place
    exact_second[1, 2] = REF[1, 2]
    np.testing.assert_allclose(nrmse_per_trajectory(exact_second, REF),
                               [math.sqrt(1.0 / 3.0) / STD, 0.0], rtol=1e-14, strict=True)


def test_valid_prediction_time_by_hand() -> None:
    # |error| / std exceeds 0.1 first at step 3 (trajectory 0) and step 2 (trajectory 1)
    np.testing.assert_array_equal(valid_prediction_time(PRED, REF, T), [1.5, 1.0])
    # a threshold never exceeded is censored at the horizon
    np.testing.assert_array_equal(valid_prediction_time(PRED, REF, T, threshold=1.0), [1.5, 1.5])
    # NaN counts as exceeded
    nan = PRED.copy()
    nan[0, 1] = np.nan
    assert valid_prediction_time(nan, REF, T)[0] == 0.5


def test_a_valid_time_is_censored_only_where_the_threshold_is_never_exceeded() -> None:
    """The horizon is a lower bound where the error never exceeds the threshold; a trajectory
    that exceeds it at the last step has the same time, measured, not censored."""
    last = REF.copy()
    last[0, -1] += 10.0
    times, censored = valid_times(last, REF, T)
    np.testing.assert_array_equal(times, [1.5, 1.5])
    np.testing.assert_array_equal(censored, [False, True])
    out = summarize(last, REF, REF, REF, T)
    assert out["valid_time_censored"] == 1
    assert summarize(PRED, PRED, REF, REF, T)["valid_time_censored"] == 0


def test_error_vs_time_quantiles() -> None:
    ref = np.zeros((10, 2))
    pred = np.zeros((10, 2))
    pred[:, 1] = np.arange(1.0, 11.0)
    pred[9, 1] = np.inf
    median, p90 = error_vs_time(pred, ref, scale=2.0)
    np.testing.assert_array_equal(median, [0.0, 2.75])  # (5 + 6) / 2 / 2
    np.testing.assert_array_equal(p90, [0.0, 4.5])  # 9th of 10 sorted values, / 2


def test_energy_balance_by_hand() -> None:
    # E = [0.5, 0.5]; power F v - eta v^2 = [0, 1.5]; trapezoid work 0.375 -> drift -0.375
    drift = energy_balance_error([[1.0, 0.0]], [[0.0, 1.0]], [[0.0, 2.0]], [0.5], [0.0, 0.5])
    np.testing.assert_allclose(drift, [0.375], rtol=1e-14)


def test_energy_balance_is_second_order_on_the_exact_solution() -> None:
    """Free oscillation x = cos t with eta = 0: energy is conserved, drift is 0 up to rounding;
    damped: the trapezoid's error shrinks 4x per halving of dt."""
    def drift(dt: float) -> float:
        t = np.arange(0.0, 10.0 + dt / 2, dt)
        eta = 0.4
        w = math.sqrt(1 - eta**2 / 4)
        x = np.exp(-eta * t / 2) * np.cos(w * t)
        v = np.exp(-eta * t / 2) * (-eta / 2 * np.cos(w * t) - w * np.sin(w * t))
        return float(energy_balance_error(x[None], v[None], np.zeros((1, t.size)), [eta], t)[0])

    assert drift(0.1) / drift(0.05) == pytest.approx(4.0, rel=0.02)
    t = np.linspace(0, 10, 201)
    assert energy_balance_error(np.cos(t)[None], -np.sin(t)[None], np.zeros((1, 201)), [0.0],
                                t)[0] < 1e-14


def test_divergence_steps_merge_reports_and_values() -> None:
    x = np.ones((3, 5))
    x[1, 3] = np.nan
    np.testing.assert_array_equal(divergence_steps(x), [-1, 3, -1])
    np.testing.assert_array_equal(divergence_steps(x, diverged_at=np.array([-1, 4, 2])), [-1, 3, 2])
    # a report earlier than the first non-finite value wins too
    earlier = divergence_steps(x, diverged_at=np.array([-1, 1, -1]))
    np.testing.assert_array_equal(earlier, [-1, 1, -1])
    marked = mark_diverged(x, np.array([-1, 3, 2]))
    assert np.isinf(marked[2, 2:]).all() and np.isfinite(marked[2, :2]).all()
    assert np.isfinite(marked[0]).all()


def test_first_tenth() -> None:
    assert first_tenth_stop(1001) == 101  # steps 1..100
    assert first_tenth_stop(4) == 2  # at least one step
    assert first_tenth_stop(1001, start=11) == 110


def test_summarize_counts_diverged_and_reports_inf() -> None:
    ref = np.vstack([REF, 2 * REF])
    pred = np.vstack([PRED, 2 * REF])
    diverged = np.array([-1, -1, -1, 2])
    out = summarize(pred, pred, ref, ref, T, diverged, F=np.ones_like(ref),
                    params={"eta": np.ones(4)})
    assert out["n_diverged"] == 1
    for key in ("nrmse_x", "rmse_v", "nrmse_v", "energy_balance"):
        assert math.isinf(out[key])
    # first tenth is step 1 only, before the divergence at step 2: finite
    assert out["nrmse_x_first_tenth"] == 0.0
    # per-trajectory NRMSEs: s, s, 0, inf with s = sqrt(1/3) / std -> median s
    scale = reference_scale(ref)
    assert out["median_nrmse_x"] == pytest.approx(math.sqrt(1.0 / 3.0) / scale, rel=1e-14)
    # docs/metrics.md: a median (numpy's, the mean of the middle two) is infinite once half are
    half = summarize(pred, pred, ref, ref, T, np.array([-1, -1, 2, 2]), F=np.ones_like(ref),
                     params={"eta": np.ones(4)})
    assert half["n_diverged"] == 2 and math.isinf(half["median_nrmse_x"])


def test_summarize_keys_are_documented_and_values_match_the_parts() -> None:
    F = np.ones_like(REF)
    out = summarize(PRED, PRED, REF, REF, T, F=F, params={"eta": [0.1, 0.2]})
    assert set(out) <= set(METRICS)
    assert out["nrmse_x"] == pytest.approx(1.0 / math.sqrt(14.0), rel=1e-14)
    assert out["valid_time_median"] == 1.25
    assert out["valid_time_p10"] == 1.0
    assert math.isfinite(out["energy_balance"]) and out["energy_balance"] > 0
    assert out["n_diverged"] == 0


def test_constant_reference_is_a_data_error() -> None:
    with pytest.raises(DataError, match="std"):
        nrmse(PRED, np.zeros_like(PRED))


def test_every_energy_is_zero_at_rest_and_its_balance_is_over_the_mean_energy() -> None:
    """The energy balance divides the drift's rms by the reference's mean energy, measured
    from zero or, where the energy goes negative (the double-well Duffing oscillator), from
    its least value; an energy with another zero would change every balance."""
    from odernn.data.systems import SYSTEMS

    zero = np.zeros(3)
    for name in ("oscillator", "duffing", "pendulum"):
        params = {k: np.full(3, 0.7) for k in SYSTEMS[name].names}
        assert np.all(SYSTEMS[name].energy(zero, zero, params) == 0), name
    t = np.linspace(0, 20, 801)
    x, v = 1.2 * np.cos(t)[None], -1.2 * np.sin(t)[None]  # an ellipse through both wells
    params = {"eta": [0.0], "alpha": [-1.0], "beta": [1.0]}
    F = np.zeros_like(x)
    metrics = summarize(x, v, x, v, t, F=F, params=params, system="duffing")
    p = {k: np.asarray(u).reshape(-1, 1) for k, u in params.items()}
    e = SYSTEMS["duffing"].energy(x[:, 1:], v[:, 1:], p)
    assert e.min() < 0
    drift = energy_balance_error(x, v, F, params, t, system="duffing")
    expected = math.sqrt(float(np.mean(np.square(drift)))) / float(np.mean(e - e.min()))
    assert metrics["energy_balance"] == pytest.approx(expected, rel=1e-12)


def test_valid_times_count_from_the_grids_first_time():
    """On a clock far from zero (Unix-epoch seconds) the valid time is the time since the
    first sample, as on a clock from zero (t itself gave 1.7e9 s)."""
    from odernn.assess.metrics import valid_times

    t = 0.05 * np.arange(200)
    ref = np.sin(t)[None].repeat(3, 0)
    pred = ref.copy()
    pred[0, 50:] += 1.0  # off from step 50; row 1 never; row 2 from step 120
    pred[2, 120:] -= 1.0
    from_zero = valid_times(pred, ref, t)
    far = valid_times(pred, ref, 1.7e9 + t)
    np.testing.assert_allclose(from_zero[0], [t[50], t[-1], t[120]])
    np.testing.assert_allclose(far[0], from_zero[0], atol=1e-6)
    np.testing.assert_array_equal(far[1], [False, True, False])
