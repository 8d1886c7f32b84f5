"""Some rows of a trajectory file, read on demand: training on data larger than memory.

A :class:`FileRows` holds what is small in memory (the time grid, the attributes, which
rows it is) and reads trajectories only when asked, a span of file rows at a time
(:meth:`FileRows.read_span`), each span checked as :meth:`TrajectoryFile.read
<odernn.data.store.TrajectoryFile.read>` checks it (finite values, consistent parts). A
split of it (:meth:`take`) is another view of the same file. Each process opens the file
once, when it first reads (an HDF5 handle does not survive a fork): under data-parallel
training every worker has its own handle.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from odernn import budget
from odernn.data.chunks import chunk_shape
from odernn.data.store import TrajectoryFile
from odernn.data.trajectories import Trajectories
from odernn.errors import DataError

READ_BYTES = 16 << 20
""":meth:`FileRows.read` reads spans of at most about this many bytes of file rows, or an
eighth of the memory budget (whole chunks, at least one)."""


class FileRows:
    """Rows ``rows`` (strictly increasing file row indices; all by default) of the file at
    ``path``.

    ``n``, ``n_steps``, ``dt``, ``t``, ``system``, ``is_series`` and ``attrs`` are those of
    an in-memory :class:`~odernn.data.trajectories.Trajectories` of the same rows.
    """

    def __init__(self, path: Path | str, rows: np.ndarray | None = None) -> None:
        self.path = Path(path)
        self._handle: TrajectoryFile | None = None
        self._pid = -1
        f = self.file()
        self.stamp = f.stamp()
        self.file_n = f.n
        if rows is None:
            budget.check(f"{self.path}: the row index of its {f.n} trajectories", 8 * f.n,
                         "that is 8 bytes per trajectory; split the file")
        self.rows = (np.arange(f.n, dtype=np.int64) if rows is None
                     else _checked(rows, f.n, self.path))
        self.head = f.read(slice(0, 1))  # one trajectory: the grid, attributes, kinds
        x = f.dataset("x")
        self.chunk_rows = chunk_shape(f.n, x.shape[1:], x.dtype.itemsize)[0]
        """Trajectories per chunk as odernn writes this content (its own files' chunks): the
        unit streaming plans its blocks in, from the content alone, so that the windows
        drawn do not depend on the layout (a virtual merge has no chunks)."""
        self.point_bytes = sum(f.dataset(k).dtype.itemsize for k in f.names)
        self.param_bytes = f.param_row_bytes()
        self.summary: dict[str, np.ndarray] | None = None
        """Each parameter's smallest and largest value over the file (set by the pass that
        fingerprints it): what decides the layout's inputs, in place of every value."""

    def file(self) -> TrajectoryFile:
        """This process's open handle on the file (opened on first use in each process)."""
        if self._handle is None or self._pid != os.getpid():
            self._handle, self._pid = TrajectoryFile(self.path), os.getpid()
        return self._handle

    @property
    def n(self) -> int:
        return len(self.rows)

    @property
    def n_steps(self) -> int:
        return self.head.n_steps

    @property
    def t(self) -> np.ndarray:
        return self.head.t

    @property
    def dt(self) -> float:
        return self.head.dt

    @property
    def system(self) -> str:
        return self.head.system

    @property
    def is_series(self) -> bool:
        return self.head.is_series

    @property
    def attrs(self) -> dict:
        return self.head.attrs

    @property
    def whole(self) -> bool:
        """True when the view is every row of the file, in order."""
        return self.n == self.file_n

    def take(self, index: np.ndarray) -> FileRows:
        """The view of rows ``self.rows[index]`` (``index`` strictly increasing), same
        file."""
        index = _checked(index, self.n, self.path, "positions in the view")
        view = object.__new__(FileRows)
        view.__dict__.update(self.__dict__)
        view.rows = self.rows[index]
        return view

    def row_bytes(self) -> int:
        """Bytes of one trajectory as stored (every dataset and parameter, one row): what
        reading a row costs."""
        return self.n_steps * self.point_bytes + self.param_bytes

    def spans(self, file_rows: int) -> list[tuple[int, int]]:
        """The view's positions ``(lo, hi)`` falling in each run of ``file_rows`` file rows
        (runs aligned to multiples of ``file_rows`` from row 0; empty runs left out): with
        ``file_rows`` a multiple of the chunk rows, each span reads whole chunks."""
        edges = np.arange(0, self.file_n + file_rows, file_rows)
        cuts = np.searchsorted(self.rows, edges)
        return [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]

    def read_span(self, lo: int, hi: int) -> Trajectories:
        """The trajectories at positions ``lo..hi``, read from the file rows they span and
        checked (:meth:`TrajectoryFile.read`)."""
        rows = self.rows[lo:hi]
        first = int(rows[0])
        handle = self._unchanged()
        data = handle.read(slice(first, int(rows[-1]) + 1))
        self._unchanged()  # and not during the read
        if len(rows) == data.n:
            return data
        return data.take(rows - first)

    def _unchanged(self) -> TrajectoryFile:
        """This process's handle, refused (one DataError line) where the file it reads has
        changed since it was first opened: HDF5 reads a truncated part as zeros."""
        handle = self.file()
        if handle.stamp() != self.stamp:
            raise DataError(f"{self.path} changed while it was being read (its size or time "
                            "of change is another): stopped; read it again from the start")
        return handle

    def blocks(self, file_rows: int) -> Iterator[tuple[int, int, Trajectories]]:
        """``(lo, hi, trajectories)`` for each span of :meth:`spans`, in order."""
        for lo, hi in self.spans(file_rows):
            yield lo, hi, self.read_span(lo, hi)

    def read(self, what: str = "the rows") -> Trajectories:
        """Every row of the view in memory, refused first if it would exceed the budget."""
        if self.n == 0:
            raise DataError(f"{self.path}: {what}: the view holds no trajectory")
        budget.check(f"{self.path}: {what}, {self.n} trajectories of {self.n_steps} points",
                     2 * self.n * self.row_bytes(), "give fewer trajectories")
        most = min(READ_BYTES, budget.memory_budget()[0] // 8)
        span = max(1, most // self.row_bytes() // self.chunk_rows) * self.chunk_rows
        parts = [data for _, _, data in self.blocks(span)]
        first = parts[0]

        def join(name: str) -> np.ndarray | None:
            if getattr(first, name) is None:
                return None
            return np.concatenate([getattr(p, name) for p in parts])

        params = {k: np.concatenate([p.params[k] for p in parts]) for k in first.params}
        return Trajectories(first.t, join("x"), join("v"), join("F"), params, first.attrs)

    def close(self) -> None:
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = None

    def __repr__(self) -> str:
        return f"FileRows('{self.path}', n={self.n} of {self.file_n})"


def _checked(rows: object, n: int, path: Path, what: str = "file rows") -> np.ndarray:
    """``rows`` as int64 indices (none: an empty view, a rank's share of fewer rows than
    ranks), refused unless they increase strictly within ``[0, n)``: a negative one would
    wrap, one repeated would count the view as the whole file."""
    index = np.asarray(rows)
    if index.ndim != 1 or (index.size and index.dtype.kind not in "iu"):
        raise DataError(f"{path}: {what} must be a 1-D array of integers, got shape "
                        f"{index.shape} of {index.dtype}")
    index = index.astype(np.int64, copy=False)  # one byte a row more, for the order's check
    if index.size and (index[0] < 0 or index[-1] >= n or not np.all(index[1:] > index[:-1])):
        raise DataError(f"{path}: {what} must increase strictly within 0 .. {n - 1}")
    return index
