"""The evaluator's chaos stage: how predictable the test set is, and the statistics that say
what a method gets right once it no longer follows a trajectory.

For a test set of a known system without a closed form (the reference is the stored data,
a numerical solution), :func:`characterise` estimates each trajectory's largest Lyapunov
exponent (:mod:`odernn.assess.lyapunov`, Benettin's method) and the reference's own trust
horizon (:mod:`odernn.assess.trust`); the set counts as chaotic when most of its
trajectories have a positive exponent. :func:`method_statistics` then adds the
steady-state statistics of :mod:`odernn.assess.statistics` (valid time in Lyapunov
times, response statistics, Wasserstein-1 distances, spectra) to every method's metrics.
The linear oscillator is measured against its closed form: its exponents are known
(``-eta/2`` when underdamped), so neither estimate runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from odernn.assess.lyapunov import lyapunov_exponents
from odernn.assess.statistics import MIN_EXPONENT, steady_start, summarize_statistics
from odernn.assess.trust import data_trust_horizon
from odernn.data.systems import SYSTEMS, x_is_angle
from odernn.data.trajectories import Trajectories
from odernn.errors import SpecError, StiffProblem

CHAOTIC_FRACTION = 0.5
"""A test set is chaotic when more than this fraction of its trajectories have an exponent
above :data:`~odernn.assess.statistics.MIN_EXPONENT`."""


@dataclass(frozen=True)
class ChaosSettings:
    """``lyapunov``: estimate the exponents (and with them the valid time in Lyapunov
    times); ``trust``: measure the reference's trust horizon; ``transient``: the time
    discarded before the steady-state statistics (None: a fifth of the horizon)."""

    lyapunov: bool = True
    trust: bool = True
    transient: float | None = None

    def __post_init__(self) -> None:
        if self.transient is not None and not (np.isfinite(self.transient)
                                               and self.transient >= 0):
            raise SpecError(f"chaos transient must be a time >= 0, got {self.transient}")


def characterise(test: Trajectories, reference: str, settings: ChaosSettings, start: int,
                 threshold: float, say: Callable[[str], None]) -> dict[str, Any]:
    """The exponents and trust horizon of ``test`` (per trajectory, ``(N,)``), their
    summaries, and whether the set is chaotic; ``{"skipped": reason}`` for each estimate
    that does not apply. ``statistics`` is True, or why the steady-state statistics are not
    computed (a test set too short for the default transient; a transient the user set that
    leaves too little is one SpecError line)."""
    out: dict[str, Any] = {"chaotic": False, "transient": settings.transient,
                           "statistics": True}
    try:
        first = steady_start(test.t, settings.transient, start=start)
        out["steady_state_from"] = float(test.t[first] - test.t[0])
    except SpecError as exc:
        if settings.transient is not None:
            raise
        out["statistics"] = str(exc).removeprefix("statistics: ")
    system = SYSTEMS.get(test.system)
    closed = system is None or reference != "data" or system.closed_form
    why = (f"system {test.system!r} has no known equation to estimate them from"
           if system is None else "the system has a closed form: its exponents are known "
           "(-eta/2 when underdamped)" + (" and the reference is exact" if reference != "data"
                                          else ""))
    if closed or not settings.lyapunov:
        out["lyapunov"] = {"skipped": why if closed else "not requested"}
    else:
        estimate = lyapunov_exponents(test)
        lam = estimate.exponent
        chaotic = np.asarray(lam > MIN_EXPONENT)
        out["chaotic"] = bool(chaotic.mean() > CHAOTIC_FRACTION)
        finite = lam[np.isfinite(lam)]
        out["lyapunov"] = {
            "method": estimate.method, "exponent": lam,
            "median": float(np.median(finite)) if finite.size else float("nan"),
            "p10": (float(np.quantile(finite, 0.1, method="inverted_cdf")) if finite.size
                    else float("nan")),
            "p90": (float(np.quantile(finite, 0.9, method="inverted_cdf")) if finite.size
                    else float("nan")),
            "n_chaotic": int(chaotic.sum()), "n_converged": int(estimate.converged.sum()),
            "n_chaotic_unconverged": int(np.count_nonzero(chaotic & ~estimate.converged)),
            "renormalisation_interval": float(np.median(estimate.interval)),
        }
        say(f"lyapunov: median exponent {out['lyapunov']['median']:.3g}, "
            f"{int(chaotic.sum())} of {test.n} trajectories chaotic")
    if closed or not settings.trust:
        out["trust_horizon"] = {"skipped": why if closed else "not requested"}
        return out
    try:  # two SciPy solutions, which give up on a stiff set
        horizon = data_trust_horizon(test, threshold=threshold)
    except StiffProblem as exc:
        out["trust_horizon"] = {"skipped": f"the test set is stiff for its solver ({exc})"}
        say("trust horizon skipped: the test set is stiff for its solver")
    else:
        end = float(test.t[-1] - test.t[0])
        out["trust_horizon"] = {"time": horizon, "median": float(np.median(horizon)),
                                "min": float(np.min(horizon)),
                                "n_censored": int(np.sum(horizon >= end))}
        say(f"trust horizon: median {out['trust_horizon']['median']:.3g} "
            f"(of {end:.3g})")
    return out


def exponents(chaos: dict[str, Any] | None) -> np.ndarray | None:
    """The per-trajectory exponents of :func:`characterise`, or None when not estimated."""
    lyapunov = (chaos or {}).get("lyapunov", {})
    return None if "exponent" not in lyapunov else np.asarray(lyapunov["exponent"])


def method_statistics(x: np.ndarray, v: np.ndarray, ref_x: np.ndarray, ref_v: np.ndarray,
                      test: Trajectories, steps: np.ndarray, chaos: dict[str, Any] | None, *,
                      start: int, threshold: float, scale_x: float,
                      scale_v: float) -> dict[str, float]:
    """The statistics of one method (:data:`~odernn.assess.statistics.STATISTICS`), with the
    valid time in Lyapunov times where the exponents were estimated; an angle (the
    pendulum's x) on the circle."""
    return summarize_statistics(x, v, ref_x, ref_v, test.t, steps, exponent=exponents(chaos),
                                transient=(chaos or {}).get("transient"), start=start,
                                threshold=threshold, scale_x=scale_x, scale_v=scale_v,
                                angle=x_is_angle(test.system))
