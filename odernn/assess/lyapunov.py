"""The largest Lyapunov exponent of each trajectory of a batch, from the system's equations.

Two estimates, vectorised over trajectories (docs/metrics.md, "Lyapunov exponents"):

- ``benettin``: a reference and a perturbed trajectory, ``d0`` apart in ``(x, v)``,
  integrated together by classic RK4 and brought back to distance ``d0`` along their
  current separation at the end of every renormalisation interval;
- ``variational``: the reference and a tangent vector ``w`` with ``w' = J(x, v) w``,
  ``J = [[0, 1], [da/dx, da/dv]]`` (:attr:`System.partials`), integrated by the same RK4
  and renormalised to unit length at the same instants.

The exponent is the mean of ``log(growth)`` per interval over the measured intervals,
divided by the interval's length, after ``n_transient`` intervals are discarded. The
interval is the forcing period where each trajectory's forcing is one cosine (then the
exponent is that of the stroboscopic map per time unit: periodic motion gives a negative
exponent, quasi-periodic motion about zero, chaos a positive one), else a fixed time.
Every interval is cut into the same number of RK4 steps, none longer than ``max_step``.
Each trajectory runs as several replicas started a hair apart, which chaos turns into
independent stretches of its attractor (:func:`largest_lyapunov`). Each estimate carries
its values over the two halves of the measured window: their difference is the
convergence check.

Memory: a few ``(replicas, N)`` arrays per step, and the forcing over one interval at
the half steps, ``(2 n_sub + 1, N)``, checked against the budget; nothing ``(N, T)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from odernn import budget
from odernn.checks import did_you_mean
from odernn.data.forcing import HarmonicForcing, SampledForcing
from odernn.data.systems import Oscillator
from odernn.data.trajectories import Trajectories
from odernn.errors import DataError, SpecError
from odernn.progress import Event, Progress, reporter
from odernn.types import Array

METHODS = ("benettin", "variational")
"""The estimates :func:`largest_lyapunov` offers."""
D0 = 1e-8
"""Benettin's separation in ``(x, v)``: far above rounding, far below the attractor."""
N_TRANSIENT = 30
"""Renormalisation intervals discarded by default: the approach to the attractor, the
replicas' separation (``SPREAD`` grows to the attractor's size) and the alignment of the
perturbation with the most unstable direction."""
N_MEASURE = 120
"""Renormalisation intervals measured by default (docs/metrics.md: with the replicas,
enough for the halves of the window to agree on ``duffing-chaos``)."""
REPLICAS = 8
"""Copies of each trajectory run side by side by default (:func:`largest_lyapunov`)."""
DRIFT = 1e3
"""Benettin's separation is brought back to ``d0`` within an interval once it has grown or
shrunk by this factor: far from rounding (``d0 / DRIFT`` is 1e-11) and from the
attractor's size; the variational tangent to length 1 likewise, far from float64's limits."""
SPREAD = 1e-6
"""Distance in ``(x, v)`` of the replicas' initial states from the trajectory's."""
FIXED_INTERVAL = 2 * math.pi
"""The renormalisation interval where the forcing is not one cosine (none, several, or
samples)."""
ABS_TOL, REL_TOL = 0.01, 0.2
"""The convergence check: the halves of the window may differ by ``max(ABS_TOL, REL_TOL
|lambda|)`` per time unit. The estimate is their mean, so its own error is about half their
difference: within 10% of ``lambda``, or 0.005 (``ABS_TOL`` is the marginal band of
benchmarks/regimes.py)."""


@dataclass(frozen=True)
class LyapunovEstimate:
    """Per-trajectory estimates ``(N,)`` of the largest exponent (per time unit) and how
    they were obtained; NaN where the run left the finite numbers."""

    exponent: np.ndarray
    first_half: np.ndarray
    """The exponent over the first half of the measured intervals."""
    second_half: np.ndarray
    """... and over the second half."""
    interval: np.ndarray
    """Renormalisation interval per trajectory (time units)."""
    step: np.ndarray
    """RK4 step per trajectory."""
    method: str
    n_transient: int
    n_measure: int
    replicas: int

    @property
    def change(self) -> np.ndarray:
        """``|second_half - first_half|``: how far the estimate still moves."""
        return np.abs(self.second_half - self.first_half)

    @property
    def tolerance(self) -> np.ndarray:
        """The change allowed: ``max(ABS_TOL, REL_TOL |exponent|)``."""
        return np.maximum(ABS_TOL, REL_TOL * np.abs(self.exponent))

    @property
    def converged(self) -> np.ndarray:
        """True where the halves agree within :attr:`tolerance` (False where NaN)."""
        return self.change <= self.tolerance

    @property
    def lyapunov_time(self) -> np.ndarray:
        """``1 / exponent`` where the exponent is positive, else NaN."""
        with np.errstate(divide="ignore"):
            return np.where(self.exponent > 0, 1.0 / self.exponent, np.nan)


def _count(value: object, name: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < least:
        raise SpecError(f"lyapunov: {name} must be an integer >= {least}, got {value!r}")
    return int(value)


def _positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < math.inf:
        raise SpecError(f"lyapunov: {name} must be a finite number > 0, got {value!r}")
    return float(value)


def _initial(value: Array, name: str, n: int) -> np.ndarray:
    u = np.asarray(value, dtype=np.float64)
    if u.shape != (n,) or not np.all(np.isfinite(u)):
        raise SpecError(f"lyapunov: {name} must be {n} finite values (one per trajectory), "
                        f"got shape {u.shape}")
    return u


def _schedule(osc: Oscillator, max_step: float, interval: float | None, t0: float,
              total: int) -> tuple[np.ndarray, int, Callable[[int], np.ndarray]]:
    """Renormalisation interval ``(N,)``, RK4 steps per interval, and the forcing over
    interval ``p`` (of ``total``, from time ``t0``) at its half steps, ``(2 n_sub + 1, N)``
    (a fixed table when the interval is each trajectory's forcing period). Forcing known
    only as samples is known only over their span, which the intervals must fit in."""
    forcing, n = osc.forcing, osc.n
    single = (isinstance(forcing, HarmonicForcing) and np.shape(forcing.omega)[1] == 1
              and bool(np.all(np.asarray(forcing.omega) > 0)))
    if interval is None and single:
        period = 2 * np.pi / np.asarray(forcing.omega, dtype=np.float64)[:, 0]
    else:
        period = np.full(n, FIXED_INTERVAL if interval is None else interval)
    if isinstance(forcing, SampledForcing):
        span = float(np.asarray(forcing.t, dtype=np.float64)[-1]) - t0
        if not span > 0:
            raise SpecError(f"lyapunov: the forcing's samples end before t0 = {t0!r}")
        if interval is None:
            period = np.minimum(period, span / total)
        elif total * interval > span * (1 + 1e-12):
            raise SpecError(f"lyapunov: the forcing is known as samples up to {span:.6g} time "
                            f"units from the start; {total} intervals of {interval:.6g} run "
                            "past them: use a shorter interval or fewer intervals")
    n_sub = max(1, math.ceil(float(period.max()) / max_step - 1e-9))
    budget.check(f"lyapunov: {n} trajectories, {n_sub} steps per renormalisation interval",
                 4 * (2 * n_sub + 1) * n * budget.FLOAT64,
                 "use a larger max_step or fewer trajectories")
    half = np.arange(2 * n_sub + 1)[:, None] * (period / (2 * n_sub))  # (2 n_sub + 1, N)
    if interval is None and single:
        amp, omega, phase = (np.asarray(a, dtype=np.float64)[:, 0]
                             for a in (forcing.amplitude, forcing.omega, forcing.phase))
        table = amp * np.cos(omega * (t0 + half) + phase)
        return period, n_sub, lambda p: table
    times = half[:, 0]
    return period, n_sub, lambda p: np.ascontiguousarray(forcing(t0 + p * period[0] + times).T)


def _rk4(acc: Callable[[Array, Array, Array], Array], x: Array, v: Array, F0: Array,
         Fh: Array, F1: Array, h: Array) -> tuple[Array, Array, tuple[Array, ...]]:
    """One classic RK4 step of ``x' = v, v' = acc(x, v, F)`` (``h = (h/2, h, h/6)``), in
    fewer array operations than :func:`~odernn.data.stepping.rk4_step`; also returns the
    stage states ``(x, v)`` at which the variational equation needs ``J``. Both methods
    step the reference by this one function, so their reference orbits are the same to the
    last bit."""
    h2, h1, h6 = h
    a1 = acc(x, v, F0)
    x2, v2 = x + h2 * v, v + h2 * a1
    a2 = acc(x2, v2, Fh)
    x3, v3 = x + h2 * v2, v + h2 * a2
    a3 = acc(x3, v3, Fh)
    x4, v4 = x + h1 * v3, v + h1 * a3
    a4 = acc(x4, v4, F1)
    return (x + h6 * (v + 2.0 * (v2 + v3) + v4), v + h6 * (a1 + 2.0 * (a2 + a3) + a4),
            (x, v, x2, v2, x3, v3, x4, v4))


def _drifted(a: Array, b: Array, near: tuple[float, float], last: bool
             ) -> np.ndarray | slice | None:
    """Where the vector ``(a, b)`` is to be renormalised: everywhere at the interval's end
    (``last``), else where its squared length has left ``near`` (NaN counts as left; the
    interval's end gives it), or None where nowhere."""
    if last:
        return slice(None)
    n2 = a * a + b * b
    far = ~((n2 >= near[0]) & (n2 <= near[1]))
    return far if far.any() else None


def _benettin(osc: Oscillator, x0: Array, v0: Array, direction: Array, h: tuple[Array, ...],
              n_sub: int, table: Callable[[int], np.ndarray], n_total: int, d0: float
              ) -> Iterator[np.ndarray]:
    """``log(d / d0)`` over each interval, ``(R, N)``; the perturbed trajectory brought
    back to distance ``d0`` along the separation after it, and within it wherever the
    separation has left ``[d0 / DRIFT, d0 DRIFT]`` (its growths summed): a strongly
    damped orbit over a long interval contracted it below rounding (``log 0``)."""
    x = np.stack([x0, x0 + d0 * direction[0]])
    v = np.stack([v0, v0 + d0 * direction[1]])
    acc = osc.acceleration
    near = ((d0 / DRIFT) ** 2, (d0 * DRIFT) ** 2)
    for p in range(n_total):
        F = table(p)
        growth = np.zeros(x.shape[1:])
        for s in range(n_sub):
            x, v, _ = _rk4(acc, x, v, F[2 * s], F[2 * s + 1], F[2 * s + 2], h)
            dx, dv = x[1] - x[0], v[1] - v[0]
            far = _drifted(dx, dv, near, s == n_sub - 1)
            if far is None:
                continue
            d = np.hypot(dx[far], dv[far])
            growth[far] += np.log(d / d0)
            x[1][far] = x[0][far] + dx[far] * (d0 / d)
            v[1][far] = v[0][far] + dv[far] * (d0 / d)
        yield growth


def _variational(osc: Oscillator, x0: Array, v0: Array, direction: Array,
                 h: tuple[Array, ...], n_sub: int, table: Callable[[int], np.ndarray],
                 n_total: int, d0: float) -> Iterator[np.ndarray]:
    """``log |w|`` over each interval, ``(R, N)``; the tangent ``w`` renormalised to unit
    length after it, and within it wherever ``|w|`` has left ``[1 / DRIFT, DRIFT]`` (its
    growths summed): over a long, strongly damped interval it fell below float64's normal
    numbers and stopped there, an exponent of ``-744 / tau``. ``w`` is stepped by the RK4
    of ``w' = J w`` with ``J`` at the reference's stage states: the derivative of the
    reference's RK4 map."""
    x, v = x0, v0
    wx, wv = direction[0], direction[1]
    acc, partials, params = osc.acceleration, osc.system.partials, osc.params
    h2, h1, h6 = h

    def jw(x: Array, v: Array, wx: Array, wv: Array) -> Array:
        ax, av = partials(x, v, params)
        return ax * wx + av * wv

    near = (DRIFT**-2, DRIFT**2)
    for p in range(n_total):
        F = table(p)
        growth = np.zeros(np.broadcast_shapes(np.shape(x), np.shape(wx)))
        for s in range(n_sub):
            x, v, (xa, va, xb, vb, xc, vc, xd, vd) = _rk4(acc, x, v, F[2 * s], F[2 * s + 1],
                                                          F[2 * s + 2], h)
            b1 = jw(xa, va, wx, wv)
            wx2, wv2 = wx + h2 * wv, wv + h2 * b1
            b2 = jw(xb, vb, wx2, wv2)
            wx3, wv3 = wx + h2 * wv2, wv + h2 * b2
            b3 = jw(xc, vc, wx3, wv3)
            wx4, wv4 = wx + h1 * wv3, wv + h1 * b3
            b4 = jw(xd, vd, wx4, wv4)
            wx, wv = (wx + h6 * (wv + 2.0 * (wv2 + wv3) + wv4),
                      wv + h6 * (b1 + 2.0 * (b2 + b3) + b4))
            far = _drifted(wx, wv, near, s == n_sub - 1)
            if far is None:
                continue
            norm = np.hypot(wx[far], wv[far])
            growth[far] += np.log(norm)
            wx[far], wv[far] = wx[far] / norm, wv[far] / norm
        yield growth


def largest_lyapunov(osc: Oscillator, x0: Array, v0: Array, *, method: str = "benettin",
                     max_step: float, n_transient: int = N_TRANSIENT,
                     n_measure: int = N_MEASURE, replicas: int = REPLICAS,
                     interval: float | None = None, d0: float = D0, seed: int = 0,
                     t0: float = 0.0, progress: bool | Progress | None = None
                     ) -> LyapunovEstimate:
    """The largest Lyapunov exponent of each oscillator of ``osc`` from ``(x0, v0)`` at
    ``t = t0``, by ``method`` (``benettin`` or ``variational``).

    ``max_step`` bounds the RK4 step (the data's ``dt``, or a fraction of it);
    ``interval`` overrides the renormalisation interval (default: each trajectory's
    forcing period for a single cosine, else :data:`FIXED_INTERVAL`; forcing known only as
    samples (imported data) shortened so that every interval lies within them: the
    samples' end values held beyond them would be another system). Each trajectory
    runs as ``replicas`` copies, copy 0 from ``(x0, v0)`` and the others :data:`SPREAD`
    from it: chaos makes them independent stretches of the same attractor during the
    transient (a stable orbit draws them together), so the estimate averages
    ``replicas x n_measure`` intervals for much less than that many times the cost of one
    (numpy's cost per operation hardly grows with the array at these sizes). The
    offsets and the initial perturbations of trajectory i are drawn from
    ``SeedSequence(seed).spawn(N)[i]``, the same for both methods, whose reference orbits
    are then the same to the last bit. A trajectory's estimate does not depend on the
    others in the batch but through the step, which divides the batch's longest interval
    into whole steps of at most ``max_step``. ``progress`` receives an
    :class:`~odernn.progress.Event` (task ``lyapunov``) every few intervals. Bad settings
    are refused with one :class:`SpecError` line.
    """
    if method not in METHODS:
        raise SpecError(f"lyapunov: unknown method {method!r}{did_you_mean(method, METHODS)}; "
                        f"allowed: {', '.join(METHODS)}")
    max_step = _positive(max_step, "max_step")
    n_transient = _count(n_transient, "n_transient", 0)
    n_measure = _count(n_measure, "n_measure", 2)
    replicas = _count(replicas, "replicas", 1)
    if interval is not None:
        interval = _positive(interval, "interval")
    d0 = _positive(d0, "d0")
    if d0 > 1e-4:
        raise SpecError(f"lyapunov: d0 must be small (<= 1e-4) to measure the linear growth, "
                        f"got {d0!r}")
    n = osc.n
    x0, v0 = _initial(x0, "x0", n), _initial(v0, "v0", n)
    budget.check(f"lyapunov: {n} trajectories x {replicas} replicas",
                 40 * replicas * n * budget.FLOAT64, "use fewer replicas or trajectories")
    split, total = n_transient + n_measure // 2, n_transient + n_measure
    t0 = float(t0)
    if not math.isfinite(t0):
        raise SpecError(f"lyapunov: t0 must be a finite number, got {t0!r}")
    period, n_sub, table = _schedule(osc, max_step, interval, t0, total)
    step = period / n_sub
    # trajectory i draws from its own stream, so its estimate does not depend on the others
    angles = np.stack([np.random.default_rng(s).uniform(0.0, 2 * np.pi, (2, replicas))
                       for s in np.random.SeedSequence(seed).spawn(n)], axis=-1)
    offset = SPREAD * np.stack([np.cos(angles[0]), np.sin(angles[0])])
    offset[:, 0] = 0.0  # copy 0 starts at the trajectory's own initial state
    direction = np.stack([np.cos(angles[1]), np.sin(angles[1])])
    run = _benettin if method == "benettin" else _variational
    first, second = np.zeros(n), np.zeros(n)
    report, every = reporter(progress), max(1, total // 50)
    with np.errstate(all="ignore"):  # a run that diverges must not stop the others
        for p, growth in enumerate(run(osc, x0 + offset[0], v0 + offset[1], direction,
                                       (step / 2, step, step / 6), n_sub, table, total, d0)):
            if p >= split:
                second += growth.sum(axis=0)
            elif p >= n_transient:
                first += growth.sum(axis=0)
            if (p + 1) % every == 0 or p + 1 == total:
                report(Event("lyapunov", "interval", p + 1, total,
                             f"{method}: interval {p + 1} of {total}"))
    report(Event("lyapunov", "done", total, total, f"{method}: {n} trajectories", log=True))
    bad = ~(np.isfinite(first) & np.isfinite(second))
    first[bad] = second[bad] = np.nan
    n_first = n_measure // 2
    n_second = n_measure - n_first
    return LyapunovEstimate(
        exponent=(first + second) / (replicas * n_measure * period),
        first_half=first / (replicas * n_first * period),
        second_half=second / (replicas * n_second * period),
        interval=period, step=step, method=method, n_transient=n_transient,
        n_measure=n_measure, replicas=replicas)


def lyapunov_exponents(data: Trajectories, *, method: str = "benettin",
                       max_step: float | None = None, **options: object) -> LyapunovEstimate:
    """:func:`largest_lyapunov` of each trajectory of ``data`` from its initial state at the
    grid's first time, under its stored system and forcing, with steps no longer than
    ``data.dt`` by default."""
    if data.is_series:
        raise DataError("lyapunov: a series has no equations of motion; the exponent needs "
                        "an oscillator dataset")
    return largest_lyapunov(data.oscillator(), data.x[:, 0], data.v[:, 0], method=method,
                            max_step=data.dt if max_step is None else max_step,
                            t0=float(data.t[0]), **options)
