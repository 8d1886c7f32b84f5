"""The networks and sequences the gradient diagnostics run on (:mod:`odernn.notes.diagnostics`).

A :class:`Probe` is a network, as one step of the surrogate protocol
``step(u, state) -> (y, state)``, plus the sequences it runs on, all float64:

- the notes' vanilla RNN (:func:`vanilla_probe`, from
  :class:`odernn.notes.bptt.RNNParams`, so it is checked against the numpy BPTT);
- fresh networks of a family on oscillator sequences (:func:`fresh_probe`): the
  notes' tanh network, or ``nn.LSTMCell``/``nn.GRUCell`` with a linear readout;
- trained surrogates (:func:`surrogate_probe`).

Each probe carries the spectral radius of its recurrent matrix: W, or for a gated
cell the candidate block of its recurrent weights, the part that plays W's role.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from odernn import budget
from odernn.checks import check_choice
from odernn.data.trajectories import Trajectories
from odernn.errors import DataError, SpecError
from odernn.notes.bptt import PARAM_NAMES, RNNParams
from odernn.types import Array, Seed

State = tuple[Tensor, ...]
Step = Callable[[Tensor, State], tuple[Tensor, State]]
"""One time step of the surrogate protocol: ``(u (B, C), state) -> (y (B, O), state)``."""

INITS = ("gaussian", "uniform", "orthogonal")

_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "identity": lambda a: a,
}


@dataclass(frozen=True)
class Probe:
    """A network and the sequences it is diagnosed on, all float64.

    ``inputs (B, T, C)`` and ``targets (B, T, O)``: step i reads ``inputs[:, i]``
    and its output is compared with ``targets[:, i]``. ``state0`` is the state
    before the first step; ``state`` names what it holds (``"h"``, ``"(h, c)"``).
    ``spectral_radius`` is that of the recurrent matrix (see the builders).
    """

    label: str
    step: Step
    state0: State
    inputs: Tensor
    targets: Tensor
    spectral_radius: float
    state: str = "h"

    @property
    def length(self) -> int:
        return int(self.inputs.shape[1])




def vanilla_probe(params: RNNParams, inputs: Array | Tensor, targets: Array | Tensor,
                  h0: Array | None = None, activation: str = "tanh",
                  label: str = "rnn") -> Probe:
    """The notes' network ``h = sigma_h(U u + W h + b)``, ``y = V h + c`` on given sequences.

    The same weights and equations as :mod:`odernn.notes.bptt` (``inputs (B, T, C)``,
    ``targets (B, T, O)``); ``activation="identity"`` gives the linear RNN,
    whose ``ds_T/ds_k`` is exactly ``W^(T-k)``.
    """
    sigma = _ACTIVATIONS[check_choice(activation, tuple(_ACTIVATIONS), "activation")]
    U, W, V, b, c = (torch.as_tensor(getattr(params, n)) for n in PARAM_NAMES)
    inputs, targets = _float64(inputs), _float64(targets)
    if inputs.ndim != 3 or inputs.shape[-1] != params.n_in or targets.shape != \
            inputs.shape[:2] + (params.n_out,):
        raise SpecError(f"inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)} must "
                        f"be (B, T, {params.n_in}) and (B, T, {params.n_out})")
    state0 = torch.zeros(inputs.shape[0], params.n_hidden, dtype=torch.float64) if h0 is None \
        else _float64(h0)
    if state0.shape != (inputs.shape[0], params.n_hidden):
        raise SpecError(f"h0 has shape {tuple(state0.shape)}, expected "
                        f"({inputs.shape[0]}, {params.n_hidden})")

    def step(u: Tensor, state: State) -> tuple[Tensor, State]:
        h = sigma(u @ U.T + state[0] @ W.T + b)
        return h @ V.T + c, (h,)

    return Probe(label, step, (state0,), inputs, targets, radius_of(params.W))


def rnn_params(n_in: int, hidden: int, n_out: int = 1, spectral_radius: float | None = None,
               init: str = "gaussian", seed: Seed = 0) -> RNNParams:
    """Weights of the notes' network with W drawn by ``init`` and scaled to ``spectral_radius``.

    ``gaussian``: ``N(0, 1/H)`` entries (radius about 1 before scaling);
    ``uniform``: PyTorch's ``nn.RNN`` default, ``U(-1/sqrt(H), 1/sqrt(H))``
    (radius about 0.58); ``orthogonal``: a random rotation, every eigenvalue
    on the unit circle, so that ``||W^n|| = radius^n`` exactly. U and V are
    ``N(0, 1/fan_in)``, the biases zero (:meth:`RNNParams.random`).
    """
    check_choice(init, INITS, "init")
    if spectral_radius is not None and not spectral_radius >= 0:
        raise SpecError(f"spectral radius must be >= 0, got {spectral_radius}")
    budget.check(f"rnn_params: hidden = {hidden}", 4 * 8 * hidden**2
                 + budget.dense_eigvals_bytes(hidden), "reduce hidden")  # W, its draws, radius
    rng = np.random.default_rng(seed)
    params = RNNParams.random(n_in, hidden, n_out, seed=rng)
    if init == "uniform":
        params = replace(params, W=rng.uniform(-1, 1, (hidden, hidden)) / np.sqrt(hidden))
    elif init == "orthogonal":
        q, r = np.linalg.qr(rng.standard_normal((hidden, hidden)))
        params = replace(params, W=q * np.sign(np.diag(r)))
    if spectral_radius is not None:
        params = replace(params, W=params.W * (spectral_radius / max(radius_of(params.W), 1e-300)))
    return params


def radius_of(W: Array | Tensor) -> float:
    """The largest eigenvalue modulus of a square matrix."""
    W = W.detach().cpu().double().numpy() if isinstance(W, Tensor) else np.asarray(W)
    return float(np.max(np.abs(np.linalg.eigvals(W))))


def oscillator_sequences(data: Trajectories, length: int,
                         input_scale: float = 1.0) -> tuple[Tensor, Tensor]:
    """Inputs ``u_i = (x_i, F_i, eta)`` (the notes' ``x_i, F_i``, and the damping, which
    varies across the sequences) and targets ``v_{i+1}`` for ``i < length``.

    Each input channel is divided by its root mean square over the sequences
    (so that a unit ``input_scale`` drives tanh units at order one, whatever
    the amplitudes), then multiplied by ``input_scale``. Returns
    ``inputs (N, length, 3)`` and ``targets (N, length, 1)``.
    """
    if data.is_series or data.F is None or "eta" not in data.params:
        raise DataError("the gradient diagnostics need oscillator trajectories with x, v, F "
                        "and params/eta")
    _check_length(data, length)
    if not input_scale > 0:
        raise SpecError(f"input scale must be > 0, got {input_scale}")
    eta = np.broadcast_to(np.asarray(data.params["eta"], dtype=np.float64)[:, None],
                          (data.n, length))
    u = np.stack([data.x[:, :length], data.F[:, :length], eta], axis=-1).astype(np.float64)
    rms = np.sqrt(np.mean(u**2, axis=(0, 1)))
    u = input_scale * u / np.where(rms > 0, rms, 1.0)
    return torch.as_tensor(u), torch.as_tensor(data.v[:, 1:length + 1, None], dtype=torch.float64)


def check_memory(family: str, hidden: int, sequences: int, length: int,
                 where: str = "gradients") -> None:
    """Refuse a network size, number of sequences and length whose diagnostics would not fit
    the memory budget (:mod:`odernn.budget`): BPTT's graph, the batched step Jacobians
    ``(sequences, S, S)`` and the recurrent matrix's eigenvalues."""
    from odernn import budget

    budget.check(f"{where}: {family} with hidden = {hidden}, sequences = {sequences}, "
                 f"length = {length}", budget.gradients_bytes(family, hidden, sequences, length),
                 "reduce hidden, sequences or length")



# -- fresh networks by family -----------------------------------------------------------------

def _fresh_rnn(inputs: Tensor, targets: Tensor, label: str, hidden: int, seed: int,
               spectral_radius: float | None, init: str) -> Probe:
    """The notes' tanh network with W drawn by ``init`` (:func:`rnn_params`)."""
    params = rnn_params(inputs.shape[-1], hidden, 1, spectral_radius, init, seed)
    return vanilla_probe(params, inputs, targets, label=label)


def _cell_and_head(cell_type: type[nn.Module], n_in: int, hidden: int,
                   seed: int) -> tuple[nn.Module, nn.Linear]:
    """A fresh float64 ``cell_type`` and linear readout drawn from ``seed`` (torch's global
    generator, restored afterwards)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        cell = cell_type(n_in, hidden, dtype=torch.float64)
        head = nn.Linear(hidden, 1, dtype=torch.float64)
    return cell, head


def _fresh_lstm(inputs: Tensor, targets: Tensor, label: str, hidden: int, seed: int,
                forget_bias: float | None) -> Probe:
    """``nn.LSTMCell`` and a linear readout, PyTorch's initialisation, from zero states."""
    cell, head = _cell_and_head(nn.LSTMCell, inputs.shape[-1], hidden, seed)
    if forget_bias is not None:
        with torch.no_grad():  # gate order i, f, g, o; the two biases add up
            cell.bias_ih[hidden:2 * hidden] = forget_bias
            cell.bias_hh[hidden:2 * hidden] = 0.0

    def step(u: Tensor, state: State) -> tuple[Tensor, State]:
        state = cell(u, state)
        return head(state[0]), state

    zero = torch.zeros(inputs.shape[0], hidden, dtype=torch.float64)
    return Probe(label, step, (zero, zero), inputs, targets,
                 radius_of(cell.weight_hh.chunk(4)[2]), "(h, c)")


def _fresh_gru(inputs: Tensor, targets: Tensor, label: str, hidden: int, seed: int) -> Probe:
    """``nn.GRUCell`` and a linear readout, PyTorch's initialisation, from a zero state."""
    cell, head = _cell_and_head(nn.GRUCell, inputs.shape[-1], hidden, seed)

    def step(u: Tensor, state: State) -> tuple[Tensor, State]:
        h = cell(u, state[0])
        return head(h), (h,)

    zero = torch.zeros(inputs.shape[0], hidden, dtype=torch.float64)
    return Probe(label, step, (zero,), inputs, targets, radius_of(cell.weight_hh.chunk(3)[2]))


FRESH: dict[str, Callable[..., Probe]] = {"rnn": _fresh_rnn, "lstm": _fresh_lstm,
                                          "gru": _fresh_gru}
"""The builder of each family's fresh network."""
FAMILIES = tuple(FRESH)
"""The families the gradient diagnostics apply to: those trained by BPTT."""
FRESH_OPTIONS: dict[str, tuple[str, ...]] = {"rnn": ("spectral_radius", "init"),
                                             "lstm": ("forget_bias",), "gru": ()}
"""The options of :func:`fresh_probe` each family takes, in the order its label names them."""


def families_taking(option: str) -> tuple[str, ...]:
    """The families whose fresh network takes ``option`` (:data:`FRESH_OPTIONS`)."""
    return tuple(f for f, names in FRESH_OPTIONS.items() if option in names)


_LABELS: dict[str, Callable[[Any], str]] = {
    "spectral_radius": "rho={:g}".format, "init": str, "forget_bias": "forget_bias={:g}".format}


def fresh_probe(family: str, data: Trajectories, *, hidden: int = 64, length: int = 200,
                spectral_radius: float | None = None, init: str = "gaussian", seed: int = 0,
                input_scale: float = 1.0, forget_bias: float | None = None) -> Probe:
    """An untrained network of ``family`` on the oscillator sequences of ``data``.

    ``rnn``: the notes' tanh network (:func:`rnn_params`, ``spectral_radius``
    and ``init`` apply). ``lstm``, ``gru``: ``nn.LSTMCell``/``nn.GRUCell`` with
    PyTorch's initialisation and a linear readout, seeded by ``seed``; their
    reported radius is that of the candidate block of the recurrent weights
    (``W_hg`` of the LSTM, ``W_hn`` of the GRU), the part that plays W's role.
    ``forget_bias`` sets the LSTM's forget-gate bias (PyTorch draws it around
    0, a gate near 1/2; a bias of 1 or more keeps the cell's memory longer).
    Which options a family takes: :data:`FRESH_OPTIONS` (``init``, having a
    default, is ignored by the others).
    """
    check_choice(family, FAMILIES, "model")
    if hidden < 1:
        raise SpecError(f"hidden must be >= 1, got {hidden}")
    given = {"forget_bias": forget_bias, "spectral_radius": spectral_radius}  # None: not given
    for name, value in given.items():
        if value is not None and family not in families_taking(name):
            raise SpecError(f"{name} applies to the {' and '.join(families_taking(name))} "
                            f"only, not to {family!r}")
    options = {**given, "init": init}
    check_memory(family, hidden, data.n, length)
    inputs, targets = oscillator_sequences(data, length, input_scale)
    mine = {name: options[name] for name in FRESH_OPTIONS[family]}
    parts = [family, *(_LABELS[name](v) for name, v in mine.items() if v is not None)]
    if input_scale != 1:
        parts.append(f"inputs*{input_scale:g}")
    return FRESH[family](inputs, targets, " ".join(parts), hidden, seed, **mine)


# -- trained surrogates -----------------------------------------------------------------------

def surrogate_probe(model: Any, data: Trajectories, length: int, label: str | None = None
                    ) -> Probe:
    """A trained surrogate (:func:`odernn.learn.models.load_surrogate`) on the first steps of
    ``data``.

    The model reads what it was trained on (its layout's normalised inputs,
    teacher-forced with the true states) from its learned initial state, and
    the loss is its normalised one-step target error. A float64 copy is
    diagnosed; the model itself is left as it is. The radius is that of the
    model's ``candidate_weight()``.
    """
    from odernn.learn.windows import carried_state, exogenous

    if model.family not in FAMILIES:
        raise DataError(f"a {model.family!r} model is not trained by backpropagation through "
                        f"time; the gradient diagnostics apply to {', '.join(FAMILIES)}")
    model.check_data(data)
    _check_length(data, length)
    check_memory(model.family, int(model.hparams["hidden"]), data.n, length,
                 where=f"gradients of {label or model.family}")
    model = copy.deepcopy(model).double()
    z = torch.as_tensor(carried_state(data, model.layout)[:, :length + 1], dtype=torch.float64)
    e = torch.as_tensor(exogenous(data, model.layout)[:, :length + 1], dtype=torch.float64)
    codec = model.codec
    with torch.no_grad():
        state0 = model.initial_state(codec.init_features(z[:, 0], e[:, 0]))
        inputs = codec.encode(z[:, :-1], e[:, :-1])
        targets = codec.target(z[:, :-1], z[:, 1:], e[:, :-1])
    names = "(h, c)" if len(state0) == 2 else "h"
    return Probe(label or model.family, model.step, state0, inputs, targets,
                 radius_of(model.candidate_weight()), names)


def _check_length(data: Trajectories, length: int) -> None:
    if length < 1:
        raise SpecError(f"length must be >= 1 step, got {length}")
    if data.n_steps < length + 1:
        raise DataError(f"the data have {data.n_steps} time points; a length of {length} "
                        f"steps needs {length + 1}")


def _float64(a: Array | Tensor) -> Tensor:
    return torch.as_tensor(a, dtype=torch.float64)
