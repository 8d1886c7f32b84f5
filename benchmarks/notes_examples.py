"""The notes' two examples: each improved preset against the notes' script run as written.

    python benchmarks/notes_examples.py [--quick] [--seeds N] [--plot PATH]

For each preset (``sine``: the PyTorch example; ``noisy-sine``: the Keras
example) and variant (:data:`odernn.notes_examples.VARIANTS`), over seeds
0..N-1 (default 3): training wall time (validation passes excluded), the time
to the faithful run's final validation loss (same seed), the final validation
loss, the recursive-forecast MSE over the 200 held-out points (``noisy-sine``:
against the conditional mean, beside the one-step MSE against it) and the
forecast's wall time. The summary gives medians over seeds and the ratios
``speed-up`` (faithful training time / time to its final validation loss) and
``forecast gain`` (faithful forecast MSE / this one's), computed on the
medians. One thread; a warm-up run first pays the one-time imports (the first
torch optimiser imports ``torch._dynamo``, seconds). ``--quick``: one seed, 3
epochs, a smoke run.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from odernn.notes_examples import VARIANTS, PresetResult, plot_preset, run_preset  # noqa: E402
from odernn.report import fmt  # noqa: E402

TARGET_SPEEDUP, TARGET_FORECAST_GAIN = 10.0, 100.0
"""The issue's targets for the improved sine preset."""


def measure(seeds: int, quick: bool) -> list[PresetResult]:
    """Every preset and variant for seeds ``0..seeds-1``, one run each."""
    for name, variants in VARIANTS.items():  # warm-up, not measured
        for variant in variants:
            run_preset(name, variant, epochs=None if variant == "improved" and name == "sine"
                       else 1)
    results = []
    for seed in range(seeds):
        for name, variants in VARIANTS.items():
            for variant in variants:
                results.append(run_preset(name, variant, seed=seed, quick=quick))
                r = results[-1]
                print(f"  {name:10s} {variant:14s} seed {seed}: trained {r.train_time_s:7.2f} s, "
                      f"val loss {fmt(r.val_loss)}, forecast MSE {fmt(r.forecast_mse)}",
                      flush=True)
    return results


def summary(results: list[PresetResult]) -> list[list[str]]:
    """Per preset and variant, medians over seeds and the ratios against ``faithful``."""
    rows = []
    for name, variants in VARIANTS.items():
        faithful = [r for r in results if r.name == name and r.variant == "faithful"]
        ref_val = {r.seed: r.val_loss for r in faithful}
        ref_time = statistics.median(r.train_time_s for r in faithful)
        ref_forecast = statistics.median(r.forecast_mse for r in faithful)
        for variant in variants:
            runs = [r for r in results if r.name == name and r.variant == variant]
            reached = [r.time_to(ref_val[r.seed]) for r in runs]
            time_to = statistics.median(t for t in reached if t is not None) if all(
                t is not None for t in reached) else None
            forecast = [r.forecast_mse for r in runs]
            mean_err = [r.one_step_mse_vs_mean for r in runs if r.one_step_mse_vs_mean is not None]
            rows.append([
                name, variant, str(len(runs)),
                fmt(statistics.median(r.train_time_s for r in runs)),
                fmt(time_to) if time_to is not None else "never",
                fmt(statistics.median(r.val_loss for r in runs)),
                fmt(statistics.median(mean_err)) if mean_err else "–",
                f"{fmt(statistics.median(forecast))} [{fmt(min(forecast))}, {fmt(max(forecast))}]",
                fmt(statistics.median(r.forecast_time_s for r in runs)),
                fmt(ref_time / time_to) if time_to and variant != "faithful" else "–",
                fmt(ref_forecast / statistics.median(forecast)),
            ])
    return rows


def print_table(columns: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, 3 epochs (smoke run)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per variant (default 3)")
    parser.add_argument("--plot", type=Path, help="save the seed-0 figure to this PNG")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = 1 if args.quick else args.seeds
    load = os.getloadavg()[0]
    print(f"notes' examples, {seeds} seed(s){', quick' if args.quick else ''}, one thread, "
          f"load average {load:.1f} on {os.cpu_count()} cores")
    results = measure(seeds, args.quick)
    print(f"\nmedians over {seeds} seed(s) (load average now {os.getloadavg()[0]:.1f}); "
          "forecast MSE [min, max]; ratios against faithful:")
    print_table(["preset", "variant", "runs", "train [s]", "to faithful val [s]", "val loss",
                 "1-step vs mean", "forecast MSE", "forecast [s]", "speed-up",
                 "forecast gain"], summary(results))
    improved = [r for r in summary(results) if r[:2] == ["sine", "improved"]][0]
    speedup, gain = improved[9], improved[10]
    print(f"\nimproved sine targets: speed-up >= {TARGET_SPEEDUP:g}x (got {speedup}), "
          f"forecast gain >= {TARGET_FORECAST_GAIN:g}x over the faithful median (got {gain})")
    if args.plot:
        plot_preset([r for r in results if r.seed == 0], args.plot)
        print(f"figure: {args.plot}")


if __name__ == "__main__":
    main()
