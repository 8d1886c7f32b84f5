"""The resonance check: steady-state amplitude and phase against the analytic response.

This module is the linear oscillator's check, and the entry point for every system:
:func:`measure_resonance` hands a system without a closed form to
:mod:`odernn.assess.frequency_response`, whose reference is the integrator.

Physics, not curve fitting: drive the oscillator from rest with
``F0 cos(omega t)`` over a sweep of frequencies at a few fixed dampings, wait
for the transient to die out (it decays as ``exp(-eta t / 2)``, or overdamped, eta > 2,
as its slow mode, :func:`decay_rate`), fit
``x = a cos(omega t) + b sin(omega t) + c`` over whole periods at the end, and
compare the amplitude ``hypot(a, b)`` and the phase lag ``atan2(b, a)`` with
``F0 / sqrt((1 - omega^2)^2 + (eta omega)^2)`` and ``atan2(eta omega, 1 - omega^2)``.

The sweep stays inside the test set's ranges (eta quartiles, its forcing
frequencies and amplitude), so a surrogate is asked nothing it was not trained
for, except the longer horizon. :func:`measure_resonance` runs the whole check.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from odernn import budget
from odernn.assess.closed_loop import closed_loop
from odernn.assess.metrics import divergence_steps, mark_diverged
from odernn.assess.results import REFERENCE
from odernn.checks import is_whole
from odernn.data.exact import steady_state_response
from odernn.data.forcing import HarmonicForcing
from odernn.data.integrators import INTEGRATORS
from odernn.data.systems import SYSTEMS, Oscillator
from odernn.data.trajectories import Trajectories
from odernn.errors import SpecError
from odernn.learn.models.base import Surrogate
from odernn.types import Array


@dataclass(frozen=True)
class ResonanceSettings:
    """How the sweep is built; ``None`` means "from the test set".

    ``etas``: values of the damping-like parameter (eta; mu for van-der-pol), by default
    the quartiles (0.25, 0.75) of the test set's positive values;
    ``omegas``: ``n_omega`` points over the test set's forcing frequencies;
    ``F0``: the median amplitude ``sqrt(2) rms(F)`` of the test forcings.
    The horizon lets the slowest transient decay to ``transient_tol`` of its
    start, then runs one period of the slowest drive, capped at ``max_steps``.

    For a system without a closed form (:mod:`odernn.assess.frequency_response`) also:
    ``parameters``, fixed values of its other parameters (default: the test set's
    medians); ``continuation``, sweep up and then down, each drive starting from the
    previous one's end state (False: every drive from rest); ``periods``, the settling
    time in periods of the slowest drive where the system has no damping parameter
    (van-der-pol); ``fit_periods``, the fit window in periods of the slowest drive;
    ``periodic_tol``, the largest stroboscopic spread (relative to the amplitude) of a
    drive counted as periodic. ``max_steps`` then caps each drive.
    """

    etas: tuple[float, ...] | None = None
    omegas: tuple[float, ...] | None = None
    n_omega: int = 24
    F0: float | None = None
    transient_tol: float = 1e-3
    max_steps: int = 8000
    default_omega_range: tuple[float, float] = (0.25, 2.0)
    parameters: Mapping[str, float] | None = None
    continuation: bool = True
    periods: int = 10
    fit_periods: int = 3
    periodic_tol: float = 1e-2


def check_settings(settings: ResonanceSettings) -> None:
    """Refuse settings no sweep can use, in one SpecError line."""
    for name in ("etas", "omegas"):
        given = getattr(settings, name)
        if given is not None and (len(given) == 0 or not all(g > 0 for g in given)
                                  or not all(math.isfinite(g) for g in given)):
            raise SpecError(f"resonance {name} must be positive numbers, got {list(given)}")
    whole = {"n_omega": 1, "max_steps": 10, "periods": 1, "fit_periods": 1}
    for name, least in whole.items():
        value = getattr(settings, name)
        if not is_whole(value) or value < least:
            raise SpecError(f"resonance {name} must be a whole number >= {least}, got {value!r}")
    for name in ("transient_tol", "periodic_tol"):
        value = getattr(settings, name)
        if not 0 < value < 1:
            raise SpecError(f"resonance {name} must be in (0, 1), got {value!r}")
    if settings.F0 is not None and not (settings.F0 > 0 and math.isfinite(settings.F0)):
        raise SpecError(f"resonance F0 must be a positive number, got {settings.F0!r}")


def drive_amplitude(test: Trajectories, settings: ResonanceSettings) -> float:
    """``settings.F0``, else the median over test trajectories of ``sqrt(2) rms(F)``."""
    if settings.F0 is not None:
        return float(settings.F0)
    F = np.asarray(test.F, dtype=np.float64)
    return float(np.median(np.sqrt(2.0 * np.mean(np.square(F), axis=1))))


def drive_frequencies(test: Trajectories, settings: ResonanceSettings) -> np.ndarray:
    """``settings.omegas``, else ``n_omega`` points over the test set's forcing frequencies
    (``default_omega_range`` when it stores none)."""
    if settings.omegas is not None:
        return np.asarray(settings.omegas, dtype=np.float64)
    budget.check(f"resonance: n_omega = {settings.n_omega}", 8 * 8 * settings.n_omega,
                 "reduce n_omega")  # the drives' own arrays, before the sweep's size is known
    lo, hi = settings.default_omega_range
    w = np.asarray(test.params.get("omega", []), dtype=np.float64)
    if np.any(w > 0):
        lo, hi = float(w[w > 0].min()), float(w.max())
    return np.linspace(lo, hi, settings.n_omega) if hi > lo else np.array([lo])


@dataclass(frozen=True)
class Sweep:
    """M driven oscillators from rest: ``eta (M,)``, ``omega (M,)``, time grid ``t (T,)``.

    ``fit_from (M,)``: the first time of each fit window (whole periods ending at
    ``t[-1]``); ``transient_left``: the largest ``exp(-rate t_fit)``, ``rate`` the
    :func:`decay_rate` of its eta (how much of a transient the fit may still see).
    """

    eta: np.ndarray
    omega: np.ndarray
    F0: float
    t: np.ndarray
    fit_from: np.ndarray
    transient_left: float

    def oscillator(self) -> Oscillator:
        col = np.ones((self.omega.size, 1))
        forcing = HarmonicForcing(self.F0 * col, self.omega[:, None], 0.0 * col)
        return Oscillator.linear(self.eta, forcing)

    def analytic(self) -> tuple[np.ndarray, np.ndarray]:
        """Analytic amplitude and phase lag at the sweep points."""
        return steady_state_response(self.omega, self.eta, self.F0)


def plan_sweep(test: Trajectories, settings: ResonanceSettings, methods: int = 1
               ) -> Sweep | str:
    """The linear oscillator's sweep for a test set, or the reason the test set allows none
    (a string). Settings no sweep can use are a SpecError (:func:`check_settings`); a sweep
    of ``methods`` rollouts over the budget, a BudgetError (:func:`check_sweep`)."""
    check_settings(settings)
    if not SYSTEMS[test.system].closed_form:
        return (f"system {test.system!r} has no closed-form frequency response; its sweep is "
                "odernn.assess.frequency_response's")
    eta_all = np.asarray(test.params["eta"], dtype=np.float64)
    if settings.etas is not None:
        etas = np.asarray(settings.etas, dtype=np.float64)
    elif np.any(eta_all > 0):
        etas = np.unique(np.quantile(eta_all[eta_all > 0], [0.25, 0.75]))
    else:
        return "the test set has no damping (eta = 0): transients never die out"
    F0 = drive_amplitude(test, settings)
    if not F0 > 0:
        return "the test set has no forcing: a surrogate never saw a drive to respond to"
    omegas = drive_frequencies(test, settings)
    eta, omega = (a.ravel() for a in np.meshgrid(etas, omegas, indexing="ij"))
    dt = test.dt
    slowest = 2 * math.pi / float(omegas.min())
    settle = math.log(1 / settings.transient_tol) / float(decay_rate(etas).min())
    n_steps = min(settings.max_steps, math.ceil((settle + slowest) / dt) + 1)
    if (n_steps - 1) * dt / 2 < slowest / 8:  # cos, sin and 1 alike over the fit: singular
        return (f"{n_steps} steps of dt = {dt:.3g} fit over less than an eighth of the slowest "
                f"drive's period ({slowest:.3g}): no response to measure (raise max_steps)")
    check_sweep(eta.size, n_steps, methods)
    t = dt * np.arange(n_steps)
    period = 2 * math.pi / omega
    window = min(slowest, t[-1] / 2)
    fit_from = t[-1] - np.maximum(1, np.floor(window / period + 1e-9)) * period
    fit_from = np.maximum(fit_from, t[-1] / 2)
    left = float(np.max(np.exp(-decay_rate(eta) * fit_from)))
    return Sweep(eta, omega, F0, t, fit_from, left)


def check_sweep(drives: int, steps: int, methods: int) -> None:
    """Refuse a sweep whose arrays exceed the memory budget: the reference's x and v and the
    forcing, one x kept per method, and a rollout's own arrays (float64 ``drives x steps``
    each)."""
    budget.check(f"resonance: {drives} drives x {steps} steps", 8 * drives * steps *
                 (7 + methods), "reduce n_omega, omegas, etas or max_steps")


def decay_rate(eta: Array, stiffness: Array = 1.0) -> np.ndarray:
    """How fast the slowest transient of ``x'' + eta x' + k x = F`` decays (``k`` the
    stiffness, > 0): ``eta / 2`` underdamped (both roots ``-eta/2 +- i ...``),
    ``(eta - sqrt(eta^2 - 4 k)) / 2`` overdamped (the slower real root, which tends to
    ``k / eta``), computed as ``2 k / (eta + sqrt(eta^2 - 4 k))``: the difference cancels to
    0 for a strongly overdamped eta (10^9), and a sweep divided by it."""
    eta, k = np.asarray(eta, dtype=np.float64), np.asarray(stiffness, dtype=np.float64)
    two = 2.0 * np.sqrt(k)
    root = np.sqrt(np.maximum(eta - two, 0.0)) * np.sqrt(eta + two)  # no overflow of eta^2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(root > 0, 2.0 * k / (eta + root), eta / 2)


def fit_steady_state(x: Array, t: Array, omega: Array, fit_from: Array) -> tuple[np.ndarray,
                                                                                  np.ndarray]:
    """Least-squares ``x ~ a cos(omega t) + b sin(omega t) + c`` on ``t >= fit_from``.

    Returns the amplitude ``hypot(a, b)`` and the phase lag ``atan2(b, a)``
    wrapped into ``[-pi/2, 3pi/2)`` (the analytic lag lies in ``[0, pi]``),
    each ``(M,)``; ``inf`` and NaN where ``x`` is not finite in the window.
    Vectorised over the M trajectories through their 3x3 normal equations.
    """
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    omega = np.asarray(omega, dtype=np.float64)[:, None]
    w = (t[None, :] >= np.asarray(fit_from)[:, None]).astype(np.float64)
    basis = np.stack([np.cos(omega * t), np.sin(omega * t), np.ones_like(omega * t)])
    normal = np.einsum("imt,jmt,mt->mij", basis, basis, w)
    finite = np.all(np.isfinite(x) | (w == 0), axis=1)
    rhs = np.einsum("imt,mt,mt->mi", basis, w, np.where(finite[:, None], np.nan_to_num(x), 0.0))
    a, b, _ = np.linalg.solve(normal, rhs[..., None])[..., 0].T
    amplitude = np.where(finite, np.hypot(a, b), np.inf)
    lag = np.where(finite, np.mod(np.arctan2(b, a) + math.pi / 2, 2 * math.pi) - math.pi / 2,
                   np.nan)
    return amplitude, lag


def response_errors(sweep: Sweep, amplitude: Array, lag: Array) -> dict[str, float]:
    """Relative amplitude errors and absolute phase errors against the analytic response."""
    exact_amp, exact_lag = sweep.analytic()
    rel = np.abs(np.asarray(amplitude) - exact_amp) / exact_amp
    dphi = np.abs(np.angle(np.exp(1j * (np.asarray(lag) - exact_lag))))
    dphi[~np.isfinite(dphi)] = np.inf
    return {
        "amplitude_rel_error_median": float(np.median(rel)),
        "amplitude_rel_error_max": float(np.max(rel)),
        "lag_error_median": float(np.median(dphi)),
        "lag_error_max": float(np.max(dphi)),
        "n_diverged": int(np.count_nonzero(~np.isfinite(amplitude))),
    }


def measure_resonance(test: Trajectories, surrogates: Mapping[str, Surrogate],
                      settings: ResonanceSettings, say: Callable[[str], None]) -> dict[str, Any]:
    """Steady-state amplitude and phase of the exact solution and of every surrogate
    (``metrics.json``'s ``resonance``; ``{"skipped": reason}`` when the test set allows no
    sweep); ``say`` is told each stage. A system without a closed form gets its frequency
    response against the integrator instead
    (:func:`odernn.assess.frequency_response.measure_frequency_response`)."""
    if not SYSTEMS[test.system].closed_form:
        from odernn.assess.frequency_response import measure_frequency_response

        return measure_frequency_response(test, surrogates, settings, say)
    sweep = plan_sweep(test, settings, 1 + len(surrogates))
    if isinstance(sweep, str):
        say(f"resonance skipped: {sweep}")
        return {"skipped": sweep}
    system = sweep.oscillator()
    zeros = np.zeros(sweep.eta.size)
    x_ex, v_ex = INTEGRATORS[REFERENCE](system, zeros, zeros, sweep.t)
    F = system.forcing(sweep.t)
    rollouts = {REFERENCE: x_ex}
    for name, surrogate in surrogates.items():
        rollout = closed_loop(name, surrogate, F, {"eta": sweep.eta}, (x_ex, v_ex))
        steps = divergence_steps(rollout.x, rollout.v, rollout.diverged_at)
        rollouts[name] = mark_diverged(rollout.x, steps)
        say(f"resonance: {name}")  # a stage each (and a safe point to stop)
    out_methods = {}
    for name, x in rollouts.items():
        amplitude, lag = fit_steady_state(x, sweep.t, sweep.omega, sweep.fit_from)
        out_methods[name] = {"amplitude": amplitude, "lag": lag,
                             **response_errors(sweep, amplitude, lag)}
    amp, lag = sweep.analytic()
    etas = np.unique(sweep.eta)
    fine = np.linspace(sweep.omega.min(), sweep.omega.max(), 200)
    curve = [steady_state_response(fine, eta, sweep.F0) for eta in etas]
    say(f"resonance: {sweep.eta.size} drives x {len(rollouts)} methods, {sweep.t.size} steps")
    return {
        "kind": "analytic", "system": test.system,
        "eta": sweep.eta, "omega": sweep.omega, "F0": sweep.F0, "dt": float(sweep.t[1]),
        "n_steps": sweep.t.size, "transient_tol": settings.transient_tol,
        "transient_left": sweep.transient_left,
        "analytic": {"amplitude": amp, "lag": lag},
        "curve": {"omega": fine, "eta": etas, "amplitude": [c[0] for c in curve],
                  "lag": [c[1] for c in curve]},
        "methods": out_methods,
    }
