"""The readout the gradient families share (the RNN cells and ``ffn``): optional dense
``head`` layers, ``y = V h + c``, and the linear skip ``D s(u)`` of the inputs, started at
their least-squares fit (:func:`odernn.learn.gradient` ``_fit_skip``) so the network learns
only what is not linear in them. With ``products`` the skip's features ``s(u)`` also hold
each parameter input times each other input: the one-step map of a damped, driven
oscillator is nearly bilinear in its damping and its state (and, for the nonlinear systems,
in the drive's amplitude), which a sum of the inputs cannot hold for every damping at once
(multiplicative conditioning, chosen by ``benchmarks/conditioning.py``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from odernn.learn.models.layout import Layout


def readout_count(hidden: int, head: list[int] | tuple[int, ...], n_inputs: int,
                  n_outputs: int, n_skip: int | None = None) -> int:
    """Values of the readout :func:`add_output_layers` builds (head layers, ``V, c``, ``D``
    over ``n_skip`` skip features, by default the inputs)."""
    widths = [int(hidden), *(int(w) for w in head or ())]
    layers = sum((a + 1) * b for a, b in zip(widths, widths[1:], strict=False))
    return layers + (widths[-1] + 1 + (n_inputs if n_skip is None else n_skip)) * n_outputs


def skip_width(hparams: dict[str, Any], n_inputs: int, n_init: int) -> int:
    """The skip's features: the inputs, and with ``products`` each parameter input times
    each other input (``P (n_inputs - P)`` more; P = ``n_init - 2`` for an oscillator)."""
    if not hparams.get("products", True) or n_inputs == n_init:  # a series has none
        return n_inputs
    p = n_init - 2
    return n_inputs + p * (n_inputs - p)


def skip_features(module: nn.Module, u: Tensor) -> Tensor:
    """``u`` and, with ``products``, each parameter channel times each other channel (the
    one-step map is nearly bilinear in the damping and the state: multiplicative
    conditioning)."""
    if module.param_cols is None:
        return u
    p, o = u[..., module.param_cols], u[..., module.other_cols]
    return torch.cat([u, (p.unsqueeze(-1) * o.unsqueeze(-2)).flatten(-2)], dim=-1)


def add_output_layers(module: nn.Module, layout: Layout, hidden: int, head: tuple[int, ...],
                      skip: bool, products: bool = False) -> None:
    """The readout shared by the RNN families and ``ffn``: optional ``head`` layers, then
    ``y = V h + c`` (+ the linear skip ``D s(u)`` when ``skip``, ``s`` of
    :func:`skip_features`)."""
    widths = [hidden, *head]
    module.head = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:], strict=False))
    module.V = nn.Parameter(torch.empty(layout.n_outputs, widths[-1]))
    module.c = nn.Parameter(torch.empty(layout.n_outputs))
    n = len(layout.parameters)
    params = list(range(len(layout.inputs) - n, len(layout.inputs)))
    others = [k for k in range(layout.n_inputs) if k not in params]
    multiply = skip and products and n > 0
    for name, cols in (("param_cols", params), ("other_cols", others)):
        module.register_buffer(name, torch.tensor(cols, dtype=torch.long) if multiply else None,
                               persistent=False)
    width = layout.n_inputs + (n * len(others) if multiply else 0)
    module.D = nn.Parameter(torch.empty(layout.n_outputs, width)) if skip else None
