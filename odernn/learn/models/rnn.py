"""Trained recurrent surrogates: vanilla (Elman) RNN, LSTM and GRU behind one cell switch.

One class, :class:`RecurrentNet`, with the family choosing the cell (:mod:`.cells`; as in
darts' ``RNNModel``). Every cell has two code paths over the same weights:

- ``sequence``: a fused PyTorch kernel (``nn.RNN``, ``nn.LSTM``, ``nn.GRU``;
  cuDNN on a GPU) for teacher-forced training windows;
- ``step``: the cell's equations written out, one time step with explicit
  state, for closed-loop training and rollouts.

The vanilla RNN is the lecture notes' network with their names::

    h_t = sigma_h(U u_t + W h_{t-1} + b)        y_t = sigma_y(V h_t + c)

``sigma_h`` is tanh (default), relu or sigmoid (sigmoid has no fused kernel:
its sequence call loops over steps). ``V, c`` is the output layer of every
family; ``head`` inserts ReLU dense layers before it (the notes' Keras
example: ``Dense(8, relu)``). ``skip`` (default) adds a linear map of the
inputs, ``y_t = sigma_y(V h_t + c) + D u_t``, started at the least-squares fit
(:mod:`odernn.learn.skip_fit`), so the recurrent part learns what is not linear in the inputs;
``skip=False`` is the notes' network exactly. The initial state is a learned
map of the initial conditions, ``h_0 = sigma_h(G s_0 + g)`` with ``s_0`` the
normalised ``x0, v0`` and parameters taken (for the LSTM also ``c_0 = G_c s_0 + g_c``).

The vanilla RNN can start from the echo-state recipe instead (``init="esn"``,
Sutskever, Martens, Dahl & Hinton, ICML 2013): a sparse Gaussian ``W`` scaled
to ``init_spectral_radius`` (1.1: slightly beyond the edge of stability, so
the state neither forgets nor explodes at once), trained with SGD and a
momentum schedule (``momentum_schedule="sutskever"`` in ``training``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from odernn import budget
from odernn.errors import SpecError
from odernn.learn.models.cells import ACTIVATIONS, CELLS, HIDDEN_ACTIVATIONS, activation_fn
from odernn.learn.models.inference import inference_step
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
from odernn.learn.models.surrogate import RecurrentSurrogate, State, drawing


def check_widths(hidden: int, head: list[int] | tuple[int, ...]) -> None:
    if hidden < 1 or any(w < 1 for w in head):
        raise SpecError(f"hidden and head widths must be >= 1, got {hidden}, {list(head)}")


FLOAT32 = 4


def gradient_training_bytes(params: int, hidden: int, gates: int, n_inputs: int,
                            n_outputs: int, batch_size: int, steps: int,
                            head: Sequence[int] = ()) -> int:
    """Memory of BPTT training: the parameters with their gradients and optimiser state
    (float32), the activations kept for ``batch_size`` windows of ``steps`` (``gates``
    recurrent blocks per step, each ``head`` layer's output before and after its ReLU), the
    window indices. (A head of 30000 units, left out, took 1.1 GB over a 256 MiB budget.)"""
    per_step = (gates + 4) * hidden + 2 * sum(head) + 4 * (n_inputs + n_outputs)
    activations = 2 * batch_size * max(steps, 1) * per_step * FLOAT32
    return 6 * params * FLOAT32 + activations + 2 * batch_size * 8


@dataclass(frozen=True)
class RecurrentOptions:
    """Hyperparameters of the LSTM and the GRU (the vanilla RNN adds its own)."""

    hidden: int = option(64, "units of the hidden state")
    head: tuple[int, ...] = option((), "widths of ReLU dense layers before the linear readout")
    skip: bool = option(True, "add a linear map D u of the inputs, started at least squares")
    products: int | bool | None = products_option()
    start_as_skip: bool | None = start_as_skip_option()
    seed: int = option(0, "seed of the initial weights")


@dataclass(frozen=True)
class ElmanOptions(RecurrentOptions):
    """Hyperparameters of the vanilla (Elman) RNN."""

    activation: str = option("tanh", "sigma_h: tanh, relu or sigmoid")
    output_activation: str = option("identity", "sigma_y: identity, tanh, relu or sigmoid")
    init: str = option("uniform", "uniform (PyTorch's) or esn (sparse W at init_spectral_radius)")
    init_spectral_radius: float = option(1.1, "spectral radius of W under init='esn'")


class RecurrentNet(RecurrentSurrogate):
    """A gradient-trained recurrent surrogate; subclasses fix the cell by their ``family``."""

    options = RecurrentOptions
    gates: ClassVar[int]
    """Blocks of the recurrent weights (1 for the vanilla cell, 3 GRU, 4 LSTM)."""
    biases: ClassVar[int] = 2
    """Bias vectors per block: the fused cells' ``b_ih`` and ``b_hh`` (the vanilla cell's one
    ``b``)."""

    @classmethod
    def parameter_count(cls, hparams: dict[str, Any], n_inputs: int, n_init: int,
                        n_outputs: int, n_params: int) -> int:
        hidden = int(hparams.get("hidden", cls.defaults["hidden"]))
        return (cls.gates * hidden * (hidden + n_inputs + cls.biases)
                + (n_init + 1) * CELLS[cls.family].n_states * hidden
                + readout_count(hidden, hparams.get("head", ()), n_inputs, n_outputs,
                                skip_width(hparams, n_inputs, n_params)))

    @classmethod
    def training_bytes(cls, hparams: dict[str, Any], n_inputs: int, n_init: int,
                       n_outputs: int, n_params: int, *, batch_size: int = 0,
                       steps: int = 0) -> int:
        return gradient_training_bytes(
            cls.parameter_count(hparams, n_inputs, n_init, n_outputs, n_params),
            int(hparams.get("hidden", cls.defaults["hidden"])), cls.gates, n_inputs,
            n_outputs, batch_size, steps, [int(w) for w in hparams.get("head", ())])

    def __init__(self, layout: Layout, stats: Stats, hidden: int = 64,
                 head: list[int] | tuple[int, ...] = (), skip: bool = True,
                 products: int | bool | None = None, start_as_skip: bool | None = None,
                 seed: int = 0, **cell_args: Any) -> None:
        head = [int(w) for w in head]
        self.check_options(hidden=hidden, head=head, products=products,
                           start_as_skip=start_as_skip, **cell_args)
        super().__init__(layout, stats, {"hidden": hidden, "head": head,
                                         **skip_hparams(layout, skip, products, start_as_skip,
                                                        cell_args.get("output_activation",
                                                                      "identity") != "identity"),
                                         "seed": seed, **cell_args})
        activation = cell_args.get("activation", "tanh")
        self.cell = CELLS[self.family](layout.n_inputs, hidden, activation)
        self.sigma_h = activation_fn(activation, ("tanh", "relu", "sigmoid"), "activation")
        self.sigma_y = activation_fn(cell_args.get("output_activation", "identity"),
                                   tuple(ACTIVATIONS), "output_activation")
        self.init = nn.Linear(layout.n_init, self.cell.n_states * hidden)
        add_output_layers(self, layout, hidden, head, skip, self.hparams["products"])
        self.reset_parameters(seed)

    @classmethod
    def check_options(cls, hidden: int = 64, head: list[int] | tuple[int, ...] = (),
                      activation: str = "tanh", output_activation: str = "identity",
                      **rest: Any) -> None:
        check_widths(hidden, head)
        check_products(rest.get("products"), rest.get("start_as_skip"))
        activation_fn(activation, HIDDEN_ACTIVATIONS, "activation")
        activation_fn(output_activation, tuple(ACTIVATIONS), "output_activation")

    def reset_parameters(self, seed: int) -> None:
        """Uniform in ``+-1/sqrt(fan_in)`` (PyTorch's defaults), drawn from ``seed`` alone;
        ``V = 0`` for a linear system (:func:`~.readout.start_readout`)."""
        g = torch.Generator().manual_seed(int(seed))
        widths = [self.hparams["hidden"], *self.hparams["head"]]
        fan_in = {"cell": widths[0], "init": self.layout.n_init, "V": widths[-1], "c": widths[-1],
                  "D": self.layout.n_inputs}
        fan_in.update({f"head.{k}": w for k, w in enumerate(widths[:-1])})
        with torch.no_grad():
            for name, p in self.named_parameters():
                parts = name.split(".")
                key = ".".join(parts[:2]) if parts[0] == "head" else parts[0]
                bound = 1.0 / math.sqrt(fan_in[key])
                p.copy_(torch.empty(p.shape).uniform_(-bound, bound, generator=g))
        start_readout(self)

    def initial_state(self, s0: Tensor) -> State:
        a = self.init(s0)
        if self.cell.n_states == 1:
            return (self.sigma_h(a),)
        h, c = a.chunk(2, dim=-1)
        return torch.tanh(h), c

    def readout(self, h: Tensor, u: Tensor) -> Tensor:
        """``y = sigma_y(V h + c)`` after the optional dense head, plus ``D u`` with ``skip``."""
        for layer in self.head:
            h = torch.relu(layer(h))
        y = self.sigma_y(torch.matmul(h, self.V.T).add_(self.c) if h.ndim > 2 else
                         torch.addmm(self.c, h, self.V.T))
        if self.D is None:
            return y
        s = skip_features(self, u)
        return y + s @ self.D.T if y.ndim > 2 else torch.addmm(y, s, self.D.T)

    def step(self, u: Tensor, state: State) -> tuple[Tensor, State]:
        h, state = self.cell.step(u, state)
        return self.readout(h, u), state

    def inference_step(self) -> Callable[[Tensor, State], tuple[Tensor, State]]:
        """The step with the gates from one product, updated in place
        (:mod:`odernn.learn.models.inference`)."""
        return inference_step(self)

    def sequence(self, u: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        if state is None:
            zero = u.new_zeros(u.shape[0], self.hparams["hidden"])
            state = (zero,) * self.cell.n_states
        hs, state = self.cell.sequence(u, state)
        return self.readout(hs, u), state

    def candidate_weight(self) -> Tensor:
        """The cell's recurrent matrix that plays the vanilla W's role (see the cells)."""
        return self.cell.candidate_weight()


INITS = ("uniform", "esn")
ESN_CONNECTIONS = 15
"""Nonzero recurrent weights each unit receives under ``init="esn"`` (Sutskever et al.)."""


class VanillaRNN(RecurrentNet):
    family = "rnn"
    description = ("vanilla (Elman) RNN of the notes: h = sigma_h(U u + W h + b), y = V h + c "
                   "(+ D u with skip); init='esn' for the echo-state initialisation")
    options = ElmanOptions
    gates = biases = 1
    training_defaults: ClassVar[dict[str, Any]] = {"epochs": 80, "window": 20, "batch_size": 256}

    def __init__(self, layout: Layout, stats: Stats, hidden: int = 64,
                 head: list[int] | tuple[int, ...] = (), skip: bool = True,
                 products: int | bool | None = None, start_as_skip: bool | None = None,
                 seed: int = 0, activation: str = "tanh",
                 output_activation: str = "identity", init: str = "uniform",
                 init_spectral_radius: float = 1.1) -> None:
        super().__init__(layout, stats, hidden, head, skip, products, start_as_skip, seed,
                         activation=activation,
                         output_activation=output_activation, init=init,
                         init_spectral_radius=float(init_spectral_radius))

    @classmethod
    def model_bytes(cls, hparams: dict[str, Any], *sizes: int) -> int:
        return super().model_bytes(hparams, *sizes) + budget.esn_init_bytes(hparams)

    @classmethod
    def training_bytes(cls, hparams: dict[str, Any], *sizes: int, **shape: int) -> int:
        return super().training_bytes(hparams, *sizes, **shape) + budget.esn_init_bytes(hparams)

    @classmethod
    def check_options(cls, init: str = "uniform", init_spectral_radius: float = 1.1,
                      **rest: Any) -> None:
        super().check_options(**rest)
        if init not in INITS:
            raise SpecError(f"init {init!r} unknown; allowed: {', '.join(INITS)}")
        if not init_spectral_radius > 0:
            raise SpecError(f"init_spectral_radius must be > 0, got {init_spectral_radius}")
        if init != "esn" and init_spectral_radius != cls.defaults["init_spectral_radius"]:
            raise SpecError("init_spectral_radius applies to init='esn' only")

    def reset_parameters(self, seed: int) -> None:
        """PyTorch's uniform defaults; with ``init="esn"`` then the echo-state ``U`` and ``W``.

        ``W``: each unit receives ``min(15, hidden)`` nonzero Gaussian weights from units
        chosen at random, the matrix scaled to spectral radius ``init_spectral_radius``.
        ``U``: Gaussian with standard deviation ``1/sqrt(n_in)``, so a unit's input term has
        about unit variance for the normalised inputs. Drawn from a stream of its own.
        """
        super().reset_parameters(seed)
        if self.hparams["init"] != "esn" or not drawing():  # a checkpoint's weights come next
            return
        stream = int(np.random.SeedSequence([int(seed), 1]).generate_state(1)[0])
        g = torch.Generator().manual_seed(stream)
        n, n_in = self.W.shape[0], self.U.shape[1]
        w = torch.zeros(n, n, dtype=torch.float64)
        k = min(ESN_CONNECTIONS, n)
        for row in range(n):
            w[row, torch.randperm(n, generator=g)[:k]] = torch.randn(k, generator=g,
                                                                     dtype=torch.float64)
        radius = torch.linalg.eigvals(w).abs().max()
        w *= self.hparams["init_spectral_radius"] / radius
        with torch.no_grad():
            self.W.copy_(w)
            self.U.copy_(torch.randn(self.U.shape, generator=g) / math.sqrt(n_in))

    @property
    def U(self) -> Tensor:  # noqa: N802 - the notes' name
        return self.cell.U

    @property
    def W(self) -> Tensor:  # noqa: N802 - the notes' name
        return self.cell.W

    @property
    def b(self) -> Tensor:
        return self.cell.b


class LSTM(RecurrentNet):
    family = "lstm"
    description = "long short-term memory: fused nn.LSTM for training, cell steps in closed loop"
    gates = 4
    training_defaults: ClassVar[dict[str, Any]] = {"epochs": 25, "window": 25,
                                                       "batch_size": 128}


class GRU(RecurrentNet):
    family = "gru"
    description = "gated recurrent unit: fused nn.GRU for training, cell steps in closed loop"
    gates = 3
    training_defaults: ClassVar[dict[str, Any]] = {"epochs": 30, "window": 25,
                                                       "batch_size": 128}
