"""Trajectories measured or computed elsewhere, imported into a trajectory file
(``odernn import``).

The options (:class:`ImportOptions`) map arrays of a source file
(:mod:`odernn.data.sources`) to the schema: time, position, velocity (or
:func:`derive_velocity`), forcing (zero when absent) and parameters. A table's rows are
cut into trajectories where the ``trajectory`` column changes value, else where time goes
backwards, else it is one trajectory; 2-D arrays are trajectories x points already. Every
trajectory needs one uniform step, the same for all, and the same length (``truncate``
cuts them to the shortest). Parameters must be constant along a trajectory.

Two passes over the source in blocks of rows (:mod:`odernn.data.import_scan` checks and
finds the trajectories, then the rows are written), so a ``.npy`` or HDF5 source of any
size is read in bounded memory. The file says ``system = external`` unless the equation is
declared (``system`` and its parameters by column or ``sets``), and records the source's
name, SHA-256 and the mapping (``odernn inspect`` shows them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from odernn import budget, jsonio
from odernn.checks import did_you_mean, is_real, path_of
from odernn.data.import_scan import Columns, Scan, scan
from odernn.data.schema import GRID_TOLERANCE, MAX_ELEMENTS, grid_step, mean_step, off_grid
from odernn.data.sources import Source, open_source
from odernn.data.systems import EXTERNAL, GRAPH_NAMES, NOT_PARAMETERS, SYSTEMS, get_system
from odernn.errors import DataError, SpecError
from odernn.interrupt import interrupt_guard
from odernn.progress import Event, Progress, reporter

STEP_TOLERANCE = GRID_TOLERANCE
"""Default relative tolerance of a uniform step: every step within ``1e-6 dt`` of ``dt`` (plus
the rounding of t itself), the trajectory file's own rule."""
DERIVATIVE = ("second-order finite differences of x: (x[i+1] - x[i-1]) / (2 dt) inside, "
              "(-3 x[0] + 4 x[1] - x[2]) / (2 dt) and (3 x[-1] - 4 x[-2] + x[-3]) / (2 dt) at "
              "the ends")
"""How ``--derive-v`` computes the velocity (stored in the file's ``velocity`` attribute)."""
RESERVED = ("x", "v", "F", "F_next", "F_prev", *NOT_PARAMETERS, *GRAPH_NAMES)
"""Names a parameter may not take: the input channels, what import stores itself, and the
names an exported graph has for itself."""
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class ImportOptions:
    """How a source's arrays map to the schema (``odernn import``'s options).

    ``time``, ``x``, ``v``, ``forcing``, ``trajectory``: array names of the source
    (``time`` by default ``t``); or ``dt`` instead of ``time``: the rows are samples ``dt``
    apart, row ``r`` of a column at ``t = r dt`` (of a 2-D array, point ``j`` of every row
    at ``j dt``);
    ``v`` None needs ``derive_v``; ``forcing`` None is zero forcing; ``params`` maps a
    parameter name to an array; ``system`` None (or ``external``) for an unknown equation,
    else a name of :data:`~odernn.data.systems.SYSTEMS` whose every parameter comes from
    ``params`` or ``sets`` (a constant); ``step_tolerance`` is relative to the step.
    """

    time: str | None = None
    x: str = "x"
    v: str | None = None
    derive_v: bool = False
    forcing: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    trajectory: str | None = None
    truncate: bool = False
    system: str | None = None
    sets: Mapping[str, float] = field(default_factory=dict)
    step_tolerance: float = STEP_TOLERANCE
    dt: float | None = None

    def __post_init__(self) -> None:
        if self.time is None and self.dt is None:
            object.__setattr__(self, "time", "t")
        _check_types(self)
        if self.dt is not None:
            if self.time is not None:
                raise SpecError(f"give --time COL or --dt DT, not both (got --time {self.time} "
                                f"and --dt {self.dt!r})")
            if not (is_real(self.dt) and np.finfo(np.float64).tiny <= self.dt < np.inf):
                raise SpecError(f"--dt must be a positive number, got {self.dt!r}")
            object.__setattr__(self, "dt", float(self.dt))
        object.__setattr__(self, "step_tolerance", float(self.step_tolerance))
        object.__setattr__(self, "sets", {k: float(v) if is_real(v) else v  # NumPy's too
                                          for k, v in self.sets.items()})
        if self.v is not None and self.derive_v:
            raise SpecError("give --v COL or --derive-v, not both")
        if self.v is None and not self.derive_v:
            raise SpecError("no velocity: give --v COL (its column, e.g. --v v), or --derive-v "
                            "to compute it from x by finite differences")
        if not 0 < self.step_tolerance < 0.5:
            raise SpecError(f"--step-tolerance must be in (0, 0.5), got {self.step_tolerance}")
        for name in (*self.params, *self.sets):
            if name in RESERVED or not NAME.match(name):
                raise SpecError(f"parameter name {name!r}: use letters, digits and _ (not "
                                f"starting with a digit), none of {', '.join(RESERVED)}")
        both = sorted(set(self.params) & set(self.sets))
        if both:
            raise SpecError(f"parameter {both[0]!r} is given by --param and by --set; give it "
                            "once")
        if self.system in (None, EXTERNAL):
            if self.sets:
                raise SpecError("--set gives a declared system's parameters: add --system NAME "
                                f"(one of {', '.join(SYSTEMS)})")
            return
        entry = get_system(self.system)
        for name, value in self.sets.items():
            if name not in entry.names:
                raise SpecError(f"--set {name}: not a parameter of system {entry.name!r}"
                                f"{did_you_mean(name, entry.names)}; its parameters: "
                                f"{', '.join(entry.names)}")
            if not is_real(value):
                raise SpecError(f"--set {name}={value!r}: expected a number")
            entry.parameters[entry.names.index(name)].check(value, f"--set {name}")
        missing = [p for p in entry.names if p not in self.params and p not in self.sets]
        if missing:
            raise SpecError(f"system {entry.name!r} needs parameter {missing[0]!r}: give "
                            f"--param {missing[0]}=COLUMN or --set {missing[0]}=VALUE")

    @property
    def declared(self) -> str:
        """The file's system: the declared one, or :data:`EXTERNAL`."""
        return self.system if self.system not in (None, EXTERNAL) else EXTERNAL

    def mapping(self) -> dict[str, Any]:
        """The mapping as stored in the file (attribute ``import_mapping``, JSON)."""
        return {"time": self.time, "dt": self.dt, "x": self.x, "v": self.v,
                "derive_v": self.derive_v,
                "forcing": self.forcing, "params": dict(self.params),
                "trajectory": self.trajectory, "truncate": self.truncate,
                "system": self.declared, "set": dict(self.sets),
                "step_tolerance": self.step_tolerance}


def _check_types(options: ImportOptions) -> None:
    """Each field of the type :class:`ImportOptions` documents, refused in one line."""
    def refuse(name: str, expected: str) -> None:
        raise SpecError(f"ImportOptions {name} must be {expected}, got {getattr(options, name)!r}")

    for name in ("time", "x", "v", "forcing", "trajectory", "system"):
        value, optional = getattr(options, name), name != "x"
        if not (isinstance(value, str) and value or optional and value is None):
            refuse(name, "a name (a non-empty string)" + (" or None" if optional else ""))
    for name in ("derive_v", "truncate"):
        if not isinstance(getattr(options, name), bool):
            refuse(name, "True or False")
    for name, values in (("params", str), ("sets", object)):
        mapping = getattr(options, name)
        if not (isinstance(mapping, Mapping) and all(isinstance(k, str) and isinstance(v, values)
                                                     for k, v in mapping.items())):
            refuse(name, "a mapping of parameter names to " + (
                "array names" if values is str else "numbers"))
    tolerance = options.step_tolerance
    if not is_real(tolerance):
        refuse("step_tolerance", "a number")


@dataclass
class ImportResult:
    """What was written: ``n`` trajectories of ``n_steps`` points, step ``dt``, ``dropped``
    rows cut by ``truncate``; ``notes`` says what the import did besides copying."""

    path: Path
    n: int
    n_steps: int
    dt: float
    system: str
    rows: int
    dropped: int
    notes: list[str]


def derive_velocity(x: np.ndarray, dt: float, *, first: bool = True,
                    last: bool = True) -> np.ndarray:
    """``dx/dt`` along the last axis of ``x`` (at least 3 points) by :data:`DERIVATIVE`:
    second order everywhere. ``first``/``last`` False: that end of ``x`` is not a
    trajectory's end but a cut inside it, and its entry is NaN (the caller drops it)."""
    x = np.asarray(x, dtype=np.float64)
    v = np.empty_like(x)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused by the caller
        v[..., 1:-1] = (x[..., 2:] - x[..., :-2]) / (2 * dt)
        v[..., 0] = (-3 * x[..., 0] + 4 * x[..., 1] - x[..., 2]) / (2 * dt) if first else np.nan
        v[..., -1] = (3 * x[..., -1] - 4 * x[..., -2] + x[..., -3]) / (2 * dt) if last else np.nan
    return v


def import_file(source: Path | str, output: Path | str, options: ImportOptions | None = None,
                *, overwrite: bool = False, progress: bool | Progress | None = None
                ) -> ImportResult:
    """Import ``source`` (CSV, ``.npy``, ``.npz`` or HDF5) into the trajectory file ``output``
    by ``options``; the file appears only when complete. Raises one-line errors
    (:class:`~odernn.errors.OdernnError`) for what a user can get wrong, before writing."""
    from odernn.data.writer import TrajectoryWriter, check_target

    options = ImportOptions() if options is None else options
    if not isinstance(options, ImportOptions):
        raise SpecError(f"options must be ImportOptions, got {type(options).__name__}")
    source, output = path_of(source, "source"), path_of(output, "output")
    check_target(output, overwrite, inputs=[source])
    report = reporter(progress)
    with open_source(source) as src, interrupt_guard() as interrupted:
        columns = Columns(src, options)
        _check_size(columns, output)
        found = scan(columns, options, report, interrupted)
        grid, notes = _grid(columns, found)
        notes = [*src.notes(), *found.notes, *notes]
        params = _params(found, options)
        attrs = _provenance(source, src, options, found, notes, src.sha256(interrupted))
        with TrajectoryWriter(output, t=grid, n=found.n, params=dict.fromkeys(params, ()),
                              attrs=attrs, overwrite=overwrite) as writer:
            _write(columns, found, options, params, writer, report, interrupted)
            src.unchanged()  # before the file is put in place
    report(Event("import", "done", found.rows, found.rows, f"wrote {output}"))
    return ImportResult(output, found.n, found.T, grid_step(grid), options.declared,
                        found.rows, found.dropped, notes)


def _check_size(columns: Columns, output: Path) -> None:
    """Refuse before the scan a source no file may hold: more values than a dataset may
    hold, or, for a 2-D array (every trajectory kept whole), a file larger than the disk's
    room (a small HDF5 file can declare a (10^6, 10^6) array, which was scanned for hours)."""
    from odernn.atomic import AsideFile
    from odernn.data.chunks import check_space

    if columns.rows > MAX_ELEMENTS:
        raise DataError(f"{columns.source.path}: {columns.label('x')} holds {columns.rows} "
                        f"values, more than the {MAX_ELEMENTS} an odernn dataset may hold")
    if columns.wide is not None:
        AsideFile(output).discard()  # first, as the writer: can the directory take a file?
        check_space(output, 8 * 3 * columns.rows)  # x, v and F in float64


def _grid(columns: Columns, found: Scan) -> tuple[np.ndarray, list[str]]:
    """The file's time grid: the first trajectory's times, or where they are uniform only to
    a looser ``step_tolerance`` than the file's, ``t0 + dt i`` with their mean step."""
    budget.check(f"{columns.label('time')}: a grid of {found.T} points", 8 * 4 * found.T,
                 "that is for the time grid; import shorter trajectories")
    notes = [] if columns.has("forcing") else ["no forcing column: F = 0"]
    if columns.dt is not None:  # the scan found these times finite; the step is dt exactly
        return columns.dt * np.arange(found.T), notes  # (schema.grid_step)
    s = int(found.starts[0])
    t = columns.read("time", s, s + found.T)
    if found.dropped:
        notes.append(f"truncated every trajectory to the shortest, {found.T} points: dropped "
                     f"{found.dropped} of {found.rows} rows "
                     f"({100 * found.dropped / found.rows:.3g}%)")
    eps = columns.eps("time")
    coarse = eps > np.finfo(np.float64).eps  # float32 times: their rounding is no grid's,
    if coarse or np.any(off_grid(t)):  # whatever their steps look like
        with np.errstate(over="ignore", invalid="ignore"):  # a grid beyond the largest float
            t0, dt = float(t[0]), mean_step(t, eps)
            t = t0 + dt * np.arange(found.T)
        if np.any(off_grid(t)):
            raise DataError(f"{columns.source.path}: the uniform time grid t0 + dt i (t0 = "
                            f"{t0!r}, dt = {dt!r}, {found.T} points) is not one of finite "
                            "float64 numbers: it overflows, or dt is below t's resolution there")
        notes.append(f"time grid made uniform: t0 + {dt:.17g} i (the source's steps vary by "
                     "more than the file's 1e-6 of dt, within --step-tolerance, or are "
                     "float32's)")
    return t, notes


def _params(found: Scan, options: ImportOptions) -> dict[str, np.ndarray]:
    """Every parameter stored per trajectory: the mapped ones, the declared constants, the
    initial state and each trajectory's start time."""
    out = dict(found.params)
    out.update({k: np.full(found.n, float(v)) for k, v in options.sets.items()})
    entry = SYSTEMS.get(options.declared)
    for p in entry.parameters if entry is not None else ():
        p.check(out[p.name], f"parameter {p.name} (--param {p.name}={options.params.get(p.name)})")
    out["x0"] = found.x0
    out["v0"] = np.full(found.n, np.nan)  # filled as each trajectory's first points are written
    out["t0"] = found.t0
    return out


def _provenance(source: Path, src: Source, options: ImportOptions, found: Scan,
                notes: list[str], digest: str) -> dict[str, Any]:
    entry = SYSTEMS.get(options.declared)
    split = (f"where column {options.trajectory!r} changes value" if options.trajectory
             else "by the rows of its 2-D arrays" if found.wide
             else "nowhere (--dt without --trajectory: one trajectory)" if options.dt is not None
             else "where time goes backwards")
    return {
        "name": source.stem, "kind": "oscillator", "system": options.declared,
        "equation": entry.equation if entry is not None else
        "unknown (imported data; the stored trajectories are the only reference)",
        "forcing": "samples",
        "integrator": "none (imported)", "dtype": "float64",
        "source": source.name, "source_sha256": digest, "source_format": src.format,
        "source_rows": found.rows, "import_mapping": jsonio.dumps(options.mapping()),
        "times": (f"column {options.time!r}" if options.time is not None else
                  f"--dt {options.dt!r}: " + ("point j of each row at j dt" if found.wide
                                              else "row r at r dt")),
        "velocity": (f"column {options.v!r}" if options.v is not None
                     else f"derived (--derive-v): {DERIVATIVE}"),
        "trajectories": f"{found.n}, cut {split}; each one's start time in params/t0",
        "import_notes": "; ".join(notes) or "none",
    }


def _write(columns: Columns, found: Scan, options: ImportOptions, params: dict[str, np.ndarray],
           writer: Any, report: Progress, interrupted: Any) -> None:
    """The second pass: rows of the source in blocks, each trajectory written whole where a
    block holds it, else in pieces (a trajectory longer than a block)."""
    T, starts, dt = found.T, found.starts, grid_step(writer.t)
    roles = [r for r in ("x", "v", "forcing") if columns.has(r)]
    for a in range(0, found.rows, columns.chunk):
        b = min(found.rows, a + columns.chunk)
        block = {r: columns.read(r, a, b) for r in roles}
        i0 = max(0, int(np.searchsorted(starts, a, side="right")) - 1)
        i1 = int(np.searchsorted(starts, b, side="left"))  # trajectories i0..i1 meet a..b
        ends = starts[i0:i1] + T
        whole = i0 + np.flatnonzero((starts[i0:i1] >= a) & (ends <= b))  # consecutive
        if whole.size:
            lo, hi = int(whole[0]), int(whole[-1]) + 1
            index = (starts[lo:hi] - a)[:, None] + np.arange(T)
            arrays = {r: block[r][index] for r in roles}
            if options.derive_v:
                arrays["v"] = _finite(columns, derive_velocity(arrays["x"], dt), starts[lo:hi])
            params["v0"][lo:hi] = arrays["v"][:, 0]
            writer.write(lo, _datasets(arrays), {k: p[lo:hi] for k, p in params.items()})
        for i in np.setdiff1d(np.arange(i0, i1), whole):  # cut by the block: at most two
            s = int(starts[i])
            c0, c1 = max(a, s) - s, min(b, s + T) - s
            if c1 <= c0:  # rows dropped by --truncate
                continue
            arrays = {r: block[r][s + c0 - a:s + c1 - a][None] for r in roles}
            if options.derive_v:
                arrays["v"] = _finite(columns, _piece_velocity(columns, s, T, c0, c1, dt),
                                      [s + c0])
            if c0 == 0:
                params["v0"][i] = arrays["v"][0, 0]
            writer.write(int(i), _datasets(arrays), {k: p[i:i + 1] for k, p in params.items()},
                         col=c0)
        report(Event("import", "write", b, found.rows, f"wrote {b} of {found.rows} rows"))
        if interrupted():
            raise KeyboardInterrupt


def _finite(columns: Columns, v: np.ndarray, first: Any) -> np.ndarray:
    """``v`` derived from x, refused where a difference of x overflows float64, naming the
    source's row (``first``: the row of each trajectory's ``v[:, 0]``); the writer's
    refusal named the output's dataset v, which the source does not have."""
    bad = np.argwhere(~np.isfinite(v))
    if bad.size:
        row = int(first[bad[0][0]]) + int(bad[0][1])
        raise DataError(f"{columns.source.path}: {columns.where('x', row)}: the velocity "
                        "derived from x (--derive-v) overflows float64 there (x, or its change "
                        "over a step, is beyond float64's range); give x or t in other units")
    return v


def _piece_velocity(columns: Columns, s: int, T: int, c0: int, c1: int,
                    dt: float) -> np.ndarray:
    """:func:`derive_velocity` at points ``c0..c1`` of the trajectory starting at row ``s``,
    from x read with the neighbours the differences need."""
    lo, hi = max(0, min(c0 - 1, T - 3)), min(T, max(c1 + 1, 3))
    x = columns.read("x", s + lo, s + hi)
    v = derive_velocity(x, dt, first=lo == 0, last=hi == T)
    return v[c0 - lo:c1 - lo][None]


def _datasets(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The writer's datasets from the roles read: ``forcing`` is ``F``, zero when absent."""
    F = arrays.get("forcing")
    return {"x": arrays["x"], "v": arrays["v"], "F": np.zeros_like(arrays["x"]) if F is None
            else F}
