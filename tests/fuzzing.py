"""How many examples a property test draws: as written by default, ten times as many under
``HYPOTHESIS_PROFILE=fuzz`` (``make fuzz``, the randomised exploration; see conftest.py)."""

from __future__ import annotations

import os

FUZZ = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"


def examples(n: int) -> int:
    """``n`` in the default (derandomised) run, ``10 n`` when fuzzing."""
    return 10 * n if FUZZ else n
