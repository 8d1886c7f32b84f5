"""The report's bifurcation-diagram section (:mod:`odernn.assess.bifurcation`): the
stroboscopic samples of the integrator and of each surrogate against the drive amplitude,
side by side, and each surrogate's score."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from odernn.assess.document import Figure, Section, Table, fmt
from odernn.assess.figures import bifurcation_plot
from odernn.assess.results import Evaluation

TITLE = "Bifurcation diagram"


def bifurcation_sections(ev: Evaluation, colors: Mapping[str, str]) -> list[Section]:
    """The section (a line saying why where it was skipped), or none where it was not run."""
    res = ev.bifurcation
    if res is None:
        return []
    if "skipped" in res:
        return [Section(TITLE, f"No bifurcation diagram: {res['skipped']}.")]
    fixed = ", ".join(f"{k} = {fmt(v)}" for k, v in res["parameters"].items())
    lo, hi = res["trained_range"]
    amplitudes = res["amplitudes"]
    starts = ", ".join(f"({fmt(x)}, {fmt(v)})" for x, v in zip(
        res["initial_states"]["x0"], res["initial_states"]["v0"], strict=True))
    solver = res["reference_settings"]
    text = (f"`{res['system']}` driven by F0 cos(omega t + phase), omega = {fmt(res['omega'])} "
            f"and {fixed} (the test set's medians), at {len(amplitudes)} amplitudes F0 from "
            f"{fmt(min(amplitudes))} to {fmt(max(amplitudes))}: the test set's range "
            f"[{fmt(lo)}, {fmt(hi)}] (shaded) and {fmt(100 * res['extension'])}% beyond its "
            f"ends. Every amplitude is driven from the initial states (x0, v0) = {starts} "
            f"(test trajectories'), for {res['transient']} drive periods of transient and then "
            f"{res['periods']} more, sampled once a period (the stroboscopic map); the "
            f"reference is the integrator ({res['reference']} {solver['method']}, rtol "
            f"{solver['rtol']:g}), each surrogate runs in closed loop. A drive has period p "
            f"(up to {res['max_period']}) when its samples of (x, v / omega) repeat every p "
            f"periods to {fmt(res['tolerance'])} of the attractor's size, else it is not "
            "periodic (chaotic or quasi-periodic); an amplitude's class is the set of its "
            "drives' (coexisting attractors). Reference: "
            + "; ".join(f"{label} at {n} amplitude{'s' * (n != 1)}"
                        for label, n in res["integrator"]["counts"].items())
            + "." + "".join(f"\n\n{line}" for line in _findings(res)))
    keys = ("agreement", "agreement_inside", "agreement_beyond", "w1_median",
            "w1_median_inside", "w1_median_beyond", "n_diverged", "wall_time_s")
    table = Table(["method", "class right", "class right, inside", "class right, beyond",
                   "W1 median", "W1 median, inside", "W1 median, beyond", "drives diverged",
                   "wall time [s]"],
                  [[name, *(m[k] for k in keys)] for name, m in res["methods"].items()],
                  "Class right: the fraction of amplitudes whose class (the set of periods, or "
                  "not periodic, of their drives) is the reference's; W1: the Wasserstein-1 "
                  "distance between the surrogate's and the reference's stroboscopic x "
                  "samples of an amplitude (its drives pooled), over the test set's std of x; "
                  "inside and beyond the test set's range of F0.")
    figure = Figure("bifurcation", "Stroboscopic x (once a drive period after the transient) "
                    "against the drive amplitude F0: the integrator and each surrogate, the "
                    "test set's range of F0 shaded; a period-p response shows as p points, "
                    "chaos as a cloud.", bifurcation_plot(ev, colors))
    return [Section(TITLE, text, [table] if res["methods"] else [], [figure])]


def _findings(res: Mapping[str, Any]) -> list[str]:
    """A sentence per surrogate: where its classes differ from the reference's."""
    out = []
    ref = res["integrator"]["labels"]
    for name, m in res["methods"].items():
        wrong = [(a, r, s) for a, r, s, ok in zip(res["amplitudes"], ref, m["labels"],
                                                 m["agrees"], strict=True) if not ok]
        if not wrong:
            out.append(f"- **{name}** has the reference's class at every amplitude.")
            continue
        shown = "; ".join(f"F0 {fmt(a)}: {s} (reference {r})" for a, r, s in wrong[:4])
        more = f"; and {len(wrong) - 4} more" if len(wrong) > 4 else ""
        out.append(f"- **{name}** differs at {len(wrong)} of {len(ref)} amplitudes: "
                   f"{shown}{more}.")
    return out
