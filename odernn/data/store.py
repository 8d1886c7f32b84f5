"""HDF5 store of trajectories (schema version 1): streaming atomic writes, validated lazy reads.

A file holds N trajectories on a common time grid of T points::

    /              root attributes: schema, schema_version, creator, created, odernn_version,
                   n_trajectories, n_steps, dt, datasets, and the caller's provenance
                   (system, forcing, integrator, seed, spec text, ...)
    /t             (T,)    time points, float64
    /x, /v, /F     (N, T)  position, velocity, forcing (a univariate series has x only),
                           chunked by trajectory, float64 or float32, gzip optional
    /params/<p>    (N,) or (N, K) sampled parameters, float64

Writers stream blocks of trajectories into a temporary file beside the target and
rename it into place only when every row is written, so a file at its final path is
always complete. Readers treat a file as untrusted: the metadata is checked before any
data is read, declared sizes are bounded before anything is allocated, and values are
checked to be finite block by block as they are read. Shards of one simulation are
joined by :mod:`odernn.data.merge`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from odernn import budget
from odernn.atomic import AsideFile, check_output
from odernn.data.trajectories import Trajectories, check_consistency
from odernn.errors import DataError, OutputError, SpecError
from odernn.interrupt import interrupt_guard
from odernn.types import Array

SCHEMA = "odernn.trajectories"
SCHEMA_VERSION = 1
DATASETS = ("x", "v", "F")
"""The trajectory datasets a file may hold, in their canonical order; ``x`` is always there."""

REQUIRED_ATTRS = ("schema", "schema_version", "created", "odernn_version", "n_trajectories",
                  "n_steps", "dt", "datasets")
SHARD_SOURCES = "shard_sources"
"""Root attribute of a virtual merge (``merge --virtual``): JSON list of the shards it reads,
each with its size, mtime and content digest at merge time (:mod:`odernn.data.merge`)."""
RESERVED_ATTRS = (*REQUIRED_ATTRS, "creator", SHARD_SOURCES)
"""Root attributes the store writes itself; callers may not set them."""
SHARD_ATTRS = ("shard_index", "shard_count", "row_start", "row_stop", "n_total")
"""Attributes of a shard written by ``simulate --shard k/n`` (``shard_index`` is k, 1-based)."""
DIGEST_EXCLUDED_ATTRS = ("created", SHARD_SOURCES)
"""Root attributes :func:`content_digest` leaves out: they differ between writes of one content."""

CHUNK_BYTES = 256 << 10
"""Target chunk size: whole trajectories, at least one, up to about this many bytes."""
MAX_CHUNK_BYTES = 1 << 20
"""Chunks never exceed this: a longer trajectory is split in time."""
BLOCK_BYTES = 64 << 20
"""Memory bound of one block when the store streams rows (merge, verify, reads)."""
MAX_ELEMENTS = 1 << 34
"""Refuse datasets declaring more values than this (128 GiB of float64)."""
MAX_ATTR_BYTES = 1 << 20
"""Refuse attributes larger than this (1 MiB; attributes hold metadata, specs are small)."""
MAX_MEMBERS = 1024
"""Refuse more attributes or group members than this."""
MAX_READ_CHUNK_BYTES = 64 << 20
"""Refuse datasets stored in chunks larger than this: HDF5 decompresses a whole chunk to read
any part of it (a chunk may declare up to 4 GiB; odernn writes at most MAX_CHUNK_BYTES)."""

_GZIP = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
_DESCRIPTIONS = {
    "t": "time; dimensionless, in units of 1/omega_0 (the undamped angular frequency is 1)",
    "x": "position x(t_i), one row per trajectory",
    "v": "velocity v(t_i) = x'(t_i), one row per trajectory",
    "F": "forcing F(t_i), one row per trajectory",
}


# ---------------------------------------------------------------------------------------------
# Writing


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
        _check_target(self.path, overwrite)
        self._out: _AtomicH5 | None = None
        self._written: list[tuple[int, int]] = []

    def __enter__(self) -> TrajectoryWriter:
        out = None
        try:
            out = _AtomicH5(self.path, self.overwrite)  # first: can the directory take a file?
            self._check_space()
            self._create(out.file)
            self._out, self._written = out, []
        except BaseException:
            if out is not None:
                out.discard()
            raise
        return self

    def _check_space(self) -> None:
        """Refuse up front when the disk cannot hold the file (uncompressed size): a write
        that fails half way through is cleaned up too, but this says why before any work."""
        row = self.t.size * self.dtype.itemsize * len(self.names)
        row += 8 * sum(int(np.prod(shape)) for shape in self.params.values())
        need = self.n * row + (1 << 20)
        directory = self.path.parent if str(self.path.parent) else Path(".")
        fs = os.statvfs(directory)
        free = fs.f_bavail * fs.f_frsize
        if fs.f_blocks and need > free:  # f_blocks 0: a pseudo file system that reports none
            raise OutputError(f"{self.path}: not enough disk space: the file needs about "
                              f"{need / 2**20:.1f} MiB, {directory} has "
                              f"{free / 2**20:.1f} MiB free")

    def _create(self, f: h5py.File) -> None:
        _write_time(f, self.t)
        T = self.t.size
        extra = _GZIP if self.compression == "gzip" else {}
        for name in self.names:
            d = f.create_dataset(name, shape=(self.n, T), dtype=self.dtype, fillvalue=np.nan,
                                 chunks=_chunks(self.n, (T,), self.dtype.itemsize), **extra)
            d.attrs["description"] = _DESCRIPTIONS[name]
        for name, shape in self.params.items():
            f.create_dataset(f"params/{name}", shape=(self.n, *shape), dtype=np.float64,
                             fillvalue=np.nan, chunks=_chunks(self.n, shape, 8), **extra)

    def write(self, start: int, arrays: Mapping[str, Array],
              params: Mapping[str, Array] | None = None) -> None:
        """Write rows ``start .. start + B`` of every dataset ``(B, T)`` and parameter ``(B, ...)``.

        Raises DataError if a value is NaN or infinite (files hold finite numbers only).
        """
        if self._out is None:
            raise RuntimeError("TrajectoryWriter.write() called outside its with-block")
        data = _block_arrays(arrays, dict.fromkeys(self.names, (self.t.size,)), "datasets",
                             self.dtype)
        pars = _block_arrays(params or {}, self.params, "params", np.dtype(np.float64))
        data.update((f"params/{k}", a) for k, a in pars.items())
        sizes = {a.shape[0] for a in data.values()}
        if len(sizes) != 1:
            raise ValueError(f"every array of one block needs the same number of rows, got "
                             f"{ {k: a.shape[0] for k, a in data.items()} }")
        B = sizes.pop()
        if start < 0 or start + B > self.n:
            raise ValueError(f"rows {start}..{start + B} are outside 0..{self.n}")
        for label, a in data.items():
            _check_finite(a, self.path, label, start, "gets")
        try:
            for label, a in data.items():
                self._out.file[label][start:start + B] = a
        except OSError as err:  # typically a disk filled up by something else meanwhile
            raise _write_failed(self.path, err) from err
        self._written.append((start, start + B))

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
            _write_root_attrs(out.file, self.n, self.t, self.names, self.attrs)
            out.commit()
        except OSError as err:
            out.discard()
            if isinstance(err, OutputError):
                raise
            raise _write_failed(self.path, err) from err
        except BaseException:
            out.discard()
            raise


class _AtomicH5:
    """An HDF5 file written under a temporary name beside ``path``
    (:class:`odernn.atomic.AsideFile`), renamed into place when complete."""

    def __init__(self, path: Path, overwrite: bool) -> None:
        _check_target(path, overwrite)
        self.path, self.overwrite = path, overwrite
        self._aside = AsideFile(path)
        self.tmp = self._aside.tmp
        try:
            self.file = h5py.File(self.tmp, "w")
        except BaseException as err:  # a Ctrl-C can land after the file exists: remove it
            self._aside.discard()
            if isinstance(err, OSError):
                raise OutputError(f"{path}: cannot create the file ({err})") from err
            raise

    def commit(self) -> None:
        """Close, flush to disk and rename into place (atomic within one directory)."""
        self.file.close()
        self._aside.publish(check=lambda: _check_target(self.path, self.overwrite))

    def discard(self) -> None:
        """Close (as far as HDF5 can) and delete the temporary file."""
        try:
            self.file.close()
        finally:
            self._aside.discard()


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


def _check_target(path: Path, overwrite: bool, inputs: Iterable[Path | str] = ()) -> None:
    """Refuse ``path`` unless a dataset may be written there (:func:`odernn.atomic.check_output`:
    new, or with ``overwrite`` an odernn dataset that is none of ``inputs``)."""
    check_output(path, "dataset", overwrite=overwrite, inputs=inputs)


def _writer_time(t: Array) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1 or t.size < 2 or not np.all(np.isfinite(t)):
        raise ValueError(f"t must be a finite 1-D grid of at least 2 points, got shape {t.shape}")
    steps = np.diff(t)
    dt = steps[0]
    if dt <= 0 or np.max(np.abs(steps - dt)) > 1e-6 * dt:
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


def _chunks(n: int, row: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """Chunk shape for ``(n, *row)``: whole rows, about CHUNK_BYTES, never over MAX_CHUNK_BYTES."""
    row_bytes = math.prod(row) * itemsize
    if row_bytes > MAX_CHUNK_BYTES:
        return (1, MAX_CHUNK_BYTES // itemsize)
    return (max(1, min(n, CHUNK_BYTES // row_bytes)), *row)


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


def _check_finite(a: np.ndarray, path: Path, label: str, first_row: int, verb: str) -> None:
    finite = np.isfinite(a).reshape(a.shape[0], -1).all(axis=1)
    if not finite.all():
        row = first_row + int(np.argmin(finite))
        raise DataError(f"{path}: dataset '{label}' {verb} non-finite values (NaN or inf), first "
                        f"in trajectory {row}; files hold finite numbers only")


def _first_gap(intervals: list[tuple[int, int]], n: int) -> tuple[int, int] | None:
    """The first range of ``0..n`` covered by none of ``intervals``, or None."""
    covered = 0
    for lo, hi in sorted(intervals):
        if lo > covered:
            return covered, lo
        covered = max(covered, hi)
    return (covered, n) if covered < n else None


def _write_time(f: h5py.File, t: np.ndarray) -> None:
    d = f.create_dataset("t", data=t)
    d.attrs["unit"] = "1"
    d.attrs["description"] = _DESCRIPTIONS["t"]


def _write_root_attrs(f: h5py.File, n: int, t: np.ndarray, names: tuple[str, ...],
                      attrs: Mapping[str, Any]) -> None:
    f.attrs.update({
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "creator": "odernn",
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "odernn_version": _odernn_version(),
        "n_trajectories": n,
        "n_steps": t.size,
        "dt": float(t[1] - t[0]),
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


# ---------------------------------------------------------------------------------------------
# Reading


class TrajectoryFile:
    """An open, validated trajectory file; data is read only when asked (:meth:`read`).

    Opening checks the schema, every attribute, shape, dtype and the storage behind
    each dataset, and reads ``t``; it does not scan the trajectories, so it is fast
    for any N. :meth:`read` checks the values it reads; :meth:`verify` scans the whole
    file in bounded memory.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._file = _open_h5(self.path)
        try:
            self._validate()
        except BaseException:
            self._file.close()
            raise

    def _validate(self) -> None:
        f, path = self._file, self.path
        self._attrs = _read_attrs(f, path)
        self.n, self.n_steps, self.names = _check_header(self._attrs, path)
        datasets, params = _check_members(f, path, self.names)
        shape = (self.n, self.n_steps)
        _check_dataset(datasets["t"], path, "t", (self.n_steps,))
        for name in self.names:
            _check_dataset(datasets[name], path, name, shape)
        for name, d in params.items():
            _check_dataset(d, path, f"params/{name}", (self.n, *d.shape[1:2]))
        if len({datasets[k].dtype for k in self.names}) != 1:
            raise DataError(f"{path}: datasets {', '.join(self.names)} differ in dtype; "
                            f"expected one float type for all")
        budget.check(f"{path}: time grid of n_steps = {self.n_steps} points",
                     4 * self.n_steps * budget.FLOAT64, "that is for reading and checking it")
        self.t = _read_time(datasets["t"], path, self._attrs["dt"])
        self._datasets = {k: datasets[k] for k in self.names}
        self._params = params
        if SHARD_SOURCES in self._attrs:  # a virtual merge: its shards must be the merged ones
            from odernn.data.merge import check_shard_sources

            check_shard_sources(path, self._attrs[SHARD_SOURCES])

    @property
    def attrs(self) -> dict[str, Any]:
        """Root attributes as Python values (str, int, float, bool, lists)."""
        return dict(self._attrs)

    @property
    def dt(self) -> float:
        return float(self._attrs["dt"])

    @property
    def dtype(self) -> np.dtype:
        """The float type of the trajectory datasets."""
        return self._datasets["x"].dtype

    @property
    def params_names(self) -> tuple[str, ...]:
        return tuple(self._params)

    def param_shape(self, name: str) -> tuple[int, ...]:
        """The shape of parameter dataset ``name``: ``(N,)`` or ``(N, K)``."""
        return tuple(self._params[name].shape)

    def read(self, rows: slice | None = None, names: Iterable[str] | None = None) -> Trajectories:
        """Trajectories ``rows`` (a slice with step 1; all by default) of datasets ``names``.

        ``x`` is always read (every Trajectories has it); parameters are read for the
        same rows. Raises DataError on non-finite values, naming the first bad
        trajectory, and before reading if the result would not fit in memory.
        """
        start, stop = self._rows(rows)
        wanted = self._wanted(names)
        row_bytes = sum(math.prod(d.shape[1:]) * d.dtype.itemsize
                        for d in (*(self._datasets[k] for k in wanted), *self._params.values()))
        need, available = (stop - start) * row_bytes, _available_memory()
        if available is not None and need > available:
            raise DataError(f"{self.path}: reading rows {start}..{stop} needs {_size(need)} but "
                            f"only {_size(available)} of memory is available; read fewer rows "
                            f"at a time (rows=slice(a, b))")
        budget.check(f"{self.path}: reading rows {start}..{stop} ({self.n_steps} points each)",
                     need, "read fewer rows at a time (rows=slice(a, b))")
        arrays = {k: self._scan(k, self._datasets[k], start, stop, keep=True) for k in wanted}
        params = {k: self._scan(f"params/{k}", d, start, stop, keep=True)
                  for k, d in self._params.items()}
        data = Trajectories(t=self.t.copy(), x=arrays["x"], v=arrays.get("v"), F=arrays.get("F"),
                            params=params, attrs=self.attrs)
        check_consistency(data, str(self.path))
        return data

    def verify(self) -> None:
        """Check every value of every dataset is finite and the parts agree with each other
        (:func:`~odernn.data.trajectories.check_consistency`), block by block (bounded memory)."""
        self.ranges()
        self.check_parts()

    def check_parts(self) -> None:
        """:func:`~odernn.data.trajectories.check_consistency` over the whole file, the same check
        :meth:`read` makes, in blocks of at most about :data:`BLOCK_BYTES` (whole rows, or a
        row's columns when a row is larger); a Ctrl-C or SIGTERM between blocks ends it."""
        per_point = 8 + sum(d.dtype.itemsize for d in self._datasets.values())  # with t
        cols = self.n_steps
        rows = max(1, BLOCK_BYTES // (per_point * cols))
        col_step = cols if per_point * cols <= BLOCK_BYTES else max(1, BLOCK_BYTES // per_point)
        with interrupt_guard() as interrupted:
            for lo in range(0, self.n, rows):
                hi = min(self.n, lo + rows)
                params = {k: d[lo:hi] for k, d in self._params.items()}
                for c in range(0, cols, col_step):
                    e = min(cols, c + col_step)
                    part = {k: d[lo:hi, c:e] for k, d in self._datasets.items()}
                    check_consistency(Trajectories(self.t[c:e], part["x"], part.get("v"),
                                                   part.get("F"), params, self.attrs),
                                      str(self.path))
                    if interrupted():
                        raise KeyboardInterrupt

    def ranges(self) -> dict[str, tuple[float, float]]:
        """``{label: (min, max)}`` of every trajectory and parameter dataset (``x``,
        ``params/eta``, ...), read block by block in bounded memory, every value checked to
        be finite; a Ctrl-C or SIGTERM between blocks ends it (KeyboardInterrupt)."""
        out: dict[str, tuple[float, float]] = {}

        def visit(label: str) -> Any:
            def update(block: np.ndarray) -> None:
                if block.size:
                    lo, hi = float(block.min()), float(block.max())
                    old = out.get(label, (lo, hi))
                    out[label] = (min(old[0], lo), max(old[1], hi))
            return update

        for k, d in self._datasets.items():
            self._scan(k, d, 0, self.n, keep=False, visit=visit(k))
        for k, d in self._params.items():
            self._scan(f"params/{k}", d, 0, self.n, keep=False, visit=visit(f"params/{k}"))
        return out

    def content_digest(self) -> str:
        """``sha256:<hex>`` of the file's content; see :func:`content_digest`."""
        h = hashlib.sha256()

        def put(*parts: str | bytes) -> None:  # length-prefixed: no two contents collide
            for part in parts:
                data = part.encode() if isinstance(part, str) else part
                h.update(len(data).to_bytes(8, "little"))
                h.update(data)

        put("odernn content digest", "1")
        for name in sorted(self._file.attrs):
            if name not in DIGEST_EXCLUDED_ATTRS:
                put("attribute /", name, *_attr_token(self._file, name))
        group = self._file.get("params")
        for name in sorted(group.attrs) if group is not None else ():
            put("attribute /params", name, *_attr_token(group, name))
        datasets = {"t": self._file["t"], **self._datasets,
                    **{f"params/{k}": self._params[k] for k in sorted(self._params)}}
        for label, d in datasets.items():
            dtype = d.dtype.newbyteorder("<")  # the values, whatever the stored byte order
            put("dataset", label, dtype.str, json.dumps(list(d.shape)))
            for name in sorted(d.attrs):
                put("attribute", name, *_attr_token(d, name))
            if d.ndim == 0 or d.shape[0] == 0:
                continue
            # the bytes of the values in row-major order, whatever the blocks
            with closing(self._blocks(label, d, 0, d.shape[0], dtype)) as blocks:
                for block in blocks:
                    h.update(block.tobytes())
        return f"sha256:{h.hexdigest()}"

    def _blocks(self, label: str, d: h5py.Dataset, start: int, stop: int,
                dtype: np.dtype | None = None) -> Iterable[np.ndarray]:
        """Rows ``start..stop`` of ``d`` as consecutive blocks of at most about
        :data:`BLOCK_BYTES` (whole rows, or one row's columns when a row is larger), in
        row-major order, in one reused buffer; chunk-aligned, so each chunk is decompressed
        once. A Ctrl-C or SIGTERM between blocks raises KeyboardInterrupt (one block reads
        in a fraction of a second, however large the file)."""
        dtype = d.dtype if dtype is None else dtype
        cols = math.prod(d.shape[1:])
        itemsize = dtype.itemsize
        chunk_rows = d.chunks[0] if d.chunks else 1
        row_bytes = max(1, cols * itemsize)
        if d.ndim == 2 and row_bytes > BLOCK_BYTES:  # one row at a time, in column blocks
            chunk_cols = d.chunks[1] if d.chunks else 1
            col_step = max(chunk_cols, BLOCK_BYTES // itemsize // chunk_cols * chunk_cols)
            pieces = [(lo, lo + 1, c, min(c + col_step, cols))
                      for lo in range(start, stop) for c in range(0, cols, col_step)]
            buffer = np.empty((1, min(col_step, cols)), dtype=dtype)
        else:
            step = max(chunk_rows, BLOCK_BYTES // row_bytes // chunk_rows * chunk_rows)
            pieces = ((lo, min(lo + step, stop), None, None) for lo in range(start, stop, step))
            buffer = np.empty((min(step, stop - start), *d.shape[1:]), dtype=dtype)
        with interrupt_guard() as interrupted:
            for lo, hi, c0, c1 in pieces:
                if interrupted():
                    raise KeyboardInterrupt
                if c0 is None:
                    source, dest = np.s_[lo:hi], np.s_[0:hi - lo]
                else:
                    source, dest = np.s_[lo:hi, c0:c1], np.s_[0:1, 0:c1 - c0]
                try:
                    d.read_direct(buffer, source, dest)
                except OSError as err:
                    raise DataError(f"{self.path}: cannot read rows {lo}..{hi} of dataset "
                                    f"'{label}' (corrupt file?): {err}") from err
                yield buffer[dest]

    def _rows(self, rows: slice | None) -> tuple[int, int]:
        if rows is None:
            return 0, self.n
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            raise SpecError(f"rows must be a slice with step 1 (e.g. slice(0, 100)), got {rows!r}")
        start, stop, _ = rows.indices(self.n)
        return start, max(start, stop)

    def _wanted(self, names: Iterable[str] | None) -> tuple[str, ...]:
        if names is None:
            return self.names
        names = set(names) | {"x"}
        unknown = names - set(self.names)
        if unknown:
            raise SpecError(f"{self.path}: no dataset {', '.join(sorted(unknown))}; this file has "
                            f"{', '.join(self.names)}")
        return tuple(k for k in self.names if k in names)

    def _scan(self, label: str, d: h5py.Dataset, start: int, stop: int,
              keep: bool, visit: Any = None) -> np.ndarray | None:
        """Read rows ``start..stop`` of ``d`` block by block, checking each block is finite.

        ``keep=True`` returns all rows; ``keep=False`` reads blocks of bounded size
        (:meth:`_blocks`), passes each to ``visit`` and returns None.
        """
        if not keep:
            cols = max(1, math.prod(d.shape[1:]))
            done = 0
            with closing(self._blocks(label, d, start, stop)) as blocks:
                for block in blocks:
                    _check_finite(block, self.path, label, start + done // cols, "has")
                    if visit is not None:
                        visit(block)
                    done += block.size
            return None
        row_bytes = max(1, math.prod(d.shape[1:]) * d.dtype.itemsize)
        chunk_rows = d.chunks[0] if d.chunks else 1
        step = max(chunk_rows, BLOCK_BYTES // row_bytes // chunk_rows * chunk_rows)
        buffer = np.empty((stop - start, *d.shape[1:]), dtype=d.dtype)
        with interrupt_guard() as interrupted:
            for lo in range(start, stop, step):
                if interrupted():
                    raise KeyboardInterrupt
                hi = min(lo + step, stop)
                dest = slice(lo - start, hi - start)
                try:
                    d.read_direct(buffer, np.s_[lo:hi], dest)
                except OSError as err:
                    raise DataError(f"{self.path}: cannot read rows {lo}..{hi} of dataset "
                                    f"'{label}' (corrupt file?): {err}") from err
                _check_finite(buffer[dest], self.path, label, lo, "has")
        return buffer

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> TrajectoryFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"TrajectoryFile('{self.path}', n={self.n}, n_steps={self.n_steps}, "
                f"datasets={self.names}, params={self.params_names})")


def open_trajectories(path: Path | str) -> TrajectoryFile:
    """Open and validate a trajectory file; raises DataError saying what is wrong."""
    return TrajectoryFile(path)


def read_trajectories(path: Path | str, rows: slice | None = None) -> Trajectories:
    """Open, validate and read a trajectory file (all rows, or ``rows``)."""
    with open_trajectories(path) as f:
        return f.read(rows)


def content_digest(path: Path | str) -> str:
    """SHA-256 of a trajectory file's content, as ``sha256:<hex>`` (``odernn inspect`` prints it).

    It covers every dataset (``t``, ``x``, ``v``, ``F``, ``params/*``: name, dtype,
    shape, every value's bytes, its attributes) and every attribute of the root and
    ``params`` groups except :data:`DIGEST_EXCLUDED_ATTRS` (``created``, and a virtual
    merge's ``shard_sources``), each in a fixed order. It leaves out how HDF5 stores them
    (chunks, compression, a virtual
    dataset, byte order, where in the file): two files with one digest hold the same
    numbers and the same provenance. Memory is bounded (rows are read in blocks).
    """
    with open_trajectories(path) as f:
        return f.content_digest()


def _attr_token(obj: h5py.HLObject, name: str) -> tuple[str, str]:
    """An attribute as ``(type, JSON value)``: strings are ``str`` whether fixed or variable
    length; numbers keep their kind and size (``i8``, ``f8``, ``b1``)."""
    dtype = h5py.h5a.open(obj.id, name.encode()).dtype
    value = _python_value(obj.attrs[name])
    kind = "str" if h5py.check_string_dtype(dtype) is not None else f"{dtype.kind}{dtype.itemsize}"
    return kind, json.dumps(value, sort_keys=True, allow_nan=True)


def _open_h5(path: Path) -> h5py.File:
    if not path.exists():
        raise DataError(f"{path}: file does not exist")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        if not h5py.is_hdf5(path):
            raise DataError(f"{path}: not an HDF5 file (no HDF5 signature; truncated "
                            f"before its header, or another format)") from err
        raise DataError(f"{path}: HDF5 file is truncated or corrupt ({err})") from err


def _read_attrs(obj: h5py.HLObject, path: Path) -> dict[str, Any]:
    """Attributes as Python values, each sized before it is read."""
    if len(obj.attrs) > MAX_MEMBERS:
        raise DataError(f"{path}: {len(obj.attrs)} attributes; at most {MAX_MEMBERS} are allowed")
    out = {}
    for name in obj.attrs:
        aid = h5py.h5a.open(obj.id, name.encode())
        space, dtype = aid.get_space(), aid.dtype
        vlen_str = h5py.check_string_dtype(dtype) is not None and dtype.kind == "O"
        if space.get_simple_extent_type() == h5py.h5s.NULL or not (
                vlen_str or dtype.kind in "biufS"):
            raise DataError(f"{path}: attribute '{name}' has unsupported type {dtype}; expected "
                            f"strings or numbers")
        count = space.get_simple_extent_npoints()
        declared = count * (1 if vlen_str else dtype.itemsize)
        if declared > MAX_ATTR_BYTES:
            raise DataError(f"{path}: attribute '{name}' declares {declared} bytes; attributes "
                            f"are limited to {MAX_ATTR_BYTES} bytes (1 MiB)")
        # A variable-length string cannot be sized before reading; it is bounded by the
        # file itself and checked right after.
        value = _python_value(obj.attrs[name])
        texts = value if isinstance(value, list) else [value]
        size = sum(len(v.encode()) for v in texts if isinstance(v, str))
        if size > MAX_ATTR_BYTES:
            raise DataError(f"{path}: attribute '{name}' is {size} bytes of text; attributes "
                            f"are limited to {MAX_ATTR_BYTES} bytes (1 MiB)")
        out[name] = value
    return out


def _python_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return [_python_value(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _check_header(attrs: dict[str, Any], path: Path) -> tuple[int, int, tuple[str, ...]]:
    """Check schema, version and required attributes; return ``(N, T, dataset names)``."""
    if "schema" not in attrs:
        raise DataError(f"{path}: not an odernn trajectory file (no 'schema' attribute; "
                        f"expected schema '{SCHEMA}')")
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
    extra = set(datasets) - allowed - {"params"}
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
    dapl = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
    dapl.set_virtual_prefix(os.fsencode(directory))
    return h5py.Dataset(h5py.h5d.open(group.id, name.encode(), dapl))


def _check_dataset(d: h5py.Dataset, path: Path, label: str, shape: tuple[int, ...]) -> None:
    """Dtype, shape, declared size and the storage behind ``d``, all without reading data."""
    if d.dtype.kind != "f" or d.dtype.itemsize not in (4, 8):
        raise DataError(f"{path}: dataset '{label}' has dtype {d.dtype}; expected float32 or "
                        f"float64")
    if label.startswith("params/") and d.ndim not in (1, 2):
        raise DataError(f"{path}: dataset '{label}' has shape {d.shape}; expected (N,) or (N, K) "
                        f"with N = {shape[0]}")
    if d.shape != shape:
        raise DataError(f"{path}: dataset '{label}' has shape {d.shape}; expected {shape} "
                        f"(from n_trajectories and n_steps)")
    if d.size > MAX_ELEMENTS:
        raise DataError(f"{path}: dataset '{label}' declares {d.size} values, more than the "
                        f"{MAX_ELEMENTS} allowed")
    dcpl = d.id.get_create_plist()
    if dcpl.get_external_count():
        raise DataError(f"{path}: dataset '{label}' keeps its data in external raw files, which "
                        f"odernn does not read")
    if d.is_virtual:
        for source in d.virtual_sources():
            src = Path(source.file_name)
            src = src if src.is_absolute() else path.resolve().parent / src
            if source.file_name != "." and not src.is_file():
                raise DataError(f"{path}: virtual dataset '{label}' reads from {src}, which "
                                f"does not exist (a merged file needs its shards beside it)")
    elif d.chunks is not None:
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
    elif dcpl.get_layout() == h5py.h5d.CONTIGUOUS and d.id.get_storage_size() < d.nbytes:
        raise DataError(f"{path}: dataset '{label}' declares {d.nbytes} bytes but stores "
                        f"{d.id.get_storage_size()} (incomplete or forged file)")


def _read_time(d: h5py.Dataset, path: Path, dt: float) -> np.ndarray:
    t = d[()].astype(np.float64)
    if not np.all(np.isfinite(t)):
        raise DataError(f"{path}: dataset 't' has non-finite values")
    steps = np.diff(t)
    if np.any(steps <= 0):
        i = int(np.argmax(steps <= 0)) + 1
        raise DataError(f"{path}: dataset 't' is not strictly increasing (t[{i}] = {float(t[i])!r} "
                        f"after t[{i - 1}] = {float(t[i - 1])!r})")
    # each step within 1e-6 of dt, plus the rounding of t itself (a grid far from t = 0)
    off = np.abs(steps - dt) > 1e-6 * dt + 4 * np.finfo(d.dtype).eps * np.abs(t[1:])
    if np.any(off):
        i = int(np.argmax(off))
        raise DataError(f"{path}: the time grid is not uniform: t[{i + 1}] - t[{i}] = "
                        f"{float(steps[i])!r}, but attribute 'dt' is {dt!r}")
    return t


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.3g} MiB"


def _available_memory() -> int | None:
    """Bytes of memory available now (Linux ``MemAvailable``); None where unknown."""
    return budget.available_memory()


# ---------------------------------------------------------------------------------------------
# Merging shards
