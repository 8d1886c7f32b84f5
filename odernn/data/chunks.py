"""How a dataset's arrays are cut into HDF5 chunks, and the disk a file of them takes: the
writer's layout (:mod:`odernn.data.writer`), which readers follow to read whole chunks."""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path

from odernn.errors import OutputError

CHUNK_BYTES = 256 << 10
"""Target chunk size: whole trajectories, at least one, up to about this many bytes."""
MAX_CHUNK_BYTES = 1 << 20
"""Chunks never exceed this: a longer trajectory is split in time."""


def chunk_shape(n: int, row: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """Chunk shape for ``(n, *row)``: whole rows, about CHUNK_BYTES, never over MAX_CHUNK_BYTES."""
    row_bytes = math.prod(row) * itemsize
    if row_bytes > MAX_CHUNK_BYTES:
        return (1, MAX_CHUNK_BYTES // itemsize)
    return (max(1, min(n, CHUNK_BYTES // row_bytes)), *row)


def file_bytes(n: int, T: int, arrays: int, itemsize: int,
               params: Mapping[str, tuple[int, ...]]) -> int:
    """What a file of ``arrays`` datasets ``(n, T)`` and ``params`` takes at most: every chunk
    allocated whole (a last, partial one too), ``/t``, the trajectory index and one
    ``/component`` index per parameter width."""
    def chunked(shape: tuple[int, ...], size: int) -> int:
        chunks = chunk_shape(n, shape, size)
        return math.prod(-(-s // c) * c for s, c in zip((n, *shape), chunks, strict=True)) * size

    widths = {math.prod(shape) for shape in params.values() if shape}
    return 8 * (T + n + sum(widths)) + arrays * chunked((T,), itemsize) + sum(
        chunked(shape, 8) for shape in params.values())


def check_space(path: Path, need: int) -> None:
    """Refuse up front a file of ``need`` bytes (and 1 MiB of structure) the disk cannot
    hold: a write that fails half way through is cleaned up too, but this says why before
    any work."""
    directory, need = path.parent if str(path.parent) else Path("."), need + (1 << 20)
    free = (fs := os.statvfs(directory)).f_bavail * fs.f_frsize
    if fs.f_blocks and need > free:  # f_blocks 0: a pseudo file system that reports none
        raise OutputError(f"{path}: not enough disk space: the file needs about "
                          f"{need / 2**20:.1f} MiB, {directory} has {free / 2**20:.1f} MiB free"
                          f"{_left_beside(path)}")


def _left_beside(path: Path) -> str:
    """What unfinished copies of ``path`` a killed writer left beside it take (SIGKILL runs
    no clean-up), for the disk check's message; ``""`` when none."""
    left = re.compile(rf"\.{re.escape(path.name[:32])}.*\.tmp-\d+-[0-9a-f]+")
    with contextlib.suppress(OSError):
        found = [p for p in (path.parent if str(path.parent) else Path(".")).iterdir()
                 if left.fullmatch(p.name) and f".tmp-{os.getpid()}-" not in p.name
                 and p.is_file() and not p.is_symlink()]
        if found:
            size = sum(p.stat().st_size for p in found) / 2**20
            return (f"; {len(found)} unfinished file(s) of a killed write beside it take "
                    f"{size:.1f} MiB ({found[0].name}{', ...' if len(found) > 1 else ''}): "
                    "remove them if no odernn command writes there")
    return ""
