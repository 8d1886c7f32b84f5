"""The HDF5 store: round trips, streaming, atomic writes, untrusted-file validation, merging."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime
from pathlib import Path

import h5py
import numpy as np
import pytest
from fuzzing import examples
from hypothesis import given, settings
from hypothesis import strategies as st

import odernn
from odernn.data import schema, store
from odernn.data.merge import merge_files
from odernn.data.store import open_trajectories, read_trajectories
from odernn.data.writer import TrajectoryWriter
from odernn.errors import DataError, OutputError, SpecError

N, T, K, DT = 7, 50, 3, 0.05
# random arrays: no forcing family their F could be checked against, no kind (both are written)
ATTRS = {"system": "x'' + eta x' + x = F(t)", "forcing": "external", "integrator": "rk4",
         "integrator_options": '{"name": "rk4"}', "seed": 3, "block_size": 4,
         "spec": "# spec é\nn = 7\n", "flag": True, "tags": ["a", "bc"], "weights": [1.5, 2.0]}
PARAMS = {"eta": (), "amplitude": (K,)}


class TracedPeak:
    """``with TracedPeak() as traced: ...``: ``traced.peak``, the most bytes allocated inside
    the block and held at once (tracemalloc traces from entry on)."""

    peak = 0

    def __enter__(self) -> TracedPeak:
        tracemalloc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def make_data(n: int = N, steps: int = T, seed: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    arrays = {k: rng.normal(size=(n, steps)) for k in ("x", "v", "F")}
    params = {"eta": rng.uniform(0, 1, n), "amplitude": rng.normal(size=(n, K))}
    return arrays, params


def grid(steps: int = T) -> np.ndarray:
    return np.arange(steps) * DT


def rows(d: dict, lo: int, hi: int) -> dict:
    return {k: a[lo:hi] for k, a in d.items()}


def write(path: Path, arrays: dict, params: dict, *, blocks=None, attrs=ATTRS, **kw) -> Path:
    n = arrays["x"].shape[0]
    with TrajectoryWriter(path, t=grid(arrays["x"].shape[1]), n=n, datasets=tuple(arrays),
                          params={k: PARAMS[k] for k in params}, attrs=attrs, **kw) as w:
        for lo, hi in blocks or [(0, n)]:
            w.write(lo, rows(arrays, lo, hi), rows(params, lo, hi))
    return path


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# --- round trips -----------------------------------------------------------------------------


def test_round_trip_is_exact(good, data):
    arrays, params = data
    tr = read_trajectories(good)
    assert same_bits(tr.t, grid())
    for k in ("x", "v", "F"):
        assert same_bits(getattr(tr, k), arrays[k])
    assert tr.params.keys() == params.keys()
    for k in params:
        assert same_bits(tr.params[k], params[k])
    assert {k: tr.attrs[k] for k in ATTRS} == ATTRS
    assert tr.n == N and tr.n_steps == T and tr.dt == DT


def test_files_are_in_hdf5_1_10_format_and_1_8_files_read_the_same(good, data, tmp_path,
                                                                   monkeypatch):
    """odernn writes HDF5 1.10's format (superblock version 3: a fixed-size dataset's chunk
    index is an array, which a streamed read does not keep in memory, docs/scaling.md); a
    file written as earlier versions did, in HDF5 1.8's format (superblock version 0, a
    B-tree chunk index), reads the same."""
    from odernn.data import writer

    with h5py.File(good) as f:
        assert f.id.get_create_plist().get_version()[0] == 3
    monkeypatch.setattr(writer, "LIBVER", ("earliest", "v108"))
    old = write(tmp_path / "old.h5", *data)
    with h5py.File(old) as f:
        assert f.id.get_create_plist().get_version()[0] == 0
    a, b = read_trajectories(good), read_trajectories(old)
    for k in ("x", "v", "F"):
        assert same_bits(getattr(a, k), getattr(b, k))
    assert all(same_bits(a.params[k], b.params[k]) for k in a.params)


def test_files_are_read_with_a_small_chunk_cache(good):
    """HDF5 2.0 gives each dataset of an open file an 8 MiB chunk cache, which held about
    25 MiB of a streamed training; odernn reads whole chunks once, and asks for 1 MiB."""
    from odernn.data.filecheck import CHUNK_CACHE_BYTES

    f = store.TrajectoryFile(good)
    try:
        for k in ("x", "v", "F"):
            assert f.dataset(k).id.get_access_plist().get_chunk_cache()[1] == CHUNK_CACHE_BYTES
    finally:
        f.close()


def test_root_attributes_describe_the_file(good):
    with open_trajectories(good) as f:
        a = f.attrs
        assert (a["schema"], a["schema_version"]) == ("odernn.trajectories", 1)
        assert (a["n_trajectories"], a["n_steps"], a["dt"]) == (N, T, DT)
        assert a["datasets"] == ["x", "v", "F"] and f.names == ("x", "v", "F")
        assert a["odernn_version"] == odernn.__version__ and a["creator"] == "odernn"
        created = datetime.fromisoformat(a["created"].replace("Z", "+00:00"))
        assert created.utcoffset().total_seconds() == 0
        assert abs(time.time() - created.timestamp()) < 120
        assert set(f.params_names) == set(PARAMS)
    with h5py.File(good) as h:
        assert h["t"].attrs["unit"] == "1" and "time" in h["t"].attrs["description"]
        assert h["x"].chunks[1] == T and h["x"].compression is None


def test_float32_option_stores_float32(tmp_path, data):
    arrays, params = data
    tr = read_trajectories(write(tmp_path / "f32.h5", arrays, params, dtype="float32"))
    assert tr.x.dtype == np.float32 and same_bits(tr.v, arrays["v"].astype(np.float32))
    assert same_bits(tr.params["eta"], params["eta"])  # parameters stay float64
    assert same_bits(tr.t, grid())


def test_gzip_option_compresses_losslessly(tmp_path):
    arrays, params = make_data(40, 400)
    arrays = {k: np.round(a, 2) for k, a in arrays.items()}  # compressible
    plain = write(tmp_path / "plain.h5", arrays, params)
    packed = write(tmp_path / "gzip.h5", arrays, params, compression="gzip")
    with h5py.File(packed) as h:
        assert h["x"].compression == "gzip" and h["params/eta"].compression == "gzip"
    assert packed.stat().st_size < 0.8 * plain.stat().st_size
    tr = read_trajectories(packed)
    assert all(same_bits(getattr(tr, k), arrays[k]) for k in arrays)


def test_series_stores_x_only(tmp_path):
    x = np.sin(np.arange(5 * T).reshape(5, T) * 0.1)
    with TrajectoryWriter(tmp_path / "s.h5", t=grid(), n=5, datasets=("x",),
                          attrs={"kind": "series"}) as w:
        w.write(0, {"x": x})
    tr = read_trajectories(tmp_path / "s.h5")
    assert tr.is_series and tr.F is None and tr.params == {} and same_bits(tr.x, x)
    with h5py.File(tmp_path / "s.h5") as h:
        assert set(h) == {"t", "x", "trajectory"}  # trajectory: a dimension scale


@pytest.mark.parametrize("n, steps, dtype", [(300, 1000, "float64"), (1, 300_000, "float64"),
                                             (2000, 50, "float32")])
def test_chunks_hold_whole_trajectories_between_64kib_and_1mib(tmp_path, n, steps, dtype):
    x = np.zeros((n, steps))
    with TrajectoryWriter(tmp_path / "c.h5", t=grid(steps), n=n, datasets=("x",),
                          dtype=dtype) as w:
        w.write(0, {"x": x})
    with h5py.File(tmp_path / "c.h5") as h:
        chunks, itemsize = h["x"].chunks, h["x"].dtype.itemsize
    assert 64 << 10 <= np.prod(chunks) * itemsize <= 1 << 20
    if steps * itemsize <= 1 << 20:
        assert chunks[1] == steps  # chunked by trajectory
    else:
        assert chunks[0] == 1  # one trajectory longer than a chunk is split in time


# --- streaming -------------------------------------------------------------------------------


@settings(max_examples=examples(20), deadline=None)
@given(st.lists(st.integers(1, N), min_size=N), st.randoms())  # sizes sum to >= N
def test_blocks_in_any_order_and_size_give_the_same_file(sizes, rnd):
    arrays, params = make_data()
    bounds = np.minimum(np.cumsum([0, *sizes]), N)
    blocks = [(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True) if hi > lo]
    rnd.shuffle(blocks)
    with tempfile.TemporaryDirectory() as tmp:
        tr = read_trajectories(write(Path(tmp) / "b.h5", arrays, params, blocks=blocks))
    assert all(same_bits(getattr(tr, k), arrays[k]) for k in arrays)
    assert all(same_bits(tr.params[k], params[k]) for k in params)


def test_writer_memory_is_bounded_by_the_block(tmp_path):
    n, steps, b = 4000, 250, 50  # 8 MB per dataset, 100 kB per block
    block, params = make_data(b, steps)
    with TracedPeak() as traced, TrajectoryWriter(tmp_path / "m.h5", t=grid(steps), n=n,
                                                  params=PARAMS) as w:
        for lo in range(0, n, b):
            w.write(lo, block, params)
    assert traced.peak < 1 << 20, f"writer peak {traced.peak} bytes for a 3 x 8 MB file"


# --- atomic writes ---------------------------------------------------------------------------


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failure_inside_the_block_leaves_no_file(tmp_path, data, error):
    arrays, params = data
    with pytest.raises(error), TrajectoryWriter(tmp_path / "d.h5", t=grid(), n=N,
                                                params=PARAMS) as w:
        w.write(0, rows(arrays, 0, 3), rows(params, 0, 3))
        [tmp] = leftovers(tmp_path)
        assert re.fullmatch(rf"\.d\.h5\.tmp-{os.getpid()}-[0-9a-f]+", tmp), tmp
        raise error
    assert leftovers(tmp_path) == []


def test_failure_keeps_the_previous_file_intact(good, data):
    arrays, params = data
    before = good.read_bytes()
    with pytest.raises(RuntimeError), TrajectoryWriter(good, t=grid(), n=N, params=PARAMS,
                                                       overwrite=True) as w:
        w.write(0, rows(make_data(seed=1)[0], 0, N), rows(params, 0, N))
        raise RuntimeError("interrupted")
    assert good.read_bytes() == before
    assert leftovers(good.parent) == [good.name]


def test_missing_rows_are_refused_and_nothing_saved(tmp_path, data):
    arrays, params = data
    with pytest.raises(ValueError, match=r"rows 3\.\.5 of 7 were never written"), \
            TrajectoryWriter(tmp_path / "d.h5", t=grid(), n=N, params=PARAMS) as w:
        w.write(0, rows(arrays, 0, 3), rows(params, 0, 3))
        w.write(5, rows(arrays, 5, 7), rows(params, 5, 7))
    assert leftovers(tmp_path) == []


def test_pieces_of_rows_come_in_order_and_count_only_when_complete(tmp_path, data):
    """A row's time points may come in pieces, each continuing the last: a piece that
    skips, repeats or overruns the points is refused, and rows whose last piece never came
    were never written (HDF5 would give zeros there)."""
    arrays, params = data
    def cut(a: dict, lo: int, hi: int) -> dict:
        return {n: v[:, lo:hi] for n, v in a.items()}

    T = grid().size
    with TrajectoryWriter(tmp_path / "d.h5", t=grid(), n=N, params=PARAMS) as w:
        w.write(0, cut(arrays, 0, 4), params, col=0)
        for lo, hi in ((5, 9), (0, 4), (4, T + 1)):  # a gap, a repeat, past the end
            with pytest.raises(ValueError, match=rf"time points {lo}\.\.{hi} do not continue "
                               rf"the pieces written \(4 of {T} points\)"):
                w.write(0, cut(arrays, lo, hi) if hi <= T else
                        {n: np.zeros((N, hi - lo)) for n in arrays}, params, col=lo)
        w.write(0, cut(arrays, 4, T), params, col=4)
    assert same_bits(read_trajectories(tmp_path / "d.h5").x, arrays["x"])
    with pytest.raises(ValueError, match=rf"rows 0\.\.{N} of {N} were never written"), \
            TrajectoryWriter(tmp_path / "e.h5", t=grid(), n=N, params=PARAMS) as w:
        w.write(0, cut(arrays, 0, 4), params, col=0)  # the rest of the points never come
    assert not (tmp_path / "e.h5").exists()


def test_existing_file_is_replaced_only_with_overwrite(good, data):
    arrays, params = data
    with pytest.raises(OutputError, match=r"exists; pass --overwrite \(in Python overwrite=True\)"):
        TrajectoryWriter(good, t=grid(), n=N)
    new, _ = make_data(seed=5)
    write(good, new, params, overwrite=True)
    assert same_bits(read_trajectories(good).x, new["x"])


def test_missing_directory_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match="nope does not exist"):
        TrajectoryWriter(tmp_path / "nope" / "d.h5", t=grid(), n=N)
    (tmp_path / "afile").write_text("x")  # a path through a file: "does not exist" misled
    with pytest.raises(OutputError, match="afile is not a directory"):
        TrajectoryWriter(tmp_path / "afile" / "d.h5", t=grid(), n=N)


def test_non_finite_values_are_refused_on_write(tmp_path, data):
    arrays, params = data
    arrays["v"][4, 7] = np.inf
    with pytest.raises(DataError, match=r"'v' gets non-finite .* trajectory 4"):
        write(tmp_path / "d.h5", arrays, params, blocks=[(0, 2), (2, N)])
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kwargs, message", [
    ({"attrs": {"schema": "mine"}}, "written by the store itself"),
    ({"attrs": {"options": {"a": 1}}}, "encode dicts as JSON"),
    ({"dtype": "float16"}, "dtype must be"),
    ({"compression": "lzf"}, "compression must be"),
    ({"datasets": ("v", "F")}, "including 'x'"),
    ({"t": np.array([0.0, 0.1, 0.15])}, "uniform"),
    ({"t": 3e12 + 3e-4 * np.arange(50)}, "uniform"),  # steps of 0 and 2 ulp: the reader refuses
    ({"t": np.array([-1e308, 1e308])}, "uniform"),  # a step of inf
    ({"n": 0}, "n must be"),
])
def test_writer_rejects_bad_arguments(tmp_path, kwargs, message):
    args = {"t": grid(), "n": N, **kwargs}
    with pytest.raises(ValueError, match=message):
        TrajectoryWriter(tmp_path / "d.h5", **args)


def test_a_grid_of_unix_epoch_seconds_is_written_and_read_back(tmp_path, data):
    """Steps at t ~ 1.7e9 vary by t's rounding (2e-7), beyond 1e-6 of a 1 ms step: writer
    and reader share one rule (schema.off_grid) that allows for it."""
    arrays, params = data
    t = 1.7e9 + 0.001 * np.arange(T)
    with TrajectoryWriter(tmp_path / "e.h5", t=t, n=N, params=PARAMS, attrs=ATTRS) as w:
        w.write(0, arrays, params)
    assert same_bits(read_trajectories(tmp_path / "e.h5").t, t)


def test_the_grid_check_runs_in_blocks_with_the_same_answers():
    """``schema.off_grid`` checks a grid in blocks of steps: the same answer as the rule over
    the whole grid at once (bad steps on both sides of block boundaries, and the last), in
    memory that does not grow with the grid (it took several copies of it: about 1 GB and
    seconds for a 20-million-step simulation before its first block)."""
    n = 3 * schema.GRID_BLOCK + 17
    t = 0.05 * np.arange(n)
    for i in (schema.GRID_BLOCK - 1, schema.GRID_BLOCK, 2 * schema.GRID_BLOCK + 1, n - 1):
        t[i] += 1e-3 * (i % 2 - 0.5)
    steps = np.diff(t)
    whole = (steps <= 0) | schema.off_step(steps, steps[0], t[:-1], t[1:])
    assert np.array_equal(schema.off_grid(t), whole)
    assert np.flatnonzero(whole).tolist() == [schema.GRID_BLOCK + k for k in (-2, -1, 0)] + [
        2 * schema.GRID_BLOCK + k for k in (0, 1)] + [n - 2]
    assert np.array_equal(schema.off_grid(t, 0.05), (steps <= 0) |
                          schema.off_step(steps, 0.05, t[:-1], t[1:]))
    big = 0.05 * np.arange(4_000_000)
    tracemalloc.start()
    try:
        assert not schema.off_grid(big).any()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < big.nbytes / 4, peak  # the answer (1 byte a step) and the blocks' temporaries


def test_writer_rejects_bad_blocks(tmp_path, data):
    arrays, params = data
    with pytest.raises(ValueError, match=r"rows 0\.\.7 of 7 were never written"), \
            TrajectoryWriter(tmp_path / "d.h5", t=grid(), n=N, params=PARAMS) as w:
        with pytest.raises(ValueError, match=r"'x' must have shape \(B, 50\)"):
            w.write(0, {**rows(arrays, 0, 2), "x": arrays["x"][:2, :10]}, rows(params, 0, 2))
        with pytest.raises(ValueError, match="needs params"):
            w.write(0, rows(arrays, 0, 2), {})
        with pytest.raises(ValueError, match=r"rows 6\.\.8 are outside 0\.\.7"):
            w.write(6, rows(arrays, 0, 2), rows(params, 0, 2))
    assert leftovers(tmp_path) == []


def test_attribute_over_1mib_is_refused_on_write(tmp_path):
    with pytest.raises(OutputError, match="limited to 1048576 bytes"):
        TrajectoryWriter(tmp_path / "d.h5", t=grid(), n=N, attrs={"spec": "#" * (1 << 20 | 1)})


# --- reading ---------------------------------------------------------------------------------


def test_read_rows_and_names(good, data):
    arrays, params = data
    with open_trajectories(good) as f:
        tr = f.read(rows=slice(2, 5), names=["v"])
        assert same_bits(tr.x, arrays["x"][2:5]) and same_bits(tr.v, arrays["v"][2:5])
        assert tr.F is None and same_bits(tr.params["amplitude"], params["amplitude"][2:5])
        assert f.read(rows=slice(-2, None)).n == 2
        for rows in (slice(0, 6, 2), slice(0.5, 2), slice(0, "3"), range(2)):  # a float
            with pytest.raises(SpecError, match="rows must be a slice of whole numbers with "
                                                "step 1"):  # slice was numpy's TypeError
                f.read(rows=rows)
        with pytest.raises(SpecError, match="no dataset y; this file has x, v, F"):
            f.read(names=["y"])


def test_open_is_lazy_and_reads_check_values(good):
    with h5py.File(good, "r+") as h:
        h["F"][5, 17] = np.nan
        h["params/eta"][6] = -np.inf
    with open_trajectories(good) as f:  # metadata only: opening does not scan values
        assert same_bits(f.read(rows=slice(0, 5), names=["x"]).x, f.read(slice(0, 5)).x)
        with pytest.raises(DataError, match=r"dataset 'F' has non-finite .* trajectory 5"):
            f.read()
        with pytest.raises(DataError, match=r"'F' has non-finite .* trajectory 5"):
            f.verify()
    with pytest.raises(DataError, match=r"'params/eta' has non-finite .* trajectory 6"):
        read_trajectories(good, rows=slice(6, 7))


def test_verify_scans_in_bounded_memory(tmp_path, monkeypatch):
    arrays, params = make_data(2000, 500)  # 8 MB per dataset
    path = write(tmp_path / "big.h5", arrays, params)
    monkeypatch.setattr(store, "BLOCK_BYTES", 256 << 10)
    with open_trajectories(path) as f, TracedPeak() as traced:
        f.verify()
    assert traced.peak < 2 << 20, f"verify peak {traced.peak} bytes for a 3 x 8 MB file"


def test_ranges_over_many_blocks_are_the_whole_files(tmp_path, monkeypatch):
    """``inspect``'s ranges, read in blocks of a few rows: each block's extremes combined,
    the smallest and the largest anywhere (one block's alone passed every one-block file)."""
    arrays, params = make_data(2000, 500)
    arrays["x"][3, 7], arrays["x"][1900, 2] = -50.0, 60.0  # in the first and the last blocks
    path = write(tmp_path / "big.h5", arrays, params)
    monkeypatch.setattr(store, "BLOCK_BYTES", 256 << 10)
    with open_trajectories(path) as f:
        ranges = f.ranges()
    for name, a in arrays.items():
        assert ranges[name] == (a.min(), a.max()), name
    for name, a in params.items():
        assert ranges[f"params/{name}"] == (a.min(), a.max()), name
    assert ranges["x"] == (-50.0, 60.0)


def test_reading_more_than_available_memory_is_refused(good, monkeypatch):
    monkeypatch.setattr(store, "_available_memory", lambda: 5000)  # bytes; the file needs 8624
    with open_trajectories(good) as f:
        with pytest.raises(DataError, match=r"needs 0.00822 MiB but only 0.00477 MiB of memory"):
            f.read()
        assert f.read(rows=slice(0, 2), names=["x"]).n == 2  # 2 x (400 + 32) bytes fit


# --- untrusted files -------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nothing\.h5: file does not exist"):
        open_trajectories(tmp_path / "nothing.h5")


def test_not_hdf5(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("x,v,F\n1,2,3\n")
    with pytest.raises(DataError, match="not an HDF5 file"):
        open_trajectories(path)


@pytest.mark.parametrize("keep, message", [(0.5, "truncated or corrupt"), (0.99, "truncated"),
                                           (4, "not an HDF5 file")])
def test_truncated_file(good, keep, message):
    os.truncate(good, int(keep * good.stat().st_size) if keep < 1 else keep)
    with pytest.raises(DataError, match=message):
        open_trajectories(good)


def replace(name: str, **kw):
    def edit(h: h5py.File) -> None:
        del h[name]
        h.create_dataset(name, **kw)
    return edit


def set_attr(name: str, value):
    def edit(h: h5py.File) -> None:
        if value is None:
            del h.attrs[name]
        else:
            h.attrs[name] = value
    return edit


def set_t(h: h5py.File) -> None:
    h["t"][5] = h["t"][4]


CORRUPTIONS = {
    "schema name": (set_attr("schema", "netcdf.thing"),
                    "schema is 'netcdf.thing'; expected 'odernn.trajectories'"),
    "no schema": (set_attr("schema", None), "not an odernn trajectory file"),
    "future version": (set_attr("schema_version", 2),
                       "schema_version is 2; this odernn reads schema version 1 only"),
    "no version": (set_attr("schema_version", None), "schema_version is missing"),
    "no n_steps": (set_attr("n_steps", None), r"missing attribute\(s\) 'n_steps'"),
    "bad n_trajectories": (set_attr("n_trajectories", "seven"),
                           "'n_trajectories' is 'seven'; expected an integer >= 1"),
    "bad datasets": (set_attr("datasets", ["v", "F"]), "including 'x'"),
    "missing dataset": (lambda h: h.__delitem__("v"),
                        r"dataset 'v' \(listed in attribute 'datasets'\) is missing"),
    "unlisted dataset": (set_attr("datasets", ["x", "v"]),
                         r"unexpected member\(s\) F; attribute 'datasets' lists \['x', 'v'\]"),
    "wrong shape": (replace("x", data=np.zeros((N, T - 1))),
                    r"dataset 'x' has shape \(7, 49\); expected \(7, 50\)"),
    "wrong param shape": (replace("params/eta", data=np.zeros(N + 1)),
                          r"'params/eta' has shape \(8,\); expected \(7,\)"),
    "empty param width": (replace("params/amplitude", shape=(N, 0), dtype="f8"),
                          r"'params/amplitude' has shape \(7, 0\); expected .* K >= 1"),
    "integer dtype": (replace("x", data=np.zeros((N, T), dtype=np.int64)),
                      "dataset 'x' has dtype int64; expected float32 or float64"),
    "mixed dtypes": (replace("v", data=np.zeros((N, T), dtype=np.float32)), "differ in dtype"),
    "t length": (set_attr("n_steps", T + 1), r"dataset 't' has shape \(50,\); expected \(51,\)"),
    "t order": (set_t, r"'t' is not strictly increasing \(t\[5\] = 0\.2 after t\[4\] = 0\.2\)"),
    "dt": (set_attr("dt", 0.1),
           r"time grid is not uniform: t\[1\] - t\[0\] = 0\.05, but attribute 'dt' is 0\.1"),
    "nested group": (lambda h: h.create_group("params/deep/deeper"),
                     "unexpected group '/params/deep'"),
    "extra group": (lambda h: h.create_group("extra"), "unexpected group '/extra'"),
    "extra dataset": (lambda h: h.create_dataset("y", data=[1.0]), r"unexpected member\(s\) y"),
    "soft link": (lambda h: h.__setitem__("params/x", h5py.SoftLink("/x")),
                  "'/params/x' is a SoftLink"),
    "external link": (lambda h: h.__setitem__("params/pw", h5py.ExternalLink("/etc/passwd", "/")),
                      "'/params/pw' is a ExternalLink"),
    "external storage": (replace("params/eta", shape=(N,), dtype="f8",
                                 external=[("/etc/hostname", 0, 8 * N)]),
                         "'params/eta' keeps its data in external raw files"),
    "huge attribute": (set_attr("spec", "#" * (2 << 20)), "'spec' is 2097152 bytes of text"),
    "attribute type": (set_attr("seed", np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")])),
                       "'seed' has unsupported type"),
    "null dt": (set_attr("dt", h5py.Empty("f8")), "attribute 'dt' is None; expected a finite"),
}


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_corrupt_file_is_refused_with_a_precise_message(good, name):
    edit, message = CORRUPTIONS[name]
    with h5py.File(good, "r+") as h:
        edit(h)
    with pytest.raises(DataError, match=message) as info:
        open_trajectories(good)
    assert str(info.value).startswith(f"{good}: ")


def forged_file(path: Path, n: int, steps: int, chunks: tuple[int, int]) -> Path:
    """Schema-conforming metadata declaring (n, steps) datasets that hold no data at all."""
    with h5py.File(path, "w") as h:
        h.attrs.update(schema="odernn.trajectories", schema_version=1,
                       created="2026-01-01T00:00Z",
                       odernn_version="0", n_trajectories=n, n_steps=steps, dt=DT,
                       datasets=np.array(["x"], dtype=h5py.string_dtype()))
        h.create_dataset("t", data=grid(min(steps, 1 << 16)), maxshape=(None,), chunks=(4096,))
        h["t"].resize((steps,))
        h.create_dataset("x", shape=(n, steps), dtype="f8", chunks=chunks)
    return path


@pytest.mark.parametrize("n, steps, message", [
    (1 << 20, 1 << 20, r"declares 1048576 trajectories x 1048576 steps .* more than the"),
    (1 << 16, 1 << 16, r"'x' declares shape \(65536, 65536\) but only 0 of its 1024 chunks"),
])
def test_absurd_declared_shapes_are_refused_without_allocating(tmp_path, n, steps, message):
    path = forged_file(tmp_path / "forged.h5", n, steps, (64, 1 << 16))
    assert path.stat().st_size < 1 << 20
    started = time.perf_counter()
    with TracedPeak() as traced, pytest.raises(DataError, match=message):
        open_trajectories(path)
    assert time.perf_counter() - started < 5 and traced.peak < 4 << 20


def test_large_fixed_size_attribute_is_refused_before_reading(tmp_path, good):
    path = tmp_path / "dense.h5"
    with h5py.File(good) as src, h5py.File(path, "w", libver="latest") as dst:
        for key in src:
            src.copy(src[key], dst)
        dst.attrs.update(src.attrs)
        dst.attrs["table"] = np.zeros(1 << 18)  # 2 MiB, in dense attribute storage
    with pytest.raises(DataError, match="'table' declares 2097152 bytes"):
        open_trajectories(path)


# --- content digest --------------------------------------------------------------------------


def digest_after(path: Path, copy: Path, change) -> str:
    """The digest of a copy of ``path`` after ``change(h5py.File)``."""
    shutil.copyfile(path, copy)
    with h5py.File(copy, "r+") as h:
        change(h)
    return store.content_digest(copy)


def test_content_digest_covers_every_value_and_attribute_but_created(tmp_path, good, data):
    base = store.content_digest(good)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", base)
    assert store.content_digest(write(tmp_path / "again.h5", *data)) == base

    def nudge(label: str, index: tuple[int, ...]):
        def change(h: h5py.File) -> None:
            a = h[label][()]
            a[index] = np.nextafter(a[index], np.inf)  # one value, by one ulp
            h[label][()] = a
        return change

    def set_attr(obj: str, name: str, value) -> object:
        return lambda h: h[obj].attrs.__setitem__(name, value)

    changed = {
        "x[6, 49]": nudge("x", (6, 49)),
        "t[1]": nudge("t", (1,)),
        "params/amplitude[0, 2]": nudge("params/amplitude", (0, 2)),
        "seed": set_attr("/", "seed", 4),
        "seed as a float": set_attr("/", "seed", 3.0),
        "flag": set_attr("/", "flag", False),
        "tags": set_attr("/", "tags", ["a", "b"]),
        "new attribute": set_attr("/", "note", "x"),
        "x description": set_attr("x", "description", "other"),
        "a null attribute": set_attr("/", "note", h5py.Empty("f8")),
        "a null text attribute": set_attr("/", "note", h5py.Empty("S1")),
        "a null x attribute": set_attr("x", "unit", h5py.Empty("f8")),
    }
    digests = {what: digest_after(good, tmp_path / "c.h5", change)
               for what, change in changed.items()}
    assert base not in digests.values(), [k for k, d in digests.items() if d == base]
    assert len(set(digests.values())) == len(digests)
    # ``created`` is the one attribute left out
    assert digest_after(good, tmp_path / "c.h5",
                        set_attr("/", "created", "2000-01-01T00:00:00Z")) == base


def test_a_null_attribute_is_read_as_none_by_every_reader(tmp_path, good):
    """An attribute declared without a value (a null dataspace, h5py.Empty), as other
    programs write: every reader takes it as None. The digest, which reads the datasets'
    attributes too, refused one on a dataset that reading accepted (``inspect`` failed where
    ``train`` worked)."""
    with h5py.File(good, "r+") as h:
        h.attrs["note"] = h5py.Empty("f8")
        h["x"].attrs["unit"] = h5py.Empty("S1")
    with open_trajectories(good) as f:
        assert f.attrs["note"] is None
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", f.content_digest())


def test_content_digest_ignores_storage_but_not_dtype(tmp_path, data):
    arrays, params = data
    plain = store.content_digest(write(tmp_path / "plain.h5", arrays, params))
    packed = write(tmp_path / "gzip.h5", arrays, params, compression="gzip",
                   blocks=[(4, 7), (0, 4)])
    assert store.content_digest(packed) == plain
    single = write(tmp_path / "f32.h5", arrays, params, dtype="float32")
    assert store.content_digest(single) != plain


# --- merging shards --------------------------------------------------------------------------

SHARDS = [(0, 3), (3, 5), (5, 7)]


def write_shard(path: Path, data, k: int, lo: int, hi: int, count: int = 3, **attrs) -> Path:
    arrays, params = data
    shard = {"shard_index": k, "shard_count": count, "row_start": lo, "row_stop": hi,
             "n_total": N}
    return write(path, rows(arrays, lo, hi), rows(params, lo, hi),
                 attrs={**ATTRS, **shard, **attrs})


@pytest.fixture
def shards(tmp_path, data) -> list[Path]:
    (tmp_path / "shards").mkdir()
    return [write_shard(tmp_path / "shards" / f"part-{k}.h5", data, k, lo, hi)
            for k, (lo, hi) in enumerate(SHARDS, 1)]


@pytest.mark.parametrize("virtual", [False, True])
def test_merge_equals_the_unsharded_file_bit_for_bit(tmp_path, shards, good, virtual,
                                                     monkeypatch):
    out = merge_files(shards[::-1], tmp_path / "merged.h5", virtual=virtual)
    with h5py.File(out) as h:
        assert h["x"].is_virtual is virtual and h["params/eta"].is_virtual is virtual
    monkeypatch.chdir(tmp_path / "shards")  # virtual sources resolve from the file, not the cwd
    merged, single = read_trajectories(out), read_trajectories(good)
    for k in ("t", "x", "v", "F"):
        assert same_bits(getattr(merged, k), getattr(single, k))
    for k in PARAMS:
        assert same_bits(merged.params[k], single.params[k])
    drop = {"created", schema.SHARD_SOURCES}  # a virtual merge also records its shards
    assert ({k: v for k, v in merged.attrs.items() if k not in drop}
            == {k: v for k, v in single.attrs.items() if k not in drop})
    assert store.content_digest(out) == store.content_digest(good)


def test_shards_in_another_compression_merge_uncompressed(tmp_path, shards, good):
    for path in shards:  # lzf: HDF5 reads it, the writer writes gzip or nothing
        with h5py.File(path, "r+") as h:
            x = h["x"][()]
            del h["x"]
            h.create_dataset("x", data=x, compression="lzf")
    out = merge_files(shards, tmp_path / "merged.h5")
    assert store.content_digest(out) == store.content_digest(good)


def test_virtual_merge_without_its_shards_is_refused(tmp_path, shards):
    out = merge_files(shards, tmp_path / "merged.h5", virtual=True)
    shards[1].unlink()
    with pytest.raises(DataError, match=r"virtual dataset '.*' reads from .*part-2\.h5, which"):
        open_trajectories(out)


def virtual_x(path: Path, source: str, dataset: str = "x") -> None:
    """Replace ``x`` of ``path`` by a virtual dataset reading ``dataset`` of file ``source``."""
    with h5py.File(path, "r+") as h:
        del h["x"]
        layout = h5py.VirtualLayout(shape=(N, T), dtype="f8")
        layout[:] = h5py.VirtualSource(source, dataset, shape=(N, T))
        h.create_virtual_dataset("x", layout, fillvalue=np.nan)


def odernn_cli(*args: object, cwd: Path) -> subprocess.CompletedProcess:
    """``odernn ARGS`` in a child process: a crash of HDF5 there fails the test, not the run."""
    return subprocess.run([sys.executable, "-m", "odernn", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", ["itself", "itself by name", "cycle", "chain"])
def test_virtual_datasets_that_could_lead_back_are_refused_in_one_line(tmp_path, good, case):
    a, b = shutil.copy(good, tmp_path / "a.h5"), shutil.copy(good, tmp_path / "b.h5")
    if case == "itself":
        virtual_x(a, ".", "v")
    elif case == "itself by name":
        virtual_x(a, "a.h5")
    else:
        virtual_x(a, "b.h5")
        virtual_x(b, "a.h5" if case == "cycle" else "data.h5")
    for args in (["inspect", a], ["merge", a, b, "-o", tmp_path / "m.h5"]):
        done = odernn_cli(*args, cwd=tmp_path)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        assert re.search(r"reads from the file itself|reads 'x' of .*b\.h5, which is a virtual",
                         lines[0]), lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5", "b.h5", "data.h5"]


def test_merge_refuses_to_overwrite(tmp_path, shards, good):
    with pytest.raises(OutputError, match=r"exists; pass --overwrite \(in Python overwrite=True\)"):
        merge_files(shards, good)
    with pytest.raises(OutputError, match="is one of the shards"):
        merge_files(shards, shards[0], overwrite=True)
    merge_files(shards, good, overwrite=True)
    assert "shard_index" not in read_trajectories(good).attrs


def test_a_merge_reports_its_progress_and_is_quiet_when_asked(tmp_path, shards, capsys,
                                                               monkeypatch):
    from odernn.cli.app import main
    from odernn.data import merge

    monkeypatch.setattr(merge, "BLOCK_BYTES", 1)  # a row at a time
    events = []
    merge_files(shards, tmp_path / "m.h5", progress=events.append)
    assert [e.done for e in events if e.stage == "copy"] == list(range(1, N + 1))
    assert events[-1].stage == "done" and events[-1].done == N
    assert main(["merge", *map(str, shards), "-o", str(tmp_path / "q.h5"), "-q"]) == 0
    assert capsys.readouterr() == ("", "")
    assert main(["merge", *map(str, shards), "-o", str(tmp_path / "v.h5")]) == 0
    assert "wrote" in capsys.readouterr().out


def test_merge_refusals(tmp_path, shards, data, good):
    other = tmp_path / "other"
    other.mkdir()
    cases = [
        ([shards[0], shards[2]], r"shard\(s\) 2/3 missing; merge needs all 3 shards"),
        ([*shards, shutil.copy(shards[1], other / "copy.h5")], "is shard 2/3 again"),
        ([shards[0], write_shard(other / "overlap.h5", data, 2, 2, 5), shards[2]],
         r"rows 2\.\.5 overlap rows already covered up to 3"),
        ([shards[0], write_shard(other / "gap.h5", data, 2, 4, 5), shards[2]],
         r"leaving rows 3\.\.4 in no shard"),
        ([shards[0], write_shard(other / "seed.h5", data, 2, 3, 5, seed=4), shards[2]],
         "attribute 'seed' is 4 but .*part-1.h5 has 3; shards of different runs"),
        ([shards[0], write_shard(other / "spec.h5", data, 2, 3, 5, spec="n = 8"), shards[2]],
         "attribute 'spec' is 'n = 8'"),
        ([*shards, good], "data.h5: not a shard"),
        ([write_shard(other / "str.h5", data, 1, 0, 3, row_start="0"), *shards[1:]],
         "shard attribute 'row_start' is '0'; expected an integer"),
        ([shards[0], write_shard(other / "two.h5", data, 2, 3, 5, shard_index=np.array([2, 2])),
          shards[2]], r"shard attribute 'shard_index' is \[2, 2\]; expected an integer"),
        ([write_shard(other / "half.h5", data, 1, 0, 3, shard_index=1.5), *shards[1:]],
         "shard attribute 'shard_index' is 1.5"),
        ([write_shard(other / "past.h5", data, 1, 0, 3, row_stop=3, n_total=2), *shards[1:]],
         r"inconsistent shard attributes \(shard 1/3, rows 0\.\.3 of 2"),
        ([write_shard(other / "long.h5", data, 1, 0, 3, row_stop=4), *shards[1:]],  # 3 rows
         r"inconsistent shard attributes \(shard 1/3, rows 0\.\.4 of 7, 3 trajectories\)"),
        ([write_shard(other / f"short-{k}.h5", data, k, lo, hi, n_total=N + 1)  # one row lost
          for k, (lo, hi) in enumerate(SHARDS, 1)], f"shards end at row {N}, but n_total is "
         f"{N + 1}"),
        ([write_shard(other / "bool.h5", data, 1, 0, 3, shard_index=True), *shards[1:]],
         "shard attribute 'shard_index' is True; expected an integer"),
    ]
    for given_shards, message in cases:
        with pytest.raises(DataError, match=message):
            merge_files(given_shards, tmp_path / "merged.h5")
        assert not (tmp_path / "merged.h5").exists()


def test_a_forged_shard_count_costs_no_more_than_the_files_given(tmp_path, data):
    forged = [write_shard(tmp_path / f"part-{k}.h5", data, k, lo, hi, count=10**7)
              for k, (lo, hi) in enumerate(SHARDS[:2], 1)]
    with TracedPeak() as traced, pytest.raises(
            DataError, match=r"shard\(s\) 3/10000000, .*, 12/10000000, \.\.\. missing; merge "
                             r"needs all 10000000 shards, 2 given"):
        merge_files(forged, tmp_path / "merged.h5")
    assert traced.peak < 8 << 20


# --- standard HDF5 tools ---------------------------------------------------------------------


def test_standard_hdf5_tools_read_the_files(tmp_path, good, shards):
    if not (shutil.which("h5ls") and shutil.which("h5dump")):
        if os.environ.get("CI") == "true":
            pytest.fail("h5ls/h5dump missing: CI must install Debian's hdf5-tools")
        pytest.skip("h5ls/h5dump not installed (apt-get install hdf5-tools)")
    virtual = merge_files(shards, tmp_path / "virtual.h5", virtual=True)
    for path in (good, virtual):
        listing = subprocess.run(["h5ls", "-r", str(path)], capture_output=True, text=True,
                                 check=True).stdout
        for name, shape in [("t", "{50}"), ("x", "{7, 50}"), ("v", "{7, 50}"), ("F", "{7, 50}"),
                            ("params/eta", "{7}"), ("params/amplitude", "{7, 3}")]:
            assert re.search(rf"^/{name}\s+Dataset {re.escape(shape)}$", listing, re.M), listing
        header = subprocess.run(["h5dump", "-H", str(path)], capture_output=True, text=True,
                                check=True).stdout
        for token in ('DATASET "x"', 'DATASET "eta"', 'ATTRIBUTE "schema"', "H5T_IEEE_F64LE"):
            assert token in header
    values = subprocess.run(["h5dump", "-d", "/t", "-s", "1", "-c", "1", str(virtual)],
                            capture_output=True, text=True, check=True).stdout
    assert "0.05" in values


@pytest.mark.parametrize(("n", "T", "dtype", "K"), [
    (1, 300_000, "float64", 3), (1, 300_000, "float32", 3), (37, 2001, "float64", 3),
    (3, 50, "float32", 3), (1, 50, "float64", 400_000)])
def test_the_disk_a_file_needs_is_counted_before_it_is_written(tmp_path, n, T, dtype, K):
    """The disk check counts /t, the trajectory and component indexes and every chunk whole: a
    long trajectory's file was 30% over the estimate (a 30 MiB disk passed the check, then
    filled), a forcing of 400,000 harmonics 16%."""
    from odernn.data.chunks import file_bytes
    from odernn.data.writer import TrajectoryWriter

    t = 0.01 * np.arange(T)
    params = {"eta": (), "omega": (K,)}
    path = tmp_path / "f.h5"
    with TrajectoryWriter(path, t=t, n=n, datasets=("x", "v", "F"), params=params,
                          attrs={}, dtype=dtype) as writer:
        writer.write(0, {k: np.ones((n, T)) for k in ("x", "v", "F")},
                     {"eta": np.ones(n), "omega": np.ones((n, K))})
    size = path.stat().st_size
    need = file_bytes(n, T, 3, np.dtype(dtype).itemsize, params) + (1 << 20)
    assert size <= need < size + (2 << 20), (size, need)


def test_a_full_disk_names_what_a_killed_write_left_beside_the_file(tmp_path, monkeypatch):
    """SIGKILL leaves a writer's unfinished copy (``.NAME.tmp-PID-HEX``) for ever; on a small
    disk the next write then failed for want of space without a word of why."""
    from odernn.data import chunks
    from odernn.errors import OutputError

    (tmp_path / ".data.h5.tmp-4242-0a1b2c3d").write_bytes(b"\0" * (3 << 20))
    (tmp_path / "other.h5").write_bytes(b"\0" * 100)

    class Full:
        f_bavail, f_frsize, f_blocks = 1, 4096, 1000

    monkeypatch.setattr(chunks.os, "statvfs", lambda d: Full)
    with pytest.raises(OutputError, match=r"1 unfinished file\(s\) of a killed write beside "
                       r"it take 3.0 MiB \(.data.h5.tmp-4242-0a1b2c3d\)"):
        chunks.check_space(tmp_path / "data.h5", 10 << 20)
    with pytest.raises(OutputError, match=r"MiB free$"):
        chunks.check_space(tmp_path / "other.h5", 10 << 20)


@pytest.mark.parametrize(("intervals", "gap"), [
    ([(0, 3), (4, 6)], (3, 4)),  # one row missing
    ([(1, 6)], (0, 1)), ([(0, 5)], (5, 6)), ([(3, 6), (0, 2)], (2, 3)),
    ([(0, 3), (3, 6)], None), ([(0, 4), (2, 6)], None), ([(4, 6), (0, 4)], None),
])
def test_the_first_rows_no_block_covers(intervals, gap):
    """The writer's check before publishing: a single row that no block wrote is a gap (its
    fill value, NaN, would be published as data)."""
    from odernn.data.writer import _first_gap

    assert _first_gap(intervals, 6) == gap
