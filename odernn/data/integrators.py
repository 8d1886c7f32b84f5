"""Integrators for the damped, driven oscillator, vectorised over trajectories.

One calling convention for all, found by name in :data:`INTEGRATORS`::

    fn(system, x0 (N,), v0 (N,), t (T,), **options) -> (x (N, T), v (N, T))

:func:`integrate` validates the input once and dispatches; the functions
themselves trust their input. Python loops run over time steps only, on
time-major ``(T, N)`` buffers so that each step touches contiguous rows. All
results are float64; those of the fixed-step methods and ``exact`` are
transposed views of such buffers (F-contiguous).

Each trajectory's result from the fixed-step methods and from ``exact``
depends only on its own parameters: alone or in any batch it is the same to the
last bit. ``scipy`` solves the whole batch as one system, so its adaptive steps
(and last digits) depend on the batch.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Real

import numpy as np
from scipy import sparse
from scipy.integrate import solve_ivp
from scipy.interpolate import CubicSpline

from odernn.checks import did_you_mean
from odernn.data.systems import HarmonicForcing, Oscillator, uniform_step
from odernn.errors import OdernnError, SpecError
from odernn.types import Array

Integrator = Callable[..., tuple[Array, Array]]


# ---------------------------------------------------------------- fixed step


def _start(system: Oscillator, x0: Array, v0: Array, t: Array) -> tuple[Array, ...]:
    """``eta (N,)``, ``F (T, N)`` and time-major buffers ``x, v (T, N)`` from ``(x0, v0)``."""
    x = np.empty((t.size, system.n))
    v = np.empty_like(x)
    x[0], v[0] = x0, v0
    F = np.ascontiguousarray(system.forcing(t).T)
    return np.asarray(system.eta, dtype=np.float64), F, x, v


def _euler(
    system: Oscillator, x0: Array, v0: Array, t: Array, *, semi_implicit: bool
) -> tuple[Array, Array]:
    eta, F, x, v = _start(system, x0, v0, t)
    dt = t[1] - t[0]
    a = np.empty(system.n)
    for i in range(t.size - 1):
        # v_{i+1} = v_i + dt (F_i - eta v_i - x_i), in place but in the order written,
        # so the result is the equation's to the last bit
        np.multiply(eta, v[i], out=a)
        np.subtract(F[i], a, out=a)
        a -= x[i]
        a *= dt
        np.add(v[i], a, out=v[i + 1])
        # x_{i+1} = x_i + dt v_i (forward) or x_i + dt v_{i+1} (semi-implicit)
        np.multiply(v[i + 1] if semi_implicit else v[i], dt, out=x[i + 1])
        x[i + 1] += x[i]
    return x.T, v.T


def euler(system: Oscillator, x0: Array, v0: Array, t: Array) -> tuple[Array, Array]:
    """Forward Euler exactly as in the notes: ``v_{i+1} = v_i + dt (F_i - eta v_i - x_i)``,
    ``x_{i+1} = x_i + dt v_i``, with ``F_i = F(t_i)`` and ``dt = t[1] - t[0]``. Order 1."""
    return _euler(system, x0, v0, t, semi_implicit=False)


def semi_implicit_euler(
    system: Oscillator, x0: Array, v0: Array, t: Array
) -> tuple[Array, Array]:
    """Semi-implicit (symplectic) Euler: ``v_{i+1}`` as in :func:`euler`, then
    ``x_{i+1} = x_i + dt v_{i+1}``. Order 1, but no energy drift when ``eta = F = 0``."""
    return _euler(system, x0, v0, t, semi_implicit=True)


def rk4_step(
    x: Array, v: Array, F0: Array, Fh: Array, F1: Array, eta: Array, dt: float
) -> tuple[Array, Array]:
    """One classic RK4 step of ``x' = v, v' = F - eta v - x`` with the forcing
    at ``t``, ``t + dt/2`` and ``t + dt``; returns ``(x, v)`` at ``t + dt``."""

    def accel(x: Array, v: Array, F: Array) -> Array:
        return F - eta * v - x

    k1x, k1v = v, accel(x, v, F0)
    k2x, k2v = v + dt / 2 * k1v, accel(x + dt / 2 * k1x, v + dt / 2 * k1v, Fh)
    k3x, k3v = v + dt / 2 * k2v, accel(x + dt / 2 * k2x, v + dt / 2 * k2v, Fh)
    k4x, k4v = v + dt * k3v, accel(x + dt * k3x, v + dt * k3v, F1)
    return (
        x + dt / 6 * (k1x + 2 * k2x + 2 * k3x + k4x),
        v + dt / 6 * (k1v + 2 * k2v + 2 * k3v + k4v),
    )


def _rk4_coefficients(eta: Array, dt: float) -> tuple[Array, Array]:
    """Per-trajectory coefficients ``cx, cv (5, N)`` of one RK4 step of size ``dt``.

    The oscillator is linear, so a step is linear in its five inputs
    ``(x_i, v_i, F_i, F_{i+1/2}, F_{i+1})``: :func:`rk4_step` applied once to unit
    inputs gives them, and every step is then ``x_{i+1} = sum_q cx_q u_q``
    (likewise v), the same RK4 up to rounding in half the array operations.
    """
    unit = np.eye(5)[:, :, None] * np.ones(eta.size)
    return rk4_step(*unit, eta=eta, dt=dt)


def _rk4_advance(x: Array, v: Array, inputs: tuple[Array, ...], cx: Array, cv: Array,
                 tmp: Array) -> None:
    """``x, v (N,)`` in place from ``inputs = (x_i, v_i, F_0, F_half, F_1)`` (see
    :func:`_rk4_coefficients`); F_1 enters through k4v only, so x needs four inputs."""
    for out, c, n_inputs in ((x, cx, 4), (v, cv, 5)):
        np.multiply(c[0], inputs[0], out=out)
        for q in range(1, n_inputs):
            np.multiply(c[q], inputs[q], out=tmp)
            out += tmp


def _rk4_march(eta: Array, F: Array, Fh: Array, x: Array, v: Array, dt: float) -> None:
    """RK4 over a uniform grid on time-major buffers: row ``i + 1`` of ``x, v (T, N)``
    from row ``i``, forcing ``F (T, N)`` at the grid and ``Fh (T - 1, N)`` at half steps."""
    cx, cv = _rk4_coefficients(eta, dt)
    tmp = np.empty(eta.size)
    for i in range(x.shape[0] - 1):
        _rk4_advance(x[i + 1], v[i + 1], (x[i], v[i], F[i], Fh[i], F[i + 1]), cx, cv, tmp)


def rk4(system: Oscillator, x0: Array, v0: Array, t: Array) -> tuple[Array, Array]:
    """Classic RK4 (:func:`rk4_step`), the forcing evaluated by ``system.forcing``
    at the grid and at the half steps (exact for a harmonic forcing; linear
    interpolation of the samples for a :class:`~odernn.data.systems.SampledForcing`).
    Order 4. Each step is a precomputed linear map (:func:`_rk4_coefficients`)."""
    eta, F, x, v = _start(system, x0, v0, t)
    dt = t[1] - t[0]
    Fh = np.ascontiguousarray(system.forcing(t[:-1] + dt / 2).T)
    _rk4_march(eta, F, Fh, x, v, dt)
    return x.T, v.T


# ---------------------------------------------------------------- given only the samples
#
# The methods below call ``system.forcing`` once, at the grid ``t`` itself: they see only
# the samples ``F_i = F(t_i)``, exactly the information a surrogate gets.


def _midpoint_weights(nodes: Sequence[int]) -> Array:
    """Lagrange weights at ``1/2`` of the polynomial through the integer ``nodes``
    (e.g. ``(-1, 0, 1, 2)``: ``(-1, 9, 9, -1) / 16``)."""
    z = np.asarray(nodes, dtype=np.float64)
    return np.array([np.prod([(0.5 - z[m]) / (z[k] - z[m]) for m in range(z.size) if m != k])
                     for k in range(z.size)])


def _half_step_forcing(F: Array, degree: int) -> Array:
    """``F`` at the half steps ``(T - 1, N)`` from the samples ``F (T, N)`` by the local
    polynomial of ``degree`` through the ``degree + 1`` nearest samples: centred in the
    interior, one-sided at the ends (lower degree when ``T`` has fewer samples)."""
    T = F.shape[0]
    n_nodes = min(degree + 1, T)
    shift = (n_nodes - 1) // 2  # interval i uses the samples i - shift .. i - shift + n_nodes - 1
    Fh = np.empty((T - 1, F.shape[1]))
    lo, hi = shift, min(T - n_nodes + shift + 1, T - 1)  # intervals with a centred stencil
    if hi > lo:  # one weighted sum of shifted slices for the interior
        w = _midpoint_weights(range(-shift, n_nodes - shift))
        Fh[lo:hi] = sum(w[k] * F[lo - shift + k : hi - shift + k] for k in range(n_nodes))
    for i in (*range(lo), *range(max(hi, lo), T - 1)):  # the few intervals near the ends
        first = min(max(i - shift, 0), T - n_nodes)
        w = _midpoint_weights(range(first - i, first - i + n_nodes))
        Fh[i] = sum(w[k] * F[first + k] for k in range(n_nodes))
    return Fh


def rk4_sampled(system: Oscillator, x0: Array, v0: Array, t: Array) -> tuple[Array, Array]:
    """RK4 at step ``dt`` given only the samples, ``F`` at the half steps the linear
    interpolation ``(F_i + F_{i+1}) / 2``. Its ``O(dt^2)`` interpolation error enters
    every step: order 2."""
    eta, F, x, v = _start(system, x0, v0, t)
    _rk4_march(eta, F, _half_step_forcing(F, 1), x, v, t[1] - t[0])
    return x.T, v.T


def rk4_sampled_cubic(
    system: Oscillator, x0: Array, v0: Array, t: Array
) -> tuple[Array, Array]:
    """RK4 at step ``dt`` given only the samples, ``F`` at the half steps from the local
    cubic through four samples, ``(-F_{i-1} + 9 F_i + 9 F_{i+1} - F_{i+2}) / 16``
    (one-sided at the ends). The interpolation error ``O(dt^4)`` enters each step times
    ``dt``: order 4."""
    eta, F, x, v = _start(system, x0, v0, t)
    _rk4_march(eta, F, _half_step_forcing(F, 3), x, v, t[1] - t[0])
    return x.T, v.T


def rk4_sampled_spline(
    system: Oscillator, x0: Array, v0: Array, t: Array
) -> tuple[Array, Array]:
    """RK4 at step ``dt`` given only the samples, ``F`` at the half steps from the
    not-a-knot cubic spline through all samples (``scipy.interpolate.CubicSpline``, one
    spline per trajectory). Interpolation error ``O(dt^4)`` as for the local cubic but
    with a smaller constant: order 4."""
    eta, F, x, v = _start(system, x0, v0, t)
    dt = t[1] - t[0]
    Fh = np.ascontiguousarray(CubicSpline(t, F, axis=0)(t[:-1] + dt / 2))
    _rk4_march(eta, F, Fh, x, v, dt)
    return x.T, v.T


def rk4_sampled_2dt(
    system: Oscillator, x0: Array, v0: Array, t: Array
) -> tuple[Array, Array]:
    """RK4 at step ``2 dt`` on the samples, which it needs no interpolation for:
    ``F_i, F_{i+1}, F_{i+2}`` are the start, midpoint and end values of the step from
    ``t_i`` to ``t_{i+2}``. Order 4.

    The points in between (odd ``i``) are filled by the quintic Hermite interpolant of
    ``x`` through ``(x, v, a)`` at both ends of the step (``a = F - eta v - x``, known
    from the samples): at the midpoint its value and slope (``v``) are ``O(dt^6)``
    accurate, so filling keeps order 4. With an odd number of intervals the last point
    is one more ``2 dt`` step from ``t_{T-3}``; a grid of a single interval falls back
    to :func:`rk4_sampled` (two samples allow no more).
    """
    T = t.size
    if T == 2:
        return rk4_sampled(system, x0, v0, t)
    eta, F, x, v = _start(system, x0, v0, t)
    dt = t[1] - t[0]
    H = 2 * dt
    cx, cv = _rk4_coefficients(eta, H)
    tmp = np.empty(system.n)
    for i in range(0, T - 2, 2):
        _rk4_advance(x[i + 2], v[i + 2], (x[i], v[i], F[i], F[i + 1], F[i + 2]), cx, cv, tmp)
    # quintic Hermite at the midpoints of the 2 dt steps, all at once
    last = (T - 1) // 2 * 2  # the last even index
    left, right = slice(0, last - 1, 2), slice(2, last + 1, 2)
    xl, vl, xr, vr = x[left], v[left], x[right], v[right]
    al, ar = F[left] - eta * vl - xl, F[right] - eta * vr - xr
    x[1:last:2] = (xl + xr) / 2 + (5 * H / 32) * (vl - vr) + (H * H / 64) * (al + ar)
    v[1:last:2] = (15 / (8 * H)) * (xr - xl) - (7 / 16) * (vl + vr) + (H / 32) * (ar - al)
    if T % 2 == 0:  # an odd number of intervals: the last point from t_{T-3}
        j = T - 3
        _rk4_advance(x[T - 1], v[T - 1], (x[j], v[j], F[j], F[j + 1], F[j + 2]), cx, cv, tmp)
    return x.T, v.T


# ---------------------------------------------------------------- scipy

SCIPY_METHODS = ("DOP853", "RK45", "RK23", "Radau", "BDF")
"""``solve_ivp`` methods allowed (the implicit ones get the sparse Jacobian)."""


def scipy_ivp(
    system: Oscillator,
    x0: Array,
    v0: Array,
    t: Array,
    *,
    method: str = "DOP853",
    rtol: float = 1e-12,
    atol: float = 1e-14,
) -> tuple[Array, Array]:
    """``scipy.integrate.solve_ivp`` on the stacked system ``y = (x_1..x_N, v_1..v_N)``:
    one call for the whole batch, output at ``t_eval = t``.

    Its error norm is the RMS over all 2N components, so an outlier trajectory
    is held to a tolerance up to ``sqrt(2N)`` looser than when solved alone.
    """
    if method not in SCIPY_METHODS:
        raise SpecError(f"scipy: unknown method {method!r}; allowed: {', '.join(SCIPY_METHODS)}")
    for key, value in (("rtol", rtol), ("atol", atol)):
        if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < np.inf:
            raise SpecError(f"scipy: {key} must be a number > 0, got {value!r}")
    n, forcing = system.n, system.forcing
    eta = np.asarray(system.eta, dtype=np.float64)

    def rhs(time: float, y: Array) -> Array:
        x, v = y[:n], y[n:]
        return np.concatenate((v, forcing(np.array([time]))[:, 0] - eta * v - x))

    implicit = {}
    if method in ("Radau", "BDF"):
        one = sparse.identity(n)
        implicit["jac"] = sparse.bmat([[None, one], [-one, sparse.diags(-eta)]], format="csc")
    y0 = np.concatenate((x0, v0))
    sol = solve_ivp(rhs, (t[0], t[-1]), y0, method=method, t_eval=t, rtol=rtol, atol=atol,
                    **implicit)
    if not sol.success:
        raise OdernnError(
            f"scipy: solve_ivp ({method}, rtol={rtol:g}, atol={atol:g}) failed: {sol.message}; "
            "try looser tolerances or another method"
        )
    return sol.y[:n], sol.y[n:]


# ---------------------------------------------------------------- exact

_FINE, _MID = 16, 8
"""Points per block of the separable evaluation, and blocks per coarse block."""


def _free_decay(a: Array, d: Array, s: Array) -> tuple[Array, Array]:
    """``E = e^{-a s} c(s)`` and ``S = e^{-a s} s(s)`` of shape ``(M, N)`` for ``s (M,) >= 0``.

    ``a = eta / 2``, ``d = 1 - a^2``; ``c = cos(w s)``, ``s(s) = sin(w s) / w`` with
    ``w = sqrt(d)`` (``s(s) = s`` at ``d = 0``), the cosh/sinh analogues for ``d < 0``
    written as ``e^{-s / (a + g)} (1 + m / 2)`` and ``-e^{-s / (a + g)} m / (2 g)``,
    ``g = sqrt(-d)``, ``m = expm1(-2 g s)``: no overflow, no cancellation near ``d = 0``.
    """
    E = np.empty((s.size, a.size))
    S = np.empty_like(E)
    under, over = d > 0, d < 0
    critical = ~(under | over)
    if under.any():
        w = np.sqrt(d[under])
        decay, phase = np.exp(np.multiply.outer(s, -a[under])), np.multiply.outer(s, w)
        E[:, under] = decay * np.cos(phase)
        S[:, under] = decay * np.sin(phase) / w
    if critical.any():
        decay = np.exp(np.multiply.outer(s, -a[critical]))
        E[:, critical] = decay
        S[:, critical] = decay * s[:, None]
    if over.any():
        g = np.sqrt(-d[over])
        slow = np.exp(np.multiply.outer(s, -1.0 / (a[over] + g)))
        m = np.expm1(np.multiply.outer(s, -2.0 * g))
        E[:, over] = slow * (1.0 + 0.5 * m)
        S[:, over] = -slow * m / (2.0 * g)
    return E, S


@dataclass(frozen=True)
class _Modes:
    """The exact solution at J reference times as free motion plus forced phasors.

    ``x = xh + sum_k Re Z_k``, ``v = vh + sum_k Re(i w_k Z_k)`` with ``xh, vh (J, N)``
    the free (homogeneous) state and ``Z = zr + i zi (K, J, N)`` the phasors
    ``P_k e^{i w_k t}`` of the particular solution. A time shift ``s`` maps
    ``(xh, vh)`` by the free propagator and rotates ``Z_k`` by ``e^{i w_k s}``.
    """

    a: Array  # (N,) eta / 2
    d: Array  # (N,) 1 - a^2
    w: Array  # (K, N) forcing frequencies
    xh: Array
    vh: Array
    zr: Array
    zi: Array

    def basis(self, s: Array) -> Array:
        """Basis functions ``[E, S, cos w_k s, sin w_k s]`` of shape ``(2 + 2K, M, N)``."""
        phase = self.w[:, None, :] * s[None, :, None]
        return np.concatenate((np.stack(_free_decay(self.a, self.d, s)), np.cos(phase),
                               np.sin(phase)))

    def coefficients(self, cx: Array, cv: Array) -> None:
        """Fill ``cx, cv (2 + 2K, J, N)`` so that ``x(t_j + s) = sum_q basis_q(s) cx_q[j]``
        (likewise v); buffers are reused because fresh large arrays cost page faults."""
        K, a, w = self.w.shape[0], self.a, self.w[:, None]
        cx[0] = self.xh
        np.multiply(a, self.xh, out=cx[1])
        cx[1] += self.vh
        cx[2 : 2 + K] = self.zr
        np.negative(self.zi, out=cx[2 + K :])
        cv[0] = self.vh
        np.multiply(a, self.vh, out=cv[1])
        cv[1] += self.xh
        np.negative(cv[1], out=cv[1])
        np.multiply(w, self.zi, out=cv[2 : 2 + K])
        np.negative(cv[2 : 2 + K], out=cv[2 : 2 + K])
        np.multiply(w, self.zr, out=cv[2 + K :])
        np.negative(cv[2 + K :], out=cv[2 + K :])

    def shifted(self, basis: Array) -> _Modes:
        """The modes at every reference time plus every offset ``s (M,)`` of
        ``basis = self.basis(s)``: J * M times, j-major."""
        K = self.w.shape[0]
        E, S, cos, sin = basis[0], basis[1], basis[2 : 2 + K, None], basis[2 + K :, None]
        a, xh, vh = self.a, self.xh[:, None], self.vh[:, None]
        zr, zi = self.zr[:, :, None], self.zi[:, :, None]

        def flat(u: Array) -> Array:
            return u.reshape(*u.shape[:-3], u.shape[-3] * u.shape[-2], u.shape[-1])

        return _Modes(
            self.a, self.d, self.w,
            flat(E * xh + S * (a * xh + vh)), flat(E * vh - S * (xh + a * vh)),
            flat(cos * zr - sin * zi), flat(sin * zr + cos * zi),
        )  # fmt: skip


def _expand(x: Array, v: Array, basis: Array, cx: Array, cv: Array, tmp: Array) -> None:
    """``x = sum_q basis_q cx_q``, ``v = sum_q basis_q cv_q`` in place; ``basis (Q, M, N)``,
    ``cx, cv (Q, N)``, outputs ``(M', N)`` with ``M' <= M`` (a last, shorter block)."""
    m = x.shape[0]
    tmp = tmp[:m]
    for out, c in ((x, cx), (v, cv)):
        np.multiply(basis[0, :m], c[0], out=out)
        for q in range(1, basis.shape[0]):
            np.multiply(basis[q, :m], c[q], out=tmp)
            out += tmp


def exact(system: Oscillator, x0: Array, v0: Array, t: Array) -> tuple[Array, Array]:
    """The closed-form solution for a :class:`~odernn.data.systems.HarmonicForcing`, any
    ``eta >= 0``.

    Free motion from ``(x0, v0)`` minus the particular solution at ``t0``, plus
    the particular solutions ``x_p = Re(A e^{i(w t + p)} / (1 - w^2 + i eta w))``
    (at the undamped resonance ``eta = 0, |w| = 1`` the secular
    ``(A / 2w) (t - t0) sin(w t + p)`` instead). Free motion is
    ``e^{-eta t/2} [c x_h0 + s (v_h0 + eta x_h0 / 2)]`` (see :func:`_free_decay`).
    Accurate to rounding except within ``~sqrt(eps)`` of the undamped resonance,
    where free and forced parts nearly cancel.

    On a uniform grid the time dependence separates: the state at ``t_j + s`` is
    the state at ``t_j`` shifted by ``s``, so a few tables of transcendentals
    (coarse block starts, their refinement into blocks, the offsets within a
    block) replace one per point; other grids are evaluated point by point.
    """
    forcing = system.forcing
    if not isinstance(forcing, HarmonicForcing):
        raise SpecError(
            f"integrator 'exact' needs a harmonic forcing (families none, cosine, random), got "
            f"{type(forcing).__name__}; use 'rk4' or 'scipy' for sampled forcing"
        )
    eta = np.asarray(system.eta, dtype=np.float64)
    # (K, N): one row per harmonic
    A, w, p = (np.asarray(u, dtype=np.float64).T
               for u in (forcing.amplitude, forcing.omega, forcing.phase))  # fmt: skip
    denominator = (1.0 - w**2) + 1j * eta * w
    resonant = denominator == 0
    P = np.where(resonant, 0, A * np.exp(1j * p) / np.where(resonant, 1, denominator))
    Z0 = P * np.exp(1j * w * t[0])
    res_amp = np.where(resonant, A / np.where(resonant, 2 * w, 1), 0.0)
    a = eta / 2
    modes = _Modes(
        a, (1 - a) * (1 + a), w,
        (x0 - Z0.real.sum(0))[None],
        (v0 + (w * Z0.imag).sum(0) - (res_amp * np.sin(w * t[0] + p)).sum(0))[None],
        Z0.real[:, None], Z0.imag[:, None],
    )  # fmt: skip
    x = np.empty((t.size, system.n))
    v = np.empty_like(x)
    dt = uniform_step(t)
    if dt is None:
        _exact_pointwise(x, v, modes, t - t[0])
    else:
        _exact_uniform(x, v, modes, t - t[0], dt)
    if resonant.any():
        _add_resonances(x, v, t, res_amp, w, p)
    x[0], v[0] = x0, v0  # the initial state is given, not computed: keep it exact
    return x.T, v.T


def _exact_pointwise(x: Array, v: Array, modes: _Modes, tau: Array) -> None:
    """Every point from the modes at ``t0``, in blocks of rows to bound memory."""
    n_basis = 2 + 2 * modes.w.shape[0]
    cx, cv = np.empty((2, n_basis, 1, x.shape[1]))
    modes.coefficients(cx, cv)
    cx, cv = cx[:, 0], cv[:, 0]
    for start in range(0, tau.size, 64):
        rows = slice(start, start + 64)
        basis = modes.basis(tau[rows])
        _expand(x[rows], v[rows], basis, cx, cv, np.empty(basis.shape[1:]))


def _exact_uniform(x: Array, v: Array, modes: _Modes, tau: Array, dt: float) -> None:
    """Separable evaluation on a uniform grid ``tau = t - t0``: each coarse block start
    directly at its grid time, its ``_MID`` block starts by one shift of ``j _FINE dt``,
    then ``_FINE`` points each by a shift of ``r dt``."""
    fine = modes.basis(dt * np.arange(_FINE))
    mid = modes.basis(dt * _FINE * np.arange(_MID))
    tmp = np.empty(fine.shape[1:])
    cx, cv = np.empty((2, fine.shape[0], _MID, x.shape[1]))
    coarse = _FINE * _MID
    for c in range(0, x.shape[0], coarse):
        modes.shifted(modes.basis(tau[c : c + 1])).shifted(mid).coefficients(cx, cv)
        for j, row in enumerate(range(c, min(c + coarse, x.shape[0]), _FINE)):
            rows = slice(row, row + _FINE)
            _expand(x[rows], v[rows], fine, cx[:, j], cv[:, j], tmp)


def _add_resonances(x: Array, v: Array, t: Array, amp: Array, w: Array, p: Array) -> None:
    """Add ``amp (t - t0) sin(w t + p)`` and its derivative (``amp (K, N)``, zero off resonance)
    to the trajectories that have a resonant harmonic."""
    cols = np.flatnonzero((amp != 0).any(0))
    tau = (t - t[0])[:, None]
    for k in range(amp.shape[0]):
        phase = np.multiply.outer(t, w[k, cols]) + p[k, cols]
        x[:, cols] += amp[k, cols] * tau * np.sin(phase)
        v[:, cols] += amp[k, cols] * (np.sin(phase) + w[k, cols] * tau * np.cos(phase))


# ---------------------------------------------------------------- the door

INTEGRATORS: dict[str, Integrator] = {
    "euler": euler,
    "semi-implicit-euler": semi_implicit_euler,
    "rk4": rk4,
    "rk4-sampled": rk4_sampled,
    "rk4-sampled-cubic": rk4_sampled_cubic,
    "rk4-sampled-spline": rk4_sampled_spline,
    "rk4-sampled-2dt": rk4_sampled_2dt,
    "scipy": scipy_ivp,
    "exact": exact,
}
"""Every integrator by name; all share the calling convention of the module docstring."""

ORDERS: dict[str, int | None] = {
    "euler": 1,
    "semi-implicit-euler": 1,
    "rk4": 4,
    "rk4-sampled": 2,
    "rk4-sampled-cubic": 4,
    "rk4-sampled-spline": 4,
    "rk4-sampled-2dt": 4,
    "scipy": None,
    "exact": None,
}
"""Convergence order in ``dt`` of the fixed-step methods (None: not a fixed-step method);
for the ``rk4-sampled*`` methods, in the sample spacing, the forcing being smooth."""

DESCRIPTIONS: dict[str, str] = {
    "euler": "forward Euler, the notes' update",
    "semi-implicit-euler": "semi-implicit (symplectic) Euler",
    "rk4": "classical RK4 with the forcing evaluated exactly at half steps",
    "rk4-sampled": "RK4 at step dt on the samples F_i, linear interpolation at half steps",
    "rk4-sampled-cubic": "RK4 at step dt on the samples F_i, local cubic through 4 samples "
                         "at half steps",
    "rk4-sampled-spline": "RK4 at step dt on the samples F_i, not-a-knot cubic spline at half "
                          "steps",
    "rk4-sampled-2dt": "RK4 at step 2 dt on the samples F_i, F_i+1, F_i+2 (start, midpoint, "
                       "end), odd points by quintic Hermite",
    "scipy": "SciPy solve_ivp with the forcing as a function of time",
    "exact": "closed-form solution: the reference every error is measured against",
}
"""One line per integrator, as the evaluation report prints it."""

SAMPLED_FORCING = ("rk4-sampled", "rk4-sampled-cubic", "rk4-sampled-spline", "rk4-sampled-2dt")
"""The integrators that evaluate the forcing only at the grid points: given the samples
``F_i`` alone, the information a surrogate gets."""


def integrate(
    name: str, system: Oscillator, x0: Array, v0: Array, t: Array, **options: object
) -> tuple[Array, Array]:
    """Integrate ``system`` from ``(x0, v0)`` over the grid ``t`` with integrator ``name``.

    Validates everything a user can get wrong (raising :class:`SpecError`): the
    name, ``t`` (1-D, finite, increasing, ``T >= 2``, uniform for fixed-step
    methods), the shapes of ``x0, v0`` (``(N,)``) and the option names.
    Returns ``x, v (N, T)`` float64.
    """
    if name not in INTEGRATORS:
        raise SpecError(f"unknown integrator {name!r}{did_you_mean(name, INTEGRATORS)}; "
                        f"allowed: {', '.join(INTEGRATORS)}")
    fn = INTEGRATORS[name]
    allowed = [p.name for p in inspect.signature(fn).parameters.values()
               if p.kind is inspect.Parameter.KEYWORD_ONLY]
    for key in options:
        if key not in allowed:
            takes = f"allowed: {', '.join(allowed)}" if allowed else "it takes no options"
            raise SpecError(f"unknown option {key!r} for integrator {name!r}"
                            f"{did_you_mean(key, allowed)}; {takes}")
    t = _check_grid(t, name)
    x0, v0 = (_check_initial(label, u, system.n) for label, u in (("x0", x0), ("v0", v0)))
    return fn(system, x0, v0, t, **options)


def _check_grid(t: Array, name: str) -> Array:
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1 or t.size < 2:
        raise SpecError(f"integrator {name!r}: t must be a 1-D array of at least 2 times, "
                        f"got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise SpecError(f"integrator {name!r}: t must be finite")
    steps = np.diff(t)
    if np.any(steps <= 0):
        i = int(np.argmax(steps <= 0))
        raise SpecError(f"integrator {name!r}: t must be strictly increasing, but "
                        f"t[{i + 1}] = {t[i + 1]:g} <= t[{i}] = {t[i]:g}")
    if ORDERS[name] is not None:
        slack = 1e-9 * steps[0] + 16 * np.finfo(np.float64).eps * max(abs(t[0]), abs(t[-1]))
        if np.ptp(steps) > slack:
            raise SpecError(f"integrator {name!r} needs a uniform grid; the steps of t range "
                            f"from {steps.min():g} to {steps.max():g} (use 'scipy' or 'exact' "
                            "for a non-uniform grid)")
    return t


def _check_initial(label: str, value: Array, n: int) -> Array:
    u = np.asarray(value, dtype=np.float64)
    if u.shape != (n,):
        raise SpecError(f"{label} must have shape ({n},), one value per trajectory; "
                        f"got shape {u.shape}")
    if not np.all(np.isfinite(u)):
        raise SpecError(f"{label} must be finite")
    return u
