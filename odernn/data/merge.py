"""Joining the shards of one sharded simulation (``odernn simulate --shard k/n``) into one file.

The shards carry ``shard_index`` (k, 1-based), ``shard_count``, ``row_start``,
``row_stop`` and ``n_total``. :func:`merge_files` checks that they come from one
run and tile its rows, then copies them (streamed, bounded memory) or writes an
HDF5 virtual dataset that reads them in place. A virtual file records each shard's size,
mtime and content digest (root attribute ``shard_sources``); reading it refuses, in one
line, a shard that changed since (:func:`check_shard_sources`). Either way the merged file holds
the single-process file's content: every dataset bit for bit, every attribute but
``created``, so the same :func:`odernn.data.store.content_digest` (``tests/test_shards.py``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from odernn import budget, jsonio
from odernn.data.schema import (
    DESCRIPTIONS,
    MAX_ATTR_BYTES,
    MAX_ELEMENTS,
    RESERVED_ATTRS,
    SHARD_ATTRS,
    SHARD_SOURCES,
)
from odernn.data.store import BLOCK_BYTES, TrajectoryFile, content_digest, open_trajectories
from odernn.data.writer import (
    AtomicH5,
    TrajectoryWriter,
    check_target,
    write_root_attrs,
    write_scales,
    write_time,
)
from odernn.errors import DataError, OutputError, SpecError
from odernn.progress import Event, Progress, reporter


def merge_files(shards: Sequence[Path | str], out: Path | str, *, virtual: bool = False,
                overwrite: bool = False, progress: bool | Progress | None = None) -> Path:
    """Join the shards of one sharded simulation into ``out``; return ``out``.

    Shards carry ``shard_index`` (k of ``--shard k/n``, 1-based), ``shard_count``,
    ``row_start``, ``row_stop`` and ``n_total``; every shard 1..n must be given once,
    their rows must tile ``0..n_total``, and all other attributes (spec, seed,
    integrator, ...), the time grid, datasets and dtypes must agree. ``out`` has the
    content digest of a single-process run (every dataset bit for bit, every attribute
    but ``created``; HDF5's storage layout differs). ``virtual=False`` copies
    the data (streamed, bounded memory); ``virtual=True`` writes an HDF5 virtual
    dataset file that reads the shards in place (keep them beside it, unchanged: reading
    it checks them). ``out`` may replace only an odernn dataset that is none of the shards.
    ``progress`` (:mod:`odernn.progress`) hears of every block of rows copied.
    """
    out = Path(out)
    paths = [Path(p) for p in shards]
    if not paths:
        raise SpecError("merge needs at least one shard file")
    if any(p.resolve() == out.resolve() for p in paths):
        raise OutputError(f"{out}: is one of the shards; write the merged file elsewhere")
    check_target(out, overwrite, inputs=paths)
    ordered = _check_shards(_Shard.of(p) for p in paths)  # one file open at a time: a
    attrs = {k: v for k, v in ordered[0].attrs.items()  # thousand shards pass any ulimit
             if k not in RESERVED_ATTRS and k not in SHARD_ATTRS}
    report = reporter(progress)
    if virtual:
        _merge_virtual(ordered, out, attrs, overwrite)
    else:
        _merge_copy(ordered, out, attrs, overwrite, report)
    n = ordered[0].attrs["n_total"]
    report(Event("merge", "done", n, n, f"wrote {out}"))
    return out


@dataclass(frozen=True)
class _Shard:
    """What a merge needs of a shard, read once and the file closed again: its path, root
    attributes, rows, time grid, dtype, parameters' row shapes, every dataset's shape and
    dtype (``x``, ``v``, ``F`` and ``params/NAME``, in that order), whether it is gzipped, and
    its size and mtime then (a shard that changes before it is copied or recorded is
    refused)."""

    path: Path
    attrs: dict[str, Any]
    n: int
    t: np.ndarray
    dtype: np.dtype
    layout: dict[str, tuple[int, ...]]
    datasets: dict[str, tuple[tuple[int, ...], np.dtype]]
    gzip: bool
    stat: tuple[int, int]

    @classmethod
    def of(cls, path: Path) -> _Shard:
        with open_trajectories(path) as f:
            st = os.stat(f.path)
            labels = [*f.names, *(f"params/{k}" for k in f.params_names)]
            return cls(f.path, f.attrs, f.n, f.t, f.dtype, _param_layout(f),
                       {k: (f.dataset(k).shape, f.dataset(k).dtype) for k in labels},
                       f.dataset("x").compression == "gzip", (st.st_size, st.st_mtime_ns))

    def unchanged(self) -> None:
        """Refuse the shard if its size or mtime moved since it was checked."""
        st = os.stat(self.path)
        if (st.st_size, st.st_mtime_ns) != self.stat:
            raise DataError(f"{self.path}: changed while the shards were merged; merge them "
                            "again")


def _shard_range(f: _Shard) -> tuple[int, int]:
    return f.attrs["row_start"], f.attrs["row_stop"]


def _check_shards(files: Iterable[_Shard]) -> list[_Shard]:
    """Refuse shards of different runs, duplicate, missing or overlapping shards; sort by row.
    Each shard is checked against the first as it comes: a file of another run, or one given
    twice, is refused without opening the files after it."""
    files = iter(files)
    ref = next(files, None)
    if ref is None:
        raise SpecError("merge needs at least one shard file")
    _check_shard_attrs(ref)
    by_index = {ref.attrs["shard_index"]: ref}
    for f in files:
        _check_shard_attrs(f)
        _check_same_run(ref, f)
        f = dataclasses.replace(f, t=ref.t)  # the same grid, held once (64 shards of 10^6
        k = f.attrs["shard_index"]  # steps held 64 grids: 641 MiB under a 256 MiB budget)
        if k in by_index:
            raise DataError(f"{f.path}: is shard {k}/{ref.attrs['shard_count']} again (already "
                            f"given as {by_index[k].path})")
        by_index[k] = f
    count = ref.attrs["shard_count"]
    if count > len(by_index):  # the first few absent, in time bounded by the files given
        absent = list(islice((k for k in range(1, count + 1) if k not in by_index), 10))
        more = ", ..." if count - len(by_index) > len(absent) else ""
        raise DataError(f"{ref.path}: shard(s) {', '.join(f'{k}/{count}' for k in absent)}"
                        f"{more} missing; merge needs all {count} shards, {len(by_index)} "
                        "given")
    ordered = [by_index[k] for k in range(1, count + 1)]
    covered = 0
    for f in ordered:
        start, stop = _shard_range(f)
        if start < covered:
            raise DataError(f"{f.path}: rows {start}..{stop} overlap rows already covered up to "
                            f"{covered} by the shards before it")
        if start > covered:
            raise DataError(f"{f.path}: starts at row {start}, leaving rows {covered}..{start} "
                            f"in no shard")
        covered = stop
    if covered != ref.attrs["n_total"]:
        raise DataError(f"{ordered[-1].path}: shards end at row {covered}, but n_total is "
                        f"{ref.attrs['n_total']}")
    return ordered


def _check_shard_attrs(f: _Shard) -> None:
    """Refuse a file without every shard attribute, or whose shard attributes are not
    integers (numpy's included) with index in 1..count and rows ``start..stop`` its own
    within ``0..n_total``: checked before any is used."""
    a = f.attrs
    missing = [k for k in SHARD_ATTRS if k not in a]
    if missing:
        raise DataError(f"{f.path}: not a shard (no attribute {missing[0]!r}); merge takes "
                        f"files written with --shard k/n")
    wrong = [k for k in SHARD_ATTRS if isinstance(a[k], bool) or not isinstance(a[k], int)]
    if wrong:
        raise DataError(f"{f.path}: shard attribute {wrong[0]!r} is {a[wrong[0]]!r:.60}; "
                        f"expected an integer")
    k, count, start, stop, total = (a[key] for key in SHARD_ATTRS)
    if not (1 <= k <= count and start >= 0 and stop - start == f.n and stop <= total):
        raise DataError(f"{f.path}: inconsistent shard attributes (shard {k}/{count}, rows "
                        f"{start}..{stop} of {total}, {f.n} trajectories)")


def _check_same_run(ref: _Shard, f: _Shard) -> None:
    """Refuse a shard whose run attributes, grid, datasets or dtypes differ from ``ref``'s."""
    own = {"shard_index", "row_start", "row_stop", "n_trajectories", "created",
           "spec_source"}  # the same spec named by another path is the same run
    a, b = ref.attrs, f.attrs
    for key in sorted((set(a) | set(b)) - own):
        if a.get(key) != b.get(key):
            raise DataError(f"{f.path}: attribute '{key}' is {b.get(key)!r:.60} but "
                            f"{ref.path} has {a.get(key)!r:.60}; shards of different runs "
                            f"cannot be merged")
    if not np.array_equal(ref.t, f.t) or (ref.dtype, ref.layout) != (f.dtype, f.layout):
        raise DataError(f"{f.path}: time grid, dtype or parameters differ from {ref.path}")


def _param_layout(f: TrajectoryFile) -> dict[str, tuple[int, ...]]:
    return {k: f.param_shape(k)[1:] for k in f.params_names}


def _merge_copy(shards: list[_Shard], out: Path, attrs: dict[str, Any],
                overwrite: bool, report: Progress) -> None:
    ref = shards[0]
    total, done = ref.attrs["n_total"], 0
    row_bytes = sum(math.prod(shape[1:]) * dtype.itemsize
                    for shape, dtype in ref.datasets.values())
    step = max(1, BLOCK_BYTES // row_bytes)
    with TrajectoryWriter(out, t=ref.t, n=ref.attrs["n_total"], datasets=_names(ref),
                          params=ref.layout, attrs=attrs, dtype=ref.dtype.name,
                          compression="gzip" if ref.gzip else None,  # as the shards were
                          overwrite=overwrite) as writer:
        writer.attrs["odernn_version"] = ref.attrs["odernn_version"]  # the shards' own
        for shard in shards:
            with open_trajectories(shard.path) as f:
                shard.unchanged()
                offset = shard.attrs["row_start"]
                for lo in range(0, f.n, step):
                    part = f.read(slice(lo, lo + step))
                    arrays = {k: getattr(part, k) for k in f.names}
                    writer.write(offset + lo, arrays, part.params)
                    done += part.n
                    report(Event("merge", "copy", done, total,
                                 f"{done} of {total} trajectories"))


def _names(shard: _Shard) -> tuple[str, ...]:
    """The trajectory datasets of ``shard`` (``x``, ``v``, ``F``: not its parameters)."""
    return tuple(k for k in shard.datasets if not k.startswith("params/"))


def _merge_virtual(shards: list[_Shard], out: Path, attrs: dict[str, Any],
                   overwrite: bool) -> None:
    ref = shards[0]
    n_total = ref.attrs["n_total"]
    if n_total * ref.t.size > MAX_ELEMENTS:  # what a reader allows, checked before writing
        raise OutputError(f"{out}: {n_total} trajectories x {ref.t.size} steps is more than "
                          f"the {MAX_ELEMENTS} values a dataset may hold")
    directory = out.resolve().parent
    target = AtomicH5(out, overwrite)
    try:
        f = target.file
        write_time(f, ref.t)
        sources = jsonio.dumps([_source_record(shard, directory) for shard in shards],
                               compact=True)
        if len(sources.encode()) > MAX_ATTR_BYTES:
            raise OutputError(f"{out}: the record of {len(shards)} shards is "
                              f"{len(sources.encode())} bytes, more than an attribute may hold "
                              f"({MAX_ATTR_BYTES}); merge without --virtual (a copy)")
        for label, (shape, dtype) in ref.datasets.items():
            layout = h5py.VirtualLayout(shape=(n_total, *shape[1:]), dtype=dtype)
            for shard in shards:
                start, stop = _shard_range(shard)
                source = _relative(shard, directory)
                layout[start:stop] = h5py.VirtualSource(source, label,
                                                        shape=shard.datasets[label][0])
            v = f.create_virtual_dataset(label, layout, fillvalue=np.nan)
            if label in DESCRIPTIONS:
                v.attrs["description"] = DESCRIPTIONS[label]
        write_scales(f, n_total, _names(ref), ref.layout)
        write_root_attrs(f, n_total, ref.t, _names(ref),
                         {**attrs, "odernn_version": ref.attrs["odernn_version"]})
        f.attrs[SHARD_SOURCES] = sources
        target.commit()
    except BaseException:
        target.discard()
        raise


def _relative(shard: _Shard, directory: Path) -> str:
    return os.path.relpath(shard.path.resolve(), directory)


def _source_record(shard: _Shard, directory: Path) -> dict[str, Any]:
    """What a virtual file remembers of a shard: where, size, mtime, content digest."""
    digest = content_digest(shard.path)
    shard.unchanged()  # the digest is of the file checked
    size, mtime_ns = shard.stat
    return {"file": _relative(shard, directory), "size": size, "mtime_ns": mtime_ns,
            "digest": digest}


def check_shard_sources(path: Path, record: Any) -> None:
    """Refuse a virtual merge ``path`` whose shards changed since it was written.

    A shard with the recorded size and mtime passes at once; any other (replaced, edited,
    or only copied) is passed only if its content digest is still the recorded one. Called
    by :class:`odernn.data.store.TrajectoryFile` when it opens a file with ``shard_sources``.
    """
    try:
        sources = jsonio.loads(record, SHARD_SOURCES) if isinstance(record, str) else None
        entries = [(str(s["file"]), int(s["size"]), int(s["mtime_ns"]), str(s["digest"]))
                   for s in sources]
    except budget.BudgetError:
        raise
    except (TypeError, ValueError, KeyError):
        raise DataError(f"{path}: attribute '{SHARD_SOURCES}' is malformed; expected the JSON "
                        f"list of shards a virtual merge writes") from None
    directory = Path(path).resolve().parent
    for name, size, mtime_ns, digest in entries:
        shard = directory / name
        try:
            st = os.stat(shard)
        except OSError as err:
            raise DataError(f"{path}: reads shard {shard}, which cannot be found "
                            f"({err.strerror}); a virtual merge needs its shards") from None
        if os.path.samefile(shard, path):
            raise DataError(f"{path}: attribute '{SHARD_SOURCES}' names the file itself as a "
                            f"shard; a virtual merge reads other files")
        if (st.st_size, st.st_mtime_ns) == (size, mtime_ns):
            continue
        if _records_shards(shard):  # a shard is never a merge: checking it could lead back
            raise DataError(f"{path}: reads shard {shard}, which records shards itself "
                            f"(attribute '{SHARD_SOURCES}'): a merge, not a shard")
        try:
            now = content_digest(shard)
        except DataError as err:
            raise DataError(f"{path}: reads shard {shard}, which changed since the merge and is "
                            f"no longer a valid shard ({err}); merge the shards again") from None
        if now != digest:
            raise DataError(f"{path}: reads shard {shard}, which changed since the merge (its "
                            f"content digest is {now[:19]}..., the merge recorded "
                            f"{digest[:19]}...); merge the shards again")


def _records_shards(shard: Path) -> bool:
    """Whether ``shard`` has attribute ``shard_sources`` itself (False if it is no HDF5 file:
    its content digest says what is wrong)."""
    try:
        with h5py.File(shard, "r") as h:
            return SHARD_SOURCES in h.attrs
    except OSError:
        return False
