"""The first pass of ``odernn import`` (:mod:`odernn.data.importer`): the mapped arrays as
columns of rows (:class:`Columns`), and the scan that checks them and finds the
trajectories (:func:`scan`), before anything is written.

A 2-D array ``(N, T)`` is read as N trajectories of T rows each, one after the other; a
``(T,)`` time array beside it is every trajectory's, and ``(N,)`` parameters are each
trajectory's. The scan reads every mapped column in blocks of rows and refuses, naming
the first offending row: a value that is not finite, a step other than the first
trajectory's first step (beyond the tolerance), a parameter that changes within a
trajectory, a trajectory of one point, trajectories of unequal length (unless
truncated). Memory: one block of rows, and a few numbers per trajectory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from odernn import budget
from odernn.data.schema import off_step, rounding
from odernn.data.sources import Source
from odernn.errors import DataError
from odernn.progress import Event, Progress

RUN_LIMIT = 2.0**53
"""Run numbers (``--trajectory``) are read as float64, which tells every integer apart below
this and not above it."""
CHUNK_BYTES = 8 << 20
"""A block holds this many bytes of rows (all mapped columns and two more, float64); checked
or written, twice that at most (:meth:`Columns.block_bytes`)."""


class Columns:
    """The arrays ``options`` maps, read as float64 columns of :attr:`rows` rows in blocks
    of :attr:`chunk` rows (:meth:`read`); :meth:`where` names a row in a message."""

    def __init__(self, source: Source, options: Any) -> None:
        self.source = source
        roles = {"time": options.time, "x": options.x, "v": options.v,
                 "forcing": options.forcing, "trajectory": options.trajectory,
                 **{f"param:{k}": c for k, c in options.params.items()}}
        self.names = {role: name for role, name in roles.items() if name is not None}
        self.options = options
        self.dt: float | None = options.dt
        """The rows' step where the times are given by it (``--dt``), not by an array."""
        for name in self.names.values():
            source.shape(name)  # a missing name is refused before anything is read
        self.chunk = max(1, CHUNK_BYTES // (8 * (len(self.names) + 2)))
        source.load(list(dict.fromkeys(self.names.values())), later=self.block_bytes)
        shapes = {role: source.shape(name) for role, name in self.names.items()}
        x = shapes["x"]
        if len(x) == 1:
            self.wide = None
            self.rows = x[0]
            allowed = {role: ((self.rows,),) for role in shapes}
        else:
            n, T = x
            self.wide = (n, T)
            self.rows = n * T
            allowed = {role: ((n, T),) for role in shapes}
            allowed["time"] = ((n, T), (T,))
            allowed["trajectory"] = ((n, T), (n,))
            allowed.update({r: ((n, T), (n,)) for r in shapes if r.startswith("param:")})
        for role, shape in shapes.items():
            if shape not in allowed[role]:
                ok = " or ".join(str(s) for s in allowed[role])
                raise DataError(f"{source.path}: {self.label(role)} has shape {shape}; with "
                                f"--x {options.x!r} of shape {x} it must be {ok}")
        self.shapes = shapes
        self._time: np.ndarray | None = None

    def block_bytes(self, rows: int) -> int:
        """Memory of one block of the scan or the writing pass, of ``rows`` rows in all:
        16 (k + 2) bytes a row for k columns, the previous rows and the checks' temporaries
        (the scan measured 16 k + 12, the writing less), and 16 k more from HDF5, whose
        reads are copies (the others' are views)."""
        k = len(self.names)
        per_row = 16 * (k + 2) + (16 * k if self.source.format == "hdf5" else 0)
        return per_row * min(rows, self.chunk)

    def has(self, role: str) -> bool:
        return role in self.names

    def eps(self, role: str) -> float:
        """The relative rounding of ``role`` as stored (:func:`~odernn.data.schema.rounding`;
        float64's for times made from ``--dt``)."""
        if role not in self.names:
            return rounding(np.float64)
        return rounding(getattr(self.source.array(self.names[role]), "dtype", np.float64))

    def label(self, role: str) -> str:
        """How the user named ``role``: ``column 'temp' (--x)``."""
        if role == "time" and self.dt is not None:
            return f"the time r dt of row r (--dt {self.dt!r})"
        name = self.names[role]
        kind = "column" if self.source.format == "csv" else "array"
        option = f"--param {role[6:]}={name}" if role.startswith("param:") else f"--{role}"
        return f"{kind} {name!r} ({option})"

    def read(self, role: str, a: int, b: int) -> np.ndarray:
        """Rows ``a..b`` of ``role`` as float64 (a synthesized trajectory index for 2-D
        arrays without ``--trajectory``, and the times ``r dt`` of row ``r`` with ``--dt``:
        ``j dt`` of a 2-D array's point ``j``)."""
        if role == "trajectory" and role not in self.names:
            return (np.arange(a, b) // self.wide[1]).astype(np.float64)
        if role == "time" and self.dt is not None:
            rows = np.arange(a, b)
            return self.dt * (rows if self.wide is None else rows % self.wide[1])
        arr = self.source.array(self.names[role])
        shape = self.shapes[role]
        if self.wide is None or len(shape) == 2:
            if self.wide is None:
                return np.asarray(arr[a:b], dtype=np.float64)
            return _wide_rows(arr, self.wide[1], a, b)
        n, T = self.wide
        if shape == (T,) and role == "time":
            if self._time is None:
                budget.check(f"{self.label(role)}: {T} points", 8 * T, "import shorter "
                             "trajectories")
                self._time = np.asarray(arr[:], dtype=np.float64)
            return self._time[np.arange(a, b) % T]
        rows = np.arange(a, b) // T
        first = int(rows[0]) if rows.size else 0
        values = np.asarray(arr[first:int(rows[-1]) + 1 if rows.size else 0], dtype=np.float64)
        return values[rows - first]

    def where(self, role: str, r: int) -> str:
        """Where row ``r`` of ``role`` is in the source."""
        if self.wide is None:
            return self.source.row(self.names.get(role, ""), (r,))
        i, j = divmod(r, self.wide[1])
        return f"trajectory {i}, point {j}"


def _wide_rows(arr: Any, T: int, a: int, b: int) -> np.ndarray:
    """Elements ``a..b`` of a 2-D ``(N, T)`` array in row-major order, reading only them."""
    if b <= a:
        return np.empty(0)
    r0, c0 = divmod(a, T)
    r1, c1 = divmod(b - 1, T)
    if r0 == r1:
        return np.asarray(arr[r0, c0:c1 + 1], dtype=np.float64)
    parts = [np.asarray(arr[r0, c0:], dtype=np.float64)]
    if r1 > r0 + 1:
        parts.append(np.asarray(arr[r0 + 1:r1], dtype=np.float64).ravel())
    parts.append(np.asarray(arr[r1, :c1 + 1], dtype=np.float64))
    return np.concatenate(parts)


@dataclass
class Scan:
    """What the first pass found: trajectory ``i`` is rows ``starts[i] ..
    starts[i] + T`` (``dropped`` rows beyond are cut by ``truncate``), with its parameters,
    first position and start time; ``wide``: the source holds 2-D arrays; ``notes``: what a
    user should know of the trajectories found."""

    rows: int
    starts: np.ndarray
    T: int
    dt: float
    params: dict[str, np.ndarray]
    x0: np.ndarray
    t0: np.ndarray
    dropped: int
    wide: bool
    notes: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        return int(self.starts.size)


def scan(columns: Columns, options: Any, report: Progress,
         interrupted: Callable[[], bool]) -> Scan:
    """Read every mapped column in blocks; check each block; find the trajectories."""
    roles = list(columns.names)
    split = "trajectory" if columns.has("trajectory") or columns.wide else None
    params = [r for r in roles if r.startswith("param:")]
    where = columns.source.path
    starts, t0, x0, runs = [], [], [], []
    per = {r: [] for r in params}
    prev: dict[str, float] = {}
    dt, t_eps = None, columns.eps("time")
    for a in range(0, columns.rows, columns.chunk):
        b = min(columns.rows, a + columns.chunk)
        block = {r: columns.read(r, a, b) for r in roles}
        if split and "trajectory" not in block:
            block["trajectory"] = columns.read("trajectory", a, b)
        if "time" not in block:  # made from --dt: checked as a column is
            block["time"] = columns.read("time", a, b)
        for role, values in block.items():
            bad = ~np.isfinite(values)
            if bad.any():
                r = a + int(np.argmax(bad))
                raise DataError(f"{where}: {columns.where(role, r)}: {columns.label(role)} is "
                                f"{float(values[r - a])!r}; import takes finite numbers only")
        if columns.has("trajectory"):  # read as float64: two runs beyond 2^53 may read alike
            big = np.abs(block["trajectory"]) >= RUN_LIMIT
            if big.any():
                r = a + int(np.argmax(big))
                value = float(block["trajectory"][r - a])
                raise DataError(f"{where}: {columns.where('trajectory', r)}: "
                                f"{columns.label('trajectory')} holds {value:.17g} (as read), a "
                                "run number of magnitude 2^53 or more, where float64 cannot "
                                "tell neighbouring numbers apart (two runs could read as "
                                "one): number the runs from 0")
        before = {k: np.concatenate([[prev.get(k, np.nan)], v[:-1]]) for k, v in block.items()}
        t, t_prev = block["time"], before["time"]
        new = block["trajectory"] != before["trajectory"] if split else t < t_prev
        if a == 0:
            new[0] = True
        with np.errstate(over="ignore"):  # a step beyond the largest float: refused below
            step = t - t_prev
        inside = ~new
        if dt is None and inside.any():
            k = int(np.argmax(inside))
            dt = float(step[k])
            if not dt > 0:
                raise DataError(f"{where}: {columns.where('time', a + k)}: time does not "
                                f"increase ({float(t[k])!r} after {float(t_prev[k])!r}); each "
                                "trajectory needs increasing times with one uniform step")
            if dt == np.inf:
                raise DataError(f"{where}: {columns.where('time', a + k)}: the step from "
                                f"{float(t_prev[k])!r} to {float(t[k])!r} overflows float64; "
                                "import takes steps that are finite numbers")
        if dt is not None:  # times from --dt too: 2-D rows that --trajectory joins restart
            largest = float(t[np.argmax(np.abs(t))])  # the time farthest from zero
            allowance = 4 * t_eps * abs(largest)  # off_step's, for t's rounding
            if allowance + options.step_tolerance * dt >= dt:  # a dropped sample's step passes
                raise DataError(
                    f"{where}: {columns.label('time')} near {largest!r} is "
                    f"too coarse for its step {dt!r}: the allowance for its rounding there "
                    f"({allowance:.3g}) reaches a step, so a missing sample would pass for "
                    "rounding; store the times in float64, or count them from a nearer start")
            off = inside & off_step(step, dt, t_prev, t, options.step_tolerance, t_eps)
            if off.any():
                k = int(np.argmax(off))
                raise DataError(
                    f"{where}: {columns.where('time', a + k)}: the step is not uniform: t goes "
                    f"from {float(t_prev[k])!r} to {float(t[k])!r}, a step of "
                    f"{float(step[k])!r}, but the first trajectory's step is {dt!r} (tolerance "
                    f"{options.step_tolerance:g} of it, --step-tolerance); every trajectory "
                    "needs the same uniform step")
        for role in params:
            changed = inside & (block[role] != before[role])
            if changed.any():
                k = int(np.argmax(changed))
                raise DataError(
                    f"{where}: {columns.where(role, a + k)}: parameter {role[6:]} "
                    f"({columns.label(role)}) changes within a trajectory, from "
                    f"{float(before[role][k])!r} to {float(block[role][k])!r}; a parameter is "
                    "constant along each trajectory (--trajectory COL says where one ends)")
        first = np.flatnonzero(new)
        starts.append(a + first)
        t0.append(t[first])
        x0.append(block["x"][first])
        if columns.has("trajectory"):
            runs.append(block["trajectory"][first])
        for role in params:
            per[role].append(block[role][first])
        prev = {k: float(v[-1]) for k, v in block.items()}
        count = sum(s.size for s in starts)
        budget.check(f"{where}: {count} trajectories so far", columns.source.held()
                     + columns.block_bytes(columns.rows) + 8 * count * (2 * len(params) + 8),
                     "that is for the columns read, a block of rows and a few numbers per "
                     "trajectory")
        report(Event("import", "check", b, columns.rows, f"checked {b} of {columns.rows} rows"))
        if interrupted():
            raise KeyboardInterrupt
    if columns.rows <= 0:
        raise DataError(f"{where}: no data rows ({columns.label('x')} is empty)")
    starts_all = np.concatenate(starts)
    lengths = np.diff(np.append(starts_all, columns.rows))
    T = _length(columns, options, starts_all, lengths)
    return Scan(columns.rows, starts_all, T, float(dt), {r[6:]: np.concatenate(per[r])
                                                         for r in params},
                np.concatenate(x0), np.concatenate(t0), int(columns.rows - T * starts_all.size),
                columns.wide is not None, _repeated_run(columns, runs, starts_all))


def _repeated_run(columns: Columns, runs: list[np.ndarray], starts: np.ndarray
                  ) -> tuple[str, ...]:
    """A note where a run number of ``--trajectory`` starts again after other runs: read as
    a trajectory of its own (two files joined, each counting from 0?), which a user whose
    rows of one run were meant together should know (they were two trajectories, unsaid)."""
    if not runs:
        return ()
    values = np.concatenate(runs)
    order = np.argsort(values, kind="stable")
    again = order[1:][values[order][1:] == values[order][:-1]]
    if not again.size:
        return ()
    i = int(again.min())
    run = float(values[i])
    shown = int(run) if run.is_integer() else run  # a run 20231207 was 2.02312e+07
    return (f"run {shown} of {columns.label('trajectory')} starts again at "
            f"{columns.where('trajectory', int(starts[i]))} (trajectory {i}) after other runs: "
            f"read as a trajectory of its own ({again.size} run(s) start again in all); sort "
            "the rows by run if a run's rows belong together",)


def _length(columns: Columns, options: Any, starts: np.ndarray, lengths: np.ndarray) -> int:
    """The common length: every trajectory's, or the shortest with ``truncate``; refuse
    one-point trajectories (and under 3 points with ``derive_v``) and unequal lengths."""
    where = columns.source.path
    least = 3 if options.derive_v else 2
    short = lengths < least
    if short.any():
        i = int(np.argmax(short))
        what = ("--derive-v needs at least 3 points (second-order differences)"
                if options.derive_v and lengths[i] == 2 else
                "each trajectory needs at least 2 points (one step to learn or roll out)"
                + ("; rows whose runs interleave (sorted by time, then run) make one-point "
                   "runs: sort them by run first" if options.trajectory is not None
                   and lengths[i] == 1 else
                   "; a trajectory ends where time goes backwards, as it does after this row: "
                   "are the rows in decreasing time? (or give --trajectory COL)"
                   if columns.wide is None and lengths[i] == 1 and options.dt is None else ""))
        raise DataError(f"{where}: trajectory {i} ({columns.where('time', int(starts[i]))}) "
                        f"has {int(lengths[i])} point(s); {what}")
    if not options.truncate and np.any(lengths != lengths[0]):
        i = int(np.argmax(lengths != lengths[0]))
        raise DataError(f"{where}: trajectory 0 has {int(lengths[0])} points but trajectory {i} "
                        f"({columns.where('time', int(starts[i]))}) has {int(lengths[i])}; "
                        "trajectories must be equally long: --truncate cuts every one to the "
                        f"shortest ({int(lengths.min())} points)")
    return int(lengths.min())
