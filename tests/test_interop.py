"""Files other tools read: xarray (engine "h5netcdf") opens a trajectory file with named
dimensions through its HDF5 dimension scales; files written before the scales read the same."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import dev_extra

from odernn.data import store
from odernn.data.merge import merge_files
from odernn.data.store import read_trajectories
from odernn.data.writer import TrajectoryWriter
from odernn.errors import DataError

xr = dev_extra("xarray")  # never a skip in CI
dev_extra("h5netcdf")

N, T, K, DT = 7, 40, 3, 0.05
SHARDS = [(0, 3), (3, 7)]
# random arrays: no forcing family their F could be checked against (as in test_store.py)
ATTRS = {"system": "x'' + eta x' + x = F(t)", "forcing": "external", "spec": "n = 7\né\n",
         "flag": True, "tags": ["a", "bc"]}


def arrays(seed: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    data = {k: rng.normal(size=(N, T)) for k in ("x", "v", "F")}
    params = {"eta": rng.uniform(0, 1, N), "amplitude": rng.normal(size=(N, K))}
    return data, params


def write(path: Path, data: dict, params: dict, lo: int = 0, hi: int = N, **attrs) -> Path:
    """Rows ``lo..hi`` streamed in blocks of two rows, each row in two pieces of time."""
    with TrajectoryWriter(path, t=np.arange(T) * DT, n=hi - lo,
                          params={"eta": (), "amplitude": (K,)},
                          attrs={**ATTRS, **attrs}) as w:
        for a in range(lo, hi, 2):
            b = min(a + 2, hi)
            for c in (0, T // 2):
                w.write(a - lo, {k: v[a:b, c:c + T // 2] for k, v in data.items()},
                        {k: v[a:b] for k, v in params.items()}, col=c)
    return path


def check_xarray(path: Path) -> None:
    """xarray sees x, v, F on (trajectory, t), t the stored grid, values odernn's bit for bit,
    the parameters on trajectory (and component) in group params."""
    ours = read_trajectories(path)
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        for k in ("x", "v", "F"):
            assert ds[k].dims == ("trajectory", "t")
            assert ds[k].values.tobytes() == getattr(ours, k).tobytes()
        assert ds["t"].values.tobytes() == ours.t.tobytes()
        assert list(ds["trajectory"].values) == list(range(ours.x.shape[0]))
        assert ds.attrs["schema"] == "odernn.trajectories" and ds.attrs["forcing"] == "external"
        assert ds["x"].attrs["description"].startswith("position")
    with xr.open_dataset(path, engine="h5netcdf", group="params") as ps:
        assert ps["eta"].dims == ("trajectory",)
        assert ps["amplitude"].dims == ("trajectory", "component")
        for k in ("eta", "amplitude"):
            assert ps[k].values.tobytes() == ours.params[k].tobytes()


def test_xarray_opens_a_written_file(tmp_path):
    path = write(tmp_path / "data.h5", *arrays())
    check_xarray(path)
    with h5py.File(path) as f:  # the scales as HDF5 records them
        assert f["x"].dims[1][0] == f["t"] and f["params/amplitude"].dims[1][0] == f["component"]


@pytest.mark.parametrize("virtual", [False, True])
def test_xarray_opens_merged_shards(tmp_path, virtual):
    data, params = arrays()
    shards = [write(tmp_path / f"part-{k}.h5", data, params, lo, hi, shard_index=k,
                    shard_count=len(SHARDS), row_start=lo, row_stop=hi, n_total=N)
              for k, (lo, hi) in enumerate(SHARDS, 1)]
    merged = merge_files(shards, tmp_path / "merged.h5", virtual=virtual)
    check_xarray(merged)
    whole = write(tmp_path / "whole.h5", data, params)
    assert store.content_digest(merged) == store.content_digest(whole)


def without_scales(src: Path, dst: Path) -> Path:
    """``src`` as written before the dimension scales: no /trajectory, /component, nor the
    scale attributes."""
    with h5py.File(src) as f, h5py.File(dst, "w") as g:
        f.copy("t", g, without_attrs=True)
        g["t"].attrs.update({k: v for k, v in f["t"].attrs.items() if k in ("unit",
                                                                             "description")})
        for label in ("x", "v", "F", "params/eta", "params/amplitude"):
            g.create_dataset(label, data=f[label][()], chunks=f[label].chunks)
            g[label].attrs.update({k: v for k, v in f[label].attrs.items()
                                   if k == "description"})
        g.attrs.update(f.attrs)
    return dst


def test_a_file_without_scales_reads_the_same(tmp_path):
    new = write(tmp_path / "new.h5", *arrays())
    old = without_scales(new, tmp_path / "old.h5")
    with h5py.File(old) as f:
        assert "trajectory" not in f and not f["x"].attrs.keys() - {"description"}
    a, b = read_trajectories(old), read_trajectories(new)
    for k in ("t", "x", "v", "F"):
        assert getattr(a, k).tobytes() == getattr(b, k).tobytes()
    assert a.params.keys() == b.params.keys() and a.attrs == b.attrs
    assert store.content_digest(old) == store.content_digest(new)


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: (f.__delitem__("trajectory"), f.create_dataset("trajectory", data=np.arange(3))),
     r"dataset 'trajectory' has shape \(3,\); expected \(7,\)"),
    (lambda f: (f.__delitem__("component"), f.create_dataset("component", data=[0.5, 1.5])),
     "dataset 'component' has dtype float64 and shape"),
    (lambda f: f.create_dataset("components", data=np.arange(3)),
     "unexpected member"),
    (lambda f: f.create_group("component_4"), "unexpected group '/component_4'"),
])
def test_malformed_scales_are_refused(tmp_path, change, message):
    path = write(tmp_path / "data.h5", *arrays())
    with h5py.File(path, "a") as f:
        change(f)
    with pytest.raises(DataError, match=message):
        read_trajectories(path)
