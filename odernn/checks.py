"""Checks of user input shared by every stage: one way to suggest the name a user meant."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to a misspelt ``word``, or ``""`` when
    none is close: appended to the one-line error that names the allowed values."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_choice(value: str, allowed: Iterable[str], what: str) -> str:
    """``value`` if it is one of ``allowed``, else one SpecError line naming ``what``, the
    allowed values and the closest of them (``--model 'lstn' unknown (did you mean
    'lstm'?); allowed: rnn, lstm, gru``)."""
    from odernn.errors import SpecError

    options = [str(a) for a in allowed]
    if value not in options:
        raise SpecError(f"{what} {value!r} unknown{did_you_mean(value, options)}; allowed: "
                        f"{', '.join(options)}")
    return value
