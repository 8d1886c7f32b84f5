"""The report's "Seeds" section: how much of each surrogate's error is its seed's luck.

A surrogate trained as a seed group (``odernn train --seeds K``) is evaluated as the mean
of its members' trajectories, and each member on its own
(:attr:`~odernn.assess.results.MethodResult.seeds`): this section shows, per surrogate,
the members' median, best and worst NRMSE of x beside the mean's, so a reader sees the
spread a single run would have hidden. A surrogate given as one run is named as such.
"""

from __future__ import annotations

from odernn.assess.document import Section, Table
from odernn.assess.results import Evaluation

WHY = ("A surrogate trained once is partly the luck of its seed (the reservoir's draw, the "
       "initial weights, the batch order).")
HOW = ("`odernn train --seeds K` trains K members that differ only in their seed; evaluated "
       "together, each member is scored, and the mean of their trajectories is the method's "
       "own entry everywhere else in this report.")


def seeds_section(ev: Evaluation) -> Section | None:
    """The section, or None when the evaluation has no surrogate."""
    surrogates = ev.method_names("surrogate")
    if not surrogates:
        return None
    grouped = [n for n in surrogates if ev.methods[n].seeds is not None]
    single = [n for n in surrogates if ev.methods[n].seeds is None]
    if not grouped:
        return Section("Seeds", f"{WHY} Every surrogate here is one run ({', '.join(single)}), "
                       f"so that spread is not measured. {HOW}")
    stats = all("x2_mean_rel_error" in ev.methods[n].metrics for n in grouped)
    rows = []
    for name in grouped:
        m = ev.methods[name]
        seeds = m.seeds
        median = seeds["median"]["nrmse_x"]
        diverged = sum(1 for row in seeds["members"].values() if row.get("n_diverged", 0) > 0)
        rows.append([name, seeds["n"], m.metrics["nrmse_x"], median, seeds["min"]["nrmse_x"],
                     seeds["max"]["nrmse_x"],
                     m.metrics["nrmse_x"] / median if median > 0 else float("nan"), diverged,
                     *([m.metrics["x2_mean_rel_error"], seeds["median"]["x2_mean_rel_error"]]
                       if stats else [])])
    table = Table(["method", "seeds", "NRMSE x, mean of the seeds", "NRMSE x, median seed",
                   "best seed", "worst seed", "mean / median seed", "seeds with a divergence",
                   *(["mean x^2 rel. error, mean of the seeds", "median seed"] if stats else [])],
                  rows, "NRMSE x of each seed (pooled over the test set) and of the mean of "
                  "their trajectories; below 1 in the ratio, the mean beats its median member. "
                  + ("The steady-state statistics of the mean of trajectories that have lost "
                     "their phase are not any seed's: averaging shrinks the amplitude; judge "
                     "them by the seeds. " if stats else "")
                  + "Every seed's metrics are in metrics.json (`methods.NAME.seeds`).")
    text = f"{WHY} {HOW}"
    if single:
        text += f" Given as one run, spread not measured: {', '.join(single)}."
    return Section("Seeds", text, [table])
