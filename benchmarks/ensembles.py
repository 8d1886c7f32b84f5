"""Is a seed group's own entry better than its median member? The joint closed loop against
the mean of the members' trajectories, on the metrics the evaluator reports per seed.

    python benchmarks/ensembles.py                      # every case, 5 seeds (about 10 min)
    python benchmarks/ensembles.py --cases chaos drives --seeds 3
    python benchmarks/ensembles.py --quick              # small sets, 3 seeds (a smoke run)

Each case trains ``--seeds`` members with ``odernn.fit_seeds`` and scores them with
``odernn.evaluate`` (no integrators, the chaos stage on): every member, the ensemble
(:class:`~odernn.learn.models.ensemble.Ensemble`: the members' joint closed loop, the median
of their one-step predictions fed back to every member) and, beside it, the mean of the
members' own closed-loop trajectories (what the ensemble was before). Cases:

- ``oscillator``: the ESN (defaults) on ``train``, scored on ``test`` (the linear
  oscillator, eta given);
- ``oscillator-gru``: the GRU (20 epochs, the previous defaults otherwise:
  ``previous_defaults.py``) on 64 trajectories of ``train``;
- ``chaos``: the ESN on ``duffing-chaos-train``, scored on ``duffing-chaos`` (about 7
  Lyapunov times);
- ``drives``: the ESN on the few-drives task (``duffing-drives-train``, scored on
  ``duffing-drives-test``; ``benchmarks/generalisation.py``), with that benchmark's
  scores too: the MSE over the test drives of the steady-state max and mean of x^2.

Printed per case and metric: the members' median, best and worst, the mean of their
trajectories, the group's own entry, and whether that entry is at most the median member
(valid time: at least). The group's entry is its joint loop's, but for the steady-state
statistics (max and mean x^2, and the drives' MSE of them): there the median of its members'
estimates, which the evaluator reports (``odernn.assess.statistics.members_median_statistics``).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from generalisation import drive_statistics, scores  # noqa: E402
from previous_defaults import previous  # noqa: E402

import odernn  # noqa: E402
from odernn.assess.results import SEED_METRICS  # noqa: E402
from odernn.data.simulate import simulate_trajectories  # noqa: E402
from odernn.data.spec import load_spec  # noqa: E402
from odernn.learn.models.base import Rollout  # noqa: E402
from odernn.learn.models.ensemble import Ensemble  # noqa: E402

CASES: dict[str, tuple[str, str, str, dict[str, Any], int | None]] = {
    "oscillator": ("train", "test", "esn", {}, None),
    "oscillator-gru": ("train", "test", "gru", {"epochs": 20}, 64),
    "chaos": ("duffing-chaos-train", "duffing-chaos", "esn", {}, None),
    "drives": ("duffing-drives-train", "duffing-drives-test", "esn", {}, None),
}
"""name -> (training spec, test spec, family, training options, training trajectories)."""
HIGHER_IS_BETTER = ("valid_lyapunov_median",)


class TrajectoryMean(Ensemble):
    """The mean of the members' own closed-loop trajectories: what the ensemble was."""

    def rollout(self, *args: Any, members: bool = True, joint: Rollout | None = None,
                **kwargs: Any) -> Rollout:
        """The members' mean trajectory (``members`` and ``joint``, which the evaluator passes
        to time a seed group alone and then add its members, change nothing here)."""
        runs = [m.rollout(*args, **kwargs) for m in self.members.values()]
        at = np.stack([r.diverged_at for r in runs])
        first = np.where(at >= 0, at, np.iinfo(at.dtype).max).min(axis=0)
        return Rollout(np.mean([r.x for r in runs], axis=0), np.mean([r.v for r in runs], axis=0),
                       np.where((at >= 0).any(axis=0), first, -1), runs[0].warmup)


def run_case(name: str, seeds: int, quick: bool) -> list[list[Any]]:
    train_spec, test_spec, family, options, n_train = CASES[name]
    train_spec, test_spec = load_spec(train_spec), load_spec(test_spec)
    if quick:
        train_spec, test_spec = (train_spec.with_overrides(n=32, n_steps=600),
                                 test_spec.with_overrides(n=16, n_steps=600))
        options = {**options, "epochs": 3} if family != "esn" else {**options, "units": 300}
    elif n_train is not None:
        train_spec = train_spec.with_overrides(n=n_train)
    train, test = simulate_trajectories(train_spec), simulate_trajectories(test_spec)
    ensemble, _ = odernn.fit_seeds(train, model=family, seeds=seeds, **previous(family, options))
    ev = odernn.evaluate(test, {"joint": ensemble, "mean": TrajectoryMean(ensemble.members)},
                         integrators=(), work_precision=False, resonance=False,
                         bifurcation=False, progress=False)
    seed = ev.methods["joint"].seeds
    rows = []
    for key in (k for k in SEED_METRICS if k in seed["median"]):
        rows.append([name, key, seed["median"][key], seed["min"][key], seed["max"][key],
                     ev.methods["mean"].metrics[key], ev.methods["joint"].metrics[key]])
    if name == "drives":
        F0 = test.params["F0"]
        ref = drive_statistics(test.x, F0)
        runs = _member_runs(ensemble, test)
        members = [scores(r.x, test, ref) for r in runs]
        # the group's estimate of each drive's statistics: the median of its members'
        group = (np.median([drive_statistics(r.x, F0) for r in runs], axis=0) - ref) ** 2
        for i, key in enumerate(("mse_max_x2", "mse_mean_x2")):
            values = [m[key] for m in members]
            rows.append([name, key, float(np.median(values)), min(values), max(values),
                         scores(ev.methods["mean"].x, test, ref)[key],
                         float(group[:, i].mean())])
    return rows


def _member_runs(ensemble: Ensemble, test: Any) -> list[Rollout]:
    params = {p: test.params[p] for p in ensemble.parameter_inputs}
    return [m.rollout(test.x[:, 0], test.v[:, 0], test.F, params)
            for m in ensemble.members.values()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--seeds", type=int, default=5, help="members per group (default 5)")
    parser.add_argument("--quick", action="store_true", help="small sets, 3 seeds")
    args = parser.parse_args()
    seeds = 3 if args.quick else args.seeds
    print(f"| case | metric | median of {seeds} seeds (best, worst) | mean of their "
          "trajectories | group (joint loop; statistics: median estimate) | group no worse than "
          "the median seed |")
    print("|---|---|---:|---:|---:|---|")
    for name in args.cases:
        start = time.perf_counter()
        for case, key, median, low, high, mean, joint in run_case(name, seeds, args.quick):
            if np.isnan(median):
                continue  # not measured here (a valid time on a set with no chaos)
            if key in HIGHER_IS_BETTER:
                low, high = high, low
            ok = joint >= median if key in HIGHER_IS_BETTER else joint <= median
            print(f"| {case} | {key} | {median:.3g} ({low:.3g}, {high:.3g}) | {mean:.3g} | "
                  f"{joint:.3g} | {'yes' if ok else 'NO'} |", flush=True)
        print(f"<!-- {name}: {time.perf_counter() - start:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
