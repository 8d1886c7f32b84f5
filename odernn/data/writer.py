"""Writing trajectory files (format: :mod:`odernn.data.schema`), streamed and atomic.

Writers stream blocks of trajectories into a temporary file beside the target and
rename it into place only when every row is written, so a file at its final path is
always complete. Memory is bounded by the caller's block, whatever N.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from odernn.atomic import AsideFile, check_output
from odernn.data.chunks import check_space, chunk_shape, file_bytes
from odernn.data.schema import (
    DATASETS,
    DESCRIPTIONS,
    MAX_ATTR_BYTES,
    MAX_ELEMENTS,
    RESERVED_ATTRS,
    SCHEMA,
    SCHEMA_VERSION,
    TRAJECTORY_SCALE,
    check_finite,
    component_scales,
    grid_step,
    off_grid,
)
from odernn.errors import OutputError
from odernn.leftovers import remove_dead_copies
from odernn.types import Array
from odernn.writeback import start_writeback

_GZIP = {"compression": "gzip", "compression_opts": 4, "shuffle": True}


class TrajectoryWriter:
    """Stream N trajectories into ``path``, which appears only once every row is written.

    ``t (T,)`` is the common, uniform time grid; ``datasets`` the trajectory datasets
    (``("x",)`` for a univariate series); ``params`` maps each parameter name to its
    trailing shape (``()`` for ``(N,)``, ``(K,)`` for ``(N, K)``); ``attrs`` is the
    caller's provenance (str, int, float, bool or flat lists of them). Use it as a
    context manager and call :meth:`write` with blocks of rows, in any order::

        with TrajectoryWriter(path, t=t, n=N, params={"eta": ()}, attrs=attrs) as w:
            for lo, hi in blocks:
                w.write(lo, {"x": x, "v": v, "F": F}, {"eta": eta})

    Leaving the block normally with every row written finalises the root attributes
    and renames the temporary file (``.<name>.tmp-<pid>-<random>`` in the same
    directory, :func:`odernn.atomic.sibling`) into place. Any exception
    (KeyboardInterrupt too) or a missing row removes the
    temporary file and leaves whatever was at ``path`` untouched. Memory is bounded by
    the caller's block, whatever N.
    """

    def __init__(self, path: Path | str, *, t: Array, n: int,
                 datasets: Sequence[str] = ("x", "v", "F"),
                 params: Mapping[str, tuple[int, ...]] | None = None,
                 attrs: Mapping[str, Any] | None = None, dtype: str = "float64",
                 compression: str | None = None, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.t = _writer_time(t)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        self.n = int(n)
        if n * self.t.size > MAX_ELEMENTS:
            raise OutputError(f"{self.path}: {n} trajectories x {self.t.size} steps is more than "
                              f"the {MAX_ELEMENTS} values allowed per dataset; use fewer or shards")
        self.names = _writer_names(datasets)
        self.params = _writer_params(params or {}, self.n)
        self.attrs = {k: _attr_value(self.path, k, v) for k, v in (attrs or {}).items()}
        if dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
        self.dtype = np.dtype(dtype)
        if compression not in (None, "gzip"):
            raise ValueError(f"compression must be None or 'gzip', got {compression!r}")
        self.compression = compression
        self.overwrite = overwrite
        check_target(self.path, overwrite)
        self._out: AtomicH5 | None = None
        self._written: list[tuple[int, int]] = []
        self._pieces: dict[tuple[int, int], int] = {}

    def __enter__(self) -> TrajectoryWriter:
        out = None
        try:
            out = AtomicH5(self.path, self.overwrite)  # first: can the directory take a file?
            check_space(self.path, file_bytes(self.n, self.t.size, len(self.names),
                                              self.dtype.itemsize, self.params))
            self._create(out.file)
            self._out, self._written, self._pieces = out, [], {}
        except BaseException:
            if out is not None:
                out.discard()
            raise
        return self

    def _create(self, f: h5py.File) -> None:
        write_time(f, self.t, imported="source_sha256" in self.attrs)
        T = self.t.size
        extra = _GZIP if self.compression == "gzip" else {}
        for name in self.names:
            d = f.create_dataset(name, shape=(self.n, T), dtype=self.dtype, fillvalue=np.nan,
                                 chunks=chunk_shape(self.n, (T,), self.dtype.itemsize), **extra)
            d.attrs["description"] = DESCRIPTIONS[name]
        for name, shape in self.params.items():
            f.create_dataset(f"params/{name}", shape=(self.n, *shape), dtype=np.float64,
                             fillvalue=np.nan, chunks=chunk_shape(self.n, shape, 8), **extra)
        write_scales(f, self.n, self.names, self.params)

    def write(self, start: int, arrays: Mapping[str, Array],
              params: Mapping[str, Array] | None = None, *, col: int | None = None) -> None:
        """Write rows ``start .. start + B`` of every dataset ``(B, T)`` and parameter ``(B, ...)``.

        A row longer than the caller's memory may come in pieces: with ``col`` given,
        ``arrays`` of shape ``(B, C)`` fill time points ``col .. col + C`` of those rows (C
        from ``x``); the pieces of one block of rows come in order, from ``col = 0``, and the
        rows count as written with the last (every piece repeats the rows' ``params``). Raises
        DataError if a value is NaN or infinite (files hold finite numbers only).
        """
        if self._out is None:
            raise RuntimeError("TrajectoryWriter.write() called outside its with-block")
        T = self.t.size
        width = T if col is None or np.ndim(arrays.get("x")) != 2 else np.shape(arrays["x"])[1]
        col = 0 if col is None else col
        data = _block_arrays(arrays, dict.fromkeys(self.names, (width,)), "datasets", self.dtype)
        pars = _block_arrays(params or {}, self.params, "params", np.dtype(np.float64))
        sizes = {a.shape[0] for a in (*data.values(), *pars.values())}
        if len(sizes) != 1:
            raise ValueError(f"every array of one block needs the same number of rows, got "
                             f"{ {k: a.shape[0] for k, a in {**data, **pars}.items()} }")
        B = sizes.pop()
        if start < 0 or start + B > self.n:
            raise ValueError(f"rows {start}..{start + B} are outside 0..{self.n}")
        rows = (start, start + B)
        if col != self._pieces.get(rows, 0) or width < 1 or col + width > T:
            raise ValueError(f"rows {start}..{start + B}: time points {col}..{col + width} do "
                             f"not continue the pieces written ({self._pieces.get(rows, 0)} of "
                             f"{T} points)")
        for label, a in (*data.items(), *((f"params/{k}", a) for k, a in pars.items())):
            check_finite(a, self.path, label, start, "gets")
        try:
            for label, a in data.items():
                self._out.file[label][start:start + B, col:col + width] = a
            for label, a in pars.items():
                self._out.file[f"params/{label}"][start:start + B] = a
        except OSError as err:  # typically a disk filled up by something else meanwhile
            raise _write_failed(self.path, err) from err
        start_writeback(self._out.tmp)  # the disk works while the next block is computed
        if col + width < T:
            self._pieces[rows] = col + width
            return
        self._pieces.pop(rows, None)
        self._written.append(rows)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        out, self._out = self._out, None
        if exc_type is not None:
            out.discard()
            return
        try:
            gap = _first_gap(self._written, self.n)
            if gap is not None:
                raise ValueError(f"{self.path}: rows {gap[0]}..{gap[1]} of {self.n} were never "
                                 f"written; nothing was saved")
            write_root_attrs(out.file, self.n, self.t, self.names, self.attrs)
            out.commit()
        except OSError as err:
            out.discard()
            if isinstance(err, OutputError):
                raise
            raise _write_failed(self.path, err) from err
        except BaseException:
            out.discard()
            raise


LIBVER = ("v110", "v110")
"""The HDF5 format odernn writes: that of HDF5 1.10, which any HDF5 from 2016 on reads (a merged
file's virtual datasets need it anyway). Its chunk index for a dataset of fixed size is an
array: reading a whole dataset of 10^5 trajectories left about 1 MiB of index in memory until
the file was closed, against 25 MiB with HDF5 1.8's B-tree (``docs/scaling.md``)."""


class AtomicH5:
    """An HDF5 file written under a temporary name beside ``path``
    (:class:`odernn.atomic.AsideFile`), renamed into place when complete."""

    def __init__(self, path: Path, overwrite: bool) -> None:
        check_target(path, overwrite)
        self.path, self.overwrite = path, overwrite
        self._aside = AsideFile(path)
        self.tmp = self._aside.tmp
        remove_dead_copies(path)
        try:
            self.file = h5py.File(self.tmp, "w", libver=LIBVER)
        except BaseException as err:  # a Ctrl-C can land after the file exists: remove it
            self._aside.discard()
            if isinstance(err, OSError):
                raise OutputError(f"{path}: cannot create the file ({err})") from err
            raise

    def commit(self) -> None:
        """Close, flush to disk and rename into place (atomic within one directory)."""
        try:
            self.file.close()
        except RuntimeError as err:  # HDF5's flush at close failing (a full disk) comes so
            raise _os_error(err) from err
        self._aside.publish(check=lambda: check_target(self.path, self.overwrite),
                            overwrite=self.overwrite)

    def discard(self) -> None:
        """Close (as far as HDF5 can: a close that fails again is the failure being
        discarded) and delete the temporary file."""
        global unclean_close
        try:
            self.file.close()
        except (OSError, RuntimeError):
            unclean_close = True  # HDF5 keeps what it could not write, and retries at exit
        finally:
            self._aside.discard()


def _os_error(err: RuntimeError) -> OSError:
    """HDF5's error raised as a RuntimeError, as the OSError it reports (``errno = 28``)."""
    found = re.search(r"errno = (\d+)", str(err))
    number = int(found.group(1)) if found else 0
    return OSError(number, os.strerror(number) if number else str(err).splitlines()[0])


unclean_close = False
"""Set when an HDF5 write failed part way (e.g. the disk filled up). HDF5 keeps the unwritten
data and tries again when the process exits, which can crash it; the command line checks
this flag and exits without that last attempt (the file is deleted already)."""


def _write_failed(path: Path, err: OSError) -> OutputError:
    """The error to raise for a failed HDF5 write, in one line (HDF5's run over several)."""
    global unclean_close
    unclean_close = True
    reason = os.strerror(err.errno) if err.errno else str(err).splitlines()[0]
    return OutputError(f"{path}: writing failed ({reason}); nothing was saved")


def check_target(path: Path, overwrite: bool, inputs: Iterable[Path | str] = ()) -> None:
    """Refuse ``path`` unless a dataset may be written there (:func:`odernn.atomic.check_output`:
    new, or with ``overwrite`` an odernn dataset that is none of ``inputs``)."""
    check_output(path, "dataset", overwrite=overwrite, inputs=inputs)


def _writer_time(t: Array) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1 or t.size < 2 or not np.all(np.isfinite(t)):
        raise ValueError(f"t must be a finite 1-D grid of at least 2 points, got shape {t.shape}")
    if np.any(off_grid(t)):
        raise ValueError("t must be a uniform, strictly increasing grid")
    return t


def _writer_names(datasets: Sequence[str]) -> tuple[str, ...]:
    names = tuple(datasets)
    if "x" not in names or len(set(names)) != len(names) or not set(names) <= set(DATASETS):
        raise ValueError(f"datasets must be distinct names among {DATASETS} including 'x', "
                         f"got {names}")
    return tuple(k for k in DATASETS if k in names)


def _writer_params(params: Mapping[str, tuple[int, ...]], n: int) -> dict[str, tuple[int, ...]]:
    out = {}
    for name, shape in params.items():
        shape = tuple(int(s) for s in shape)
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"parameter name {name!r} is not a plain HDF5 name")
        if len(shape) > 1 or any(s < 1 for s in shape):
            raise ValueError(f"parameter {name!r}: trailing shape must be () or (K,) with K >= 1, "
                             f"got {shape}")
        if n * math.prod(shape) > MAX_ELEMENTS:
            raise ValueError(f"parameter {name!r}: too large ({n} x {shape})")
        out[name] = shape
    return out


def _attr_value(path: Path, name: str, value: Any) -> Any:
    """A caller attribute as stored; refuse what would not read back unchanged."""
    if name in RESERVED_ATTRS:
        raise ValueError(f"attribute {name!r} is written by the store itself; reserved: "
                         f"{', '.join(RESERVED_ATTRS)}")
    if isinstance(value, (str, bool, int, float, np.bool_, np.integer, np.floating)):
        stored = value
        size = len(value.encode()) if isinstance(value, str) else 8
    elif isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value) == 1:
        items = list(value)
        if items and all(isinstance(v, str) for v in items):
            stored = np.array(items, dtype=h5py.string_dtype())
            size = sum(len(v.encode()) for v in items)
        else:
            stored = np.asarray(items)
            if stored.dtype.kind not in "biuf":
                raise ValueError(f"attribute {name!r}: a list must hold only numbers or only "
                                 f"strings, got {value!r:.80}")
            size = stored.nbytes
    else:
        raise ValueError(f"attribute {name!r}: {type(value).__name__} cannot be stored; use str, "
                         f"int, float, bool or a flat list of them (encode dicts as JSON)")
    if size > MAX_ATTR_BYTES:
        raise OutputError(f"{path}: attribute {name!r} is {size} bytes; attributes are limited to "
                          f"{MAX_ATTR_BYTES} bytes (1 MiB)")
    return stored


def _block_arrays(arrays: Mapping[str, Array], shapes: Mapping[str, tuple[int, ...]], what: str,
                  dtype: np.dtype) -> dict[str, np.ndarray]:
    """Check a block holds exactly the keys of ``shapes``, each ``(B, *shape)``; cast it."""
    if set(arrays) != set(shapes):
        raise ValueError(f"write() needs {what} {sorted(shapes)}, got {sorted(arrays)}")
    out = {}
    for name, shape in shapes.items():
        a = np.asarray(arrays[name])
        if a.shape[1:] != shape or a.ndim != 1 + len(shape):
            raise ValueError(f"{what} {name!r} must have shape (B, {', '.join(map(str, shape))}), "
                             f"got {a.shape}")
        out[name] = np.ascontiguousarray(a, dtype=dtype)
    return out


def _first_gap(intervals: list[tuple[int, int]], n: int) -> tuple[int, int] | None:
    """The first range of ``0..n`` covered by none of ``intervals``, or None."""
    covered = 0
    for lo, hi in sorted(intervals):
        if lo > covered:
            return covered, lo
        covered = max(covered, hi)
    return (covered, n) if covered < n else None


def write_time(f: h5py.File, t: np.ndarray, imported: bool = False) -> None:
    """Write the time grid ``/t``, its unit and description (the writer's and a merge's):
    odernn's dimensionless time, or an imported source's, in the source's own units."""
    d = f.create_dataset("t", data=t)
    d.attrs["unit"] = "as in the imported source" if imported else "1"
    d.attrs["description"] = DESCRIPTIONS["t (imported)" if imported else "t"]


def write_scales(f: h5py.File, n: int, names: Sequence[str],
                 params: Mapping[str, tuple[int, ...]]) -> None:
    """Make ``/t`` and the index datasets ``/trajectory`` (0 .. n-1) and ``/component`` (one
    per parameter width K, :func:`~odernn.data.schema.component_scales`) HDF5 dimension scales
    and attach them to the axes of ``names`` and ``params/*``, created already: netCDF
    readers (xarray, engine "h5netcdf") then see dimensions (trajectory, t) and
    (trajectory, component). Done once, at creation (writer and virtual merge)."""
    t = f["t"]
    t.make_scale("t")
    index = f.create_dataset(TRAJECTORY_SCALE, shape=(n,), dtype=np.int64)
    for lo in range(0, n, 1 << 20):  # 8 MiB at a time: n is a merge's sum of its shards' n
        index[lo:min(lo + (1 << 20), n)] = np.arange(lo, min(lo + (1 << 20), n))
    index.make_scale(TRAJECTORY_SCALE)
    index.attrs["description"] = "trajectory index: row i of x, v, F and params/*"
    components = {}
    for k, label in component_scales(s[0] for s in params.values() if s).items():
        components[k] = f.create_dataset(label, data=np.arange(k, dtype=np.int64))
        components[k].make_scale(label)
        components[k].attrs["description"] = "component index: column k of a parameter (N, K)"
    for name in names:
        f[name].dims[0].attach_scale(index)
        f[name].dims[1].attach_scale(t)
    for name, shape in sorted(params.items()):  # one order, so HDF5's records agree (h5diff)
        d = f[f"params/{name}"]
        d.dims[0].attach_scale(index)
        if shape:
            d.dims[1].attach_scale(components[shape[0]])


def write_root_attrs(f: h5py.File, n: int, t: np.ndarray, names: tuple[str, ...],
                      attrs: Mapping[str, Any]) -> None:
    """Write the root attributes the schema requires, then the caller's ``attrs``: the last
    step of every complete file (writer and virtual merge)."""
    f.attrs.update({
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "creator": "odernn",
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "odernn_version": _odernn_version(),
        "n_trajectories": n,
        "n_steps": t.size,
        "dt": grid_step(t),
        "datasets": np.array(names, dtype=h5py.string_dtype()),
        **attrs,
    })


def _odernn_version() -> str:
    try:
        from odernn import __version__
    except ImportError:
        try:
            return importlib.metadata.version("odernn")
        except importlib.metadata.PackageNotFoundError:
            return "unknown"
    return str(__version__)
