"""``odernn train`` and ``odernn models``: recurrent surrogates from a dataset."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import typer

from odernn import budget
from odernn.checks import parse_toml, read_small_text
from odernn.cli import common
from odernn.cli.app import INTERRUPTED, app
from odernn.cli.choices import Device, Model, Optimizer, Prior, Target, plain
from odernn.cli.common import OVERWRITE, QUIET, drawing, parse_sets
from odernn.errors import Interrupted, SpecError


def _read_config(path: Path | None) -> dict[str, Any]:
    """Options from ``--config FILE.toml`` (a regular file of at most 1 MiB)."""
    if path is None:
        return {}
    return parse_toml(read_small_text(path, "--config"), f"--config {path}")


@app.command(
    epilog="Examples:\n\n"
    "  odernn train train.h5 --model lstm -o runs/lstm\n\n"
    "  odernn train train.h5 --model esn -o runs/esn --units 500\n\n"
    "  odernn train train.h5 --model rnn -o runs/rnn --set activation=relu --set clip=0.5\n\n"
    "  odernn train train.h5 --model gru -o runs/gru --no-eta --warmup 100\n\n"
    "  odernn train duffing.h5 --model esn -o runs/esn --withhold beta --warmup 100\n\n"
    "  odernn train train.h5 --model esn -o runs/esn --set val_folds=8   (the ridge by 8-fold "
    "cross-validation over whole trajectories; val_folds=N: leave one out)\n\n"
    "  odernn train train.h5 --model gru -o runs/gru --set val_folds=6   (the epoch kept by "
    "6-fold cross-validation: 7 trainings)\n\n"
    "  odernn train duffing.h5 --model esn -o runs/hybrid --prior duffing --prior-set beta=1.2"
    "   (a hybrid: corrects the prior's step)\n\n"
    "  odernn train train.h5 -o runs/lstm --resume   (continue an interrupted run)\n\n"
    "  odernn train train.h5 --model gru -o runs/gru --nproc 4   (4 data-parallel processes)\n\n"
    "  odernn train train.h5 --model lstm -o runs/lstm --tensorboard tb/lstm   (then: "
    "tensorboard --logdir tb)\n\n"
    "  odernn train train.h5 --model gru -o runs/gru --seeds 5   (5 seeds: runs/gru/seed-0 "
    "... seed-4; odernn evaluate runs/gru reports each, their spread and their joint loop)",
)
def train(
    data: Path = typer.Argument(..., help="Training dataset (HDF5, from odernn simulate "
                          "or odernn import).",
                                dir_okay=False),
    output: Path = typer.Option(..., "--output", "-o", help="Run directory to write."),
    model: Model = typer.Option(None, "--model", "-m", help="Surrogate family (default lstm; "
                                "see `odernn models`)."),
    target: Target = typer.Option(None, "--target", help="What the surrogate predicts "
                                  "(default state)."),
    val: Path = typer.Option(None, "--val", help="Validation dataset (default: a share of the "
                             "training trajectories, val_fraction).", dir_okay=False),
    epochs: int = typer.Option(None, "--epochs", help="Training epochs (RNN/LSTM/GRU/FFN; default: "
                        "the family's, listed by `odernn models`)."),
    lr: float = typer.Option(None, "--lr", help="Learning rate (default: `odernn models`)."),
    hidden: int = typer.Option(None, "--hidden", help="Hidden units (RNN/LSTM/GRU/FFN; default: "
                        "`odernn models`)."),
    units: int = typer.Option(None, "--units", help="Reservoir units (ESN; default: "
                             "`odernn models`)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Windows per batch (default: the "
                                "family's, `odernn models`)."),
    window: int = typer.Option(None, "--window", help="Teacher-forced window length (default: the "
                          "family's, `odernn models`)."),
    horizon: int = typer.Option(None, "--horizon", help="Final closed-loop loss horizon "
                                "(0: teacher forcing only; default: `odernn models`)."),
    optimizer: Optimizer = typer.Option(None, "--optimizer", help="Optimiser of the gradient "
                                        "families (hf: Hessian-free, teacher forcing only; "
                                        "default: `odernn models`)."),
    seed: int = typer.Option(None, "--seed", help="Random seed (runs are reproducible on CPU; "
                        "default: `odernn models`)."),
    device: Device = typer.Option(None, "--device", help="Where to train (default auto)."),
    withhold: list[str] = typer.Option([], "--withhold", help="Withhold a parameter of the "
                                       "data (a system's, or one an imported file stores) "
                                       "from the surrogate (by default every parameter that "
                                       "varies across the training trajectories is an input); "
                                       "repeatable."),
    no_eta: bool = typer.Option(False, "--no-eta", help="Shorthand for --withhold eta."),
    warmup: int = typer.Option(None, "--warmup", help="Observed steps a rollout is given "
                               "(with --withhold, to infer the parameter; default: `odernn "
                               "models`)."),
    prior: Prior = typer.Option(None, "--prior", help="A hybrid: the system of an approximate "
                                "equation whose one step (RK4 on the forcing samples) the "
                                "surrogate takes as an input and corrects (state mode; linear "
                                "= oscillator)."),
    prior_sets: list[str] = typer.Option([], "--prior-set", metavar="NAME=VALUE", help="A "
                                         "parameter of the prior (default: the data's value "
                                         "of the same name); repeatable."),
    sets: list[str] = typer.Option([], "--set", help="Any other option as KEY=VALUE "
                                   "(see `odernn models`); repeatable."),
    config: Path = typer.Option(None, "--config", help="TOML file of training options; "
                                "flags and --set win.", dir_okay=False),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in OUTPUT from its "
                                "last checkpoint."),
    seeds: int = typer.Option(None, "--seeds", help="Train K independent members "
                              "(seeds SEED, SEED+1, ...) into OUTPUT/seed-N; evaluate reports "
                              "each seed, their spread and their joint closed loop (the "
                              "median of their one-step predictions)."),
    nproc: int = typer.Option(None, "--nproc", help="Train data-parallel in N processes on "
                              "this machine (re-launched under torchrun; see docs/scaling.md)."),
    tensorboard: Path = typer.Option(None, "--tensorboard", metavar="DIR", help="Also write "
                                     "each epoch's losses and validation errors to DIR as "
                                     "TensorBoard scalars (tensorboard --logdir DIR); needs "
                                     "the tensorboard extra."),
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
) -> None:
    """Train a surrogate (RNN, LSTM, GRU, echo state network or feed-forward) on a dataset."""
    from odernn.data.store import open_trajectories, read_trajectories
    from odernn.learn.config import TrainConfig
    from odernn.learn.rundir import check_run_dir
    from odernn.learn.stream import for_training
    from odernn.learn.training import check
    from odernn.learn.training import train as run

    if tensorboard is not None:  # the extra and DIR, before anything is read or written
        from odernn.learn.tensorboard_log import check

        check(tensorboard, output)
    model, target, optimizer, device, prior = map(plain, (model, target, optimizer, device,
                                                          prior))
    flags = {"model": model, "target": target, "epochs": epochs, "lr": lr, "hidden": hidden,
             "units": units, "batch_size": batch_size, "window": window, "horizon": horizon,
             "optimizer": optimizer, "seed": seed, "device": device, "warmup": warmup,
             "prior": prior, "prior_set": parse_sets(prior_sets, "--prior-set") or None}
    given = {k: v for k, v in flags.items() if v is not None}
    if withhold or no_eta:
        given["withhold"] = [*withhold, *(["eta"] if no_eta else [])]
    settings_given = parse_sets(sets)
    for key in sorted(given.keys() & settings_given.keys()):  # one value per option
        flag = "--withhold/--no-eta" if key == "withhold" else "--" + key.replace("_", "-")
        raise SpecError(f"--set {key}={settings_given[key]!r} and {flag} both set {key}; "
                        "give one")
    from_file = _read_config(config)
    options = {**from_file, **settings_given, **given}
    if (isinstance(from_file.get("prior_set"), dict) and "prior_set" in given  # by name, for
            and options.get("prior") == from_file.get("prior")):  # the file's prior: a flag
        options["prior_set"] = {**from_file["prior_set"], **given["prior_set"]}  # sets one
    if val is not None and options.get("val_fraction") is not None:  # else dropped silently
        raise SpecError("val_fraction holds out training trajectories for validation; with "
                        "--val they are all trained on: give one")
    settings = TrainConfig.from_dict(options, where="training options")
    if seeds is not None and nproc is not None:
        raise SpecError("--seeds and --nproc together are not supported: train the seeds "
                        "one after another (--seeds) or one model data-parallel (--nproc)")
    if seeds is not None:
        _train_seeds(data, val, output, settings, seeds, resume, overwrite, quiet, tensorboard)
        return
    if nproc is not None:
        if nproc < 1:
            raise SpecError(f"--nproc must be >= 1, got {nproc}")
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
        if nproc > cpus:  # each also takes its own interpreter and torch (hundreds of MB)
            raise SpecError(f"--nproc {nproc}: more processes than the {cpus} CPUs this "
                            "command may use; each would only wait for the others, and takes "
                            "its own memory (Python and torch) before it trains")
        # what can be refused is refused here, in one line, before the workers start: the
        # files, the run directory, and what training checks before it trains
        for path in (data, val):
            if path is not None:
                open_trajectories(path).close()
        check_run_dir(output, resume, overwrite)
        with budget.shared_by(nproc), warnings.catch_warnings():  # each worker's share
            warnings.simplefilter("ignore")  # rank 0 says them, as it trains
            settings = TrainConfig.from_dict(options, where="training options")  # its sizes
            check(for_training(data), settings, output,
                  val=read_trajectories(val) if val is not None else None, resume=resume,
                  overwrite=overwrite, world_size=nproc)
        code = _relaunch(nproc)
        if code == 130:
            raise Interrupted("")  # the workers have said what they kept
        raise typer.Exit(code)
    training = for_training(data)  # in memory if it fits the memory budget, else streamed
    _say_streamed(training, quiet)
    validation = read_trajectories(val) if val is not None else None
    with drawing(quiet) as show:
        result = run(training, settings, output, val=validation, resume=resume, progress=show,
                     overwrite=overwrite, tensorboard=tensorboard)
    from odernn.learn.distributed import rank

    if result.status == "interrupted":  # last.pt holds everything --resume needs
        raise Interrupted("" if rank() != 0 else  # distributed: rank 0 speaks for the run
                          f"{result.message}; to continue, run the same command with --resume")
    if rank() != 0:
        raise typer.Exit(1 if result.status == "diverged" else 0)
    typer.echo(f"{result.status}: {result.message}")
    if result.left_nothing:  # no "run in OUTPUT": none was written (a previous one stays)
        raise typer.Exit(1)
    when = f" (epoch {result.best_epoch + 1})" if settings.recipe == "gradient" else ""
    typer.echo(f"best closed-loop validation NRMSE(x) {result.best_val_nrmse:.3g}{when}, "
               f"{result.train_time_s:.1f} s; run in {output}")
    if result.status == "diverged":
        raise typer.Exit(1)


def _say_streamed(training: Any, quiet: bool) -> None:
    """Say that the training data are streamed: where they take more than one buffer, the
    windows drawn, and so the model, differ from in-memory training's (docs/scaling.md)."""
    from odernn.data.filerows import FileRows
    from odernn.learn.distributed import rank

    if isinstance(training, FileRows) and not quiet and rank() == 0:
        typer.echo(f"{training.path}: training it in memory would exceed the memory budget; "
                   "streamed from the file (docs/scaling.md)", err=True)


def _train_seeds(data: Path, val: Path | None, output: Path, settings: Any, seeds: int,
                 resume: bool, overwrite: bool, quiet: bool, tensorboard: Path | None) -> None:
    """``--seeds K``: the members one after another into the group OUTPUT."""
    from odernn.data.store import read_trajectories
    from odernn.learn.seeds import SEEDS_FILE, check_group, member_seeds, train_seeds
    from odernn.learn.stream import for_training

    check_group(output, member_seeds(settings.seed, seeds), resume, overwrite)
    training = for_training(data)  # in memory if it fits the memory budget, else streamed
    _say_streamed(training, quiet)
    validation = read_trajectories(val) if val is not None else None
    index = output / SEEDS_FILE
    before = index.stat() if index.is_file() else None  # written anew: another file
    try:
        with drawing(quiet) as show:
            results = train_seeds(training, settings, output, seeds, val=validation,
                                  resume=resume, overwrite=overwrite, progress=show,
                                  tensorboard=tensorboard)
    except KeyboardInterrupt:  # within a member that saves nothing until it ends (a reservoir)
        now = index.stat() if index.is_file() else None
        if now is not None and (before is None or (now.st_ino, now.st_mtime_ns) != (
                before.st_ino, before.st_mtime_ns)):  # this command's group: resumable
            raise Interrupted(f"seed group {output}: interrupted in a member; its finished "
                              "members are kept; to continue, run the same command with "
                              "--resume") from None
        raise
    names = [f"seed-{s}" for s in member_seeds(settings.seed, seeds)]
    stopped = next((n for n, r in results.items() if r.status == "interrupted"), None)
    for i, name in enumerate(names):  # in order: the members run one after another
        result = results.get(name)
        if result is not None:
            typer.echo(f"{name}: {result.status}: {result.message}; best closed-loop "
                       f"validation NRMSE(x) {result.best_val_nrmse:.3g}, "
                       f"{result.train_time_s:.1f} s")
        elif stopped is not None and i > names.index(stopped):
            typer.echo(f"{name}: not started")
        else:
            typer.echo(f"{name}: finished before, kept")
    if stopped is not None:
        finished = names.index(stopped)  # every member before it, this run's or kept
        raise Interrupted(f"seed group {output}: interrupted at {stopped}, {finished} of "
                          f"{seeds} members finished; to continue, run the same command "
                          "with --resume")
    typer.echo(f"{seeds} seeds in {output}; odernn evaluate {output} --data TEST.h5 reports "
               "each seed, their spread and their joint loop")
    if any(r.status == "diverged" for r in results.values()):
        raise typer.Exit(1)


EARLY = "interrupted before the training processes started: nothing was written"


def _relaunch(nproc: int) -> int:
    """Run this command again without ``--nproc`` under ``torch.distributed.run`` (torchrun,
    through :func:`odernn.learn.distributed.launch`) with ``nproc`` processes on this machine; its
    exit code. The command line is the one :func:`odernn.cli.app.main` was given (a program's
    or a Python caller's), ``--debug`` with it."""
    argv = list(common.ARGV)
    if "train" not in argv:
        raise SpecError("--nproc: cannot find the train command line to re-launch")
    rest, args = argv[argv.index("train") + 1:], []
    skip = False
    for arg in rest:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            args.append(arg)
    from odernn.interrupt import SAID_ENV, say_interrupted, signal_marker
    from odernn.learn.distributed import PARENT_ENV

    # a signal while it imports torch, before any worker: held until the import is done (one
    # inside torch's extensions can end in a traceback or an abort), then one line
    script = ["import sys", "try:", " from odernn.interrupt import interrupt_guard",
              " with interrupt_guard():", "  from odernn.learn.distributed import launch",
              "except KeyboardInterrupt:", " from odernn.interrupt import say_interrupted",
              f" say_interrupted({EARLY!r})", " sys.exit(130)", "launch(sys.argv[1:])"]
    command = [sys.executable, "-c", "\n".join(script), "--standalone", "--nproc_per_node",
               str(nproc), "-m", "odernn", *(["--debug"] if common.DEBUG else []), "train",
               *args]
    procs: list[subprocess.Popen] = []
    signalled, running = [], []
    # created by the first of them to say it: nothing to leave behind if this is killed
    said = Path(tempfile.gettempdir()) / f"odernn-nproc-{secrets.token_hex(8)}.said"
    # created here when a signal is passed on, removed at the end (a SIGKILL between leaves it)
    marker = Path(signal_marker(str(said)))

    def forward(signum: int, frame: object) -> None:
        # torchrun runs in a session of its own, so Ctrl-C in the terminal and SIGTERM from a
        # batch scheduler both reach this process alone: pass each on once, as SIGTERM (which
        # torchrun passes on to the workers: odernn handles it as Ctrl-C, and one still
        # starting Python ends quietly by it, where SIGINT printed Python's traceback), and
        # wait for the workers to save
        signalled.append(signum)
        if running:  # the workers' sign that a peer left on this signal (not a crash)
            with contextlib.suppress(OSError):
                marker.touch()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    code = 1
    try:
        env = {**os.environ, PARENT_ENV: str(os.getpid()),  # they die with this process
               SAID_ENV: str(said)}
        procs.append(subprocess.Popen(command, start_new_session=True, env=env))
        running.append(True)
        if signalled:  # a signal while it was starting
            procs[0].send_signal(signal.SIGTERM)
        code = procs[0].wait()
    finally:  # forward() stays the handler until this is done: a late signal adds no line
        running.clear()
        if (signalled and code != 0 or code == 130) and not said.exists():  # none said it:
            # a launcher that a SIGTERM ended had started no worker (torchrun's own handler
            # turns one later into exit 130); a run that ended 0 was not interrupted
            say_interrupted(EARLY if code == -signal.SIGTERM else INTERRUPTED)
        said.unlink(missing_ok=True)
        marker.unlink(missing_ok=True)
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 130 if signalled and code != 0 else code


@app.command(epilog="Example:\n\n  odernn models")
def models() -> None:
    """List the surrogate families: their hyperparameters, defaults and training options."""
    from odernn.learn.config import RECIPE_OPTIONS, TrainConfig, takes
    from odernn.learn.models import REGISTRY, describe

    for entry in describe():
        typer.echo(f"{entry['family']}: {entry['description']}")
        typer.echo(f"  fitted by the {entry['recipe']} recipe")
        for name, default in entry["defaults"].items():
            if name != "seed":  # the training option seed, shared by every family
                typer.echo(f"  {name + '=' + str(default):<28} {entry['help'][name]}")
        if entry["training_defaults"]:
            own = ", ".join(f"{k}={v}" for k, v in entry["training_defaults"].items())
            typer.echo(f"  training defaults of its own: {own}")
    fields = {f.name: f.default_factory() if f.default is dataclasses.MISSING else f.default
              for f in dataclasses.fields(TrainConfig) if f.name != "model"}
    shared = [k for k in fields if all(takes(f, k) for f in REGISTRY)]
    for recipe, names in RECIPE_OPTIONS.items():
        shown = ", ".join(f"{k}={fields[k]}" for k in names)
        typer.echo(f"\ntraining options of the {recipe} recipe: {shown}")
    typer.echo("\noptions of every family: " + ", ".join(f"{k}={fields[k]}" for k in shared))
    typer.echo("\nset any of them with --set KEY=VALUE or --config FILE.toml; each family "
               "takes its own hyperparameters and its recipe's options")
