"""``odernn gradients``: the vanishing/exploding gradient picture for recurrent networks."""

from __future__ import annotations

import math
import shutil
import warnings
from pathlib import Path
from typing import Any

import typer

from odernn import budget, jsonio
from odernn.checks import (
    check_choice,
    check_seed,
    check_writable,
    holds_working_directory,
    refuse_link,
    refuse_mount_point,
)
from odernn.cli.app import app
from odernn.cli.choices import GRADIENT_MODELS, Init, Loss, Norm, complete_list, plain
from odernn.cli.common import CONFIG, OVERWRITE, QUIET, drawing
from odernn.errors import DataError, OutputError, SpecError
from odernn.progress import Event

SCHEMA = "odernn.gradients"
OUTPUTS = ("gradients.json", "gradients.png")


@app.command(
    epilog="Examples:\n\n"
    "  odernn gradients -o grads\n\n"
    "  odernn gradients --model rnn --spectral-radius 0.5,0.9,1.0,1.5 --length 300 -o grads\n\n"
    "  odernn gradients --model lstm --model gru --hidden 32 --data train.h5 -o grads\n\n"
    "  odernn gradients --run runs/lstm --data test.h5 -o grads-trained",
)
def gradients(
    output: Path = typer.Option(
        ..., "--output", "-o", file_okay=False,
        help="Directory to write gradients.png and gradients.json into."),
    model: list[str] = typer.Option(
        None, "--model", metavar="rnn|lstm|gru",
        help="A fresh (untrained) network; repeat or comma-separate for several. "
        "Default: all three, unless --run is given.",
        autocompletion=complete_list(GRADIENT_MODELS)),
    run: list[Path] = typer.Option(
        None, "--run", metavar="RUN_DIR",
        help="A trained run directory or checkpoint (rnn, lstm, gru); repeatable."),
    spectral_radius: list[str] = typer.Option(
        None, "--spectral-radius", metavar="RHO[,RHO...]",
        help="Spectral radii of the fresh rnn's W, one curve each; repeat or comma-separate "
        "(default 0.5,0.9,1.0,1.5)."),
    init: Init = typer.Option(
        Init("gaussian"), "--init",
        help="Fresh rnn's W before scaling: gaussian, uniform (PyTorch's) or orthogonal."),
    hidden: int = typer.Option(64, "--hidden", help="Hidden units of the fresh networks."),
    length: int = typer.Option(200, "--length", help="Sequence length T (steps backpropagated)."),
    sequences: int = typer.Option(4, "--sequences", help="Number of trajectories averaged over."),
    input_scale: float = typer.Option(
        1.0, "--input-scale",
        help="Fresh networks' inputs (x_i, F_i, eta), unit RMS per channel, times this."),
    forget_bias: float = typer.Option(
        None, "--forget-bias",
        help="Fresh LSTM's forget-gate bias (default: PyTorch's, about 0: a gate near 1/2)."),
    loss: Loss = typer.Option(Loss("final"), "--loss",
                              help="final (loss at step T) or sum (all steps)."),
    norm: Norm = typer.Option(Norm("spectral"), "--norm",
                              help="Jacobian norm: spectral or frobenius."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fresh networks' weights."),
    data: Path = typer.Option(
        None, "--data", dir_okay=False,
        help="HDF5 dataset whose first trajectories are the inputs "
        "(default: simulate them from the built-in 'train' spec)."),
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
    config: Path = CONFIG,
) -> None:
    """Measure how gradients vanish or explode with the lag in backpropagation through time.

    For each network, runs T steps of oscillator inputs and prints, against
    the lag T - k, the norm of the Jacobian product ds_T/ds_k and of the
    gradient dL/ds_k (s the carried state: h, or (h, c) for an LSTM), with
    the fitted rate per step and the spectral radius of the recurrent matrix.
    """
    from odernn.notes import diagnostics, diagnostics_output, probes

    init, loss, norm = plain(init), plain(loss), plain(norm)
    families = _split(model) or ([] if run else list(probes.FAMILIES))
    given = _split(spectral_radius) or ["0.5", "0.9", "1.0", "1.5"]
    if len(given) > MAX_RADII:  # a network each, all built before the work starts
        raise SpecError(f"--spectral-radius takes at most {MAX_RADII} values (a network and a "
                        f"curve each), got {len(given)}")
    radii = [_radius(r) for r in given]
    for family in families:
        check_choice(family, probes.FAMILIES, "--model")
    check_choice(init, probes.INITS, "--init")
    check_choice(loss, diagnostics.LOSSES, "--loss")
    check_choice(norm, diagnostics.NORMS, "--norm")
    for name, value in (("--hidden", hidden), ("--length", length), ("--sequences", sequences)):
        if value < 1:
            raise SpecError(f"{name} must be >= 1, got {value}")
    if not 0 < input_scale < math.inf:
        raise SpecError(f"--input-scale must be finite and > 0, got {input_scale}")
    if forget_bias is not None and not math.isfinite(forget_bias):
        raise SpecError(f"--forget-bias must be finite, got {forget_bias}")
    check_seed(seed, "--seed")
    for option, given in (("spectral_radius", bool(spectral_radius)),
                          ("forget_bias", forget_bias is not None),
                          ("init", init != "gaussian")):  # recorded, and used by no model
        takers = probes.families_taking(option)
        if given and not set(takers) & set(families):
            raise SpecError(f"--{option.replace('_', '-')} applies to --model "
                            f"{' or --model '.join(takers)}, which is not selected")
    for family in families:  # before any data is simulated or read
        probes.check_memory(family, hidden, sequences, length,
                            where=f"gradients --hidden {hidden} --sequences {sequences} "
                            f"--length {length}")
    _check_target(output, overwrite)
    check_writable(output, "gradients output")

    trajectories = _load_data(data, sequences, length)
    # every probe is built (and its data and checkpoint checked) before the work starts
    networks = [probes.fresh_probe(
        family, trajectories, hidden=hidden, length=length, spectral_radius=radius, init=init,
        seed=seed, input_scale=input_scale,
        forget_bias=forget_bias if family in probes.families_taking("forget_bias") else None)
        for family in families
        for radius in (radii if family in probes.families_taking("spectral_radius") else [None])]
    networks += [_trained_probe(path, trajectories, length) for path in run or []]

    profiles = []
    with drawing(quiet) as show:
        for k, probe in enumerate(networks):
            profiles.append(diagnostics.gradient_profile(probe, loss=loss, norm=norm))
            if show is not None:
                show(Event("gradients", "done" if k + 1 == len(networks) else "network", k + 1,
                           len(networks), probe.label))
    record = {
        "schema": SCHEMA, "schema_version": 1,
        "settings": {"models": families, "runs": [str(p) for p in run or []],
                     "spectral_radius": radii, "init": init, "hidden": hidden,
                     "length": length, "sequences": trajectories.n, "input_scale": input_scale,
                     "forget_bias": forget_bias, "loss": loss, "norm": norm, "seed": seed,
                     "data": str(data) if data else "simulated: built-in spec 'train'"},
        "profiles": [p.to_dict() for p in profiles],
    }
    _write(output, overwrite, record, diagnostics_output.figure(profiles))
    typer.echo(diagnostics_output.format_table(profiles))
    if not quiet:
        typer.echo(f"wrote {output / OUTPUTS[0]} and {output / OUTPUTS[1]}")


def _split(values: list[str] | None) -> list[str]:
    """Repeated and comma-separated option values, in order."""
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


MAX_RADII = 32
"""The most ``--spectral-radius`` values: each is a network, built (and held) before the
work starts, and a curve of the figure; any number was taken."""


def _radius(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SpecError(f"--spectral-radius {text!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise SpecError(f"--spectral-radius must be >= 0 and finite, got {text}")
    return value


def _load_data(path: Path | None, sequences: int, length: int) -> Any:
    """The first ``sequences`` trajectories of ``path``, or simulated from the 'train' spec."""
    if path is None:
        from odernn.data.simulate import simulate_trajectories
        from odernn.data.spec import load_spec

        spec = load_spec("train").with_overrides(n=sequences, n_steps=length + 1)
        return simulate_trajectories(spec)
    from odernn.data.store import read_trajectories

    data = read_trajectories(path, rows=slice(0, sequences))
    if data.n < sequences:  # it averaged over fewer without a word
        warnings.warn(f"{path} holds {data.n} trajectories: the profiles average over "
                      f"{data.n}, not --sequences {sequences}", stacklevel=2)
    if data.n_steps < length + 1:
        raise DataError(f"{path}: trajectories of {data.n_steps} points; --length {length} "
                        f"needs at least {length + 1}")
    return data


def _trained_probe(path: Path, trajectories: Any, length: int) -> Any:
    from odernn.learn.models import load_surrogate
    from odernn.notes.probes import surrogate_probe

    model = load_surrogate(path)
    return surrogate_probe(model, trajectories, length, label=f"{model.family} {path.name}")


def _check_target(out: Path, overwrite: bool) -> None:
    """Refuse to replace anything but an earlier output of this command (an empty directory
    is new: it was refused without --overwrite and, with it, as not this command's)."""
    if out.name in ("", ".", "..") or holds_working_directory(out):
        # the working directory (or one above it) was replaced, the shell left in a removed one
        raise OutputError(f"{out}: give the output a directory of its own, e.g. gradients")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"cannot write {out}: directory {parent} does not exist")
    refuse_link(out)  # a dangling one too: it would be renamed aside, and a directory made
    refuse_mount_point(out)
    if not out.exists() or out.is_dir() and not any(out.iterdir()):
        return
    if not out.is_dir() or any(p.name not in OUTPUTS or p.is_symlink() or not p.is_file()
                               for p in out.iterdir()):
        raise OutputError(f"refusing to replace {out}: it holds more than {' and '.join(OUTPUTS)}")
    if not _ours(out / OUTPUTS[0]):  # the same names are not enough: a user's own plot
        raise OutputError(f"refusing to replace {out}: it holds no {OUTPUTS[0]} of schema "
                          f"{SCHEMA}, so it is not an earlier output of odernn gradients")
    if not overwrite:
        raise OutputError(f"{out} already exists (an earlier output); pass --overwrite to "
                          "replace it")


def _ours(path: Path) -> bool:
    """Whether ``path`` is a JSON record this command wrote (its schema)."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 1 << 26:
            return False
        return jsonio.loads(path.read_text(encoding="utf-8"), str(path)).get("schema") == SCHEMA
    except budget.BudgetError:
        raise
    except (OSError, ValueError, AttributeError):
        return False


def _write(out: Path, overwrite: bool, record: dict[str, Any], fig: Any) -> None:
    """Write into a directory beside ``out``, then put it in place (:mod:`odernn.atomic`)."""
    from odernn import atomic

    out = out.absolute()  # "." has no name to put a temporary directory beside
    tmp: Path | None = None
    try:
        tmp = atomic.make_dir_beside(out)
        (tmp / "gradients.json").write_text(jsonio.dumps(record, indent=1) + "\n",
                                            encoding="utf-8")
        fig.savefig(tmp / "gradients.png", dpi=120)
        atomic.install_dir(tmp, out, check=lambda: _check_target(out, overwrite))
        tmp = None
    except OSError as err:
        raise OutputError(f"cannot write {out}: {err.strerror or err}") from err
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
