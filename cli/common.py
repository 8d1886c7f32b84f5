"""Options and helpers shared by the commands: ``--config``, progress, output paths."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from odernn._compat import tomllib
from odernn.checks import did_you_mean, parse_toml, read_small_text
from odernn.errors import SpecError

ARGV: list[str] = []
"""The arguments of the command being run, set by :func:`odernn.cli.app.main`."""
DEBUG = False
"""Whether the command runs with ``--debug`` (set by :func:`odernn.cli.app.main`)."""


def command_line() -> str:
    """The command being run as a shell would take it back, for a report's provenance."""
    return shlex.join(["odernn", *ARGV])


def _load_config(ctx: typer.Context, param: Any, value: Path | None) -> Path | None:
    """Read ``--config FILE.toml`` into the command's defaults; explicit flags still win."""
    if value is None:
        return None
    raw = parse_toml(read_small_text(Path(value), "--config"), f"--config {value}")
    allowed = config_keys(ctx.command.params)
    defaults: dict[str, Any] = {}
    keys: dict[str, str] = {}  # parameter -> the key that set it
    for key, item in raw.items():
        name = key.replace("-", "_")
        if name not in allowed:
            raise SpecError(
                f"--config {value}: unknown key {key!r}{did_you_mean(name, sorted(allowed))}; "
                "allowed: "
                f"{', '.join(sorted(allowed))}"
            )
        if allowed[name] in keys:
            raise SpecError(f"--config {value}: keys {keys[allowed[name]]!r} and {key!r} both "
                            "set one option; give one")
        keys[allowed[name]] = key
        defaults[allowed[name]] = item
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


def config_keys(params: list[Any]) -> dict[str, str]:
    """The keys of ``--config`` (dashes as underscores) -> the parameter each sets: an option's
    long names without the leading dashes (``--step-tolerance``: ``step_tolerance``), an
    argument's name."""
    keys: dict[str, str] = {}
    for param in params:
        if param.name in ("config", "help"):
            continue
        for name in [o for o in param.opts if o.startswith("--")] or [param.name]:
            keys[name.lstrip("-").replace("-", "_")] = param.name
    return keys


CONFIG = typer.Option(
    None,
    "--config",
    is_eager=True,
    callback=_load_config,
    dir_okay=False,
    help="TOML file supplying any option of this command (keys as option names); "
    "flags given on the command line win.",
)
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar or chatter, only results.")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace existing outputs.")


@contextmanager
def drawing(quiet: bool) -> Iterator[Any]:
    """The progress callback of a command (:class:`odernn.progress.Display` on stderr, closed
    when the command ends however it ends), or None with ``quiet``."""
    if quiet:
        yield None
        return
    from odernn.progress import Display

    with Display() as show:
        yield show


def parse_shard(value: str | None) -> tuple[int, int] | None:
    """``"k/n"`` -> ``(k, n)``."""
    if value is None:
        return None
    try:
        k, n = (int(part) for part in value.split("/"))
    except ValueError:
        raise SpecError(f"--shard must look like k/n (e.g. 2/4), got {value!r}") from None
    if n < 1 or not 1 <= k <= n:
        raise SpecError(f"--shard {value}: need 1 <= k <= n")
    return k, n


def parse_sets(items: list[str], flag: str = "--set") -> dict[str, Any]:
    """``KEY=VALUE`` pairs of option ``flag``, VALUE read as TOML (numbers, booleans, lists) or
    else a string."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"{flag} expects KEY=VALUE, got {item!r}")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        except RecursionError:  # tomllib recurses once per level of nesting
            raise SpecError(f"{flag} {key.strip()}: arrays nested too deeply to read") from None
        name = key.strip().replace("-", "_")
        if name in out:
            raise SpecError(f"{flag} {name} is given twice; give it once")
        out[name] = value
    return out
