"""Reading trajectory files (odernn/data/store.py): every row checked, rows in column blocks
where one is large, one line for a corrupt chunk, and the content digest: what it covers, what
it ignores, and its value pinned (runs and merges record it)."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from test_cli import SPEC
from test_store import N, make_data, write

from odernn.data import store
from odernn.data.simulate import simulate
from odernn.data.store import content_digest, open_trajectories
from odernn.errors import DataError


@pytest.fixture
def simulated(tmp_path):
    spec = tmp_path / "tiny.toml"
    spec.write_text(SPEC)
    return simulate(spec, tmp_path / "sim.h5")


def rechunk(path, chunks, names=("x", "v", "F"), **kw):
    """Store ``names`` again in ``chunks`` (values unchanged)."""
    with h5py.File(path, "r+") as h:
        for k in names:
            a, attrs = h[k][()], dict(h[k].attrs)
            del h[k]
            d = h.create_dataset(k, data=a, chunks=chunks, **kw)
            d.attrs.update({n: v for n, v in attrs.items() if n == "description"})
    return path


def test_a_parameter_out_of_range_in_any_row_is_refused_by_read_and_verify(simulated,
                                                                         monkeypatch):
    """Every row of every block is checked, by read and by verify (inspect), not the first."""
    with h5py.File(simulated, "r+") as h:
        h["params/eta"][4] = -1.0
    with open_trajectories(simulated) as f:
        with pytest.raises(DataError, match=r"params/eta\[4\] = -1\.0"):
            f.read()
        with pytest.raises(DataError, match=r"params/eta\[4\] = -1\.0"):
            f.verify()
    monkeypatch.setattr(store, "BLOCK_BYTES", 96)  # a row per block: indices of the file's
    with open_trajectories(simulated) as f, pytest.raises(DataError,
                                                         match=r"params/eta\[4\] = -1\.0"):
        f.verify()
    with open_trajectories(simulated) as f, pytest.raises(DataError,
                                                         match=r"params/eta\[4\] = -1\.0"):
        f.read(slice(2, 6))  # a read of rows 2..6 names the file's row too


def test_verify_in_column_blocks_accepts_a_consistent_file_and_finds_bad_forcing(
        simulated, monkeypatch):
    monkeypatch.setattr(store, "BLOCK_BYTES", 96)  # rows of 40 points: columns 4 at a time
    with open_trajectories(simulated) as f:
        f.verify()
    with h5py.File(simulated, "r+") as h:
        h["F"][2, 37] += 1.0
    with open_trajectories(simulated) as f, pytest.raises(
            DataError, match=r"F\[2, 37\] = .* the samples, times and parameters disagree"):
        f.verify()  # the file's indices, not the column block's (F[0, 1])


def test_column_blocks_cover_every_value_once(tmp_path, monkeypatch):
    """Rows larger than BLOCK_BYTES are read in column blocks: each value once, within the
    bound, the same ranges and digest as whole rows."""
    steps = 49  # 6 chunks of 8 columns and one of 1
    arrays, params = make_data(steps=steps)
    path = rechunk(write(tmp_path / "cols.h5", arrays, params), (1, 8))
    whole = content_digest(path)
    with open_trajectories(path) as f:
        ranges = f.ranges()
    monkeypatch.setattr(store, "BLOCK_BYTES", 64)
    with open_trajectories(path) as f:
        blocks = [b.copy() for b in f.blocks("x")]
        assert all(b.nbytes <= 64 for b in blocks)
        np.testing.assert_array_equal(np.concatenate([b.ravel() for b in blocks]),
                                      arrays["x"].ravel())
        assert f.ranges() == ranges
        assert f.content_digest() == whole
    monkeypatch.setattr(store, "BLOCK_BYTES", 200)  # four columns of chunks at a time
    with open_trajectories(path) as f:
        assert all(b.nbytes <= 200 for b in f.blocks("x"))


def test_the_first_non_finite_row_is_named_across_blocks(tmp_path, monkeypatch):
    arrays, params = make_data()
    arrays["x"][5, 3] = 0.0
    path = rechunk(write(tmp_path / "nan.h5", arrays, params), (1, 50))
    with h5py.File(path, "r+") as h:
        h["x"][5, 3] = np.nan
    monkeypatch.setattr(store, "BLOCK_BYTES", 400)  # one row a block
    with open_trajectories(path) as f:
        with pytest.raises(DataError, match="first in trajectory 5"):
            f.verify()
        with pytest.raises(DataError, match="first in trajectory 5"):
            f.read(rows=slice(1, 7))


def test_a_corrupt_chunk_is_one_line_for_every_reader(tmp_path):
    arrays, params = make_data()
    path = rechunk(write(tmp_path / "z.h5", arrays, params), (1, 50), compression="gzip")
    with h5py.File(path, "r") as h:
        d = h["x"]
        info = d.id.get_chunk_info(3)
    shutil.copyfile(path, tmp_path / "orig.h5")
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset)
        fh.write(b"\xff" * info.size)
    with open_trajectories(path) as f:
        with pytest.raises(DataError, match="cannot read rows"):
            f.read()
        with pytest.raises(DataError, match="cannot read rows"):
            f.verify()
        with pytest.raises(DataError, match="cannot read rows"):
            f.content_digest()


def test_an_empty_row_range_reads_no_rows(good):
    with open_trajectories(good) as f:
        got = f.read(rows=slice(5, 2))
    assert got.x.shape == (0, 50)


def test_dtype_is_the_stored_one(tmp_path, data):
    path = write(tmp_path / "f32.h5", *data, dtype="float32")
    with open_trajectories(path) as f:
        assert f.dtype == np.float32


def changed(path, tmp_path, change):
    copy = tmp_path / "copy.h5"
    shutil.copyfile(path, copy)
    with h5py.File(copy, "r+") as h:
        change(h)
    return content_digest(copy)


def test_digest_covers_params_group_attributes_shapes_and_attribute_sizes(good, tmp_path):
    base = content_digest(good)

    def reshape_eta(h):
        a = h["params/eta"][()]
        del h["params/eta"]
        h["params/eta"] = a.reshape(N, 1)

    digests = {
        "params attribute": changed(good, tmp_path, lambda h: h["params"].attrs.update(note="x")),
        "eta (N, 1)": changed(good, tmp_path, reshape_eta),
        "seed int32": changed(good, tmp_path, lambda h: h.attrs.__setitem__("seed", np.int32(3))),
    }
    assert base not in digests.values(), digests


def test_digest_ignores_byte_order(good, tmp_path):
    base = content_digest(good)

    def big_endian(h):
        for k in ("x", "v", "F"):
            a, desc = h[k][()], h[k].attrs["description"]
            del h[k]
            h.create_dataset(k, data=a.astype(">f8")).attrs["description"] = desc
    assert changed(good, tmp_path, big_endian) == base


def test_digest_of_a_fixed_file_is_pinned(tmp_path):
    """The digest's algorithm is stable: a fixed file's value is pinned (runs and merges
    record digests; a change of algorithm would make every record a stranger)."""
    path = tmp_path / "fixed.h5"
    with h5py.File(path, "w") as h:
        h.attrs.update(schema="odernn.trajectories", schema_version=1, created="then",
                       odernn_version="0", n_trajectories=2, n_steps=3, dt=0.5,
                       datasets=np.array(["x"], dtype=h5py.string_dtype()), seed=7)
        h["t"] = np.arange(3) * 0.5
        h["x"] = np.arange(6.0).reshape(2, 3)
        h["params/eta"] = np.array([0.25, 0.5])
    assert content_digest(path) == PINNED


PINNED = "sha256:d8f09629921198108536ea56ec6239fe54a937b6c31dc0ad96ce43dc7641beb8"


def test_each_rows_forcing_is_held_to_its_own_amplitude_in_any_block(tmp_path, monkeypatch):
    """A sample off by 1e-7 in a row driven at amplitude 0.1 is refused whatever the other
    rows' amplitudes (the tolerance was 1e-9 (1 + the largest |F| of the block checked): a row
    driven at 1000 beside it let it pass a whole read, while inspect's column blocks of the
    row alone refused it), and by read and verify alike, in rows or column blocks."""
    from odernn.data.simulate import simulate
    from odernn.data.spec import load_spec
    from odernn.data.spec_settings import with_settings

    spec = with_settings(load_spec("test").with_overrides(n=30, n_steps=40),
                         sets={"F0": [0.1, 1000.0], "integrator": "exact"})
    path = simulate(spec, tmp_path / "f.h5")
    with h5py.File(path, "r+") as h:
        amplitude = h["params/F0"][...]
        quiet = int(np.argmin(amplitude))
        assert amplitude[quiet] < 50 and amplitude.max() > 500  # 1e-7 > 1e-9 (1 + 50)
        h["F"][quiet, 30] += 1e-7
    needle = rf"F\[{quiet}, 30\] = .* the samples, times and parameters disagree"
    for block in (store.BLOCK_BYTES, 96):
        monkeypatch.setattr(store, "BLOCK_BYTES", block)
        with open_trajectories(path) as f:
            with pytest.raises(DataError, match=needle):
                f.read()
            with pytest.raises(DataError, match=needle):
                f.verify()
