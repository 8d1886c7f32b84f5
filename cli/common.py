"""Options and helpers shared by the commands: ``--config``, progress, output paths."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from odernn._compat import tomllib
from odernn.checks import did_you_mean
from odernn.errors import SpecError


def _load_config(ctx: typer.Context, param: Any, value: Path | None) -> Path | None:
    """Read ``--config FILE.toml`` into the command's defaults; explicit flags still win."""
    if value is None:
        return None
    try:
        raw = tomllib.loads(read_config_text(Path(value)))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"--config {value}: {exc}") from None
    allowed = {p.name for p in ctx.command.params if p.name not in ("config", "help")}
    defaults: dict[str, Any] = {}
    for key, item in raw.items():
        name = key.replace("-", "_")
        if name not in allowed:
            raise SpecError(
                f"--config {value}: unknown key {key!r}{did_you_mean(name, sorted(allowed))}; "
                "allowed: "
                f"{', '.join(sorted(allowed))}"
            )
        defaults[name] = item
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


MAX_CONFIG_BYTES = 1 << 20
"""A --config file larger than this (1 MiB) is refused: options are a few lines."""


def read_config_text(path: Path) -> str:
    """The text of a ``--config`` file, refusing anything but a regular file of at most
    :data:`MAX_CONFIG_BYTES` without reading more than that (``/dev/zero`` is endless; a FIFO
    is opened without waiting for a writer)."""
    import os
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise SpecError(f"--config: file {path} not found") from None
    except OSError as exc:
        raise SpecError(f"--config {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) \
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file"
            raise SpecError(f"--config {path}: {kind}, not a regular file; give a TOML file")
        try:
            data = fh.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            raise SpecError(f"--config {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise SpecError(f"--config {path}: larger than {MAX_CONFIG_BYTES >> 20} MiB; a config "
                        f"file holds a few options")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"--config {path}: not UTF-8 text ({exc})") from None


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


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs, VALUE read as TOML (numbers, booleans, lists) or else a string."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        name = key.strip().replace("-", "_")
        if name in out:
            raise SpecError(f"--set {name} is given twice; give it once")
        out[name] = value
    return out
