"""Integrators for the damped, driven oscillator, vectorised over trajectories.

One table, :data:`INTEGRATORS`, holds every integrator as an :class:`Integrator`
entry: its function, convergence order, description and what callers need to
know of it (a spec may name it; its results do not depend on the batch; it sees
the forcing only at the grid samples; it is the closed-form solution). Spec
validation, simulation's block rule, evaluation's default list and the CLI all
read it. One calling convention for all::

    entry(system, x0 (N,), v0 (N,), t (T,), **options) -> (x (N, T), v (N, T))

:func:`integrate` validates the input once and dispatches; the functions
themselves trust their input. Python loops run over time steps only, on
time-major ``(T, N)`` buffers so that each step touches contiguous rows. All
results are float64; those of the fixed-step methods and ``exact`` are
transposed views of such buffers (F-contiguous).

Each trajectory's result from every entry but ``scipy`` depends only on its own
parameters: alone or in any batch it is the same to the last bit. ``scipy``
solves the whole batch as one system, so its adaptive steps (and last digits)
depend on the batch. The closed-form solution lives in :mod:`odernn.data.exact`.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Real

import numpy as np

from odernn.checks import did_you_mean
from odernn.data.exact import exact
from odernn.data.forcing import SampledForcing
from odernn.data.systems import SYSTEMS, Oscillator
from odernn.errors import OdernnError, SpecError
from odernn.types import Array

# ---------------------------------------------------------------- fixed step


def _start(system: Oscillator, x0: Array, v0: Array, t: Array) -> tuple[Array, ...]:
    """``F (T, N)`` and time-major buffers ``x, v (T, N)`` from ``(x0, v0)``."""
    x = np.empty((t.size, system.n))
    v = np.empty_like(x)
    x[0], v[0] = x0, v0
    F = np.ascontiguousarray(system.forcing(t).T)
    return F, x, v


def _euler(
    system: Oscillator, x0: Array, v0: Array, t: Array, *, semi_implicit: bool
) -> tuple[Array, Array]:
    F, x, v = _start(system, x0, v0, t)
    dt = t[1] - t[0]
    for i in range(t.size - 1):
        # v_{i+1} = v_i + dt a(x_i, v_i, F_i), in the order written, so the result is the
        # equation's to the last bit
        a = system.acceleration(x[i], v[i], F[i])
        a *= dt
        np.add(v[i], a, out=v[i + 1])
        # x_{i+1} = x_i + dt v_i (forward) or x_i + dt v_{i+1} (semi-implicit)
        np.multiply(v[i + 1] if semi_implicit else v[i], dt, out=x[i + 1])
        x[i + 1] += x[i]
    return x.T, v.T


def euler(system: Oscillator, x0: Array, v0: Array, t: Array) -> tuple[Array, Array]:
    """Forward Euler exactly as in the notes: ``v_{i+1} = v_i + dt (F_i + a(x_i, v_i))``,
    ``x_{i+1} = x_i + dt v_i``, with ``F_i = F(t_i)`` and ``dt = t[1] - t[0]``. Order 1."""
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
    k2x, k2v = v + dt / 2 * k1v, accel(x + dt / 2 * k1x, v + dt / 2 * k1v, Fh)
    k3x, k3v = v + dt / 2 * k2v, accel(x + dt / 2 * k2x, v + dt / 2 * k2v, Fh)
    k4x, k4v = v + dt * k3v, accel(x + dt * k3x, v + dt * k3v, F1)
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


def _rk4_advance(x: Array, v: Array, inputs: tuple[Array, ...], cx: Array, cv: Array,
                 tmp: Array) -> None:
    """``x, v (N,)`` in place from ``inputs = (x_i, v_i, F_0, F_half, F_1)`` (see
    :func:`_rk4_coefficients`); F_1 enters through k4v only, so x needs four inputs."""
    for out, c, n_inputs in ((x, cx, 4), (v, cv, 5)):
        np.multiply(c[0], inputs[0], out=out)
        for q in range(1, n_inputs):
            np.multiply(c[q], inputs[q], out=tmp)
            out += tmp


def _rk4_march(system: Oscillator, F: Array, Fh: Array, x: Array, v: Array, dt: float,
               stride: int = 1) -> None:
    """RK4 over a uniform grid on time-major buffers ``x, v (T, N)``: row ``i + stride`` from
    row ``i`` for ``i = 0, stride, ...``, with the forcing ``F (T, N)`` at the grid and ``Fh``
    at the steps' midpoints (row ``i`` for the step from ``i``). A linear system steps by its
    precomputed linear map; a nonlinear one by :func:`rk4_step` on its acceleration."""
    last = x.shape[0] - stride
    if system.system.linear is not None:
        cx, cv = _rk4_coefficients(system, stride * dt)
        tmp = np.empty(system.n)
        for i in range(0, last, stride):
            _rk4_advance(x[i + stride], v[i + stride],
                         (x[i], v[i], F[i], Fh[i], F[i + stride]), cx, cv, tmp)
        return
    for i in range(0, last, stride):
        x[i + stride], v[i + stride] = rk4_step(system.acceleration, x[i], v[i], F[i], Fh[i],
                                                F[i + stride], stride * dt)


def rk4(system: Oscillator, x0: Array, v0: Array, t: Array) -> tuple[Array, Array]:
    """Classic RK4 (:func:`rk4_step`), the forcing evaluated by ``system.forcing``
    at the grid and at the half steps (exact for a harmonic forcing; linear
    interpolation of the samples for a :class:`~odernn.data.forcing.SampledForcing`).
    Order 4. A linear system's step is a precomputed linear map (:func:`_rk4_coefficients`)."""
    F, x, v = _start(system, x0, v0, t)
    dt = t[1] - t[0]
    Fh = np.ascontiguousarray(system.forcing(t[:-1] + dt / 2).T)
    _rk4_march(system, F, Fh, x, v, dt)
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
    F, x, v = _start(system, x0, v0, t)
    _rk4_march(system, F, _half_step_forcing(F, 1), x, v, t[1] - t[0])
    return x.T, v.T


def rk4_sampled_cubic(
    system: Oscillator, x0: Array, v0: Array, t: Array
) -> tuple[Array, Array]:
    """RK4 at step ``dt`` given only the samples, ``F`` at the half steps from the local
    cubic through four samples, ``(-F_{i-1} + 9 F_i + 9 F_{i+1} - F_{i+2}) / 16``
    (one-sided at the ends). The interpolation error ``O(dt^4)`` enters each step times
    ``dt``: order 4."""
    F, x, v = _start(system, x0, v0, t)
    _rk4_march(system, F, _half_step_forcing(F, 3), x, v, t[1] - t[0])
    return x.T, v.T


def rk4_sampled_spline(
    system: Oscillator, x0: Array, v0: Array, t: Array
) -> tuple[Array, Array]:
    """RK4 at step ``dt`` given only the samples, ``F`` at the half steps from the
    not-a-knot cubic spline through all samples (``scipy.interpolate.CubicSpline``, one
    spline per trajectory). Interpolation error ``O(dt^4)`` as for the local cubic but
    with a smaller constant: order 4."""
    F, x, v = _start(system, x0, v0, t)
    dt = t[1] - t[0]
    from scipy.interpolate import CubicSpline  # imported when used: `odernn --help` stays quick

    Fh = np.ascontiguousarray(CubicSpline(t, F, axis=0)(t[:-1] + dt / 2))
    _rk4_march(system, F, Fh, x, v, dt)
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
    F, x, v = _start(system, x0, v0, t)
    dt = t[1] - t[0]
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
    from scipy import sparse  # imported when used: `odernn --help` stays quick
    from scipy.integrate import solve_ivp

    if method not in SCIPY_METHODS:
        raise SpecError(f"scipy: unknown method {method!r}; allowed: {', '.join(SCIPY_METHODS)}")
    for key, value in (("rtol", rtol), ("atol", atol)):
        if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < np.inf:
            raise SpecError(f"scipy: {key} must be a number > 0, got {value!r}")
    n, forcing = system.n, system.forcing

    def rhs(time: float, y: Array) -> Array:
        x, v = y[:n], y[n:]
        return np.concatenate((v, system.acceleration(x, v, forcing(np.array([time]))[:, 0])))

    def jacobian(time: float, y: Array) -> sparse.csc_matrix:
        da_dx, da_dv = system.system.partials(y[:n], y[n:], system.params)
        return sparse.bmat([[None, sparse.identity(n)],
                            [sparse.diags(da_dx), sparse.diags(da_dv)]], format="csc")

    implicit = {}
    if method in ("Radau", "BDF"):  # a linear system's Jacobian is a constant matrix
        linear = system.system.linear is not None
        implicit["jac"] = jacobian(0.0, np.concatenate((x0, v0))) if linear else jacobian
    y0 = np.concatenate((x0, v0))
    sol = solve_ivp(rhs, (t[0], t[-1]), y0, method=method, t_eval=t, rtol=rtol, atol=atol,
                    **implicit)
    if not sol.success:
        raise OdernnError(
            f"scipy: solve_ivp ({method}, rtol={rtol:g}, atol={atol:g}) failed: {sol.message}; "
            "try looser tolerances or another method"
        )
    return sol.y[:n], sol.y[n:]


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Integrator:
    """One entry of :data:`INTEGRATORS`: an integrator's function and what callers need to
    know of it. Call it as ``entry(system, x0, v0, t, **options)``."""

    name: str
    fn: Callable[..., tuple[Array, Array]]
    order: int | None
    """Convergence order in the step (the sampled-forcing ones: in the sample spacing, for a
    smooth forcing); None for SciPy's adaptive steps and the closed-form solution. A method
    with an order needs a uniform grid."""
    description: str
    """One line, as the evaluation report prints it."""
    batch_independent: bool = True
    """Each trajectory's result depends only on its own parameters, to the last bit, whichever
    trajectories share its block (so a dataset is the same in any blocks or shards)."""
    sampled_forcing: bool = False
    """It sees the forcing only at the grid points: given the samples ``F_i`` alone, the
    information a surrogate gets."""
    in_specs: bool = False
    """A dataset spec may name it."""
    closed_form: bool = False
    """It is the exact solution (harmonic forcing only): the reference, not a method."""

    def __call__(self, system: Oscillator, x0: Array, v0: Array, t: Array, *,
                 samples: SampledForcing | None = None, **options: object
                 ) -> tuple[Array, Array]:
        """Run on ``system`` (input trusted: :func:`integrate` checks it). ``samples``, stored
        forcing samples at their times, replace ``system``'s forcing for a sampled-forcing
        entry, which reads them at its grid; the other entries evaluate ``system``'s forcing
        and ignore them."""
        if self.sampled_forcing and samples is not None:
            system = system.with_forcing(samples)
        return self.fn(system, x0, v0, t, **options)


INTEGRATORS: dict[str, Integrator] = {entry.name: entry for entry in (
    Integrator("euler", euler, 1, "forward Euler, the notes' update", in_specs=True),
    Integrator("semi-implicit-euler", semi_implicit_euler, 1,
               "semi-implicit (symplectic) Euler", in_specs=True),
    Integrator("rk4", rk4, 4, "classical RK4 with the forcing evaluated exactly at half steps",
               in_specs=True),
    Integrator("rk4-sampled", rk4_sampled, 2,
               "RK4 at step dt on the samples F_i, linear interpolation at half steps",
               sampled_forcing=True),
    Integrator("rk4-sampled-cubic", rk4_sampled_cubic, 4,
               "RK4 at step dt on the samples F_i, local cubic through 4 samples at half steps",
               sampled_forcing=True),
    Integrator("rk4-sampled-spline", rk4_sampled_spline, 4,
               "RK4 at step dt on the samples F_i, not-a-knot cubic spline at half steps",
               sampled_forcing=True),
    Integrator("rk4-sampled-2dt", rk4_sampled_2dt, 4,
               "RK4 at step 2 dt on the samples F_i, F_i+1, F_i+2 (start, midpoint, end), odd "
               "points by quintic Hermite", sampled_forcing=True),
    Integrator("scipy", scipy_ivp, None, "SciPy solve_ivp with the forcing as a function of time",
               batch_independent=False, in_specs=True),
    Integrator("exact", exact, None,
               "closed-form solution: the reference every error is measured against",
               in_specs=True, closed_form=True),
)}
"""Every integrator by name, in the order they are listed to users."""


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
    entry = INTEGRATORS[name]
    if entry.closed_form and not system.system.closed_form:
        solvable = ", ".join(n for n, s in SYSTEMS.items() if s.closed_form)
        raise SpecError(f"integrator {name!r} is a closed-form solution, which system "
                        f"{system.system.name!r} does not have (only {solvable}); use 'scipy' "
                        "(DOP853) or a fixed-step method")
    allowed = [p.name for p in inspect.signature(entry.fn).parameters.values()
               if p.kind is inspect.Parameter.KEYWORD_ONLY]
    for key in options:
        if key not in allowed:
            takes = f"allowed: {', '.join(allowed)}" if allowed else "it takes no options"
            raise SpecError(f"unknown option {key!r} for integrator {name!r}"
                            f"{did_you_mean(key, allowed)}; {takes}")
    t = _check_grid(t, name)
    x0, v0 = (_check_initial(label, u, system.n) for label, u in (("x0", x0), ("v0", v0)))
    return entry(system, x0, v0, t, **options)


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
    if INTEGRATORS[name].order is not None:
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
