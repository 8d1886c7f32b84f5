"""The surrogate families by name, and the training choices: importable without torch.

The command line builds its choices (help lists, shell completion) from these tables when
it starts, before torch is loaded; :mod:`odernn.learn.models` builds its registry from
:data:`FAMILIES`, so a family is named once.
"""

from __future__ import annotations

FAMILIES = {
    "rnn": "odernn.learn.models.rnn:VanillaRNN",
    "lstm": "odernn.learn.models.rnn:LSTM",
    "gru": "odernn.learn.models.rnn:GRU",
    "esn": "odernn.learn.models.esn:ESN",
    "ffn": "odernn.learn.models.ffn:FeedForward",
}
"""Family name -> ``module:class`` of its surrogate."""
TARGETS = ("state", "velocity", "next-value")
"""What a surrogate predicts (:mod:`odernn.learn.models.base`)."""
OPTIMIZERS = ("adam", "rmsprop", "sgd", "hf")
SCHEDULES = ("cosine", "constant")
MOMENTUM_SCHEDULES = ("constant", "sutskever")
DEVICES = ("auto", "cpu", "cuda")
PRIOR_ALIASES = {"linear": "oscillator"}
"""Other names a hybrid's prior system may be given by (``--prior linear``)."""
