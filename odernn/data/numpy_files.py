"""NumPy's ``.npy`` and ``.npz`` files as named arrays for ``odernn import``.

A ``.npy`` is a table: the columns of a 2-D array, named ``0``, ``1``, ..., or the fields of
a structured 1-D one; it is memory-mapped, so reading rows costs memory for those rows
only. An ``.npz`` holds one array per member, loaded whole when asked for, the members
asked for checked against the memory budget together first. Nothing is unpickled, and a
header is read only once its declared length is known to be short: NumPy reads the whole
declared length before its own limit applies, so a sparse file of 4 KB declaring a header
of gigabytes took gigabytes.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import IO

import numpy as np

from odernn import budget
from odernn.errors import DataError
from odernn.zip_directory import declared_entries

MAX_OBJECTS = 10_000
"""An ``.npz`` with more members, or an HDF5 file with more objects, is refused (a table has
a few)."""
NUMERIC = "iuf"
"""The dtype kinds an array may have: integers and floats."""
MAX_HEADER_BYTES = 10_000
"""The longest ``.npy`` header read: NumPy's own limit for loading without trust."""
_LENGTH_BYTES = {(1, 0): 2, (2, 0): 4, (3, 0): 4}


def _header(fh: IO[bytes], where: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype in the ``.npy`` header at ``fh``'s position, its length checked
    against :data:`MAX_HEADER_BYTES` before the header is read."""
    try:
        version = np.lib.format.read_magic(fh)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{where} is not a readable .npy array ({exc})") from None
    if version not in _LENGTH_BYTES:
        raise DataError(f"{where} is a .npy of format version {version[0]}.{version[1]}, which "
                        "import does not read (NumPy writes 1.0 to 3.0)")
    width = _LENGTH_BYTES[version]
    try:
        length = fh.read(width)
    except OSError as exc:
        raise DataError(f"{where} is not a readable .npy array ({exc})") from None
    size = int.from_bytes(length, "little")
    if size > MAX_HEADER_BYTES:
        raise DataError(f"{where} declares a header of {size} bytes; NumPy writes a few "
                        f"hundred, and import reads at most {MAX_HEADER_BYTES}")
    try:
        header = io.BytesIO(np.lib.format.magic(*version) + length + fh.read(size))
        np.lib.format.read_magic(header)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read(header)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{where} is not a readable .npy array ({exc})") from None
    return tuple(shape), dtype


def _numeric(dtype: np.dtype, path: Path, name: str) -> None:
    if dtype.kind not in NUMERIC:
        raise DataError(f"{path}: array {name!r} has dtype {dtype}; import reads numbers "
                        "(integers or floats)")


def npy_columns(path: Path) -> dict[str, np.ndarray]:
    """The columns of a ``.npy`` file by name, memory-mapped: each numeric field of a 1-D
    table of records, or each column of a 1-D or 2-D numeric array (a 1-D one is one
    column, ``0``)."""
    with open(path, "rb") as fh:  # np.load reads a header of any declared length
        _header(fh, f"{path}: the file")
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({str(exc).splitlines()[0]})") \
            from None
    if a.dtype.names:
        if a.ndim != 1:
            raise DataError(f"{path}: a structured array of shape {a.shape}; import reads a "
                            "1-D table of records")
        columns = {field: a[field] for field in a.dtype.names
                   if a.dtype.fields[field][0].shape == ()
                   and a.dtype.fields[field][0].kind in NUMERIC}
        if not columns:
            raise DataError(f"{path}: no numeric field in its records; import reads numbers")
        return columns
    _numeric(a.dtype, path, "the array")
    if a.ndim not in (1, 2):
        raise DataError(f"{path}: an array of shape {a.shape} is not a table; import reads a "
                        "1-D array or a 2-D one of rows x columns")
    table = a.reshape(-1, 1) if a.ndim == 1 else a
    return {str(j): table[:, j] for j in range(table.shape[1])}


def npz_members(path: Path) -> tuple[zipfile.ZipFile, dict[str, tuple[int, ...]],
                                     dict[str, str]]:
    """Open an ``.npz`` and read its members' headers: the open archive, the shape of each
    1-D or 2-D numeric member by name, and each other member's shape and dtype in words
    (named as it is if asked for: a complex x was "no array 'x'"). The directory is sized
    before it is parsed (:mod:`odernn.zip_directory`); more than :data:`MAX_OBJECTS`
    members are refused."""
    entries = declared_entries(path)
    if entries is not None and entries > MAX_OBJECTS:
        raise DataError(f"{path}: more than {MAX_OBJECTS} members ({entries}); import reads "
                        "tables of a few arrays")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    shapes: dict[str, tuple[int, ...]] = {}
    unread: dict[str, str] = {}
    try:
        infos = archive.infolist()
        if len(infos) > MAX_OBJECTS:  # the end record understated them
            raise DataError(f"{path}: more than {MAX_OBJECTS} members ({len(infos)}); import "
                            "reads tables of a few arrays")
        for info in infos:
            if not info.filename.endswith(".npy"):
                continue
            name = info.filename[:-4]
            with archive.open(info) as fh:
                shape, dtype = _header(fh, f"{path}: member {name!r}")
            if dtype.kind in NUMERIC and len(shape) in (1, 2):
                shapes[name] = shape
            else:
                unread[name] = f"{shape} {dtype}"
        if not shapes:
            raise DataError(f"{path}: no 1-D or 2-D numeric array in it; import reads columns "
                            "(1-D) or trajectories x points (2-D)")
    except BaseException:
        archive.close()
        raise
    return archive, shapes, unread


def check_npz_members(path: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuse loading ``.npz`` members of these shapes if, together, they exceed the memory
    budget: each is held whole, as float64 (and a copy), beside the others."""
    values = sum(int(np.prod(shape, dtype=np.int64)) for shape in shapes.values())
    listed = ", ".join(f"{name!r} {shape}" for name, shape in shapes.items())
    budget.check(f"{path}: member(s) {listed}, {values} values", 2 * 8 * values,
                 "save them as .npy, which import reads in blocks")


def npz_member(archive: zipfile.ZipFile, path: Path, name: str) -> np.ndarray:
    """Member ``name`` of an open ``.npz``, read whole (its header checked again: the file
    may have changed since it was listed)."""
    with archive.open(f"{name}.npy") as fh:
        _header(fh, f"{path}: member {name!r}")
        fh.seek(0)
        try:
            return np.lib.format.read_array(fh, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(f"{path}: member {name!r} cannot be read ({exc})") from None
