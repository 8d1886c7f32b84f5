"""Starting a file's write to disk early (odernn/writeback.py), and the trajectory writer
asking for it after every block."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from test_store import PARAMS, grid, make_data, rows

from odernn import writeback
from odernn.data import writer
from odernn.data.store import read_trajectories

linux = pytest.mark.skipif(sys.platform != "linux", reason="sync_file_range is Linux's")


@linux
def test_the_kernel_is_asked_for_a_file_being_written(tmp_path):
    path = tmp_path / "f.bin"
    with open(path, "wb") as fh:
        fh.write(b"\0" * (1 << 20))
        fh.flush()
        assert writeback.start_writeback(path)  # pages still dirty; the open handle holds it


def test_nothing_is_asked_where_the_file_is_not(tmp_path):
    assert not writeback.start_writeback(tmp_path / "missing.bin")


def test_nothing_is_asked_without_the_call(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    path.write_bytes(b"\0" * 4096)
    writeback._sync_file_range.cache_clear()
    monkeypatch.setattr(sys, "platform", "darwin")
    try:
        assert not writeback.start_writeback(path)
    finally:
        writeback._sync_file_range.cache_clear()


def test_the_writer_asks_after_every_block_for_its_temporary_file(tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(writer, "start_writeback",
                        lambda p: asked.append(p) or writeback.start_writeback(p))
    arrays, params = make_data()
    path = tmp_path / "o.h5"
    with writer.TrajectoryWriter(path, t=grid(), n=7, params=PARAMS) as w:
        for lo, hi in ((0, 3), (3, 5), (5, 7)):
            w.write(lo, rows(arrays, lo, hi), rows(params, lo, hi))
        assert len(asked) == 3 and set(asked) == {w._out.tmp} and not path.exists()
    assert not asked[0].exists()  # renamed into place
    np.testing.assert_array_equal(read_trajectories(path).x, arrays["x"])
