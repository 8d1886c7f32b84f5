"""The trajectory writer (odernn/data/writer.py) refuses what the reader would not read back,
before the file exists, and writes no row short of a point."""

from __future__ import annotations

import numpy as np
import pytest
from test_store import PARAMS, T, grid, make_data, rows, write

from odernn.data.schema import MAX_ELEMENTS
from odernn.data.store import open_trajectories
from odernn.data.writer import TrajectoryWriter
from odernn.errors import OutputError


@pytest.fixture
def data() -> tuple[dict, dict]:
    return make_data()


def test_n_true_is_refused(tmp_path):
    with pytest.raises(ValueError, match="n must be an integer >= 1, got True"):
        TrajectoryWriter(tmp_path / "o.h5", t=grid(), n=True)


def test_too_many_values_are_refused_before_the_file_exists(tmp_path):
    n = MAX_ELEMENTS // T + 1
    with pytest.raises(OutputError, match="values allowed per dataset"):
        TrajectoryWriter(tmp_path / "o.h5", t=grid(), n=n)
    assert list(tmp_path.iterdir()) == []


def test_a_negative_start_is_refused(tmp_path, data):
    arrays, params = data
    with pytest.raises(ValueError, match="outside"), \
            TrajectoryWriter(tmp_path / "o.h5", t=grid(), n=7, params=PARAMS) as w:
        w.write(-2, rows(arrays, 0, 2), rows(params, 0, 2))
    assert list(tmp_path.iterdir()) == []


def test_unwritten_values_are_nan_not_zero(tmp_path, data):
    """Defence in depth: a value never written reads as NaN, never as a plausible 0."""
    arrays, params = data
    with pytest.raises(ValueError, match="never written"), \
            TrajectoryWriter(tmp_path / "o.h5", t=grid(), n=7, params=PARAMS) as w:
        w.write(0, rows(arrays, 0, 3), rows(params, 0, 3))
        assert np.isnan(w._out.file["x"].fillvalue)


def test_a_row_short_of_its_last_point_is_never_written(tmp_path, data):
    arrays, params = data
    with pytest.raises(ValueError, match="never written"), \
            TrajectoryWriter(tmp_path / "o.h5", t=grid(), n=7, params=PARAMS) as w:
        w.write(0, {k: a[:, :25] for k, a in arrays.items()}, params, col=0)
        w.write(0, {k: a[:, 25:T - 1] for k, a in arrays.items()}, params, col=25)
    assert list(tmp_path.iterdir()) == []


def test_overlapping_blocks_cover_their_union(tmp_path, data):
    path = write(tmp_path / "o.h5", *data, blocks=[(0, 7), (2, 3)])
    with open_trajectories(path) as f:
        np.testing.assert_array_equal(f.read().x, data[0]["x"])


@pytest.mark.parametrize("kwargs, message", [
    ({"params": {"a/b": ()}}, "not a plain HDF5 name"),
    ({"params": {"w": (0,)}}, "K >= 1"),
    ({"attrs": {"dt": 1.0}}, "reserved"),
    ({"attrs": {"n_trajectories": 3}}, "reserved"),
    ({"attrs": {"mixed": [1, "a"]}}, "only numbers or only strings"),
])
def test_writer_refuses_what_the_reader_would_not_read_back(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrajectoryWriter(tmp_path / "o.h5", t=grid(), n=7, **kwargs)
