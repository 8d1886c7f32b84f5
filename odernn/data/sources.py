"""Files written by other programs, seen as named arrays that ``odernn import`` maps.

:func:`open_source` recognises a file by its first bytes (the extension where those say
nothing): a CSV with a header line (each column an array of R rows,
:mod:`odernn.data.csvtable`), a NumPy ``.npy`` or ``.npz`` (:mod:`odernn.data.numpy_files`)
or an HDF5 file (each numeric dataset an array, named by its path without the leading
``/``; each field of a table of records by its field name). An array is 1-D (a column) or
2-D (in ``.npz`` and HDF5: ``(trajectories, points)``).

A ``.npy`` is memory-mapped and an HDF5 dataset sliced, so reading rows costs memory for
those rows only, whatever the file's size; ``.npz`` members are loaded whole, the sum of
their sizes checked against the memory budget first.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from odernn import budget
from odernn.checks import did_you_mean
from odernn.data.csvtable import CsvColumns, read_columns, read_header
from odernn.data.filecheck import CHUNK_CACHE_BYTES, check_other_files
from odernn.data.inflate import check_filters
from odernn.data.numpy_files import (
    MAX_OBJECTS,
    NUMERIC,
    check_npz_members,
    npy_columns,
    npz_member,
    npz_members,
)
from odernn.data.schema import hdf5_at
from odernn.data.virtual import check_mappings
from odernn.errors import DataError
from odernn.interrupt import REQUESTED

FORMATS = ("csv", "npy", "npz", "hdf5")
NPY_SIGNATURE = b"\x93NUMPY"
ZIP_SIGNATURE = b"PK\x03\x04"
MAX_DEPTH = 32
"""An HDF5 file whose groups nest deeper than this is refused: visiting an object costs its
depth, so a small file of one deep chain took time as its depth squared (minutes at 9,000)."""


class Source:
    """A foreign file as named arrays: :meth:`names`, :meth:`shape` and :meth:`array` (an
    object sliced like a NumPy array, read only when sliced); :meth:`load` first, with the
    names that will be read; :meth:`row` names a row in a message."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.format = path, fmt
        self._arrays: dict[str, Any] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._handle: Any = None
        self._csv: CsvColumns | None = None
        self._header: Any = None
        self._unread: dict[str, str] = {}  # arrays left out, by name: their shape and dtype
        self._datasets: dict[str, Any] = {}  # the HDF5 dataset behind each array, by name
        self._fills: dict[str, Any] = {}  # an HDF5 array's fill value, by name
        self._fields: dict[str, list[str]] = {}  # HDF5 'table/field' names, by field name
        self._notes: list[str] = []
        self._stat: tuple[int, ...] | None = None  # the file's identity when opened

    def names(self) -> list[str]:
        return list(self._shapes)

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape of array ``name``; one DataError line with a "did you mean" if none."""
        if name in self._fields and name not in self._shapes and name not in self._unread:
            raise DataError(f"{self.path}: {name!r} is a field of more than one table; give "
                            f"one of {', '.join(repr(k) for k in self._fields[name])}")
        if name in self._unread:
            fields = (f"; the field(s) of that name: {', '.join(map(repr, self._fields[name]))}"
                      if name in self._fields else "")
            raise DataError(f"{self.path}: array {name!r} is {self._unread[name]}; import "
                            "reads arrays of real numbers, 1-D (columns) or 2-D (trajectories x "
                            f"points){fields}")
        if name not in self._shapes:
            kind = "column" if self.format == "csv" else "array"
            raise DataError(f"{self.path}: no {kind} {name!r}{did_you_mean(name, self._shapes)};"
                            f" it has {', '.join(self._shapes) or 'none'}")
        return self._shapes[name]

    def load(self, names: list[str], later: Callable[[int], int] | None = None) -> None:
        """Read what must be read before slicing (the CSV's columns ``names``; the ``.npz``
        members ``names``, together checked against the memory budget first; of HDF5 arrays
        ``names``, that they were written in full); a CSV's check counts ``later(rows)`` bytes
        used beside its columns afterwards."""
        for name in dict.fromkeys(names):
            self.shape(name)
            if name in self._datasets and (why := _unwritten(self._datasets[name])):
                raise DataError(f"{self.path}: array {name!r} {why}")
            if name in self._fields:  # a dataset's path, and a field's name of another
                self._notes.append(f"{name!r} is dataset /{name}; the field(s) of that name "
                                   f"are {', '.join(repr(k) for k in self._fields[name])}")
            if name in self._fills and (tail := _fill_tail(
                    self._arrays[name], self._shapes[name], self._fills[name],
                    math.prod(self._datasets[name].chunks or (1,)))):
                self._notes.append(f"array {name!r}: {tail} equal its HDF5 fill value "
                                   f"({self._fills[name]}), as in an array allocated whole and "
                                   "written in part; if the recording stopped early, they are "
                                   "not data")
        if self.format == "csv":
            self._csv = read_columns(self.path, self._header, list(dict.fromkeys(names)),
                                     later)
            self._arrays = self._csv.arrays
            self._shapes.update({k: (self._csv.rows,) for k in self._shapes})
        elif self.format == "npz":
            todo = [name for name in dict.fromkeys(names) if name not in self._arrays]
            check_npz_members(self.path, {name: self._shapes[name] for name in todo})
            for name in todo:
                self._arrays[name] = npz_member(self._handle, self.path, name)

    def array(self, name: str) -> Any:
        """Array ``name``, sliced lazily (HDF5, ``.npy``) or in memory (CSV, ``.npz``)."""
        return self._arrays[name]

    def held(self) -> int:
        """Bytes of what :meth:`load` read whole (a CSV's columns, ``.npz`` members)."""
        if self._csv is not None:
            return self._csv.nbytes
        return sum(a.nbytes for a in self._arrays.values()) if self.format == "npz" else 0

    def notes(self) -> list[str]:
        """What a user should know of the file as read (after :meth:`load`): a CSV whose
        last row is on a last line without a line end may have been cut short; an HDF5 array
        that ends in its fill value may not have been written in full; a dataset's path that
        is also a field's name means the dataset."""
        if self._csv is not None and self._csv.cut_short:
            line = self._csv.line(self._csv.rows - 1)
            return [f"the last line ({line}) has no line end: if the file was cut short, its "
                    "last row may be incomplete"]
        return self._notes

    def sha256(self, interrupted: Callable[[], bool] = lambda: False) -> str:
        """The SHA-256 of the file's bytes (hex; a CSV's from the read that parsed it);
        ``interrupted`` is asked between blocks (:func:`file_sha256`)."""
        return self._csv.sha256 if self._csv is not None else file_sha256(self.path,
                                                                          interrupted)

    def row(self, name: str, index: tuple[int, ...]) -> str:
        """Where element ``index`` of array ``name`` is, for a message."""
        if self._csv is not None:
            return f"line {self._csv.line(index[0])}"
        if len(index) == 2:
            return f"{name}[{index[0]}, {index[1]}]"
        return f"row {index[0]} (0-based)"

    def unchanged(self) -> None:
        """Refuse a source that changed since it was opened (its size, times, or the file
        itself, replaced by another under its name): it is read in two passes and hashed
        between them, so a file still being written would be imported as neither its old
        content nor its new (its recorded digest another's)."""
        try:
            info = self.path.stat()
        except OSError as exc:
            raise DataError(f"{self.path}: cannot read it ({exc.strerror or exc})") from None
        if self._stat is not None and _identity(info) != self._stat:
            raise DataError(f"{self.path}: changed while it was imported (its size, times or "
                            "inode moved); import it again once it is complete")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(path: Path | str) -> Source:
    """Open a CSV, ``.npy``, ``.npz`` or HDF5 file for import; one DataError line if it is
    none of them, missing, or not a regular file (a FIFO or device is never opened)."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DataError(f"{path}: file does not exist") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise DataError(f"{path}: is a directory; give a CSV, .npy, .npz or HDF5 file")
    if not stat.S_ISREG(info.st_mode):
        raise DataError(f"{path}: not a regular file (a FIFO, socket or device); give a CSV, "
                        ".npy, .npz or HDF5 file")
    if info.st_size == 0:
        raise DataError(f"{path}: the file is empty")
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            hdf5 = hdf5_at(fh)
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    opened = _hdf5 if hdf5 else _npy if head.startswith(NPY_SIGNATURE) else \
        _npz if head.startswith(ZIP_SIGNATURE) else None
    if opened is not None:
        source = opened(path)
        source._stat = _identity(info)
        return source
    if head.startswith(b"MATLAB"):
        raise DataError(f"{path}: a MATLAB file older than v7.3, which is not HDF5; save it "
                        "with save(..., '-v7.3') or as CSV")
    if path.suffix.lower() in (".npy", ".npz", ".h5", ".hdf5", ".hdf", ".he5", ".mat"):
        raise DataError(f"{path}: not a {path.suffix} file (its first bytes are not that "
                        "format's signature; truncated or another format)")
    source = Source(path, "csv")
    source._header = read_header(path)
    source._shapes = {name: (-1,) for name in source._header.names}
    source._stat = _identity(info)
    return source


def _identity(info: os.stat_result) -> tuple[int, ...]:
    """What says a file is unchanged: its device, inode, size and change and modification
    times (a same-size copy put in its place with its mtime kept changes the inode)."""
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _npy(path: Path) -> Source:
    source = Source(path, "npy")
    source._arrays = npy_columns(path)
    source._shapes = {name: a.shape for name, a in source._arrays.items()}
    return source


def _npz(path: Path) -> Source:
    source = Source(path, "npz")
    source._handle, source._shapes, source._unread = npz_members(path)
    return source


def _hdf5(path: Path) -> Source:
    import h5py

    try:
        f = h5py.File(path, "r", rdcc_nbytes=CHUNK_CACHE_BYTES)
    except OSError as exc:
        raise DataError(f"{path}: HDF5 file is truncated or corrupt "
                        f"({str(exc).splitlines()[0]})") from None
    source = Source(path, "hdf5")
    source._handle = f
    found: list[tuple[str, Any]] = []
    others: list[str] = []
    try:
        def visit(name: str) -> None:
            if len(found) + len(others) > MAX_OBJECTS:
                raise DataError(f"{path}: more than {MAX_OBJECTS} objects; import reads tables "
                                "of a few arrays")
            if name.count("/") >= MAX_DEPTH:
                raise DataError(f"{path}: groups nested more than {MAX_DEPTH} deep; import "
                                "reads tables of a few arrays")
            if f.get(name, getclass=True) is h5py.Dataset:
                check_mappings(f, name, path, name)  # before HDF5 decodes them to open it
                found.append((name, f[name]))
            else:
                others.append(name)

        f.visit(visit)
        for name, d in found:
            _add_dataset(source, path, name, d)
        fields, source._fields = source._fields, {}
        for field, keys in fields.items():  # a field by its own name, where that says one
            if len(keys) == 1 and field not in source._shapes and field not in source._unread:
                for held in (source._arrays, source._shapes, source._datasets, source._fills):
                    held[field] = held[keys[0]]
            else:  # a dataset's path, or a field of more than one table
                source._fields[field] = keys
        if not source._shapes:
            seen = ", ".join(f"{n} {_shape(d)} {d.dtype}" for n, d in found[:5])
            raise DataError(f"{path}: an HDF5 file that is not a table: no 1-D or 2-D numeric "
                            f"dataset (it holds {seen or 'no datasets'}); import reads columns "
                            "(1-D) or trajectories x points (2-D)")
    except BaseException:
        f.close()
        raise
    return source


def _shape(d: Any) -> str:
    """A dataset's shape in words: ``(3, 4)``, or ``(empty)`` for a null dataspace."""
    return str(tuple(d.shape)) if d.shape is not None else "(empty)"


def _add_dataset(source: Source, path: Path, name: str, d: Any) -> None:
    """Add HDF5 dataset ``d`` at ``name``: a numeric 1-D or 2-D array, or each numeric field
    of a 1-D table of records (others are left out). Of a dataset added, chunks larger than
    the memory budget are refused, so are filters that could decode past it
    (:func:`~odernn.data.inflate.check_filters`), and so is data in other files that the
    trajectory files' check refuses (external raw files; a virtual dataset's source that is
    the file itself, or virtual in turn: a cycle crashes HDF5)."""
    if d.dtype.names:
        fields = [f for f in d.dtype.names if d.ndim == 1 and d.dtype.fields[f][0].shape == ()
                  and d.dtype.fields[f][0].kind in NUMERIC]
    else:
        fields = [None] if d.dtype.kind in NUMERIC and d.ndim in (1, 2) else []
    if not fields:
        source._unread[name] = f"{_shape(d)} {d.dtype}"
        return
    check_other_files(d, path, name)
    if d.chunks is not None:
        budget.check(f"{path}: dataset {name!r} stored in chunks of {d.chunks}",
                     2 * int(np.prod(d.chunks)) * d.dtype.itemsize,
                     "HDF5 reads a whole chunk at a time; rewrite it with smaller chunks")
        check_filters(d, path, name)
    for field in fields:
        key = name if field is None else f"{name}/{field}"
        source._arrays[key] = d if field is None else d.fields(field)
        source._shapes[key] = tuple(d.shape)
        source._datasets[key] = d
        source._fills[key] = d.fillvalue if field is None else d.fillvalue[field]
        if field is not None:
            source._fields.setdefault(field, []).append(key)


FILL_SCAN_VALUES = 1 << 16
"""Values read at a time while counting an array's trailing fill values (at least a chunk's:
a smaller read of a compressed chunk decompressed the whole chunk each time)."""


def _trailing(read: Callable[[int, int, int, int], Any], n: int, points: int, fill: Any,
              values: int) -> int:
    """How many values at the end of an ``(n, points)`` array, in C order, equal ``fill``
    (NaN matching NaN), where ``read(r0, r1, c0, c1)`` gives a block of it: read backwards
    in blocks of about ``values`` values (within one row where a row is longer), up to the
    first that differs; a Ctrl-C between blocks ends it."""
    def blocks():
        if points <= values:
            step = values // points
            yield from ((max(0, hi - step), hi, 0, points) for hi in range(n, 0, -step))
        else:
            yield from ((r, r + 1, max(0, hi - values), hi) for r in range(n - 1, -1, -1)
                        for hi in range(points, 0, -values))

    run = 0
    for r0, r1, c0, c1 in blocks():
        block = np.asarray(read(r0, r1, c0, c1)).reshape(-1)[::-1]
        same = block != block if fill != fill else block == fill
        if not same.all():
            return run + int(np.argmin(same))
        run += same.size
        if REQUESTED.is_set():
            raise KeyboardInterrupt
    return run


def _fill_tail(a: Any, shape: tuple[int, ...], fill: Any, chunk: int) -> str:
    """The values at the end of HDF5 array ``a`` (of ``shape``, in chunks of ``chunk``
    values) that equal its fill value, in words (``''`` for none, or where all of it does:
    a forcing of zeros): a 1-D array's last values, a 2-D one's last trajectories or the
    last points of every trajectory. HDF5 cannot tell whether they were written, so import
    says so and goes on. The last value alone is read where it differs (most files)."""
    n, points = (1, shape[0]) if len(shape) == 1 else shape
    if n * points == 0:
        return ""
    at = (points - 1,) if len(shape) == 1 else (n - 1, points - 1)
    last = np.asarray(a[at])
    if not (last != last if fill != fill else last == fill):
        return ""
    values = max(FILL_SCAN_VALUES, chunk)
    if len(shape) == 1:
        run = _trailing(lambda r0, r1, c0, c1: a[c0:c1], 1, points, fill, values)
        return f"its last {run} value(s)" if run < points else ""
    run = _trailing(lambda r0, r1, c0, c1: a[r0:r1, c0:c1], n, points, fill, values)
    if points <= run < n * points:
        return f"its last {run // points} trajectories (rows)"
    if run == n * points:
        return ""
    cols = _trailing(lambda r0, r1, c0, c1: a[c0:c1, r0:r1].T, points, n, fill,
                     values) // n  # the array's transpose: its points as rows
    return f"the last {cols} point(s) of every trajectory" if cols else ""


def _unwritten(d: Any) -> str | None:
    """Why HDF5 dataset ``d`` holds values never written (None if it does not): storage
    never allocated, or chunks missing. HDF5 reads its fill value there, which import would
    take for measurements: a logger that allocated the whole array and stopped early."""
    if d.size == 0 or d.is_virtual or d.external:
        return None
    fill = d.fillvalue if not d.dtype.names else "its fill value"
    if d.chunks is None:
        if d.id.get_storage_size() == 0:
            return (f"was never written: HDF5 gives its fill value ({fill}) for every element, "
                    "not data")
        return None
    try:
        stored = d.id.get_num_chunks()
    except (AttributeError, RuntimeError):  # an HDF5 older than 1.10.5: cannot tell
        return None
    expected = math.prod(-(-n // c) for n, c in zip(d.shape, d.chunks, strict=True))
    if stored < expected:
        return (f"was not written in full: {expected - stored} of its {expected} chunks hold "
                f"no data, and HDF5 gives its fill value ({fill}) there; a recording that "
                "stopped early? Copy the part that was written into a file of its own")
    return None


def file_sha256(path: Path, interrupted: Callable[[], bool] = lambda: False,
                block: int = 1 << 20) -> str:
    """The SHA-256 of a file's bytes (hex), read in blocks; a KeyboardInterrupt between two
    when ``interrupted()`` (a source of gigabytes takes seconds or minutes)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        while chunk := fh.read(block):
            h.update(chunk)
            if interrupted():
                raise KeyboardInterrupt
    return h.hexdigest()
