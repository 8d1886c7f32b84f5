"""Checks of an untrusted trajectory file's structure, before any trajectory is read.

The metadata is checked first, declared sizes are bounded before anything is
allocated, and only plain datasets are accepted (no links, external files or
nested groups); :func:`open_checked` runs them all and reads the time grid.
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from odernn import budget
from odernn.data.inflate import check_filters
from odernn.data.schema import (
    DATASETS,
    MAX_ATTR_BYTES,
    MAX_ELEMENTS,
    REQUIRED_ATTRS,
    SCHEMA,
    SCHEMA_VERSION,
    TRAJECTORY_SCALE,
    is_scale_name,
    off_grid,
)
from odernn.data.virtual import check_mappings, check_virtual
from odernn.errors import DataError

MAX_MEMBERS = 1024
"""Refuse more attributes or group members than this."""
MAX_READ_CHUNK_BYTES = 64 << 20
"""Refuse datasets stored in chunks larger than this: HDF5 decompresses a whole chunk to read
any part of it (a chunk may declare up to 4 GiB; odernn writes at most
:data:`odernn.data.chunks.MAX_CHUNK_BYTES`)."""


@dataclass(frozen=True)
class CheckedFile:
    """An open HDF5 file whose structure passed every check, and what the checks found."""

    file: h5py.File
    attrs: dict[str, Any]
    """Root attributes as Python values."""
    n: int
    n_steps: int
    names: tuple[str, ...]
    """The trajectory datasets, in :data:`~odernn.data.schema.DATASETS` order."""
    datasets: dict[str, h5py.Dataset]
    """The trajectory datasets by name, opened lazily."""
    params: dict[str, h5py.Dataset]
    """The parameter datasets by name, opened lazily."""
    t: np.ndarray


def open_checked(path: Path) -> CheckedFile:
    """Open ``path`` and check its header, members, every dataset's dtype, shape and storage,
    and its time grid (the one dataset read); raise DataError saying what is wrong."""
    f = _open_h5(path)
    try:
        attrs = read_attrs(f, path)
        n, n_steps, names = _check_header(attrs, path)
        datasets, params = _check_members(f, path, names)
        shape = (n, n_steps)
        _check_dataset(datasets["t"], path, "t", (n_steps,))
        for name in [k for k in datasets if is_scale_name(k)]:  # optional; odernn reads none
            d = datasets.pop(name)
            _check_dataset(d, path, name, (n,) if name == TRAJECTORY_SCALE else d.shape[:1],
                           integer=True)
        for name in names:
            _check_dataset(datasets[name], path, name, shape)
        for name, d in params.items():
            _check_dataset(d, path, f"params/{name}", (n, *d.shape[1:2]))
        if len({datasets[k].dtype for k in names}) != 1:
            raise DataError(f"{path}: datasets {', '.join(names)} differ in dtype; "
                            f"expected one float type for all")
        budget.check(f"{path}: time grid of n_steps = {n_steps} points",
                     4 * n_steps * budget.FLOAT64, "that is for reading and checking it")
        t = _read_time(datasets["t"], path, attrs["dt"])
    except BaseException:
        f.close()
        raise
    return CheckedFile(f, attrs, n, n_steps, names, {k: datasets[k] for k in names}, params, t)


CHUNK_CACHE_BYTES = 1 << 20
"""Each dataset's chunk cache when a file is read (HDF5 1.x's default; HDF5 2.0's 8 MiB, per
dataset and per open file, held about 25 MiB of a streamed training's memory, while odernn
reads whole chunks, each once)."""


def _open_h5(path: Path) -> h5py.File:
    if not path.exists():
        raise DataError(f"{path}: file does not exist")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    try:
        return h5py.File(path, "r", rdcc_nbytes=CHUNK_CACHE_BYTES)
    except OSError as err:
        if not h5py.is_hdf5(path):
            raise DataError(f"{path}: not an HDF5 file (no HDF5 signature; truncated "
                            f"before its header, or another format)") from err
        raise DataError(f"{path}: HDF5 file is truncated or corrupt ({err})") from err


ATTR_VALUE_BYTES = 64
"""Memory of one element of an attribute as a Python value (a str or float in a list: about
60 bytes measured for short strings), for the budget of reading them."""


def read_attrs(obj: h5py.HLObject, path: Path, skip: Collection[str] = ()) -> dict[str, Any]:
    """Attributes as Python values (but those named in ``skip``), each sized before it is
    read, and their elements together within the memory budget as Python values."""
    if len(obj.attrs) > MAX_MEMBERS:
        raise DataError(f"{path}: {len(obj.attrs)} attributes; at most {MAX_MEMBERS} are allowed")
    names = [name for name in obj.attrs if name not in skip]
    elements = sum(h5py.h5a.open(obj.id, name.encode()).get_space().get_simple_extent_npoints()
                   for name in names)
    budget.check(f"{path}: {len(names)} attributes of {elements} values", elements *
                 ATTR_VALUE_BYTES, "that is for reading them as Python values")
    out = {}
    for name in names:
        aid = h5py.h5a.open(obj.id, name.encode())
        space, dtype = aid.get_space(), aid.dtype
        vlen_str = h5py.check_string_dtype(dtype) is not None and dtype.kind == "O"
        if not (vlen_str or dtype.kind in "biufS"):
            raise DataError(f"{path}: attribute '{name}' has unsupported type {dtype}; expected "
                            f"strings or numbers")
        if space.get_simple_extent_type() == h5py.h5s.NULL:  # declared, no value (h5py.Empty)
            out[name] = None
            continue
        count = space.get_simple_extent_npoints()
        declared = count * (1 if vlen_str else dtype.itemsize)
        if declared > MAX_ATTR_BYTES:
            raise DataError(f"{path}: attribute '{name}' declares {declared} bytes; attributes "
                            f"are limited to {MAX_ATTR_BYTES} bytes (1 MiB)")
        # A variable-length string cannot be sized before reading; it is bounded by the
        # file itself and checked right after.
        value = python_value(obj.attrs[name])
        texts = value if isinstance(value, list) else [value]
        size = sum(len(v.encode()) for v in texts if isinstance(v, str))
        if size > MAX_ATTR_BYTES:
            raise DataError(f"{path}: attribute '{name}' is {size} bytes of text; attributes "
                            f"are limited to {MAX_ATTR_BYTES} bytes (1 MiB)")
        out[name] = value
    return out


def python_value(value: Any) -> Any:
    """An attribute value as read by h5py made plain Python: str, int, float, bool, lists."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return [python_value(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _check_header(attrs: dict[str, Any], path: Path) -> tuple[int, int, tuple[str, ...]]:
    """Check schema, version and required attributes; return ``(N, T, dataset names)``."""
    if "schema" not in attrs:
        raise DataError(f"{path}: not an odernn trajectory file (no 'schema' attribute; "
                        f"expected schema '{SCHEMA}'); another program's data: bring it in "
                        "with odernn import")
    if attrs["schema"] != SCHEMA:
        raise DataError(f"{path}: schema is {attrs['schema']!r}; expected '{SCHEMA}'")
    version = attrs.get("schema_version")
    if version != SCHEMA_VERSION:
        found = "missing" if version is None else f"{version!r}"
        raise DataError(f"{path}: schema_version is {found}; this odernn reads schema version "
                        f"{SCHEMA_VERSION} only")
    missing = [k for k in REQUIRED_ATTRS if k not in attrs]
    if missing:
        raise DataError(f"{path}: missing attribute(s) {', '.join(map(repr, missing))}; "
                        f"schema version {SCHEMA_VERSION} requires {', '.join(REQUIRED_ATTRS)}")
    if attrs["n_trajectories"] == 0:
        raise DataError(f"{path}: the dataset is empty (0 trajectories)")
    if attrs["n_steps"] in (0, 1):
        raise DataError(f"{path}: trajectories of {attrs['n_steps']} point(s) have no step to "
                        "learn or roll out; at least 2 are needed")
    n = _int_attr(attrs, "n_trajectories", 1, path)
    T = _int_attr(attrs, "n_steps", 2, path)
    if n * T > MAX_ELEMENTS:
        raise DataError(f"{path}: declares {n} trajectories x {T} steps = {n * T} values per "
                        f"dataset, more than the {MAX_ELEMENTS} allowed; refusing the file")
    dt = attrs["dt"]
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not 0 < dt < math.inf:
        raise DataError(f"{path}: attribute 'dt' is {dt!r}; expected a finite number > 0")
    names = attrs["datasets"]
    names = [names] if isinstance(names, str) else names
    if (not isinstance(names, list) or "x" not in names or len(set(names)) != len(names)
            or not set(names) <= set(DATASETS)):
        raise DataError(f"{path}: attribute 'datasets' is {names!r}; expected distinct names "
                        f"among {list(DATASETS)} including 'x'")
    for key in ("created", "odernn_version"):
        if not isinstance(attrs[key], str):
            raise DataError(f"{path}: attribute '{key}' is {attrs[key]!r}; expected a string")
    return n, T, tuple(k for k in DATASETS if k in names)


def _int_attr(attrs: dict[str, Any], key: str, minimum: int, path: Path) -> int:
    value = attrs[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DataError(f"{path}: attribute '{key}' is {value!r}; expected an integer >= {minimum}")
    return value


def _check_members(f: h5py.File, path: Path, names: tuple[str, ...]
                   ) -> tuple[dict[str, h5py.Dataset], dict[str, h5py.Dataset]]:
    """The root's datasets and ``params/`` datasets; refuse anything else (links, groups)."""
    allowed = {"t", *names}
    datasets = _plain_members(f, path, "/", {"params"})
    extra = {k for k in datasets if not is_scale_name(k)} - allowed - {"params"}
    if extra:
        listed = f"attribute 'datasets' lists {list(names)}" if extra <= set(DATASETS) else (
            f"schema version {SCHEMA_VERSION} has t, {', '.join(names)} and params")
        raise DataError(f"{path}: unexpected member(s) {', '.join(sorted(extra))}; {listed}")
    for key in ("t", *names):
        if key not in datasets:
            listed = "" if key == "t" else " (listed in attribute 'datasets')"
            raise DataError(f"{path}: dataset '{key}'{listed} is missing")
    group = datasets.pop("params", None)
    if group is None:
        return datasets, {}
    if not isinstance(group, h5py.Group):
        raise DataError(f"{path}: '/params' is a dataset; expected a group of parameter datasets")
    return datasets, _plain_members(group, path, "/params/", set())


def _plain_members(group: h5py.Group, path: Path, where: str,
                   groups: set[str]) -> dict[str, Any]:
    """Members of ``group`` by name (datasets opened lazily); only hard links, only ``groups``."""
    if len(group) > MAX_MEMBERS:
        raise DataError(f"{path}: group '{where}' has more than {MAX_MEMBERS} members")
    out: dict[str, Any] = {}
    for key in group:
        link = group.get(key, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise DataError(f"{path}: '{where}{key}' is a {type(link).__name__}; odernn files "
                            f"hold only plain datasets (no soft or external links)")
        if group.get(key, getclass=True) is h5py.Dataset:
            out[key] = _open_dataset(group, key, path.resolve().parent)
        elif key in groups:
            out[key] = group[key]
        else:
            raise DataError(f"{path}: unexpected group '{where}{key}'; schema version "
                            f"{SCHEMA_VERSION} has datasets t, x, v, F and one group, params, "
                            f"of datasets (no nested groups)")
    return out


def _open_dataset(group: h5py.Group, name: str, directory: Path) -> h5py.Dataset:
    """Open a dataset lazily; a virtual dataset reads its sources relative to ``directory``."""
    check_mappings(group, name, Path(group.file.filename), f"{group.name.lstrip('/')}/{name}"
                   .lstrip("/"))
    dapl = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
    dapl.set_virtual_prefix(os.fsencode(directory))
    return h5py.Dataset(h5py.h5d.open(group.id, name.encode(), dapl))


def _check_dataset(d: h5py.Dataset, path: Path, label: str, shape: tuple[int, ...],
                   integer: bool = False) -> None:
    """Dtype, shape, declared size and the storage behind ``d``, all without reading data;
    ``integer``: a dimension scale's index, 1-D of integers (at least one)."""
    if integer:
        if d.dtype.kind not in "iu" or d.ndim != 1 or d.size < 1:
            raise DataError(f"{path}: dataset '{label}' has dtype {d.dtype} and shape {d.shape}; "
                            f"expected a dimension scale: integers of shape (n,), n >= 1")
    elif d.dtype.kind != "f" or d.dtype.itemsize not in (4, 8):
        raise DataError(f"{path}: dataset '{label}' has dtype {d.dtype}; expected float32 or "
                        f"float64")
    if label.startswith("params/") and (d.ndim not in (1, 2) or 0 in d.shape[1:]):
        raise DataError(f"{path}: dataset '{label}' has shape {d.shape}; expected (N,) or (N, K) "
                        f"with N = {shape[0]}, K >= 1")
    if d.shape != shape:
        raise DataError(f"{path}: dataset '{label}' has shape {d.shape}; expected {shape} "
                        f"(from n_trajectories and n_steps)")
    if d.size > MAX_ELEMENTS:
        raise DataError(f"{path}: dataset '{label}' declares {d.size} values, more than the "
                        f"{MAX_ELEMENTS} allowed")
    check_storage(d, path, label)


def check_storage(d: h5py.Dataset, path: Path, label: str) -> None:
    """Refuse storage HDF5 cannot read safely or fully: data in other files unchecked
    (:func:`check_other_files`), chunks over :data:`MAX_READ_CHUNK_BYTES`, chunks or bytes
    missing, filters that could decode past the budget
    (:func:`~odernn.data.inflate.check_filters`)."""
    check_other_files(d, path, label)
    dcpl = d.id.get_create_plist()
    if dcpl.get_layout() == h5py.h5d.VIRTUAL:
        return
    if d.chunks is not None:
        chunk_bytes = math.prod(d.chunks) * d.dtype.itemsize
        if chunk_bytes > MAX_READ_CHUNK_BYTES:
            raise DataError(f"{path}: dataset '{label}' is stored in chunks of {chunk_bytes} "
                            f"bytes; odernn reads chunks of at most {MAX_READ_CHUNK_BYTES >> 20} "
                            f"MiB (it writes 1 MiB ones): rewrite the file with smaller chunks")
        expected = math.prod(-(-s // c) for s, c in zip(d.shape, d.chunks, strict=True))
        found = d.id.get_num_chunks()
        if found < expected:
            raise DataError(f"{path}: dataset '{label}' declares shape {d.shape} but only {found} "
                            f"of its {expected} chunks hold data (incomplete or forged file)")
        check_filters(d, path, label)
    elif dcpl.get_layout() == h5py.h5d.CONTIGUOUS and d.id.get_storage_size() < d.nbytes:
        raise DataError(f"{path}: dataset '{label}' declares {d.nbytes} bytes but stores "
                        f"{d.id.get_storage_size()} (incomplete or forged file)")


def check_other_files(d: h5py.Dataset, path: Path, label: str) -> None:
    """Refuse a dataset whose data lies in external raw files (any file at all), or a
    virtual one that :func:`~odernn.data.virtual.check_virtual` refuses: the reader's check, and the
    import's of a foreign HDF5 dataset."""
    dcpl = d.id.get_create_plist()
    if dcpl.get_external_count():
        raise DataError(f"{path}: dataset '{label}' keeps its data in external raw files, which "
                        f"odernn does not read")
    if dcpl.get_layout() == h5py.h5d.VIRTUAL:
        check_virtual(d, dcpl, path, label)


def _read_time(d: h5py.Dataset, path: Path, dt: float) -> np.ndarray:
    t = d[()].astype(np.float64)
    if not np.all(np.isfinite(t)):
        raise DataError(f"{path}: dataset 't' has non-finite values")
    steps = np.diff(t)
    if np.any(steps <= 0):
        i = int(np.argmax(steps <= 0)) + 1
        raise DataError(f"{path}: dataset 't' is not strictly increasing (t[{i}] = {float(t[i])!r} "
                        f"after t[{i - 1}] = {float(t[i - 1])!r})")
    off = off_grid(t, dt, float(np.finfo(d.dtype).eps))
    if np.any(off):
        i = int(np.argmax(off))
        raise DataError(f"{path}: the time grid is not uniform: t[{i + 1}] - t[{i}] = "
                        f"{float(steps[i])!r}, but attribute 'dt' is {dt!r}")
    return t
