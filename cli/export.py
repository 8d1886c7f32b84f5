"""``odernn export``: a trained surrogate's one-step function as an ONNX file."""

from __future__ import annotations

from pathlib import Path

import typer

from odernn.cli.app import app
from odernn.cli.common import OVERWRITE, QUIET


@app.command(
    epilog="Examples:\n\n"
    "  odernn export runs/lstm -o lstm.onnx\n\n"
    "  odernn export runs/esn/best.pt -o esn.onnx --overwrite   (replace a previous export)",
)
def export(
    run: Path = typer.Argument(..., help="Run directory from odernn train (its best.pt), or a "
                               "checkpoint file."),
    output: Path = typer.Option(..., "--output", "-o", help="ONNX file to write (--overwrite "
                                "replaces only an ONNX file odernn exported).", dir_okay=False),
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
) -> None:
    """Export a surrogate's one-step function to ONNX: physical units in and out, the
    normalisation folded in, for any runtime (onnxruntime, ...); docs/export.md has the
    inputs and outputs. Needs the export extra: pip install "odernn[export]"."""
    from odernn.atomic import check_output
    from odernn.learn.export import export_onnx, onnx_modules
    from odernn.learn.models import load_surrogate
    from odernn.learn.onestep import input_names, output_names

    onnx_modules()  # the extra, before anything else
    check_output(output, "model", overwrite=overwrite, inputs=[run])
    model = load_surrogate(run)
    path = export_onnx(model, output, overwrite=overwrite, inputs=(run,))
    if quiet:
        return
    hybrid = f", hybrid with prior {model.layout.prior_label}" if model.layout.prior else ""
    typer.echo(f"{model.family} ({model.target} mode, dt = {model.layout.dt:g}{hybrid}) -> "
               f"{path}")
    typer.echo(f"inputs:  {', '.join(input_names(model.layout))}")
    typer.echo(f"outputs: {', '.join(output_names(model.layout))}")
