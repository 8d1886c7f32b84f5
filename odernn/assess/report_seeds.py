"""The report's "Seeds" section: how much of each surrogate's error is its seed's luck.

A surrogate trained as a seed group (``odernn train --seeds K``) is evaluated as its
members' joint closed loop (:mod:`odernn.learn.models.ensemble`), and each member on its
own (:attr:`~odernn.assess.results.MethodResult.seeds`): this section shows, per surrogate,
the members' median, best and worst NRMSE of x beside the ensemble's, and on data with
steady-state statistics the relative errors of max and mean x^2 (the ensemble's: the median of
its members' estimates), so a reader sees the spread a single run would have hidden. A
surrogate given as one run is named as such.
"""

from __future__ import annotations

from odernn.assess.document import Section, Table
from odernn.assess.results import Evaluation

WHY = ("A surrogate trained once is partly the luck of its seed (the reservoir's draw, the "
       "initial weights, the batch order).")
STATS = ("x2_max_rel_error", "x2_mean_rel_error")
"""The steady-state statistics shown per seed, where the evaluation measured them."""
HOW = ("`odernn train --seeds K` trains K members that differ only in their seed; evaluated "
       "together, each member is scored, and their joint closed loop (at every step the "
       "median of the members' predictions, carried to all of them) is the method's "
       "own entry everywhere else in this report, but for its steady-state max and mean x^2: "
       "the median of its members' estimates.")


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
    stats = all(k in ev.methods[n].metrics and k in ev.methods[n].seeds["median"]
                for n in grouped for k in STATS)
    rows = []
    for name in grouped:
        m = ev.methods[name]
        seeds = m.seeds
        median = seeds["median"]["nrmse_x"]
        diverged = sum(1 for row in seeds["members"].values() if row.get("n_diverged", 0) > 0)
        rows.append([name, seeds["n"], m.metrics["nrmse_x"], median, seeds["min"]["nrmse_x"],
                     seeds["max"]["nrmse_x"],
                     m.metrics["nrmse_x"] / median if median > 0 else float("nan"), diverged,
                     *([v for k in STATS for v in (m.metrics[k], seeds["median"][k])]
                       if stats else [])])
    table = Table(["method", "seeds", "NRMSE x, ensemble", "NRMSE x, median seed",
                   "best seed", "worst seed", "ensemble / median seed", "seeds with a divergence",
                   *([f"{label} x^2 rel. error, {who}" for label in ("max", "mean")
                      for who in ("ensemble", "median seed")] if stats else [])],
                  rows, "NRMSE x of each seed (pooled over the test set) and of the seeds' "
                  "joint closed loop; below 1 in the ratio, the ensemble beats its median "
                  "member. "
                  + ("The ensemble's max and mean x^2 are the median of its seeds' "
                     "estimates (each seed's own closed loop), so never farther off than the "
                     "median seed's; its joint loop's own would not be (seeds that err alike do "
                     "not cancel). " if stats else "")
                  + "Every seed's metrics are in metrics.json (`methods.NAME.seeds`).")
    text = f"{WHY} {HOW}"
    if single:
        text += f" Given as one run, spread not measured: {', '.join(single)}."
    return Section("Seeds", text, [table])
