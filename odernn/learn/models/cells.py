"""The recurrent cells of the gradient families: the notes' vanilla (Elman) cell, the LSTM's
and the GRU's, and the activations they choose from.

Every cell has two code paths over the same weights: ``sequence``, a fused PyTorch kernel
(``nn.RNN``, ``nn.LSTM``, ``nn.GRU``; cuDNN on a GPU) for teacher-forced training windows,
and ``step``, the cell's equations written out, one time step with explicit state, for
closed-loop training (:mod:`odernn.learn.models.inference` is the step without autograd).
The cells share one constructor signature; ``activation`` is the vanilla cell's only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call

from odernn.errors import SpecError

State = tuple[Tensor, ...]

def identity(a: Tensor) -> Tensor:
    """The output activation that is none (a named function: a model that holds it pickles)."""
    return a


ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid,
               "identity": identity}
HIDDEN_ACTIVATIONS = ("tanh", "relu", "sigmoid")


def activation_fn(name: str, allowed: tuple[str, ...], what: str):
    """The activation function ``name``, or a SpecError naming the option ``what``."""
    if name not in allowed:
        raise SpecError(f"{what} {name!r} unknown; allowed: {', '.join(allowed)}")
    return ACTIVATIONS[name]


class ElmanCell(nn.Module):
    """The notes' vanilla RNN cell, ``h = sigma_h(U u + W h + b)``."""

    n_states = 1

    def __init__(self, n_in: int, hidden: int, activation: str) -> None:
        super().__init__()
        self.sigma_h = activation_fn(activation, HIDDEN_ACTIVATIONS, "activation")
        self.U = nn.Parameter(torch.empty(hidden, n_in))
        self.W = nn.Parameter(torch.empty(hidden, hidden))
        self.b = nn.Parameter(torch.empty(hidden))
        self.register_buffer("_zero", torch.zeros(hidden), persistent=False)
        # The fused kernel is called with U, W, b (functional_call); it owns no weights.
        fused = activation in ("tanh", "relu")
        self._kernel = [nn.RNN(n_in, hidden, nonlinearity=activation, batch_first=True,
                               device="meta")] if fused else []

    def step(self, u: Tensor, state: State) -> tuple[Tensor, State]:
        h = self.sigma_h(torch.addmm(self.b, u, self.U.T) + state[0] @ self.W.T)
        return h, (h,)

    def sequence(self, u: Tensor, state: State) -> tuple[Tensor, State]:
        if not self._kernel:
            return _loop(self, u, state)
        weights = {"weight_ih_l0": self.U, "weight_hh_l0": self.W, "bias_ih_l0": self.b,
                   "bias_hh_l0": self._zero}
        hs, h = functional_call(self._kernel[0], weights, (u, state[0][None]))
        return hs, (h[0],)

    def candidate_weight(self) -> Tensor:
        """The recurrent matrix W (the gradient diagnostics quote its spectral radius)."""
        return self.W


class LSTMCell(nn.Module):
    """LSTM (PyTorch's gate order i, f, g, o); fused ``nn.LSTM`` for sequences.

    Cells share one constructor signature; ``activation`` is the vanilla cell's only.
    """

    n_states = 2

    def __init__(self, n_in: int, hidden: int, activation: str) -> None:
        super().__init__()
        self.hidden = hidden
        self.fused = nn.LSTM(n_in, hidden, batch_first=True)

    def step(self, u: Tensor, state: State) -> tuple[Tensor, State]:
        f = self.fused
        gates = torch.addmm(f.bias_ih_l0, u, f.weight_ih_l0.T)
        gates = torch.addmm(gates + f.bias_hh_l0, state[0], f.weight_hh_l0.T)
        i, fg, _, o = torch.sigmoid(gates).chunk(4, dim=1)  # one call for the three gates
        g = torch.tanh(gates[:, 2 * self.hidden:3 * self.hidden])
        c = fg * state[1] + i * g
        h = o * torch.tanh(c)
        return h, (h, c)

    def sequence(self, u: Tensor, state: State) -> tuple[Tensor, State]:
        # cuDNN takes contiguous states only (an initial state may be a view of a product)
        hs, (h, c) = self.fused(u, (state[0][None].contiguous(), state[1][None].contiguous()))
        return hs, (h[0], c[0])

    def candidate_weight(self) -> Tensor:
        """``W_hg``, the recurrent weights of the candidate ``g``: the block that plays W's role."""
        return self.fused.weight_hh_l0.chunk(4)[2]


class GRUCell(nn.Module):
    """GRU (PyTorch's gate order r, z, n); fused ``nn.GRU`` for sequences (no ``activation``)."""

    n_states = 1

    def __init__(self, n_in: int, hidden: int, activation: str) -> None:
        super().__init__()
        self.fused = nn.GRU(n_in, hidden, batch_first=True)

    def step(self, u: Tensor, state: State) -> tuple[Tensor, State]:
        f, h = self.fused, state[0]
        gi = torch.addmm(f.bias_ih_l0, u, f.weight_ih_l0.T)
        gh = torch.addmm(f.bias_hh_l0, h, f.weight_hh_l0.T)
        split = 2 * h.shape[1]
        r, z = torch.sigmoid(gi[:, :split] + gh[:, :split]).chunk(2, dim=1)
        n = torch.tanh(gi[:, split:] + r * gh[:, split:])
        h = n + z * (h - n)
        return h, (h,)

    def sequence(self, u: Tensor, state: State) -> tuple[Tensor, State]:
        hs, h = self.fused(u, state[0][None].contiguous())
        return hs, (h[0],)

    def candidate_weight(self) -> Tensor:
        """``W_hn``, the recurrent weights of the candidate ``n``: the block that plays W's role."""
        return self.fused.weight_hh_l0.chunk(3)[2]


def _loop(cell: nn.Module, u: Tensor, state: State) -> tuple[Tensor, State]:
    """A sequence call as a loop of steps (cells without a fused kernel)."""
    hs = []
    for i in range(u.shape[1]):
        h, state = cell.step(u[:, i], state)
        hs.append(h)
    return torch.stack(hs, dim=1), state


CELLS = {"rnn": ElmanCell, "lstm": LSTMCell, "gru": GRUCell}
