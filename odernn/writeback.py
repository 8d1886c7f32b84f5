"""Starting a file's write to disk early, for a file written in many blocks.

A file written block by block (:class:`odernn.data.writer.TrajectoryWriter`) is fsynced
once, when complete (:mod:`odernn.atomic`). The kernel keeps what was written in memory
until then (unless a tenth of the memory, by default, or half a minute's writes wait), so
the disk idled while the blocks were computed and the fsync waited for the whole file.
Asking for each block's pages to be written as soon as they are lets the disk work beside
the computation (docs/performance.md). It promises nothing about what survives a crash:
the fsync before the rename still does that.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path

SYNC_FILE_RANGE_WRITE = 2
"""Start writing the range's changed pages, wait for none of them (``sync_file_range(2)``)."""


def start_writeback(path: Path | str) -> bool:
    """Ask the kernel to start writing every changed page of ``path`` to disk, without
    waiting (Linux's ``sync_file_range``). Whether it was asked: False where the call does
    not exist (not Linux) or failed, which loses nothing (the final fsync writes them all)."""
    call = _sync_file_range()
    if call is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return call(fd, 0, 0, SYNC_FILE_RANGE_WRITE) == 0  # from byte 0 to the end
    finally:
        os.close(fd)


@functools.cache
def _sync_file_range() -> Callable[..., int] | None:
    """``sync_file_range(fd, offset, nbytes, flags)`` from the C library, or None."""
    call = getattr(ctypes.CDLL(None), "sync_file_range", None) if sys.platform == "linux" else None
    if call is not None:
        call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
        call.restype = ctypes.c_int
    return call
