"""The defaults before two changes: the gradient families' training defaults before
``benchmarks/training_speed.py`` changed them, and every family's model choices before a linear
system got its own (``benchmarks/linear_map.py``).

Windows of 50 steps in batches of 256, RNN 200, LSTM 60 and GRU 100 epochs (the FFN's are
unchanged). The benchmarks whose figures the README and docs quote from before the changes
pass these, so that their commands still print those figures; ``training_speed.py`` and
``linear_map.py`` measure the new defaults against them.
"""

from __future__ import annotations

from typing import Any

PREVIOUS: dict[str, dict[str, Any]] = {
    "rnn": {"window": 50, "batch_size": 256, "epochs": 200},
    "lstm": {"window": 50, "batch_size": 256, "epochs": 60},
    "gru": {"window": 50, "batch_size": 256, "epochs": 100},
}


BEFORE_LINEAR_MAP: dict[str, Any] = {"inputs": ["x", "v", "F", "F_next"], "products": 1,
                                     "start_as_skip": False}
"""The model choices before a linear system got its own (``benchmarks/linear_map.py``): no
input ``F_prev``, the parameters' products of degree 1, the readout ``V`` drawn (the reservoir:
the same inputs). On a nonlinear system these are the defaults still."""


def previous(family: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """``options`` over the family's previous defaults: its training options (the RNN, LSTM
    and GRU) and, in state mode, :data:`BEFORE_LINEAR_MAP` (the reservoir: its inputs)."""
    options = dict(options or {})
    before = {} if options.get("target", "state") != "state" else (
        {"inputs": BEFORE_LINEAR_MAP["inputs"]} if family == "esn" else BEFORE_LINEAR_MAP)
    return {**PREVIOUS.get(family, {}), **before, **options}
