"""Files written by other programs, seen as named arrays that ``odernn import`` maps.

:func:`open_source` recognises a file by its first bytes (the extension where those say
nothing): a CSV with a header line (each column an array of R rows,
:mod:`odernn.data.csvtable`), a NumPy ``.npy`` (a table: the columns of a 2-D array,
named ``0``, ``1``, ..., or the fields of a structured one), a ``.npz`` (each member an
array) or an HDF5 file (each numeric dataset an array, named by its path without the
leading ``/``; each field of a table of records by its field name). An array is 1-D (a
column) or 2-D (in ``.npz`` and HDF5: ``(trajectories, points)``).

A ``.npy`` is memory-mapped and an HDF5 dataset sliced, so reading rows costs memory for
those rows only, whatever the file's size; ``.npz`` members are loaded whole, the sum of
their sizes checked against the memory budget first.
"""

from __future__ import annotations

import math
import os
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from odernn import budget
from odernn.checks import did_you_mean
from odernn.data.csvtable import CsvColumns, read_columns, read_header
from odernn.data.filecheck import CHUNK_CACHE_BYTES, check_other_files
from odernn.data.inflate import check_filters
from odernn.data.schema import hdf5_at
from odernn.errors import DataError

FORMATS = ("csv", "npy", "npz", "hdf5")
NPY_SIGNATURE = b"\x93NUMPY"
ZIP_SIGNATURE = b"PK\x03\x04"
MAX_OBJECTS = 10_000
"""An HDF5 file with more objects than this is refused (a table has a few)."""
MAX_DEPTH = 32
"""An HDF5 file whose groups nest deeper than this is refused: visiting an object costs its
depth, so a small file of one deep chain took time as its depth squared (minutes at 9,000)."""
NUMERIC = "iuf"
"""The dtype kinds an array may have: integers and floats."""


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

    def names(self) -> list[str]:
        return list(self._shapes)

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape of array ``name``; one DataError line with a "did you mean" if none."""
        if name in self._unread:
            raise DataError(f"{self.path}: array {name!r} is {self._unread[name]}; import "
                            "reads arrays of real numbers, 1-D (columns) or 2-D (trajectories x "
                            "points)")
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
        if self.format == "csv":
            self._csv = read_columns(self.path, self._header, list(dict.fromkeys(names)),
                                     later)
            self._arrays = self._csv.arrays
            self._shapes.update({k: (self._csv.rows,) for k in self._shapes})
        elif self.format == "npz":
            todo = [name for name in dict.fromkeys(names) if name not in self._arrays]
            _check_npz_members(self.path, {name: self._shapes[name] for name in todo})
            for name in todo:
                self._arrays[name] = _npz_member(self._handle, self.path, name)

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
        last row is on a last line without a line end may have been cut short."""
        if self._csv is not None and self._csv.cut_short:
            line = self._csv.line(self._csv.rows - 1)
            return [f"the last line ({line}) has no line end: if the file was cut short, its "
                    "last row may be incomplete"]
        return []

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
    if hdf5:
        return _hdf5(path)
    if head.startswith(NPY_SIGNATURE):
        return _npy(path)
    if head.startswith(ZIP_SIGNATURE):
        return _npz(path)
    if head.startswith(b"MATLAB"):
        raise DataError(f"{path}: a MATLAB file older than v7.3, which is not HDF5; save it "
                        "with save(..., '-v7.3') or as CSV")
    if path.suffix.lower() in (".npy", ".npz", ".h5", ".hdf5", ".hdf", ".he5", ".mat"):
        raise DataError(f"{path}: not a {path.suffix} file (its first bytes are not that "
                        "format's signature; truncated or another format)")
    source = Source(path, "csv")
    source._header = read_header(path)
    source._shapes = {name: (-1,) for name in source._header.names}
    return source


def _numeric(dtype: np.dtype, path: Path, name: str) -> None:
    if dtype.kind not in NUMERIC:
        raise DataError(f"{path}: array {name!r} has dtype {dtype}; import reads numbers "
                        "(integers or floats)")


def _npy(path: Path) -> Source:
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({str(exc).splitlines()[0]})") \
            from None
    source = Source(path, "npy")
    if a.dtype.names:
        if a.ndim != 1:
            raise DataError(f"{path}: a structured array of shape {a.shape}; import reads a "
                            "1-D table of records")
        for field in a.dtype.names:
            sub = a.dtype.fields[field][0]
            if sub.shape == () and sub.kind in NUMERIC:
                source._arrays[field] = a[field]
                source._shapes[field] = a.shape
        if not source._shapes:
            raise DataError(f"{path}: no numeric field in its records; import reads numbers")
        return source
    _numeric(a.dtype, path, "the array")
    if a.ndim not in (1, 2):
        raise DataError(f"{path}: an array of shape {a.shape} is not a table; import reads a "
                        "1-D array or a 2-D one of rows x columns")
    table = a.reshape(-1, 1) if a.ndim == 1 else a
    for j in range(table.shape[1]):
        source._arrays[str(j)] = table[:, j]
        source._shapes[str(j)] = (table.shape[0],)
    return source


ZIP_ENTRY_BYTES = 600
"""Memory of one entry of a zip file's directory as Python's ``zipfile`` holds it (about 500
bytes measured), for the budget of opening an ``.npz``."""


def zip_entries(path: Path) -> int | None:
    """The number of entries a zip file's directory declares, read from its end record (and
    the ZIP64 one it points to) without parsing the directory; None where there is none."""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - (1 << 16) - 22))
        tail = fh.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) < at + 22:
            return None
        entries = int.from_bytes(tail[at + 10:at + 12], "little")
        locator = tail[at - 20:at] if at >= 20 else b""
        if entries != 0xFFFF or not locator.startswith(b"PK\x06\x07"):
            return entries
        fh.seek(int.from_bytes(locator[8:16], "little"))
        record = fh.read(40)
        return int.from_bytes(record[32:40], "little") if record[:4] == b"PK\x06\x06" else None


def _npz(path: Path) -> Source:
    entries = zip_entries(path)
    if entries is not None:  # zipfile builds an object per entry before any limit applies
        budget.check(f"{path}: a zip directory of {entries} entries", entries * ZIP_ENTRY_BYTES,
                     "that is for listing its members; keep the arrays in fewer members")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    source = Source(path, "npz")
    source._handle = archive
    try:
        for info in archive.infolist()[:MAX_OBJECTS]:
            if not info.filename.endswith(".npy"):
                continue
            name = info.filename[:-4]
            with archive.open(info) as fh:
                try:
                    version = np.lib.format.read_magic(fh)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read(fh)
                except (ValueError, OSError, EOFError) as exc:
                    raise DataError(f"{path}: member {name!r} is not a .npy array "
                                    f"({exc})") from None
            if dtype.kind in NUMERIC and len(shape) in (1, 2):
                source._shapes[name] = tuple(shape)
            else:  # named as it is if asked for (a complex x was "no array 'x'")
                source._unread[name] = f"{tuple(shape)} {dtype}"
        if not source._shapes:
            raise DataError(f"{path}: no 1-D or 2-D numeric array in it; import reads columns "
                            "(1-D) or trajectories x points (2-D)")
    except BaseException:
        archive.close()
        raise
    return source


def _check_npz_members(path: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuse loading ``.npz`` members of these shapes if, together, they exceed the memory
    budget: each is held whole, as float64 (and a copy), beside the others."""
    values = sum(int(np.prod(shape, dtype=np.int64)) for shape in shapes.values())
    listed = ", ".join(f"{name!r} {shape}" for name, shape in shapes.items())
    budget.check(f"{path}: member(s) {listed}, {values} values", 2 * 8 * values,
                 "save them as .npy, which import reads in blocks")


def _npz_member(archive: zipfile.ZipFile, path: Path, name: str) -> np.ndarray:
    with archive.open(f"{name}.npy") as fh:
        try:
            return np.lib.format.read_array(fh, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(f"{path}: member {name!r} cannot be read ({exc})") from None


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
        def visit(name: str, obj: Any) -> None:
            if len(found) + len(others) > MAX_OBJECTS:
                raise DataError(f"{path}: more than {MAX_OBJECTS} objects; import reads tables "
                                "of a few arrays")
            if name.count("/") >= MAX_DEPTH:
                raise DataError(f"{path}: groups nested more than {MAX_DEPTH} deep; import "
                                "reads tables of a few arrays")
            if isinstance(obj, h5py.Dataset):
                found.append((name, obj))
            else:
                others.append(name)

        f.visititems(visit)
        for name, d in found:
            _add_dataset(source, path, name, d)
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
        key = name if field is None else field if field not in source._shapes else \
            f"{name}/{field}"
        source._arrays[key] = d if field is None else d.fields(field)
        source._shapes[key] = tuple(d.shape)
        source._datasets[key] = d


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
