"""``odernn simulate``, ``odernn inspect``, ``odernn merge``: datasets in, datasets out."""

from __future__ import annotations

from pathlib import Path

import typer

from odernn.atomic import check_output
from odernn.checks import counted
from odernn.cli.app import app
from odernn.cli.choices import Dtype, Integrator, SystemName, complete_spec, plain
from odernn.cli.common import CONFIG, OVERWRITE, QUIET, drawing, parse_sets, parse_shard
from odernn.data.spec import builtin_names, load_spec
from odernn.data.spec_settings import with_settings
from odernn.errors import SpecError


@app.command(
    epilog="Examples:\n\n"
    "  odernn simulate train -o train.h5\n\n"
    "  odernn simulate my-spec.toml -o data.h5 --n 10000 --integrator rk4\n\n"
    "  odernn simulate train -o duffing.h5 --system duffing --set alpha=-1 --set beta=1\n\n"
    "  odernn simulate train -o part1.h5 --shard 1/2   (one shard per batch job)\n\n"
    "  odernn simulate train -o part2.h5 --shard 2/2   (then: odernn merge part*.h5 -o all.h5)",
)
def simulate(
    ctx: typer.Context,
    spec: str = typer.Argument(
        ..., help="A spec file (.toml) or a built-in name: " + ", ".join(builtin_names()) + ".",
        autocompletion=complete_spec),
    output: Path = typer.Option(..., "--output", "-o", help="HDF5 file to write "
                                "(--overwrite replaces only an odernn dataset).", dir_okay=False),
    n: int = typer.Option(None, "--n", help="Number of trajectories (overrides the spec)."),
    n_steps: int = typer.Option(
        None, "--n-steps", help="Time points per trajectory, at the spec's dt, also where "
        "the spec gives t_end (overrides it)."
    ),
    seed: int = typer.Option(None, "--seed", help="Random seed (overrides the spec)."),
    integrator: Integrator = typer.Option(None, "--integrator",
                                          help="The integrator (overrides the spec; one "
                                          "other than the spec's drops the spec's options for "
                                          "it, such as scipy's method and tolerances)."),
    dtype: Dtype = typer.Option(None, "--dtype", help="Stored precision (overrides the spec)."),
    system: SystemName = typer.Option(None, "--system", help="Simulate this system instead "
                                      "(its parameters by --set; see `odernn systems`)."),
    sets: list[str] = typer.Option([], "--set", help="Any key of the spec as KEY=VALUE, a "
                                   "number or [low, high] (e.g. --set beta=[0.5,1]; the "
                                   "integrator's as --set rtol=1e-10); repeatable. n_steps "
                                   "keeps the spec's dt (set t_end too to keep its end)."),
    shard: str = typer.Option(
        None, "--shard", help="Write only shard k of n (k/n, 1-based); n up to the number of "
        "trajectories (scipy: of its blocks, ceil(n/8) but at least 64 trajectories each)."
    ),
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
    config: Path = CONFIG,
) -> None:
    """Simulate a dataset of oscillator trajectories into an HDF5 file."""
    from odernn.data.simulate import shard_rows
    from odernn.data.simulate import simulate as run

    flags = {k: v for k, v in {"integrator": plain(integrator), "n": n, "n_steps": n_steps,
                               "seed": seed, "dtype": plain(dtype)}.items() if v is not None}
    given = parse_sets(sets)
    typed = {k for k in flags if getattr(ctx.get_parameter_source(k), "name", "") != "DEFAULT_MAP"}
    for key in sorted(typed & given.keys()):  # one value per key, as train says
        raise SpecError(f"--set {key}={given[key]!r} and --{key.replace('_', '-')} both set "
                        f"{key}; give one")
    # --set wins over a --config file's value, as a flag on the command line does
    parsed = with_settings(load_spec(spec), system=plain(system), sets={**flags, **given})
    inputs = [Path(spec) if Path(spec).exists() else None, config]
    check_output(output, "dataset", overwrite=overwrite, inputs=inputs)
    shard_kn = parse_shard(shard)
    start, stop = shard_rows(parsed, shard_kn)
    with drawing(quiet) as show:
        run(parsed, output, overwrite=overwrite, shard=shard_kn, progress=show)
    if not quiet:
        typer.echo(
            f"wrote {output}: {counted(stop - start, 'trajectory', 'trajectories')} x "
            f"{parsed.n_steps} points "
            f"(dt {parsed.dt:g}, integrator {parsed.integrator['name']})"
        )


@app.command(epilog="Example:\n\n  odernn inspect train.h5")
def inspect(
    file: Path = typer.Argument(..., help="An odernn HDF5 dataset.", dir_okay=False),
) -> None:
    """Show a dataset's schema, provenance, shapes and parameter ranges (validates it too)."""
    from odernn.data.schema import DIGEST_EXCLUDED_ATTRS
    from odernn.data.store import open_trajectories

    lines: list[str] = []  # printed once the file is checked: no half report before an error
    say = lines.append
    with open_trajectories(file) as f:
        attrs = f.attrs
        say(
            f"{file}: {attrs['schema']} v{attrs['schema_version']}, "
            f"created {attrs.get('created', '?')} by odernn {attrs.get('odernn_version', '?')}"
        )
        say(f"  name        {attrs.get('name', '?')}  (kind: {attrs.get('kind', '?')})")
        equation = f"  {attrs['equation']}" if "equation" in attrs else ""
        say(f"  system      {attrs.get('system', '?')}{equation}")
        if attrs.get("kind") == "oscillator":
            say(f"  forcing     {attrs.get('forcing', '?')}")
        if "source" in attrs:  # an imported file: where from, and how it was mapped
            for label, key in (("source", "source"), ("format", "source_format"),
                               ("sha256", "source_sha256"), ("mapping", "import_mapping"),
                               ("times", "times"), ("velocity", "velocity"),
                               ("split", "trajectories"), ("notes", "import_notes")):
                if key != "times" or key in attrs:  # files imported before it was recorded
                    say(f"  {label:<11} {attrs.get(key, '?')}")
        else:
            say("  integrator  "
                       f"{attrs.get('integrator_options', attrs.get('integrator', '?'))}")
            say(f"  seed        {attrs.get('seed', '?')}")
        say(
            f"  grid        {f.n_steps} points, dt {attrs['dt']:g}, t in [{f.t[0]:g}, {f.t[-1]:g}]"
        )
        ranges = f.ranges()  # streamed block by block: bounded memory, interruptible
        f.check_parts()  # the same consistency checks as train and evaluate make
        for name in f.names:
            lo, hi = ranges[name]
            say(f"  {name:<13} {(f.n, f.n_steps)} {f.dtype}, range [{lo:.4g}, {hi:.4g}]")
        for name in f.params_names:
            lo, hi = ranges[f"params/{name}"]
            say(f"  {'params/' + name:<13} {f.param_shape(name)}, range "
                       f"[{lo:.4g}, {hi:.4g}]")
        say(f"  content digest: {f.content_digest()}  (all data and attributes but "
                   f"{', '.join(DIGEST_EXCLUDED_ATTRS)}; equal digests, equal content)")
    typer.echo("\n".join(lines))


@app.command(
    epilog="Examples:\n\n  odernn merge part1.h5 part2.h5 -o all.h5\n\n"
    "  odernn merge part*.h5 -o all.h5 --virtual"
)
def merge(
    shards: list[Path] = typer.Argument(..., help="Shard files written with --shard k/n."),
    output: Path = typer.Option(..., "--output", "-o", help="Merged HDF5 file.", dir_okay=False),
    virtual: bool = typer.Option(
        False, "--virtual", help="Write an HDF5 virtual dataset that refers to the shards."
    ),
    overwrite: bool = OVERWRITE,
    quiet: bool = QUIET,
) -> None:
    """Join the shards of one sharded simulation into one file, equal to a single run."""
    from odernn.data.merge import merge_files

    check_output(output, "dataset", overwrite=overwrite, inputs=shards)
    with drawing(quiet) as show:
        merge_files(list(shards), output, virtual=virtual, overwrite=overwrite, progress=show)
    if not quiet:
        typer.echo(f"wrote {output} from {len(shards)} shards")


@app.command(epilog="Example:\n\n  odernn systems")
def systems() -> None:
    """List the systems: their equations, parameters (meaning, valid range) and closed form."""
    from odernn.data.systems import SYSTEMS

    for entry in SYSTEMS.values():
        closed = "closed form: exact" if entry.closed_form else "no closed form: scipy reference"
        typer.echo(f"{entry.name}: {entry.equation}  ({closed})")
        typer.echo(f"  {entry.description}")
        for p in entry.parameters:
            typer.echo(f"  {p.name:<6} {p.meaning}, in {p.range}")
