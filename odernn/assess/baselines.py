"""The honest baselines a surrogate is shown against: the most accurate integrator given the
forcing samples a surrogate has by each step, and the speed-up over the cheapest integrator
setting that is at least as accurate (from the work-precision sweep)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from odernn.assess.results import MethodResult
from odernn.data.integrators import INTEGRATORS


def same_information(methods: Mapping[str, MethodResult], samples_only: bool = False
                     ) -> dict[str, Any] | None:
    """The most accurate integrator given the information a surrogate has: the forcing
    samples, and at each step none after the next one (the ``causal`` entries; NRMSE x on the
    test grid; ties: the faster), and each surrogate's error and time relative to it
    (``error_ratio``, ``time_ratio``: surrogate over baseline, > 1 is worse / slower).
    ``samples_only``: the test set knows its forcing only at the samples (imported data), so
    every integrator run is given only them. None when no such integrator was run."""
    sampled = [name for name in methods
               if name in INTEGRATORS and methods[name].kind == "integrator"
               and (samples_only or INTEGRATORS[name].sampled_forcing)
               and INTEGRATORS[name].causal]
    if not sampled:
        return None

    def key(name: str) -> tuple[float, float]:
        m = methods[name].metrics
        error = m["nrmse_x"]
        return (error if math.isfinite(error) else math.inf, m["wall_time_s"])

    best = min(sampled, key=key)
    base = methods[best].metrics
    surrogates = {}
    for name, m in methods.items():
        if m.kind != "surrogate":
            continue
        error, wall = m.metrics["nrmse_x"], m.metrics["wall_time_s"]
        surrogates[name] = {
            "nrmse_x": error, "wall_time_s": wall,
            "error_ratio": ratio(error, base["nrmse_x"]),
            "time_ratio": ratio(wall, base["wall_time_s"]),
        }
    return {"baseline": best, "description": methods[best].description,
            "candidates": sampled, "nrmse_x": base["nrmse_x"],
            "wall_time_s": base["wall_time_s"], "surrogates": surrogates}


def integrator_description(name: str, samples_only: bool) -> str:
    """An integrator's description in a report; where the test set knows its forcing only at
    the samples (imported data), one that evaluates it between them says that it
    interpolates them linearly instead."""
    entry = INTEGRATORS[name]
    if samples_only and not entry.sampled_forcing:
        return (f"{entry.description}; here the forcing is known only at its samples, "
                "interpolated linearly between them")
    return entry.description


def ratio(a: float, b: float) -> float:
    """``a / b`` with ``0 / 0 = 1``, ``x / 0 = inf`` (x > 0), inf for an infinite ``a``."""
    if math.isnan(a) or math.isnan(b):
        return math.nan
    if math.isinf(a):
        return math.inf
    if b == 0:
        return 1.0 if a == 0 else math.inf
    return a / b


def speedup(error: float, wall: float, points: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Speed-up over the cheapest integrator setting at least as accurate as ``error``."""
    if not math.isfinite(error):
        return {"speedup": None, "reason": "diverged"}
    good = [p for p in points if p["error"] <= error]
    if not good:
        return {"speedup": None, "reason": "no integrator setting in the sweep is as accurate"}
    best = min(good, key=lambda p: p["wall_time_s"])
    return {"speedup": best["wall_time_s"] / wall, "over": f"{best['method']} {best['setting']}",
            "integrator_error": best["error"], "integrator_wall_time_s": best["wall_time_s"]}
