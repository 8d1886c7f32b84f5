"""The work-precision study: error against wall time of every integrator over step sizes
(SciPy over tolerances), each surrogate a point on the same axes, and its speed-up over the
cheapest integrator setting that is at least as accurate; and how every method is timed."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from odernn import budget
from odernn.assess.baselines import speedup
from odernn.assess.frequency_response import REFERENCE_SOLVER
from odernn.assess.metrics import nrmse, x_scale
from odernn.assess.results import DATA_ONLY, REFERENCE, MethodResult
from odernn.checks import is_real
from odernn.data.integrators import INTEGRATORS, MIN_RTOL
from odernn.data.schema import grid_step
from odernn.data.trajectories import Trajectories
from odernn.errors import SpecError, StiffProblem

MIN_TIMING_S = 0.2
"""A method faster than this is run again (up to three times) and its best time kept."""


@dataclass(frozen=True)
class WorkPrecisionSettings:
    """Step sizes ``dt * factor`` for the fixed-step integrators; SciPy's ``rtol``
    values (``atol = rtol / 100``)."""

    step_factors: tuple[float, ...] = (4.0, 2.0, 1.0, 0.5, 0.25, 0.125)
    scipy_rtols: tuple[float, ...] = (1e-3, 1e-5, 1e-7, 1e-9, 1e-11)

    def __post_init__(self) -> None:
        for name in ("step_factors", "scipy_rtols"):
            given = getattr(self, name)
            low = MIN_RTOL if name == "scipy_rtols" else 0  # SciPy raises a lower rtol
            if not all(is_real(g) and low <= g < math.inf and g > 0 for g in given):
                raise SpecError(f"work_precision {name} must be positive numbers"
                                + (f" of at least 100 eps = {MIN_RTOL!r}" if low else "")
                                + f", got {list(given)!r}")


def reference_on(grid: np.ndarray, t: np.ndarray, stored: np.ndarray,
                  solve: Callable[..., tuple[np.ndarray, np.ndarray]], reference: str,
                  x0: np.ndarray, v0: np.ndarray) -> np.ndarray:
    """The reference's x on ``grid``: the closed form, or the stored data on the test's own
    grid and DOP853 at ``rtol 1e-12`` on the others."""
    if reference == REFERENCE:
        return solve(REFERENCE, x0, v0, grid)[0]
    if grid.size == t.size and np.array_equal(grid, t):
        return stored
    return solve("scipy", x0, v0, grid, **REFERENCE_SOLVER)[0]


def timed(run: Callable[[], Any], warmup: Callable[[], Any] | None = None) -> tuple[Any, float]:
    """Result of ``run()`` and its best wall time; repeated while the total is under
    :data:`MIN_TIMING_S` (three runs at most). ``warmup`` runs first, untimed (one-off
    costs such as TorchScript compilation are not the method's speed)."""
    if warmup is not None:
        warmup()
    best, total = math.inf, 0.0
    for _ in range(3):
        begin = time.perf_counter()
        out = run()
        spent = time.perf_counter() - begin
        best, total = min(best, spent), total + spent
        if total >= MIN_TIMING_S:
            break
    return out, best


def grid_of(t: np.ndarray, factor: float) -> np.ndarray:
    """A uniform grid with step ``dt * factor`` over the test set's horizon."""
    h = grid_step(t) * factor
    return t[0] + h * np.arange(int(np.floor((t[-1] - t[0]) / h + 1e-9)) + 1)


def measure_work_precision(test: Trajectories, solve: Callable[..., tuple[np.ndarray, np.ndarray]],
                    solve_few: Callable[..., tuple[np.ndarray, np.ndarray]],
                    integrators: Sequence[str], settings: WorkPrecisionSettings,
                    methods: Mapping[str, MethodResult], start: int,
                    say: Callable[[str], None], reference: str = REFERENCE,
                    check: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Error (NRMSE of x after the warm-up, the test set's std) against wall time of every
    integrator over step sizes (SciPy: tolerances), surrogates and peers as points (under the
    key ``surrogates``), and speed-ups.

    The sampled-forcing integrators run only at whole step factors >= 1 (every k-th
    sample): a finer grid would need forcing values the samples do not hold. Every
    setting gets the same untimed first call as in the main table (``solve_few``, 2
    trajectories, 16 points), as the surrogates' timings did. ``check`` runs before each
    setting (a safe point to stop: the sweep can take as long as the main table)."""
    t = np.asarray(test.t, dtype=np.float64)
    x0, v0 = np.asarray(test.x)[:, 0], np.asarray(test.v)[:, 0]
    scale = x_scale(methods[reference].x, test.system)
    runs: list[tuple[str, np.ndarray, str, float, dict[str, Any]]] = []
    for factor in settings.step_factors:  # a grid's x, v, reference and forcing: checked first
        points = float(t[-1] - t[0]) / (grid_step(t) * factor) + 1  # inf for a tiny factor
        budget.check(f"work-precision: step factor {factor:g}, {x0.size} trajectories x "
                     f"{points:.3g} steps", 6 * 8 * x0.size * points,
                     "use larger step_factors, or no work-precision study (--no-work-precision)")
        grid = grid_of(t, factor)
        if grid.size < 2 or grid[-1] < t[start]:  # a step longer than the test: no point to
            continue  # compare (a set of 4 points at factor 4 was a traceback)
        h = float(grid[1] - grid[0])
        whole = factor >= 1 and float(factor).is_integer()
        runs += [(name, grid, f"h={h:.3g}", h, {}) for name in integrators
                 if name != "scipy" and (whole or not INTEGRATORS[name].sampled_forcing)]
    if "scipy" in integrators:
        runs += [("scipy", t, f"rtol={rtol:.0e}", rtol, {"rtol": rtol, "atol": rtol / 100})
                 for rtol in settings.scipy_rtols]
    points: list[dict[str, Any]] = []
    references: dict[int, np.ndarray | None] = {}
    stiff = 0
    for name, grid, setting, value, opts in runs:
        check()
        try:  # SciPy on a stiff set gives up (a grid's reference too): its points left out
            if grid.size not in references:
                references = {grid.size: None}
                references[grid.size] = reference_on(grid, t, methods[reference].x, solve,
                                                     reference, x0, v0)
            if references[grid.size] is None:
                stiff += 1
                continue
            (x, _), wall = timed(partial(solve, name, x0, v0, grid, **opts),
                                  partial(solve_few, name, x0[:2], v0[:2], grid[:16], **opts))
        except StiffProblem:
            stiff += 1
            continue
        first = max(1, int(np.searchsorted(grid, t[start] - 1e-9 * grid_step(t))))
        error = nrmse(x, references[grid.size], start=first, scale=scale)
        points.append({"method": name, "setting": setting, "value": value, "error": error,
                       "wall_time_s": wall})
    say(f"work-precision: {len(points)} integrator settings"
        + (f", {stiff} left out (SciPy gave up: the set is stiff)" if stiff else ""))
    surrogates = {name: {"error": m.metrics["nrmse_x"], "wall_time_s": m.metrics["wall_time_s"]}
                  for name, m in methods.items() if m.kind in DATA_ONLY}
    return {"error": "nrmse_x", "step_factors": list(settings.step_factors),
            "scipy_rtols": list(settings.scipy_rtols), "integrators": points,
            "surrogates": surrogates,
            "speedup": {name: speedup(p["error"], p["wall_time_s"], points)
                        for name, p in surrogates.items()}}
