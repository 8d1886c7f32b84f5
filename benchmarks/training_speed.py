"""Training speed of the gradient families: today's defaults against the previous ones, same seeds.

Each family (RNN, LSTM, GRU) is trained on ``train`` (exact solutions, eta given) with its
current defaults and with the defaults it had before (teacher-forced windows of 50 steps in
batches of 256; RNN 200, LSTM 60, GRU 100 epochs), seed by seed, the two runs of a seed
one after the other; both are scored in closed loop on ``test`` and ``test-ood`` (NRMSE of
x over the whole horizon, against the exact solution). Printed: every run's fit time and
errors, then per family the median fit time of each, their ratio, and the median errors.

An epoch is one pass over the training steps whatever the window (``n (T - 1) / window``
windows), so halving the window doubles the optimiser steps of an epoch at the same
arithmetic, and a smaller batch doubles them again: the new defaults take windows of 25
steps (the vanilla RNN 20), batches of 128 for the gated families, and fewer epochs. Both
train with the model choices before a linear system got its own
(``previous_defaults.BEFORE_LINEAR_MAP``; ``linear_map.py`` measures those): this benchmark
measures the training options.

    python benchmarks/training_speed.py                    # 3 families x 3 seeds (~25 min)
    python benchmarks/training_speed.py --families lstm --seeds 0
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from previous_defaults import BEFORE_LINEAR_MAP, PREVIOUS  # noqa: E402

import odernn  # noqa: E402
from odernn.assess.metrics import nrmse  # noqa: E402
from odernn.data.simulate import simulate_trajectories  # noqa: E402
from odernn.data.spec import load_spec  # noqa: E402
from odernn.learn.config import TrainConfig  # noqa: E402

FAMILIES = ("rnn", "lstm", "gru")


def run(train, tests, family: str, options: dict, seed: int) -> dict[str, float]:
    """Fit one surrogate; its fit time and closed-loop NRMSE of x on each test set."""
    begin = time.perf_counter()
    model, _ = odernn.fit(train, model=family, seed=seed, **options)
    row = {"fit_s": time.perf_counter() - begin}
    for name, test in tests.items():
        r = model.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params)
        row[name] = nrmse(r.x, test.x)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train = simulate_trajectories(load_spec("train").with_overrides(integrator="exact"))
    tests = {name: simulate_trajectories(load_spec(name).with_overrides(integrator="exact"))
             for name in ("test", "test-ood")}
    print(f"torch threads {args.threads}; seeds {args.seeds}")
    print("| family | defaults | window | batch | epochs | seed | fit [s] | NRMSE x, test "
          "| test-ood |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    summary = []
    for family in args.families:
        now = TrainConfig(model=family)
        variants = {"before": {**PREVIOUS[family], **BEFORE_LINEAR_MAP},
                    "now": dict(BEFORE_LINEAR_MAP)}
        shown = {"before": PREVIOUS[family], "now": {"window": now.window, "epochs": now.epochs,
                                                   "batch_size": now.batch_size}}
        rows: dict[str, list[dict[str, float]]] = {k: [] for k in variants}
        for seed in args.seeds:
            for key, options in variants.items():
                row = run(train, tests, family, options, seed)
                rows[key].append(row)
                print(f"| {family} | {key} | {shown[key]['window']} | {shown[key]['batch_size']} | "
                      f"{shown[key]['epochs']} | "
                      f"{seed} | {row['fit_s']:.1f} | {row['test']:.3g} | "
                      f"{row['test-ood']:.3g} |", flush=True)
        med = {k: {m: float(np.median([r[m] for r in v])) for m in ("fit_s", "test", "test-ood")}
               for k, v in rows.items()}
        summary.append((family, med))
    print("\n| family | fit [s] before | now | speed-up | NRMSE x test, before | now "
          "| test-ood, before | now |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for family, med in summary:
        b, n = med["before"], med["now"]
        print(f"| {family} | {b['fit_s']:.1f} | {n['fit_s']:.1f} | {b['fit_s'] / n['fit_s']:.2f}x"
              f" | {b['test']:.3g} | {n['test']:.3g} | {b['test-ood']:.3g} | "
              f"{n['test-ood']:.3g} |")
    print("(medians over the seeds; speed-up: the median fit time before over now)")


if __name__ == "__main__":
    main()
