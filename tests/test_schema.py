"""The trajectory schema's rules (odernn/data/schema.py): required and reserved attributes, the
scales' names, the grid's step and its tolerance far from zero, and what is recognised as HDF5
and as odernn's own."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from test_store import make_data

from odernn.data.schema import grid_step, off_grid, same_step, step_slack
from odernn.data.store import content_digest, open_trajectories
from odernn.data.writer import TrajectoryWriter
from odernn.errors import DataError


def test_a_file_without_created_is_refused_by_name(good):
    # "created" is required: a file lacking it is a one-line DataError, not a KeyError
    with h5py.File(good, "r+") as h:
        del h.attrs["created"]
    with pytest.raises(DataError, match=r"missing attribute\(s\) 'created'"):
        open_trajectories(good)


def test_callers_may_not_set_creator(tmp_path):
    with pytest.raises(ValueError, match="'creator' is written by the store itself"):
        TrajectoryWriter(tmp_path / "c.h5", t=np.arange(5) * 0.1, n=1, datasets=("x",),
                         params={}, attrs={"creator": "someone else"})


def test_dimension_labels_are_not_content(good):
    # labelling the dimensions (as netCDF tools do) changes where, not what: same digest
    before = content_digest(good)
    with h5py.File(good, "r+") as h:
        h["x"].dims[0].label = "trajectory"
        assert "DIMENSION_LABELS" in h["x"].attrs
    assert content_digest(good) == before


def test_one_parameter_width_gets_the_plain_component_scale(good):
    with h5py.File(good, "r") as h:
        assert "component" in h and not any(k.startswith("component_") for k in h)
        assert h["params/amplitude"].dims[1][0] == h["component"]


@pytest.mark.parametrize("name", ["component_0", "component_", "component_03"])
def test_a_member_that_is_not_a_component_scale_is_refused(good, name):
    with h5py.File(good, "r+") as h:
        h[name] = np.arange(3, dtype=np.int64)
    with pytest.raises(DataError, match=f"unexpected member.*{name}"):
        open_trajectories(good)


def test_a_simulated_grid_step_is_exactly_its_second_point(tmp_path):
    # t = i dt: dt is t[1] exactly, not the mean step's shortest decimal (ulps off for 1/7)
    dt = 1 / 7
    t = dt * np.arange(50)
    assert grid_step(t) == dt
    arrays, params = make_data(n=2, steps=50)
    with TrajectoryWriter(tmp_path / "s.h5", t=t, n=2, datasets=("x",), params={}) as w:
        w.write(0, {"x": arrays["x"]}, {})
    with h5py.File(tmp_path / "s.h5", "r") as h:
        assert h.attrs["dt"] == dt


def test_steps_within_the_slack_of_a_clock_far_from_zero_are_one():
    # an exact grid at 2**30 s: the slack is t's rounding over the span, 4 eps |t| / (T - 1)
    t = 2.0 ** 30 + 0.5 * np.arange(1001)
    slack = step_slack(t)
    assert slack > 0
    assert same_step(0.5, 0.5 + 1e-9, slack)
    assert not same_step(0.5, 0.5 + 1e-9)


def test_a_1_percent_jitter_far_from_zero_is_off_grid():
    # 1 ms clock at Unix-epoch seconds: t's rounding there is ~1.5e-6 s; a 1e-5 s jitter is off
    t = 1.7e9 + 1e-3 * np.arange(100)
    t[50] += 1e-5
    off = off_grid(t)
    assert off[49] and off[50] and off.sum() == 2


def test_an_infinite_step_puts_every_step_off_grid():
    assert off_grid(np.arange(5.0), dt=np.inf).all()


def test_an_infinite_time_is_off_grid_and_refused_in_memory():
    """A last time of inf was on the grid (its rounding's slack, 4 eps inf, was inf too):
    Trajectories took it, and dt was inf; evaluate then failed far from the cause."""
    from odernn.data.trajectories import Trajectories
    from odernn.errors import DataError

    assert off_grid(np.array([0.0, 0.1, np.inf])).tolist() == [False, True]
    with pytest.raises(DataError):
        Trajectories(np.array([0.0, 0.1, np.inf]), np.zeros((2, 3)))


def test_an_hdf5_file_after_a_512_byte_user_block_is_hdf5():
    # MATLAB v7.3 .mat files: a 512-byte user block, then the HDF5 signature
    import io

    from odernn.data.schema import HDF5_SIGNATURE, hdf5_at
    mat = b"MATLAB 7.3 MAT-file".ljust(512, b" ") + HDF5_SIGNATURE + bytes(600)
    assert hdf5_at(io.BytesIO(mat))
    assert not hdf5_at(io.BytesIO(b"t,x\n0,1\n" * 200))


def test_a_fixed_length_schema_attribute_is_still_odernns(good):
    from odernn.data.schema import dataset_reason
    with h5py.File(good, "r+") as h:
        h.attrs["schema"] = np.bytes_(b"odernn.trajectories")  # fixed-length: reads as bytes
    assert dataset_reason(good) is None
    with h5py.File(good, "r+") as h:
        h.attrs["schema"] = np.bytes_(b"other.schema")
    assert dataset_reason(good) == "an HDF5 file of schema 'other.schema'"
