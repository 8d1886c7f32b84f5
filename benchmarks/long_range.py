"""The notes' question: which of the four ways learns a long-range dependency best?

    python benchmarks/long_range.py [--budget 60] [--quick]

Trains a vanilla RNN with (a) Adam and default initialisation, (b) echo-state
initialisation and Nesterov momentum with Sutskever's schedule, (c) Hessian-free
with structural damping, then an LSTM and an echo state network, each for the
same wall-clock budget, on weakly damped oscillators in velocity mode from x and
F only (odernn.four_ways). Prints epochs, training time, final validation loss
and closed-loop NRMSE of x on held-out trajectories.
"""

from __future__ import annotations

import argparse

import torch

from odernn.four_ways import compare, long_range_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per method")
    parser.add_argument("--quick", action="store_true", help="tiny data, 3 s per method")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes = {"n_train": 8, "n_test": 4, "n_steps": 260} if args.quick else {}
    budget = 3.0 if args.quick else args.budget
    train, test = long_range_data(**sizes)
    print(f"long-range study: {train.n} train / {test.n} test trajectories x {train.n_steps} "
          f"points, eta in [0.01, 0.05], velocity targets from x and F; {budget:g} s each")
    rows = compare(train, test, budget, say=lambda s: None)
    print(f"{'method':<44} {'epochs':>6} {'train s':>8} {'val loss':>10} {'test NRMSE x':>13}")
    for r in rows:
        print(f"{r['method']:<44} {r['epochs']:>6} {r['train_s']:>8.1f} {r['val_loss']:>10.3g} "
              f"{r['test_nrmse_x']:>13.3g}")


if __name__ == "__main__":
    main()
