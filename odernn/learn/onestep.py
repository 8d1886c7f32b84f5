"""A surrogate's one-step function in physical units, as one torch module: what is exported.

:class:`OneStep` wraps a trained surrogate; its ``forward`` takes what a host program has at
step i (the recurrent state, a start flag, the physical state, the forcing samples
``F_i``, ``F_{i+1}`` (and ``F_{i-1}`` where the model reads it) and the parameters the model
takes) and returns the next physical
state and the next recurrent state, with the normalisation (:class:`~odernn.learn.models.
codec.Codec`) folded in. The recurrent state of every family is one float32 matrix
``(B, S)``: the family's state tensors side by side (the LSTM's ``[h, c]``; ``S = 0`` for
``ffn``, which has none). Where ``start`` is true the state given is ignored and the
model's own initial state, ``g(x, v, p)``, is used: the first call of a trajectory passes
``start = true`` and any state (zeros). :mod:`odernn.learn.export` writes it as ONNX;
docs/export.md documents the names.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from odernn.learn.models.layout import STATE

# The graph's own names are odernn.data.systems.GRAPH_NAMES, which no parameter may take
# (tests/test_export.py checks that every name below is one of them or a physical channel).


def input_names(layout: Any) -> list[str]:
    """The exported graph's inputs, in order: ``state``, ``start``, then ``x``, ``v``, ``F``,
    ``F_next``, ``F_prev`` where the model reads it, and each parameter the model takes, by
    name (a series: ``window``)."""
    if layout.series:
        return ["state", "start", "window"]
    return ["state", "start", *_physical(layout)]


def _physical(layout: Any) -> tuple[str, ...]:
    """An oscillator model's physical inputs: the state, the forcing samples, the parameters."""
    return ("x", "v", "F", "F_next", *(("F_prev",) if "F_prev" in layout.inputs else ()),
            *layout.parameters)


def output_names(layout: Any) -> list[str]:
    """The exported graph's outputs, in order: the next physical state, then ``state_next``."""
    return [*(("window_next",) if layout.series else ("x_next", "v_next")), "state_next"]


class OneStep(nn.Module):
    """The one-step function of ``model`` in physical units (see the module's docstring)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        self.step_function = model.exportable_step()
        with torch.no_grad():
            s0 = model.initial_state(torch.zeros(1, model.layout.n_init, device=model.device))
        self.sizes = [int(t.shape[-1]) for t in s0]
        self.exogenous = [c for c in model.layout.inputs if c not in STATE]

    @property
    def state_size(self) -> int:
        """``S``, the width of the recurrent state matrix."""
        return sum(self.sizes)

    def forward(self, state: Tensor, start: Tensor, *physical: Tensor) -> tuple[Tensor, ...]:
        model = self.model
        layout, codec = model.layout, model.codec
        if layout.series:
            z = physical[0]
            e = z.new_zeros(z.shape[0], 0)
        else:
            x, v, *known = physical
            z = torch.stack([x, v], dim=-1)
            columns = dict(zip(_physical(layout)[2:], known, strict=True))
            e = (torch.stack([columns[c] for c in self.exogenous], dim=-1) if self.exogenous
                 else z.new_zeros(z.shape[0], 0))
        if self.sizes:
            initial = torch.cat(model.initial_state(codec.init_features(z, e)), dim=-1)
            state = torch.where(start[:, None], initial, state)
        prior = codec.prior(z, e)
        y, carried = self.step_function(codec.encode(z, e, prior),
                                        tuple(state.split(self.sizes, -1)))
        z = codec.decode(z, y, e, prior)
        state_next = torch.cat(carried, dim=-1) if self.sizes else state
        return (z, state_next) if layout.series else (z[:, 0], z[:, 1], state_next)

    def example(self, batch: int, seed: int = 0) -> tuple[Tensor, ...]:
        """Inputs of ``batch`` rows near the training data (the trace's example, the check's
        batch): each physical input its training mean plus a standard normal times its
        standard deviation, a random state, ``start`` true on every other row."""
        g = torch.Generator().manual_seed(seed)
        layout, stats = self.model.layout, self.model.codec.stats
        names = input_names(layout)[2:]
        keys = {"v": "v", "F": "F", "F_next": "F", "F_prev": "F"}
        columns = []
        for name in names:
            width = layout.lags if name == "window" else None
            key = "x" if name == "window" else keys.get(name, name)
            shape = (batch, width) if width else (batch,)
            noise = torch.randn(shape, generator=g, dtype=torch.float64)
            columns.append((stats.mean[key] + stats.std[key] * noise).float())
        state = torch.randn(batch, self.state_size, generator=g)
        start = torch.arange(batch) % 2 == 0
        device = self.model.device
        return tuple(t.to(device) for t in (state, start, *columns))
