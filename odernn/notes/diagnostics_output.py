"""The gradient diagnostics shown: a text table and a figure of norms against the lag.

Both take the :class:`odernn.notes.diagnostics.GradientProfile` objects of one
comparison (same norm and loss) and draw on no pyplot state.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullLocator

from odernn.notes.diagnostics import TABLE_LAGS, GradientProfile


def format_table(profiles: Sequence[GradientProfile], lags: Sequence[int] = TABLE_LAGS) -> str:
    """A text table: both norms at ``lags`` and the fitted rates per step, one row per profile."""
    T = min(len(p.lags) for p in profiles) - 1
    lags = [n for n in lags if n <= T]
    label_width = max(13, *(len(p.label) for p in profiles))
    cells = ["radius", *(f"J({n})" for n in lags), "J rate", *(f"dL({n})" for n in lags),
             "dL rate"]
    lines = [f"{'configuration':<{label_width}}" + "".join(f"{c:>10}" for c in cells)]
    for p in profiles:
        row = p.table(lags)
        values = [row["spectral_radius"], *(row[f"jacobian_lag_{n}"] for n in lags),
                  row["jacobian_rate"], *(row[f"gradient_lag_{n}"] for n in lags),
                  row["gradient_rate"]]
        lines.append(f"{p.label:<{label_width}}" + "".join(f"{v:>10.3g}" for v in values))
    lines.append(f"J(n) = ||ds_T/ds_(T-n)|| ({profiles[0].norm} norm), dL(n) = ||dL/ds_(T-n)|| "
                 f"(loss: {profiles[0].loss}), s the carried state (h; (h, c) for an LSTM);\n"
                 f"rate = fitted factor per step over lags T/2..T, T = {T}; "
                 "radius = spectral radius of the recurrent matrix (candidate block if gated)")
    return "\n".join(lines)


def figure(profiles: Sequence[GradientProfile]) -> Figure:
    """The vanishing/exploding picture as a standalone figure (no pyplot state)."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    plot_profiles(profiles, fig.subplots(1, 2, sharex=True))
    return fig


def plot_profiles(profiles: Sequence[GradientProfile], axes: Sequence[Axes]) -> None:
    """Both norms against the lag on two axes, log scale, one curve per profile in the same
    colour on both (a profile whose norms are all 0, as a readout V of zeros passes no
    gradient back, is not drawn: the axis names it)."""
    for ax, key in zip(axes, ("jacobian_norm", "gradient_norm"), strict=False):
        ax.set_yscale("log")
        zero = []
        for i, p in enumerate(profiles):
            if np.any(np.asarray(getattr(p, key)) > 0):
                ax.plot(p.lags, getattr(p, key), label=p.label, color=f"C{i % 10}")
            else:
                zero.append(p.label)
        if zero:
            ax.text(0.5, 0.5, f"every norm is 0: {', '.join(zero)}", transform=ax.transAxes,
                    ha="center")
        if len(zero) == len(profiles):
            ax.set_ylim(0.1, 10.0)
        ax.axhline(1.0, color="k", lw=0.6)
        ax.yaxis.set_major_locator(LogLocator(numticks=8))  # decades apart: few labels
        ax.yaxis.set_minor_locator(NullLocator())
        ax.grid(True, alpha=0.3)
    axes[0].set(xlabel="lag T - k (steps)", ylabel=f"||ds_T/ds_k|| ({profiles[0].norm})",
                title="product of step Jacobians")
    axes[1].set(xlabel="lag T - k (steps)", ylabel="||dL/ds_k||",
                title=f"gradient reaching step k (loss: {profiles[0].loss})")
    axes[0].legend(fontsize="small")

