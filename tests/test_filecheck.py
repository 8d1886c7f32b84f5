"""What opening a trajectory file refuses before reading a value (odernn/data/filecheck.py):
its header, its layout and storage (a missing chunk, a contiguous dataset without its bytes,
chunks over the read limit, a virtual merge of a shard with a missing chunk), its grid."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from test_store import DT, N, T, forged_file, write

from odernn.data.merge import merge_files
from odernn.data.store import open_trajectories
from odernn.errors import DataError


def refused(path, message, named=None):
    with pytest.raises(DataError, match=message) as info:
        open_trajectories(path)
    assert str(info.value).startswith(f"{named or path}: ")


def test_missing_datasets_attribute_is_one_line(good):
    with h5py.File(good, "r+") as h:
        del h.attrs["datasets"]
    refused(good, r"missing attribute\(s\) 'datasets'")


@pytest.mark.parametrize("attr, value, message", [
    ("n_trajectories", 0, r"empty \(0 trajectories\)"),
    ("n_steps", 1, r"1 point\(s\) have no step"),
    ("n_steps", 0, r"0 point\(s\) have no step"),
    ("n_trajectories", True, "'n_trajectories' is True; expected an integer"),
    ("created", 20260101, "'created' is 20260101; expected a string"),
    ("odernn_version", 1.0, "'odernn_version' is 1.0; expected a string"),
    ("dt", 0.0, "'dt' is 0.0; expected a finite number > 0"),
    ("dt", np.inf, "'dt' is inf; expected a finite number > 0"),
    ("datasets", ["x", "x", "v", "F"], "expected distinct names"),
])
def test_bad_header_values_are_refused_by_name(good, attr, value, message):
    with h5py.File(good, "r+") as h:
        h.attrs[attr] = value
    refused(good, message)


def test_unknown_dataset_name_is_refused(good):
    with h5py.File(good, "r+") as h:
        h.attrs["datasets"] = ["x", "v", "F", "y"]
        h["y"] = np.zeros((N, T))
    refused(good, r"attribute 'datasets' is .*expected distinct names among")


def test_params_as_a_dataset_is_one_line(good):
    with h5py.File(good, "r+") as h:
        del h["params"]
        h["params"] = np.zeros(N)
    refused(good, "'/params' is a dataset")


def test_float16_is_refused(good):
    with h5py.File(good, "r+") as h:
        for k in ("x", "v", "F"):
            a = h[k][()]
            del h[k]
            h[k] = a.astype(np.float16)
    refused(good, "dataset 'x' has dtype float16; expected float32 or float64")


def test_chunks_over_the_read_limit_are_refused(tmp_path):
    path = forged_file(tmp_path / "big-chunks.h5", 2000, 5000, (2000, 5000))
    refused(path, r"'x' is stored in chunks of 80000000 bytes")


def test_a_missing_chunk_is_refused(good):
    with h5py.File(good, "r+") as h:
        a = h["x"][()]
        del h["x"]
        d = h.create_dataset("x", shape=(N, T), dtype="f8", chunks=(1, T), fillvalue=0.0)
        d[: N - 1] = a[: N - 1]  # the last row's chunk is never written: reads as zeros
    refused(good, rf"only {N - 1} of its {N} chunks hold data")


def test_contiguous_dataset_without_its_bytes_is_refused(good):
    with h5py.File(good, "r+") as h:
        del h["x"]
        h.create_dataset("x", shape=(N, T), dtype="f8")  # contiguous, never written
    refused(good, rf"'x' declares {N * T * 8} bytes but stores 0")


def test_virtual_merge_of_a_shard_with_a_missing_chunk_is_refused(tmp_path, data):
    arrays, params = data
    (tmp_path / "s").mkdir()
    parts = []
    for k, (lo, hi) in enumerate([(0, 3), (3, N)], 1):
        attrs = {"seed": 3, "shard_index": k, "shard_count": 2, "row_start": lo,
                 "row_stop": hi, "n_total": N}
        parts.append(write(tmp_path / "s" / f"p{k}.h5", {a: v[lo:hi] for a, v in arrays.items()},
                           {a: v[lo:hi] for a, v in params.items()}, attrs=attrs))
    out = merge_files(parts, tmp_path / "s" / "merged.h5", virtual=True)
    with h5py.File(parts[1], "r+") as h:
        a = h["x"][()]
        del h["x"]
        d = h.create_dataset("x", shape=a.shape, dtype="f8", chunks=(1, T), fillvalue=0.0)
        d[:-1] = a[:-1]
    refused(out, r"'x' declares shape \(4, 50\) but only 3 of its 4 chunks hold data",
            named=parts[1])


def test_x_and_F_without_v(tmp_path, data):
    arrays, params = data
    path = write(tmp_path / "xf.h5", {"x": arrays["x"], "F": arrays["F"]}, {})
    with open_trajectories(path) as f:
        assert f.names == ("x", "F")
        got = f.read()
    np.testing.assert_array_equal(got.F, arrays["F"])
    assert got.v is None


def test_trajectory_scale_of_wrong_length_is_refused(good):
    with h5py.File(good, "r+") as h:
        del h["trajectory"]
        h["trajectory"] = np.arange(N + 1)
    refused(good, r"dataset 'trajectory' has shape \(8,\); expected \(7,\)")


def test_too_many_attributes_or_members_are_refused(good, tmp_path):
    other = tmp_path / "many.h5"
    other.write_bytes(good.read_bytes())
    with h5py.File(good, "r+") as h:
        for i in range(1025):
            h.attrs[f"a{i}"] = i
    refused(good, "attributes; at most 1024")
    with h5py.File(other, "r+") as h:
        for i in range(1025):
            h[f"params/p{i}"] = np.zeros(N)
    refused(other, "group '/params/' has more than 1024 members")


def test_vlen_number_attribute_is_refused(good):
    with h5py.File(good, "r+") as h:
        h.attrs.create("ragged", np.array([np.arange(2), np.arange(3)], dtype=object),
                       dtype=h5py.vlen_dtype(np.int64))
    refused(good, "'ragged' has unsupported type")


def test_jittered_float64_grid_far_from_zero_is_refused(good):
    with h5py.File(good, "r+") as h:
        t = 1000 + np.arange(T) * DT
        t[5] += 1e-5
        h["t"][...] = t
    refused(good, "time grid is not uniform")


def test_nan_in_t_is_named(good):
    with h5py.File(good, "r+") as h:
        h["t"][7] = np.nan
    refused(good, "'t' has non-finite values")
