"""What a dataset's filters may make HDF5 hold, bounded before any chunk is read.

HDF5 inflates a gzip chunk until its stream ends, doubling its buffer, whatever size the
dataset declares for the chunk: a forged file of 1 MB can hold 8 KiB chunks that each
inflate to 1 GiB. :func:`check_filters` bounds every filter of a dataset's pipeline before
the data is read:

- shuffle and Fletcher-32 keep the size (Fletcher-32 adds 4 bytes); N-bit and scale-offset
  decode the number of elements of the size their parameters in the file declare, which
  must be the chunk's;
- deflate (gzip) expands at most :data:`EXPANSION` ``[deflate]``-fold and LZF
  ``[lzf]``-fold, into a buffer that grows by doubling (:data:`GROWTH`); where that bound
  for a chunk's stored bytes exceeds the memory budget, the chunk is inflated here first
  with what its inner filters take as the limit, and a longer stream is refused (an LZF
  chunk that large is refused outright: there is no LZF decoder outside HDF5's filter);
- SZIP reads its output size from the stream's first 4 bytes: under a budget below 4 GiB
  each chunk's is read here and compared with what its inner filters take;
- other filters (plugins), or two compression filters in one pipeline, cannot be bounded
  and are refused.

A partial edge chunk stored at the chunk's full size may be one HDF5 left unfiltered
(``H5Pset_chunk_opts``, which h5py cannot read back): one that is no gzip stream is taken
as such, and one whose SZIP head exceeds the chunk is held to the budget instead.
"""

from __future__ import annotations

import math
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
"""Filters whose output size the chunk sets (N-bit's and scale-offset's parameters checked)."""
NAMES = {DEFLATE: "gzip", SHUFFLE: "shuffle", FLETCHER32: "Fletcher-32", SZIP: "SZIP",
         NBIT: "N-bit", SCALEOFFSET: "scale-offset", LZF: "LZF"}


def check_filters(d: h5py.Dataset, path: Path, label: str) -> None:
    """Refuse a dataset whose filters could make HDF5 hold more than the memory budget while
    it decodes one chunk, or whose chunks decode past their declared size (see the module)."""
    if d.is_virtual or d.chunks is None:
        return
    dcpl = d.id.get_create_plist()
    filters = [dcpl.get_filter(i) for i in range(dcpl.get_nfilters())]
    codes = [f[0] for f in filters]
    unknown = [c for c in codes if c not in NAMES]
    if unknown:
        raise DataError(f"{path}: dataset '{label}' uses filter {unknown[0]}, whose output "
                        f"odernn cannot bound before HDF5 decodes it; odernn reads "
                        f"{', '.join(NAMES.values())}: rewrite the file (h5repack -f GZIP=4)")
    elements, itemsize = math.prod(d.chunks), d.dtype.itemsize
    for code, _, values, _ in filters:
        found = tuple(values[2:5:2])  # the elements and their size it decodes
        if code in (NBIT, SCALEOFFSET) and found != (elements, itemsize):
            raise DataError(f"{path}: dataset '{label}': its {NAMES[code]} filter declares "
                            f"(elements, bytes) = {found}, not the chunk's "
                            f"{(elements, itemsize)} (forged or corrupt file)")
    streams = [i for i, c in enumerate(codes) if c not in SIZED]
    if not streams:
        return
    if len(streams) > 1 or any(c != FLETCHER32 for c in codes[streams[0] + 1:]):
        raise DataError(f"{path}: dataset '{label}' has the filter pipeline "
                        f"{' then '.join(NAMES[c] for c in codes)}; odernn reads one "
                        f"compression filter, followed by Fletcher-32 at most")
    index, code = streams[0], codes[streams[0]]
    declared = elements * itemsize
    limit = declared + 4 * codes[:index].count(FLETCHER32)  # what the inner filters take
    most, _ = budget.memory_budget()
    if (SZIP_MOST if code == SZIP else
            GROWTH * EXPANSION[code] * d.id.get_storage_size()) <= most:
        return
    n = d.id.get_num_chunks()
    budget.check(f"{path}: dataset '{label}' of {n} chunks", CHUNK_ENTRY_BYTES * n,
                 "that is for checking what its chunks decode to")
    try:
        chunks = [c for c in _chunks(d, n) if not c[1] & (1 << index)]  # else skipped
    except (OSError, RuntimeError, ValueError) as err:
        raise DataError(f"{path}: dataset '{label}': its chunk index is unreadable "
                        f"({err}; corrupt file)") from None
    for offset, _, stored in chunks:
        where = f"{path}: chunk {offset} of dataset '{label}'"
        edge = stored == declared and any(
            o + c > s for o, c, s in zip(offset, d.chunks, d.shape, strict=True))
        if code == SZIP:
            _check_szip(d, offset, stored, limit, edge, where)
        elif GROWTH * EXPANSION[code] * stored > most:
            _check_stream(d, code, offset, stored, limit, edge, where)


SZIP_MOST = 1 << 32
"""The most an SZIP stream's 4-byte head can declare."""
CHUNK_ENTRY_BYTES = 256
"""A chunk's entry in the list :func:`check_filters` walks, as Python objects."""


def _chunks(d: h5py.Dataset, n: int) -> list[tuple[tuple[int, ...], int, int]]:
    """Each chunk's offset, filter mask and stored bytes (HDF5's iteration where the library
    has it, HDF5 1.14 on; else by index, which walks the index again for each chunk)."""
    found: list[tuple[tuple[int, ...], int, int]] = []
    try:
        d.id.chunk_iter(lambda s: found.append((s.chunk_offset, s.filter_mask, s.size)))
    except (AttributeError, NotImplementedError):
        infos = (d.id.get_chunk_info(i) for i in range(n))
        found = [(s.chunk_offset, s.filter_mask, s.size) for s in infos]
    return found


def _read_chunk(d: h5py.Dataset, offset: tuple[int, ...], stored: int, where: str) -> bytes:
    """A chunk's stored bytes, as HDF5 finds them (a user block, if any, counted)."""
    budget.check(f"{where}: {stored} stored bytes", stored, "rewrite the file with smaller "
                 "chunks")
    try:
        return d.id.read_direct_chunk(offset)[1]
    except (OSError, RuntimeError, ValueError, OverflowError) as err:
        raise DataError(f"{where}: unreadable ({err}; corrupt or forged file)") from None


def _check_szip(d: h5py.Dataset, offset: tuple[int, ...], stored: int, limit: int,
                edge: bool, where: str) -> None:
    """SZIP's stream starts with its output size (4 bytes, little-endian): at most what the
    inner filters take (``limit``); a possibly unfiltered edge chunk's, within the budget."""
    raw = _read_chunk(d, offset, stored, where)
    head = int.from_bytes(raw[:4], "little") if len(raw) >= 4 else SZIP_MOST
    if head <= limit:
        return
    if not edge:
        raise DataError(f"{where}: its SZIP stream declares {head} bytes, more than the "
                        f"chunk's {limit} (forged or corrupt file)")
    budget.check(f"{where}: an edge chunk (stored unfiltered, or SZIP declaring {head} "
                 f"bytes)", head, "rewrite the file")


def _check_stream(d: h5py.Dataset, code: int, offset: tuple[int, ...], stored: int,
                  limit: int, edge: bool, where: str) -> None:
    """Inflate a deflate chunk with what the inner filters take (``limit``) as the limit (an
    LZF chunk whose bound exceeds the budget is refused)."""
    if code == LZF:
        raise DataError(f"{where}: an LZF chunk of {stored} stored bytes may decode to "
                        f"{budget.size(GROWTH * EXPANSION[LZF] * stored)}, more than the memory "
                        f"budget; rewrite the file with gzip or smaller chunks")
    budget.check(f"{where}: {stored} stored bytes", stored + limit,
                 "rewrite the file with smaller chunks")
    raw = _read_chunk(d, offset, stored, where)
    try:
        size = len(zlib.decompressobj().decompress(raw, limit + 1))
    except zlib.error as err:
        if edge:  # stored unfiltered: HDF5 reads it as it is
            return
        raise DataError(f"{where}: its gzip stream is corrupt ({err})") from None
    if size > limit:
        raise DataError(f"{where}: its gzip stream inflates past the chunk's declared "
                        f"{limit} bytes (forged or corrupt file)")
