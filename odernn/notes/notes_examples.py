"""The lecture notes' two code examples as presets: run a variant, compare the variants.

Two presets, the notes' two series (:mod:`odernn.notes.example_data`):

- ``sine``, the notes' PyTorch example: ``sin(t)`` at 1000 points on
  ``[0, 4 pi]``, 800 for training, 200 held out; an ``nn.RNN`` of 64 tanh
  units and a linear layer predict the next value from 20 previous ones;
- ``noisy-sine``, the notes' Keras example: ``sin(0.02 t) + 2 U[0, 1)`` at
  ``t = 0..999``, split 800/200; ``SimpleRNN(32, relu) -> Dense(8, relu) ->
  Dense(1)`` predicts the next value from 4 previous ones, rebuilt in PyTorch.

Variants (:data:`VARIANTS`):

- ``faithful``: the notes' script as written, but seeded
  (:mod:`odernn.notes.example_faithful`);
- ``faithful-step1`` (Keras only): the same script with windows of shape
  ``(step, 1)``, four time steps of one value, so the recurrent weights act;
- ``improved``: same data, same model, our recipe
  (:mod:`odernn.notes.example_improved`).

Measurements (:class:`PresetResult`): the validation loss after each epoch
against the training work done (epochs, optimiser steps and recurrent-cell
steps: counts that do not depend on how busy the machine is; training seconds
are kept as information), and the recursive forecast of the 200 held-out
points from the training data.

On ``noisy-sine`` no forecaster can score an MSE against the held-out values
below the noise variance 1/3 in expectation, and the conditional mean
``sin(0.02 t) + 1`` attains it. So the validation loss (one-step MSE on the
held-out values) is reported beside the one-step MSE against the conditional
mean, the recursive forecast is scored against the conditional mean, and two
baselines sit in the table (:func:`noisy_sine_baselines`): the flat line at the
training mean and the conditional mean itself. Speed is the work until the
validation loss first reaches :data:`NOISY_THRESHOLD`, the noise variance plus a
margin, so that a run is not credited for a dip into the noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure as MplFigure

from odernn.assess.document import Figure, Section, Table
from odernn.errors import SpecError
from odernn.notes.example_data import NOISE_VARIANCE, TRAIN_POINTS, conditional_mean, notes_series
from odernn.notes.example_faithful import (
    NOTES_EPOCHS,
    STEP,
    train_faithful_keras,
    train_faithful_sine,
)
from odernn.notes.example_improved import (
    IMPROVED_EPOCHS,
    train_improved_keras,
    train_improved_sine,
)
from odernn.progress import Event, Progress, reporter

VARIANTS: dict[str, tuple[str, ...]] = {
    "sine": ("faithful", "improved"),
    "noisy-sine": ("faithful", "faithful-step1", "improved"),
}
"""Preset names and their variants."""
LAYOUTS = {"faithful": "1,step", "faithful-step1": "step,1"}
"""Window layout of the Keras example's faithful variants."""
QUICK_EPOCHS = 3
"""Epochs of every variant with ``quick`` (a smoke run)."""
NOISE_MARGIN = 0.1
"""How far above the noise floor the ``noisy-sine`` speed threshold sits: above the dips of
a validation loss measured on 196 noisy points. A memoryless forecaster reaches it too (the
mean of the last 4 values has expected MSE (1 + 1/4) / 3 = 0.417): reaching it is a measure
of speed, not evidence that the recurrence is used."""
NOISY_THRESHOLD = NOISE_VARIANCE + NOISE_MARGIN
"""Validation loss whose first crossing measures a ``noisy-sine`` variant's speed."""


@dataclass
class PresetResult:
    """One run of a preset variant.

    ``history`` has one row per epoch: ``epoch``, ``steps`` (cumulative optimiser
    steps), ``work`` (cumulative recurrent-cell steps of the training forward passes,
    summed over the batch), ``time`` (cumulative training seconds), ``train_loss``,
    ``val_loss``. ``t`` are the held-out times,
    ``heldout`` the held-out values, ``reference`` what the forecast is scored
    against (the values for ``sine``, the conditional mean for ``noisy-sine``),
    ``forecast`` the recursive forecast. ``val_loss`` is the final validation
    loss; ``one_step_mse_vs_mean`` (``noisy-sine`` only) the final one-step MSE
    against the conditional mean.
    """

    name: str
    variant: str
    seed: int
    settings: dict[str, Any]
    history: list[dict[str, float]]
    t: np.ndarray
    heldout: np.ndarray
    reference: np.ndarray
    forecast: np.ndarray
    forecast_mse: float
    train_time_s: float
    forecast_time_s: float
    one_step_mse_vs_mean: float | None = None

    @property
    def val_loss(self) -> float:
        return self.history[-1]["val_loss"]

    def time_to(self, loss: float) -> float | None:
        """Training seconds until the validation loss first reached ``loss`` (None: never)."""
        return self.first(loss, "time")

    def first(self, loss: float, key: str = "epoch") -> float | None:
        """``key`` (``epoch``, ``steps``, ``work``, ``time``) of the first epoch whose
        validation loss is at most ``loss`` (None: never)."""
        return next((row[key] for row in self.history if row["val_loss"] <= loss), None)

    @property
    def threshold(self) -> float | None:
        """The loss speed is measured to on ``noisy-sine`` (:data:`NOISY_THRESHOLD`); None on
        ``sine``, where the table uses the faithful run's final loss."""
        return NOISY_THRESHOLD if self.name == "noisy-sine" else None


def run_preset(name: str, variant: str, *, epochs: int | None = None, seed: int = 0,
               quick: bool = False, progress: bool | Progress | None = None
               ) -> PresetResult:
    """Train and evaluate one variant of a preset (see :data:`VARIANTS`).

    ``epochs``: passes over the training windows of a faithful variant (default
    the notes' 100, or 3 with ``quick``) or epochs of 10 optimiser steps of the
    improved ``noisy-sine`` recipe (default 20, or 3 with ``quick``); the
    improved ``sine`` recipe is a least-squares fit without epochs.
    ``progress`` (:mod:`odernn.progress`) hears of every epoch.
    """
    if name not in VARIANTS:
        raise SpecError(f"preset {name!r} unknown; allowed: {', '.join(VARIANTS)}")
    if variant not in VARIANTS[name]:
        raise SpecError(f"variant {variant!r} of preset {name!r} unknown; allowed: "
                        f"{', '.join(VARIANTS[name])}")
    if epochs is not None and epochs < 1:
        raise SpecError(f"epochs must be >= 1, got {epochs}")
    if name == "sine" and variant == "improved" and epochs is not None:
        raise SpecError("the improved sine recipe is a least-squares fit: it has no epochs")
    t, x = notes_series(name)

    show = reporter(progress)

    def report(row: dict[str, float]) -> None:
        shown = ", ".join(f"{k} {v:.3g}" for k, v in row.items() if isinstance(v, float))
        show(Event(f"{name} {variant}", "epoch", row.get("epoch", 0), None, shown, row))

    default = QUICK_EPOCHS if quick else NOTES_EPOCHS
    if name == "sine" and variant == "faithful":
        fit = train_faithful_sine(x, epochs=epochs or default, seed=seed, report=report)
    elif name == "sine":
        fit = train_improved_sine(x, seed=seed, report=report)
    elif variant == "improved":
        fit = train_improved_keras(x, epochs=epochs or (QUICK_EPOCHS if quick
                                                        else IMPROVED_EPOCHS),
                                   seed=seed, report=report)
    else:
        fit = train_faithful_keras(x, LAYOUTS[variant], epochs=epochs or default, seed=seed,
                                   report=report)
    reference = x[TRAIN_POINTS:] if name == "sine" else conditional_mean(t[TRAIN_POINTS:])
    return PresetResult(
        name=name, variant=variant, seed=seed, settings=fit.settings, history=fit.history,
        t=t[TRAIN_POINTS:], heldout=x[TRAIN_POINTS:], reference=reference, forecast=fit.forecast,
        forecast_mse=float(np.mean((fit.forecast - reference) ** 2)),
        train_time_s=fit.history[-1]["time"], forecast_time_s=fit.forecast_time_s,
        one_step_mse_vs_mean=fit.one_step_vs_mean)


# -- tables and figures -----------------------------------------------------------------------


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a - b) ** 2))


def noisy_sine_baselines() -> list[dict[str, Any]]:
    """The two reference forecasters of ``noisy-sine``, scored like the variants.

    ``training mean``: the flat line at the mean of the 800 training values;
    ``sin(0.02 t) + 1``: the conditional mean, the best any forecaster can do
    (expected MSE against the values: the noise variance). Each row: the one-step
    MSE on points 804..999 against the values (``val_loss``) and against the
    conditional mean, and the forecast of points 800..999 against the conditional
    mean (``forecast_mse``). Neither looks at the data after point 799.
    """
    t, x = notes_series("noisy-sine")
    mean = conditional_mean(t)
    one, held = slice(TRAIN_POINTS + STEP, None), slice(TRAIN_POINTS, None)
    rows = []
    for variant, forecast in (("baseline: training mean",
                               np.full_like(x, x[:TRAIN_POINTS].mean())),
                              ("baseline: sin(0.02 t) + 1", mean)):
        rows.append({"preset": "noisy-sine", "variant": variant,
                     "val_loss": _mse(forecast[one], x[one]),
                     "one_step_mse_vs_mean": _mse(forecast[one], mean[one]),
                     "forecast_mse": _mse(forecast[held], mean[held])})
    return rows


def sine_baseline() -> dict[str, Any]:
    """The forecast of zero for ``sine``, the flat line at the sine's mean over whole periods,
    scored like the variants: MSE over the held-out points 800..999, which cover less than a
    period (so not the mean square over a whole one)."""
    _, x = notes_series("sine")
    held = x[TRAIN_POINTS:]
    return {"preset": "sine", "variant": "baseline: zero", "forecast_mse": _mse(0 * held, held)}


def preset_table(results: list[PresetResult]) -> list[dict[str, Any]]:
    """One row per result, then the baselines of the presets among them (``sine``: the
    forecast of zero; ``noisy-sine``: two).

    Speed is work, not seconds: the epochs, optimiser steps and recurrent-cell steps
    (``work``) until the validation loss first reached ``threshold``
    (:data:`NOISY_THRESHOLD` on ``noisy-sine``; on ``sine`` the final validation loss of
    the ``faithful`` run of the same seed). ``work_ratio`` is the faithful run's work to
    the threshold over this run's; ``forecast_gain`` the faithful forecast MSE over this
    one's (None without a faithful run of the same preset and seed).
    """
    faithful = {(r.name, r.seed): r for r in results if r.variant == "faithful"}
    rows = []
    for r in results:
        ref = faithful.get((r.name, r.seed))
        threshold = r.threshold if r.threshold is not None else (
            ref.val_loss if ref is not None else None)
        reach = {key: None if threshold is None else r.first(threshold, key)
                 for key in ("epoch", "steps", "work")}
        ref_work = None if ref is None or threshold is None else ref.first(threshold, "work")
        last = r.history[-1]
        rows.append({
            "preset": r.name, "variant": r.variant, "seed": r.seed,
            "epochs": last["epoch"], "steps": last["steps"], "work": last["work"],
            "threshold": threshold, "epochs_to_threshold": reach["epoch"],
            "steps_to_threshold": reach["steps"], "work_to_threshold": reach["work"],
            "work_ratio": None if r is ref or not ref_work or not reach["work"]
            else ref_work / reach["work"],
            "train_time_s": r.train_time_s, "val_loss": r.val_loss,
            "one_step_mse_vs_mean": r.one_step_mse_vs_mean, "forecast_mse": r.forecast_mse,
            "forecast_time_s": r.forecast_time_s,
            "forecast_gain": None if ref is None else ref.forecast_mse / r.forecast_mse,
        })
    baselines = {"sine": lambda: [sine_baseline()], "noisy-sine": noisy_sine_baselines}
    for name, rows_of in baselines.items():
        if any(r.name == name for r in results):
            rows += [{**dict.fromkeys(COLUMNS), **row} for row in rows_of()]
    return rows


def preset_figure(results: list[PresetResult]) -> MplFigure:
    """Per preset, a row: held-out truth and the variants' forecasts; validation loss against
    training work (recurrent-cell steps, log-log)."""
    names = [n for n in VARIANTS if any(r.name == n for r in results)]
    fig = MplFigure(figsize=(11.0, 3.6 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), 2, squeeze=False)
    for (ax_f, ax_l), name in zip(axes, names, strict=True):
        runs = [r for r in results if r.name == name]
        first = runs[0]
        if name == "noisy-sine":
            ax_f.plot(first.t, first.heldout, ".", color="0.75", ms=3, label="held-out data")
            ax_f.plot(first.t, first.reference, "k", lw=1.5,
                      label="conditional mean (forecast MSE 0)")
            flat = noisy_sine_baselines()[0]
            _, x = notes_series(name)
            ax_f.axhline(x[:TRAIN_POINTS].mean(), color="0.4", ls="--", lw=1,
                         label=f"training mean: MSE {flat['forecast_mse']:.2g}")
        else:
            ax_f.plot(first.t, first.reference, "k", lw=1.5, label="held-out truth")
        for r in runs:
            label = f"{r.variant} (seed {r.seed})"
            ax_f.plot(r.t, r.forecast, lw=1.2, label=f"{label}: MSE {r.forecast_mse:.2g}")
            rows = r.history
            ax_l.loglog([row["work"] for row in rows], [row["val_loss"] for row in rows],
                        "o-" if len(rows) == 1 else "-", ms=4, label=label)
        ax_f.set(title=f"{name}: recursive forecast of the held-out points", xlabel="t",
                 ylabel="x")
        ax_f.legend(fontsize=7)
        ax_l.set(title=f"{name}: validation loss", xlabel="training work [recurrent-cell steps]",
                 ylabel="validation MSE")
        faithful = [r for r in runs if r.variant == "faithful"]
        if name == "noisy-sine":
            ax_l.axhline(NOISE_VARIANCE, color="k", ls=":", lw=1, label="noise floor 1/3")
            ax_l.axhline(NOISY_THRESHOLD, color="0.5", ls="--", lw=1,
                         label=f"speed threshold {NOISY_THRESHOLD:.3g}")
        elif faithful:
            ax_l.axhline(faithful[0].val_loss, color="0.5", ls="--", lw=1,
                         label=f"faithful's final (seed {faithful[0].seed})")
        ax_l.legend(fontsize=7)
    return fig


def plot_preset(results: list[PresetResult], path: str | Path) -> Path:
    """Save :func:`preset_figure` as a PNG at ``path``."""
    path = Path(path)
    preset_figure(results).savefig(path, dpi=110)
    return path


COLUMNS = {"preset": "preset", "variant": "variant", "seed": "seed", "epochs": "epochs",
           "steps": "optimiser steps", "work": "work [cell steps]",
           "threshold": "speed threshold", "epochs_to_threshold": "epochs to threshold",
           "steps_to_threshold": "steps to threshold",
           "work_to_threshold": "work to threshold", "work_ratio": "faithful's work / this",
           "train_time_s": "training [s]", "val_loss": "val loss",
           "one_step_mse_vs_mean": "one-step MSE vs mean", "forecast_mse": "forecast MSE",
           "forecast_time_s": "forecast [s]", "forecast_gain": "forecast gain"}
"""Columns of :func:`preset_table` and their headers in the report."""


def preset_section(results: list[PresetResult]) -> Section:
    """A report section (:func:`odernn.assess.report.write_report`'s ``extra_sections``): the
    variants side by side with the work they took, and :func:`preset_figure`."""
    rows = [[row[k] for k in COLUMNS] for row in preset_table(results)]
    text = (
        "The lecture notes' two examples, run as written (`faithful`, seeded) and with our "
        "recipe (`improved`: same data, same model). Speed is counted in work, not seconds: "
        "epochs, optimiser steps and recurrent-cell steps (windows times time steps, forward) "
        "until the validation loss first reached the speed threshold; `faithful's work / "
        "this` compares the two. Training seconds are given for information only. "
        "`forecast gain` is the faithful forecast MSE over this one's. The forecast is "
        "recursive over the 200 held-out points.\n\n"
        "`sine`: the threshold is the faithful run's final validation loss; the baseline row "
        "is the forecast of zero. The improved "
        "recipe keeps the recurrent layer at its seeded initialisation and fits the linear "
        "layer by ridge regression on the hidden states (a sine obeys a linear two-term "
        "recurrence): no optimiser steps, one forward pass. It forecasts by carrying the "
        "hidden state instead of re-feeding a window.\n\n"
        "`noisy-sine`: the noise `2 U[0,1)` has variance 4/12 = 1/3 and cannot be forecast, "
        "so no forecaster's expected one-step MSE on the held-out values is below 1/3, and "
        "the conditional mean `sin(0.02 t) + 1` attains it. The two baseline rows are the "
        f"flat line at the training mean and that conditional mean. The speed threshold is "
        f"the noise variance plus {NOISE_MARGIN:g} ({NOISY_THRESHOLD:.3g}), so a run is not "
        "credited for a dip into the noise. The recursive forecast is scored against the "
        "conditional mean: a forecast no better than the training-mean line has learned "
        "nothing of the slow sine. The notes' `(1, step)` layout is one time step of 4 "
        "features, so the recurrent weights never act; `faithful-step1` uses `(step, 1)`; "
        "`improved` carries the state across windows and adds a closed-loop loss. The "
        "notes' Keras script stops at one-step predictions; the faithful variants' "
        "recursive forecast (the PyTorch example's window re-feeding) is odernn's addition, "
        "made so that the three variants can be compared on one measure.")
    table = Table([COLUMNS[k] for k in COLUMNS], rows,
                  caption="The notes' examples: faithful against improved, and the noisy-sine "
                          "baselines")
    figure = Figure("notes_examples", "Recursive forecasts of the held-out points (left) and "
                    "validation loss against training work (right).", preset_figure(results))
    return Section("The notes' examples, reproduced", text, tables=[table], figures=[figure])
