"""Multiplicative conditioning, measured: each gradient family with its defaults on the linear
oscillator (eta given; the training defaults of before ``training_speed.py``,
``previous_defaults.py``), its linear skip over the inputs alone against the skip that also takes
each parameter times each other input (``products``).

    python benchmarks/conditioning.py                       # rnn, gru, lstm, ffn (long)
    python benchmarks/conditioning.py --families gru --epochs 20 --seeds 0 1

The one-step map of ``x'' + eta x' + x = F`` at a fixed step is ``z_{i+1} = Phi(eta) z_i +
Gamma(eta) (F_i, F_{i+1})``, nearly bilinear in eta and the inputs: a sum of the inputs
(``D u``) holds it for one eta only, the products hold it for all. Trained on ``train``,
scored in closed loop on ``test`` and ``test-ood`` (NRMSE of x over the whole horizon,
against the exact solution), per seed and the median over seeds; the time of each fit.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from previous_defaults import previous  # noqa: E402

import odernn  # noqa: E402
from odernn.assess.metrics import nrmse  # noqa: E402
from odernn.data.simulate import simulate_trajectories  # noqa: E402
from odernn.data.spec import load_spec  # noqa: E402

FAMILIES = ("rnn", "gru", "lstm", "ffn")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="override the families' default epochs")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--only", choices=("inputs", "products"),
                        help="one variant only (default: both)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train = simulate_trajectories(load_spec("train").with_overrides(integrator="exact"))
    tests = {name: simulate_trajectories(load_spec(name).with_overrides(integrator="exact"))
             for name in ("test", "test-ood")}
    extra = {} if args.epochs is None else {"epochs": args.epochs}
    print("| family | skip | seed | NRMSE x, test | NRMSE x, test-ood | fit [s] |")
    print("|---|---|---:|---:|---:|---:|")
    summary = []
    for family in args.families:
        for products in [p for p in (False, True)
                         if args.only is None or p == (args.only == "products")]:
            errors = []
            for seed in args.seeds:
                begin = time.perf_counter()
                model, _ = odernn.fit(train, model=family, **previous(
                    family, {"products": products, "seed": seed, **extra}))
                fit_s = time.perf_counter() - begin
                row = {}
                for name, test in tests.items():
                    r = model.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params)
                    row[name] = nrmse(r.x, test.x)
                errors.append(row)
                skip = "inputs x parameters" if products else "inputs"
                print(f"| {family} | {skip} | {seed} | {row['test']:.3g} | {row['test-ood']:.3g} "
                      f"| {fit_s:.0f} |", flush=True)
            summary.append((family, products, {k: float(np.median([e[k] for e in errors]))
                                               for k in tests}))
    print("\n| family | skip | NRMSE x, test (median of seeds) | test-ood |")
    print("|---|---|---:|---:|")
    for family, products, med in summary:
        skip = "inputs x parameters" if products else "inputs"
        print(f"| {family} | {skip} | {med['test']:.3g} | {med['test-ood']:.3g} |")


if __name__ == "__main__":
    main()
