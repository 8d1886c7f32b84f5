"""Forged checkpoint records (an audit's, each reproduced first): refused in one line
(DataError) when the model is rebuilt, where before they crashed the process (an echo state
network's sparse indices), built what the file did not hold (an expanded tensor), raised a
traceback from deep inside, or went silently wrong (a zero std, an unknown option)."""

from __future__ import annotations

import math
import shutil

import pytest
import torch
from test_models import oscillator_data, small_config

from odernn.errors import DataError
from odernn.learn.checkpoint import read_checkpoint, save_checkpoint
from odernn.learn.models import load_surrogate
from odernn.learn.training import train


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    data = oscillator_data(n=12, n_steps=100)
    root = tmp_path_factory.mktemp("forged")
    for family, changes in (("gru", {"epochs": 1}), ("esn", {"units": 50})):
        train(data, small_config(family, **changes), root / family, progress=False)
    return root


def forge(source, target, change) -> None:
    record = read_checkpoint(source)
    change(record)
    save_checkpoint(target, {k: v for k, v in record.items() if k != "format"})


def _set(*keys, value):
    def change(record):
        node = record
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value(node[keys[-1]]) if callable(value) else value
    return change


ESN = [
    ("W_col beyond the units", _set("state_dict", "W_col", value=lambda t: t.clone().fill_(10**9)),
     "reservoir"),
    ("W_col just past them", _set("state_dict", "W_col", value=lambda t: t.clone().fill_(50)),
     "reservoir"),
    ("W_col negative", _set("state_dict", "W_col", value=lambda t: t.clone().fill_(-5)),
     "reservoir"),
    ("W_crow reversed", _set("state_dict", "W_crow", value=lambda t: t.flip(0).contiguous()),
     "reservoir"),
    ("one unit", _set("args", "hparams", "units", value=1),
     r"checkpoint .*esn is inconsistent: esn needs units >= 2"),
    ("W_value not finite", _set("state_dict", "W_value", value=lambda t: t.clone().fill_(math.nan)),
     "reservoir"),
    ("W_in not finite", _set("state_dict", "W_in", value=lambda t: t.clone().fill_(math.inf)),
     "finite input weights"),
    ("b not finite", _set("state_dict", "b", value=lambda t: t.clone().fill_(math.nan)),
     "finite input weights and bias"),
]
GRU = [
    ("an expanded tensor", _set("state_dict", "V", value=lambda t: torch.zeros(1).expand(t.shape)),
     "not stored value by value"),
    ("format_version a string", _set("format_version", value="1"), "format_version"),
    ("a mean that is not a number", _set("args", "stats", "mean", "x", value="abc"), "mean of 'x'"),
    ("the means a list", _set("args", "stats", "mean", value=[1, 2]), "mean is not a mapping"),
    ("a zero std", _set("args", "stats", "std", "x", value=0.0), "std of 'x'"),
    ("a NaN std", _set("args", "stats", "std", "v", value=math.nan), "std of 'v'"),
    ("an infinite std", _set("args", "stats", "std", "v", value=math.inf), "std of 'v'"),
    ("a NaN seed", _set("args", "hparams", "seed", value=math.nan), "inconsistent"),
    ("a huge seed", _set("args", "hparams", "seed", value=2**80), "inconsistent"),
    ("an infinite hidden size", _set("args", "hparams", "hidden", value=math.inf), "inconsistent"),

    ("an option the family lacks", _set("args", "hparams", "output_activation", value="relu"),
     "output_activation it does not have"),
    ("dt a tensor", _set("args", "layout", "dt", value=torch.tensor([0.05, 0.1])), "dt must"),
    ("warmup a fraction", _set("args", "layout", "warmup", value=1.5), "warmup must"),
]


@pytest.mark.parametrize("family, what, change, needle",
                         [("esn", *c) for c in ESN] + [("gru", *c) for c in GRU],
                         ids=[c[0] for c in ESN + GRU])
def test_a_forged_checkpoint_is_refused_when_its_model_is_rebuilt(runs, tmp_path, family, what,
                                                                  change, needle):
    run = tmp_path / family
    shutil.copytree(runs / family, run)
    forge(runs / family / "best.pt", run / "best.pt", change)
    with pytest.raises(DataError, match=needle):
        load_surrogate(run)
    load_surrogate(runs / family)  # the honest one loads
