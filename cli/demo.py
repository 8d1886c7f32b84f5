"""``odernn demo``: the whole pipeline on built-in defaults."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from odernn.cli.app import app
from odernn.cli.common import QUIET


@app.command(epilog="Example:\n\n  odernn demo -o odernn-demo")
def demo(
    output: Path = typer.Option(
        Path("odernn-demo"),
        "--output",
        "-o",
        help="Directory for the datasets (and, later, runs and report).",
    ),
    quiet: bool = QUIET,
) -> None:
    """Run the pipeline on the built-in train and test sets and print what it made."""
    from odernn.simulate import simulate
    from odernn.spec import load_spec
    from odernn.store import read_trajectories

    output.mkdir(parents=True, exist_ok=True)
    for name in ("train", "test"):
        spec = load_spec(name)
        path = output / f"{name}.h5"
        start = time.perf_counter()
        simulate(spec, path, overwrite=True)
        data = read_trajectories(path)
        typer.echo(
            f"{name:>5}: {path}  {data.n} trajectories x {data.n_steps} steps, dt {data.dt:g}, "
            f"integrator {spec.integrator['name']}, x in [{data.x.min():.3f}, {data.x.max():.3f}], "
            f"{time.perf_counter() - start:.2f} s"
        )
