"""``odernn demo``: the whole pipeline on built-in defaults, ending in a report."""

from __future__ import annotations

from pathlib import Path

import typer

from odernn.cli.app import app
from odernn.cli.choices import Device, Preset, SystemName, complete_list, plain
from odernn.cli.common import OVERWRITE, QUIET, drawing
from odernn.demo import DEMO_BUDGET
from odernn.demo import FAMILIES as DEMO_FAMILIES
from odernn.errors import SpecError

DEFAULT_MODELS = "rnn,lstm,gru,esn"


@app.command(
    epilog="Examples:\n\n"
    "  odernn demo\n\n"
    "  odernn demo --models lstm,esn --epochs 20 -o my-demo\n\n"
    "  odernn demo --n-train 64 --n-test 16   (a faster, smaller run)\n\n"
    "  odernn demo --system duffing -o duffing-demo   (a nonlinear oscillator)\n\n"
    "  odernn demo --data train.h5 --test test.h5 -o my-demo   (your own files, e.g. from "
    "odernn import)\n\n"
    "  odernn demo --preset sine -o sine-demo   (the notes' PyTorch example)",
)
def demo(
    output: Path = typer.Option(Path("odernn-demo"), "--output", "-o",
                                help="Directory for the datasets, runs and report (new or empty; "
                                "--overwrite replaces a previous demo, nothing else)."),
    models: str = typer.Option(DEFAULT_MODELS, "--models",
                               help="Comma-separated surrogate families to train, of rnn, "
                               "lstm, gru and esn.", autocompletion=complete_list(DEMO_FAMILIES)),
    n_train: int = typer.Option(None, "--n-train", help="Training trajectories (default 256)."),
    n_test: int = typer.Option(None, "--n-test", help="Test trajectories (default 64)."),
    epochs: int = typer.Option(None, "--epochs", help="Epochs for RNN/LSTM/GRU (default: the "
                               "demo budget, " + ", ".join(
                                   f"{f} {o['epochs']}" for f, o in DEMO_BUDGET.items()
                                   if "epochs" in o) + ")."),
    hidden: int = typer.Option(None, "--hidden", help="Hidden units for RNN/LSTM/GRU "
                               "(default: the family's, `odernn models`)."),
    units: int = typer.Option(None, "--units", help="Reservoir units for the ESN (default: "
                              "`odernn models`)."),
    device: Device = typer.Option(Device("auto"), "--device", help="Where to train."),
    system: SystemName = typer.Option(SystemName("oscillator"), "--system",
                                      help="The system to simulate, learn and evaluate "
                                      "(see `odernn systems`)."),
    data: Path = typer.Option(None, "--data", help="Your training file instead of the simulated "
                              "one (with --test; e.g. from `odernn import`).", dir_okay=False),
    test: Path = typer.Option(None, "--test", help="Your test file (with --data).",
                              dir_okay=False),
    preset: Preset = typer.Option(None, "--preset", help="Instead: the lecture notes' sine or "
                                  "noisy-sine example, as written beside our improved recipe."),
    seed: int = typer.Option(None, "--seed", help="Seed of the --preset runs (default 0)."),
    seeds: int = typer.Option(None, "--seeds", help="Train each family K times with seeds "
                              "0..K-1: the report shows their spread and their ensemble "
                              "(default 3; 1: one model per family, a third of the time)."),
    quick: bool = typer.Option(False, "--quick", help="A tiny run (seconds) to check the set-up."),
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
) -> None:
    """Simulate the train and test sets, train RNN, LSTM, GRU and ESN surrogates with a demo
    budget, evaluate them against the integrators and write a report."""
    from odernn.demo import SEEDS, run_demo, run_preset_demo

    def say(message: str) -> None:
        if not quiet:
            typer.echo(message, err=True)

    pipeline = {"--models": models != DEFAULT_MODELS, "--n-train": n_train is not None,
                "--n-test": n_test is not None, "--epochs": epochs is not None,
                "--hidden": hidden is not None, "--units": units is not None,
                "--device": plain(device) != "auto", "--system": plain(system) != "oscillator",
                "--data": data is not None, "--test": test is not None,
                "--seeds": seeds is not None}
    preset = plain(preset)
    if preset is not None:
        given = [option for option, set_ in pipeline.items() if set_]
        if given:
            raise SpecError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to "
                            f"the oscillator demo, not to --preset {preset} (which takes --seed "
                            "and --quick)")
        result = run_preset_demo(output, preset, seed=0 if seed is None else seed, quick=quick,
                                 overwrite=overwrite, say=say)
        for row in result.presets:
            typer.echo("  ".join(f"{k}={_cell(v)}" for k, v in row.items()))
        typer.echo(f"report: {result.report}")
        return

    if seed is not None:
        raise SpecError("--seed applies to --preset runs; the oscillator demo's seeds are those "
                        "of the built-in specs and training defaults")
    families = tuple(m.strip() for m in models.split(",") if m.strip())
    with drawing(quiet) as show:
        result = run_demo(output, models=families, n_train=n_train, n_test=n_test,
                          epochs=epochs, hidden=hidden, units=units, device=plain(device),
                          quick=quick, overwrite=overwrite, say=say, progress=show,
                          system=plain(system), data=data, test=test,
                          seeds=SEEDS if seeds is None else seeds)
    from odernn.cli.evaluate import format_metrics

    typer.echo(format_metrics(result.metrics))
    typer.echo("stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.stages.items()))
    typer.echo(f"report: {result.report}")


def _cell(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
