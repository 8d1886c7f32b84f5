"""``odernn evaluate``: surrogates against the integrators, in a report."""

from __future__ import annotations

from pathlib import Path

import typer

from odernn.cli.app import app
from odernn.cli.common import OVERWRITE, QUIET, command_line, drawing


@app.command(
    epilog="Examples:\n\n"
    "  odernn evaluate runs/lstm runs/esn --data test.h5 -o report\n\n"
    "  odernn evaluate runs/lstm --data test.h5 --train train.h5 -o report  (with the peers)\n\n"
    "  odernn evaluate runs/lstm --data test-ood.h5 -o report-ood --no-work-precision",
)
def evaluate(
    runs: list[Path] = typer.Argument(None, help="Run directories from odernn train "
                                      "(none: integrators only)."),
    data: Path = typer.Option(..., "--data", "-d", help="Test dataset (HDF5).", dir_okay=False),
    train: Path = typer.Option(None, "--train", help="The surrogates' training file (HDF5): "
                               "the peers (SINDy, DMDc) are fitted on it and shown beside "
                               "the surrogates.", dir_okay=False),
    peers: bool = typer.Option(True, "--peers/--no-peers",
                               help="Fit the peers on --train (SINDy needs the peers extra: "
                               "pip install 'odernn[peers]'; DMDc needs numpy only)."),
    output: Path = typer.Option(..., "--output", "-o", help="Report directory to write "
                                "(--overwrite replaces only a previous report)."),
    work_precision: bool = typer.Option(True, "--work-precision/--no-work-precision",
                                        help="Sweep step sizes and tolerances for the "
                                        "work-precision diagram."),
    resonance: bool = typer.Option(True, "--resonance/--no-resonance",
                                   help="Check each surrogate's resonance curve (a nonlinear "
                                   "system: its frequency response against the integrator)."),
    chaos: bool = typer.Option(True, "--chaos/--no-chaos",
                               help="Estimate the test set's Lyapunov exponents and the "
                               "reference's trust horizon (systems without a closed form) and "
                               "every method's steady-state statistics."),
    bifurcation: bool = typer.Option(True, "--bifurcation/--no-bifurcation",
                                     help="Draw each surrogate's bifurcation diagram against "
                                     "the integrator's (a nonlinear system under one cosine)."),
    title: str = typer.Option("odernn evaluation report", "--title", help="Report title."),
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
) -> None:
    """Roll out every integrator and surrogate on a test set and write a report."""
    from odernn.assess.document import check_report_dir, check_title
    from odernn.assess.evaluate import DEFAULT_INTEGRATORS, load_runs
    from odernn.assess.evaluate import evaluate as run
    from odernn.assess.inputs import check_evaluation, check_test, harmonics, member_counts
    from odernn.assess.peers import PEERS
    from odernn.assess.report import write_report
    from odernn.data.integrators import INTEGRATORS
    from odernn.data.store import open_trajectories, read_trajectories
    from odernn.learn.rundir import name_runs

    check_title(title)
    check_report_dir(output, overwrite, inputs=[data, *([train] if train else []), *(runs or [])])
    named = name_runs(runs or [], reserved=[*INTEGRATORS, *PEERS])  # a run called dmdc: dmdc-2
    surrogates = load_runs(named)
    with open_trajectories(data) as f:  # what the evaluation holds, before the set is read
        first = f.read(slice(0, 1))
        check_test(first, f"test set {data}")  # its kind and grid: said before the memory
        check_evaluation(f.n, f.n_steps, first.system, len(DEFAULT_INTEGRATORS),
                         member_counts(surrogates), train is not None and peers,
                         work_precision, harmonics=harmonics(first))
        test = f.read()
    training = read_trajectories(train) if train is not None and peers else None
    with drawing(quiet) as show:
        result = run(test, surrogates, work_precision=work_precision, resonance=resonance,
                     chaos=chaos, bifurcation=bifurcation, progress=show, data_path=data,
                     train_data=training, train_path=train, peers=None if peers else False)
    result.info["command"] = command_line()
    path = write_report(result, output, runs=named, title=title, overwrite=overwrite)
    typer.echo(format_metrics(result.metrics))
    typer.echo(f"report: {path / 'report.html'}")


def format_metrics(metrics: dict[str, dict[str, float]]) -> str:
    """The headline table: NRMSE and RMSE of x and v over the horizon, divergences."""
    keys = ("nrmse_x", "rmse_x", "nrmse_v", "nrmse_x_first_tenth", "n_diverged")
    lines = [f"{'method':<22}" + "".join(f"{k:>22}" for k in keys)]
    for name, m in metrics.items():
        cells = "".join(f"{m.get(k, float('nan')):>22.4g}" for k in keys)
        lines.append(f"{name:<22}{cells}")
    return "\n".join(lines)
