"""Other programs' files that lie or were never finished, as an audit of ``odernn import``
found them: HDF5 fill values taken for data, names that meant one array or another by
alphabetical order, NumPy headers and zip directories that cost gigabytes before any of
our limits applied. Each is refused in one line before memory is spent, or imported with a
note that says what HDF5 cannot tell."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest
from test_import import OPTIONS, T, assert_same, table

from odernn import budget
from odernn.data.importer import ImportOptions, import_file
from odernn.data.numpy_files import MAX_HEADER_BYTES, MAX_OBJECTS
from odernn.data.sources import open_source
from odernn.data.store import read_trajectories
from odernn.errors import DataError

SIMPLE = ImportOptions(time="t", x="x", v="v")


def columns_h5(path, n=40, **extra):
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        f["t"] = 0.1 * np.arange(n)
        f["x"], f["v"] = rng.standard_normal(n), rng.standard_normal(n)
        for k, a in extra.items():
            f[k] = a
    return path


def with_virtual_x(path, layout, n):
    """A file of t, v and a virtual x of ``layout`` (HDF5's fill value 0 where unmapped)."""
    with h5py.File(path, "w") as f:
        f["t"], f["v"] = 0.1 * np.arange(n), np.ones(n)
        f.create_virtual_dataset("x", layout, fillvalue=0.0)
    return path


def imports_source_x(tmp_path, path):
    """``path`` imports, its x that of src.h5."""
    import_file(path, tmp_path / "o.h5", SIMPLE, overwrite=True)
    with h5py.File(tmp_path / "src.h5") as f:
        np.testing.assert_array_equal(read_trajectories(tmp_path / "o.h5").x[0], f["x"][()])


# -- HDF5 fill values --------------------------------------------------------------------


def test_a_virtual_dataset_that_maps_part_of_its_extent_is_refused(tmp_path):
    """HDF5 gives a virtual dataset's fill value where no mapping reaches: a dataset of 40
    values mapping 30 was imported with ten zeros and no word."""
    columns_h5(tmp_path / "src.h5")
    layout = h5py.VirtualLayout(shape=(40,), dtype="f8")
    layout[:30] = h5py.VirtualSource(tmp_path / "src.h5", "x", shape=(40,))[:30]
    part = with_virtual_x(tmp_path / "part.h5", layout, 40)
    with pytest.raises(DataError, match=r"virtual dataset 'x' leaves 10 of its 40 values "
                                        r"unmapped; HDF5 gives its fill value there"):
        import_file(part, tmp_path / "o.h5", SIMPLE)
    assert not (tmp_path / "o.h5").exists()
    layout[30:] = h5py.VirtualSource(tmp_path / "src.h5", "x", shape=(40,))[30:]
    imports_source_x(tmp_path, with_virtual_x(tmp_path / "whole.h5", layout, 40))


@pytest.mark.parametrize("layout", ["contiguous", "chunked"])
def test_an_array_ending_in_its_fill_value_is_imported_with_a_note(tmp_path, layout):
    """A logger that allocates its arrays whole and stops early leaves HDF5's fill value
    (0 by default) at their end: in a contiguous dataset, or in the last chunk, stored
    like any other. HDF5 cannot tell them from data, so they are imported and the notes
    say how many there are; a column of the fill value throughout (no forcing) is no
    sign of it."""
    path = tmp_path / f"{layout}.h5"
    with h5py.File(path, "w") as f:
        chunks = (16,) if layout == "chunked" else None
        for k in ("t", "x", "v"):
            f.create_dataset(k, shape=(40,), dtype="f8", chunks=chunks)
        f["t"][:] = 0.1 * np.arange(40)  # the clock is written in full; the samples are not
        f["x"][:37] = np.arange(1.0, 38.0)
        f["v"][:] = 1.0
        f["F"] = np.zeros(40)
    result = import_file(path, tmp_path / "o.h5", ImportOptions(time="t", x="x", v="v",
                                                                forcing="F"))
    assert "array 'x': its last 3 value(s) equal its HDF5 fill value (0.0), as in an array " \
        "allocated whole and written in part; if the recording stopped early, they are not " \
        "data" in result.notes
    assert not [n for n in result.notes if "'F'" in n or "'v'" in n or "'t'" in n]
    assert "its last 3 value(s)" in h5py.File(tmp_path / "o.h5")["/"].attrs["import_notes"]


def test_fill_values_are_counted_at_the_end_of_trajectories_and_of_the_table():
    """2-D arrays (trajectories x points) end in fill values two ways: whole trajectories
    never recorded, or the last points of every trajectory (recorded point by point). A NaN
    fill value matches NaN. The count reads blocks from the end, within a row where a row is
    long (a row of 2e7 points was read whole), and a Ctrl-C ends it between blocks."""
    from odernn.data import sources
    from odernn.interrupt import REQUESTED

    def tail(a, fill, chunk=1):
        return sources._fill_tail(a, a.shape, fill, chunk)

    a = np.arange(1.0, 61.0).reshape(6, 10)
    assert tail(a, 0.0) == ""
    b = a.copy()
    b[4:] = 0.0
    assert tail(b, 0.0) == "its last 2 trajectories (rows)"
    c = a.copy()
    c[:, 7:] = np.nan
    assert tail(c, np.nan) == "the last 3 point(s) of every trajectory"
    c[0, 9] = 5.0  # one trajectory was written to its end
    assert tail(c, np.nan) == ""
    assert tail(np.zeros((3, 4)), 0.0) == ""  # all of it: no sign
    long = np.ones(200_000)
    long[-150_000:] = -1.0  # a run across blocks of the scan
    assert tail(long, -1.0) == "its last 150000 value(s)"
    wide = np.ones((2, 300_000))
    wide[1, 1000:] = 0.0
    read = []

    class Logged:
        def __getitem__(self, at):
            block = wide[at]
            read.append(block.size)
            return block

    # the last trajectory's own tail: no whole trajectory, and no column of every one
    assert sources._fill_tail(Logged(), wide.shape, 0.0, 1) == ""
    assert sum(read) >= 299_000
    assert max(read) <= sources.FILL_SCAN_VALUES
    REQUESTED.set()
    try:
        with pytest.raises(KeyboardInterrupt):
            tail(long, -1.0)
    finally:
        REQUESTED.clear()


# -- HDF5 names ----------------------------------------------------------------------------


def test_a_dataset_and_a_field_of_one_name_do_not_shadow_each_other(tmp_path):
    """A dataset /x and a field x of table /log: which one 'x' meant hung on alphabetical
    order (the later one replaced the earlier), and log's x could not be chosen. Now a
    dataset's path means the dataset, with a note; a field is always 'table/field', and its
    own name too where no other array has it; a name two tables share is refused."""
    columns = table(2, n=1)
    records = np.zeros(len(columns["t"]), dtype=[("t", "f8"), ("x", "f8"), ("v", "f8")])
    for k in ("t", "x", "v"):
        records[k] = columns[k]
    for order in ("a", "z"):  # the table's name before or after the dataset's
        path = tmp_path / f"{order}.h5"
        with h5py.File(path, "w") as f:
            f[f"{order}log"] = records
            f["x"] = -columns["x"]
        with open_source(path) as src:
            src.load(["x", f"{order}log/x", "t"])
            np.testing.assert_array_equal(src.array("x")[:], -columns["x"])
            np.testing.assert_array_equal(src.array(f"{order}log/x")[:], columns["x"])
            np.testing.assert_array_equal(src.array("t")[:], columns["t"])  # its own name
            assert src.notes() == [f"'x' is dataset /x; the field(s) of that name are "
                                   f"'{order}log/x'"]
    with h5py.File(tmp_path / "two.h5", "w") as f:
        f["a"], f["b"] = records, records
    with open_source(tmp_path / "two.h5") as src:
        with pytest.raises(DataError, match=r"'x' is a field of more than one table; give one "
                                            r"of 'a/x', 'b/x'"):
            src.load(["x"])
        src.load(["b/x"])


# -- NumPy headers and zip directories -------------------------------------------------------


def npy_declaring(path, length: int, version=(2, 0)):
    """A sparse .npy whose header declares ``length`` bytes and holds a few."""
    with open(path, "wb") as fh:
        fh.write(np.lib.format.magic(*version))
        fh.write(length.to_bytes(2 if version == (1, 0) else 4, "little"))
        fh.write(b"{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }")
        fh.truncate(length + 12)
    return path


def peak_mib(code: str) -> tuple[float, str]:
    """Run ``code`` in a fresh interpreter: its peak RSS (MiB, ``VmHWM``: ``ru_maxrss``
    would count the forking test process's pages) and its output."""
    hwm = ("\nprint(next(int(line.split()[1]) for line in open('/proc/self/status') "
           "if line.startswith('VmHWM:')))")
    run = subprocess.run([sys.executable, "-c", code + hwm], capture_output=True, text=True,
                         timeout=120)
    lines = run.stdout.strip().splitlines()
    return int(lines[-1]) / 1024, "\n".join(lines[:-1]) + run.stderr


@pytest.mark.parametrize("kind", ["npy", "npz"])
def test_a_npy_header_declaring_gigabytes_is_refused_before_it_is_read(tmp_path, kind):
    """NumPy reads a header's whole declared length before its own 10,000-byte limit: a
    sparse file of a few KB declaring 1 GB drove memory to gigabytes, and an .npz member
    did the same when the archive was opened. The length is read and refused first."""
    path = npy_declaring(tmp_path / "bad.npy", 1 << 30)
    if kind == "npz":  # the member holds a few bytes of its declared gigabyte
        with zipfile.ZipFile(tmp_path / "bad.npz", "w") as z, open(path, "rb") as fh:
            z.writestr("x.npy", fh.read(200))
        path = tmp_path / "bad.npz"
    code = (f"from odernn.data.sources import open_source\ntry:\n open_source({str(path)!r})\n"
            f"except Exception as e: print(e)")
    peak, out = peak_mib(code)
    assert f"declares a header of {1 << 30} bytes" in out and f"at most {MAX_HEADER_BYTES}" \
        in out, out
    assert peak < 300, f"peak RSS {peak:.0f} MiB"
    np.save(tmp_path / "good.npy", np.arange(3.0))
    assert open_source(tmp_path / "good.npy").shape("0") == (3,)


def test_npz_members_past_the_limit_are_refused_not_left_out(tmp_path):
    """The listing stopped at the 10,000th member, so an array after it was "missing"."""
    path = tmp_path / "many.npz"
    with zipfile.ZipFile(path, "w") as z:
        for i in range(MAX_OBJECTS):
            z.writestr(f"m{i}.npy", b"")
        with z.open("x.npy", "w") as fh:
            np.lib.format.write_array(fh, np.arange(3.0))
    with pytest.raises(DataError, match=rf"more than {MAX_OBJECTS} members \({MAX_OBJECTS + 1}\)"):
        open_source(path)


def test_a_zip_directory_is_sized_by_the_end_record_zipfile_itself_reads(tmp_path):
    """``zipfile`` takes the ZIP64 record beside the locator whenever there is one: a forged
    classic record declaring 1 entry of 46 bytes passed the check, and ``zipfile`` then
    parsed 70,000. The count is the one ``zipfile`` reads."""
    import struct

    from odernn.zip_directory import declared_entries

    path = tmp_path / "many.npz"
    with zipfile.ZipFile(path, "w") as z:  # more than 65535: a ZIP64 end record
        for i in range(70_000):
            z.writestr(f"m{i}.npy", b"")
    data = bytearray(path.read_bytes())
    at = data.rfind(b"PK\x05\x06")
    data[at + 8:at + 16] = struct.pack("<HHI", 1, 1, 46)
    path.write_bytes(bytes(data))
    assert declared_entries(path) == 70_000 == len(zipfile.ZipFile(path).infolist())
    with pytest.raises(DataError, match=rf"more than {MAX_OBJECTS} members \(70000\)"):
        open_source(path)


def test_a_checkpoint_declaring_millions_of_entries_is_refused_before_they_are_parsed(
        tmp_path):
    """A 155 MB .pt of 3 million directory entries took 1.7 GB and a minute in zipfile, then
    failed with a CRC message. The count is read from the end record first."""
    from odernn.learn.checkpoint import MAX_ENTRIES, load_bytes

    path = tmp_path / "many.pt"
    with zipfile.ZipFile(path, "w") as z:
        for i in range(MAX_ENTRIES + 1):
            z.writestr(f"archive/data/{i}", b"")
    seen = []
    real_init = zipfile.ZipFile.__init__

    def spy(self, *args, **kwargs):
        seen.append(args)
        real_init(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(zipfile.ZipFile, "__init__", spy)
        with pytest.raises(DataError, match=rf"lists {MAX_ENTRIES + 1} entries \(odernn writes "
                                            rf"a few dozen; it reads at most {MAX_ENTRIES}\)"):
            load_bytes(path)
    assert seen == []  # refused from the end record, before zipfile parsed the directory


# -- virtual mappings ------------------------------------------------------------------------


def test_a_virtual_dataset_of_many_mappings_is_refused_before_hdf5_decodes_them(tmp_path,
                                                                              monkeypatch):
    """HDF5 decodes a virtual dataset's whole list of mappings when it opens the dataset (a
    58 MB file of 200,000 mappings took 5.6 GB, then a traceback). The list's stored size is
    in the object's header; it is budgeted before the dataset is opened, by import and by
    the trajectory reader alike. Measured here: the estimate covers the peak."""
    n = 3000
    columns_h5(tmp_path / "src.h5", n=n)
    layout = h5py.VirtualLayout(shape=(n,), dtype="f8")
    source = h5py.VirtualSource(tmp_path / "src.h5", "x", shape=(n,))
    for i in range(n):
        layout[i] = source[i]
    with_virtual_x(tmp_path / "vds.h5", layout, n)
    from odernn.data.virtual import MAPPING_BYTES_PER_STORED_BYTE

    with h5py.File(tmp_path / "vds.h5") as f:
        stored = h5py.h5o.get_info(f.id, b"x").meta_size.obj.heap_size
    need = stored * MAPPING_BYTES_PER_STORED_BYTE
    base, _ = peak_mib("import h5py, odernn.data.sources")
    peak, out = peak_mib(f"from odernn.data.sources import open_source\n"
                         f"open_source({str(tmp_path / 'vds.h5')!r}).load(['x'])")
    assert peak - base < need / (1 << 20), (peak, base, need, out)
    monkeypatch.setenv(budget.ENV, str(need // 2))
    with pytest.raises(budget.BudgetError, match=rf"dataset 'x' with a mapping list of {stored} "
                                                 r"bytes"):
        import_file(tmp_path / "vds.h5", tmp_path / "o.h5", SIMPLE)
    opened, real_open = [], h5py.h5o.open
    monkeypatch.setattr(h5py.h5o, "open", lambda loc, name, *a, **k: opened.append(name)
                        or real_open(loc, name, *a, **k))
    with pytest.raises(budget.BudgetError):
        open_source(tmp_path / "vds.h5")
    assert b"x" not in opened and b"t" in opened  # x is refused before it is opened


def test_import_of_records_and_columns_is_unchanged(tmp_path):
    """The names a table of records always had still work: its fields by their own names."""
    columns = table(3)
    records = np.zeros(len(columns["t"]), dtype=[(k, "f8") for k in columns])
    for k, a in columns.items():
        records[k] = a
    with h5py.File(tmp_path / "records.h5", "w") as f:
        f["table"] = records
    import_file(tmp_path / "records.h5", tmp_path / "b.h5", OPTIONS)
    assert_same(read_trajectories(tmp_path / "b.h5"), columns)


# -- CSV and runs ----------------------------------------------------------------------------


def test_a_header_of_many_columns_is_checked_for_repeats_in_linear_time(tmp_path):
    """The header's duplicate check was quadratic (85 s for 120,000 columns)."""
    import time

    names = [f"c{i}" for i in range(120_000)]
    path = tmp_path / "wide.csv"
    path.write_text(",".join([*names, "c7"]) + "\n" + ",".join(["1"] * 120_001) + "\n")
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"column name 'c7' appears twice in the header \(line "
                                        r"1\)"):
        open_source(path)
    assert time.perf_counter() - start < 5


def test_an_error_in_the_first_data_line_names_its_own_line(tmp_path):
    """The first data line is split while the delimiter is chosen; an error there named the
    header's line."""
    path = tmp_path / "bad.csv"
    big = "9" * 200_000  # a field over the csv module's limit of 131072 characters
    path.write_text(f"t,x,v\n\n# a comment\n0,{big},1\n")
    with pytest.raises(DataError, match=r"bad.csv: line 4: field larger than field limit"):
        open_source(path)


def test_a_run_number_that_starts_again_is_said(tmp_path):
    """``--trajectory run`` starts a trajectory where the run number changes: a number that
    comes back after other runs (two files joined, each from run 0) made a trajectory of its
    own, unsaid. It still does, and the notes say so."""
    columns = table(4)
    columns["run"] = np.repeat([0.0, 1.0, 0.0, 2.0], T)
    path = tmp_path / "runs.csv"
    names = list(columns)
    np.savetxt(path, np.stack([columns[k] for k in names], 1), delimiter=",", fmt="%.17g",
               header=",".join(names), comments="")
    result = import_file(path, tmp_path / "o.h5", ImportOptions(v="v", trajectory="run"))
    assert result.n == 4
    assert f"run 0 of column 'run' (--trajectory) starts again at line {2 * T + 2} (trajectory " \
        "2) after other runs: read as a trajectory of its own (1 run(s) start again in all)" in \
        " ".join(result.notes), result.notes
    columns["run"] = np.repeat([0.0, 1.0, 2.0, 3.0], T)
    np.savetxt(path, np.stack([columns[k] for k in names], 1), delimiter=",", fmt="%.17g",
               header=",".join(names), comments="")
    result = import_file(path, tmp_path / "o.h5", ImportOptions(v="v", trajectory="run"),
                         overwrite=True)
    assert not [n for n in result.notes if "starts again" in n]


@pytest.mark.parametrize("kind", ["csv", "hdf5"])
def test_a_source_that_changes_while_it_is_imported_is_refused(tmp_path, monkeypatch, kind):
    """The source is read twice (the scan, the write) and hashed between: a file still being
    written was imported as neither its old content nor its new, under the digest of
    another. A change of its size or modification time is refused before the output is put
    in place; a previous output stays."""
    import os

    from odernn.data import importer

    columns = table(2)
    path = tmp_path / f"src.{'csv' if kind == 'csv' else 'h5'}"
    if kind == "csv":
        names = list(columns)
        np.savetxt(path, np.stack([columns[k] for k in names], 1), delimiter=",", fmt="%.17g",
                   header=",".join(names), comments="")
    else:
        with h5py.File(path, "w") as f:
            for k, a in columns.items():
                f[k] = a
    import_file(path, tmp_path / "o.h5", OPTIONS)
    before = (tmp_path / "o.h5").read_bytes()
    real = importer._write

    def write_then_touch(*args, **kwargs):
        real(*args, **kwargs)
        info = path.stat()
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000))

    monkeypatch.setattr(importer, "_write", write_then_touch)
    with pytest.raises(DataError, match="changed while it was imported"):
        import_file(path, tmp_path / "o.h5", OPTIONS, overwrite=True)
    assert (tmp_path / "o.h5").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["o.h5", path.name])

    def replace_keeping_mtime(*args, **kwargs):  # as cp -p or rsync -t put a copy in place
        real(*args, **kwargs)
        info = path.stat()
        copy = path.with_name("copy")
        copy.write_bytes(path.read_bytes())
        os.utime(copy, ns=(info.st_atime_ns, info.st_mtime_ns))
        os.replace(copy, path)

    monkeypatch.setattr(importer, "_write", replace_keeping_mtime)
    with pytest.raises(DataError, match="changed while it was imported"):
        import_file(path, tmp_path / "o.h5", OPTIONS, overwrite=True)
    assert (tmp_path / "o.h5").read_bytes() == before


def test_overlapping_mappings_cannot_hide_a_hole_and_an_unlimited_one_is_read(tmp_path):
    """The mappings' sizes summed to the extent where two overlapped and hid an unmapped part
    (imported as 0.0, unsaid); their union is counted now. A mapping of unlimited extent
    (HDF5 cannot count its points) made a traceback where it had imported."""
    columns_h5(tmp_path / "src.h5", n=10)
    source = h5py.VirtualSource(tmp_path / "src.h5", "x", shape=(10,))
    layout = h5py.VirtualLayout(shape=(10,), dtype="f8")
    layout[0:5] = source[0:5]
    layout[0:5] = source[0:5]  # again: 5 + 5 = 10 values mapped, but [5:8] by none
    layout[8:10] = source[8:10]
    with pytest.raises(DataError, match="leaves 3 of its 10 values unmapped"):
        import_file(with_virtual_x(tmp_path / "holes.h5", layout, 10), tmp_path / "o.h5", SIMPLE)
    src = h5py.VirtualSource(tmp_path / "src.h5", "x", shape=(10,), maxshape=(None,))
    unlimited = h5py.VirtualLayout(shape=(10,), dtype="f8", maxshape=(None,))
    unlimited[0:h5py.h5s.UNLIMITED] = src[0:h5py.h5s.UNLIMITED]
    imports_source_x(tmp_path, with_virtual_x(tmp_path / "unlimited.h5", unlimited, 10))


def test_a_virtual_source_with_many_mappings_is_refused_before_hdf5_opens_it(tmp_path,
                                                                           monkeypatch):
    """A virtual dataset reading another's that is virtual in turn is refused (no chains);
    opening that one to find out decoded its whole mapping list first (376 MiB under a
    64 MiB budget for 20,000). Its list is budgeted before it is opened."""
    from odernn.data import virtual

    columns_h5(tmp_path / "base.h5", n=10)
    inner = h5py.VirtualLayout(shape=(10,), dtype="f8")
    for i in range(10):
        inner[i] = h5py.VirtualSource(tmp_path / "base.h5", "x", shape=(10,))[i]
    with h5py.File(tmp_path / "inner.h5", "w") as f:
        f.create_virtual_dataset("x", inner, fillvalue=0.0)
    outer = h5py.VirtualLayout(shape=(10,), dtype="f8")
    outer[:] = h5py.VirtualSource(tmp_path / "inner.h5", "x", shape=(10,))
    with_virtual_x(tmp_path / "outer.h5", outer, 10)
    with pytest.raises(DataError, match="which is a virtual dataset"):
        import_file(tmp_path / "outer.h5", tmp_path / "o.h5", SIMPLE)
    with h5py.File(tmp_path / "inner.h5") as f:
        stored = h5py.h5o.get_info(f.id, b"x").meta_size.obj.heap_size
    with h5py.File(tmp_path / "outer.h5") as f:
        own = h5py.h5o.get_info(f.id, b"x").meta_size.obj.heap_size
    assert stored > own
    monkeypatch.setattr(virtual, "MAPPING_BYTES_PER_STORED_BYTE", 1 << 20)
    monkeypatch.setenv(budget.ENV, str((own + stored) << 19))  # the outer's list, not the inner's
    with pytest.raises(budget.BudgetError, match=rf"inner.h5: dataset 'x' with a mapping list of "
                                                 rf"{stored} bytes"):
        import_file(tmp_path / "outer.h5", tmp_path / "o.h5", SIMPLE)


def test_odd_names_and_versions_are_said_as_they_are(tmp_path):
    """A .npy of an unknown format version was "not a readable .npy array ((4, 0))"; a run
    number of 8 digits was rounded in the note (2.02312e+07); a dataset that import cannot
    read, named like a table's field, hid the field from its message."""
    path = npy_declaring(tmp_path / "v4.npy", 60, version=(1, 0))
    data = bytearray(path.read_bytes())
    data[6:8] = bytes([4, 0])
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"v4.npy: the file is a .npy of format version 4.0, "
                                        r"which import does not read"):
        open_source(path)
    records = np.zeros(4, dtype=[("t", "f8"), ("x", "f8")])
    with h5py.File(tmp_path / "names.h5", "w") as f:
        f["tab"] = records
        f["x"] = np.array([b"a", b"b"])
    with open_source(tmp_path / "names.h5") as src, \
            pytest.raises(DataError, match=r"array 'x' is .*; the field\(s\) of that name: "
                                           r"'tab/x'"):
        src.shape("x")
    columns = table(3, n=3)
    columns["run"] = np.repeat([20231207.0, 20231208.0, 20231207.0], T)
    names = list(columns)
    np.savetxt(tmp_path / "runs.csv", np.stack([columns[k] for k in names], 1), delimiter=",",
               fmt="%.17g", header=",".join(names), comments="")
    result = import_file(tmp_path / "runs.csv", tmp_path / "o.h5",
                         ImportOptions(v="v", trajectory="run"))
    assert any(n.startswith("run 20231207 of column 'run'") for n in result.notes), result.notes
