"""odernn.jsonio directly: strict JSON (non-finite numbers as strings, read back by
``number``), numpy scalars and arrays as plain numbers and lists."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from odernn import jsonio


def test_non_json_keys_values_and_numpy_types_become_plain_json():
    doc = {np.int64(3): np.float32(0.5), 7: b"caf\xc3\xa9", "n": None,
           "a": np.arange(3, dtype=np.int64), "i": np.int64(2**40)}
    text = jsonio.dumps(doc)
    assert json.loads(text) == {"3": 0.5, "7": "café", "n": None, "a": [0, 1, 2],
                                "i": 2**40}
    assert '"i": 1099511627776' in text  # a number, not a string


def test_non_finite_numbers_round_trip_as_strings():
    values = [math.nan, math.inf, -math.inf, np.float64(-np.inf), 1.5]
    text = jsonio.dumps(values)
    assert json.loads(text) == ["nan", "inf", "-inf", "-inf", 1.5]
    back = [jsonio.number(v) for v in json.loads(text)]
    assert math.isnan(back[0]) and back[1:] == [math.inf, -math.inf, -math.inf, 1.5]
    assert type(jsonio.number(3)) is float
    with pytest.raises(ValueError):
        jsonio.number("infinity")


def test_compact_and_indent():
    assert jsonio.dumps({"a": [1, 2]}, compact=True) == '{"a":[1,2]}'
    assert jsonio.dumps({"a": 1}, indent=2) == '{\n  "a": 1\n}'


def test_a_users_json_is_parsed_within_the_budget_and_too_deep_is_malformed(monkeypatch):
    """JSON that a user can edit (a run's config, a seed group's index, a report's marker, a
    record overwritten) is read by :func:`jsonio.loads`: ``[[[[...`` is a ValueError as other
    malformed JSON (it was a RecursionError traceback), and its parsed objects are budgeted
    first (64 MiB of JSON took 1.9 GB)."""
    from odernn import budget

    assert jsonio.loads('{"a": [1, 2]}', "x") == {"a": [1, 2]}
    with pytest.raises(ValueError, match="nested too deeply") as info:
        jsonio.loads("[" * 100_000 + "]" * 100_000, "x")
    assert not isinstance(info.value, RecursionError)
    monkeypatch.setenv(budget.ENV, "1M")
    with pytest.raises(budget.BudgetError, match=r"records.json \([\d.]+ KiB of JSON\)"):
        jsonio.loads("[" + "{}," * 20_000 + "{}]", "records.json")
