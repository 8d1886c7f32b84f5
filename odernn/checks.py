"""Checks of user input shared by every stage: choices with a "did you mean", seeds."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from odernn.errors import SpecError

MAX_SEED = 2**63 - 1
"""The largest seed: seeds are stored as 64-bit integers."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to a misspelt ``word``, or ``""`` when
    none is close: appended to the one-line error that names the allowed values."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_choice(value: str, allowed: Iterable[str], what: str) -> str:
    """``value`` if it is one of ``allowed``, else one SpecError line naming ``what``, the
    allowed values and the closest of them (``--model 'lstn' unknown (did you mean
    'lstm'?); allowed: rnn, lstm, gru``)."""
    options = [str(a) for a in allowed]
    if value not in options:
        raise SpecError(f"{what} {value!r} unknown{did_you_mean(value, options)}; allowed: "
                        f"{', '.join(options)}")
    return value


def check_seed(seed: int, name: str = "seed") -> None:
    """Refuse a seed outside ``[0, 2**63 - 1]``: seeds are stored as 64-bit integers (HDF5
    attributes, checkpoints), and NumPy's and torch's generators take no negative seed."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise SpecError(f"{name} must be an integer in [0, 2**63 - 1], got {seed!r}")
