"""The report's predictability section: the test set's Lyapunov exponents and the
reference's trust horizon, every method's steady-state statistics, and on chaotic data the
error against time in Lyapunov times (:mod:`odernn.assess.chaos`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from odernn.assess.document import Figure, Section, Table
from odernn.assess.figures import error_plot
from odernn.assess.results import Evaluation

COLUMNS = {
    "valid_lyapunov_median": "valid time [Lyapunov times], median",
    "valid_lyapunov_p10": "valid time [Lyapunov times], p10",
    "valid_lyapunov_censored": "chaotic trajectories valid to the end (times censored)",
    "x2_max_rel_error": "max x² rel. error",
    "x2_mean_rel_error": "mean x² rel. error",
    "w1_x": "W1(x) / std(x)",
    "w1_v": "W1(v) / std(v)",
    "spectrum_error_x": "spectrum error of x",
}
"""The statistics shown, with their column headers (definitions in docs/metrics.md)."""


def chaotic(ev: Evaluation) -> bool:
    """The test set was measured chaotic (most trajectories with a positive exponent)."""
    return bool((ev.chaos or {}).get("chaotic"))


def lyapunov_time(ev: Evaluation) -> float | None:
    """The median Lyapunov time ``1 / lambda`` of a chaotic test set, else None."""
    median = (ev.chaos or {}).get("lyapunov", {}).get("median")
    return 1.0 / median if chaotic(ev) and median and median > 0 else None


def chaos_error_figure(ev: Evaluation, colors: Mapping[str, str]) -> Figure:
    """Error against time in Lyapunov times, the reference's trust horizon marked."""
    unit = lyapunov_time(ev)
    assert unit is not None
    trust = ev.chaos.get("trust_horizon", {})
    marks = []
    if "median" in trust:
        end = float(ev.test.t[-1] - ev.test.t[0])
        if trust["median"] < end:
            marks.append((trust["median"] / unit, "the reference's trust horizon (median)"))
    return Figure("error-vs-lyapunov-time", "Error against time in Lyapunov times 1/lambda "
                  f"(lambda = {1 / unit:.3g}, the test set's median exponent): median over "
                  "trajectories (line) and 90th percentile (band). On chaotic data every "
                  "error grows like exp(lambda t); an error of order 1 means the method no "
                  "longer follows the trajectory, not that it has the wrong attractor (the "
                  "statistics say that).",
                  error_plot(ev, colors, time_unit=unit, xlabel="(t - t0) / Lyapunov time",
                             marks=marks))


def chaos_section(ev: Evaluation) -> Section:
    """What is known of the test set's predictability, and each method's statistics (the
    accuracy section draws the error in Lyapunov times on chaotic data)."""
    info = ev.chaos
    if info is None:
        return Section("Predictability and statistics", "Not measured (chaos=False).")
    parts = [_exponent_text(ev), _trust_text(ev)]
    tables = []
    if info.get("statistics") is True:
        parts.append(f"Statistics of the steady state, from t = {info['steady_state_from']:.3g} "
                     "on: the relative errors of max x² and mean x² (all trajectories pooled: "
                     "the convention of forced-oscillator benchmarks), the Wasserstein-1 "
                     "distances of the distributions of x and v over the test set's std, and "
                     "the distance of the normalised power spectra of x (0 the same, 1 no "
                     "shared power). They say whether a method has the right attractor when it "
                     "no longer follows the trajectory.")
        keys = [k for k in COLUMNS if chaotic(ev) or not k.startswith("valid_lyapunov")]
        rows = [[name, *(m.metrics.get(k) for k in keys)] for name, m in ev.methods.items()
                if m.kind != "reference"]
        groups = [name for name, m in ev.methods.items() if m.seeds is not None]
        caption = "Steady-state statistics against the reference." + (
            f" A seed group's ({', '.join(groups)}) max x² and mean x² errors are the median "
            "of its members' own estimates, each from the member's own closed loop; its other "
            "columns are of its members' joint closed loop." if groups else "")
        tables.append(Table(["method", *(COLUMNS[k] for k in keys)], rows, caption))
    else:
        parts.append(f"No steady-state statistics: {info['statistics']}.")
    return Section("Predictability and statistics", " ".join(parts), tables)


def _unconverged(lyap: dict) -> str:
    """Of the trajectories counted chaotic, those whose estimate did not converge (a long
    transient, a window): said, so that the count is read with them in mind."""
    k = lyap["n_chaotic_unconverged"]
    return f", {k} of the {lyap['n_chaotic']} chaotic ones not" if k else ""


def _exponent_text(ev: Evaluation) -> str:
    lyap = ev.chaos.get("lyapunov", {})
    if "skipped" in lyap:
        return f"Lyapunov exponents not estimated: {lyap['skipped']}."
    n = ev.test.n
    text = (f"Largest Lyapunov exponent of each test trajectory ({lyap['method']} method, "
            f"renormalised every {lyap['renormalisation_interval']:.3g} time units): median "
            f"{lyap['median']:.3g}, 10th-90th percentile {lyap['p10']:.3g} to "
            f"{lyap['p90']:.3g}; {lyap['n_chaotic']} of {n} trajectories chaotic (exponent "
            f"above 0.01), {lyap['n_converged']} of {n} estimates converged (their two halves "
            f"agree){_unconverged(lyap)}.")
    unit = lyapunov_time(ev)
    if unit is None:
        return text + (" The test set is not chaotic: pointwise errors are meaningful over "
                       "the whole horizon.")
    horizon = float(ev.test.t[-1] - ev.test.t[0])
    return text + (f" The test set is chaotic: a Lyapunov time is {unit:.3g} time units, the "
                   f"horizon {horizon / unit:.3g} of them; the valid prediction time is also "
                   "given in Lyapunov times, and the accuracy section plots the error against "
                   "them.")


def _trust_text(ev: Evaluation) -> str:
    trust = ev.chaos.get("trust_horizon", {})
    if "skipped" in trust:
        return f"Trust horizon of the reference not measured: {trust['skipped']}."
    horizon = np.asarray(trust["time"])
    return (f"The reference's trust horizon (where solutions at rtol 1e-12 and 1e-10 part by "
            f"the valid-time threshold): median {trust['median']:.3g}, shortest "
            f"{trust['min']:.3g}; {trust['n_censored']} of {horizon.size} never part within "
            "the test horizon. Errors after it are not a surrogate's to answer for.")
