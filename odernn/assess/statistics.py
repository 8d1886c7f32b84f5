"""What a surrogate gets right about chaotic motion once it no longer follows the trajectory.

On chaotic data no method follows a trajectory for long, so pointwise errors say little
past a few Lyapunov times. These metrics (docs/metrics.md, "Chaotic data") measure how
long a surrogate stays on the trajectory in the system's own time unit, and whether it
reproduces the attractor's statistics, its "climate", in the steady state after a
transient:

- the valid prediction time in Lyapunov times, ``lambda t_valid`` (where ``lambda`` is
  positive);
- the steady-state response statistics ``max x^2`` and ``mean x^2`` and their relative
  errors;
- the Wasserstein-1 distance between the steady-state distributions of x (and of v);
- the distance between the normalised power spectra of x.

Each is computed per trajectory and pooled over all trajectories as in
:mod:`odernn.assess.metrics`; a diverged trajectory is never dropped: its steady-state
values are ``inf`` and so is every pooled number that includes it. Arrays are ``(N, T)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real

import numpy as np

from odernn.assess.metrics import (
    divergence_steps,
    mark_diverged,
    reference_scale,
    valid_times,
    wrap_angle,
)
from odernn.data.schema import grid_step
from odernn.errors import SpecError
from odernn.types import Array

TRANSIENT_FRACTION = 0.2
"""The transient discarded by default: this fraction of the horizon ``t_{T-1} - t_0``."""
MIN_SAMPLES = 16
"""The fewest steady-state steps the statistics accept."""
MAX_SEGMENT = 1024
"""Welch's segments are ``min(L // 2, MAX_SEGMENT)`` samples of the L steady-state ones."""
MIN_EXPONENT = 0.01
"""Exponents at or below this (per time unit) are not chaotic: no Lyapunov time (the
marginal band of benchmarks/regimes.py)."""

STATISTICS: dict[str, str] = {
    "valid_lyapunov_median": "median over chaotic trajectories of the valid prediction time "
                             "times the largest Lyapunov exponent (Lyapunov times)",
    "valid_lyapunov_p10": "10th percentile of the valid prediction time in Lyapunov times",
    "n_chaotic": "trajectories whose largest Lyapunov exponent exceeds 0.01",
    "valid_lyapunov_censored": "chaotic trajectories whose error never exceeded the threshold: "
                               "their valid time is the horizon's, a lower bound",
    "x2_max_rel_error": "relative error of the steady-state max of x^2, all trajectories pooled",
    "x2_mean_rel_error": "relative error of the steady-state mean of x^2, all trajectories "
                         "pooled",
    "x2_max_rel_error_median": "median over trajectories of each one's relative error of "
                               "max x^2",
    "x2_mean_rel_error_median": "median over trajectories of each one's relative error of "
                                "mean x^2",
    "w1_x": "Wasserstein-1 distance of the pooled steady-state distributions of x, over the "
            "test set's std of x",
    "w1_v": "Wasserstein-1 distance of the pooled steady-state distributions of v, over the "
            "test set's std of v",
    "w1_x_median": "median over trajectories of each one's Wasserstein-1 distance of x (same "
                   "std)",
    "w1_v_median": "median over trajectories of each one's Wasserstein-1 distance of v (same "
                   "std)",
    "spectrum_error_x": "half the L1 distance of the normalised Welch spectra of x averaged "
                        "over trajectories (0 same, 1 disjoint)",
    "spectrum_error_x_median": "median over trajectories of each one's spectrum error of x",
}
"""Every scalar of :func:`summarize_statistics`, with its one-line definition."""


def steady_start(t: Array, transient: float | None = None, *, start: int = 1) -> int:
    """The first step of the steady state: the first ``k >= start`` with
    ``t_k - t_0 >= transient`` (default :data:`TRANSIENT_FRACTION` of the horizon); one
    SpecError line if fewer than :data:`MIN_SAMPLES` steps remain."""
    t = np.asarray(t, dtype=np.float64)
    horizon = float(t[-1] - t[0])
    if transient is None:
        transient = TRANSIENT_FRACTION * horizon
    if isinstance(transient, bool) or not isinstance(transient, Real) \
            or not 0 <= transient < np.inf:
        raise SpecError(f"statistics: transient must be a finite time >= 0, got {transient!r}")
    k = max(int(start), int(np.searchsorted(t - t[0], transient, side="left")))
    if t.size - k < MIN_SAMPLES:
        raise SpecError(f"statistics: a transient of {transient:g} leaves {max(t.size - k, 0)} "
                        f"of {t.size} steps (horizon {horizon:g}); at least {MIN_SAMPLES} are "
                        "needed: use a shorter transient or a longer test set")
    return k


def lyapunov_times(valid_time: Array, exponent: Array,
                   min_exponent: float = MIN_EXPONENT) -> np.ndarray:
    """``valid_time * exponent`` per trajectory where ``exponent > min_exponent``, else NaN
    (a non-chaotic trajectory has no Lyapunov time; NaN exponents give NaN)."""
    valid_time = np.asarray(valid_time, dtype=np.float64)
    exponent = np.asarray(exponent, dtype=np.float64)
    if exponent.shape != valid_time.shape:
        raise ValueError(f"exponent shape {exponent.shape} differs from valid time shape "
                         f"{valid_time.shape}")
    with np.errstate(invalid="ignore"):
        return np.where(exponent > min_exponent, valid_time * exponent, np.nan)


def _rows(a: Array) -> np.ndarray:
    """``a`` as a float64 ``(N, L)`` array with NaN counted as diverged (``inf``)."""
    out = np.array(np.atleast_2d(a), dtype=np.float64)
    out[np.isnan(out)] = np.inf
    return out


def response_statistics(x: Array, first: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per trajectory, ``max x^2`` and ``mean x^2`` over steps ``first .. T-1``, each
    ``(N,)``; ``inf`` for a trajectory with a non-finite value there."""
    with np.errstate(over="ignore"):  # a value too large to square: an infinite statistic
        x2 = np.square(_rows(x)[:, first:])
    return x2.max(axis=1), x2.mean(axis=1)


def relative_error(pred: Array, ref: Array) -> np.ndarray:
    """``|pred - ref| / |ref|`` elementwise; where ``ref`` is 0: 0 if ``pred`` is too, else
    ``inf``; ``inf`` where ``pred`` is not finite."""
    pred, ref = np.asarray(pred, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    diff = np.abs(pred - ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(ref != 0, diff / np.abs(ref), np.where(diff == 0, 0.0, np.inf))
    out[~np.isfinite(pred)] = np.inf
    return out


def wasserstein_1(a: Array, b: Array) -> np.ndarray:
    """Per row, the Wasserstein-1 distance between the empirical distributions of the
    samples ``a (N, La)`` and ``b (N, Lb)``: ``integral_0^1 |Q_a(u) - Q_b(u)| du`` with
    ``Q`` the empirical quantile functions, the mean absolute difference of the sorted
    samples when ``La == Lb``. Vectorised over rows (the quantile breakpoints are the
    same for every row); ``inf`` for a row with a non-finite sample."""
    a, b = np.sort(_rows(a), axis=1), np.sort(_rows(b), axis=1)
    if a.shape[0] != b.shape[0] or 0 in (a.shape[1], b.shape[1]):
        raise ValueError(f"wasserstein_1 needs the same number of non-empty rows, got shapes "
                         f"{a.shape} and {b.shape}")
    bad = ~(np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1))
    a[bad], b[bad] = 0.0, 0.0
    na, nb = a.shape[1], b.shape[1]
    if na == nb:
        out = np.mean(np.abs(a - b), axis=1)
    else:  # breakpoints i/na and j/nb on the common grid of 1/(na nb)
        cuts = np.union1d(np.arange(1, na + 1) * nb, np.arange(1, nb + 1) * na)
        width = np.diff(cuts, prepend=0) / (na * nb)
        ia, ib = (cuts + nb - 1) // nb - 1, (cuts + na - 1) // na - 1
        out = np.abs(a[:, ia] - b[:, ib]) @ width
    out[bad] = np.inf
    return out


def circular_wasserstein_1(a: Array, b: Array, period: float = 2 * math.pi) -> np.ndarray:
    """Per row, :func:`wasserstein_1` on a circle of circumference ``period`` (samples of an
    angle): ``min_alpha integral |F_a - F_b - alpha|`` over the circle, ``F`` the empirical
    distribution functions from any origin and ``alpha`` the weighted median of their
    difference (Rabin, Delon and Gousseau 2011). On a line a sample at pi - 1e-6 and one at
    -pi + 1e-6 are 2 pi apart; here 2e-6. ``inf`` for a row with a non-finite sample."""
    a, b = _rows(a), _rows(b)
    if not 0 < period < math.inf:
        raise ValueError(f"circular_wasserstein_1 needs a period > 0, got {period!r}")
    if a.shape[0] != b.shape[0] or 0 in (a.shape[1], b.shape[1]):
        raise ValueError(f"circular_wasserstein_1 needs the same number of non-empty rows, got "
                         f"shapes {a.shape} and {b.shape}")
    bad = ~(np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1))
    pooled = np.mod(np.where(bad[:, None], 0.0, np.concatenate((a, b), axis=1)), period)
    order = np.argsort(pooled, axis=1, kind="stable")
    points = np.take_along_axis(pooled, order, axis=1)
    step = np.where(order < a.shape[1], 1 / a.shape[1], -1 / b.shape[1])  # F_a - F_b's jumps
    diff = np.cumsum(step, axis=1)  # on [points_k, points_k+1), the last to the first + period
    width = np.diff(points, axis=1, append=points[:, :1] + period)
    rank = np.argsort(diff, axis=1, kind="stable")
    d, w = np.take_along_axis(diff, rank, axis=1), np.take_along_axis(width, rank, axis=1)
    half = np.argmax(np.cumsum(w, axis=1) >= 0.5 * period, axis=1)  # the weighted median
    alpha = np.take_along_axis(d, half[:, None], axis=1)
    out = np.sum(width * np.abs(diff - alpha), axis=1)
    out[bad] = np.inf
    return out


def power_spectrum(x: Array, dt: float, angle: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies ``(F,)`` (cycles per time unit) and the Welch power spectra ``(N, F)`` of
    the rows of ``x (N, L)``, each normalised to sum 1 (zero for a constant row): periodic
    Hann windows of ``S = min(L // 2, MAX_SEGMENT)`` samples every ``S - S // 2``, each
    segment's mean removed, the one-sided periodograms averaged (scipy.signal.welch's
    defaults, without its import). Rows must be finite. ``angle``: the spectrum of the point
    ``(cos x, sin x)`` on the circle (the two periodograms summed), which whole turns leave
    alone and the cut at +-pi does not break."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    size = max(2, min(x.shape[1] // 2, MAX_SEGMENT))
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(size) / size)

    def periodogram(y: np.ndarray) -> np.ndarray:
        segments = np.lib.stride_tricks.sliding_window_view(y, size, axis=1)[:, ::size - size // 2]
        return np.mean(np.abs(np.fft.rfft((segments - segments.mean(axis=2, keepdims=True))
                                          * window, axis=2)) ** 2, axis=1)

    power = periodogram(np.cos(x)) + periodogram(np.sin(x)) if angle else periodogram(x)
    power[:, 1:(size + 1) // 2] *= 2  # one-sided: every bin but 0 (and size/2 if even) twice
    total = power.sum(axis=1, keepdims=True)
    freqs = np.fft.rfftfreq(size, dt)
    return freqs, np.divide(power, total, out=np.zeros_like(power), where=total > 0)


def spectrum_distance(p: Array, q: Array) -> np.ndarray:
    """Half the L1 distance between normalised spectra, per row: 0 for equal spectra, 1 for
    spectra with no power at the same frequency; 1 when exactly one of them is zero (a
    constant signal), 0 when both are."""
    p, q = np.atleast_2d(p), np.atleast_2d(q)
    out = 0.5 * np.abs(p - q).sum(axis=1)
    zero_p, zero_q = p.sum(axis=1) == 0, q.sum(axis=1) == 0
    out[zero_p != zero_q] = 1.0
    return out


def spectrum_error(pred: Array, ref: Array, dt: float, angle: bool = False) -> np.ndarray:
    """Per row, :func:`spectrum_distance` of the :func:`power_spectrum` of ``pred`` and
    ``ref`` (``(N, L)`` each); ``inf`` for a row of ``pred`` with a non-finite value."""
    pred = _rows(pred)
    bad = ~np.isfinite(pred).all(axis=1)
    _, p = power_spectrum(np.where(bad[:, None], 0.0, pred), dt, angle)
    _, q = power_spectrum(ref, dt, angle)
    out = spectrum_distance(p, q)
    out[bad] = np.inf
    return out


def _prepare(pred_x: Array, pred_v: Array, ref_x: Array, ref_v: Array, t: Array,
             diverged_at: np.ndarray | None, scale_x: float | None, scale_v: float | None,
             angle: bool) -> tuple[np.ndarray, ...]:
    """The predictions with ``inf`` from each divergence step on, the references, ``t``
    and the scales (default: the references' pooled std, steps ``1 .. T-1``; an angle's
    wrapped, which whole turns leave alone)."""
    t = np.asarray(t, dtype=np.float64)
    steps = divergence_steps(pred_x, pred_v, diverged_at)
    px, pv = mark_diverged(pred_x, steps), mark_diverged(pred_v, steps)
    rx, rv = (np.atleast_2d(np.asarray(r, dtype=np.float64)) for r in (ref_x, ref_v))
    if px.shape != rx.shape or pv.shape != rv.shape or px.shape != pv.shape \
            or px.shape[1] != t.size:
        raise ValueError(f"shapes differ: prediction {px.shape}, {pv.shape}, reference "
                         f"{rx.shape}, {rv.shape}, t {t.shape}")
    sx = reference_scale(wrap_angle(rx) if angle else rx) if scale_x is None else scale_x
    sv = reference_scale(rv) if scale_v is None else scale_v
    return px, pv, rx, rv, t, sx, sv


def statistics_per_trajectory(pred_x: Array, pred_v: Array, ref_x: Array, ref_v: Array,
                              t: Array, diverged_at: np.ndarray | None = None, *,
                              exponent: Array | None = None, transient: float | None = None,
                              start: int = 1, threshold: float = 0.1,
                              scale_x: float | None = None, scale_v: float | None = None,
                              min_exponent: float = MIN_EXPONENT,
                              angle: bool = False) -> dict[str, np.ndarray]:
    """Every per-trajectory quantity behind :func:`summarize_statistics`, each ``(N,)``:
    ``valid_time`` and ``valid_censored`` (never past the threshold: the horizon, a lower
    bound), ``valid_lyapunov`` (NaN without a positive ``exponent``), the
    steady-state ``x2_max``/``x2_mean`` of prediction and reference (``*_ref``) and their
    relative errors, ``w1_x``, ``w1_v`` (over the scales) and ``spectrum_error_x``.
    Divergence (``diverged_at``, or non-finite values) makes the trajectory ``inf`` from
    that step on, as in :func:`odernn.assess.metrics.summarize`; ``start`` is the first
    step compared (later with warm-up steps). ``angle``: x is an angle, whose steady state
    is taken on the circle (x^2 of the angle wrapped into ``[-pi, pi)``, W1 on the circle over
    the wrapped reference's std, the spectrum of ``(cos x, sin x)``); the valid time compares
    the unwrapped angles, in which a turn more or less is an error."""
    px, pv, rx, rv, t, sx, sv = _prepare(pred_x, pred_v, ref_x, ref_v, t, diverged_at,
                                         scale_x, scale_v, angle)
    k = steady_start(t, transient, start=start)
    out: dict[str, np.ndarray] = {}
    out["valid_time"], out["valid_censored"] = valid_times(px, rx, t, threshold, sx,
                                                           start=start)
    lam = np.full(px.shape[0], np.nan) if exponent is None else exponent
    out["valid_lyapunov"] = lyapunov_times(out["valid_time"], lam, min_exponent)
    steady_p, steady_r = _steady_x(px, k, angle), _steady_x(rx, k, angle)
    (out["x2_max"], out["x2_mean"]), (out["x2_max_ref"], out["x2_mean_ref"]) = (
        response_statistics(steady_p), response_statistics(steady_r))
    for name in ("x2_max", "x2_mean"):
        out[f"{name}_rel_error"] = relative_error(out[name], out[f"{name}_ref"])
    out["w1_x"] = (circular_wasserstein_1 if angle else wasserstein_1)(steady_p, steady_r) / sx
    out["w1_v"] = wasserstein_1(pv[:, k:], rv[:, k:]) / sv
    out["spectrum_error_x"] = spectrum_error(px[:, k:], rx[:, k:], grid_step(t), angle)
    return out


def _steady_x(x: np.ndarray, k: int, angle: bool) -> np.ndarray:
    """Steps ``k ..`` of ``x``, on the circle for an angle."""
    return wrap_angle(x[:, k:]) if angle else x[:, k:]


def _pooled_spectrum_error(px: np.ndarray, rx: np.ndarray, dt: float, angle: bool) -> float:
    if not np.all(np.isfinite(px)):
        return np.inf
    _, p = power_spectrum(px, dt, angle)
    _, q = power_spectrum(rx, dt, angle)
    return float(spectrum_distance(p.mean(axis=0), q.mean(axis=0))[0])


def summarize_statistics(pred_x: Array, pred_v: Array, ref_x: Array, ref_v: Array, t: Array,
                         diverged_at: np.ndarray | None = None, *,
                         exponent: Array | None = None, transient: float | None = None,
                         start: int = 1, threshold: float = 0.1, scale_x: float | None = None,
                         scale_v: float | None = None,
                         min_exponent: float = MIN_EXPONENT,
                         angle: bool = False) -> dict[str, float]:
    """The scalars of :data:`STATISTICS` for one method on one test set (arguments as
    :func:`statistics_per_trajectory`): medians and percentiles over trajectories, and
    the same quantities of all trajectories' steady states pooled (``inf`` if any
    diverged)."""
    options = dict(exponent=exponent, transient=transient, start=start, threshold=threshold,
                   scale_x=scale_x, scale_v=scale_v, min_exponent=min_exponent, angle=angle)
    per = statistics_per_trajectory(pred_x, pred_v, ref_x, ref_v, t, diverged_at, **options)
    px, pv, rx, rv, t, sx, sv = _prepare(pred_x, pred_v, ref_x, ref_v, t, diverged_at,
                                         scale_x, scale_v, angle)
    k = steady_start(t, transient, start=start)
    chaotic = np.isfinite(per["valid_lyapunov"])
    lyap = per["valid_lyapunov"][chaotic]
    out: dict[str, float] = {} if exponent is None else {  # unknown without the exponents
        "valid_lyapunov_median": float(np.median(lyap)) if lyap.size else np.nan,
        "valid_lyapunov_p10": (float(np.quantile(lyap, 0.1, method="inverted_cdf"))
                               if lyap.size else np.nan),
        "n_chaotic": int(lyap.size),
        "valid_lyapunov_censored": int(np.count_nonzero(per["valid_censored"][chaotic])),
    }
    steady_p, steady_r = _steady_x(px, k, angle), _steady_x(rx, k, angle)
    pooled = [response_statistics(a.reshape(1, -1)) for a in (steady_p, steady_r)]
    for i, name in enumerate(("x2_max", "x2_mean")):
        out[f"{name}_rel_error"] = float(relative_error(pooled[0][i], pooled[1][i])[0])
        out[f"{name}_rel_error_median"] = float(np.median(per[f"{name}_rel_error"]))
    for name, p, r, s, distance in (
            ("x", steady_p, steady_r, sx,
             circular_wasserstein_1 if angle else wasserstein_1),
            ("v", pv[:, k:], rv[:, k:], sv, wasserstein_1)):
        out[f"w1_{name}"] = float(distance(p.reshape(1, -1), r.reshape(1, -1))[0]) / s
        out[f"w1_{name}_median"] = float(np.median(per[f"w1_{name}"]))
    out["spectrum_error_x"] = _pooled_spectrum_error(px[:, k:], rx[:, k:], grid_step(t), angle)
    out["spectrum_error_x_median"] = float(np.median(per["spectrum_error_x"]))
    return out


def members_median_statistics(members_x: Sequence[Array], ref_x: Array, t: Array, *,
                              transient: float | None = None, start: int = 1,
                              angle: bool = False) -> dict[str, float]:
    """A seed group's steady-state ``max x^2`` and ``mean x^2``: the median of its members'
    estimates (each member's own closed loop ``x (N, T)``, ``inf`` from a divergence on),
    per trajectory and pooled, with their relative errors as in
    :func:`summarize_statistics` (``x2_*_rel_error`` and ``x2_*_rel_error_median``).

    For any numbers ``q`` and ``r``, ``|median(q) - r| <= median(|q - r|)``: each of these
    estimates is never farther from the reference than the median member's is, which the
    joint loop's own steady state cannot promise (members that err alike do not cancel).
    ``angle``: x is an angle, taken on the circle as there."""
    k = steady_start(t, transient, start=start)
    rx = _steady_x(_rows(ref_x), k, angle)
    runs = [_steady_x(_rows(x), k, angle) for x in members_x]
    if not runs or any(x.shape != rx.shape for x in runs):
        raise ValueError(f"member shapes {[x.shape for x in runs]} differ from the "
                         f"reference's {rx.shape}")
    per = np.median([response_statistics(x) for x in runs], axis=0)  # (2, N)
    pooled = np.median([response_statistics(x.reshape(1, -1)) for x in runs], axis=0)
    ref_per, ref_pooled = response_statistics(rx), response_statistics(rx.reshape(1, -1))
    out: dict[str, float] = {}
    for i, name in enumerate(("x2_max", "x2_mean")):
        out[f"{name}_rel_error"] = float(relative_error(pooled[i], ref_pooled[i])[0])
        out[f"{name}_rel_error_median"] = float(np.median(relative_error(per[i], ref_per[i])))
    return out

