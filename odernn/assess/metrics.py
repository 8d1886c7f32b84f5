"""Accuracy metrics: the one definition used by benchmarks, ``evaluate`` and the tests.

The rules (docs/metrics.md):

- errors are taken over steps ``start .. T-1`` (``start = 1``: ``t = 0`` is
  given; more when a surrogate was given warm-up steps), all trajectories
  pooled;
- ``NRMSE = RMSE / std(ref)``, the std pooled over all trajectories and steps
  ``1 .. T-1`` of the test set, also when the RMSE is over a sub-horizon, so
  that every number of one report shares one scale;
- a diverged trajectory is never dropped: its values are ``inf`` from the step
  it diverged, so every pooled aggregate that includes it is ``inf``; the
  count of diverged trajectories and the median per-trajectory NRMSE are
  reported beside them.

Arrays are ``(N, T)``: N trajectories, T time points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from odernn.data.systems import SYSTEMS, x_is_angle
from odernn.errors import DataError
from odernn.types import Array

METRICS: dict[str, str] = {
    "nrmse_x": "RMSE of x over the horizon divided by the test set's std of x",
    "nrmse_v": "RMSE of v over the horizon divided by the test set's std of v",
    "rmse_x": "absolute RMSE of x over the horizon",
    "rmse_v": "absolute RMSE of v over the horizon",
    "nrmse_x_first_tenth": "NRMSE of x over the first tenth of the horizon (same std)",
    "nrmse_v_first_tenth": "NRMSE of v over the first tenth of the horizon (same std)",
    "rmse_x_first_tenth": "absolute RMSE of x over the first tenth of the horizon",
    "rmse_v_first_tenth": "absolute RMSE of v over the first tenth of the horizon",
    "median_nrmse_x": "median over trajectories of each trajectory's NRMSE of x",
    "median_nrmse_v": "median over trajectories of each trajectory's NRMSE of v",
    "valid_time_median": "median valid prediction time: first time |x error| / std(x) > threshold",
    "valid_time_p10": "10th percentile of the valid prediction time over trajectories",
    "valid_time_censored": "trajectories whose error never exceeded the threshold: their valid "
                           "time is the horizon, a lower bound",
    "energy_balance": "RMS over steps s..T-1 of E_k - E_(s-1) - integral from t_(s-1) to t_k of "
                      "the forcing's and the damping's power (F v - eta v^2), over the mean "
                      "reference energy (above its minimum where E < 0)",
    "n_diverged": "trajectories that became non-finite or exploded (never dropped)",
    "wall_time_s": "wall-clock seconds to produce all test trajectories (best of repeats; a "
                   "seed group: its joint closed loop alone)",
    "steps_per_s": "trajectory steps produced per second: N (T - 1) / wall_time_s",
    "speedup": "wall time of the cheapest integrator setting at least as accurate (NRMSE of x), "
               "divided by the surrogate's",
}
"""Every scalar metric of a method, with its one-line definition (report and docs)."""


def _pair(pred: Array, ref: Array) -> tuple[np.ndarray, np.ndarray]:
    pred = np.atleast_2d(np.asarray(pred, dtype=np.float64))
    ref = np.atleast_2d(np.asarray(ref, dtype=np.float64))
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    return pred, ref


def _abs_errors(pred: Array, ref: Array, start: int, stop: int | None) -> np.ndarray:
    """``|pred - ref|`` over steps ``start .. stop-1``; NaN counts as diverged (``inf``)."""
    pred, ref = _pair(pred, ref)
    err = np.abs(pred[:, start:stop] - ref[:, start:stop])
    err[np.isnan(err)] = np.inf
    if err.shape[1] == 0:
        raise ValueError(f"no steps in the window start={start}, stop={stop} of {pred.shape[1]}")
    return err


def reference_scale(ref: Array) -> float:
    """The std of the reference pooled over all trajectories and steps ``1 .. T-1``."""
    ref = np.atleast_2d(np.asarray(ref, dtype=np.float64))
    scale = float(np.std(ref[:, 1:]))
    if not scale > 0.0:
        raise DataError(f"the reference has std {scale} over steps 1..T-1, so NRMSE is "
                        "undefined; use a test set whose trajectories move")
    return scale


def wrap_angle(a: Array) -> np.ndarray:
    """Samples of an angle in ``[-pi, pi)``; NaN for a non-finite one (a divergence)."""
    with np.errstate(invalid="ignore"):
        return np.mod(np.asarray(a, dtype=np.float64) + math.pi, 2 * math.pi) - math.pi


def x_scale(x: Array, system: str) -> float:
    """x's error scale, :func:`reference_scale`; of an angle (the pendulum's) wrapped into
    ``[-pi, pi)``: the unwrapped angle's std grows with every whole turn the reference
    makes, and with it the valid-time threshold (half a turn of error counted valid)."""
    return reference_scale(wrap_angle(x) if x_is_angle(system) else x)


def rmse(pred: Array, ref: Array, *, start: int = 1, stop: int | None = None) -> float:
    """Root-mean-square error over steps ``start .. stop-1``, all trajectories pooled."""
    err = _abs_errors(pred, ref, start, stop)
    with np.errstate(over="ignore"):  # an error too large to square is an infinite RMSE
        return float(np.sqrt(np.mean(np.square(err))))


def nrmse(pred: Array, ref: Array, *, start: int = 1, stop: int | None = None,
          scale: float | None = None) -> float:
    """RMSE over steps ``start .. stop-1`` divided by ``scale``.

    ``scale`` defaults to :func:`reference_scale` of ``ref`` (steps ``1 .. T-1``,
    whatever the window); pass the full test set's scale when ``ref`` is a subset.
    """
    scale = reference_scale(ref) if scale is None else scale
    return rmse(pred, ref, start=start, stop=stop) / scale


def nrmse_per_trajectory(pred: Array, ref: Array, *, start: int = 1, stop: int | None = None,
                         scale: float | None = None) -> np.ndarray:
    """Each trajectory's NRMSE, shape ``(N,)``; the scale is still the pooled one."""
    scale = reference_scale(ref) if scale is None else scale
    err = _abs_errors(pred, ref, start, stop)
    with np.errstate(over="ignore"):
        return np.sqrt(np.mean(np.square(err), axis=1)) / scale


def valid_prediction_time(pred: Array, ref: Array, t: Array, threshold: float = 0.1,
                          scale: float | None = None, *, start: int = 1) -> np.ndarray:
    """Per trajectory, the first time ``t_k - t_0`` (``k >= start``) at which
    ``|pred - ref| / scale > threshold``; ``t_{T-1} - t_0`` if never (censored at
    the horizon). Shape ``(N,)``.
    """
    return valid_times(pred, ref, t, threshold, scale, start=start)[0]


def valid_times(pred: Array, ref: Array, t: Array, threshold: float = 0.1,
                scale: float | None = None, *, start: int = 1
                ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`valid_prediction_time` and where it is censored: the trajectories whose error
    never exceeded the threshold (their time is the horizon, a lower bound; one that
    exceeds it at the last step is not censored, though its time is the same)."""
    scale = reference_scale(ref) if scale is None else scale
    t = np.asarray(t, dtype=np.float64)
    exceeded = _abs_errors(pred, ref, start, None) / scale > threshold
    first = start + np.argmax(exceeded, axis=1)
    ever = exceeded.any(axis=1)
    return np.where(ever, t[first], t[-1]) - t[0], ~ever


def error_vs_time(pred: Array, ref: Array, *, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Median and 90th percentile over trajectories of ``|pred - ref| / scale``, each ``(T,)``.

    The percentile is the empirical one (no interpolation), so it stays exact
    with infinite errors.
    """
    err = _abs_errors(pred, ref, 0, None) / scale
    return np.median(err, axis=0), np.quantile(err, 0.9, axis=0, method="inverted_cdf")


def energy_balance_error(x: Array, v: Array, F: Array, params: Mapping[str, Array] | Array,
                         t: Array, *, start: int = 1, system: str = "oscillator") -> np.ndarray:
    """Per trajectory, the RMS over steps ``k = start .. T-1`` of the energy drift

    ``D_k = E_k - E_{s} - integral_{t_s}^{t_k} P dt``, ``s = start - 1``,

    with ``E`` the system's energy (``(x^2 + v^2) / 2`` for the linear oscillator) and
    ``P = F v + v (a(x, v) - a(x, 0))`` the power of the forcing and the damping
    (``F v - eta v^2`` for every system with a damping ``eta``), the integral by the
    trapezoid rule on the grid. ``params`` are the system's parameters per trajectory (for
    the linear oscillator its ``eta`` alone may be given). The exact solution gives
    ``O(dt^2)`` (the quadrature's error); a method that creates or loses energy gives more.
    Shape ``(N,)``; ``inf`` if diverged.
    """
    entry = SYSTEMS[system]
    if entry.energy is None:
        raise ValueError(f"system {system!r} has no energy to balance")
    x, v = _pair(x, v)
    F = np.atleast_2d(np.asarray(F, dtype=np.float64))
    if not isinstance(params, Mapping):
        params = {"eta": params}
    p = {k: np.asarray(params[k], dtype=np.float64).reshape(-1, 1) for k in entry.names}
    t = np.asarray(t, dtype=np.float64)
    s = start - 1
    xs, vs = x[:, s:], v[:, s:]
    with np.errstate(invalid="ignore", over="ignore"):
        power = F[:, s:] * vs + vs * (entry.accel(xs, vs, p) - entry.accel(xs, 0 * vs, p))
        work = np.cumsum(0.5 * (power[:, 1:] + power[:, :-1]) * np.diff(t[s:]), axis=1)
        e = entry.energy(xs, vs, p)
        drift = e[:, 1:] - e[:, :1] - work
        rms = np.sqrt(np.mean(np.square(drift), axis=1))
    rms[np.isnan(rms)] = np.inf
    return rms


def divergence_steps(x: Array, v: Array | None = None,
                     diverged_at: np.ndarray | None = None) -> np.ndarray:
    """First step at which each trajectory is non-finite (or was reported diverged), else -1."""
    bad = ~np.isfinite(np.atleast_2d(x))
    if v is not None:
        bad |= ~np.isfinite(np.atleast_2d(v))
    steps = np.where(bad.any(axis=1), np.argmax(bad, axis=1), -1)
    if diverged_at is not None:
        reported = np.asarray(diverged_at)
        steps = np.where((reported >= 0) & ((steps < 0) | (reported < steps)), reported, steps)
    return steps


def mark_diverged(a: Array, steps: np.ndarray) -> np.ndarray:
    """A copy of ``a (N, T)`` with ``inf`` from each trajectory's divergence step on."""
    out = np.array(np.atleast_2d(a), dtype=np.float64)
    after = np.arange(out.shape[1]) >= np.where(steps >= 0, steps, out.shape[1])[:, None]
    out[after] = np.inf
    return out


def first_tenth_stop(n_steps: int, start: int = 1) -> int:
    """End (exclusive) of the first tenth of the horizon ``start .. T-1``: at least one step."""
    return start + max(1, (n_steps - start) // 10)


def summarize(pred_x: Array, pred_v: Array, ref_x: Array, ref_v: Array, t: Array,
              diverged_at: np.ndarray | None = None, *, F: Array | None = None,
              params: Mapping[str, Array] | Array | None = None, system: str = "oscillator",
              start: int = 1, threshold: float = 0.1, scale_x: float | None = None,
              scale_v: float | None = None) -> dict[str, float]:
    """All accuracy metrics of one method on one test set (keys as in :data:`METRICS`).

    ``diverged_at (N,)`` is the surrogate's report (-1 where finite); non-finite
    values are detected in any case. The energy balance is included when ``F`` and the
    system's ``params`` are given and the system has an energy. Scales default to the std of
    ``ref`` (steps 1..T-1).
    """
    steps = divergence_steps(pred_x, pred_v, diverged_at)
    px, pv = mark_diverged(pred_x, steps), mark_diverged(pred_v, steps)
    sx = reference_scale(ref_x) if scale_x is None else scale_x
    sv = reference_scale(ref_v) if scale_v is None else scale_v
    tenth = first_tenth_stop(px.shape[1], start)
    out: dict[str, float] = {}
    for name, pred, ref, scale in (("x", px, ref_x, sx), ("v", pv, ref_v, sv)):
        out[f"nrmse_{name}"] = nrmse(pred, ref, start=start, scale=scale)
        out[f"rmse_{name}"] = rmse(pred, ref, start=start)
        out[f"nrmse_{name}_first_tenth"] = nrmse(pred, ref, start=start, stop=tenth, scale=scale)
        out[f"rmse_{name}_first_tenth"] = rmse(pred, ref, start=start, stop=tenth)
        per = nrmse_per_trajectory(pred, ref, start=start, scale=scale)
        out[f"median_nrmse_{name}"] = float(np.median(per))
    vpt, censored = valid_times(px, ref_x, t, threshold, sx, start=start)
    out["valid_time_median"] = float(np.median(vpt))
    out["valid_time_p10"] = float(np.quantile(vpt, 0.1, method="inverted_cdf"))
    out["valid_time_censored"] = int(np.count_nonzero(censored))
    entry = SYSTEMS.get(system)  # None: imported data of an unknown equation, no energy
    if F is not None and params is not None and entry is not None and entry.energy is not None:
        drift = energy_balance_error(px, pv, F, params, t, start=start, system=system)
        p = params if isinstance(params, Mapping) else {"eta": params}
        p = {k: np.asarray(p[k], dtype=np.float64).reshape(-1, 1) for k in entry.names}
        e = entry.energy(np.asarray(ref_x)[:, start:], np.asarray(ref_v)[:, start:], p)
        # the mean energy above zero, or above its lowest value where it goes negative
        # (the double-well Duffing oscillator)
        e_ref = float(np.mean(e - min(0.0, float(np.min(e)))))
        out["energy_balance"] = float(np.sqrt(np.mean(np.square(drift)))) / e_ref
    out["n_diverged"] = int(np.count_nonzero(steps >= 0))
    return out
