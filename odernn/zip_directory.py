"""A zip archive's directory sized before Python's ``zipfile`` parses it (``.npz`` files,
torch checkpoints).

``zipfile`` reads the whole directory and builds an object of about 500 bytes for each of
its entries before any limit of ours could apply: a checkpoint of 155 MB that declared 3
million entries took 1.7 GB and a minute, and then failed with a misleading message. The
zip's end record (and the ZIP64 one it points to) says how many entries the directory has
and how many bytes; :func:`declared_entries` reads it, as ``zipfile`` will, and checks the
memory first.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from odernn import budget

ENTRY_BYTES = 600
"""Memory of one entry of a zip's directory as ``zipfile`` holds it (about 500 measured)."""
MIN_ENTRY_BYTES = 46
"""Bytes of the smallest entry a directory can hold (a header and an empty name)."""


def _end_record(path: Path) -> tuple[int, int] | None:
    """The (entries, bytes) of the directory as ``zipfile`` will take them: from the end
    record that its own reader finds (the ZIP64 one just before the locator where there is
    a locator, whatever the classic record says; a record of our own finding could be
    another than its: a forged one that declared 1 entry let it parse 70,000), the bytes no
    more than the file holds (it reads no more); None where it finds none (it refuses the
    file)."""
    with open(path, "rb") as fh:
        record = zipfile._EndRecData(fh)  # private, but the record zipfile itself reads
        size = fh.seek(0, os.SEEK_END)
    if not record:
        return None
    return record[zipfile._ECD_ENTRIES_TOTAL], min(record[zipfile._ECD_SIZE], size)


def declared_entries(path: Path) -> int | None:
    """The number of entries a zip's directory declares (None where it has no end record,
    which ``zipfile`` refuses), after checking that ``zipfile`` can parse the directory
    within the memory budget. The count may understate: ``zipfile`` parses the directory's
    bytes, so those are what the budget counts, as the most entries they can hold."""
    found = _end_record(path)
    if found is None:
        return None
    entries, nbytes = found
    most = max(entries, nbytes // MIN_ENTRY_BYTES)
    budget.check(f"{path}: a zip directory of {entries} entries ({budget.size(nbytes)})",
                 nbytes + most * ENTRY_BYTES, "that is for listing its entries")
    return entries
