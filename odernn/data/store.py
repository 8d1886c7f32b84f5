"""Reading trajectory files (format: :mod:`odernn.data.schema`): validated, lazy, in
bounded memory; and their content digest.

Readers treat a file as untrusted: its structure is checked before any data is read
(:mod:`odernn.data.filecheck`), and values are checked to be finite block by block as
they are read. Files are written by :mod:`odernn.data.writer`; shards of one simulation
are joined by :mod:`odernn.data.merge`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from odernn import budget
from odernn.checks import is_whole, path_of
from odernn.data.filecheck import open_checked, read_attrs
from odernn.data.schema import DIGEST_EXCLUDED_ATTRS, SCALE_ATTRS, SHARD_SOURCES, check_finite
from odernn.data.trajectories import Trajectories, check_consistency
from odernn.errors import DataError, SpecError
from odernn.interrupt import interrupt_guard

BLOCK_BYTES = 64 << 20
"""Memory bound of one block when the store streams rows (merge, verify, reads)."""
CHECK_COSINES = 1 << 24
"""The most cosines (rows x points x harmonics) of a forcing recomputed per block of a file's
check: a file of 2e6 harmonics per trajectory ignored a Ctrl-C for two minutes."""


class TrajectoryFile:
    """An open, validated trajectory file; data is read only when asked (:meth:`read`).

    Opening checks the schema, every attribute, shape, dtype and the storage behind
    each dataset, and reads ``t``; it does not scan the trajectories, so it is fast
    for any N. :meth:`read` checks the values it reads; :meth:`verify` scans the whole
    file in bounded memory.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = path_of(path, "a trajectory file's path")
        checked = open_checked(self.path)
        self._file = checked.file
        self._attrs = checked.attrs
        self.n, self.n_steps, self.names = checked.n, checked.n_steps, checked.names
        self.t = checked.t
        self._datasets, self._params = checked.datasets, checked.params
        if SHARD_SOURCES in self._attrs and any(  # its shards must be the merged ones (a
                d.is_virtual for d in (*self._datasets.values(), *self._params.values())):
            # copy of its values into plain datasets reads no shard)
            from odernn.data.merge import check_shard_sources

            try:
                check_shard_sources(self.path, self._attrs[SHARD_SOURCES])
            except BaseException:
                self._file.close()
                raise

    def stamp(self) -> tuple[int, int]:
        """The open file's size and time of change, wherever its name now is: a file
        truncated or rewritten under a reader changes them (HDF5 reads what is gone as
        zeros)."""
        st = os.fstat(self._file.id.get_vfd_handle())
        return st.st_size, st.st_mtime_ns

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

    def dataset(self, label: str) -> h5py.Dataset:
        """The open HDF5 dataset ``label`` (``x``, ``params/eta``, ...), its structure checked
        but its values not: for code that works with the storage itself (merging shards)."""
        return self._file[label]

    def read(self, rows: slice | None = None, names: Iterable[str] | None = None) -> Trajectories:
        """Trajectories ``rows`` (a slice with step 1; all by default) of datasets ``names``.

        ``x`` is always read (every Trajectories has it); parameters are read for the
        same rows. Raises DataError on non-finite values, naming the first bad
        trajectory, and before reading if the result would not fit in memory.
        """
        start, stop = self._rows(rows)
        wanted = self._wanted(names)
        row_bytes = self.param_row_bytes() + sum(self.n_steps * self._datasets[k].dtype.itemsize
                                                 for k in wanted)
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
        check_consistency(data, str(self.path), row=start)
        return data

    def verify(self) -> None:
        """Check every value of every dataset is finite and the parts agree with each other
        (:func:`~odernn.data.trajectories.check_consistency`), block by block (bounded memory)."""
        self.ranges()
        self.check_parts()

    def check_parts(self) -> None:
        """:func:`~odernn.data.trajectories.check_consistency` over the whole file, the same check
        :meth:`read` makes, in blocks of at most about :data:`BLOCK_BYTES` (whole rows, or a
        row's columns when a row is larger) and :data:`CHECK_COSINES` cosines of the forcing;
        a Ctrl-C or SIGTERM between blocks ends it."""
        per_point = 8 + sum(d.dtype.itemsize for d in self._datasets.values())  # with t
        cols = self.n_steps
        param_bytes = self.param_row_bytes()  # read whole: the forcing needs every column
        rows = max(1, BLOCK_BYTES // (per_point * cols + param_bytes))
        col_step = cols if per_point * cols <= BLOCK_BYTES else max(1, BLOCK_BYTES // per_point)
        harmonics = max((math.prod(d.shape[1:]) for d in self._params.values()), default=1)
        if cols * harmonics <= CHECK_COSINES:  # fewer whole rows (a row's forcing is cheaper
            rows = min(rows, CHECK_COSINES // (cols * harmonics))  # whole: separable tables)
        else:
            rows, col_step = 1, min(col_step, max(1, CHECK_COSINES // harmonics))
        budget.check(f"{self.path}: the parameters of {rows} trajectory(ies), "
                     f"{_size(param_bytes)} each", rows * param_bytes,
                     "that is for checking the file's parts against each other")
        with interrupt_guard() as interrupted:
            for lo in range(0, self.n, rows):
                hi = min(self.n, lo + rows)
                params = {k: d[lo:hi] for k, d in self._params.items()}
                for c in range(0, cols, col_step):
                    e = min(cols, c + col_step)
                    part = {k: d[lo:hi, c:e] for k, d in self._datasets.items()}
                    check_consistency(Trajectories(self.t[c:e], part["x"], part.get("v"),
                                                   part.get("F"), params, self.attrs),
                                      str(self.path), row=lo, col=c)
                    if interrupted():
                        raise KeyboardInterrupt

    def param_row_bytes(self) -> int:
        """Bytes of one trajectory's parameters, a row of every ``params/`` dataset: what a
        row costs in memory besides its time points."""
        return sum(math.prod(d.shape[1:]) * d.dtype.itemsize for d in self._params.values())

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

        def attributes(where: str, obj: h5py.HLObject, skip: tuple[str, ...] = ()) -> None:
            values = read_attrs(obj, self.path, skip)  # sized before they are read
            for name in sorted(values):
                put(where, name, *_attr_token(obj, name, values[name]))

        put("odernn content digest", "1")
        attributes("attribute /", self._file, DIGEST_EXCLUDED_ATTRS)
        if (group := self._file.get("params")) is not None:
            attributes("attribute /params", group)
        datasets = {"t": self._file["t"], **self._datasets,
                    **{f"params/{k}": self._params[k] for k in sorted(self._params)}}
        for label, d in datasets.items():
            dtype = d.dtype.newbyteorder("<")  # the values, whatever the stored byte order
            put("dataset", label, dtype.str, json.dumps(list(d.shape)))
            attributes("attribute", d, SCALE_ATTRS)  # scales: where, not what
            if d.ndim == 0 or d.shape[0] == 0:
                continue
            # the bytes of the values in row-major order, whatever the blocks
            with closing(self._blocks(label, d, 0, d.shape[0], dtype)) as blocks:
                for block in blocks:
                    h.update(block.tobytes())
        return f"sha256:{h.hexdigest()}"

    def blocks(self, label: str, dtype: np.dtype | None = None) -> Iterable[np.ndarray]:
        """Every row of dataset ``label`` (``x``, ``params/eta``, ...) as consecutive blocks
        of at most about :data:`BLOCK_BYTES`, in row-major order, as ``dtype``: the bytes of
        the whole dataset in bounded memory. A block is a view of one reused buffer (copy
        it to keep it); values are not checked."""
        d = self._file[label]
        return self._blocks(label, d, 0, d.shape[0], dtype)

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
            rows = min(step, stop - start)
            if rows * row_bytes > BLOCK_BYTES:  # a chunk's rows at least: the file sets them
                budget.check(f"{self.path}: dataset '{label}' is read in blocks of {rows} rows "
                             f"(its chunks' height)", rows * row_bytes,
                             "rewrite the file with chunks of fewer rows")
            buffer = np.empty((rows, *d.shape[1:]), dtype=dtype)
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
        if (not isinstance(rows, slice) or isinstance(rows.step, bool)
                or rows.step not in (None, 1)
                or not all(i is None or is_whole(i) for i in (rows.start, rows.stop))):
            raise SpecError(f"rows must be a slice of whole numbers with step 1 (e.g. slice(0, "
                            f"100)), got {rows!r}")
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
                    check_finite(block, self.path, label, start + done // cols, "has")
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
                check_finite(buffer[dest], self.path, label, lo, "has")
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
    """Open, validate and read a trajectory file (all rows, or ``rows``: at least one)."""
    with open_trajectories(path) as f:
        start, stop = f._rows(rows)
        if stop == start and f.n:
            raise SpecError(f"rows {rows!r} select none of the {f.n} trajectories of {path}")
        return f.read(rows)


def content_digest(path: Path | str) -> str:
    """SHA-256 of a trajectory file's content, as ``sha256:<hex>`` (``odernn inspect`` prints it).

    It covers every dataset (``t``, ``x``, ``v``, ``F``, ``params/*``: name, dtype,
    shape, every value's bytes, its attributes) and every attribute of the root and
    ``params`` groups except :data:`DIGEST_EXCLUDED_ATTRS` (``created``, and a virtual
    merge's ``shard_sources``), each in a fixed order. It leaves out how HDF5 stores them
    (chunks, compression, a virtual dataset, byte order, where in the file) and the dimension
    scales (``/trajectory``, ``/component``, :data:`~odernn.data.schema.SCALE_ATTRS`: derived
    from the shapes, absent from older files): two files with one digest hold the same
    numbers and the same provenance. Memory is bounded (rows are read in blocks).
    """
    with open_trajectories(path) as f:
        return f.content_digest()


def _attr_token(obj: h5py.HLObject, name: str, value: Any) -> tuple[str, str]:
    """An attribute (its ``value`` as Python) as ``(type, JSON value)``: strings are ``str``
    whether fixed or variable length; numbers keep their kind and size (``i8``, ``f8``,
    ``b1``)."""
    dtype = h5py.h5a.open(obj.id, name.encode()).dtype
    kind = "str" if h5py.check_string_dtype(dtype) is not None else f"{dtype.kind}{dtype.itemsize}"
    return kind, json.dumps(value, sort_keys=True, allow_nan=True)


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.3g} MiB"


def _available_memory() -> int | None:
    """Bytes of memory available now (Linux ``MemAvailable``); None where unknown."""
    return budget.available_memory()
