"""How a surrogate's validation choice is made, against what it does on test data: the holdout (a
tenth of the training trajectories) against cross-validation by trajectory (``val_folds``). The
reservoir chooses its ridge strength; a gradient family (``--model gru``, ``lstm``, ``rnn``,
``ffn``) the epoch whose weights it keeps, and with folds trains K + 1 times.

    python benchmarks/selection.py                 # 5 seeds (about 5 minutes, one thread)
    python benchmarks/selection.py --seeds 2 --cases linear-6
    python benchmarks/selection.py --model gru --cases linear-6 drives-8

Cases (each model with its defaults, ``odernn.fit(train, model=MODEL, seed=s, ...)``; a
gradient family with the model choices before a linear system got its own,
``previous_defaults.BEFORE_LINEAR_MAP``, which the quoted figures were measured with):

- ``drives-64``: the few-drives task of ``benchmarks/generalisation.py`` (``duffing-drives-train``,
  64 trajectories at two nearby drives; scored on ``duffing-drives-test``'s five drives across
  regimes: the MSE of the steady-state max x^2 and mean x^2 per drive, NRMSE x, diverged
  trajectories);
- ``drives-8``: 8 of those 64 (4 per drive, drawn by the seed), same test;
- ``linear-N`` (N = 4, 6, 10, 16): N trajectories of ``train`` (the linear oscillator, drawn
  by the seed), scored by NRMSE x on ``test``.

Each rule's choice per seed, and the median over seeds of each test score. The holdout keeps
the model fitted without its validation trajectories; the folds keep the model fitted on all
(the reservoir: the same readout for any K at the same ridge; a gradient family: the weights of
the chosen epoch of a training on all).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generalisation import drive_statistics, roll, scores  # noqa: E402
from previous_defaults import BEFORE_LINEAR_MAP  # noqa: E402

import odernn  # noqa: E402
from odernn.assess.metrics import nrmse  # noqa: E402
from odernn.data.simulate import simulate_trajectories  # noqa: E402
from odernn.data.spec import load_spec  # noqa: E402
from odernn.data.trajectories import Trajectories  # noqa: E402

CASES = {"drives-64": {"holdout": 0, "8-fold": 8, "leave one out": 64},
         "drives-8": {"holdout": 0, "4-fold": 4, "leave one out": 8},
         **{f"linear-{n}": {"holdout": 0, "leave one out": n} for n in (4, 6, 10, 16)}}
"""Case -> rule name -> ``val_folds`` (0: the holdout). The default, ``val_folds`` None, is
leave one out on 2 to 10 training trajectories (``odernn.learn.training.AUTO_FOLDS``), else
the holdout."""


def subset(data: Trajectories, n: int, seed: int, by: str | None = None) -> Trajectories:
    """``n`` trajectories of ``data`` drawn by ``seed``; with ``by`` as many of each value of
    that parameter."""
    rng = np.random.default_rng(seed)
    if by is None:
        return data.take(np.sort(rng.choice(data.n, n, replace=False)))
    values = np.unique(data.params[by])
    picks = [rng.choice(np.flatnonzero(data.params[by] == v), n // len(values), replace=False)
             for v in values]
    return data.take(np.sort(np.concatenate(picks)))


def training_set(case: str, seed: int, sets: dict[str, Trajectories]) -> Trajectories:
    if case == "drives-64":
        return sets["drives-train"]
    if case == "drives-8":
        return subset(sets["drives-train"], 8, seed, by="F0")
    return subset(sets["train"], int(case.split("-")[1]), seed)


def run_case(case: str, seeds: int, sets: dict[str, Trajectories], family: str = "esn"
             ) -> list[str]:
    """The case's table: per rule, what was chosen (the reservoir's ridge, a gradient family's
    epoch, from 1) and the median test scores."""
    test = sets["drives-test" if case.startswith("drives") else "test"]
    ref = drive_statistics(test.x, test.params["F0"]) if case.startswith("drives") else None
    rows: dict[str, list[dict[str, Any]]] = {rule: [] for rule in CASES[case]}
    for seed in range(seeds):
        train = training_set(case, seed, sets)
        for rule, folds in CASES[case].items():
            start = time.perf_counter()
            model, result = odernn.fit(train, model=family, seed=seed, val_folds=folds,
                                       **({} if family == "esn" else BEFORE_LINEAR_MAP))
            x = roll(rule, model, test).x
            score = (scores(x, test, ref) if ref is not None else
                     {"nrmse_x": nrmse(x, test.x), "diverged": int((~np.isfinite(x)).any(1).sum())})
            chosen = (result.best_record["metrics"]["ridge"] if family == "esn" else
                      result.best_epoch + 1)
            rows[rule].append({**score, "chosen": chosen, "val": result.best_val_nrmse,
                               "time": time.perf_counter() - start})
            print(f"{case} {family} seed {seed} {rule}: chosen {chosen:g}, "
                  + ", ".join(f"{k} {v:.3g}" for k, v in rows[rule][-1].items() if k != "chosen"),
                  flush=True)
    keys = [k for k in ("mse_max_x2", "mse_mean_x2", "nrmse_x") if k in rows["holdout"][0]]
    what = "ridge" if family == "esn" else "epoch"
    lines = [f"\n### {family}, {case} ({train.n} training trajectories, {test.n} test "
             f"trajectories, {seeds} seeds)\n", f"| rule | {what} per seed | " + " | ".join(
                 f"median {k}" for k in keys) + " | seeds with a diverged trajectory | "
             "median fit time (s) |", "|---|---|" + "---:|" * (len(keys) + 2)]
    for rule, runs in rows.items():
        chosen = ", ".join(f"{r['chosen']:g}" for r in runs)
        lines.append(f"| {rule} | {chosen} | " + " | ".join(
            f"{np.median([r[k] for r in runs]):.3g}" for k in keys)
            + f" | {sum(r['diverged'] > 0 for r in runs)} of {len(runs)} | "
            f"{np.median([r['time'] for r in runs]):.0f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds (default 5)")
    parser.add_argument("--model", default="esn", choices=("esn", "gru", "lstm", "rnn", "ffn"))
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    args = parser.parse_args()
    begin = time.perf_counter()
    names = {"drives-train": "duffing-drives-train", "drives-test": "duffing-drives-test",
             "train": "train", "test": "test"}
    sets = {k: simulate_trajectories(load_spec(v)) for k, v in names.items()}
    lines = []
    for case in args.cases:
        lines += run_case(case, args.seeds, sets, args.model)
    print("\n".join(lines))
    print(f"\n({time.perf_counter() - begin:.0f} s; fit times on a shared machine are rough)")


if __name__ == "__main__":
    main()
