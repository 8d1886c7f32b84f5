"""The notes' question: which of the four ways learns a long-range dependency best?

    python benchmarks/long_range.py [--budget 400] [--seeds 3] [--quick]

The task (odernn.notes.four_ways): a weakly damped oscillator (eta 0.1, dt 0.1)
starts at rest, driven by a random forcing; the network reads the forcing only
and outputs the displacement, which depends on hundreds of past inputs. First
the fixed-window linear model (least squares on the last w inputs): its test
NMSE shows how much memory the task needs, beside the old task's residual (the
next velocity from x, F, F_next, eta, linear in a window of three steps). Then
a vanilla RNN with (a) Adam, (b) echo-state initialisation and Nesterov momentum
with Sutskever's schedule, (c) Hessian-free with structural damping, then an
LSTM with Adam and an echo state network, each with the same budget of gradient
evaluations (a Hessian-free step costs one per CG iteration, plus one). Prints
the medians over seeds of the test NMSE (1: no better than the mean) and of the
gradient evaluations until the test NMSE first beat the 50-step linear window.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402

import torch  # noqa: E402

from odernn.notes.four_ways import (  # noqa: E402
    DT,
    ETA,
    METHODS,
    compare,
    linear_window_errors,
    long_range_data,
    old_task_residual,
)

WINDOWS = (5, 20, 50, 100, 200)
REFERENCE_WINDOW = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=400,
                        help="gradient evaluations per method (default 400)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per method (default 3)")
    parser.add_argument("--quick", action="store_true", help="tiny data, budget 20, one seed")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes = {"n_train": 16, "n_test": 8, "n_steps": 120} if args.quick else {}
    budget, seeds = (20, 1) if args.quick else (args.budget, args.seeds)
    train, test = long_range_data(**sizes)
    steps = train.u.shape[1]
    print(f"long-range study: {train.n} train / {test.n} test sequences x {steps} steps, "
          f"eta {ETA:g}, dt {DT:g}, forcing in, displacement out; budget {budget} gradient "
          f"evaluations, seeds 0..{seeds - 1}")
    print(f"\nold task (next velocity from x, F, F_next, eta): least squares on a 3-step window, "
          f"worst relative residual {old_task_residual():.2g}")
    linear = linear_window_errors(train, test, tuple(w for w in (*WINDOWS, steps) if w <= steps))
    print("new task, least squares on the last w inputs: test NMSE")
    for w, err in linear.items():
        print(f"  w = {w:>4}: {err:.3g}")
    target = linear.get(REFERENCE_WINDOW, min(linear.values()))
    rows = compare(train, test, budget, seeds=tuple(range(seeds)), say=lambda s: None)
    print(f"\nmedians over {seeds} seed(s) [min, max]; 'to beat w={REFERENCE_WINDOW}': gradient "
          f"evaluations until the test NMSE was first <= {target:.3g} (checked 10 times)")
    print(f"{'method':<44} {'steps':>6} {'grad evals':>10} {'test NMSE':>24} "
          f"{'to beat w=' + str(REFERENCE_WINDOW):>14}")
    for name in METHODS:
        runs = [r for r in rows if r["method"] == name]
        errs = [r["test_nmse"] for r in runs]
        reach = [next((h["cost"] for h in r["history"] if h["test_nmse"] <= target), None)
                 for r in runs]
        missed = sum(x is None for x in reach)
        reach_s = (f"never ({missed}/{len(runs)})" if missed
                   else f"{statistics.median(reach):g}")
        spread = f"{statistics.median(errs):.3g} [{min(errs):.3g}, {max(errs):.3g}]"
        print(f"{name:<44} {statistics.median(r['steps'] for r in runs):>6g} "
              f"{statistics.median(r['cost'] for r in runs):>10g} {spread:>24} {reach_s:>14}")

if __name__ == "__main__":
    main()
