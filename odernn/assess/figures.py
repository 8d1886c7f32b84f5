"""The evaluation report's figures, one function each, and the colour of every method.

Figures use matplotlib's object API (no pyplot, no global backend): headless by design.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import MaxNLocator

from odernn.assess.document import fmt
from odernn.assess.results import DATA_ONLY, REFERENCE, Evaluation

INTEGRATOR_COLORS = {"exact": "#000000", "data": "#000000", "scipy": "#e377c2", "euler": "#8c564b",
                     "semi-implicit-euler": "#a6a61c", "rk4": "#17becf", "rk4-sampled": "#7f7f7f",
                     "rk4-sampled-causal": "#5254a3", "rk4-sampled-cubic": "#c49c94",
                     "rk4-sampled-spline": "#1f6f7a", "rk4-sampled-2dt": "#7a7a18"}
"""The fixed colour of each integrator."""
INTEGRATOR_DASHES = {"scipy": (0, (1, 1.5)), "euler": (0, (6, 2)),
                     "semi-implicit-euler": (0, (6, 2, 1, 2)), "rk4": (0, (3, 1.5)),
                     "rk4-sampled": (0, (3, 1, 1, 1)), "rk4-sampled-causal": (0, (4, 1.5, 1, 1.5)),
                     "rk4-sampled-cubic": (0, (5, 1, 1, 1, 1, 1)),
                     "rk4-sampled-spline": (0, (9, 2, 2, 2)), "rk4-sampled-2dt": (0, (1.5, 3))}
"""Each integrator's own dash pattern: the lines stay apart printed in grey."""
FAMILY_COLORS = {"rnn": "#1f77b4", "lstm": "#d62728", "gru": "#2ca02c", "esn": "#9467bd",
                 "ffn": "#ff7f0e", "sindy": "#e6550d", "dmdc": "#637939"}
"""The colour of each family's (and peer's) first method, the same in every report."""
SPARE_COLORS = ("#843c39", "#3182bd", "#31a354", "#756bb1", "#a55194", "#636363")


def method_colors(evaluation: Evaluation) -> dict[str, str]:
    """One colour per method, the same in every figure and table and, for the first method of
    each family or peer, in every report; also for a method only a check runs (the closed
    form in the resonance sweep of imported data, whose reference is the stored
    trajectories)."""
    colors: dict[str, str] = {}
    spare = iter(SPARE_COLORS * (1 + len(evaluation.methods) // len(SPARE_COLORS)))
    for name, m in evaluation.methods.items():
        if m.kind not in DATA_ONLY:
            colors[name] = INTEGRATOR_COLORS.get(name, "#555555")
            continue
        own = FAMILY_COLORS.get(m.settings.get("family", name))
        colors[name] = own if own is not None and own not in colors.values() else next(spare)
    for check in (evaluation.resonance, evaluation.bifurcation):
        for name in (check or {}).get("methods", {}):
            colors.setdefault(name, INTEGRATOR_COLORS.get(name, "#555555"))
    return colors

def _figure(nrows: int = 1, ncols: int = 1, *, width: float = 9.0, height: float = 3.6,
            **kwargs: Any) -> tuple[MplFigure, np.ndarray]:
    """A grid of axes with fixed margins in inches (a layout engine would double the
    rendering time, and the labels here are short and known)."""
    h = height * nrows
    left, right, bottom, top, gap, vgap = 1.0, 0.2, 0.6, 0.35, 1.1, 0.75  # inches
    ax_w = (width - left - right - (ncols - 1) * gap) / ncols
    ax_h = (h - bottom - top - (nrows - 1) * vgap) / nrows
    fig = MplFigure(figsize=(width, h))
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / h,
                        top=1 - top / h, wspace=gap / ax_w, hspace=vgap / ax_h)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    for ax in axes.flat:
        ax.grid(True, color="#e3e6ea", linewidth=0.7)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return fig, axes


def _style(ev: Evaluation, name: str) -> dict[str, Any]:
    """Surrogates solid, peers dash-dotted, each integrator its own dashes."""
    kind = ev.methods[name].kind
    return {"linestyle": {"surrogate": "-", "peer": "-."}.get(kind,
                                                              INTEGRATOR_DASHES.get(name, "--")),
            "linewidth": 1.8 if kind in DATA_ONLY else 1.2}


LOG_CEILING = 1e250
"""The largest value a log axis shows: with its margin, an axis reaching float64's limit made
matplotlib's ticks overflow (a traceback instead of a report: Euler on a stiff test set)."""


def _positive(a: Any) -> np.ndarray:
    """Values for a log axis: non-positive, non-finite and beyond :data:`LOG_CEILING` become
    gaps."""
    a = np.asarray(a, dtype=np.float64)
    return np.where(np.isfinite(a) & (a > 0) & (a <= LOG_CEILING), a, np.nan)


PLOT_POINTS = 3000
"""About the most points a curve is drawn with. A longer curve against time keeps, of each
of ``PLOT_POINTS / 3`` runs of consecutive points, those where it (or its band) is least and
greatest, so every peak shows; a phase portrait keeps every k-th point. Drawn in full, a
test set of 10^6 steps took 3.4 GB."""


def _extremes(n: int, *curves: np.ndarray) -> np.ndarray:
    """Indices to draw of ``n`` points: all of them up to :data:`PLOT_POINTS`, else, of each
    of about ``PLOT_POINTS / (2 * len(curves))`` runs of consecutive points, where each curve
    is least and greatest (NaN, a gap, where a run has no value), in order."""
    if n <= PLOT_POINTS:
        return np.arange(n)
    width = -(-n * 2 * len(curves) // PLOT_POINTS)
    bins = -(-n // width)
    picks = []
    for y in curves:
        block = np.full(bins * width, np.nan)
        block[:n] = y
        block = block.reshape(bins, width)
        finite = np.isfinite(block)
        picks += [np.argmin(np.where(finite, block, np.inf), axis=1),
                  np.argmax(np.where(finite, block, -np.inf), axis=1)]
    index = np.sort(np.stack(picks, axis=1), axis=1) + width * np.arange(bins)[:, None]
    return np.unique(np.minimum(index.ravel(), n - 1))


def _log_scale(ax: Any, axis: str = "y") -> None:
    """A log ``axis`` where its lines have a finite positive value to show; else (every method
    diverged, every error zero) a linear one that says so: a log axis of nothing but gaps
    cannot be drawn."""
    values = [np.asarray(line.get_ydata() if axis == "y" else line.get_xdata(), dtype=float)
              for line in ax.get_lines()]
    if any(np.any(np.isfinite(v) & (v > 0)) for v in values):
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    else:
        (ax.set_yticks if axis == "y" else ax.set_xticks)([])
        ax.text(0.5, 0.5, "no finite positive value to show", transform=ax.transAxes,
                ha="center", va="center", fontsize=9, color="#444444")


def error_plot(ev: Evaluation, colors: Mapping[str, str], *, time_unit: float | None = None,
               xlabel: str = "t", marks: Sequence[tuple[float, str]] = ()) -> MplFigure:
    """Error of x and v against time: median over trajectories, band to the 90th percentile.
    With ``time_unit`` (a Lyapunov time on chaotic data) the axis is ``(t - t_0) / time_unit``,
    and ``marks`` are vertical lines ``(time since t_0, label)`` in that unit."""
    fig, axes = _figure(1, 2, height=4.2)
    t = np.asarray(ev.test.t)
    if time_unit is not None:  # a recorded clock may start anywhere (e.g. epoch seconds)
        t = (t - t[0]) / time_unit
    for ax, which, label in zip(axes[0], ("error_x", "error_v"), ("x", "v"), strict=True):
        for name, m in ev.methods.items():
            if m.kind == "reference":
                continue
            median, p90 = (_positive(a) for a in getattr(m, which))
            k = _extremes(len(t), median, p90)
            ax.plot(t[k], median[k], color=colors[name], label=name, **_style(ev, name))
            ax.fill_between(t[k], median[k], p90[k], color=colors[name], alpha=0.12,
                            linewidth=0)
        _log_scale(ax)  # before the marks, whose lines span the axis: no data of the plot
        for when, text in marks:
            ax.axvline(when, color="black", linestyle=":", linewidth=1.0, label=text)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"|{label} error| / std({label})")
    _legend_below(fig, axes[0, 0])
    return fig


def _legend_below(fig: MplFigure, ax: Any, ncol: int = 5) -> None:
    """One legend for the whole figure, under the axes, with room made for it."""
    handles, labels = ax.get_legend_handles_labels()
    rows = math.ceil(len(labels) / ncol)
    height = fig.get_figheight()
    fig.subplots_adjust(bottom=(0.6 + 0.25 * rows) / height)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.02))


def _order(values: np.ndarray) -> list[int]:
    """Best, median and worst index; infinite values sort last."""
    rank = np.argsort(np.where(np.isfinite(values), values, np.inf), kind="stable")
    return [int(rank[0]), int(rank[len(rank) // 2]), int(rank[-1])]


def overlay_plot(ev: Evaluation, name: str, colors: Mapping[str, str]) -> MplFigure:
    """Surrogate ``name`` over the exact solution on its best, median and worst trajectory."""
    m, ref = ev.methods[name], ev.methods[ev.reference]
    fig, axes = _figure(3, 2, height=2.3, sharex=True)
    t = np.asarray(ev.test.t)
    for row, (label, i) in enumerate(zip(("best", "median", "worst"), _order(m.nrmse_x),
                                         strict=True)):
        for col, var in enumerate(("x", "v")):
            ax = axes[row, col]
            exact, rollout = getattr(ref, var)[i], getattr(m, var)[i]
            k = _extremes(len(t), exact, rollout)
            ax.plot(t[k], exact[k], color="black", linewidth=1.0, label=ev.reference)
            ax.plot(t[k], rollout[k], color=colors[name], linewidth=1.4, linestyle="--",
                    label=name)
            if ev.start > 1:
                ax.axvspan(t[0], t[ev.start - 1], color="#dddddd", alpha=0.5, linewidth=0)
            ax.set_ylabel(var)
            bad = ~np.isfinite(m.x[i])
            diverged = f", diverged at t = {t[np.argmax(bad)]:.3g}" if bad.any() else ""
            ax.set_title(f"{label}: trajectory {i}, NRMSE x = {fmt(float(m.nrmse_x[i]))}"
                         f"{diverged}", fontsize=9, loc="left")
    for ax in axes[-1]:
        ax.set_xlabel("t")
    axes[0, 1].legend(fontsize=8, frameon=False, loc="upper right")
    return fig


def phase_plot(ev: Evaluation, colors: Mapping[str, str]) -> MplFigure:
    """Phase portrait (x, v) of each surrogate's and peer's median trajectory over the exact
    one."""
    surrogates = ev.method_names(*DATA_ONLY)
    ncols = min(3, len(surrogates))
    nrows = math.ceil(len(surrogates) / ncols)
    fig, axes = _figure(nrows, ncols, width=3.2 * ncols, height=3.1)
    ref = ev.methods[ev.reference]
    for ax in axes.flat[len(surrogates):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, surrogates, strict=False):
        m = ev.methods[name]
        i = _order(m.nrmse_x)[1]
        k = slice(None, None, -(-ref.x.shape[1] // PLOT_POINTS))
        ax.plot(ref.x[i, k], ref.v[i, k], color="black", linewidth=1.0, label=ev.reference)
        ax.plot(m.x[i, k], m.v[i, k], color=colors[name], linewidth=1.2, linestyle="--",
                label=name)
        ax.plot(ref.x[i, 0], ref.v[i, 0], "o", color="black", markersize=4, label="start")
        ax.set_title(f"{name}, trajectory {i}", fontsize=9)
        ax.set_xlabel("x")
        ax.set_ylabel("v")
        ax.legend(fontsize=8, frameon=False, loc="best")
    return fig


def work_precision_plot(ev: Evaluation, colors: Mapping[str, str]) -> MplFigure:
    """Error against wall time: a line per integrator over its settings, a star per surrogate."""
    wp = ev.work_precision
    fig, axes = _figure(1, 1, width=8.0, height=5.2)
    ax = axes[0, 0]
    for name in dict.fromkeys(p["method"] for p in wp["integrators"]):
        pts = sorted((p for p in wp["integrators"] if p["method"] == name),
                     key=lambda p: -p["value"])
        ax.plot(_positive([p["wall_time_s"] for p in pts]), _positive([p["error"] for p in pts]),
                marker="o", markersize=4, color=colors[name], label=name, **_style(ev, name))
    offsets = ((8, 6), (8, -14), (-10, 12), (-10, -20))  # neighbours' names apart
    for k, (name, p) in enumerate(wp["surrogates"].items()):
        ax.plot(_positive([p["wall_time_s"]]), _positive([p["error"]]), marker="*",
                markersize=15, linestyle="none", color=colors[name], label=name)
        if math.isfinite(p["error"]) and p["error"] > 0:
            ax.annotate(name, (p["wall_time_s"], p["error"]), textcoords="offset points",
                        xytext=offsets[k % len(offsets)], fontsize=9, color=colors[name],
                        ha="left" if offsets[k % len(offsets)][0] > 0 else "right")
    _log_scale(ax, "x")
    _log_scale(ax)
    ax.set_xlabel("wall time [s] for all test trajectories")
    ax.set_ylabel("NRMSE x")
    ax.legend(fontsize=8, frameon=False, loc="best")
    return fig


def resonance_plot(ev: Evaluation, colors: Mapping[str, str]) -> MplFigure:
    """Steady-state amplitude and phase lag against frequency, a column per eta."""
    res = ev.resonance
    etas = res["curve"]["eta"]
    fig, axes = _figure(2, len(etas), width=min(12.0, 4.6 * len(etas)), height=3.1, sharex=True)
    eta_all, omega = np.asarray(res["eta"]), np.asarray(res["omega"])
    for col, eta in enumerate(etas):
        pick = np.isclose(eta_all, eta)
        fine = res["curve"]["omega"]
        axes[0, col].plot(fine, res["curve"]["amplitude"][col], color="black", linewidth=1.2,
                          label="analytic")
        axes[1, col].plot(fine, res["curve"]["lag"][col], color="black", linewidth=1.2)
        for name, r in res["methods"].items():
            exact = name == REFERENCE  # the sweep's own reference, whatever the evaluation's
            style = {"marker": "o", "markersize": 5 if exact else 4,
                     "linestyle": "none" if exact else "-", "linewidth": 1.0,
                     "color": colors[name], "label": name}
            if exact:
                style["markerfacecolor"] = "none"
            axes[0, col].plot(omega[pick], _positive(r["amplitude"])[pick], **style)
            axes[1, col].plot(omega[pick], _finite(r["lag"])[pick], **style)
        _log_scale(axes[0, col])
        axes[0, col].set_title(f"eta = {eta:.3g}", fontsize=10)
        axes[0, col].set_ylabel("amplitude")
        axes[1, col].set_ylabel("phase lag [rad]")
        axes[1, col].set_xlabel("omega")
    _legend_below(fig, axes[0, 0])
    return fig


def frequency_response_plot(ev: Evaluation, colors: Mapping[str, str]) -> MplFigure:
    """A nonlinear system's steady-state amplitude (top) and phase lag (bottom, periodic
    drives only) against drive frequency, a column per damping level: the integrator in
    black (up sweep filled, down sweep open and dashed, drives from rest filled; a drive
    whose reference is not periodic a grey cross), each surrogate in its colour (up solid,
    down dashed), and the harmonic-balance backbone dotted where there is one."""
    res = ev.resonance
    levels = res["levels"]
    fig, axes = _figure(2, len(levels), width=min(12.0, 4.6 * len(levels)), height=3.1,
                        sharex=True)
    level, omega = np.asarray(res["level"]), np.asarray(res["omega"])
    direction = np.asarray(res["direction"])
    ref = res["integrator"]
    periodic = np.asarray(ref["periodic"], dtype=bool)
    ways = {"up": ("-", "o", "up"), "down": ("--", "s", "down"), "rest": ("-", "o", "")}
    for col, value in enumerate(levels):
        top, bottom = axes[0, col], axes[1, col]
        here = np.isclose(level, value)
        if res.get("backbone"):
            w, a = (np.asarray(res["backbone"][k]) for k in ("omega", "amplitude"))
            inside = (w >= omega.min()) & (w <= omega.max())
            if inside.any():
                top.plot(w[inside], a[inside], color="#888888", linestyle=":",
                         linewidth=1.2, label="backbone (harmonic balance)")
        for way, (line, marker, word) in ways.items():
            pick = here & (direction == way)
            if not pick.any():
                continue
            order = np.flatnonzero(pick)[np.argsort(omega[pick], kind="stable")]
            ok = order[periodic[order]]
            label = f"{res['reference']} {word}".strip()
            face = "none" if way == "down" else "black"
            for ax, key in ((top, "amplitude"), (bottom, "lag")):
                ax.plot(omega[ok], _finite(ref[key])[ok], color="black", linestyle=line,
                        marker=marker, markersize=4, markerfacecolor=face, linewidth=1.0,
                        label=label if ax is top else None)
            for name, r in res["methods"].items():
                # a surrogate's lag within pi of the reference's: no wrap-around jumps
                lag = ref["lag"] + np.angle(np.exp(1j * (_finite(r["lag"]) - ref["lag"])))
                for ax, y, keep in ((top, _finite(r["amplitude"]), order), (bottom, lag, ok)):
                    ax.plot(omega[keep], y[keep], color=colors[name], linestyle=line,
                            linewidth=1.4, marker=".", markersize=4,
                            label=name if ax is top and way != "down" else None)
        loose = here & ~periodic
        if loose.any():
            top.plot(omega[loose], _finite(ref["amplitude"])[loose], linestyle="none",
                     marker="x", color="#888888", label="reference not periodic")
        top.set_title(f"{res['parameter']} = {value:.3g}", fontsize=10)
        top.set_ylabel("amplitude")
        bottom.set_ylabel("phase lag [rad]")
        bottom.set_xlabel("omega")
    _legend_below(fig, axes[0, 0], ncol=4)
    return fig


def _finite(a: Any) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return np.where(np.isfinite(a), a, np.nan)


def loss_plot(histories: Mapping[str, Mapping[str, np.ndarray]],
               colors: Mapping[str, str]) -> MplFigure:
    """Loss (training solid, validation dashed) and, where recorded, the closed-loop
    validation NRMSE, against epoch."""
    errors = any(k for h in histories.values() for k in h if "nrmse" in k)
    fig, axes = _figure(1, 2 if errors else 1, width=9.0 if errors else 8.0, height=4.2)
    for name, h in histories.items():
        color = colors.get(name, "#444444")
        train = next((k for k in ("train_loss", "loss") if k in h), None)
        for key, dashed in ((train, False), ("val_loss", True)):
            if key in h:
                axes[0, 0].plot(h["epoch"], _positive(h[key]), color=color, marker=".",
                                linestyle="--" if dashed else "-", label=f"{name} {key}")
        for key in (k for k in h if "nrmse" in k):
            axes[0, 1].plot(h["epoch"], _positive(h[key]), color=color, marker=".",
                            label=f"{name} {key}")
    last = max(float(np.max(h["epoch"])) for h in histories.values())
    for ax, label in zip(axes[0], ("loss", "closed-loop validation NRMSE"), strict=False):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(0.5, max(last, 2) + 0.5)  # one epoch: a point, not a sub-unit axis
        _log_scale(ax)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend(fontsize=8, frameon=False)
    return fig


def bifurcation_plot(ev: Evaluation, colors: Mapping[str, str]) -> MplFigure:
    """The bifurcation diagram, a small panel per method side by side: each drive's
    stroboscopic x against its amplitude F0, the reference in black and each surrogate in
    its colour, the test set's range of F0 shaded. The vertical axis is the reference's,
    widened by at most its own height for the surrogates' points."""
    res = ev.bifurcation
    panels = [(f"{res['reference']} (reference)", res["integrator"], "black"),
              *((name, m, colors[name]) for name, m in res["methods"].items())]
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = _figure(nrows, ncols, width=min(12.0, 1.2 + 3.6 * ncols), height=3.0,
                        sharex=True, sharey=True)
    amplitudes = np.repeat(res["amplitudes"], len(res["initial_states"]["x0"]))
    ref = _finite(res["integrator"]["samples"])
    every = np.concatenate([_finite(entry["samples"]).ravel() for _, entry, _ in panels])
    limits = None  # matplotlib's own where the reference has no finite point (it diverged)
    if np.isfinite(ref).any():
        lo, hi = np.nanmin(ref), np.nanmax(ref)
        span = max(hi - lo, 1e-9)
        limits = (max(np.nanmin(every), lo - span) - 0.05 * span,
                  min(np.nanmax(every), hi + span) + 0.05 * span)
    for k, (ax, (title, entry, color)) in enumerate(zip(axes.flat, panels, strict=False)):
        samples = _finite(entry["samples"])
        ax.axvspan(*res["trained_range"], color="#dbe4ee", linewidth=0)
        ax.plot(np.broadcast_to(amplitudes[:, None], samples.shape).ravel(), samples.ravel(),
                linestyle="none", marker=".", markersize=1.6, color=color)
        share = entry.get("agreement")
        ax.set_title(title if share is None else f"{title}: {fmt(100 * share)}% agree",
                     fontsize=9)
        if limits is not None:
            ax.set_ylim(*limits)
        if k % ncols == 0:
            ax.set_ylabel("x, once a drive period")
        if k >= len(panels) - ncols:
            ax.set_xlabel("F0")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    return fig
