"""A dataset's filters bounded before HDF5 decodes a chunk: a forged gzip or SZIP chunk that
decodes past its declared size is refused in one line and bounded memory; honest compressed
files still read, under a budget small enough that every chunk is inflated here first."""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
import sys
import zlib
from pathlib import Path

import h5py
import h5py.h5z as h5z
import numpy as np
import pytest
from test_budget import GB, PEAK, limit_memory, zeros_file

from odernn import budget
from odernn.data import inflate
from odernn.data.inflate import check_filters
from odernn.errors import DataError

BOMB = 1 << 30
"""What the forged chunk inflates to: HDF5 would hold 2 GiB or more for it."""


def bomb(size: int = BOMB) -> bytes:
    """A zlib stream of ``size`` zero bytes (about ``size / 1000``), made in 1 MiB pieces."""
    z, piece = zlib.compressobj(9), bytes(1 << 20)
    return b"".join([*(z.compress(piece) for _ in range(size >> 20)), z.flush()])


def forged(path: Path) -> Path:
    """An odernn file of zeros in 8 KiB chunks, the first of which inflates to 1 GiB."""
    zeros_file(path, 4, 4096, chunk=(1, 1024))
    with h5py.File(path, "r+") as f:
        f["x"].id.write_direct_chunk((0, 0), bomb())
    return path


def test_a_forged_gzip_chunk_is_refused_before_hdf5_inflates_it(tmp_path):
    path = forged(tmp_path / "forged.h5")
    assert path.stat().st_size < 2 << 20
    env = {**os.environ, budget.ENV: "512M", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "odernn", "inspect", str(path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=limit_memory)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    lines = err.strip().splitlines()
    assert os.waitstatus_to_exitcode(status) == 2, err
    assert len(lines) == 1 and "chunk (0, 0) of dataset 'x'" in lines[0], err
    assert "inflates past the chunk's declared 8192 bytes" in lines[0]
    assert usage.ru_maxrss * 1024 < PEAK, f"peak {usage.ru_maxrss * 1024 / GB:.2f} GB"


def test_a_forged_chunk_in_an_imported_table_is_refused(tmp_path):
    table = tmp_path / "table.h5"
    with h5py.File(table, "w") as f:
        f.create_dataset("t", data=np.arange(4096.0))
        x = f.create_dataset("x", data=np.zeros(4096), chunks=(1024,), compression="gzip")
        x.id.write_direct_chunk((0,), bomb(64 << 20))
    done = subprocess.run([sys.executable, "-m", "odernn", "import", str(table), "-o",
                           str(tmp_path / "out.h5"), "--derive-v"],
                          env={**os.environ, budget.ENV: "64M"}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    assert "inflates past the chunk's declared 8192 bytes" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "out.h5").exists()


def test_an_honest_compressed_file_reads_with_every_chunk_inflated_first(tmp_path, monkeypatch):
    from test_cli import SPEC

    from odernn.data.simulate import simulate
    from odernn.data.spec import parse_spec
    from odernn.data.store import read_trajectories as read

    text = SPEC.replace("n_steps = 40", "n_steps = 30000")
    simulate(parse_spec(text), tmp_path / "plain.h5")
    simulate(parse_spec('compression = "gzip"\n' + text), tmp_path / "gzip.h5")
    inflated = []
    check = inflate._check_stream
    monkeypatch.setattr(inflate, "_check_stream", lambda *a: inflated.append(a) or check(*a))
    monkeypatch.setenv(budget.ENV, "16M")
    ours, plain = read(tmp_path / "gzip.h5"), read(tmp_path / "plain.h5")
    assert len(inflated) >= 6  # every chunk of x and v (and F) was inflated here
    np.testing.assert_array_equal(ours.x, plain.x)
    monkeypatch.setenv(budget.ENV, "4G")  # the default where memory allows
    inflated.clear()
    read(tmp_path / "gzip.h5")
    assert inflated == []  # no honest chunk of 1 MiB needs it


def dataset(path: Path, **options) -> h5py.Dataset:
    """Smooth rows in chunks of 32 KiB (that compress: else an optional filter is skipped)."""
    f = h5py.File(path, "w")
    data = np.sin(np.linspace(0, 20, 8 * 4096)).reshape(8, 4096).round(3)
    return f.create_dataset("x", data=data, chunks=(1, 4096), **options)


def test_lzf_is_bounded_by_its_expansion(tmp_path, monkeypatch):
    d = dataset(tmp_path / "lzf.h5", compression="lzf")
    stored = max(d.id.get_chunk_info(i).size for i in range(8))
    assert stored < 4096 * 8
    monkeypatch.setenv(budget.ENV, str(inflate.GROWTH * inflate.EXPANSION[h5z.FILTER_LZF]
                                       * stored - 1))
    with pytest.raises(DataError, match="an LZF chunk of .* may decode to"):
        check_filters(d, tmp_path / "lzf.h5", "x")
    monkeypatch.setenv(budget.ENV, "64M")
    check_filters(d, tmp_path / "lzf.h5", "x")
    d.file.close()


def test_an_szip_stream_declaring_more_than_its_chunk_is_refused(tmp_path, monkeypatch):
    """Under a budget below 4 GiB (what its 4-byte head can declare) every chunk's head is
    read."""
    monkeypatch.setenv(budget.ENV, "1G")
    path = tmp_path / "szip.h5"
    d = dataset(path, compression="szip")
    check_filters(d, path, "x")  # honest: each stream declares the chunk's 32768 bytes
    mask, raw = d.id.read_direct_chunk((3, 0))
    assert mask == 0  # SZIP applied
    assert int.from_bytes(raw[:4], "little") == 4096 * 8
    d.id.write_direct_chunk((3, 0), (1 << 31).to_bytes(4, "little") + raw[4:])
    with pytest.raises(DataError, match=r"chunk \(3, 0\) .* SZIP stream declares 2147483648 "
                       r"bytes, more than the chunk's 32768"):
        check_filters(d, path, "x")
    d.file.close()


@pytest.mark.parametrize("pipeline, needle", [
    ([32015], "uses filter 32015"),
    ([h5z.FILTER_DEFLATE, h5z.FILTER_LZF], "pipeline gzip then LZF"),
    ([h5z.FILTER_DEFLATE, h5z.FILTER_SHUFFLE], "pipeline gzip then shuffle"),
])
def test_filters_it_cannot_bound_are_refused(tmp_path, pipeline, needle):
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk((1, 64))
    for code in pipeline:
        options = (4,) if code == h5z.FILTER_DEFLATE else ()
        dcpl.set_filter(code, h5z.FLAG_OPTIONAL, options)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        space = h5py.h5s.create_simple((2, 64))
        h5py.h5d.create(f.id, b"x", h5py.h5t.IEEE_F64LE, space, dcpl=dcpl)
        with pytest.raises(DataError, match=needle):
            check_filters(f["x"], tmp_path / "f.h5", "x")


def test_an_unreadable_chunk_index_is_one_line(tmp_path, monkeypatch):
    d = dataset(tmp_path / "g.h5", compression="gzip")
    monkeypatch.setenv(budget.ENV, "1M")  # so that the chunks are walked

    def broken(*_):
        raise OSError("B-tree signature mismatch")

    monkeypatch.setattr(inflate, "_chunks", broken)
    with pytest.raises(DataError, match="chunk index is unreadable .*B-tree"):
        check_filters(d, tmp_path / "g.h5", "x")
    d.file.close()


def hdf5_library() -> ctypes.CDLL:
    """The HDF5 library h5py runs on (for what h5py does not expose)."""
    with open("/proc/self/maps") as fh:
        paths = {line.split()[-1] for line in fh if "/libhdf5" in line and "_hl" not in line}
    assert paths, "h5py's HDF5 library is not mapped"
    return ctypes.CDLL(sorted(paths)[0])


def low_level(path: Path, data: np.ndarray, chunks: tuple[int, ...], filters, opts: int = 0):
    """A dataset ``x`` with the filters ``[(code, options)]`` in this order, and the chunk
    options ``opts`` (1 << 1: partial edge chunks left unfiltered)."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk(chunks)
    if opts:
        library = hdf5_library()
        library.H5Pset_chunk_opts.argtypes = [ctypes.c_int64, ctypes.c_uint]
        assert library.H5Pset_chunk_opts(dcpl.id, opts) >= 0
    for code, options in filters:
        dcpl.set_filter(code, h5z.FLAG_OPTIONAL, options)
    with h5py.File(path, "w") as f:
        x = h5py.h5d.create(f.id, b"x", h5py.h5t.IEEE_F64LE,
                            h5py.h5s.create_simple(data.shape), dcpl=dcpl)
        x.write(h5py.h5s.ALL, h5py.h5s.ALL, data)


def checked(path: Path) -> None:
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["x"][()], f["x"][()])  # HDF5 reads it
        check_filters(f["x"], path, "x")


def test_honest_pipelines_that_other_writers_make_are_read(tmp_path, monkeypatch):
    """Under a budget where every chunk is inflated here first: Fletcher-32 before gzip (as
    PyTables writes it: the stream then inflates to the chunk and its checksum), and an
    edge chunk that HDF5 left unfiltered (no gzip stream). Both were refused as forged."""
    monkeypatch.setenv(budget.ENV, "1M")
    data = np.random.default_rng(0).random(100)
    low_level(tmp_path / "a.h5", data, (64,), [(h5z.FILTER_FLETCHER32, ()),
                                                (h5z.FILTER_DEFLATE, (4,))])
    checked(tmp_path / "a.h5")
    low_level(tmp_path / "b.h5", data, (64,), [(h5z.FILTER_DEFLATE, (4,))], opts=1 << 1)
    with h5py.File(tmp_path / "b.h5") as f:
        assert f["x"].id.get_chunk_info(1).size == 64 * 8  # the edge chunk, unfiltered
    checked(tmp_path / "b.h5")


def test_only_a_partial_chunk_at_the_edge_may_be_stored_unfiltered(tmp_path, monkeypatch):
    """A chunk that is no gzip stream passes only where HDF5 may have left it unfiltered: a
    partial chunk at the dataset's edge, stored at the chunk's full size. The last chunk of
    a dataset its chunks divide exactly is whole, and an edge chunk of another size is no
    unfiltered chunk: such bytes are forged."""
    monkeypatch.setenv(budget.ENV, "256K")  # every chunk here inflated first
    for n, stored, forged in ((100, 64 * 8, False), (128, 64 * 8, True), (100, 256, True)):
        path = tmp_path / f"x{n}-{stored}.h5"
        low_level(path, np.random.default_rng(0).random(n), (64,), [(h5z.FILTER_DEFLATE, (4,))],
                  opts=1 << 1)  # partial edge chunks left unfiltered
        with h5py.File(path, "r+") as f:
            f["x"].id.write_direct_chunk((64,), bytes(stored))  # no gzip stream
        if not forged:
            checked(path)
            continue
        with h5py.File(path, "r") as f, pytest.raises(DataError, match="gzip stream is corrupt"):
            check_filters(f["x"], path, "x")


def test_forged_scale_offset_parameters_are_refused(tmp_path):
    """Scale-offset decodes the number of elements its parameters declare: a forged count
    made HDF5 allocate past the chunk, and at 2^24 crash the process."""
    path = tmp_path / "so.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.full(2 * 12345, 7, dtype="i4"), chunks=(12345,),
                         scaleoffset=0)
    honest = path.read_bytes()
    for at in [i for i in range(len(honest) - 3) if honest[i:i + 4] == (12345).to_bytes(4,
                                                                                 "little")]:
        path.write_bytes(honest[:at] + (1 << 24).to_bytes(4, "little") + honest[at + 4:])
        with contextlib.suppress(OSError), h5py.File(path, "r") as f:
            if f["x"].id.get_create_plist().get_filter(0)[2][2] == 1 << 24:
                break
    else:
        pytest.fail("the filter's element count was not found in the file")
    forged = r"scale-offset filter declares \(elements, bytes\) = \(16777216, 4\)"
    with h5py.File(path, "r") as f, pytest.raises(DataError, match=forged):
        check_filters(f["x"], path, "x")


def test_a_chunk_address_past_the_file_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv(budget.ENV, "1M")
    path = tmp_path / "g.h5"
    dataset(path, compression="gzip").file.close()
    with h5py.File(path, "r") as f:
        at = f["x"].id.get_chunk_info(1).byte_offset
    raw = path.read_bytes()
    where = raw.find(at.to_bytes(8, "little"))
    path.write_bytes(raw[:where] + (1 << 63).to_bytes(8, "little") + raw[where + 8:])
    with h5py.File(path, "r") as f, pytest.raises(DataError, match=r"chunk \(1, 0\) .*unreadable"):
        check_filters(f["x"], path, "x")


def test_import_leaves_out_a_dataset_it_does_not_read_whatever_its_filter(tmp_path):
    from odernn.data import sources

    path = tmp_path / "table.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("t", data=np.arange(100.0), chunks=(50,), compression="gzip")
        f.create_dataset("x", data=np.zeros((3, 100)), chunks=(3, 50), compression="gzip")
        f.create_dataset("images", data=np.zeros((2, 4, 4)), chunks=(1, 4, 4),
                         compression=307, allow_unknown_filter=True)  # bzip2, not here
    assert sorted(sources.open_source(path)._shapes) == ["t", "x"]
