"""What a dataset's filters may make HDF5 hold, bounded before any chunk is read.

HDF5 inflates a gzip chunk until its stream ends, doubling its buffer, whatever size the
dataset declares for the chunk: a forged file of 1 MB can hold 8 KiB chunks that each
inflate to 1 GiB. :func:`check_filters` bounds every filter of a dataset's pipeline before
the data is read:

- shuffle, Fletcher-32, N-bit and scale-offset decode into a buffer of the chunk's declared
  size;
- deflate (gzip) expands at most :data:`EXPANSION` ``[deflate]``-fold and LZF
  ``[lzf]``-fold, into a buffer that grows by doubling (:data:`GROWTH`); where that bound
  for a chunk's stored bytes exceeds the memory budget, the chunk is inflated here first
  with its declared size as the limit, and a longer stream is refused (an LZF chunk that
  large is refused outright: there is no LZF decoder outside HDF5's filter);
- SZIP reads its output size from the stream's first 4 bytes: each chunk's is read here
  and compared with the declared size;
- other filters (plugins) cannot be bounded, and are refused.
"""

from __future__ import annotations

import math
import os
import zlib
from pathlib import Path

import h5py
import h5py.h5z as h5z

from odernn import budget
from odernn.errors import DataError

DEFLATE, SHUFFLE, FLETCHER32, SZIP = (h5z.FILTER_DEFLATE, h5z.FILTER_SHUFFLE,
                                      h5z.FILTER_FLETCHER32, h5z.FILTER_SZIP)
NBIT, SCALEOFFSET, LZF = h5z.FILTER_NBIT, h5z.FILTER_SCALEOFFSET, h5z.FILTER_LZF
EXPANSION = {DEFLATE: 1032, LZF: 88}
"""The most each stream format expands: deflate a 258-byte match coded in 2 bits, LZF a
264-byte back-reference coded in 3 bytes."""
GROWTH = 3
"""HDF5's filters double their output buffer as a stream inflates: the last buffer and its
copy by ``realloc`` hold up to 3 times the output."""
SIZED = {SHUFFLE, FLETCHER32, NBIT, SCALEOFFSET}
"""Filters that decode into a buffer of the chunk's declared size."""
NAMES = {DEFLATE: "gzip", SHUFFLE: "shuffle", FLETCHER32: "Fletcher-32", SZIP: "SZIP",
         NBIT: "N-bit", SCALEOFFSET: "scale-offset", LZF: "LZF"}


def check_filters(d: h5py.Dataset, path: Path, label: str) -> None:
    """Refuse a dataset whose filters could make HDF5 hold more than the memory budget while
    it decodes one chunk, or whose chunks decode past their declared size (see the module)."""
    if d.is_virtual or d.chunks is None:
        return
    dcpl = d.id.get_create_plist()
    codes = [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())]
    unknown = [c for c in codes if c not in NAMES]
    if unknown:
        raise DataError(f"{path}: dataset '{label}' uses filter {unknown[0]}, whose output "
                        f"odernn cannot bound before HDF5 decodes it; odernn reads "
                        f"{', '.join(NAMES.values())}: rewrite the file (h5repack -f GZIP=4)")
    streams = [i for i, c in enumerate(codes) if c not in SIZED]
    if not streams:
        return
    if len(streams) > 1 or any(c != FLETCHER32 for c in codes[streams[0] + 1:]):
        raise DataError(f"{path}: dataset '{label}' has the filter pipeline "
                        f"{' then '.join(NAMES[c] for c in codes)}; odernn reads one "
                        f"compression filter, followed by Fletcher-32 at most")
    index, code = streams[0], codes[streams[0]]
    declared = math.prod(d.chunks) * d.dtype.itemsize
    most, _ = budget.memory_budget()
    if code != SZIP and GROWTH * EXPANSION[code] * d.id.get_storage_size() <= most:
        return
    n = d.id.get_num_chunks()
    budget.check(f"{path}: dataset '{label}' of {n} chunks", CHUNK_ENTRY_BYTES * n,
                 "that is for checking what its chunks decode to")
    try:
        chunks = [c for c in _chunks(d, n) if not c[1] & (1 << index)]  # else skipped
    except (OSError, RuntimeError, ValueError) as err:
        raise DataError(f"{path}: dataset '{label}': its chunk index is unreadable "
                        f"({err}; corrupt file)") from None
    with open(path, "rb") as fh:
        for offset, _, at, stored in chunks:
            where = f"{path}: chunk {offset} of dataset '{label}'"
            if code == SZIP:
                _check_szip(fh.fileno(), at, stored, declared, where)
            elif GROWTH * EXPANSION[code] * stored > most:
                _check_stream(d, code, offset, stored, declared, where)


CHUNK_ENTRY_BYTES = 256
"""A chunk's entry in the list :func:`check_filters` walks, as Python objects."""


def _chunks(d: h5py.Dataset, n: int) -> list[tuple[tuple[int, ...], int, int, int]]:
    """Each chunk's offset, filter mask, address in the file and stored bytes (HDF5's
    iteration where the library has it, else by index)."""
    found: list[tuple[tuple[int, ...], int, int, int]] = []
    try:
        d.id.chunk_iter(lambda s: found.append((s.chunk_offset, s.filter_mask,
                                                s.byte_offset, s.size)))
    except (AttributeError, NotImplementedError):
        infos = (d.id.get_chunk_info(i) for i in range(n))
        found = [(s.chunk_offset, s.filter_mask, s.byte_offset, s.size) for s in infos]
    return found


def _check_szip(fd: int, at: int, stored: int, declared: int, where: str) -> None:
    """SZIP's stream starts with its output size (4 bytes, little-endian): at most the
    chunk's declared bytes."""
    head = os.pread(fd, 4, at) if stored >= 4 else b""
    if len(head) < 4 or int.from_bytes(head, "little") > declared:
        raise DataError(f"{where}: its SZIP stream declares more than the chunk's {declared} "
                        f"bytes (forged or corrupt file)")


def _check_stream(d: h5py.Dataset, code: int, offset: tuple[int, ...], stored: int,
                  declared: int, where: str) -> None:
    """Inflate a deflate chunk with its declared size as the limit (an LZF chunk whose bound
    exceeds the budget is refused)."""
    if code == LZF:
        raise DataError(f"{where}: an LZF chunk of {stored} stored bytes may decode to "
                        f"{budget.size(GROWTH * EXPANSION[LZF] * stored)}, more than the memory "
                        f"budget; rewrite the file with gzip or smaller chunks")
    budget.check(f"{where}: {stored} stored bytes", stored + declared,
                 "rewrite the file with smaller chunks")
    _, raw = d.id.read_direct_chunk(offset)
    try:
        size = len(zlib.decompressobj().decompress(raw, declared + 1))
    except zlib.error as err:
        raise DataError(f"{where}: its gzip stream is corrupt ({err})") from None
    if size > declared:
        raise DataError(f"{where}: its gzip stream inflates past the chunk's declared "
                        f"{declared} bytes (forged or corrupt file)")
