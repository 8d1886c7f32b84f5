"""A training history's text: ``history.csv`` as a run writes it (:func:`history_csv`), and
the numeric columns of a history read back (:func:`history_columns`: odernn's CSV, or JSON
records, a JSON mapping of columns or JSON lines from other tools), parsed within the
memory budget. :mod:`odernn.learn.rundir` names the file and reads it."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from odernn import budget, jsonio
from odernn.errors import DataError

VALUE_BYTES = 48
"""The memory of a value of a column, beside a JSON history's parsed objects
(:data:`odernn.jsonio.PARSE_BYTES` a byte): its float and its slots in a list and an array
(a CSV column is dropped at its first cell that is no number, so no text is kept). Upper
bounds together, measured with tracemalloc (``tests/test_rundir.py``): a small file of short
rows under a wide header makes many values."""


def history_csv(rows: list[dict[str, Any]]) -> str:
    """``history.csv``'s text: a header, then one row per epoch (or ridge candidate). The
    header is every row's columns in the order they first appear (a run resumed from an
    earlier odernn's may add some); a row without one leaves its cell blank."""
    buf = io.StringIO()
    if rows:
        columns = list(dict.fromkeys(k for r in rows for k in r))
        writer = csv.DictWriter(buf, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in r.items()}
                         for r in rows)
    return buf.getvalue()


def history_columns(path: Path, text: str) -> dict[str, np.ndarray]:
    """The numeric columns of history ``text`` read from ``path`` (its suffix, ``.csv``,
    ``.json`` or ``.jsonl``, says the form; a column that is not numeric is left out), or
    one DataError line."""
    try:
        if path.suffix == ".csv":
            columns = _csv_columns(path, text)
        else:
            _history_budget(path, jsonio.PARSE_BYTES * len(text))
            records: Any = ([json.loads(line) for line in text.splitlines() if line.strip()]
                            if path.suffix == ".jsonl" else json.loads(text))
            if isinstance(records, Mapping):
                columns = {k: v for k, v in records.items() if isinstance(v, list)}
                values = sum(len(v) for v in columns.values())
            else:
                keys = list(records[0]) if records else []
                values = len(records) * len(keys)
            _history_budget(path, jsonio.PARSE_BYTES * len(text) + VALUE_BYTES * values)
            if not isinstance(records, Mapping):  # the parsed records and their columns
                columns = {k: [r.get(k) for r in records] for k in keys}
        return {k: a for k, v in columns.items() if (a := _numeric(v)) is not None}
    except budget.BudgetError:
        raise
    except (OSError, UnicodeDecodeError, ValueError, TypeError, AttributeError,
            IndexError, RecursionError, csv.Error) as err:
        raise DataError(f"{path}: unreadable training history ({err}); expected CSV with a "
                        "header, JSON records or columns") from None


def _history_budget(path: Path, need: int) -> None:
    budget.check(f"training history {path}", need, "that is for parsing its rows")


def _csv_columns(path: Path, text: str) -> dict[str, list[Any]]:
    """A CSV history's numeric columns, read row by row as ``csv.DictReader`` reads them (a
    later column of the same name wins, a missing field is None, a blank row is skipped),
    each value made a number at once, a column dropped at its first cell that is none."""
    reader = csv.reader(io.StringIO(text))
    fieldnames = next(reader, [])
    names = list(dict.fromkeys(fieldnames))
    _history_budget(path, VALUE_BYTES * (text.count("\n") + text.count("\r") + 1) * len(names))
    columns: dict[str, list[float] | None] = {k: [] for k in names}
    rows = 0
    for row in reader:
        if row:
            rows += 1
            fields = dict(zip(fieldnames, row, strict=False))  # short rows: None
            for k, column in columns.items():
                if column is not None:
                    value = _number(fields.get(k))
                    if value is None:
                        columns[k] = None  # not numeric: left out, its text not kept
                    else:
                        column.append(value)
    return {k: v for k, v in columns.items() if v is not None} if rows else {}  # no records


def _number(value: Any) -> float | None:
    """``value`` as a float where it is a number (NaN where empty), else None."""
    if value is None or value == "":
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _numeric(values: Sequence[Any]) -> np.ndarray | None:
    try:
        return np.array([math.nan if v in (None, "") else float(v) for v in values])
    except (TypeError, ValueError):
        return None
