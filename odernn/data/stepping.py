"""The fixed-step integrators, vectorised over trajectories (entries of
:data:`odernn.data.integrators.INTEGRATORS`): forward and semi-implicit Euler, RK4, and RK4
given only the forcing samples. The time loops run compiled (:mod:`odernn.data.kernels`) on
time-major ``(T, N)`` buffers; a linear system's RK4 step is a precomputed linear map."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from odernn.data.forcing import ForcingRows, time_major
from odernn.data.schema import grid_step
from odernn.data.systems import Oscillator
from odernn.types import Array

# ---------------------------------------------------------------- fixed step


def _start(system: Oscillator, x0: Array, v0: Array, t: Array) -> tuple[Array, Array]:
    """Time-major buffers ``x, v (T, N)`` from ``(x0, v0)``."""
    x = np.empty((t.size, system.n))
    v = np.empty_like(x)
    x[0], v[0] = x0, v0
    return x, v


def _kernel_inputs(system: Oscillator) -> tuple[int, Array]:
    """The code of ``system``'s acceleration in :mod:`odernn.data.kernels` and its
    parameters ``p (P, N)``: ``(k, c)`` of a linear system, else the system's own in order."""
    from odernn.data import kernels  # numba, imported when used: `odernn --help` stays quick

    if system.system.linear is not None:
        return kernels.LINEAR, np.array(system.linear_coefficients)
    return (kernels.ACCELERATIONS[system.system.name],
            np.array([system.params[name] for name in system.system.names]))


def _euler(
    system: Oscillator, x0: Array, v0: Array, t: Array, *, semi_implicit: bool
) -> tuple[Array, Array]:
    from odernn.data import kernels

    x, v = _start(system, x0, v0, t)
    F = ForcingRows.of(system.forcing, t)
    kind, p = _kernel_inputs(system)
    dt = grid_step(t)
    for start, stop in kernels.row_slices(t.size, system.n):
        kernels.euler(kind, F(start, stop), x, v, p, dt, semi_implicit, start, stop)
    return x.T, v.T


def euler(system: Oscillator, x0: Array, v0: Array, t: Array) -> tuple[Array, Array]:
    """Forward Euler: the notes' ``v_{i+1} = v_i + dt (F_i + a(x_i, v_i))`` as written, and
    ``x_{i+1} = x_i + dt v_i`` (the notes give the velocity's update only), with
    ``F_i = F(t_i)`` and ``dt`` the grid's step (:func:`grid_step`). Order 1."""
    return _euler(system, x0, v0, t, semi_implicit=False)


def semi_implicit_euler(
    system: Oscillator, x0: Array, v0: Array, t: Array
) -> tuple[Array, Array]:
    """Semi-implicit (symplectic) Euler: ``v_{i+1}`` as in :func:`euler`, then
    ``x_{i+1} = x_i + dt v_{i+1}``. Order 1, but no energy drift when ``eta = F = 0``."""
    return _euler(system, x0, v0, t, semi_implicit=True)


def rk4_step(
    accel: Callable[[Array, Array, Array], Array], x: Array, v: Array, F0: Array, Fh: Array,
    F1: Array, dt: float,
) -> tuple[Array, Array]:
    """One classic RK4 step of ``x' = v, v' = accel(x, v, F)`` with the forcing at ``t``,
    ``t + dt/2`` and ``t + dt``; returns ``(x, v)`` at ``t + dt``."""
    k1x, k1v = v, accel(x, v, F0)
    k2x = v + dt / 2 * k1v  # the stage's velocity is the next stage's slope of x
    k2v = accel(x + dt / 2 * k1x, k2x, Fh)
    k3x = v + dt / 2 * k2v
    k3v = accel(x + dt / 2 * k2x, k3x, Fh)
    k4x = v + dt * k3v
    k4v = accel(x + dt * k3x, k4x, F1)
    return (
        x + dt / 6 * (k1x + 2 * k2x + 2 * k3x + k4x),
        v + dt / 6 * (k1v + 2 * k2v + 2 * k3v + k4v),
    )


def _rk4_coefficients(system: Oscillator, dt: float) -> tuple[Array, Array]:
    """Per-trajectory coefficients ``cx, cv (5, N)`` of one RK4 step of size ``dt`` of a linear
    system.

    A step is then linear in its five inputs ``(x_i, v_i, F_i, F_{i+1/2}, F_{i+1})``:
    :func:`rk4_step` applied once to unit inputs gives them, and every step is then
    ``x_{i+1} = sum_q cx_q u_q`` (likewise v), the same RK4 up to rounding in half the array
    operations.
    """
    unit = np.eye(5)[:, :, None] * np.ones(system.n)
    return rk4_step(system.acceleration, *unit, dt=dt)


def _rk4_march(system: Oscillator, F: Array | ForcingRows, Fh: Array | ForcingRows, x: Array,
               v: Array, dt: float, stride: int = 1) -> None:
    """RK4 over a uniform grid on time-major buffers ``x, v (T, N)``: row ``i + stride`` from
    row ``i`` for ``i = 0, stride, ...``, with the forcing ``F`` at the grid and ``Fh`` at the
    steps' midpoints (row ``i`` for the step from ``i``), tables ``(T, N)`` or their rows. A
    linear system steps by its precomputed linear map, a nonlinear one by :func:`rk4_step`'s
    operations (:func:`odernn.data.kernels.rk4`)."""
    from odernn.data import kernels

    F, Fh = (f if isinstance(f, ForcingRows) else ForcingRows(f) for f in (F, Fh))
    h = stride * dt
    slices = kernels.row_slices(x.shape[0], system.n, stride)
    if system.system.linear is not None:
        cx, cv = _rk4_coefficients(system, h)
        for start, stop in slices:
            kernels.linear_map(F(start, stop + stride), Fh(start, stop), x, v, cx, cv, stride,
                               start, stop)
        return
    kind, p = _kernel_inputs(system)
    for start, stop in slices:
        kernels.rk4(kind, F(start, stop + stride), Fh(start, stop), x, v, p, h, stride, start,
                    stop)


def rk4(system: Oscillator, x0: Array, v0: Array, t: Array) -> tuple[Array, Array]:
    """Classic RK4 (:func:`rk4_step`), the forcing evaluated by ``system.forcing``
    at the grid and at the half steps (exact for a harmonic forcing; linear
    interpolation of the samples for a :class:`~odernn.data.forcing.SampledForcing`).
    Order 4. A linear system's step is a precomputed linear map (:func:`_rk4_coefficients`)."""
    x, v = _start(system, x0, v0, t)
    dt = grid_step(t)
    F, Fh = (ForcingRows.of(system.forcing, s) for s in (t, t[:-1] + dt / 2))
    _rk4_march(system, F, Fh, x, v, dt)
    return x.T, v.T


# ---------------------------------------------------------------- given only the samples
#
# The methods below call ``system.forcing`` once, at the grid ``t`` itself: they see only
# the samples ``F_i = F(t_i)``, the samples a surrogate gets. Those that read no sample after
# ``F_{i+1}`` for the step from ``t_i`` (linear, the causal cubic) have no more than a
# surrogate has by then; the local cubic, the spline and the 2 dt step read later ones
# (``Integrator.causal`` in :mod:`odernn.data.integrators`).


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
    x, v = _start(system, x0, v0, t)
    F = time_major(system.forcing, t)
    _rk4_march(system, F, _half_step_forcing(F, 1), x, v, grid_step(t))
    return x.T, v.T


def rk4_sampled_cubic(
    system: Oscillator, x0: Array, v0: Array, t: Array
) -> tuple[Array, Array]:
    """RK4 at step ``dt`` given only the samples, ``F`` at the half steps from the local
    cubic through four samples, ``(-F_{i-1} + 9 F_i + 9 F_{i+1} - F_{i+2}) / 16``
    (one-sided at the ends). The interpolation error ``O(dt^4)`` enters each step times
    ``dt``: order 4."""
    x, v = _start(system, x0, v0, t)
    F = time_major(system.forcing, t)
    _rk4_march(system, F, _half_step_forcing(F, 3), x, v, grid_step(t))
    return x.T, v.T


def rk4_sampled_spline(
    system: Oscillator, x0: Array, v0: Array, t: Array
) -> tuple[Array, Array]:
    """RK4 at step ``dt`` given only the samples, ``F`` at the half steps from the
    not-a-knot cubic spline through all samples (``scipy.interpolate.CubicSpline``, one
    spline per trajectory). Interpolation error ``O(dt^4)`` as for the local cubic but
    with a smaller constant: order 4."""
    x, v = _start(system, x0, v0, t)
    F = time_major(system.forcing, t)
    dt = grid_step(t)
    from scipy.interpolate import CubicSpline  # imported when used: `odernn --help` stays quick

    s = dt * np.arange(t.size)  # the uniform grid from 0: knots where the samples are, not
    # t's own values, which far from 0 (Unix-epoch seconds) carry t's rounding (2e-7 s)
    Fh = np.ascontiguousarray(CubicSpline(s, F, axis=0)(s[:-1] + dt / 2))
    _rk4_march(system, F, Fh, x, v, dt)
    return x.T, v.T


def rk4_sampled_causal(
    system: Oscillator, x0: Array, v0: Array, t: Array
) -> tuple[Array, Array]:
    """RK4 at step ``dt`` given only the samples a surrogate has been given by then: ``F``
    at the half step from ``t_i`` by the cubic through ``F_{i-2} .. F_{i+1}``
    (:func:`causal_midpoint`), never a later sample. Interpolation error ``O(dt^4)`` from
    the third step on; the first two steps' (the mean of ``F_0, F_1``, the quadratic
    through ``F_0 .. F_2``) enter once: order 3."""
    x, v = _start(system, x0, v0, t)
    F = time_major(system.forcing, t)
    Fh = np.empty((t.size - 1, system.n))
    for k in range(min(2, t.size - 1)):
        Fh[k] = causal_midpoint(F.T, k)
    Fh[2:] = _causal_cubic(F[:-3], F[1:-2], F[2:-1], F[3:])  # every later step at once
    _rk4_march(system, F, Fh, x, v, grid_step(t))
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
    x, v = _start(system, x0, v0, t)
    F = time_major(system.forcing, t)
    dt = grid_step(t)
    H = 2 * dt
    # the samples at odd indices are the midpoints of the 2 dt steps from even ones
    _rk4_march(system, F, F[1:], x, v, dt, stride=2)
    # quintic Hermite at the midpoints of the 2 dt steps, all at once
    last = (T - 1) // 2 * 2  # the last even index
    left, right = slice(0, last - 1, 2), slice(2, last + 1, 2)
    xl, vl, xr, vr = x[left], v[left], x[right], v[right]
    al, ar = system.acceleration(xl, vl, F[left]), system.acceleration(xr, vr, F[right])
    x[1:last:2] = (xl + xr) / 2 + (5 * H / 32) * (vl - vr) + (H * H / 64) * (al + ar)
    v[1:last:2] = (15 / (8 * H)) * (xr - xl) - (7 / 16) * (vl + vr) + (H / 32) * (ar - al)
    if T % 2 == 0:  # an odd number of intervals: the last point from t_{T-3}
        j = T - 3
        tail = slice(j, T)
        xs, vs = x[tail].copy(), v[tail].copy()
        _rk4_march(system, F[tail], F[tail][1:], xs, vs, dt, stride=2)
        x[T - 1], v[T - 1] = xs[2], vs[2]
    return x.T, v.T


def causal_midpoint(F: np.ndarray, k: int) -> np.ndarray:
    """The forcing at step ``k``'s half, ``F(t_k + dt / 2)``, of samples ``F (N, T)``, from
    the polynomial through ``F_{k-2} .. F_{k+1}`` (a cubic; at ``k = 1`` the quadratic
    through ``F_0 .. F_2``, at ``k = 0`` the mean of ``F_0, F_1``): only samples a surrogate
    has been given by step ``k`` (``F_{k+1}`` its last), no later one. Error ``O(dt^4)``,
    against the mean's ``O(dt^2)``; one step at a time, so a closed loop holds no more."""
    if k >= 2:
        return _causal_cubic(F[:, k - 2], F[:, k - 1], F[:, k], F[:, k + 1])
    if k == 1:
        return -0.125 * F[:, 0] + 0.75 * F[:, 1] + 0.375 * F[:, 2]
    return 0.5 * (F[:, 0] + F[:, 1])


def _causal_cubic(f_2: Array, f_1: Array, f0: Array, f1: Array) -> Array:
    """The cubic through ``F_{k-2}, F_{k-1}, F_k, F_{k+1}`` at ``t_k + dt / 2``: their Lagrange
    weights of nodes -2, -1, 0, 1 at 1/2, ``(1, -5, 15, 5) / 16``."""
    return 0.0625 * f_2 - 0.3125 * f_1 + 0.9375 * f0 + 0.3125 * f1
