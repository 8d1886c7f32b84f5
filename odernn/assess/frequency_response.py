"""The frequency response of a system without a closed form, against the integrator.

The resonance check (:mod:`odernn.assess.resonance`) generalised: the steady-state
amplitude against the drive frequency, where no formula gives it. Every drive is
``F0 cos(omega t)``; the system's damping-like parameter (eta; mu for van-der-pol) takes
the test set's quartiles (one column of the report each) and its other parameters the
test set's medians. The reference is the integrator, SciPy's DOP853 at ``rtol 1e-12``
(:data:`REFERENCE_SOLVER`), never the linear formula.

By default each damping level is swept up and then down in frequency by continuation:
each drive starts from the previous drive's end state, with the drive's phase continuous
across the change of frequency, so that where two stable responses coexist (Duffing's
hysteresis) the two sweeps part and the response jumps. ``continuation=False`` starts
every drive from rest instead. A drive lasts until its transients have decayed: with a
damping parameter, ``2 ln(1 / transient_tol) / eta`` (the flow's divergence is ``-eta``
for every system here that has one, so perturbations of a periodic response shrink as
``exp(-eta t / 2)`` on average; overdamped at rest, as its slow mode), without one
(van-der-pol) ``periods`` periods of the
slowest drive; then ``fit_periods`` periods of the slowest drive, over whose whole
periods of its own drive each response's first harmonic is fitted
(:func:`~odernn.assess.resonance.fit_steady_state`). Each drive is capped at ``max_steps``.

A nonlinear response need not be periodic at the drive's frequency (quasi-periodic Van
der Pol, subharmonics, chaos), and then its amplitude is no sharp number. The
**periodicity** of a drive is the spread of its stroboscopic samples, the state
``(x, v / omega)`` once per drive period over the fit window, relative to the fitted
amplitude: 0 for a response periodic at the drive frequency. Errors are scored only over
the drives whose reference spread is at most ``periodic_tol``; the others are counted.
:func:`measure_frequency_response` runs the whole check.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from odernn.assess.closed_loop import closed_loop_marked
from odernn.assess.resonance import (
    ResonanceSettings,
    check_settings,
    check_sweep,
    decay_rate,
    drive_amplitude,
    drive_frequencies,
    fit_steady_state,
)
from odernn.checks import did_you_mean
from odernn.data.forcing import HarmonicForcing
from odernn.data.integrators import INTEGRATORS
from odernn.data.systems import SYSTEMS, Oscillator
from odernn.data.trajectories import Trajectories
from odernn.errors import OdernnError, SpecError
from odernn.learn.models.base import Surrogate
from odernn.types import Array

SOLVER = "scipy"
REFERENCE_SOLVER = {"method": "DOP853", "rtol": 1e-12, "atol": 1e-14}
"""The integrator settings of a reference where no closed form exists: those the built-in
specs of the nonlinear systems are simulated with (also how the evaluator extends the
``data`` reference to the work-precision sweep's other grids)."""
LEVEL_PARAMETER = {"van-der-pol": "mu"}
"""The damping-like parameter of each system whose quartiles the sweep takes (else eta)."""
JUMP = 0.1
"""Up and down sweeps whose amplitudes differ by more than this (relative) have parted."""


@dataclass(frozen=True)
class ResponsePlan:
    """R rows of drives, each through K segments of one frequency.

    ``level (R,)``: the value of ``parameter`` per row; ``direction (R,)``: ``up``,
    ``down`` or ``rest``; ``fixed``: the other parameters; ``omega (R, K)`` each
    segment's frequency; ``phase (R, K)`` the drive's phase at each segment's start
    (continuous across segments); ``steps (K,)`` each segment's steps of ``dt``;
    ``fit_from (R, K)`` where each fit window starts, in the segment's own time.
    """

    system: str
    parameter: str
    fixed: dict[str, float]
    level: np.ndarray
    direction: tuple[str, ...]
    omega: np.ndarray
    phase: np.ndarray
    steps: np.ndarray
    fit_from: np.ndarray
    dt: float
    F0: float
    rule: str

    def params(self) -> dict[str, np.ndarray]:
        """Every system parameter per row."""
        rows = np.ones_like(self.level)
        return {self.parameter: self.level, **{k: v * rows for k, v in self.fixed.items()}}

    def segment(self, k: int) -> tuple[Oscillator, np.ndarray]:
        """The oscillators of segment ``k`` and its time grid, from 0."""
        col = np.ones((self.level.size, 1))
        forcing = HarmonicForcing(self.F0 * col, self.omega[:, k:k + 1], self.phase[:, k:k + 1])
        return (Oscillator.of(self.system, self.params(), forcing),
                self.dt * np.arange(int(self.steps[k]) + 1))

    @property
    def starts(self) -> np.ndarray:
        """Index of each segment's first point on the whole sweep's grid."""
        return np.concatenate(([0], np.cumsum(self.steps)[:-1]))

    def forcing_samples(self) -> np.ndarray:
        """``F (R, 1 + sum(steps))``: the whole sweep's drive at its grid points."""
        parts = [system.forcing(t)[:, 1 if k else 0:]
                 for k, (system, t) in enumerate(map(self.segment, range(self.steps.size)))]
        return np.concatenate(parts, axis=1)


def _decay_at_rest(system: Any, eta: np.ndarray, fixed: Mapping[str, float]) -> np.ndarray:
    """The transients' decay rate at each damping level: ``eta / 2`` (the flow's divergence
    halved), or the slow mode's where the system linearised at rest, ``x'' + eta x' + k x``
    with ``k > 0``, is overdamped (:func:`~odernn.assess.resonance.decay_rate`)."""
    params = {**{k: np.full(eta.size, v) for k, v in fixed.items()}, "eta": eta}
    da_dx, _ = system.partials(np.zeros(eta.size), np.zeros(eta.size), params)
    k = -np.asarray(da_dx, dtype=np.float64)
    return np.where(k > 0, decay_rate(eta, np.maximum(k, 0.0)), eta / 2)


def plan_response(test: Trajectories, settings: ResonanceSettings, methods: int = 1
                  ) -> ResponsePlan | str:
    """The frequency-response sweep of a test set, or the reason it allows none (a string).

    Settings no sweep can use are one SpecError line; a sweep of ``methods`` rollouts over
    the budget, a BudgetError."""
    check_settings(settings)
    system = SYSTEMS[test.system]
    parameter = LEVEL_PARAMETER.get(system.name, "eta")
    given = dict(settings.parameters or {})
    for name in given:
        if name not in system.names or name == parameter:
            others = [n for n in system.names if n != parameter]
            raise SpecError(f"resonance parameters: {name!r} is not a fixed parameter of "
                            f"{system.name!r}{did_you_mean(name, others)}; allowed: "
                            f"{', '.join(others) or '(none)'} ({parameter} takes etas)")
    fixed = {p.name: float(given.get(p.name, np.median(test.params[p.name])))
             for p in system.parameters if p.name != parameter}
    for p in system.parameters:
        if p.name in fixed:
            p.check(np.array(fixed[p.name]), f"resonance parameters of {system.name!r}")
    values = np.asarray(test.params[parameter], dtype=np.float64)
    if settings.etas is not None:
        levels = np.asarray(settings.etas, dtype=np.float64)
    elif np.any(values > 0):
        levels = np.unique(np.quantile(values[values > 0], [0.25, 0.75]))
    else:
        return f"the test set has no {parameter} > 0: no response settles"
    for p in system.parameters:
        if p.name == parameter:
            p.check(levels, f"resonance etas of {system.name!r}")
    F0 = drive_amplitude(test, settings)
    if not F0 > 0:
        return "the test set has no forcing: a surrogate never saw a drive to respond to"
    omegas = drive_frequencies(test, settings)
    if settings.continuation:
        direction = ("up", "down") * levels.size
        omega = np.array([omegas if d == "up" else omegas[::-1] for d in direction])
        level = np.repeat(levels, 2)
    else:
        direction = ("rest",) * (levels.size * omegas.size)
        omega = np.tile(omegas, levels.size)[:, None]
        level = np.repeat(levels, omegas.size)
    dt = test.dt
    slowest = 2 * math.pi / omega.min(axis=0)
    window = settings.fit_periods * slowest
    if parameter == "eta":
        settle = np.full_like(slowest, math.log(1 / settings.transient_tol)
                              / float(_decay_at_rest(system, levels, fixed).min()))
        rule = (f"ln(1/{settings.transient_tol:g}) / rate = {settle[0]:.3g} to settle (the "
                "transients' decay exp(-eta t/2), or overdamped at rest its slow mode's)")
    else:
        settle = settings.periods * slowest
        rule = (f"{settings.periods} periods of the slowest drive to settle ({parameter} sets "
                "no decay rate)")
    steps = np.minimum(settings.max_steps, np.ceil((settle + window) / dt)).astype(int)
    check_sweep(omega.shape[0], 1 + int(steps.sum()), methods)
    rule += (f", then {settings.fit_periods} periods of the slowest drive to fit over, at most "
             f"{settings.max_steps} steps a drive")
    t_end = dt * steps
    period = 2 * math.pi / omega
    whole = np.maximum(1, np.floor(np.minimum(window, t_end / 2) / period + 1e-9))
    fit_from = t_end - whole * period
    advance = np.cumsum(omega * t_end, axis=1)
    phase = np.mod(np.concatenate((np.zeros((omega.shape[0], 1)), advance[:, :-1]), axis=1),
                   2 * math.pi)
    return ResponsePlan(system.name, parameter, fixed, level, direction, omega, phase, steps,
                        fit_from, dt, F0, rule)


def reference_run(system: Oscillator, x0: np.ndarray, v0: np.ndarray,
                  t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SciPy at :data:`REFERENCE_SOLVER` over the stacked drives ``x, v (R, T)``. A drive
    that escapes to infinity in finite time (a softening Duffing driven over its well's
    edge) stops the step of the whole stack: the drives are then integrated in halves,
    recursively, and one that fails alone is NaN throughout (diverged, not scored), the
    others as before to the solver's tolerance. A drive from a state not finite is NaN."""
    x, v = np.full((system.n, t.size), np.nan), np.full((system.n, t.size), np.nan)
    rows = np.flatnonzero(np.isfinite(x0) & np.isfinite(v0))
    if rows.size == 0:
        return x, v
    part = system if rows.size == system.n else system.take(rows)
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            x[rows], v[rows] = INTEGRATORS[SOLVER](part, x0[rows], v0[rows], t,
                                                   **REFERENCE_SOLVER)
    except OdernnError:
        if rows.size == 1:
            return x, v
        for half in np.array_split(rows, 2):
            x[half], v[half] = reference_run(system.take(half), x0[half], v0[half], t)
    return x, v


def integrate_reference(plan: ResponsePlan) -> tuple[np.ndarray, np.ndarray]:
    """The reference ``x, v (R, 1 + sum(steps))`` over the whole sweep: SciPy at
    :data:`REFERENCE_SOLVER`, segment by segment, each from the previous one's end state
    (the first from rest)."""
    n = plan.level.size
    x0, v0 = np.zeros(n), np.zeros(n)
    xs, vs = [], []
    for k in range(plan.steps.size):
        system, t = plan.segment(k)
        x, v = reference_run(system, x0, v0, t)
        xs.append(x[:, 1 if k else 0:])
        vs.append(v[:, 1 if k else 0:])
        x0, v0 = x[:, -1], v[:, -1]
    return np.concatenate(xs, axis=1), np.concatenate(vs, axis=1)


def stroboscopic(t: Array, x: Array, v: Array, omega: Array | float,
                 times: Array) -> np.ndarray:
    """The states ``(x, v / omega)``, shape ``(2, R, M)``, of the rows of ``x, v (R, T)`` on
    the grid ``t`` at ``times (M,)``, by cubic spline between grid points (error
    ``~(omega dt)^4``); ``omega`` a number or one per row. NaN for a row not finite."""
    from scipy.interpolate import CubicSpline

    y = np.stack((np.asarray(x, dtype=np.float64),
                  np.asarray(v, dtype=np.float64) / np.reshape(omega, (-1, 1))))
    bad = ~np.all(np.isfinite(y), axis=(0, 2))
    y[:, bad] = 0.0
    out = CubicSpline(t, y, axis=2)(times)
    out[:, bad] = np.nan
    return out


def periodicity(x: Array, v: Array, t: Array, omega: Array, fit_from: Array,
                amplitude: Array) -> np.ndarray:
    """The spread of the stroboscopic samples ``(x, v / omega)``, once per drive period
    back from ``t[-1]`` to ``fit_from``, relative to ``amplitude`` (M,): 0 for a response
    periodic at the drive frequency, ``inf`` where ``x`` or ``v`` is not finite
    (:func:`stroboscopic`)."""
    out = np.full(len(omega), np.inf)
    for r, (w, start, amp) in enumerate(zip(omega, fit_from, amplitude, strict=True)):
        keep = t >= start - 3 * (t[1] - t[0])
        period = 2 * math.pi / w
        times = t[-1] - period * np.arange(int(round((t[-1] - start) / period)) + 1)
        state = stroboscopic(t[keep], np.asarray(x[r:r + 1])[:, keep],
                             np.asarray(v[r:r + 1])[:, keep], w, times)[:, 0]
        if np.all(np.isfinite(state)) and amp > 0:
            out[r] = float(np.max(np.hypot(*(state - state[:, :1])))) / amp
    return out


def responses(plan: ResponsePlan, x: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
    """Amplitude, phase lag behind the drive and periodicity of every drive, ``(R, K)``."""
    out = {key: np.empty(plan.omega.shape) for key in ("amplitude", "lag", "periodicity")}
    for k, start in enumerate(plan.starts):
        t = plan.dt * np.arange(int(plan.steps[k]) + 1)
        part = slice(start, start + t.size)
        amp, lag = fit_steady_state(x[:, part], t, plan.omega[:, k], plan.fit_from[:, k])
        out["amplitude"][:, k] = amp
        out["lag"][:, k] = np.mod(lag + plan.phase[:, k] + math.pi / 2, 2 * math.pi) - math.pi / 2
        out["periodicity"][:, k] = periodicity(x[:, part], v[:, part], t, plan.omega[:, k],
                                               plan.fit_from[:, k], amp)
    return out


def scores(reference: Mapping[str, np.ndarray], method: Mapping[str, np.ndarray],
           periodic: np.ndarray, tol: float) -> dict[str, Any]:
    """Relative amplitude and absolute phase errors over the drives where the reference is
    periodic (NaN where there is none), the drives that diverged (all drives), and how
    many scored drives the method itself answered with no periodic response."""
    amp, ref = np.asarray(method["amplitude"])[periodic], np.asarray(reference["amplitude"])[
        periodic]
    rel = np.abs(amp - ref) / ref
    dphi = np.abs(np.angle(np.exp(1j * (np.asarray(method["lag"]) - reference["lag"])[periodic])))
    dphi[~np.isfinite(dphi)] = np.inf

    def stat(f: Callable[[np.ndarray], Any], a: np.ndarray) -> float:
        return float(f(a)) if a.size else math.nan

    return {
        "amplitude_rel_error_median": stat(np.median, rel),
        "amplitude_rel_error_max": stat(np.max, rel),
        "lag_error_median": stat(np.median, dphi),
        "lag_error_max": stat(np.max, dphi),
        "n_diverged": int(np.count_nonzero(~np.isfinite(method["amplitude"]))),
        "n_scored": int(np.count_nonzero(periodic)),
        "n_not_periodic": int(np.count_nonzero(~(method["periodicity"][periodic] <= tol))),
    }


def shape(plan: ResponsePlan, ref: Mapping[str, np.ndarray],
          periodic: np.ndarray) -> list[dict[str, Any]]:
    """What the reference's response looks like, per level: the peak of each sweep (over
    periodic drives), the frequencies where the up and down sweeps part by more than
    :data:`JUMP` (both periodic: two stable responses), and the periodic ones' range."""
    out, directions = [], np.asarray(plan.direction)
    for level in np.unique(plan.level):
        rows = np.flatnonzero(plan.level == level)
        entry: dict[str, Any] = {"level": float(level), "peak": {},
                                 "n_periodic": int(periodic[rows].sum())}
        for direction in dict.fromkeys(directions[rows]):  # a sweep, or the drives from rest
            mine = rows[directions[rows] == direction]
            ok = periodic[mine]
            if ok.any():
                r, i = np.unravel_index(np.argmax(np.where(ok, ref["amplitude"][mine], -np.inf)),
                                        ok.shape)
                entry["peak"][direction] = {"omega": float(plan.omega[mine[r], i]),
                                            "amplitude": float(ref["amplitude"][mine[r], i])}
        w = plan.omega[rows].ravel()[periodic[rows].ravel()]
        entry["periodic_omega"] = [float(w.min()), float(w.max())] if w.size else None
        entry["hysteresis"] = None
        if plan.direction[rows[0]] == "up" and rows.size == 2:
            up, down = rows
            back = slice(None, None, -1)  # the down sweep in increasing omega
            a_up, a_down = ref["amplitude"][up], ref["amplitude"][down][back]
            both = periodic[up] & periodic[down][back]
            parted = both & (np.abs(a_up - a_down) > JUMP * np.minimum(a_up, a_down))
            if parted.any():
                entry["hysteresis"] = [float(plan.omega[up][parted].min()),
                                       float(plan.omega[up][parted].max())]
        out.append(entry)
    return out


def backbone(plan: ResponsePlan, top: float) -> dict[str, list[float]] | None:
    """The free oscillation's frequency against amplitude by first-order harmonic balance,
    ``omega^2 = alpha + 3/4 beta A^2`` (Duffing; the pendulum's ``sin x ~ x - x^3/6`` gives
    alpha 1, beta -1/6), for A up to ``top``; None for another system."""
    if plan.system == "duffing":
        alpha, beta = plan.fixed["alpha"], plan.fixed["beta"]
    elif plan.system == "pendulum":
        alpha, beta = 1.0, -1.0 / 6.0
    else:
        return None
    amplitude = np.linspace(0.0, top, 120)
    square = alpha + 0.75 * beta * np.square(amplitude)
    keep = square > 0
    if not (keep.any() and math.isfinite(top)):
        return None
    return {"omega": np.sqrt(square[keep]).tolist(), "amplitude": amplitude[keep].tolist()}


def measure_frequency_response(test: Trajectories, surrogates: Mapping[str, Surrogate],
                               settings: ResonanceSettings,
                               say: Callable[[str], None]) -> dict[str, Any]:
    """The frequency response of the integrator and of every surrogate
    (``metrics.json``'s ``resonance`` with ``kind`` ``frequency-response``;
    ``{"skipped": reason}`` when the test set allows no sweep); ``say`` is told each stage.
    A surrogate that observes warm-up steps observes them from the reference."""
    plan = plan_response(test, settings, 1 + len(surrogates))
    if isinstance(plan, str):
        say(f"frequency response skipped: {plan}")
        return {"skipped": plan}
    x_ref, v_ref = integrate_reference(plan)
    say(f"frequency response: reference over {plan.omega.size} drives, {x_ref.shape[1]} steps "
        f"a row")
    ref = responses(plan, x_ref, v_ref)
    periodic = ref["periodicity"] <= settings.periodic_tol
    F, params = plan.forcing_samples(), plan.params()
    methods = {}
    for name, surrogate in surrogates.items():
        got = responses(plan, *closed_loop_marked(name, surrogate, F, params, (x_ref, v_ref)))
        methods[name] = {**{k: a.ravel() for k, a in got.items()},
                         **scores(ref, got, periodic, settings.periodic_tol)}
        say(f"frequency response: {name}")  # a stage each (and a safe point to stop)
    say(f"frequency response: {len(methods)} surrogates, {int(periodic.sum())} of "
        f"{periodic.size} drives periodic")
    rows = np.ones_like(plan.omega)
    damped = plan.parameter == "eta"
    rate = _decay_at_rest(SYSTEMS[plan.system], plan.level, plan.fixed) if damped else None
    left = float(np.max(np.exp(-rate[:, None] * plan.fit_from))) if damped else None
    return {
        "kind": "frequency-response", "system": plan.system, "parameter": plan.parameter,
        "levels": np.unique(plan.level), "parameters": plan.fixed,
        "continuation": settings.continuation, "reference": SOLVER,
        "reference_settings": dict(REFERENCE_SOLVER),
        "level": (plan.level[:, None] * rows).ravel(),
        "direction": [d for d in plan.direction for _ in range(plan.omega.shape[1])],
        "omega": plan.omega.ravel(), "F0": plan.F0, "dt": plan.dt,
        "n_steps": int(x_ref.shape[1]), "steps_per_drive": plan.steps, "horizon": plan.rule,
        "transient_tol": settings.transient_tol, "transient_left": left,
        "periodic_tol": settings.periodic_tol,
        "integrator": {**{k: a.ravel() for k, a in ref.items()}, "periodic": periodic.ravel()},
        "n_drives": int(periodic.size), "n_periodic": int(periodic.sum()),
        "shape": shape(plan, ref, periodic),
        "backbone": backbone(plan, 1.1 * float(np.max(ref["amplitude"], initial=0.0,
                                                      where=np.isfinite(ref["amplitude"])))),
        "methods": methods,
    }
