"""The one JSON policy for every file odernn writes (metrics, configs, markers, stages).

Strict JSON (RFC 8259 has no NaN or Infinity): a non-finite number is written as the
string ``"nan"``, ``"inf"`` or ``"-inf"``, and :func:`number` reads it back; numpy
scalars and arrays become Python numbers and lists. A reader in any language parses our
files; a diverged surrogate's ``inf`` error survives the round trip.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from odernn import budget

NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def plain(value: Any) -> Any:
    """``value`` with numpy types made Python, non-finite floats made strings (strict JSON)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray | list | tuple):
        return [plain(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def dumps(value: Any, *, indent: int | None = None, compact: bool = False) -> str:
    """``value`` as strict JSON text under the policy above (``compact``: no spaces)."""
    separators = (",", ":") if compact else None
    return json.dumps(plain(value), indent=indent, separators=separators, allow_nan=False)


def number(value: Any) -> float:
    """A number read from one of our files: a float, or one of the strings ``"nan"``,
    ``"inf"``, ``"-inf"`` this policy writes."""
    if isinstance(value, str):
        if value not in NON_FINITE:
            raise ValueError(f"not a number: {value!r}")
        return NON_FINITE[value]
    return float(value)


PARSE_BYTES = 64
"""The most memory a byte of JSON text may take once parsed (lines of ``{"":{}}``: two
dicts, a string and a line's slot for eight bytes)."""


def loads(text: str, what: str) -> Any:
    """Parse JSON ``text`` (``what`` it is, for a message) of a file a user can edit, once
    its parsed objects fit the memory budget (64 MiB of JSON took 1.9 GB); nesting too deep
    for Python's parser (``'[' * 100000``, a RecursionError) is a ValueError, as any other
    malformed JSON is."""
    budget.check(f"{what} ({budget.size(len(text))} of JSON)", PARSE_BYTES * len(text),
                 "that is for parsing it")
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply to parse") from None
