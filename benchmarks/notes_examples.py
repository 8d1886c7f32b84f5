"""The notes' two examples: each improved preset against the notes' script run as written.

    python benchmarks/notes_examples.py [--quick] [--seeds N] [--plot PATH]

For each preset (``sine``: the PyTorch example; ``noisy-sine``: the Keras
example) and variant (:data:`odernn.notes.notes_examples.VARIANTS`), over seeds
0..N-1 (default 3): the work until the validation loss first reached the speed
threshold (epochs, optimiser steps and recurrent-cell steps, counts that do not
depend on the machine's load; ``noisy-sine``: the noise variance 1/3 plus a
margin, ``sine``: the faithful run's final loss, same seed), the final
validation loss, the one-step MSE against the conditional mean and the
recursive-forecast MSE over the 200 held-out points (``noisy-sine``: against
the conditional mean ``sin(0.02 t) + 1``). The summary gives medians over seeds
and the ratio of the faithful run's work to the threshold over this one's,
then the two ``noisy-sine`` baselines: the flat line at the training mean and
the conditional mean (the best possible: its expected MSE is the noise
variance). Training seconds are printed for information only. One thread.
``--quick``: one seed, 3 epochs, a smoke run.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from odernn.assess.document import fmt  # noqa: E402
from odernn.notes.example_data import NOISE_VARIANCE  # noqa: E402
from odernn.notes.notes_examples import (  # noqa: E402
    NOISY_THRESHOLD,
    VARIANTS,
    PresetResult,
    plot_preset,
    preset_table,
    run_preset,
)

TARGET_WORK_RATIO, TARGET_FORECAST_GAIN = 10.0, 100.0
"""The issue's targets for the improved sine preset (speed now counted in work)."""


def measure(seeds: int, quick: bool) -> list[PresetResult]:
    """Every preset and variant for seeds ``0..seeds-1``, one run each."""
    results = []
    for seed in range(seeds):
        for name, variants in VARIANTS.items():
            for variant in variants:
                results.append(run_preset(name, variant, seed=seed, quick=quick))
                r = results[-1]
                print(f"  {name:10s} {variant:14s} seed {seed}: {r.history[-1]['epoch']} epochs, "
                      f"val loss {fmt(r.val_loss)}, forecast MSE {fmt(r.forecast_mse)}",
                      flush=True)
    return results


def _median(values: list) -> str:
    """Median of the values, or ``never (k/n)`` when k of the n runs never got there."""
    missing = sum(v is None for v in values)
    if missing:
        return f"never ({missing}/{len(values)})"
    return fmt(statistics.median(values))


def _ratio(runs: list[dict]) -> str:
    """Median work ratio against the faithful run; why there is none when there is none."""
    if any(r["work_to_threshold"] is None for r in runs):
        return "never reached"
    if any(r["work_ratio"] is None for r in runs):
        return "faithful never reached"
    return fmt(statistics.median(r["work_ratio"] for r in runs))


def summary(results: list[PresetResult]) -> list[list[str]]:
    """Per preset and variant, medians over seeds; then the baselines."""
    table = preset_table(results)
    rows = []
    for name, variants in VARIANTS.items():
        for variant in variants:
            runs = [r for r in table if r["preset"] == name and r["variant"] == variant]
            forecast = [r["forecast_mse"] for r in runs]
            mean_err = [r["one_step_mse_vs_mean"] for r in runs
                        if r["one_step_mse_vs_mean"] is not None]
            rows.append([
                name, variant, str(len(runs)),
                _median([r["epochs_to_threshold"] for r in runs]),
                _median([r["steps_to_threshold"] for r in runs]),
                _median([r["work_to_threshold"] for r in runs]),
                _ratio(runs) if variant != "faithful" else "–",
                fmt(statistics.median(r["val_loss"] for r in runs)),
                fmt(statistics.median(mean_err)) if mean_err else "–",
                f"{fmt(statistics.median(forecast))} [{fmt(min(forecast))}, {fmt(max(forecast))}]",
                fmt(statistics.median(r["forecast_gain"] for r in runs)),
                fmt(statistics.median(r["train_time_s"] for r in runs)),
            ])
    for r in table:
        if r["seed"] is None:
            rows.append([r["preset"], r["variant"], "–", "–", "–", "–", "–", fmt(r["val_loss"]),
                         fmt(r["one_step_mse_vs_mean"]), fmt(r["forecast_mse"]), "–", "–"])
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
    print(f"notes' examples, {seeds} seed(s){', quick' if args.quick else ''}, one thread")
    results = measure(seeds, args.quick)
    print(f"\nmedians over {seeds} seed(s); speed threshold: noisy-sine {NOISY_THRESHOLD:.3g} "
          f"(noise variance {NOISE_VARIANCE:.3g} + margin), sine the faithful run's final val "
          "loss; work in recurrent-cell steps; forecast MSE [min, max]:")
    print_table(["preset", "variant", "runs", "epochs to thr.", "steps to thr.", "work to thr.",
                 "faithful work / this", "val loss", "1-step vs mean", "forecast MSE",
                 "forecast gain", "train [s]"], summary(results))
    print(f"\nwhat the noise allows on noisy-sine: expected MSE against the values >= "
          f"{NOISE_VARIANCE:.4f} (noise 2 U[0,1): variance 4/12) for any forecaster; the "
          "conditional mean sin(0.02 t) + 1 attains it")
    improved = [r for r in summary(results) if r[:2] == ["sine", "improved"]][0]
    print(f"improved sine targets: work ratio >= {TARGET_WORK_RATIO:g}x (got {improved[6]}), "
          f"forecast gain >= {TARGET_FORECAST_GAIN:g}x over the faithful run (got {improved[10]})")
    if args.plot:
        plot_preset([r for r in results if r.seed == 0], args.plot)
        print(f"figure: {args.plot}")


if __name__ == "__main__":
    main()
