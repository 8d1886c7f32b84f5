"""``odernn import``: trajectories from a CSV, ``.npy``, ``.npz`` or HDF5 file of another
program into an odernn dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from odernn.checks import counted
from odernn.cli.app import app
from odernn.cli.choices import ImportSystem, plain
from odernn.cli.common import CONFIG, OVERWRITE, QUIET, drawing, parse_sets
from odernn.data.schema import GRID_TOLERANCE
from odernn.errors import DataError, SpecError


def parse_params(items: list[str]) -> dict[str, str]:
    """``NAME=COLUMN`` pairs of ``--param``, each name once."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, column = item.partition("=")
        name, column = name.strip(), column.strip()
        if not sep or not name or not column:
            raise SpecError(f"--param expects NAME=COLUMN (e.g. --param eta=damping), got "
                            f"{item!r}")
        if name in out:
            raise SpecError(f"--param {name} is given twice; give it once")
        out[name] = column
    return out


@app.command(
    "import",
    epilog="Examples:\n\n"
    "  odernn import measured.csv -o data.h5 --time t --x x --v v --forcing F\n\n"
    "  odernn import runs.csv -o data.h5 --trajectory run --derive-v --param k=stiffness\n\n"
    "  odernn import sim.npz -o data.h5 --x pos --v vel --time time --truncate\n\n"
    "  odernn import scope.npz -o data.h5 --x x --derive-v --dt 1e-3\n\n"
    "  odernn import log.h5 -o data.h5 --x x --v v --system oscillator --set eta=0.1",
)
def import_(
    source: Path = typer.Argument(..., help="A CSV file with a header line, a .npy, .npz or "
                                  "HDF5 file.", dir_okay=False),
    output: Path = typer.Option(..., "--output", "-o", help="HDF5 dataset to write "
                                "(--overwrite replaces only an odernn dataset).", dir_okay=False),
    time: str = typer.Option(None, "--time", help="The column (array) of times (default t; "
                             "or --dt)."),
    dt: float = typer.Option(None, "--dt", help="The rows are samples DT apart, in place of a "
                             "time column: row r at r DT (of a 2-D array, point j of each row "
                             "at j DT); one trajectory unless --trajectory or 2-D arrays say "
                             "otherwise."),
    x: str = typer.Option("x", "--x", help="The column of positions x."),
    v: str = typer.Option(None, "--v", help="The column of velocities (or --derive-v)."),
    derive_v: bool = typer.Option(False, "--derive-v", help="Compute v from x by second-order "
                                  "finite differences (central inside, one-sided at the ends); "
                                  "the file records it."),
    forcing: str = typer.Option(None, "--forcing", help="The column of forcing samples F "
                                "(default: no forcing, F = 0)."),
    params: list[str] = typer.Option([], "--param", help="NAME=COLUMN: a parameter, constant "
                                     "along each trajectory (checked); repeatable."),
    trajectory: str = typer.Option(None, "--trajectory", help="A new trajectory starts where "
                                   "this column of numbers (run numbers) changes value "
                                   "(default: where time goes backwards)."),
    truncate: bool = typer.Option(False, "--truncate", help="Cut every trajectory to the "
                                  "shortest (else unequal lengths are refused)."),
    system: ImportSystem = typer.Option(None, "--system", help="The equation, when known "
                                        "(see `odernn systems`; its parameters by --param or "
                                        "--set); default external (unknown)."),
    sets: list[str] = typer.Option([], "--set", help="PARAM=VALUE: a declared system's "
                                   "parameter, the same for every trajectory; repeatable."),
    step_tolerance: float = typer.Option(GRID_TOLERANCE, "--step-tolerance", help="How far a "
                                         "step may differ from the first, relative to it."),
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
    config: Path = CONFIG,
) -> None:
    """Import trajectories written by another program into an odernn dataset (HDF5)."""
    from odernn.atomic import check_output
    from odernn.data.importer import ImportOptions, import_file

    if not source.exists():  # before the options: a missing file said "no velocity"
        raise DataError(f"{source} does not exist")
    values = parse_sets(sets)
    options = ImportOptions(time=time, x=x, v=v, derive_v=derive_v, forcing=forcing,
                            params=parse_params(params), trajectory=trajectory,
                            truncate=truncate, system=plain(system), sets=values,
                            step_tolerance=step_tolerance, dt=dt)
    check_output(output, "dataset", overwrite=overwrite, inputs=[source, config])
    with drawing(quiet) as show:
        result = import_file(source, output, options, overwrite=overwrite, progress=show)
    if not quiet:
        typer.echo(f"wrote {output}: {counted(result.n, 'trajectory', 'trajectories')} x "
                   f"{result.n_steps} points (dt {result.dt:g}, system {result.system}) from "
                   f"{result.rows} rows of {source}")
    for note in result.notes:  # what the import changed, said even when quiet
        typer.echo(f"  {note}")
