"""The bifurcation diagram: stroboscopic samples of the steady state against the drive
amplitude, for the integrator and for every surrogate in closed loop.

A driven nonlinear oscillator under ``F0 cos(omega t + phase)`` settles, depending on
``F0``, into a response of the drive's period, of 2, 3, ... drive periods, or into no
periodic motion at all (chaos, quasi-periodicity); several attractors may coexist (the
double-well Duffing's two wells). Sampled once per drive period after a transient (the
stroboscopic map), a response of period p shows as p points, chaos as a cloud. Sweeping
``F0`` over and beyond the test set's range shows whether a surrogate trained on a few
drives has the system's bifurcations, not only its trajectories.

The sweep (:func:`plan_bifurcation`): ``n_amplitudes`` values of ``F0`` over the test set's
range extended by ``extension`` of its ends on each side, at the test set's median
frequency, phase and system parameters; every amplitude from the same few initial states
(test trajectories' own, spread over their ``x0``), each a drive of ``transient`` drive
periods and then ``periods`` more sampled at their starts. Every drive is one row of one
batch: the reference (SciPy's DOP853 at ``rtol 1e-12``,
:data:`~odernn.assess.frequency_response.REFERENCE_SOLVER`) is one stacked call (a drive
that escapes to infinity is isolated and classed diverged:
:func:`~odernn.assess.frequency_response.reference_run`), each surrogate one closed-loop
rollout whose warm-up steps, if it asks for any, come from the reference (as in
:mod:`odernn.assess.frequency_response`).

Each drive's class (:func:`period_of`) is the smallest period p <= ``max_period`` of its
samples to ``tolerance`` times the attractor's size, else not periodic; an amplitude's
class is the set of its drives' classes. A surrogate's score: the fraction of amplitudes
whose class is the reference's, inside the test set's range and beyond it, and the
Wasserstein-1 distance between its and the reference's samples per amplitude (median).
:func:`measure_bifurcation` runs it all (``metrics.json``'s ``bifurcation``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from odernn import budget
from odernn.assess.closed_loop import closed_loop_marked
from odernn.assess.frequency_response import (
    REFERENCE_SOLVER,
    SOLVER,
    reference_run,
    stroboscopic,
)
from odernn.assess.metrics import wrap_angle, x_scale
from odernn.assess.statistics import circular_wasserstein_1, wasserstein_1
from odernn.checks import is_real, is_whole
from odernn.data.forcing import HarmonicForcing
from odernn.data.systems import SYSTEMS, Oscillator, x_is_angle
from odernn.data.trajectories import Trajectories
from odernn.errors import SpecError
from odernn.learn.models.base import Surrogate
from odernn.types import Array

NOT_PERIODIC, DIVERGED = 0, -1
"""The classes of a drive that has no period up to ``max_period`` / that left the finite
numbers; a period is a class >= 1."""
DIGITS = 6
"""Decimals of the stroboscopic samples kept in the result (for the figure; the scores use
every digit)."""


@dataclass(frozen=True)
class BifurcationSettings:
    """How the sweep is built; refused at once, in one SpecError line, if unusable.

    ``amplitudes``: the drive amplitudes (default: ``n_amplitudes`` evenly over the test
    set's ``[min F0 (1 - extension), max F0 (1 + extension)]``); ``transient``: drive
    periods run before sampling; ``periods``: stroboscopic samples per drive (at least
    ``2 max_period``); ``tolerance``: samples this fraction of the attractor's size apart
    count as one point; ``max_period``: the longest period looked for;
    ``initial_states``: drives per amplitude, each from another test trajectory's
    initial state.
    """

    amplitudes: tuple[float, ...] | None = None
    n_amplitudes: int = 40
    extension: float = 0.3
    periods: int = 32
    transient: int = 32
    tolerance: float = 1e-2
    max_period: int = 8
    initial_states: int = 2

    def __post_init__(self) -> None:
        least = {"n_amplitudes": 1, "transient": 0, "max_period": 1, "initial_states": 1,
                 "periods": 2 * self.max_period if is_whole(self.max_period) else 2}
        for name, low in least.items():
            value = getattr(self, name)
            if not is_whole(value) or value < low:
                raise SpecError(f"bifurcation {name} must be a whole number >= {low}"
                                f"{' (2 max_period)' if name == 'periods' else ''}, got "
                                f"{value!r}")
        if not 0 < self.tolerance < 1:
            raise SpecError(f"bifurcation tolerance must be in (0, 1), got {self.tolerance!r}")
        if not 0 <= self.extension < 1:
            raise SpecError(f"bifurcation extension must be in [0, 1), got {self.extension!r}")
        given = self.amplitudes
        if given is not None and (len(given) == 0 or not all(
                is_real(a) and math.isfinite(a) and a > 0 for a in given)):
            raise SpecError(f"bifurcation amplitudes must be positive numbers, got "
                            f"{list(given)!r}")


@dataclass(frozen=True)
class BifurcationPlan:
    """A drives by S initial states, row ``a S + s``: ``amplitudes (A,)``, the initial
    states ``x0, v0 (S,)``, the other parameters ``params`` (each a number), the drive's
    ``omega`` and ``phase``, the grid ``t`` and the sampling times ``strobe (P,)``."""

    system: str
    params: dict[str, float]
    omega: float
    phase: float
    amplitudes: np.ndarray
    trained: tuple[float, float]
    x0: np.ndarray
    v0: np.ndarray
    t: np.ndarray
    strobe: np.ndarray

    @property
    def rows(self) -> int:
        return self.amplitudes.size * self.x0.size

    def row_params(self) -> dict[str, np.ndarray]:
        """Every system parameter, one value per row."""
        return {k: np.full(self.rows, v) for k, v in self.params.items()}

    def oscillator(self) -> Oscillator:
        """The R driven oscillators, amplitude-major."""
        col = np.ones((self.rows, 1))
        F0 = np.repeat(self.amplitudes, self.x0.size)[:, None]
        return Oscillator.of(self.system, self.row_params(),
                             HarmonicForcing(F0, self.omega * col, self.phase * col))

    @property
    def inside(self) -> np.ndarray:
        """Per amplitude: inside the test set's range of F0."""
        lo, hi = self.trained
        return (self.amplitudes >= lo * (1 - 1e-12)) & (self.amplitudes <= hi * (1 + 1e-12))


def plan_bifurcation(test: Trajectories, settings: BifurcationSettings) -> BifurcationPlan | str:
    """The sweep for a test set, or the reason it allows none (a string): the linear
    oscillator, a forcing other than one cosine, no forcing."""
    system = SYSTEMS[test.system]
    if system.linear is not None:
        return (f"`{system.name}` is linear: it has no bifurcations (its steady state is one "
                "period-1 response, proportional to F0, at every amplitude)")
    forcing = str(test.attrs.get("forcing", "none"))
    if forcing != "cosine" or not {"F0", "omega"} <= set(test.params):
        return (f"the test set's forcing is {forcing!r}, not one cosine: no single drive "
                "period to sample at")
    F0 = np.abs(np.asarray(test.params["F0"], dtype=np.float64))
    if not np.any(F0 > 0):
        return "the test set has no forcing (F0 = 0): nothing to bifurcate"
    lo, hi = float(F0[F0 > 0].min()), float(F0.max())
    omega = float(np.median(test.params["omega"]))
    phase = float(np.median(test.params.get("phase", np.zeros(1))))
    params = {name: float(np.median(test.params[name])) for name in system.names}
    x0, v0 = np.asarray(test.x)[:, 0], np.asarray(test.v)[:, 0]
    n = min(settings.initial_states, x0.size)
    period = 2 * math.pi / omega
    steps = int(math.ceil((settings.transient + settings.periods) * period / test.dt)) + 1
    rows = (len(settings.amplitudes) if settings.amplitudes else settings.n_amplitudes) * n
    budget.check(f"bifurcation: {rows} drives x {steps} steps", 6 * 8 * rows * steps,
                 "reduce periods, transient, n_amplitudes or initial_states")  # before any
    amplitudes = (np.asarray(settings.amplitudes, dtype=np.float64) if settings.amplitudes
                  else np.linspace(lo * (1 - settings.extension), hi * (1 + settings.extension),
                                   settings.n_amplitudes))
    picks = np.argsort(x0, kind="stable")[((np.arange(n) + 0.5) * x0.size / n).astype(int)]
    return BifurcationPlan(system.name, params, omega, phase, amplitudes, (lo, hi),
                           x0[picks], v0[picks], test.dt * np.arange(steps + 1),
                           period * (settings.transient + np.arange(settings.periods)))


def period_of(samples: Array, tolerance: Array | float, max_period: int,
              angle: bool = False) -> np.ndarray:
    """Per row, the smallest ``p`` in ``1..max_period`` with ``|s_{k+p} - s_k| <= tolerance``
    for every sample k and component, :data:`NOT_PERIODIC` if there is none, and
    :data:`DIVERGED` where a sample is not finite. ``samples (R, P)`` or ``(C, R, P)`` (C
    components, e.g. x and v / omega), ``P > max_period``; ``tolerance`` a number or one
    per row; ``angle``: the first component's differences are taken modulo 2 pi."""
    s = np.asarray(samples, dtype=np.float64)
    s = s.reshape(-1, *s.shape[-2:])
    if s.shape[2] <= max_period:
        raise ValueError(f"period_of needs more than max_period = {max_period} samples, got "
                         f"{s.shape[2]}")
    tol = np.broadcast_to(np.asarray(tolerance, dtype=np.float64), s.shape[1:2])
    out = np.full(s.shape[1], NOT_PERIODIC)
    with np.errstate(invalid="ignore"):
        for p in range(max_period, 0, -1):
            step = s[..., p:] - s[..., :-p]
            if angle:
                step[0] = wrap_angle(step[0])
            out[np.max(np.abs(step), axis=(0, 2)) <= tol] = p
    out[~np.all(np.isfinite(s), axis=(0, 2))] = DIVERGED
    return out


def label(classes: Array) -> str:
    """The class of an amplitude, from its drives' classes: "period 1", "period 1 + period
    3", "not periodic", "diverged", ... (each class once, in increasing order)."""
    names = {NOT_PERIODIC: "not periodic", DIVERGED: "diverged"}
    return " + ".join(names.get(c, f"period {c}") for c in sorted(
        {int(c) for c in np.asarray(classes).ravel()}, key=lambda c: (c <= 0, abs(c))))


def stroboscope(plan: BifurcationPlan, x: np.ndarray, v: np.ndarray,
                settings: BifurcationSettings) -> tuple[np.ndarray, np.ndarray]:
    """Each row's stroboscopic x samples ``(R, P)`` (an angle wrapped into [-pi, pi)) and
    class: the states ``(x, v / omega)`` at the sampling times (:func:`stroboscopic`)
    classified to ``tolerance`` times the size of the attractor, the larger of the ranges
    of x and of ``v / omega`` on the grid over the sampled periods."""
    angle = x_is_angle(plan.system)
    dt = plan.t[1] - plan.t[0]
    keep = plan.t >= plan.strobe[0] - 3 * dt
    state = stroboscopic(plan.t[keep], x[:, keep], v[:, keep], plan.omega, plan.strobe)
    xs = x[:, keep]
    if angle:
        state[0], xs = wrap_angle(state[0]), wrap_angle(xs)
    with np.errstate(invalid="ignore"):
        size = np.maximum(np.ptp(xs, axis=1), np.ptp(v[:, keep], axis=1) / plan.omega)
    classes = period_of(state, settings.tolerance * size, settings.max_period, angle)
    return state[0], classes


def _median(a: np.ndarray) -> float:
    return float(np.median(a)) if a.size else math.nan


def score(plan: BifurcationPlan, reference: Mapping[str, Any], samples: np.ndarray,
          classes: np.ndarray, scale: float) -> dict[str, Any]:
    """A method's diagram against the reference's: per amplitude its class (``labels``),
    whether it is the reference's (``agrees``) and the Wasserstein-1 distance of the two
    sets of stroboscopic x samples, all initial states pooled, over ``scale`` (``w1``; on the
    circle for an angle: across the cut at +-pi it measured 2 pi for a 1e-6 error); their
    fractions and medians inside the test set's range of F0 and beyond it."""
    A, S = plan.amplitudes.size, plan.x0.size
    labels = [label(c) for c in classes.reshape(A, S)]
    agrees = np.array([a == b for a, b in zip(labels, reference["labels"], strict=True)])
    distance = circular_wasserstein_1 if x_is_angle(plan.system) else wasserstein_1
    w1 = distance(samples.reshape(A, -1), reference["samples"].reshape(A, -1)) / scale
    inside = plan.inside
    out: dict[str, Any] = {"classes": classes, "labels": labels, "agrees": agrees, "w1": w1}
    for part, pick in (("", np.ones(A, dtype=bool)), ("_inside", inside), ("_beyond", ~inside)):
        out[f"agreement{part}"] = float(np.mean(agrees[pick])) if pick.any() else math.nan
        out[f"w1_median{part}"] = _median(w1[pick])
    out["n_diverged"] = int(np.count_nonzero(classes == DIVERGED))
    return out


def counts(labels: list[str]) -> dict[str, int]:
    """How many amplitudes have each class, most frequent first."""
    names, n = np.unique(np.asarray(labels), return_counts=True)
    order = np.argsort(-n, kind="stable")
    return {str(names[i]): int(n[i]) for i in order}


def measure_bifurcation(test: Trajectories, surrogates: Mapping[str, Surrogate],
                        settings: BifurcationSettings | None = None,
                        say: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """The bifurcation diagram of the integrator and of every surrogate, and each
    surrogate's score (``metrics.json``'s ``bifurcation``; ``{"skipped": reason}`` when the
    test set allows none); ``say`` is told each stage."""
    settings = settings or BifurcationSettings()
    plan = plan_bifurcation(test, settings)
    if isinstance(plan, str):
        say(f"bifurcation diagram skipped: {plan}")
        return {"skipped": plan}
    system = plan.oscillator()
    x0, v0 = np.tile(plan.x0, plan.amplitudes.size), np.tile(plan.v0, plan.amplitudes.size)
    begin = time.perf_counter()
    x_ref, v_ref = reference_run(system, x0, v0, plan.t)
    samples, classes = stroboscope(plan, x_ref, v_ref, settings)
    wall = time.perf_counter() - begin
    ref_labels = [label(c) for c in classes.reshape(plan.amplitudes.size, -1)]
    reference = {"samples": samples, "classes": classes, "labels": ref_labels,
                 "counts": counts(ref_labels), "wall_time_s": wall}
    say(f"bifurcation diagram: reference over {plan.rows} drives of {plan.t.size - 1} steps "
        f"({wall:.3g} s)")
    scale = x_scale(np.asarray(test.x), test.system)
    F, params = system.forcing(plan.t), plan.row_params()
    methods = {}
    for name, surrogate in surrogates.items():
        begin = time.perf_counter()
        x, v = closed_loop_marked(name, surrogate, F, params, (x_ref, v_ref))
        got, kinds = stroboscope(plan, x, v, settings)
        methods[name] = {"samples": np.round(got, DIGITS),
                         **score(plan, reference, got, kinds, scale),
                         "wall_time_s": time.perf_counter() - begin}
        say(f"bifurcation diagram: {name} agrees at {methods[name]['agreement']:.0%} of the "
            f"amplitudes ({methods[name]['wall_time_s']:.3g} s)")
    return {
        "system": plan.system, "parameters": plan.params, "omega": plan.omega,
        "phase": plan.phase, "amplitudes": plan.amplitudes, "trained_range": list(plan.trained),
        "inside": plan.inside, "extension": settings.extension,
        "initial_states": {"x0": plan.x0, "v0": plan.v0}, "transient": settings.transient,
        "periods": settings.periods, "tolerance": settings.tolerance,
        "max_period": settings.max_period, "angle": x_is_angle(plan.system), "dt": test.dt,
        "n_steps": int(plan.t.size), "reference": SOLVER,
        "reference_settings": dict(REFERENCE_SOLVER), "scale": scale,
        "integrator": {**reference, "samples": np.round(samples, DIGITS)}, "methods": methods,
    }
