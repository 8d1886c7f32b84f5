"""The file's chunks and the disk check before a write (odernn/data/chunks.py): chunks of whole
trajectories of about CHUNK_BYTES, never over MAX_CHUNK_BYTES, and the estimate of a file's
size against the disk's free space."""

from __future__ import annotations

import numpy as np
import pytest

from odernn.data import chunks
from odernn.data.writer import TrajectoryWriter


@pytest.mark.parametrize("steps, dtype", [(50_000, "float64"), (100_000, "float32")])
def test_a_row_between_a_quarter_and_one_mib_is_a_chunk_of_its_own(tmp_path, steps, dtype):
    """CHUNK_BYTES // row_bytes is 0 there; the chunk is one whole trajectory."""
    assert chunks.chunk_shape(3, (steps,), np.dtype(dtype).itemsize) == (1, steps)
    t = 0.01 * np.arange(steps)
    with TrajectoryWriter(tmp_path / "f.h5", t=t, n=3, datasets=("x",), dtype=dtype) as w:
        w.write(0, {"x": np.ones((3, steps))})


def test_the_disk_estimate_counts_scalar_parameters(tmp_path):
    """200000 trajectories' scalar parameters take 1.6 MB each."""
    n, T = 200_000, 2
    params = {"eta": (), "omega": ()}
    path = tmp_path / "f.h5"
    with TrajectoryWriter(path, t=0.01 * np.arange(T), n=n, datasets=("x",), params=params,
                          attrs={}) as w:
        w.write(0, {"x": np.ones((n, T))}, {"eta": np.ones(n), "omega": np.ones(n)})
    need = chunks.file_bytes(n, T, 1, 8, params) + (1 << 20)
    assert path.stat().st_size <= need


def test_a_file_system_that_reports_no_blocks_is_not_refused(tmp_path, monkeypatch):
    """/proc-like or some FUSE file systems report f_blocks = 0 (and 0 free)."""
    class Pseudo:
        f_bavail, f_frsize, f_blocks = 0, 4096, 0

    monkeypatch.setattr(chunks.os, "statvfs", lambda d: Pseudo)
    chunks.check_space(tmp_path / "data.h5", 10 << 20)


def test_a_disk_with_room_is_not_refused(tmp_path, monkeypatch):
    """Free space is f_bavail blocks of f_frsize bytes."""
    class Roomy:
        f_bavail, f_frsize, f_blocks = 5000, 4096, 1 << 20  # 19.5 MiB free

    monkeypatch.setattr(chunks.os, "statvfs", lambda d: Roomy)
    chunks.check_space(tmp_path / "data.h5", 10 << 20)
    with pytest.raises(Exception, match="not enough disk space"):
        chunks.check_space(tmp_path / "data.h5", 19 << 20)


@pytest.mark.parametrize("n, steps, dtype", [(2000, 50, "float32"), (300, 1000, "float64"),
                                             (1, 200_000, "float64"), (1, 400_000, "float32"),
                                             (1, 200_000, "float32")])
def test_chunks_are_about_the_target_and_never_over_the_most(n, steps, dtype):
    """Whole rows up to about CHUNK_BYTES; a row over MAX_CHUNK_BYTES is split
    into pieces of MAX_CHUNK_BYTES; the item size of the stored dtype counts."""
    size = np.dtype(dtype).itemsize
    shape = chunks.chunk_shape(n, (steps,), size)
    row = steps * size
    if row > chunks.MAX_CHUNK_BYTES:
        assert shape == (1, chunks.MAX_CHUNK_BYTES // size)
    else:
        assert shape[1] == steps
        assert np.prod(shape) * size <= max(chunks.CHUNK_BYTES, row)
        assert shape[0] == n or np.prod(shape) * size > chunks.CHUNK_BYTES - row
