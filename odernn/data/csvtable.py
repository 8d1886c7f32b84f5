"""Reading a CSV file with a header line into float64 columns, fast and with one-line errors.

``odernn import`` reads the columns it maps and no others. The file is read in blocks of
about :data:`BLOCK_BYTES` cut at line ends and each block is parsed by NumPy's C reader
(``np.loadtxt``; ``benchmarks/import_csv.py`` compares it with the csv module), fed the
block's lines as they are decoded, so memory is the parsed columns plus about one block
and its parsed rows (:func:`csv_bytes`). A block is checked cheaply (its parsed rows against
its lines, its delimiters against the header's); only a block that fails, or one with
blank or comment lines, is read again line by line to name the first bad line and column
("line 7, column 'x': 'abc' is not a number") and the line of every row.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from odernn import budget
from odernn.errors import DataError
from odernn.interrupt import interrupt_guard

BLOCK_BYTES = 8 << 20
"""Bytes of text parsed at a time (and the longest line read)."""
UTF8_PIECE = 1 << 18
"""Bytes of a block decoded at a time to check it is UTF-8 (a str of at most 1 MiB)."""
MAX_HEADER_BYTES = 1 << 20
"""A header line longer than this is refused (column names are short)."""
DELIMITERS = (",", ";", "\t")
"""The delimiter is the one of these in the header that splits it and the first data line
into as many fields, and the most (the first on a tie); none in it: whitespace."""


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
    nbytes: int = 0
    """Memory held: the columns and the rows' lines."""
    cut_short: bool = False
    """The last row is on the file's last line, which has no line end: a file cut short
    ends so, in the middle of a number that still parses."""

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
    comment: tuple[int, str] | None = None  # the last comment line before the header
    with open(path, "rb") as fh:
        while True:
            raw = fh.readline(MAX_HEADER_BYTES + 1)
            if not raw:
                raise DataError(f"{path}: the file is empty (no header line, no data)")
            _check_line_end(raw.removesuffix(b"\n").removesuffix(b"\r"), path, line + 1)
            if len(raw) > MAX_HEADER_BYTES:
                raise DataError(f"{path}: the first line is longer than {MAX_HEADER_BYTES} "
                                "bytes; give a CSV file with a header line of column names")
            line += 1
            text = _text(raw, path, offset).lstrip("\ufeff" if line == 1 else "").strip()
            offset += len(raw)
            if text and not text.startswith("#"):
                break
            if text:
                comment = (line, text)
        sample = _first_data_line(fh, line)
    fields = {d: _split(text, d, path, line) for d in DELIMITERS if d in text}
    agree = {d: f for d, f in fields.items()  # a name holding another delimiter splits
             if sample is not None and len(_split(sample[1], d, path, sample[0])) == len(f)}
    fields = agree or fields  # none agree: the data are refused later, naming the line
    delimiter = max(fields, key=lambda d: len(fields[d])) if fields else None
    names = [f.strip() for f in fields[delimiter]] if delimiter else _whitespace_fields(text)
    if all(_number(n) for n in names):
        hint = "" if comment is None else (
            f"; line {comment[0]}, {comment[1][:40]!r}, is a comment, not a header: write the "
            "header without '#' (numpy.savetxt: comments='')")
        raise DataError(f"{path}: line {line} holds numbers, not column names; give a CSV file "
                        f"whose first line names the columns (t,x,v,...){hint}")
    seen: set[str] = set()  # names.index(name) took 85 s for 120,000 columns
    for k, name in enumerate(names):
        if not name:  # pandas' index, a delimiter at the end of each line: never read
            names[k] = name = f"(column {k + 1})"
        if name in seen:
            raise DataError(f"{path}: column name {name!r} appears twice in the header "
                            f"(line {line})")
        seen.add(name)
    return CsvHeader(names, delimiter, line, offset)


def _first_data_line(fh: Any, header: int) -> tuple[int, str] | None:
    """The first line after the header (line ``header``) that is neither blank nor a
    comment: its number and its text without its comment (its first
    :data:`MAX_HEADER_BYTES`; to choose the delimiter by), or None."""
    line = header + 1
    while raw := fh.readline(MAX_HEADER_BYTES):
        text = _uncommented(str(raw, "utf-8", "replace"), "".join(DELIMITERS) + " ").strip()
        if text:
            return line, text
        line += raw.endswith(b"\n")  # a long blank line comes in parts
    return None


def _uncommented(line: str, after: str | None) -> str:
    """``line`` up to its first ``#`` outside a quoted field, as NumPy's reader cuts it: a
    double quote opens a field only where one begins (at the line's start or after a
    character of ``after``; None: whitespace), and ``""`` inside one is a quote."""
    if "#" not in line:
        return line
    quoted, begins, k = False, True, 0
    while k < len(line):
        c = line[k]
        if quoted:
            if c == '"' and line[k + 1:k + 2] == '"':
                k += 1  # a doubled quote: still inside
            elif c == '"':
                quoted = False
        elif c == "#":
            return line[:k]
        elif c == '"' and begins:
            quoted = True
        begins = c.isspace() if after is None else c in after
        k += 1
    return line


def _whitespace_fields(text: str) -> list[str]:
    """The fields of a whitespace-separated line, as NumPy's reader splits it: a field that
    begins with a double quote runs to the next quote not doubled, whitespace and all."""
    if '"' not in text:
        return text.split()
    fields, k, n = [], 0, len(text)
    while True:
        while k < n and text[k].isspace():
            k += 1
        if k == n:
            return fields
        field, quoted = [], text[k] == '"'
        k += quoted
        while k < n and (quoted or not text[k].isspace()):
            if quoted and text[k] == '"':
                if text[k + 1:k + 2] != '"':
                    quoted, k = False, k + 1
                    continue
                k += 1  # a doubled quote: one quote in the field
            field.append(text[k])
            k += 1
        fields.append("".join(field))


def _check_line_end(body: bytes | str, path: Path, line: int) -> None:
    """Refuse a carriage return inside a line: lines ended by CR alone (old Mac files) would
    be read as one line."""
    if (b"\r" if isinstance(body, bytes) else "\r") in body:
        raise DataError(f"{path}: line {line} holds a carriage return (CR) before its end; "
                        "lines ended by CR alone are not read: give the file LF or CRLF "
                        "line ends")


def _split(text: str, delimiter: str | None, path: Path, line: int) -> list[str]:
    """The fields of one line: split by ``delimiter`` or whitespace, quotes respected."""
    if delimiter is None:
        return _whitespace_fields(text)
    try:
        return next(csv.reader([text], delimiter=delimiter))
    except csv.Error as exc:  # a field over the csv module's limit, say
        raise DataError(f"{path}: line {line}: {exc}") from None


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _survey(path: Path, header: CsvHeader, digest: Any,
            interrupted: Callable[[], bool]) -> list[tuple[int, int, int]]:
    """``(first_byte, size, lines)`` of each block of whole lines from the header's end (a
    last line without its line end counts), the file hashed into ``digest`` on the way; one
    block read at a time."""
    blocks = []
    with open(path, "rb") as fh:
        start = header.offset
        while True:
            fh.seek(start)
            raw = fh.read(BLOCK_BYTES)
            if not raw:
                return blocks
            cut = raw.rfind(b"\n") + 1 if len(raw) == BLOCK_BYTES else len(raw)
            if cut == 0:
                raise DataError(f"{path}: the line from byte {start} is longer than "
                                f"{BLOCK_BYTES >> 20} MiB; a CSV line holds a few numbers")
            digest.update(memoryview(raw)[:cut])
            blocks.append((start, cut, raw.count(b"\n", 0, cut) + (raw[cut - 1] != 10)))
            start += cut
            del raw
            if interrupted():
                raise KeyboardInterrupt


def csv_bytes(lines: int, columns: int, blocks: list[tuple[int, int, int]]) -> int:
    """Memory of :func:`read_columns`: the columns and every row's line, and the largest
    block being parsed: its bytes, NumPy's rows (grown by up to 25% as it parses) and its
    lines' numbers, and a piece decoded (``tests/test_import.py`` checks that it bounds the
    traced peak)."""
    block = max((size + count * (10 * columns + 16) for _, size, count in blocks),
                default=0)
    return 8 * lines * (columns + 1) + block + 4 * UTF8_PIECE


def read_columns(path: Path, header: CsvHeader, wanted: list[str],
                 later: Callable[[int], int] | None = None) -> CsvColumns:
    """Parse columns ``wanted`` (names of the header) of every data line as float64.

    A first pass over the bytes counts each block's lines and delimiters and hashes the
    file (:attr:`CsvColumns.sha256`); the memory needed (:func:`csv_bytes`, or with the
    caller's ``later(lines)`` bytes held beside the columns afterwards, whichever is more)
    is checked against the budget before anything is allocated."""
    import hashlib

    index = [header.names.index(name) for name in wanted]
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        digest.update(fh.read(header.offset))
    with interrupt_guard() as interrupted:  # a Ctrl-C ends the read between two blocks
        survey = _survey(path, header, digest, interrupted)
        lines = sum(count for _, _, count in survey)
        need = csv_bytes(lines, len(wanted), survey)
        if later is not None:
            need = max(need, 8 * lines * (len(wanted) + 1) + later(lines))
        budget.check(f"{path}: {lines} lines x {len(wanted)} columns", need,
                     "that is for the columns read and one block of text")
        out = np.empty((lines, len(wanted)), dtype=np.float64)
        row_lines: np.ndarray | None = None  # None while row r is on line first + r
        rows, line, first = 0, header.line + 1, header.line + 1
        with open(path, "rb") as fh:
            for offset, size, count in survey:
                fh.seek(offset)
                parsed, here = _block(path, header, index, wanted, fh.read(size), offset, line,
                                      count)
                m = parsed.shape[0]
                if row_lines is None and here is not None:
                    row_lines = np.arange(first, first + lines, dtype=np.int64)
                if row_lines is not None:
                    row_lines[rows:rows + m] = np.arange(line, line + m) if here is None else here
                out[rows:rows + m] = parsed
                del parsed, here
                rows += m
                line += count
                if interrupted():
                    raise KeyboardInterrupt
            unended = False
            if survey:
                offset, size, _ = survey[-1]
                fh.seek(offset + size - 1)
                unended = fh.read(1) != b"\n"
    arrays = {name: out[:rows, k] for k, name in enumerate(wanted)}
    last = int(row_lines[rows - 1]) if row_lines is not None and rows else first + rows - 1
    return CsvColumns(arrays, rows, first, None if row_lines is None else row_lines[:rows],
                      digest.hexdigest(), out.nbytes + (0 if row_lines is None
                                                        else row_lines.nbytes),
                      cut_short=unended and rows > 0 and last == line - 1)


def _lines(raw: bytes) -> io.TextIOWrapper:
    """The block's text, decoded as it is read (a str of the whole block would take up to 4
    bytes a character, StringIO's buffer 4 more); split at line feeds only."""
    return io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8", newline="\n")


def _check_utf8(raw: bytes, path: Path, offset: int) -> None:
    """Refuse a block that is not UTF-8, naming the byte; decoded in pieces, none kept."""
    if raw.isascii():
        return
    view, pos = memoryview(raw), 0
    while pos < len(raw):
        try:
            _, used = codecs.utf_8_decode(view[pos:pos + UTF8_PIECE], "strict",
                                          pos + UTF8_PIECE >= len(raw))
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text (byte {offset + pos + exc.start}); give "
                            "a CSV file with a header line") from None
        pos += used


def _block(path: Path, header: CsvHeader, index: list[int], wanted: list[str],
           raw: bytes, offset: int, line: int, count: int
           ) -> tuple[np.ndarray, np.ndarray | None]:
    """One block of ``count`` lines parsed, and None where its rows are its lines in order,
    else the line of each row (blank or comment lines skipped); a bad line raises, named."""
    _check_utf8(raw, path, offset)
    parsed, error = _parse(raw, header, index)
    m = parsed.shape[0]
    if error is None and m == count and _regular(raw, header):
        return parsed, None
    found = _scan(raw, path, header, index, line, wanted, count)  # raises at a bad line
    if error is not None or found.size != m:
        raise DataError(f"{path}: cannot read the lines from {line}: "
                        f"{error or 'rows and lines disagree'}")
    in_order = m == 0 or (found[0] == line and found[-1] == line + m - 1)  # found increases
    return parsed, None if in_order else found


def _regular(raw: bytes, header: CsvHeader) -> bool:
    """Whether every line of the block has the header's number of fields. NumPy's reader,
    given ``usecols``, takes a line of too few or too many fields (a quoted delimiter
    elsewhere kept a block's count of delimiters right). A delimited block without quotes is
    reduced to its delimiters and line ends, a piece of :data:`UTF8_PIECE` at a time, and
    each line must be the header's; one with quotes, or a whitespace-separated one, is
    matched by a possessive regular expression (no copy, no backtracking), quoted fields as
    NumPy reads them. A block with a comment or a blank line, or whitespace-separated with a
    quote or a byte other than printable ASCII (a Unicode space, say), is False too, and
    read line by line (:func:`_scan`)."""
    n = len(header.names)
    if b"#" in raw or header.delimiter is None and b'"' in raw:
        return False
    if header.delimiter is None:
        fields = rb"[ \t\r]*+(?:[!-~]++[ \t\r]++){%d}[!-~]++[ \t\r]*+" % (n - 1)
        return re.fullmatch(rb"(?:%s\n)*+(?:%s)?" % (fields, fields), raw) is not None
    if b'"' in raw:  # a field quoted where it begins ('""' a quote), else up to a delimiter
        d = re.escape(header.delimiter.encode())
        field = rb'(?:"(?:[^"\n\r]|"")*+"[^%s\n]*+|[^%s"\n][^%s\n]*+|)' % (d, d, d)  # a CR: refused
        fields = rb"%s(?:%s%s){%d}" % (field, d, field, n - 1)
        return re.fullmatch(rb"(?:%s\n)*+(?:%s)?" % (fields, fields), raw) is not None
    keep = header.delimiter.encode()
    others, line = bytes(c for c in range(256) if c not in (10, keep[0])), keep * (n - 1) + b"\n"
    start = 0
    while start < len(raw):
        end = raw.rfind(b"\n", start, start + UTF8_PIECE) + 1 if start + UTF8_PIECE < len(raw) \
            else len(raw)
        if end <= start:  # a line longer than a piece
            return False
        seps = raw[start:end].translate(None, others)
        seps += b"" if seps.endswith(b"\n") else b"\n"
        lines = seps.count(b"\n")
        if len(seps) != lines * len(line) or seps.count(line) != lines:  # not line * lines
            return False
        start = end
    return True


def _parse(raw: bytes, header: CsvHeader, index: list[int]) -> tuple[np.ndarray, str | None]:
    """NumPy's C parser on one block: ``(rows, columns)`` and None, or an empty array and its
    error message. A block of blank or comment lines parses to no rows, silently (NumPy
    warns; whether a file has rows at all is the caller's to say)."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "loadtxt: input contained no data")
            parsed = np.loadtxt(_lines(raw), delimiter=header.delimiter, usecols=index,
                                dtype=np.float64, ndmin=2, comments="#", quotechar='"')
    except ValueError as exc:
        return np.empty((0, len(index))), str(exc).splitlines()[0]
    return parsed.reshape(-1, len(index)), None


def _scan(raw: bytes, path: Path, header: CsvHeader, index: list[int], line: int,
          wanted: list[str], count: int) -> np.ndarray:
    """Line by line (the slow path): raise a DataError naming the first line whose fields do
    not match the header or whose wanted cell is not a number; else the line numbers of the
    data lines of this block (at most its ``count`` lines)."""
    found = np.empty(count, dtype=np.int64)
    m = 0
    n = len(header.names)
    for k, raw_line in enumerate(_lines(raw)):
        where = line + k
        body = _uncommented(raw_line.removesuffix("\n"), header.delimiter).rstrip("\r")
        _check_line_end(body, path, where)  # a comment's text is not read
        if not (body.split() if header.delimiter is None else body):
            continue  # as NumPy's reader: a line empty but for a comment (spaces count)
        if not body.strip():
            raise DataError(f"{path}: line {where} holds only spaces or tabs, which is read "
                            "as a row of one empty field; make it empty or remove it")
        fields = _split(body, header.delimiter, path, where)
        if len(fields) != n:
            raise DataError(f"{path}: line {where} has {len(fields)} fields; the header (line "
                            f"{header.line}) names {n} columns")
        for j, name in zip(index, wanted, strict=True):
            cell = fields[j].strip()
            if not _number(cell) or "_" in cell:
                raise DataError(f"{path}: line {where}, column {name!r}: {cell!r} is not a "
                                "number")
        found[m] = where
        m += 1
    return found[:m]
