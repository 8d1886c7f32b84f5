"""A zip archive's directory sized before Python's ``zipfile`` parses it (``.npz`` files,
torch checkpoints).

``zipfile`` reads the whole directory and builds an object of about 500 bytes for each of
its entries before any limit of ours could apply: a checkpoint of 155 MB that declared 3
million entries took 1.7 GB and a minute, and then failed with a misleading message. The
zip's end record (and the ZIP64 one it points to) says how many entries the directory has
and how many bytes; :func:`declared_entries` reads it and checks the memory first.
"""

from __future__ import annotations

import os
from pathlib import Path

from odernn import budget

ENTRY_BYTES = 600
"""Memory of one entry of a zip's directory as ``zipfile`` holds it (about 500 measured)."""
MIN_ENTRY_BYTES = 46
"""Bytes of the smallest entry a directory can hold (a header and an empty name)."""


def _end_record(path: Path) -> tuple[int, int] | None:
    """The (entries, bytes) of the directory that a zip's end record declares (the ZIP64
    record's where it points to one); None where there is none."""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - (1 << 16) - 22))
        tail = fh.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) < at + 22:
            return None
        entries = int.from_bytes(tail[at + 10:at + 12], "little")
        nbytes = int.from_bytes(tail[at + 12:at + 16], "little")
        locator = tail[at - 20:at] if at >= 20 else b""
        if (entries != 0xFFFF and nbytes != 0xFFFFFFFF) or not locator.startswith(b"PK\x06\x07"):
            return entries, nbytes
        fh.seek(int.from_bytes(locator[8:16], "little"))
        record = fh.read(56)
        if record[:4] != b"PK\x06\x06" or len(record) < 56:
            return None
        return (int.from_bytes(record[32:40], "little"),
                int.from_bytes(record[40:48], "little"))


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
