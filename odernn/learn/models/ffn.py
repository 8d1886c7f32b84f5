"""The notes' first form, "Linking with RNNs": a feed-forward one-step map with no memory.

    y_i = V sigma(U u_i + b) + c  (+ D u_i with ``skip``),   u_i = (x_i, v_i, F_i[, F_{i+1}, p])

It is the vanilla RNN without ``W``: the network sees only the present
inputs, so it must be given the whole physical state (``v`` among the
inputs). Its state in the surrogate protocol is empty; in closed loop the
carried ``(x, v)`` is the only memory, fed back through the codec like every
family's. ``head`` adds ReLU layers before ``V`` as in :mod:`odernn.learn.models.rnn`.

The notes' x-only variant ``y_i = h(x_i, h_{i-1})`` needs memory: it is the
recurrent families in velocity mode (inputs without ``v``), not this one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from odernn.errors import SpecError
from odernn.learn.models.cells import HIDDEN_ACTIVATIONS, activation_fn
from odernn.learn.models.layout import Layout, Stats
from odernn.learn.models.options import option
from odernn.learn.models.readout import (
    add_output_layers,
    check_products,
    products_option,
    readout_count,
    skip_features,
    skip_hparams,
    skip_width,
    start_as_skip_option,
    start_readout,
)
from odernn.learn.models.rnn import check_widths, gradient_training_bytes
from odernn.learn.models.surrogate import RecurrentSurrogate, State


@dataclass(frozen=True)
class FeedForwardOptions:
    """Hyperparameters of the feed-forward one-step map."""

    hidden: int = option(64, "units of the hidden layer")
    head: tuple[int, ...] = option((), "widths of ReLU dense layers before the linear readout")
    skip: bool = option(True, "add a linear map D u of the inputs, started at least squares")
    products: int | bool | None = products_option()
    start_as_skip: bool | None = start_as_skip_option()
    seed: int = option(0, "seed of the initial weights")
    activation: str = option("tanh", "sigma: tanh, relu or sigmoid")


class FeedForward(RecurrentSurrogate):
    family = "ffn"
    description = ("feed-forward one-step map of the notes ('Linking with RNNs'): "
                   "y = V sigma(U u + b) + c (+ D u with skip), no memory")
    options = FeedForwardOptions
    hidden_states = False
    training_defaults: ClassVar[dict[str, Any]] = {"epochs": 100, "window": 50,
                                                       "batch_size": 256}

    @classmethod
    def parameter_count(cls, hparams: dict[str, Any], n_inputs: int, n_init: int,
                        n_outputs: int, n_params: int) -> int:
        hidden = int(hparams.get("hidden", cls.defaults["hidden"]))
        return hidden * (n_inputs + 1) + readout_count(hidden, hparams.get("head", ()),
                                                       n_inputs, n_outputs,
                                                       skip_width(hparams, n_inputs, n_params))

    @classmethod
    def training_bytes(cls, hparams: dict[str, Any], n_inputs: int, n_init: int,
                       n_outputs: int, n_params: int, *, batch_size: int = 0,
                       steps: int = 0) -> int:
        return gradient_training_bytes(
            cls.parameter_count(hparams, n_inputs, n_init, n_outputs, n_params),
            int(hparams.get("hidden", cls.defaults["hidden"])), 0, n_inputs, n_outputs,
            batch_size, steps, [int(w) for w in hparams.get("head", ())])

    @classmethod
    def check_options(cls, hidden: int = 64, head: list[int] | tuple[int, ...] = (),
                      activation: str = "tanh", **rest: Any) -> None:
        check_widths(hidden, head)
        check_products(rest.get("products"), rest.get("start_as_skip"))
        activation_fn(activation, HIDDEN_ACTIVATIONS, "activation")

    @classmethod
    def check_layout(cls, layout: Layout) -> None:
        if not layout.series and "v" not in layout.inputs:
            raise SpecError("the ffn family has no memory: its inputs must contain 'v' (for x "
                            "only, use a recurrent family in velocity mode)")

    def __init__(self, layout: Layout, stats: Stats, hidden: int = 64,
                 head: list[int] | tuple[int, ...] = (), skip: bool = True,
                 products: int | bool | None = None, start_as_skip: bool | None = None,
                 seed: int = 0, activation: str = "tanh") -> None:
        head = [int(w) for w in head]
        self.check_options(hidden=hidden, head=head, activation=activation, products=products,
                           start_as_skip=start_as_skip)
        self.check_layout(layout)
        super().__init__(layout, stats, {"hidden": hidden, "head": head,
                                         **skip_hparams(layout, skip, products, start_as_skip),
                                         "seed": seed,
                                         "activation": activation})
        self.sigma = activation_fn(activation, HIDDEN_ACTIVATIONS, "activation")
        self.U = nn.Parameter(torch.empty(hidden, layout.n_inputs))
        self.b = nn.Parameter(torch.empty(hidden))
        add_output_layers(self, layout, hidden, head, skip, self.hparams["products"])
        self.reset_parameters(seed)

    def reset_parameters(self, seed: int) -> None:
        """Uniform in ``+-1/sqrt(fan_in)`` (PyTorch's defaults), drawn from ``seed`` alone;
        ``V = 0`` for a linear system (:func:`~.readout.start_readout`)."""
        g = torch.Generator().manual_seed(int(seed))
        widths = [self.hparams["hidden"], *self.hparams["head"]]
        n_in = self.layout.n_inputs
        fan_in = {"U": n_in, "b": n_in, "D": n_in, "V": widths[-1], "c": widths[-1]}
        fan_in.update({f"head.{k}": w for k, w in enumerate(widths[:-1])})
        with torch.no_grad():
            for name, p in self.named_parameters():
                parts = name.split(".")
                bound = 1.0 / math.sqrt(fan_in[".".join(parts[:2]) if parts[0] == "head"
                                               else parts[0]])
                p.copy_(torch.empty(p.shape).uniform_(-bound, bound, generator=g))
        start_readout(self)

    def initial_state(self, s0: Tensor) -> State:
        return ()  # no memory: the carried (x, v) is the whole state

    def step(self, u: Tensor, state: State) -> tuple[Tensor, State]:
        h = self.sigma(u @ self.U.T + self.b)
        for layer in self.head:
            h = torch.relu(layer(h))
        y = h @ self.V.T + self.c
        return (y if self.D is None else y + skip_features(self, u) @ self.D.T), state

    def sequence(self, u: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        return self.step(u, ())  # every step is independent: one batched call
