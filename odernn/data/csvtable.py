"""Reading a CSV file with a header line into float64 columns, fast and with one-line errors.

``odernn import`` reads the columns it maps and no others. The file is read in blocks of
about :data:`BLOCK_BYTES` cut at line ends and each block is parsed by NumPy's C reader
(``np.loadtxt``; ``benchmarks/import_csv.py`` compares it with the csv module), so memory
is the parsed columns plus one block. A block is checked cheaply (its parsed rows against
its lines, its delimiters against the header's); only a block that fails, or one with
blank or comment lines, is read again line by line to name the first bad line and column
("line 7, column 'x': 'abc' is not a number") and the line of every row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from odernn import budget
from odernn.errors import DataError
from odernn.interrupt import interrupt_guard

BLOCK_BYTES = 16 << 20
"""Bytes of text parsed at a time."""
MAX_HEADER_BYTES = 1 << 20
"""A header line longer than this is refused (column names are short)."""
DELIMITERS = (",", ";", "\t")
"""Tried in this order on the header line; none found: whitespace separates the columns."""


@dataclass
class CsvHeader:
    """The header of a CSV file: its column names, delimiter (None: whitespace), the
    1-based line number of the header and the byte offset where the data begin."""

    names: list[str]
    delimiter: str | None
    line: int
    offset: int


@dataclass
class CsvColumns:
    """Parsed columns (``arrays[name]`` of ``rows`` values) and the file line of each row:
    ``first_line + r``, or ``lines[r]`` where blank or comment lines were skipped."""

    arrays: dict[str, np.ndarray]
    rows: int
    first_line: int
    lines: np.ndarray | None = None
    sha256: str = ""
    """The SHA-256 of the file's bytes (hex), from the same read."""

    def line(self, row: int) -> int:
        """The 1-based line of the file that holds data row ``row`` (0-based)."""
        return int(self.lines[row]) if self.lines is not None else self.first_line + row


def _text(raw: bytes | memoryview, path: Path, offset: int) -> str:
    try:
        return str(raw, "utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {offset + exc.start}); give a CSV file "
                        "with a header line") from None


def read_header(path: Path) -> CsvHeader:
    """The header: the first line that is neither blank nor a ``#`` comment."""
    line = 0
    offset = 0
    with open(path, "rb") as fh:
        while True:
            raw = fh.readline(MAX_HEADER_BYTES + 1)
            if not raw:
                raise DataError(f"{path}: the file is empty (no header line, no data)")
            if len(raw) > MAX_HEADER_BYTES:
                raise DataError(f"{path}: the first line is longer than {MAX_HEADER_BYTES} "
                                "bytes; give a CSV file with a header line of column names")
            line += 1
            text = _text(raw, path, offset).lstrip("\ufeff" if line == 1 else "").strip()
            offset += len(raw)
            if text and not text.startswith("#"):
                break
    delimiter = next((d for d in DELIMITERS if d in text), None)
    fields = next(csv.reader([text], delimiter=delimiter)) if delimiter else text.split()
    names = [f.strip() for f in fields]
    if all(_number(n) for n in names):
        raise DataError(f"{path}: line {line} holds numbers, not column names; give a CSV file "
                        "whose first line names the columns (t,x,v,...)")
    for k, name in enumerate(names):
        if not name:
            raise DataError(f"{path}: column {k + 1} of the header (line {line}) has no name")
        if names.index(name) != k:
            raise DataError(f"{path}: column name {name!r} appears twice in the header "
                            f"(line {line})")
    return CsvHeader(names, delimiter, line, offset)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _blocks(path: Path, offset: int) -> Iterator[tuple[int, memoryview]]:
    """``(first_byte, bytes)`` blocks of whole lines from ``offset`` to the end, each read
    once (no copy; the next block starts at the cut line)."""
    with open(path, "rb") as fh:
        start = offset
        while True:
            fh.seek(start)
            raw = fh.read(BLOCK_BYTES)
            if not raw:
                return
            cut = raw.rfind(b"\n") + 1 if len(raw) == BLOCK_BYTES else len(raw)
            if cut == 0:
                raise DataError(f"{path}: the line from byte {start} is longer than "
                                f"{BLOCK_BYTES >> 20} MiB; a CSV line holds a few numbers")
            yield start, memoryview(raw)[:cut]
            start += cut


def _counts(raw: memoryview, delimiter: str | None) -> tuple[int, int]:
    """Lines (a last one without its line end too) and delimiters (-1: whitespace) of a
    block."""
    codes = np.frombuffer(raw, dtype=np.uint8)
    lines = int(np.count_nonzero(codes == 10)) + int(codes[-1] != 10)
    return lines, (-1 if delimiter is None else int(np.count_nonzero(codes == ord(delimiter))))


def read_columns(path: Path, header: CsvHeader, wanted: list[str]) -> CsvColumns:
    """Parse columns ``wanted`` (names of the header) of every data line as float64.

    A first pass over the bytes counts each block's lines and delimiters and hashes the
    file (:attr:`CsvColumns.sha256`); the memory needed (lines x columns wanted x 8 bytes)
    is checked against the budget before anything is allocated."""
    import hashlib

    index = [header.names.index(name) for name in wanted]
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        digest.update(fh.read(header.offset))
    with interrupt_guard() as interrupted:  # a Ctrl-C ends the read between two blocks
        survey = []
        for _, raw in _blocks(path, header.offset):
            digest.update(raw)
            survey.append(_counts(raw, header.delimiter))
            if interrupted():
                raise KeyboardInterrupt
        lines = sum(count for count, _ in survey)
        budget.check(f"{path}: {lines} lines x {len(wanted)} columns",
                     8 * lines * len(wanted) + 4 * BLOCK_BYTES,
                     "that is for the columns read and one block of text")
        out = np.empty((lines, len(wanted)), dtype=np.float64)
        row_lines: np.ndarray | None = None  # None while row r is on line first + r
        rows, line, first = 0, header.line + 1, header.line + 1
        for (offset, raw), (count, delimiters) in zip(_blocks(path, header.offset), survey,
                                                      strict=True):
            parsed, here = _block(path, header, index, wanted, raw, offset, line,
                                  (count, delimiters))
            m = parsed.shape[0]
            if row_lines is None and here is not None:
                row_lines = np.empty(lines, dtype=np.int64)
                row_lines[:rows] = first + np.arange(rows)
            if row_lines is not None:
                row_lines[rows:rows + m] = line + np.arange(m) if here is None else here
            out[rows:rows + m] = parsed
            rows += m
            line += count
            if interrupted():
                raise KeyboardInterrupt
    arrays = {name: out[:rows, k] for k, name in enumerate(wanted)}
    return CsvColumns(arrays, rows, first, None if row_lines is None else row_lines[:rows],
                      digest.hexdigest())


def _block(path: Path, header: CsvHeader, index: list[int], wanted: list[str],
           raw: memoryview, offset: int, line: int, counts: tuple[int, int]
           ) -> tuple[np.ndarray, np.ndarray | None]:
    """One block parsed, and None where its rows are its lines in order, else the line of
    each row (blank or comment lines skipped); a bad line raises, named."""
    text = _text(raw, path, offset)
    parsed, error = _parse(text, header, index)
    count, delimiters = counts
    m = parsed.shape[0]
    if error is None and m == count and delimiters in (-1, count * (len(header.names) - 1)):
        return parsed, None
    found = _scan(text, path, header, index, line, wanted)  # raises at a bad line
    if error is not None or found.size != m:
        raise DataError(f"{path}: cannot read the lines from {line}: "
                        f"{error or 'rows and lines disagree'}")
    return parsed, None if np.array_equal(found, line + np.arange(m)) else found


def _parse(text: str, header: CsvHeader, index: list[int]) -> tuple[np.ndarray, str | None]:
    """NumPy's C parser on one block: ``(rows, columns)`` and None, or an empty array and its
    error message."""
    try:
        parsed = np.loadtxt(io.StringIO(text), delimiter=header.delimiter, usecols=index,
                            dtype=np.float64, ndmin=2, comments="#", quotechar='"')
    except ValueError as exc:
        return np.empty((0, len(index))), str(exc).splitlines()[0]
    return parsed.reshape(-1, len(index)), None


def _scan(text: str, path: Path, header: CsvHeader, index: list[int], line: int,
          wanted: list[str]) -> np.ndarray:
    """Line by line (the slow path): raise a DataError naming the first line whose fields do
    not match the header or whose wanted cell is not a number; else the line numbers of the
    data lines of this block."""
    found = []
    n = len(header.names)
    for k, raw_line in enumerate(text.split("\n")):
        body = raw_line.split("#", 1)[0].rstrip("\r")
        if not (body.split() if header.delimiter is None else body):
            continue  # as NumPy's reader: a line empty but for a comment (spaces count)
        where = line + k
        fields = (next(csv.reader([body], delimiter=header.delimiter)) if header.delimiter
                  else body.split())
        if len(fields) != n:
            raise DataError(f"{path}: line {where} has {len(fields)} fields; the header (line "
                            f"{header.line}) names {n} columns")
        for j, name in zip(index, wanted, strict=True):
            cell = fields[j].strip()
            if not _number(cell) or "_" in cell:
                raise DataError(f"{path}: line {where}, column {name!r}: {cell!r} is not a "
                                "number")
        found.append(where)
    return np.asarray(found, dtype=np.int64)
