"""Integrators against the truth: the exact solution (itself checked against the
ODE), convergence orders, SciPy agreement, bit-for-bit batch invariance, and
bad input rejected with a clear message."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.integrate

from odernn.data.exact import check_resonance, resonance_possible
from odernn.data.forcing import GridForcing, HarmonicForcing, SampledForcing
from odernn.data.integrators import INTEGRATORS, MIN_RTOL, Integrator, integrate, scipy_ivp
from odernn.data.spec import parse_spec
from odernn.data.stepping import rk4_step
from odernn.data.systems import Oscillator
from odernn.errors import OdernnError, SpecError

EPS = np.finfo(np.float64).eps
WITH_ORDER = [entry for entry in INTEGRATORS.values() if entry.order is not None]
SAMPLED_FORCING = [name for name, entry in INTEGRATORS.items() if entry.sampled_forcing]
# under-, nearly critically, critically and overdamped, plus the undamped case
ETAS = np.array([0.0, 0.3, 1.0, 2 - 1e-9, 2.0, 2 + 1e-9, 3.0, 5.0])


def harmonic(rng: np.random.Generator, n: int, k: int) -> HarmonicForcing:
    """K random sinusoids per trajectory: amplitudes [0, 1], frequencies [0.5, 2]."""
    return HarmonicForcing(
        rng.uniform(0, 1, (n, k)), rng.uniform(0.5, 2, (n, k)), rng.uniform(0, 2 * np.pi, (n, k))
    )


def family(name: str, rng: np.random.Generator, n: int) -> HarmonicForcing:
    return {"none": lambda: HarmonicForcing.none(n), "cosine": lambda: harmonic(rng, n, 1),
            "random": lambda: harmonic(rng, n, 3)}[name]()  # fmt: skip


def initial(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)


def max_error(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> float:
    return max(float(np.abs(p - q).max()) for p, q in zip(a, b, strict=True))


def mixed_system(rng: np.random.Generator) -> Oscillator:
    """Every damping regime, two harmonics, one undamped resonant harmonic."""
    forcing = harmonic(rng, ETAS.size, 2)
    forcing.omega[0, 1] = 1.0  # eta = 0 and omega = 1: exact resonance
    return Oscillator.linear(ETAS, forcing)


# ---------------------------------------------------------------- convergence


def test_the_table_is_consistent() -> None:
    """Every entry is filed under its name and described; a method with an order is a
    fixed-step one; the ones a spec may name include the reference."""
    for name, entry in INTEGRATORS.items():
        assert entry.name == name and entry.description
        assert entry.order is None or entry.order >= 1
    assert all(INTEGRATORS[name].order is not None for name in SAMPLED_FORCING)
    assert [name for name, entry in INTEGRATORS.items() if entry.closed_form] == ["exact"]
    assert INTEGRATORS["exact"].in_specs


STEPS = {1: (200, 400, 800, 1600), 2: (50, 100, 200, 400), 3: (50, 100, 200, 400),
         4: (50, 100, 200, 400)}
"""Steps over [0, 10] per order: fine enough to be asymptotic, coarse enough to stay above
rounding."""


@pytest.mark.parametrize("entry", WITH_ORDER, ids=lambda entry: entry.name)
@pytest.mark.parametrize("extra", [0, 1])
def test_convergence_order(entry: Integrator, extra: int) -> None:
    """The slope of log(max error against the exact solution) over log(dt) is the entry's
    stated order, on even and odd numbers of intervals, and on the odd points alone (which
    the 2 dt method fills by interpolation). Given only the samples, linear interpolation
    costs two orders; a cubic interpolant's O(dt^4) error enters each step times dt, so
    order 4 stays; RK4 at 2 dt needs no interpolation."""
    name, steps = entry.name, STEPS[entry.order]
    rng = np.random.default_rng(1)
    system = Oscillator.linear(rng.uniform(0.05, 0.5, 4), harmonic(rng, 4, 2))
    x0, v0 = initial(rng, 4)
    dts, errors, odd = [], [], []
    for n in steps:
        t = np.linspace(0.0, 10.0, n + 1 + extra)
        got = integrate(name, system, x0, v0, t)
        exact = integrate("exact", system, x0, v0, t)
        errors.append(max_error(got, exact))
        odd.append(max_error([u[:, 1::2] for u in got], [u[:, 1::2] for u in exact]))
        dts.append(t[1])
    for err in (errors, odd):
        slope = np.polyfit(np.log(dts), np.log(err), 1)[0]
        assert abs(slope - entry.order) < 0.2, (slope, err)


class PolynomialForcing:
    """``F(t) = sum_k c_k t^k`` per trajectory, ``coefficients (N, K)``: a test forcing that
    records every time it is asked about."""

    def __init__(self, coefficients: np.ndarray) -> None:
        self.coefficients = np.asarray(coefficients, dtype=np.float64)
        self.asked: list[np.ndarray] = []

    @property
    def n(self) -> int:
        return self.coefficients.shape[0]

    def __call__(self, t: np.ndarray) -> np.ndarray:
        self.asked.append(np.array(t))
        powers = np.asarray(t)[None, :, None] ** np.arange(self.coefficients.shape[1])
        return (self.coefficients[:, None, :] * powers).sum(-1)

    def take(self, index):
        return PolynomialForcing(self.coefficients[index])


@pytest.mark.parametrize("name", SAMPLED_FORCING)
def test_sampled_methods_ask_for_the_forcing_at_the_grid_only(name: str) -> None:
    rng = np.random.default_rng(13)
    forcing = PolynomialForcing(rng.uniform(-1, 1, (3, 4)))
    t = 0.05 * np.arange(37)
    integrate(name, Oscillator.linear(np.full(3, 0.3), forcing), *initial(rng, 3), t)
    assert len(forcing.asked) == 1
    np.testing.assert_array_equal(forcing.asked[0], t)


@pytest.mark.parametrize(("name", "degree"), [("rk4-sampled", 1), ("rk4-sampled-cubic", 3),
                                              ("rk4-sampled-spline", 3)])
@pytest.mark.parametrize("n_points", [2, 3, 4, 5, 60])
def test_sampled_methods_are_rk4_when_the_interpolant_is_exact(name: str, degree: int,
                                                                n_points: int) -> None:
    """For a forcing polynomial of the interpolant's degree (linear; cubic) the half-step
    values are exact: the method is RK4 with the exact forcing, on every grid length and
    at the ends, where the local cubic is one-sided."""
    rng = np.random.default_rng(14)
    degree = min(degree, n_points - 1)  # two samples fix a line, three a parabola
    system = Oscillator.linear(ETAS, PolynomialForcing(rng.uniform(-1, 1, (ETAS.size, degree + 1))))
    x0, v0 = initial(rng, ETAS.size)
    t = 0.3 + 0.1 * np.arange(n_points)
    got, want = integrate(name, system, x0, v0, t), integrate("rk4", system, x0, v0, t)
    assert max_error(got, want) < 1e-13


@pytest.mark.parametrize("name", ["rk4-sampled-cubic", "rk4-sampled-spline", "rk4-sampled-2dt"])
def test_sampled_methods_do_not_depend_on_the_clock_origin(name: str) -> None:
    """The same samples at Unix-epoch seconds (t ~ 1.7e9: t's own values carry 2e-7 s of
    rounding) give the same trajectories as from 0: the spline's knots were t's values, and
    its error 200 times larger there."""
    rng = np.random.default_rng(18)
    system = mixed_system(rng)
    x0, v0 = initial(rng, system.n)
    t = 0.05 * np.arange(400)
    epoch = 1.7e9 + t
    F = system.forcing(t).copy()
    here = integrate(name, system.with_forcing(SampledForcing(t, F)), x0, v0, t)
    there = integrate(name, system.with_forcing(SampledForcing(epoch, F)), x0, v0, epoch)
    assert max_error(there, here) < 1e-14


def test_rk4_sampled_is_rk4_on_the_linear_interpolant() -> None:
    rng = np.random.default_rng(15)
    system = mixed_system(rng)
    x0, v0 = initial(rng, system.n)
    t = 0.05 * np.arange(400)
    linear = system.with_forcing(SampledForcing(t, system.forcing(t)))
    assert max_error(integrate("rk4-sampled", system, x0, v0, t),
                     integrate("rk4", linear, x0, v0, t)) < 1e-13


@pytest.mark.parametrize("n_points", [3, 4, 5, 6, 401, 402])
def test_rk4_sampled_2dt_is_rk4_at_2dt_and_fills_the_odd_points(n_points: int) -> None:
    """Even points: RK4 at step 2 dt with the exact forcing at the start, midpoint and end
    (the samples F_i, F_i+1, F_i+2). Odd points (the last one with an odd number of
    intervals too): over a long horizon, as close to the exact solution as the even ones,
    within a small factor (their v takes the Hermite slope, which divides x's local
    error by 2 dt: the same order, a larger constant)."""
    rng = np.random.default_rng(16)
    system = mixed_system(rng)
    x0, v0 = initial(rng, system.n)
    t = 0.05 * np.arange(n_points)
    x, v = integrate("rk4-sampled-2dt", system, x0, v0, t)
    xe, ve = integrate("rk4", system, x0, v0, t[::2])
    assert max_error((x[:, ::2], v[:, ::2]), (xe, ve)) < 1e-13
    exact = integrate("exact", system, x0, v0, t)
    even = max_error((x[:, ::2], v[:, ::2]), [u[:, ::2] for u in exact])
    odd = max_error((x[:, 1::2], v[:, 1::2]), [u[:, 1::2] for u in exact])
    assert odd < (3 * even if n_points > 100 else 1e-3), (odd, even)


@pytest.mark.parametrize(("name", "low", "high"), [
    ("rk4-sampled", 30, np.inf),  # O(dt^2): far behind
    ("rk4-sampled-cubic", 0.9, 1.5),  # the interpolation adds little to RK4's own error
    ("rk4-sampled-spline", 0.9, 1.5),
    ("rk4-sampled-2dt", 12, 20),  # RK4 at twice the step: 2^4 times its error, plus the fill
])  # fmt: skip
def test_sampled_methods_against_rk4_with_the_exact_forcing(name: str, low: float,
                                                             high: float) -> None:
    """dt 0.05 and the train set's ranges: each method's max error against the exact
    solution, as a multiple of that of RK4 at dt with the forcing known everywhere."""
    rng = np.random.default_rng(17)
    n = 16
    forcing = HarmonicForcing(rng.uniform(0, 1, (n, 1)), rng.uniform(0.5, 2, (n, 1)),
                              np.zeros((n, 1)))  # fmt: skip
    system = Oscillator.linear(rng.uniform(0.05, 0.5, n), forcing)
    x0, v0 = initial(rng, n)
    t = 0.05 * np.arange(1000)
    exact = integrate("exact", system, x0, v0, t)
    ratio = (max_error(integrate(name, system, x0, v0, t), exact)
             / max_error(integrate("rk4", system, x0, v0, t), exact))
    assert low < ratio < high, ratio


def test_rk4_fed_sampled_forcing_is_second_order() -> None:
    """Linear interpolation of F_i at the half steps costs two orders."""
    rng = np.random.default_rng(2)
    system = Oscillator.linear(rng.uniform(0.05, 0.5, 4), harmonic(rng, 4, 2))
    x0, v0 = initial(rng, 4)
    dts, errors = [], []
    for n in (50, 100, 200, 400):
        t = np.linspace(0.0, 10.0, n + 1)
        sampled = system.with_forcing(SampledForcing(t, system.forcing(t)))
        got = integrate("rk4", sampled, x0, v0, t)
        errors.append(max_error(got, integrate("exact", system, x0, v0, t)))
        dts.append(t[1])
    slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert abs(slope - 2) < 0.2, (slope, errors)


@pytest.mark.parametrize("sampled", [False, True])
def test_rk4_equals_its_stages(sampled: bool) -> None:
    """The precomputed-coefficient loop is the classic four-stage RK4, step by step."""
    rng = np.random.default_rng(3)
    system = mixed_system(rng)
    t = np.linspace(0.0, 8.0, 161)
    if sampled:
        system = system.with_forcing(SampledForcing(t, system.forcing(t)))
    x0, v0 = initial(rng, system.n)
    x, v = integrate("rk4", system, x0, v0, t)
    dt = t[1]
    F, Fh = system.forcing(t), system.forcing(t[:-1] + dt / 2)
    xs, vs = [x0], [v0]
    for i in range(t.size - 1):
        step = rk4_step(system.acceleration, xs[-1], vs[-1], F[:, i], Fh[:, i], F[:, i + 1], dt)
        xs.append(step[0])
        vs.append(step[1])
    np.testing.assert_allclose(x, np.array(xs).T, rtol=0, atol=1e-12)
    np.testing.assert_allclose(v, np.array(vs).T, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- Euler as in the notes


def test_euler_is_the_notes_update_by_hand() -> None:
    eta, dt = [0.3, 1.7], 0.1
    forcing = HarmonicForcing(*np.array([[[0.8], [0.2]], [[1.3], [0.6]], [[0.1], [2.0]]]))
    t = dt * np.arange(4)
    F = forcing(t)
    x0, v0 = [0.5, -1.0], [0.25, 0.75]
    x, v = integrate("euler", Oscillator.linear(np.array(eta), forcing), x0, v0, t)
    for n in range(2):
        xs, vs = [x0[n]], [v0[n]]
        for i in range(3):
            vs.append(vs[i] + dt * (F[n, i] - eta[n] * vs[i] - xs[i]))
            xs.append(xs[i] + dt * vs[i])
        np.testing.assert_array_equal(x[n], xs)
        np.testing.assert_array_equal(v[n], vs)


def test_semi_implicit_euler_moves_x_with_the_new_velocity() -> None:
    rng = np.random.default_rng(4)
    system = mixed_system(rng)
    t = 0.05 * np.arange(50)
    x, v = integrate("semi-implicit-euler", system, *initial(rng, system.n), t)
    F, eta, dt = system.forcing(t), system.params["eta"][:, None], t[1]
    np.testing.assert_array_equal(v[:, 1:], v[:, :-1] + dt * (F[:, :-1] - eta * v[:, :-1]
                                                              - x[:, :-1]))
    np.testing.assert_array_equal(x[:, 1:], x[:, :-1] + dt * v[:, 1:])


def test_energy_forward_euler_grows_semi_implicit_does_not() -> None:
    """Free, undamped: forward Euler multiplies the energy by exactly 1 + dt^2 per step;
    the symplectic variant keeps it within O(dt) of its start over many periods."""
    system = Oscillator.linear(np.zeros(2), HarmonicForcing.none(2))
    t = 0.01 * np.arange(10_000)
    x0, v0 = np.array([1.0, 0.0]), np.array([0.0, 0.5])
    x, v = integrate("euler", system, x0, v0, t)
    energy = (x**2 + v**2) / 2
    np.testing.assert_allclose(energy[:, 1:] / energy[:, :-1], 1 + t[1] ** 2, rtol=1e-12)
    x, v = integrate("semi-implicit-euler", system, x0, v0, t)
    energy = (x**2 + v**2) / 2
    assert np.all(np.abs(energy / energy[:, :1] - 1) < 2 * t[1])


# ---------------------------------------------------------------- the exact solution


def fd_derivatives(x: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Fourth-order central differences: x' and x'' at the interior points 2..T-3."""
    d1 = (-x[:, 4:] + 8 * x[:, 3:-1] - 8 * x[:, 1:-3] + x[:, :-4]) / (12 * h)
    d2 = (-x[:, 4:] + 16 * x[:, 3:-1] - 30 * x[:, 2:-2] + 16 * x[:, 1:-3] - x[:, :-4]) / (
        12 * h * h
    )
    return d1, d2


@pytest.mark.parametrize("forcing", ["none", "cosine", "random"])
def test_exact_satisfies_the_ode_and_initial_state(forcing: str) -> None:
    rng = np.random.default_rng(5)
    system = Oscillator.linear(ETAS, family(forcing, rng, ETAS.size))
    x0, v0 = initial(rng, ETAS.size)
    t = 0.7 + 0.005 * np.arange(2401)  # t0 != 0 on purpose
    x, v = integrate("exact", system, x0, v0, t)
    scale = 1 + np.abs(x).max()
    np.testing.assert_allclose(x[:, 0], x0, rtol=0, atol=4 * EPS * scale)
    np.testing.assert_allclose(v[:, 0], v0, rtol=0, atol=4 * EPS * scale)
    d1, d2 = fd_derivatives(x, t[1] - t[0])
    residual = d2 + ETAS[:, None] * d1 + x[:, 2:-2] - system.forcing(t)[:, 2:-2]
    # FD truncation h^4 |x^(6)| / 90 <~ 1e-7 for the fastest mode (eta = 5), rounding ~1e-11
    assert np.abs(residual).max() < 1e-6 * scale
    assert np.abs(d1 - v[:, 2:-2]).max() < 1e-6 * scale


def extended_exact(system: Oscillator, x0: np.ndarray, v0: np.ndarray, t: np.ndarray):
    """The underdamped closed form evaluated directly in long double (an independent oracle)."""
    L = np.longdouble
    a, tt = system.params["eta"].astype(L)[:, None] / 2, t.astype(L)[None]
    w, A, p = (np.asarray(u).astype(L)[:, :, None] for u in
               (system.forcing.omega, system.forcing.amplitude, system.forcing.phase))
    re, im = 1 - w**2, 2 * a[:, :, None] * w
    gain, lag = A / np.sqrt(re**2 + im**2), np.arctan2(im, re)  # x_p = gain cos(w t + p - lag)
    xp = (gain * np.cos(w * tt[:, None] + p - lag)).sum(1)
    vp = (-w * gain * np.sin(w * tt[:, None] + p - lag)).sum(1)
    xh0, vh0 = x0.astype(L)[:, None] - xp[:, :1], v0.astype(L)[:, None] - vp[:, :1]
    wd, tau = np.sqrt(1 - a * a), tt - tt[:, :1]
    decay, c, s = np.exp(-a * tau), np.cos(wd * tau), np.sin(wd * tau) / wd
    return (decay * (c * xh0 + s * (vh0 + a * xh0)) + xp,
            decay * (c * vh0 - s * (xh0 + a * vh0)) + vp)


@pytest.mark.parametrize("uniform", [True, False])
def test_exact_matches_extended_precision(uniform: bool) -> None:
    if np.finfo(np.longdouble).eps > 1e-18:
        pytest.skip("needs an extended-precision long double")
    rng = np.random.default_rng(12)
    system = Oscillator.linear(rng.uniform(0.05, 1.9, 40), harmonic(rng, 40, 2))
    x0, v0 = initial(rng, 40)
    t = 0.3 + 0.05 * np.arange(1000) if uniform else np.cumsum(rng.uniform(0.02, 0.08, 1000))
    truth = extended_exact(system, x0, v0, t)
    scale = 1 + max(float(np.abs(u).max()) for u in truth)
    # the phases omega t carry a rounding of eps * omega * t in any float64 evaluation
    bound = 4 * EPS * (1 + system.forcing.omega.max() * t[-1]) * scale
    assert max_error(integrate("exact", system, x0, v0, t), truth) < bound


def test_exact_undamped_resonance_is_the_secular_solution() -> None:
    """x'' + x = A cos(t + p) from x = 0, v = A sin(p) / 2 is x = (A / 2) t sin(t + p)."""
    A, p = 0.6, 0.4
    system = Oscillator.linear(np.zeros(1), HarmonicForcing(*np.array([[[A]], [[1.0]], [[p]]])))
    t = 0.05 * np.arange(2000)
    x, v = integrate("exact", system, [0.0], [A * np.sin(p) / 2], t)
    np.testing.assert_allclose(x[0], A / 2 * t * np.sin(t + p), rtol=0, atol=1e-13)
    np.testing.assert_allclose(v[0], A / 2 * (np.sin(t + p) + t * np.cos(t + p)), rtol=0,
                               atol=1e-13)  # fmt: skip


@pytest.mark.parametrize(("eta", "omega", "accepted"), [
    (0.0, 1.0 + 2.0**-52, False),  # 1 ulp off the resonance: the cancellation would be O(1)
    (0.0, 1.0 + 1e-12, False), (1e-12, 1.0, False),
    (1e-4, 1.0, True), (0.0, 1.0 + 1e-4, True), (0.0, 1.0, True)])  # the last: secular
def test_exact_near_the_undamped_resonance_is_accurate_or_refused(eta, omega, accepted) -> None:
    """Free and forced parts cancel near eta = 0, |omega| = 1: the closed form's relative
    error grows as eps / |1 - omega^2 + i eta omega|, so it is refused where that exceeds
    1e-10, and within it agrees with a tight scipy solve."""
    forcing = HarmonicForcing(np.array([[1.0]]), np.array([[omega]]), np.array([[0.3]]))
    system = Oscillator.linear(np.array([eta]), forcing)
    t = 0.05 * np.arange(601)
    if not accepted:
        with pytest.raises(SpecError, match="from the undamped resonance.*use 'scipy' or 'rk4', "
                           "or the resonance itself: eta = 0 and omega = 1"):
            integrate("exact", system, [0.7], [-0.4], t)
        return
    x, _ = integrate("exact", system, [0.7], [-0.4], t)
    reference, _ = integrate("scipy", system, [0.7], [-0.4], t, rtol=1e-12, atol=1e-14)
    assert np.abs(x - reference).max() < 1e-10 * np.abs(reference).max()


def test_exact_is_continuous_across_critical_damping() -> None:
    eta = np.array([2 - 1e-9, 2.0, 2 + 1e-9])
    forcing = HarmonicForcing(np.full((3, 1), 0.7), np.full((3, 1), 1.3), np.full((3, 1), 0.2))
    t = 0.05 * np.arange(400)
    x, v = integrate("exact", Oscillator.linear(eta, forcing), np.full(3, 0.8), np.full(3, -0.4), t)
    for u in (x, v):
        assert np.abs(u[0] - u[1]).max() < 1e-7
        assert np.abs(u[2] - u[1]).max() < 1e-7


def test_exact_separable_form_matches_pointwise_evaluation() -> None:
    """A uniform grid takes the separable path, one extra irregular point the pointwise one."""
    rng = np.random.default_rng(6)
    system = mixed_system(rng)
    x0, v0 = initial(rng, system.n)
    t = 0.3 + 0.05 * np.arange(1000)
    separable = integrate("exact", system, x0, v0, t)
    pointwise = integrate("exact", system, x0, v0, np.append(t, t[-1] + 0.0123))
    scale = 1 + max(np.abs(u).max() for u in separable)
    # both carry the phase rounding eps * omega * t ~ 1e-14 at t = 50
    assert max_error(separable, [u[:, :-1] for u in pointwise]) < 2e-14 * scale


def test_exact_rejects_sampled_forcing() -> None:
    t = np.linspace(0, 1, 11)
    system = Oscillator.linear(np.ones(2), SampledForcing(t, np.zeros((2, 11))))
    with pytest.raises(SpecError, match="'exact' needs a harmonic forcing.*SampledForcing"):
        integrate("exact", system, np.zeros(2), np.zeros(2), t)


def test_harmonic_forcing_uniform_grid_is_accurate() -> None:
    """The separable evaluation of forcing(t) on a uniform grid is as accurate as np.cos."""
    if np.finfo(np.longdouble).eps > 1e-18:
        pytest.skip("needs an extended-precision long double")
    rng = np.random.default_rng(7)
    forcing = harmonic(rng, 20, 3)
    t = 0.05 * np.arange(1000)
    L = np.longdouble
    truth = sum(
        forcing.amplitude[:, k, None].astype(L)
        * np.cos(forcing.omega[:, k, None].astype(L) * t.astype(L) + forcing.phase[:, k, None])
        for k in range(3)
    )
    # rounding of the phases omega t + p: eps (1 + omega t) per unit amplitude
    bound = 2 * EPS * (1 + forcing.omega.max() * t[-1]) * forcing.amplitude.sum(1).max()
    fast, direct = forcing(t), forcing(np.append(t, 1e3))[:, :-1]
    assert float(np.abs(fast - truth).max()) < bound
    assert float(np.abs(direct - truth).max()) < bound


def test_a_grid_is_uniform_to_a_few_ulps_of_its_times_only() -> None:
    """The separable path needs ``t_i = t_0 + i dt`` to rounding; a grid one point of which
    is off by 1e-10 (a clock's jitter) is evaluated point by point, each cosine at its own
    time. A grid far from zero (t_0 = 1000), made as t_0 + i dt, is uniform: its step is the
    span over the intervals (t[1] - t[0] carries t_0's rounding, 1e-13, and its drift over
    10^5 points would fail the check)."""
    from odernn.data.forcing import uniform_step

    t = 1000.0 + 0.01 * np.arange(100_000)
    assert uniform_step(t) == (t[-1] - t[0]) / (t.size - 1)
    jittered = t.copy()
    jittered[5000] += 1e-10
    assert uniform_step(jittered) is None
    assert uniform_step(t[:1]) is None and uniform_step(np.full(3, 2.0)) is None
    forcing = harmonic(np.random.default_rng(9), 4, 2)
    pointwise = sum(forcing.amplitude[:, k, None] * np.cos(
        np.multiply.outer(forcing.omega[:, k], jittered[4990:5010]) + forcing.phase[:, k, None])
        for k in range(2))
    got = forcing(jittered)[:, 4990:5010]
    assert np.abs(got - pointwise).max() < 1e-15 * (1 + forcing.omega.max() * 1100) * 4


# ---------------------------------------------------------------- scipy


def test_scipy_default_agrees_with_exact_on_train_ranges() -> None:
    rng = np.random.default_rng(8)
    n = 32
    forcing = HarmonicForcing(rng.uniform(0, 1, (n, 1)), rng.uniform(0.5, 2, (n, 1)),
                              np.zeros((n, 1)))  # fmt: skip
    system = Oscillator.linear(rng.uniform(0.05, 0.5, n), forcing)
    x0, v0 = initial(rng, n)
    t = 0.05 * np.arange(1000)
    got = integrate("scipy", system, x0, v0, t)
    assert max_error(got, integrate("exact", system, x0, v0, t)) < 1e-8


def test_scipy_implicit_method_agrees_with_the_closed_form() -> None:
    """Radau, with odernn's sparse Jacobian, against the closed form (a wrong Jacobian would
    converge too: the next test checks the Jacobian itself)."""
    rng = np.random.default_rng(9)
    system = mixed_system(rng)
    x0, v0 = initial(rng, system.n)
    t = np.linspace(0, 10, 201)
    got = integrate("scipy", system, x0, v0, t, method="Radau", rtol=1e-8, atol=1e-10)
    assert max_error(got, integrate("exact", system, x0, v0, t)) < 1e-5


@pytest.mark.parametrize("name", ["oscillator", "duffing", "van-der-pol", "pendulum"])
def test_the_jacobian_handed_to_an_implicit_method_is_the_derivative_of_its_rhs(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong Jacobian still converges (Newton's iteration is only slowed), so it is compared
    with central differences of the right-hand side itself, at a random state."""
    from odernn.data.systems import SYSTEMS

    seen = {}

    def capture(fun, span, y0, **options):
        seen.update(fun=fun, jac=options["jac"], y0=y0)
        return SimpleNamespace(success=True, y=np.tile(y0[:, None], 5))

    monkeypatch.setattr(scipy.integrate, "solve_ivp", capture)
    rng = np.random.default_rng(3)
    n = 3
    params = {p.name: rng.uniform(0.2, 1.5, n) for p in SYSTEMS[name].parameters}
    system = Oscillator.of(name, params, harmonic(rng, n, 1))
    integrate("scipy", system, *initial(rng, n), np.linspace(0, 1, 5), method="Radau")
    y = rng.uniform(-1.5, 1.5, 2 * n)
    jac = seen["jac"] if not callable(seen["jac"]) else seen["jac"](0.3, y)
    h = 1e-6
    numeric = np.column_stack([(seen["fun"](0.3, y + h * e) - seen["fun"](0.3, y - h * e)) / (2 * h)
                               for e in np.eye(2 * n)])
    np.testing.assert_allclose(jac.toarray(), numeric, rtol=0, atol=1e-7)


def test_scipy_failure_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(*args: object, **kwargs: object) -> SimpleNamespace:
        return SimpleNamespace(success=False, status=-1, message="Required step size is too small")

    monkeypatch.setattr(scipy.integrate, "solve_ivp", failing)  # imported when called
    system = Oscillator.linear(np.ones(1), HarmonicForcing.none(1))
    with pytest.raises(OdernnError, match=r"solve_ivp \(DOP853.*failed: Required step size"):
        integrate("scipy", system, [1.0], [0.0], np.linspace(0, 1, 5))


# ---------------------------------------------------------------- contract


@pytest.mark.parametrize("name", list(INTEGRATORS))
def test_shapes_and_dtype(name: str) -> None:
    rng = np.random.default_rng(10)
    system = Oscillator.linear(rng.uniform(0.05, 0.5, 3), harmonic(rng, 3, 1))
    x, v = integrate(name, system, *initial(rng, 3), np.linspace(0, 2, 41))
    assert x.shape == v.shape == (3, 41)
    assert x.dtype == v.dtype == np.float64


BATCH_INDEPENDENT = [name for name, entry in INTEGRATORS.items() if entry.batch_independent]


@pytest.mark.parametrize(("name", "uniform"), [(n, True) for n in BATCH_INDEPENDENT]
                         + [("exact", False)])  # fmt: skip
def test_batch_invariance_bit_for_bit(name: str, uniform: bool) -> None:
    rng = np.random.default_rng(11)
    system = mixed_system(rng)
    x0, v0 = initial(rng, system.n)
    t = 0.05 * np.arange(300) if uniform else np.cumsum(rng.uniform(0.01, 0.1, 300))
    x, v = integrate(name, system, x0, v0, t)
    for part in ([3], slice(2, 7), [6, 0, 4]):
        xs, vs = integrate(name, system.take(part), x0[part], v0[part], t)
        np.testing.assert_array_equal(xs, x[part])
        np.testing.assert_array_equal(vs, v[part])


BAD_INPUT = [
    ("rk5", {}, {}, r"unknown integrator 'rk5' \(did you mean 'rk4'\?\); allowed: euler"),
    ("euler", {"t": np.array([0.0, 0.1, 0.3])}, {}, r"'euler' needs a uniform grid"),
    ("exact", {"t": np.array([0.0])}, {}, r"t must be a 1-D array of at least 2 times"),
    ("exact", {"t": np.array([0.0, 0.2, 0.2])}, {}, r"strictly increasing.*t\[2\] = 0.2"),
    ("rk4", {"x0": np.zeros(2)}, {}, r"x0 must have shape \(3,\).*got shape \(2,\)"),
    ("rk4", {"v0": np.zeros((3, 1))}, {}, r"v0 must have shape \(3,\)"),
    ("scipy", {}, {"rtl": 1e-6}, r"unknown option 'rtl'.*did you mean 'rtol'.*allowed: method"),
    ("euler", {}, {"rtol": 1e-6}, r"unknown option 'rtol' for integrator 'euler'.*no options"),
    ("scipy", {}, {"method": "LSODA"}, r"unknown method 'LSODA'; allowed: DOP853"),
    # a state that never reaches zero in the time: were atol = 0 let through, SciPy would
    # finish (and the test fail), not loop forever as it does from the zero state
    ("scipy", {"x0": np.ones(3), "v0": np.ones(3)}, {"atol": 0.0}, r"atol must be a number > 0"),
]


@pytest.mark.parametrize(("name", "inputs", "options", "message"), BAD_INPUT)
def test_bad_input_is_rejected(name: str, inputs: dict, options: dict, message: str) -> None:
    system = Oscillator.linear(np.ones(3), HarmonicForcing.none(3))
    args = {"x0": np.zeros(3), "v0": np.zeros(3), "t": np.linspace(0, 1, 11), **inputs}
    with pytest.raises(SpecError, match=message):
        integrate(name, system, args["x0"], args["v0"], args["t"], **options)


@pytest.mark.parametrize("name", [n for n, e in INTEGRATORS.items() if not e.sampled_forcing])
def test_a_precomputed_grid_forcing_changes_nothing(name: str) -> None:
    """Simulation hands the integrators the forcing already evaluated on the grid
    (GridForcing): every result is bit for bit the one from the harmonic forcing itself,
    and other times (RK4's half steps) still come from the harmonics."""
    rng = np.random.default_rng(5)
    t = 0.05 * np.arange(300)
    forcing = harmonic(rng, 12, 2)
    x0, v0 = initial(rng, 12)
    grid = GridForcing(forcing, t, forcing(t))
    np.testing.assert_array_equal(grid(t + 0.025), forcing(t + 0.025))
    np.testing.assert_array_equal(grid.take([3, 5])(t), forcing.take([3, 5])(t))
    eta = rng.uniform(0, 1, 12)
    same = integrate(name, Oscillator.linear(eta, grid), x0, v0, t)
    for a, b in zip(same, integrate(name, Oscillator.linear(eta, forcing), x0, v0, t),
                    strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["rk4", "rk4-sampled", "rk4-sampled-cubic"])
def test_a_grid_far_from_zero_is_stepped_at_its_own_step(name: str) -> None:
    """On t0 + i dt with t0 = 1e6, t[1] - t[0] is off by ulp(t0) ~ 1e-10: T steps of it would
    span the wrong time. The integrators step by the grid's mean step there, and make the same
    error as on the grid from 0 (the free oscillator: no forcing to evaluate far from 0)."""
    system = Oscillator.linear(np.array([0.1]), HarmonicForcing.none(1))
    grid = 0.01 * np.arange(20001)
    assert (1e6 + grid)[1] - 1e6 != 0.01  # the rounding this is about
    errors = []
    for t in (grid, 1e6 + grid):
        got = integrate(name, system, [0.7], [-0.4], t)
        want = integrate("exact", system, [0.7], [-0.4], t)
        errors.append(max_error(got, want))
    assert errors[1] < 1.5 * errors[0]


@pytest.mark.parametrize("name", SAMPLED_FORCING)
def test_which_sampled_methods_read_a_later_sample_than_a_surrogate_has(name: str) -> None:
    """A surrogate's closed loop has F_0 .. F_{k+1} when it gives x_{k+1}. The ``causal``
    entries, the same-information baselines, give x_0 .. x_{k+1} without any later sample
    (changed samples after F_{k+1} change nothing there); the others read F_{k+2} (the
    cubic, the 2 dt step) or every sample (the spline), and are reported, not baselines."""
    rng = np.random.default_rng(5)
    system = Oscillator.linear(rng.uniform(0.05, 0.5, 3), harmonic(rng, 3, 2))
    x0, v0 = initial(rng, 3)
    t = np.linspace(0.0, 6.0, 61)
    F = system.forcing(t)
    k = 30
    later = F.copy()
    later[:, k + 2:] += 1.0
    runs = [integrate(name, system.with_forcing(SampledForcing(t, f)), x0, v0, t)[0]
            for f in (F, later)]
    unchanged = np.array_equal(runs[0][:, :k + 2], runs[1][:, :k + 2])
    assert unchanged == INTEGRATORS[name].causal, name


def test_the_causal_rk4_steps_by_the_peers_half_step_forcing() -> None:
    """rk4-sampled-causal is RK4 with :func:`causal_midpoint` at every half step, to the last
    bit (a nonlinear system: stepped as :func:`rk4_step` writes it)."""
    from odernn.data.stepping import causal_midpoint

    rng = np.random.default_rng(6)
    system = Oscillator.of("duffing", {"eta": rng.uniform(0.1, 0.3, 4), "alpha": np.ones(4),
                                       "beta": rng.uniform(0.5, 1, 4)}, harmonic(rng, 4, 2))
    x0, v0 = initial(rng, 4)
    t = np.linspace(0.0, 4.0, 81)
    F = system.forcing(t)
    x, v = integrate("rk4-sampled-causal", system.with_forcing(SampledForcing(t, F)), x0, v0, t)
    xs, vs = [x0], [v0]
    for k in range(t.size - 1):
        step = rk4_step(system.acceleration, xs[-1], vs[-1], F[:, k], causal_midpoint(F, k),
                        F[:, k + 1], t[1])
        xs.append(step[0])
        vs.append(step[1])
    assert np.array_equal(x, np.array(xs).T) and np.array_equal(v, np.array(vs).T)


def test_scipy_refuses_an_rtol_below_its_floor():
    """``solve_ivp`` raises rtol < 100 eps to 100 eps with a warning: a caller asking for
    1e-20 got 2.2e-14 and believed otherwise."""
    system = Oscillator.linear(np.full(1, 0.3), HarmonicForcing.none(1))
    t = np.linspace(0.0, 1.0, 3)
    with pytest.raises(SpecError, match="rtol must be at least 100 eps = 2.220446049250313e-14"):
        scipy_ivp(system, np.zeros(1), np.ones(1), t, rtol=1e-20)
    scipy_ivp(system, np.zeros(1), np.ones(1), t, rtol=MIN_RTOL)  # the floor itself is taken


def test_scipy_refuses_a_problem_too_stiff_for_its_method_in_bounded_work():
    """Explicit DOP853 on ``eta = 10^9`` takes steps of about ``10^-9``: 20 output steps of
    0.05 would have taken about a day (an adversary's test set ran past any timeout). It is
    refused in one line once it has taken ``MAX_EVALUATIONS`` evaluations per output step
    reached, naming the remedy; an implicit method solves the same problem (against the
    closed form), and every built-in spec takes tens of evaluations per step."""
    from odernn.data import integrators

    system = Oscillator.linear(np.full(2, 1e9), HarmonicForcing(*(np.full((2, 1), 0.5),) * 3))
    x0, v0, t = np.array([0.3, -0.2]), np.array([0.7, 0.1]), 0.05 * np.arange(21)
    calls = []
    acceleration = system.acceleration
    system = SimpleNamespace(n=2, forcing=system.forcing, system=system.system,
                             params=system.params,
                             acceleration=lambda *a: calls.append(1) or acceleration(*a))
    with pytest.raises(OdernnError, match="evaluations per output step .* stiff .*Radau") as e:
        scipy_ivp(system, x0, v0, t, method="DOP853", rtol=1e-9, atol=1e-12)
    assert "\n" not in str(e.value)
    assert len(calls) <= 2 * integrators.MAX_EVALUATIONS
    x, _ = scipy_ivp(system, x0, v0, t, method="Radau", rtol=1e-9, atol=1e-12)
    exact, _ = integrate("exact", Oscillator.linear(np.full(2, 1e9), system.forcing), x0, v0, t)
    np.testing.assert_allclose(x, exact, rtol=1e-6)


@pytest.mark.parametrize("name", ["random-forcing", "duffing-chaos", "van-der-pol-train"])
def test_the_built_in_references_stay_far_below_the_stiffness_cap(name, monkeypatch):
    """The tightest built-in SciPy specs (rtol 1e-12, a chaotic Duffing, a van der Pol
    oscillator) take fewer than a hundredth of ``MAX_EVALUATIONS`` per output step."""
    from odernn.data import integrators
    from odernn.data.simulate import simulate_trajectories
    from odernn.data.spec import load_spec

    monkeypatch.setattr(integrators, "MAX_EVALUATIONS", integrators.MAX_EVALUATIONS // 100)
    spec = load_spec(name)
    simulate_trajectories(spec.with_overrides(n=8, n_steps=min(spec.n_steps, 1000)))


@pytest.mark.parametrize("eta", [10.0, 1e3, 1e6, 1e100, 3e154, 1e300])
def test_exact_overdamped_motion_keeps_every_digit(eta: float) -> None:
    """Once the fast mode has decayed, x and v follow the slow root r1 = -1 / (a + g) alone:
    ``x = c e^{r1 t}``, ``v = r1 x`` with ``c = (v0 + (a + g) x0) / (2 g)``, each computed
    without cancellation. ``v = E vh - S (xh + a vh)`` would lose eps a^2 of v there (all of
    it at eta = 1e8), and ``a^2 - 1`` overflows beyond eta = 2.7e154."""
    a = eta / 2
    g = a * np.sqrt((1 - 1 / a) * (1 + 1 / a))
    r1, r2, x0, v0 = -1 / (a + g), -(a + g), 0.3, 0.7
    t = np.linspace(0, 10, 201)
    tail = t * (a + g) > 60  # e^{-(a + g) t} < 1e-26 of the slow mode
    x, v = integrate("exact", Oscillator.linear(np.array([eta]), HarmonicForcing.none(1)),
                     [x0], [v0], t)
    slow = (v0 + (a + g) * x0) / (2 * g) * np.exp(r1 * t[tail])
    np.testing.assert_allclose(x[0, tail], slow, rtol=16 * EPS, atol=0)
    np.testing.assert_allclose(v[0, tail], r1 * slow, rtol=16 * EPS, atol=0)
    # and while the fast mode decays: v = r1 C1 e^{r1 t} + r2 C2 e^{r2 t}, exact to rounding
    # of its two terms (their difference may vanish: v crosses zero there)
    s = np.geomspace(1e-3, 60, 400) / (a + g)
    _, v = integrate("exact", Oscillator.linear(np.array([eta]), HarmonicForcing.none(1)),
                     [0.0], [1.0], np.append(0.0, s))
    terms = np.array([r1 * np.exp(r1 * s), -r2 * np.exp(r2 * s)]) / (2 * g)
    scale = np.abs(terms).sum(0)
    kept = scale > 1e-280  # beyond, v itself leaves float64's range
    assert np.all(np.abs(v[0, 1:] - terms.sum(0))[kept] <= 32 * EPS * scale[kept])


def test_exact_near_critical_damping_keeps_its_digits_for_any_initial_state() -> None:
    """Just above eta = 2 the expansion in E and S is kept (in S' and S, x's two terms of
    size t cancel where vh is near -xh: 3 times the bound below): compared with long double,
    within the ``eps a t`` that ``e^{-a t}`` itself carries."""
    if np.finfo(np.longdouble).eps > 1e-18:
        pytest.skip("needs an extended-precision long double")
    eta = 2 + 1e-9 * np.array([0.1, 1, 10, 1e3, 1e5])
    t = 0.1 * np.arange(6001)
    x, _ = integrate("exact", Oscillator.linear(eta, HarmonicForcing.none(5)), np.ones(5),
                     -np.ones(5), t)
    L = np.longdouble
    a = eta.astype(L)[:, None] / 2
    g = np.sqrt(a * a - 1)
    r1, r2, tt = -a + g, -a - g, t.astype(L)[None]
    truth = ((-1 - r2) * np.exp(r1 * tt) - (-1 - r1) * np.exp(r2 * tt)) / (r1 - r2)
    truth = truth.astype(float)
    assert np.all(np.abs(x - truth) <= (8 + 2 * t) * EPS * np.abs(truth))


def test_resonance_possible_is_true_wherever_a_draw_could_be_refused() -> None:
    """Boxes of eta and omega around the undamped resonance: where any point of a fine grid
    over the box (its corners and the best omega included) is refused by the closed form,
    the box is said to reach the resonance; a box said not to reach it has no such point."""
    from odernn.data.exact import check_resonance, resonance_possible

    rng = np.random.default_rng(8)
    said = []
    for _ in range(400):
        eta = np.sort(rng.choice([0.0, 1e-7, 2e-6, 1e-5, 0.3]) * rng.uniform(0, 2, 2))
        omega = np.sort(1 + rng.choice([1e-7, 1e-6, 1e-4, 0.5]) * rng.uniform(-1, 1, 2))
        etas, omegas = np.meshgrid(np.linspace(*eta, 9), np.append(np.linspace(*omega, 201),
                                   np.clip(np.sqrt(1 - eta[0] ** 2 / 2), *omega)))
        try:
            check_resonance(etas.ravel(), np.ones((1, etas.size)), omegas.ravel()[None])
            refused = False
        except SpecError:
            refused = True
        possible = resonance_possible(*eta, *omega)
        assert possible or not refused, (eta, omega)
        said.append((possible, refused))
    assert (True, True) in said and (False, False) in said and (True, False) in said
    assert not resonance_possible(0.0, 0.0, 1.0, 1.0)  # the resonance itself is exact
    assert not resonance_possible(3e154, 1e300, 0.5, 2.0)  # eta^2 overflowed: a traceback


def test_the_causal_midpoint_is_exact_for_the_polynomials_of_its_degree() -> None:
    """``F(t_k + dt / 2)`` from the samples up to ``F_{k+1}``: the mean at k = 0 (exact for a
    line), the quadratic through ``F_0 .. F_2`` at k = 1, the cubic through ``F_{k-2} ..
    F_{k+1}`` from k = 2 on."""
    from odernn.data.stepping import causal_midpoint

    i = np.arange(8.0)
    for degree, ks in ((1, [0]), (2, [1]), (3, range(2, 7))):
        F = np.stack([i**degree, 1 - 2 * i + 0.5 * i**degree])
        for k in ks:
            h = k + 0.5
            np.testing.assert_allclose(causal_midpoint(F, k), [h**degree, 1 - 2 * h
                                                               + 0.5 * h**degree], rtol=1e-14)


def _driven(n: int = 4, seed: int = 0):
    """``n`` damped oscillators under two random harmonics each, and their initial states."""
    rng = np.random.default_rng(seed)
    forcing = HarmonicForcing(rng.uniform(0, 1, (n, 2)), rng.uniform(0.5, 2, (n, 2)),
                              rng.uniform(0, 6, (n, 2)))
    return (Oscillator.linear(rng.uniform(0.05, 0.5, n), forcing), rng.uniform(-1, 1, n),
            rng.uniform(-1, 1, n))


def _farthest(a: tuple, b: tuple) -> float:
    return max(float(np.abs(p - q).max()) for p, q in zip(a, b, strict=True))


@pytest.mark.parametrize("t0", [5.0, -3.0])
def test_scipy_starts_at_the_grids_first_time(t0):
    """On a grid from t0 != 0 (imported data keep their clock) SciPy integrates from t0, and
    agrees with the closed form started there."""
    system, x0, v0 = _driven()
    t = t0 + np.linspace(0.0, 10.0, 201)
    assert _farthest(integrate("scipy", system, x0, v0, t),
                     integrate("exact", system, x0, v0, t)) < 1e-9


def test_scipy_by_default_is_the_specs_tight_reference():
    """The API's SciPy defaults are a spec's (DOP853, rtol 1e-12, atol 1e-14), and at them it
    stays within 1e-10 of the closed form over 200 time units."""
    params = inspect.signature(scipy_ivp).parameters
    spec = parse_spec("n = 1\nseed = 0\ndt = 0.1\nn_steps = 3\n[parameters]\neta = 0.1\n"
                      "x0 = 0.0\nv0 = 0.0\n")
    assert spec.integrator == {"name": "scipy", "method": "DOP853", "rtol": 1e-12, "atol": 1e-14}
    assert {k: params[k].default for k in ("method", "rtol", "atol")} == {
        k: spec.integrator[k] for k in ("method", "rtol", "atol")}
    system, x0, v0 = _driven(8, 3)
    t = 0.05 * np.arange(4001)
    assert _farthest(integrate("scipy", system, x0, v0, t),
                     integrate("exact", system, x0, v0, t)) < 1e-10


@pytest.mark.parametrize("name", [n for n, e in INTEGRATORS.items() if e.order is not None])
def test_every_fixed_step_method_steps_a_far_grid_by_its_own_step(name):
    """The free oscillator on ``1e6 + i dt`` as on ``i dt``: each fixed-step method steps by the
    grid's step, not by ``t[1] - t[0]`` (off by ulp(1e6), about 1e-8 of dt, there)."""
    system = Oscillator.linear(np.array([0.1]), HarmonicForcing.none(1))
    grid = 0.01 * np.arange(20001)
    assert _farthest(integrate(name, system, [0.7], [-0.4], grid),
                     integrate(name, system, [0.7], [-0.4], 1e6 + grid)) < 1e-9


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_times_and_states_are_refused(bad):
    system = Oscillator.linear(np.ones(3), HarmonicForcing.none(3))
    t = np.linspace(0, 1, 11)
    with pytest.raises(SpecError, match="t must be finite"):
        integrate("exact", system, np.zeros(3), np.zeros(3), np.append(t[:-1], bad))
    for name in ("rk4", "scipy"):
        with pytest.raises(SpecError, match="x0 must be finite"):
            integrate(name, system, np.array([0.0, bad, 0.0]), np.zeros(3), t)
        with pytest.raises(SpecError, match="v0 must be finite"):
            integrate(name, system, np.zeros(3), np.array([0.0, bad, 0.0]), t)


@pytest.mark.parametrize("name", ["euler", "rk4", "rk4-sampled-2dt"])
def test_a_grid_off_uniform_by_1e_7_of_a_step_is_refused(name):
    """Far above rounding: a fixed-step method would step by the wrong dt."""
    system = Oscillator.linear(np.ones(3), HarmonicForcing.none(3))
    t = np.linspace(0, 1, 11)
    t[5] += 1e-8
    with pytest.raises(SpecError, match="needs a uniform grid"):
        integrate(name, system, np.zeros(3), np.zeros(3), t)


def test_the_resonance_checks_look_at_what_can_resonate():
    """A box with eta in [0, 0.1] and omega fixed at 1 holds eta = 1e-12, refused by the
    closed form: it is said to reach the resonance (refused up front, not mid-simulation). A
    harmonic of amplitude 0 near the resonance cancels nothing: accepted, the free motion."""
    assert resonance_possible(0.0, 0.1, 1.0, 1.0)
    assert not resonance_possible(0.0, 0.0, 1.0, 1.0)
    omega = np.array([[1.0 + 1e-9]])
    check_resonance(np.zeros(1), np.zeros((1, 1)), omega)
    forcing = HarmonicForcing(np.zeros((1, 1)), omega, np.zeros((1, 1)))
    t = np.linspace(0, 10, 101)
    x, v = integrate("exact", Oscillator.linear(np.zeros(1), forcing), [1.0], [0.0], t)
    np.testing.assert_allclose(x[0], np.cos(t), atol=1e-14)
    np.testing.assert_allclose(v[0], -np.sin(t), atol=1e-14)


def test_the_undamped_resonance_on_a_grid_from_t0_agrees_with_scipy():
    """The secular term's phase is ``w t + p`` in absolute time, also where t[0] != 0."""
    forcing = HarmonicForcing(np.array([[0.7]]), np.array([[1.0]]), np.array([[0.4]]))
    system = Oscillator.linear(np.zeros(1), forcing)
    t = 3.0 + np.linspace(0.0, 20.0, 2001)
    assert _farthest(integrate("exact", system, [0.2], [-0.5], t),
                     integrate("scipy", system, [0.2], [-0.5], t)) < 1e-8


def test_sampled_forcing_holds_its_end_values_outside_its_grid():
    f = SampledForcing(np.array([0.0, 1.0, 2.0]), np.array([[0.0, 1.0, 3.0]]))
    np.testing.assert_array_equal(f(np.array([-1.0, 0.5, 2.5, 10.0])), [[0.0, 0.5, 3.0, 3.0]])
