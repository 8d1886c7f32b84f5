"""The HDF5 trajectory format (schema ``odernn.trajectories``, version 1): names, limits,
dataset descriptions, and the rules writer and reader share (finite values only, a uniform
time grid).

A file holds N trajectories on a common time grid of T points::

    /              root attributes: schema, schema_version, creator, created, odernn_version,
                   n_trajectories, n_steps, dt, datasets, and the caller's provenance
                   (system, forcing, integrator, seed, spec text, ...)
    /t             (T,)    time points, float64
    /x, /v, /F     (N, T)  position, velocity, forcing (a univariate series has x only),
                           chunked by trajectory, float64 or float32, gzip optional
    /params/<p>    (N,) or (N, K) sampled parameters, float64
    /trajectory    (N,)    the trajectory index 0 .. N-1, int64   } HDF5 dimension scales, so
    /component     (K,)    the index 0 .. K-1, int64              } netCDF readers (xarray with
                           engine="h5netcdf") see named dimensions: x, v, F on (trajectory, t),
                           params/<p> on (trajectory,) or (trajectory, component)

The dimension scales (``t`` is one too) were added within version 1: optional for readers
(files written before have none, and read the same), derived from the shapes, and not
part of the content digest. Parameters of several widths K get one scale each,
``component_<K>`` (:func:`component_scales`).

:mod:`odernn.data.writer` writes it, :mod:`odernn.data.filecheck` checks an untrusted
file's structure, :mod:`odernn.data.store` reads it and hashes its content, and
:mod:`odernn.data.merge` joins shards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from odernn.errors import DataError

SCHEMA = "odernn.trajectories"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
"""The first bytes of an HDF5 file that has no user block."""
SCHEMA_VERSION = 1
DATASETS = ("x", "v", "F")
"""The trajectory datasets a file may hold, in their canonical order; ``x`` is always there."""
REQUIRED_ATTRS = ("schema", "schema_version", "created", "odernn_version", "n_trajectories",
                  "n_steps", "dt", "datasets")
SHARD_SOURCES = "shard_sources"
"""Root attribute of a virtual merge (``merge --virtual``): JSON list of the shards it reads,
each with its size, mtime and content digest at merge time (:mod:`odernn.data.merge`)."""
RESERVED_ATTRS = (*REQUIRED_ATTRS, "creator", SHARD_SOURCES)
"""Root attributes the writer sets itself; callers may not set them."""
SHARD_ATTRS = ("shard_index", "shard_count", "row_start", "row_stop", "n_total")
"""Attributes of a shard written by ``simulate --shard k/n`` (``shard_index`` is k, 1-based)."""
DIGEST_EXCLUDED_ATTRS = ("created", SHARD_SOURCES)
"""Root attributes :func:`odernn.data.store.content_digest` leaves out: they differ between
two writes of one content."""
MAX_ELEMENTS = 1 << 34
"""Refuse datasets declaring more values than this (128 GiB of float64)."""
MAX_ATTR_BYTES = 1 << 20
"""Refuse attributes larger than this (1 MiB; attributes hold metadata, specs are small)."""
DESCRIPTIONS = {
    "t": "time; dimensionless, in units of 1/omega_0 (the undamped angular frequency is 1)",
    "t (imported)": "time, in the imported source's own units (attribute source)",
    "x": "position x(t_i), one row per trajectory",
    "v": "velocity v(t_i) = x'(t_i), one row per trajectory",
    "F": "forcing F(t_i), one row per trajectory",
}
"""The ``description`` attribute of each dataset the writer creates."""
TRAJECTORY_SCALE = "trajectory"
"""The dimension scale of axis 0 of every trajectory and parameter dataset: 0 .. N-1."""
SCALE_ATTRS = ("CLASS", "NAME", "REFERENCE_LIST", "DIMENSION_LIST", "DIMENSION_LABELS")
"""The attributes HDF5's dimension-scale API keeps on datasets (references into the file:
where a dataset lies, not what it holds); the content digest leaves them out."""


def component_scales(widths: Iterable[int]) -> dict[int, str]:
    """The dimension scale of axis 1 of parameters ``(N, K)`` for each width K: ``component``
    when all have one width (as simulated files do), else ``component_<K>``."""
    ks = sorted(set(widths))
    return {ks[0]: "component"} if len(ks) == 1 else {k: f"component_{k}" for k in ks}


def is_scale_name(name: str) -> bool:
    """Whether root member ``name`` is one of the format's dimension scales other than ``t``."""
    return name in (TRAJECTORY_SCALE, "component") or re.fullmatch(r"component_[1-9][0-9]*",
                                                                      name) is not None


GRID_TOLERANCE = 1e-6
"""Each step of a file's time grid is within this fraction of ``dt`` (plus t's own rounding)."""


GRID_BLOCK = 1 << 16
"""Steps :func:`off_grid` checks at a time: its temporaries stay in the cache, whatever the
grid's length (over a whole grid they grew with it)."""


def grid_step(t: np.ndarray) -> float:
    """The step ``dt`` of the uniform time grid ``t`` (two points or more): the one rule of the
    files, the import and the integrators. On a grid ``i t[1]`` (a simulated one) exactly
    ``t[1]``; on any other its mean step (:func:`mean_step`, within the rounding of t's stored
    type): far from 0, as Unix-epoch seconds are, ``t[1] - t[0]`` is off by t's resolution (a
    1 kHz step by 1e-4 at 1.7e9 s). Two grids' steps are compared by :func:`same_step`."""
    eps = rounding(np.asarray(t).dtype)
    t = np.asarray(t, dtype=np.float64)
    step = float(t[1])
    simulated = t[0] == 0 and all(  # in blocks: memory that does not grow with the grid
        np.array_equal(t[lo:lo + GRID_BLOCK], step * np.arange(lo, min(lo + GRID_BLOCK, t.size)))
        for lo in range(0, t.size, GRID_BLOCK))
    return step if simulated else mean_step(t, eps)


def rounding(dtype: np.dtype) -> float:
    """The relative rounding of values stored as ``dtype`` (float64's for any other than a
    float): times stored in float32 are that much coarser, and no less uniform for it."""
    dtype = np.dtype(dtype)
    return float(np.finfo(dtype if dtype.kind == "f" else np.float64).eps)


def step_slack(t: np.ndarray, dt: float | None = None) -> float:
    """How far :func:`grid_step` of ``t`` (``dt``, where known) may be off the step of the
    clock that made it: the mean step's error, twice t's largest deviation from the uniform
    grid plus t's rounding (:func:`off_step`'s allowance), over the span's ``T - 1`` steps."""
    eps, dt, worst = rounding(np.asarray(t).dtype), grid_step(t) if dt is None else dt, 0.0
    t = np.asarray(t, dtype=np.float64)
    for lo in range(0, t.size, GRID_BLOCK):
        part = t[lo:lo + GRID_BLOCK]
        ideal = t[0] + dt * np.arange(lo, lo + part.size)
        worst = max(worst, float(np.max(np.abs(part - ideal))))
    return (2 * worst + 4 * eps * max(abs(float(t[0])), abs(float(t[-1])))) / (t.size - 1)


def same_step(a: float, b: float, slack: float = 0.0) -> bool:
    """Whether steps ``a`` and ``b`` are one: within 1e-9 of each other, plus ``slack`` (the
    :func:`step_slack` of the grids they come from)."""
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b)) + slack


def mean_step(t: np.ndarray, eps: float = float(np.finfo(np.float64).eps)) -> float:
    """``(t[-1] - t[0]) / (T - 1)`` as the shortest decimal within the rounding of t itself
    over the span: ``eps max |t|`` (half an ulp at either end; ``eps`` that of t's stored
    type), or for float64 times ``4 eps max |t|`` (:func:`off_step`'s allowance, which also
    covers the subtraction and division). Float32 times were allowed 4 times their rounding:
    at t ~ 86400 s a 3 Hz clock's step came out 0.333, 1e-3 off, where the times fix it to
    1.6e-4."""
    t0, t1 = float(t[0]), float(t[-1])
    n = t.size - 1
    mean = (t1 - t0) / n
    slack = max(eps, 4 * float(np.finfo(np.float64).eps)) * max(abs(t0), abs(t1)) / n
    for digits in range(1, 18):
        near = float(f"{mean:.{digits - 1}e}")
        if abs(near - mean) <= slack:
            return near
    return mean


def off_grid(t: np.ndarray, dt: float | None = None,
             eps: float = float(np.finfo(np.float64).eps)) -> np.ndarray:
    """Whether each step of time grid ``t`` is off the uniform step ``dt`` (default: t's first
    step): not positive, or :func:`off_step` (``eps`` that of t's stored type). The one rule
    of the writer, the reader and the import; in blocks of :data:`GRID_BLOCK` steps."""
    t = np.asarray(t, dtype=np.float64)
    off = np.zeros(max(t.size - 1, 0), dtype=bool)
    with np.errstate(over="ignore", invalid="ignore"):  # a step beyond the largest float
        dt = t[1] - t[0] if dt is None and t.size > 1 else dt
        for lo in range(0, off.size, GRID_BLOCK):
            hi = min(lo + GRID_BLOCK, off.size)
            before, after = t[lo:hi], t[lo + 1:hi + 1]
            steps = after - before
            off[lo:hi] = (steps <= 0) | off_step(steps, dt, before, after, eps=eps)
    return off


def off_step(step: np.ndarray, dt: float, before: np.ndarray, after: np.ndarray,
             tolerance: float = GRID_TOLERANCE,
             eps: float = float(np.finfo(np.float64).eps)) -> np.ndarray:
    """Whether each ``step = after - before`` is off ``dt``: either not finite, or off by more
    than ``tolerance`` of ``dt`` plus the rounding of t itself, ``4 eps max(|before|, |after|)``
    (a grid far from t = 0, such as Unix-epoch seconds, is no finer)."""
    with np.errstate(over="ignore", invalid="ignore"):
        scale = np.maximum(np.abs(before), np.abs(after))
        return ~(np.isfinite(dt) & np.isfinite(step)  # an infinite time's slack was inf
                 & (np.abs(step - dt) <= tolerance * dt + 4 * eps * scale))


def check_finite(a: np.ndarray, path: Path, label: str, first_row: int, verb: str) -> None:
    """Refuse non-finite values in block ``a`` (rows from ``first_row``) of dataset ``label``:
    files hold finite numbers only. ``verb`` is "gets" (writing) or "has" (reading)."""
    finite = np.isfinite(a).reshape(a.shape[0], -1).all(axis=1)
    if not finite.all():
        row = first_row + int(np.argmin(finite))
        raise DataError(f"{path}: dataset '{label}' {verb} non-finite values (NaN or inf), first "
                        f"in trajectory {row}; files hold finite numbers only")


def hdf5_at(fh: BinaryIO) -> bool:
    """Whether the open binary file ``fh`` is HDF5: its signature at byte 0, or after a user
    block (the format allows one of 512, 1024, 2048, ... bytes: MATLAB's v7.3 ``.mat`` files
    have one)."""
    size = fh.seek(0, 2)
    offset = 0
    while offset + len(HDF5_SIGNATURE) <= size:
        fh.seek(offset)
        if fh.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
            return True
        offset = 512 if offset == 0 else 2 * offset
    return False


def dataset_reason(path: Path) -> str | None:
    """Why the regular file ``path`` is not a dataset of this schema (for ``--overwrite``);
    None when it is."""
    try:
        with open(path, "rb") as fh:
            if fh.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
                return "not an HDF5 file"
    except OSError as err:
        return f"unreadable: {err.strerror or err}"
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "schema" not in f.attrs:
                return "an HDF5 file without odernn's schema attribute"
            aid = h5py.h5a.open(f.id, b"schema")
            if aid.get_space().get_simple_extent_npoints() != 1 or aid.get_storage_size() > 1024:
                return "an HDF5 file whose schema attribute is not odernn's"
            schema = f.attrs["schema"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"an HDF5 file that cannot be read ({str(err).splitlines()[0] if str(err) else err})"
    if isinstance(schema, bytes):
        schema = schema.decode("utf-8", errors="replace")
    return None if schema == SCHEMA else f"an HDF5 file of schema {str(schema)[:60]!r}"
