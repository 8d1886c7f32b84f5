"""The gradient families' training defaults before ``benchmarks/training_speed.py`` changed them.

Windows of 50 steps in batches of 256, RNN 200, LSTM 60 and GRU 100 epochs (the FFN's are
unchanged). The benchmarks whose figures the README and docs quote from before the change
pass these, so that their commands still print those figures; ``training_speed.py``
measures the new defaults against them.
"""

from __future__ import annotations

from typing import Any

PREVIOUS: dict[str, dict[str, Any]] = {
    "rnn": {"window": 50, "batch_size": 256, "epochs": 200},
    "lstm": {"window": 50, "batch_size": 256, "epochs": 60},
    "gru": {"window": 50, "batch_size": 256, "epochs": 100},
}


def previous(family: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """``options`` over the family's previous defaults (other families: ``options`` alone)."""
    return {**PREVIOUS.get(family, {}), **(options or {})}
