"""The integrator table, for every system, vectorised over trajectories.

One table, :data:`INTEGRATORS`, holds every integrator as an :class:`Integrator`
entry: its function, convergence order, description and what callers need to
know of it (a spec may name it; its results do not depend on the batch; it sees
the forcing only at the grid samples; it is the closed-form solution). Spec
validation, simulation's block rule, evaluation's default list and the CLI all
read it. One calling convention for all::

    entry(system, x0 (N,), v0 (N,), t (T,), **options) -> (x (N, T), v (N, T))

:func:`integrate` validates the input once and dispatches; the functions
themselves trust their input. The fixed-step methods' time loops run compiled
(:mod:`odernn.data.kernels`) on time-major ``(T, N)`` buffers, so that each step touches
contiguous rows. All
results are float64; those of the fixed-step methods (:mod:`odernn.data.stepping`) and
``exact`` are transposed views of such buffers (F-contiguous).

Each trajectory's result from every entry but ``scipy`` depends only on its own
parameters: alone or in any batch it is the same to the last bit. ``scipy``
solves the whole batch as one system, so its adaptive steps (and last digits)
depend on the batch. The closed-form solution lives in :mod:`odernn.data.exact`.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real

import numpy as np

from odernn.checks import did_you_mean
from odernn.data.exact import exact
from odernn.data.forcing import SampledForcing
from odernn.data.stepping import (
    euler,
    rk4,
    rk4_sampled,
    rk4_sampled_2dt,
    rk4_sampled_causal,
    rk4_sampled_cubic,
    rk4_sampled_spline,
    semi_implicit_euler,
)
from odernn.data.systems import SYSTEMS, Oscillator
from odernn.errors import OdernnError, SpecError, StiffProblem
from odernn.types import Array

# ---------------------------------------------------------------- scipy

SCIPY_METHODS = ("DOP853", "RK45", "RK23", "Radau", "BDF")
"""``solve_ivp`` methods allowed (the implicit ones get the sparse Jacobian)."""


MIN_RTOL = 100 * float(np.finfo(float).eps)
"""SciPy's floor for ``rtol``: ``solve_ivp`` warns and raises a lower one to it."""

MAX_EVALUATIONS = 20_000
"""Evaluations of the right-hand side that ``solve_ivp`` may take per step of the output grid
reached (and as many before the first): beyond, the problem is stiff for its method, or its
forcing far faster than the grid, and the method would crawl on for hours (explicit DOP853
on ``eta = 10^9`` takes steps of ``10^-9``): it gives up in one line. The built-in specs
take far fewer (``tests/test_integrators.py``)."""


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
    if rtol < MIN_RTOL:
        raise SpecError(f"scipy: rtol must be at least 100 eps = {MIN_RTOL!r} (SciPy raises a "
                        f"lower one to that: a tolerance recorded would not be the one used), "
                        f"got {rtol!r}")
    n, forcing = system.n, system.forcing
    evaluations, per_step = [0], (len(t) - 1) / float(t[-1] - t[0]) if len(t) > 1 else 0.0

    def rhs(time: float, y: Array) -> Array:
        evaluations[0] += 1
        if evaluations[0] > MAX_EVALUATIONS * (1 + (time - t[0]) * per_step):
            raise StiffProblem(
                f"scipy: solve_ivp ({method}, rtol={rtol:g}, atol={atol:g}) took more than "
                f"{MAX_EVALUATIONS} evaluations per output step at t = {time:.6g}: the problem "
                "is stiff for this method, or its forcing far faster than the grid; if stiff, "
                "use an implicit method (Radau or BDF), or for the linear oscillator the "
                "exact solution")
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
    samples a surrogate gets."""
    causal: bool = False
    """Given the samples, each step from ``t_i`` uses none after ``F_{i+1}``: the information a
    surrogate's closed loop has by then (``rk4`` and Euler's given samples too: linear between
    ``F_i`` and ``F_{i+1}``, or ``F_i`` alone). The cubic, the spline and the ``2 dt`` step
    read later samples; SciPy's adaptive steps cross several."""
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
    Integrator("euler", euler, 1, "forward Euler, the notes' update", in_specs=True,
               causal=True),
    Integrator("semi-implicit-euler", semi_implicit_euler, 1,
               "semi-implicit (symplectic) Euler", in_specs=True, causal=True),
    Integrator("rk4", rk4, 4, "classical RK4 with the forcing evaluated exactly at half steps",
               in_specs=True, causal=True),
    Integrator("rk4-sampled", rk4_sampled, 2,
               "RK4 at step dt on the samples F_i, linear interpolation at half steps",
               sampled_forcing=True, causal=True),
    Integrator("rk4-sampled-causal", rk4_sampled_causal, 3,
               "RK4 at step dt on the samples F_i, the cubic through F_i-2 .. F_i+1 at half "
               "steps (no later sample)", sampled_forcing=True, causal=True),
    Integrator("rk4-sampled-cubic", rk4_sampled_cubic, 4,
               "RK4 at step dt on the samples F_i, local cubic through 4 samples at half steps "
               "(reads F_i+2)", sampled_forcing=True),
    Integrator("rk4-sampled-spline", rk4_sampled_spline, 4,
               "RK4 at step dt on the samples F_i, not-a-knot cubic spline at half steps "
               "(reads every sample)", sampled_forcing=True),
    Integrator("rk4-sampled-2dt", rk4_sampled_2dt, 4,
               "RK4 at step 2 dt on the samples F_i, F_i+1, F_i+2 (start, midpoint, end), odd "
               "points by quintic Hermite (reads F_i+2)", sampled_forcing=True),
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
