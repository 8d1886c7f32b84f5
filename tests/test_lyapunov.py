"""The largest Lyapunov exponent (both methods) and the reference's trust horizon, against
known values: ``-eta/2`` for the damped linear oscillator, a positive exponent for a chaotic
Duffing setting and ``-eta/2`` again for a period-1 one (benchmarks/regimes.py's numbers)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from odernn.assess.lyapunov import METHODS, largest_lyapunov, lyapunov_exponents
from odernn.assess.trust import data_trust_horizon, trust_horizon
from odernn.data.forcing import HarmonicForcing
from odernn.data.simulate import simulate_trajectories
from odernn.data.spec import load_spec, parse_spec
from odernn.data.systems import Oscillator
from odernn.data.trajectories import Trajectories
from odernn.errors import DataError, SpecError

RNG = np.random.default_rng(1)
X0, V0 = RNG.uniform(-1, 1, 4), RNG.uniform(-1, 1, 4)


def duffing(alpha: float, n: int = 4, F0: float = 0.5, omega: float = 1.2) -> Oscillator:
    """``x'' + 0.3 x' + alpha x + x^3 = F0 cos(omega t)``: with alpha -1 (double well),
    F0 0.5 and omega 1.2 chaotic (regimes.py: exponent 0.11 from each of 4 initial states,
    stroboscopic period none); with alpha 1 (hardening) period 1."""
    forcing = HarmonicForcing(np.full((n, 1), F0), np.full((n, 1), omega), np.zeros((n, 1)))
    return Oscillator.of("duffing", {"eta": np.full(n, 0.3), "alpha": np.full(n, alpha),
                                     "beta": np.ones(n)}, forcing)


@pytest.mark.parametrize("method", METHODS)
def test_linear_oscillator_gives_minus_half_eta(method):
    """``x'' + eta x' + x = 0`` decays as ``exp(-eta t / 2)`` (underdamped): both methods
    reproduce the exponent to 1e-3. What is left is the bounded wobble of ``|w|`` within
    a damped period, divided by the measured time (here at most 7e-4 over seeds 0-4)."""
    eta = np.array([0.1, 0.5, 1.0, 1.5])
    osc = Oscillator.linear(eta, HarmonicForcing.none(4))
    est = largest_lyapunov(osc, np.ones(4), np.zeros(4), method=method, max_step=0.2,
                           n_transient=5, n_measure=200, replicas=1)
    np.testing.assert_allclose(est.exponent, -eta / 2, atol=1e-3)
    np.testing.assert_allclose(est.interval, 2 * math.pi)  # no forcing: the fixed interval
    assert np.all(est.converged)
    assert np.all(np.isnan(est.lyapunov_time))


@pytest.mark.parametrize("method", METHODS)
def test_a_separation_shrinking_past_rounding_within_an_interval_is_renormalised(method):
    """A slow drive and strong damping: over one drive period (omega 0.12, 52 time units)
    the separation shrinks by exp(-26), from d0 = 1e-8 to below x's rounding. Benettin's
    then measured rounding residue (7 % off at omega 0.15) and at last log 0 (NaN, read as
    "not converged"). It is now brought back to d0 within the interval (the variational
    tangent, of length 1, had no rounding to reach here). The exponent is -eta / 2 at
    every drive frequency."""
    eta, omega = np.full(3, 1.0), np.array([0.12, 0.15, 0.5])
    forcing = HarmonicForcing(np.full((3, 1), 0.3), omega[:, None], np.zeros((3, 1)))
    est = largest_lyapunov(Oscillator.linear(eta, forcing), np.full(3, 0.3), np.zeros(3),
                           method=method, max_step=0.05, n_transient=5, n_measure=20,
                           replicas=2)
    np.testing.assert_allclose(est.exponent, -eta / 2, atol=2e-3)
    assert np.all(est.converged)


@pytest.mark.parametrize("method", METHODS)
def test_a_tangent_shrinking_past_float64_within_an_interval_is_renormalised(method):
    """A drive of omega 0.002: one period (3142 time units) contracts by exp(-1571), past
    float64's smallest number. The variational tangent, rescaled only at the interval's
    end, stopped at 5e-324 and read -744 / tau (-0.237, "converged"); an unforced oscillator
    with an interval of 2000 read -0.372. It is now rescaled within the interval, as
    Benettin's separation is. The exponent is -eta / 2."""
    forcing = HarmonicForcing(np.array([[0.3], [0.0]]), np.array([[0.002], [1.0]]),
                              np.zeros((2, 1)))
    osc = Oscillator.linear(np.ones(2), forcing)
    options = dict(max_step=0.25, n_transient=1, n_measure=2, replicas=1)
    slow = largest_lyapunov(osc.take([0]), np.array([0.1]), np.zeros(1), method=method,
                            **options)
    long = largest_lyapunov(osc.take([1]), np.array([0.1]), np.zeros(1), method=method,
                            interval=2000.0, **options)
    np.testing.assert_allclose([slow.exponent[0], long.exponent[0]], -0.5, atol=1e-3)


def test_chaotic_duffing_is_positive_and_the_methods_agree():
    """Both methods give the same positive exponent (regimes.py: 0.11) within 5%; they step
    the same reference orbit, so they differ only in how the perturbation is carried."""
    osc = duffing(-1.0)
    options = dict(max_step=0.05, n_transient=20, n_measure=60, replicas=8)
    benettin = largest_lyapunov(osc, X0, V0, method="benettin", **options)
    variational = largest_lyapunov(osc, X0, V0, method="variational", **options)
    assert np.all((benettin.exponent > 0.08) & (benettin.exponent < 0.14))
    np.testing.assert_allclose(benettin.exponent, variational.exponent, rtol=0.05)
    np.testing.assert_allclose(benettin.interval, 2 * math.pi / 1.2)  # the forcing period
    assert np.all(benettin.step <= 0.05) and np.all(benettin.lyapunov_time > 0)


@pytest.mark.parametrize("method", METHODS)
def test_period_one_duffing_is_negative(method):
    """A stable period-1 response: the stroboscopic map contracts, at ``-eta/2`` here."""
    est = largest_lyapunov(duffing(1.0), X0, V0, method=method, max_step=0.05,
                           n_transient=20, n_measure=20, replicas=1)
    assert np.all(est.exponent < -0.1) and np.all(est.converged)
    np.testing.assert_allclose(est.exponent, -0.15, atol=0.01)


def test_estimates_are_deterministic_and_per_trajectory():
    """Same call, same numbers; a trajectory's estimate does not depend on its neighbours'
    parameters (here: a chaotic and a periodic one side by side)."""
    osc = Oscillator.of("duffing", {"eta": np.full(2, 0.3), "alpha": np.array([-1.0, 1.0]),
                                    "beta": np.ones(2)},
                        HarmonicForcing(np.full((2, 1), 0.5), np.full((2, 1), 1.2),
                                        np.zeros((2, 1))))
    options = dict(max_step=0.1, n_transient=10, n_measure=40, replicas=4)
    a = largest_lyapunov(osc, X0[:2], V0[:2], **options)
    events = []
    b = largest_lyapunov(osc, X0[:2], V0[:2], progress=events.append, **options)
    np.testing.assert_array_equal(a.exponent, b.exponent)
    assert a.exponent[0] > 0 > a.exponent[1]
    assert events[-1].stage == "done" and events[-2].done == events[-2].total == 50
    first = largest_lyapunov(osc.take(slice(0, 1)), X0[:1], V0[:1], **options)
    np.testing.assert_array_equal(first.exponent, a.exponent[:1])


def test_a_run_that_leaves_the_finite_numbers_gives_nan_alone():
    """RK4 at step 2 from x0 = 30 blows up on the cubic term: that trajectory's exponent is
    NaN (not converged), the other one's is unaffected."""
    osc = duffing(1.0, n=2)
    est = largest_lyapunov(osc, np.array([30.0, 0.5]), np.zeros(2), max_step=2.0,
                           n_transient=2, n_measure=4, replicas=1)
    assert np.isnan(est.exponent[0]) and np.isfinite(est.exponent[1])
    assert not est.converged[0]


@pytest.mark.parametrize(("options", "message"), [
    ({"max_step": 0.0}, "max_step must be a finite number > 0"),
    ({"max_step": -0.1}, "max_step must be a finite number > 0"),
    ({"max_step": math.nan}, "max_step must be a finite number > 0"),
    ({"n_measure": 1}, "n_measure must be an integer >= 2"),
    ({"n_measure": 0}, "n_measure must be an integer >= 2"),
    ({"n_measure": 10.5}, "n_measure must be an integer >= 2"),
    ({"n_transient": -1}, "n_transient must be an integer >= 0"),
    ({"replicas": 0}, "replicas must be an integer >= 1"),
    ({"interval": 0.0}, "interval must be a finite number > 0"),
    ({"d0": 0.0}, "d0 must be a finite number > 0"),
    ({"d0": 1e-2}, "d0 must be small"),
    ({"method": "benetin"}, "did you mean 'benettin'"),
])
def test_bad_settings_are_refused_in_one_line(options, message):
    with pytest.raises(SpecError, match=message) as info:
        largest_lyapunov(duffing(1.0), X0, V0, **{"max_step": 0.05, **options})
    assert "\n" not in str(info.value)


def test_bad_initial_states_are_refused():
    with pytest.raises(SpecError, match="x0 must be 4 finite values"):
        largest_lyapunov(duffing(1.0), X0[:3], V0, max_step=0.05)
    with pytest.raises(SpecError, match="v0 must be 4 finite values"):
        largest_lyapunov(duffing(1.0), X0, np.full(4, np.nan), max_step=0.05)


def small_chaos_set(n_steps: int = 200):
    text = load_spec("duffing-chaos").text.replace("n = 64", "n = 2")
    return simulate_trajectories(parse_spec(text.replace("n_steps = 1000",
                                                         f"n_steps = {n_steps}")))


def test_a_dataset_is_measured_from_its_initial_states_at_its_step():
    data = small_chaos_set()
    options = dict(n_transient=2, n_measure=4, replicas=2)
    est = lyapunov_exponents(data, **options)
    direct = largest_lyapunov(data.oscillator(), data.x[:, 0], data.v[:, 0], max_step=data.dt,
                              **options)
    np.testing.assert_array_equal(est.exponent, direct.exponent)
    assert np.all(est.step <= data.dt)
    with pytest.raises(DataError, match="series"):
        lyapunov_exponents(Trajectories(data.t, data.x))


def test_trust_horizon_of_chaotic_duffing_is_finite_and_of_the_expected_scale():
    """Two solutions that differ by about their tolerance ``delta`` separate by
    ``threshold * std`` after roughly ``ln(threshold std / delta) / lambda`` (loose check:
    within a factor 3). Tolerances 1e-8 and 1e-6 keep the test quick; the rule is the
    same at the defaults' 1e-12 and 1e-10."""
    osc = duffing(-1.0, n=2)
    t = np.arange(5001) * 0.05
    horizon = trust_horizon(osc, X0[:2], V0[:2], t, rtols=(1e-8, 1e-6), scale=0.88)
    assert np.all(horizon < t[-1])
    expected = math.log(0.1 * 0.88 / 1e-6) / 0.105  # lambda 0.105 (test above), std ~0.88
    assert np.all((horizon > expected / 3) & (horizon < 3 * expected))


def test_trust_horizon_compares_two_dop853_solutions_at_the_documented_tolerances(
        monkeypatch):
    """The two references are DOP853 at ``rtol`` 1e-12 and 1e-10, each with ``atol = rtol /
    100``, and the horizon is the valid time of the loose one against the tight one (the
    factor-3 check above accepts an atol 100 times too loose)."""
    from odernn.assess import trust
    from odernn.assess.metrics import valid_prediction_time

    calls, real = [], trust.integrate

    def spy(name, osc, x0, v0, t, **options):
        calls.append((name, options))
        return real(name, osc, x0, v0, t, **options)

    monkeypatch.setattr(trust, "integrate", spy)
    osc, t = duffing(-1.0, n=2), np.arange(401) * 0.05
    horizon = trust_horizon(osc, X0[:2], V0[:2], t, scale=0.5)
    assert calls == [("scipy", {"method": "DOP853", "rtol": 1e-12, "atol": 1e-14}),
                     ("scipy", {"method": "DOP853", "rtol": 1e-10, "atol": 1e-12})]
    x_tight, _ = real("scipy", osc, X0[:2], V0[:2], t, **calls[0][1])
    x_loose, _ = real("scipy", osc, X0[:2], V0[:2], t, **calls[1][1])
    np.testing.assert_array_equal(
        horizon, valid_prediction_time(x_loose, x_tight, t, 0.1, 0.5, start=1))


def test_trust_horizon_of_periodic_motion_is_the_whole_horizon():
    t = np.arange(2001) * 0.05
    horizon = trust_horizon(duffing(1.0, n=2), X0[:2], V0[:2], t)
    np.testing.assert_array_equal(horizon, t[-1])
    with pytest.raises(SpecError, match="threshold must be a finite number > 0"):
        trust_horizon(duffing(1.0, n=2), X0[:2], V0[:2], t, threshold=0.0)
    with pytest.raises(SpecError, match="rtols must be two different tolerances"):
        trust_horizon(duffing(1.0, n=2), X0[:2], V0[:2], t, rtols=(1e-10, 1e-10))
    with pytest.raises(SpecError, match=r"in \[100 eps, 1\)"):  # SciPy would raise 1e-15
        trust_horizon(duffing(1.0, n=2), X0[:2], V0[:2], t, rtols=(1e-15, 1e-10))


def test_trust_horizon_of_a_short_dataset_is_censored_at_its_end():
    data = small_chaos_set(100)
    np.testing.assert_array_equal(data_trust_horizon(data), data.t[-1] - data.t[0])


def imported(data: Trajectories, shift: float = 0.0) -> Trajectories:
    """``data`` as ``odernn import`` stores it: the forcing as samples, the grid from the
    first trajectory's start time (here shifted by ``shift``)."""
    from dataclasses import replace

    return replace(data, t=data.t + shift, attrs={**data.attrs, "forcing": "samples"})


def test_chaos_imported_with_its_forcing_as_samples_is_measured_within_them():
    """The samples are known over the data's span only: the run fits its intervals in it.
    Before, it ran its 150 intervals of 2 pi (942 time units) over 50 time units of samples,
    the last value held after them, and measured a damped Duffing under a constant force
    (about -eta/2 = -0.15, every trajectory "not chaotic")."""
    data = simulate_trajectories(load_spec("duffing-chaos")).take(slice(0, 8))
    cosine = lyapunov_exponents(data)
    samples = lyapunov_exponents(imported(data))
    span = data.t[-1] - data.t[0]
    np.testing.assert_allclose(samples.interval * (samples.n_transient + samples.n_measure),
                               span)
    assert np.all(samples.exponent > 0.01)  # chaotic, as under the cosine
    assert abs(np.median(samples.exponent) - np.median(cosine.exponent)) < 0.03
    with pytest.raises(SpecError, match="known as samples up to 49.95 time units"):
        lyapunov_exponents(imported(data), interval=1.0)  # 150 time units


def test_the_run_starts_at_the_grids_first_time():
    """Imported data start where the source did (t0, not 0): the same forcing samples on a
    grid shifted by 7 give the same exponents, to the rounding of the shifted times."""
    data = small_chaos_set(400)
    options = dict(n_transient=4, n_measure=8, replicas=2)
    at_zero = lyapunov_exponents(imported(data), **options)
    shifted = lyapunov_exponents(imported(data, 7.0), **options)
    np.testing.assert_allclose(shifted.exponent, at_zero.exponent, rtol=1e-6)
    # a cosine from t0 = 1.3 is the cosine of phase 1.2 x 1.3 from 0
    options = dict(max_step=0.05, n_transient=2, n_measure=4, replicas=1)
    later = largest_lyapunov(duffing(-1.0), X0, V0, t0=1.3, **options)
    ahead = duffing(-1.0)
    ahead = Oscillator.of("duffing", ahead.params, HarmonicForcing(
        ahead.forcing.amplitude, ahead.forcing.omega, np.full((4, 1), 1.2 * 1.3)))
    np.testing.assert_allclose(later.exponent, largest_lyapunov(ahead, X0, V0, **options)
                               .exponent, rtol=1e-6)


@pytest.mark.parametrize("replicas", [1, 3])
@pytest.mark.parametrize("n_measure", [5, 6])
def test_the_halves_are_rates_over_their_own_intervals(n_measure, replicas):
    """The exponent is the growth over all measured intervals; each half's rate over its own
    ``n_measure // 2`` and ``n_measure - n_measure // 2`` intervals (unequal when odd) and
    every replica, so that the exponent is their interval-weighted mean and each half is
    ``-eta/2`` on the damped linear oscillator, as the exponent is."""
    eta = np.array([0.3, 0.8])
    osc = Oscillator.linear(eta, HarmonicForcing.none(2))
    est = largest_lyapunov(osc, np.ones(2), np.zeros(2), max_step=0.2, n_transient=2,
                           n_measure=n_measure, replicas=replicas)
    first, second = n_measure // 2, n_measure - n_measure // 2
    np.testing.assert_allclose(est.exponent * n_measure,
                               est.first_half * first + est.second_half * second, rtol=1e-12)
    for rate in (est.exponent, est.first_half, est.second_half):
        np.testing.assert_allclose(rate, -eta / 2, atol=0.05)


@pytest.mark.parametrize("system", ["duffing", "van-der-pol", "pendulum"])
def test_the_variational_step_is_the_derivative_of_the_rk4_map(system):
    """One step of the tangent equals a central difference of the reference's RK4 map along
    it (to 1e-7 at step 0.3, large amplitudes: a tangent stepped with ``J`` at the wrong
    stage states misses by more than 1e-3 here)."""
    from odernn.assess.lyapunov import _rk4, _variational
    from odernn.data.systems import SYSTEMS

    n, rng = 5, np.random.default_rng(3)
    params = {q.name: np.full(n, min(max(0.7, q.low), q.high))
              for q in SYSTEMS[system].parameters}
    forcing = HarmonicForcing(np.full((n, 1), 0.8), np.full((n, 1), 1.3), np.zeros((n, 1)))
    osc = Oscillator.of(system, params, forcing)
    x, v = rng.uniform(-2.0, 2.0, n), rng.uniform(-2.0, 2.0, n)
    angle = rng.uniform(0.0, 2 * np.pi, n)
    w = np.stack([np.cos(angle), np.sin(angle)])
    step = 0.3
    h = (step / 2, step, step / 6)
    F = forcing(np.array([0.0, step / 2, step]))  # (N, 3)
    table = lambda p: F.T  # noqa: E731 - one interval of one step
    growth = next(_variational(osc, x, v, w[:, None], h, 1, table, 1, 1e-8))[0]
    eps = 1e-6
    plus = _rk4(osc.acceleration, x + eps * w[0], v + eps * w[1], *F.T, h)
    minus = _rk4(osc.acceleration, x - eps * w[0], v - eps * w[1], *F.T, h)
    derivative = np.hypot(plus[0] - minus[0], plus[1] - minus[1]) / (2 * eps)
    np.testing.assert_allclose(growth, np.log(derivative), atol=1e-7)
