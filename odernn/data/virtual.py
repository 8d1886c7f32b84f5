"""HDF5 virtual datasets, checked before they are read: a merge's own (``merge --virtual``)
and a foreign file's (``odernn import``).

HDF5 decodes a virtual dataset's whole list of mappings when it opens the dataset (a 58 MB
file of 200,000 mappings took 5.6 GB), gives the fill value wherever no mapping reaches, and
follows each mapping into another file, where a chain of virtual datasets can lead back to
the first (a cycle crashes HDF5). So the list is budgeted from the object's header before
the dataset is opened (:func:`check_mappings`), and a virtual dataset is refused unless its
mappings cover its extent and each reads a plain dataset of another file
(:func:`check_virtual`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
from h5py import h5s

from odernn import budget
from odernn.errors import DataError

MAPPING_BYTES_PER_STORED_BYTE = 300
"""Memory HDF5 takes to open a virtual dataset and copy its creation list once, per byte of
its list of mappings as stored in the file (about 260 measured with HDF5 2.0)."""


def check_mappings(group: h5py.Group, name: str, path: Path, label: str) -> None:
    """Refuse opening dataset ``name`` of ``group`` where HDF5 would decode a list of
    virtual mappings (or an external file list) past the memory budget: it decodes the whole
    list when the dataset opens. The list's stored size is read from the object's header,
    without opening it."""
    stored = h5py.h5o.get_info(group.id, name.encode()).meta_size.obj.heap_size
    budget.check(f"{path}: dataset '{label}' with a mapping list of {stored} bytes",
                 stored * MAPPING_BYTES_PER_STORED_BYTE,
                 "HDF5 decodes the whole list to open the dataset; map fewer, larger blocks")


def check_virtual(d: h5py.Dataset, dcpl: Any, path: Path, label: str) -> None:
    """Refuse virtual dataset ``d`` (its creation list ``dcpl``) if its mappings leave part of
    its extent unmapped (HDF5 gives its fill value there, not data), or if a source is
    missing, the file itself, or not a plain dataset (virtual in turn, or reached by a link):
    so no source can lead back to the file. Each source's storage is checked as the file's
    own (:func:`~odernn.data.filecheck.check_storage`)."""
    count = dcpl.get_virtual_count()
    unmapped = _unmapped(d, dcpl, count)
    if unmapped:
        raise DataError(f"{path}: virtual dataset '{label}' leaves {unmapped} of its {d.size} "
                        "values unmapped; HDF5 gives its fill value there, which is not data")
    sources: dict[str, set[str]] = {}
    for i in range(count):
        sources.setdefault(dcpl.get_virtual_filename(i), set()).add(dcpl.get_virtual_dsetname(i))
    for name in sorted(sources):
        src = path.resolve().parent / name  # an absolute name stays itself
        if name != "." and not src.is_file():
            raise DataError(f"{path}: virtual dataset '{label}' reads from {src}, which "
                            f"does not exist (a merged file needs its shards beside it)")
        if name == "." or os.path.samefile(src, path):
            raise DataError(f"{path}: virtual dataset '{label}' reads from the file itself; "
                            f"odernn reads virtual datasets of other files' plain datasets only")
        try:
            with h5py.File(src, "r") as f:
                for key in sorted(sources[name]):
                    _check_source(f, key, src, path, label)
        except OSError as err:
            raise DataError(f"{path}: virtual dataset '{label}' reads from {src}, which is not "
                            f"a readable HDF5 file ({str(err).splitlines()[0]})") from None


def _unmapped(d: h5py.Dataset, dcpl: Any, count: int) -> int:
    """How many of ``d``'s values no mapping reaches: the union of the mappings' selections
    (overlapping ones can hide a hole that their sizes' sum would not), taken in the order
    of where each starts (HDF5 joins slabs so in linear time, in random order in quadratic);
    an unlimited selection is cut at the dataset's extent."""
    shape = tuple(d.shape or ())
    if d.size == 0 or not shape:
        return 0
    slabs = []
    for i in range(count):
        vspace = dcpl.get_virtual_vspace(i)
        kind = vspace.get_select_type()
        if kind == h5s.SEL_ALL:
            return 0
        if kind == h5s.SEL_POINTS:
            ones = (1,) * len(shape)
            slabs += [(tuple(int(c) for c in p), ones, ones, ones)
                      for p in vspace.get_select_elem_pointlist()]
        elif kind == h5s.SEL_HYPERSLABS and vspace.is_regular_hyperslab():
            slabs.append(_clipped(*vspace.get_regular_hyperslab(), shape))
        elif kind == h5s.SEL_HYPERSLABS:
            ones = (1,) * len(shape)
            slabs += [(tuple(int(c) for c in lo), ones, ones,
                       tuple(int(b) - int(a) + 1 for a, b in zip(lo, hi, strict=True)))
                      for lo, hi in vspace.get_select_hyper_blocklist()]
    union = h5s.create_simple(shape)
    union.select_none()
    for start, stride, cnt, block in sorted(slabs):
        if all(c > 0 for c in cnt) and all(b > 0 for b in block):
            union.select_hyperslab(start, cnt, stride, block, op=h5s.SELECT_OR)
    return d.size - union.get_select_npoints()


def _clipped(start: tuple, stride: tuple, count: tuple, block: tuple,
             shape: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """A regular hyperslab ``(start, stride, count, block)`` with an unlimited count or block
    cut to what fits in ``shape``."""
    out = []
    for s, st, c, b, n in zip(start, stride, count, block, shape, strict=True):
        s, st, c, b = int(s), max(1, int(st)), int(c), int(b)
        if b == h5s.UNLIMITED:
            b, c = max(0, n - s), 1
        elif c == h5s.UNLIMITED:
            c = (n - s - b) // st + 1 if n - s >= b else 0
        out.append((s, st, c, b))
    return tuple(tuple(v[k] for v in out) for k in range(4))


def _check_source(f: h5py.File, key: str, src: Path, path: Path, label: str) -> None:
    """Refuse source dataset ``key`` of ``f`` unless it is a plain dataset, reached by hard
    links, with storage the file's own would need; its list of mappings, if it is virtual,
    is budgeted before HDF5 opens it (to refuse it)."""
    from odernn.data.filecheck import check_storage  # it imports this module

    obj: Any = f
    for part in [p for p in key.split("/") if p]:
        if not (isinstance(obj, h5py.Group)
                and isinstance(obj.get(part, getlink=True), h5py.HardLink)):
            obj = None
            break
        if obj.get(part, getclass=True) is h5py.Dataset:
            check_mappings(obj, part, src, key)
        obj = obj[part]
    if not isinstance(obj, h5py.Dataset) or obj.is_virtual:
        what = "a virtual dataset" if isinstance(obj, h5py.Dataset) else "no plain dataset"
        raise DataError(f"{path}: virtual dataset '{label}' reads '{key}' of {src}, which is "
                        f"{what}; odernn reads virtual datasets of other files' plain datasets "
                        f"only (no chains, no cycles)")
    check_storage(obj, src, key)
