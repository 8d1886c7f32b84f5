"""Vanishing and exploding gradients, measured on recurrent networks.

Backpropagation through time carries the error derivative back one step at a
time, multiplying it by the Jacobian of each step (the notes)::

    dh_t/dh_k = prod_{i=k+1}^{t} dh_i/dh_{i-1}

so the size of this product as the lag ``t - k`` grows decides whether the
loss at ``t`` can still teach the network anything about step ``k``: it
shrinks exponentially (vanishing) or grows exponentially (exploding). For a
linear RNN the product is ``W^(t-k)`` and its rate per step,
``||W^n||^(1/n)``, tends to the spectral radius of ``W``.

A :class:`Probe` is a network plus the oscillator sequences it runs on;
:func:`gradient_profile` measures, against the lag from the last step ``T``:

- ``||ds_T/ds_k||``, the norm (spectral by default, or Frobenius) of the
  product of step Jacobians, built exactly as the formula above;
- ``||dL/ds_k||``, the Euclidean norm of the total derivative that torch
  autograd backpropagates to the state, for the loss at the final step
  (``loss="final"``) or summed over all steps (``loss="sum"``).

What is differentiated is the whole carried state ``s``: ``s = h`` for the
vanilla RNN and the GRU, ``s = (h, c)`` (2H numbers) for the LSTM, since only
for the full state is the Jacobian of many steps the product of one-step
Jacobians (``h`` alone does not determine an LSTM's future). With B
sequences, summaries are geometric means over them (the mean of log norms,
the natural average on a log scale). Everything runs in float64, so that a
norm of 1e-60 is a number and not an underflow.

Networks: the notes' vanilla RNN (:func:`vanilla_probe`, from
:class:`odernn.notes.bptt.RNNParams`, so it is checked against the numpy BPTT),
fresh ``nn.LSTMCell``/``nn.GRUCell`` networks (:func:`fresh_probe`), and
trained surrogates (:func:`surrogate_probe`), all through the surrogate
protocol ``step(u, state) -> (y, state)``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullLocator
from torch import Tensor, nn

from odernn.checks import check_choice
from odernn.data.trajectories import Trajectories
from odernn.errors import DataError, SpecError
from odernn.notes.bptt import PARAM_NAMES, RNNParams
from odernn.types import Array, Seed

State = tuple[Tensor, ...]
Step = Callable[[Tensor, State], tuple[Tensor, State]]
"""One time step of the surrogate protocol: ``(u (B, C), state) -> (y (B, O), state)``."""

FAMILIES = ("rnn", "lstm", "gru")
INITS = ("gaussian", "uniform", "orthogonal")
NORMS = ("spectral", "frobenius")
LOSSES = ("final", "sum")
TABLE_LAGS = (1, 10, 50, 100)

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


@dataclass(frozen=True)
class GradientProfile:
    """Norms against the lag ``T - k``; column ``n`` of each array is lag ``n`` (0 .. T).

    ``jacobian[b, n] = ||ds_T/ds_{T-n}||`` and ``gradient[b, n] = ||dL/ds_{T-n}||``
    for sequence b; ``jacobian_norm`` and ``gradient_norm`` are their geometric
    means over the sequences.
    """

    label: str
    jacobian: Array
    gradient: Array
    spectral_radius: float
    norm: str
    loss: str
    state: str

    @property
    def lags(self) -> np.ndarray:
        return np.arange(self.jacobian.shape[1])

    @property
    def jacobian_norm(self) -> Array:
        return _geometric_mean(self.jacobian)

    @property
    def gradient_norm(self) -> Array:
        return _geometric_mean(self.gradient)

    def rate(self, which: str = "jacobian", start: int | None = None,
             stop: int | None = None) -> float:
        """Fitted growth factor per step, ``exp(slope)`` of log norm against lag.

        The fit is over lags ``start .. stop`` (default: the second half, past
        the transients), skipping zeros and non-finite values; nan if fewer
        than two points remain. Below 1 the norm vanishes, above 1 it explodes.
        """
        norms = {"jacobian": self.jacobian_norm, "gradient": self.gradient_norm}[which]
        T = len(norms) - 1
        lo, hi = T // 2 if start is None else start, T if stop is None else stop
        lags = self.lags[lo:hi + 1]
        values = norms[lo:hi + 1]
        keep = np.isfinite(values) & (values > 0)
        if np.count_nonzero(keep) < 2:
            return float("nan")
        slope = np.polyfit(lags[keep], np.log(values[keep]), 1)[0]
        return float(np.exp(slope))

    def table(self, lags: Sequence[int] = TABLE_LAGS) -> dict[str, float]:
        """The numbers to quote: both norms at the given lags (those <= T) and both rates."""
        row = {"spectral_radius": self.spectral_radius}
        for name, norms in (("jacobian", self.jacobian_norm), ("gradient", self.gradient_norm)):
            row.update({f"{name}_lag_{n}": float(norms[n]) for n in lags if n < len(norms)})
            row[f"{name}_rate"] = self.rate(name)
        return row

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (non-finite numbers become None)."""
        return _finite_or_none({
            "label": self.label, "norm": self.norm, "loss": self.loss, "state": self.state,
            "table": self.table(), "jacobian_norm": self.jacobian_norm.tolist(),
            "gradient_norm": self.gradient_norm.tolist(),
            "jacobian_per_sequence": self.jacobian.tolist(),
            "gradient_per_sequence": self.gradient.tolist(),
        })


def gradient_profile(probe: Probe, loss: str = "final", norm: str = "spectral") -> GradientProfile:
    """Measure ``||ds_T/ds_k||`` and ``||dL/ds_k||`` for every ``k`` on ``probe``'s sequences.

    ``L = sum_b 1/2 ||y_T - target_T||^2`` with ``loss="final"``, or summed
    over all steps with ``loss="sum"``. The Jacobian products are built from
    the step Jacobians as in the notes; the gradients come from autograd.
    """
    check_choice(loss, LOSSES, "loss")
    check_choice(norm, NORMS, "norm")
    B, T = probe.inputs.shape[:2]
    S = sum(s.shape[-1] for s in probe.state0)
    with torch.enable_grad():
        states, gradient = _backpropagate(probe, loss)
        ord_ = 2 if norm == "spectral" else "fro"
        jacobian = np.empty((B, T + 1))
        product = torch.eye(S, dtype=torch.float64).expand(B, S, S)
        jacobian[:, 0] = torch.linalg.matrix_norm(product, ord=ord_).numpy()
        for k in range(T, 0, -1):
            # ds_T/ds_{k-1} = ds_T/ds_k . ds_k/ds_{k-1}
            product = product @ step_jacobian(probe.step, probe.inputs[:, k - 1], states[k - 1])
            jacobian[:, T - k + 1] = torch.linalg.matrix_norm(product, ord=ord_).numpy()
    return GradientProfile(probe.label, jacobian, gradient[:, ::-1].copy(),
                           probe.spectral_radius, norm, loss, probe.state)


def step_jacobian(step: Step, u: Tensor, state: State) -> Tensor:
    """``ds_{i+1}/ds_i`` of one step at ``state``, shape ``(B, S, S)``, S the state size.

    Autograd gives vector-Jacobian products; running the step on S copies of
    the batch and backpropagating the unit vector ``e_j`` through copy j gives
    row j of every sequence's Jacobian in one backward pass.
    """
    B, sizes = u.shape[0], [s.shape[-1] for s in state]
    S = sum(sizes)
    copies = torch.cat(state, dim=-1).detach().repeat(S, 1).requires_grad_(True)  # row j*B + b
    _, new = step(u.repeat(S, 1), tuple(copies.split(sizes, dim=-1)))
    unit = torch.eye(S, dtype=copies.dtype).repeat_interleave(B, dim=0)
    (rows,) = torch.autograd.grad(torch.cat(new, dim=-1), copies, unit)
    return rows.view(S, B, S).transpose(0, 1)


def _unroll(step: Step, state0: State, inputs: Tensor) -> tuple[list[State], Tensor]:
    """The states ``s_0 .. s_T`` and the outputs ``(B, T, O)``."""
    states, ys = [state0], []
    for i in range(inputs.shape[1]):
        y, state = step(inputs[:, i], states[-1])
        states.append(state)
        ys.append(y)
    return states, torch.stack(ys, dim=1)


def _backpropagate(probe: Probe, loss: str) -> tuple[list[State], Array]:
    """The states ``s_0 .. s_T`` (detached) and ``||dL/ds_k||``, shape (B, T + 1), by BPTT."""
    state0 = tuple(s.detach().requires_grad_(True) for s in probe.state0)
    states, y = _unroll(probe.step, state0, probe.inputs)
    per_step = 0.5 * (y - probe.targets).pow(2).sum(dim=-1)
    total = per_step[:, -1].sum() if loss == "final" else per_step.sum()
    parts = [s for state in states for s in state]
    grads = torch.autograd.grad(total, parts, materialize_grads=True)
    n = len(state0)
    per_state = [torch.cat(grads[i:i + n], dim=-1) for i in range(0, len(grads), n)]
    norms = torch.linalg.vector_norm(torch.stack(per_state, dim=1), dim=-1).numpy()
    return [tuple(s.detach() for s in state) for state in states], norms


# -- the networks ---------------------------------------------------------------------------

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
    """The notes' inputs ``u_i = (x_i, F_i, eta)`` and targets ``v_{i+1}`` for ``i < length``.

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
    """
    check_choice(family, FAMILIES, "model")
    if hidden < 1:
        raise SpecError(f"hidden must be >= 1, got {hidden}")
    if forget_bias is not None and family != "lstm":
        raise SpecError(f"forget_bias applies to the lstm only, not to {family!r}")
    if spectral_radius is not None and family != "rnn":
        raise SpecError(f"spectral_radius applies to the rnn only, not to {family!r}")
    check_memory(family, hidden, data.n, length)
    inputs, targets = oscillator_sequences(data, length, input_scale)
    parts = [family]
    if family == "rnn":
        parts += [] if spectral_radius is None else [f"rho={spectral_radius:g}"]
        parts.append(init)
    if forget_bias is not None:
        parts.append(f"forget_bias={forget_bias:g}")
    if input_scale != 1:
        parts.append(f"inputs*{input_scale:g}")
    label = " ".join(parts)
    if family == "rnn":
        params = rnn_params(inputs.shape[-1], hidden, 1, spectral_radius, init, seed)
        return vanilla_probe(params, inputs, targets, label=label)
    return _gated_probe(family, hidden, seed, forget_bias, inputs, targets, label)


def _gated_probe(family: str, hidden: int, seed: int, forget_bias: float | None,
                 inputs: Tensor, targets: Tensor, label: str) -> Probe:
    """A fresh ``nn.LSTMCell`` or ``nn.GRUCell`` with a linear readout, from zero states."""
    lstm = family == "lstm"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        cell = (nn.LSTMCell if lstm else nn.GRUCell)(inputs.shape[-1], hidden,
                                                     dtype=torch.float64)
        head = nn.Linear(hidden, 1, dtype=torch.float64)
    if forget_bias is not None:
        with torch.no_grad():  # gate order i, f, g, o; the two biases add up
            cell.bias_ih[hidden:2 * hidden] = forget_bias
            cell.bias_hh[hidden:2 * hidden] = 0.0

    def step(u: Tensor, state: State) -> tuple[Tensor, State]:
        state = cell(u, state) if lstm else (cell(u, state[0]),)
        return head(state[0]), state

    zero = torch.zeros(inputs.shape[0], hidden, dtype=torch.float64)
    candidate = cell.weight_hh.chunk(4 if lstm else 3)[2]
    return Probe(label, step, (zero, zero) if lstm else (zero,), inputs, targets,
                 radius_of(candidate), "(h, c)" if lstm else "h")


def surrogate_probe(model: Any, data: Trajectories, length: int, label: str | None = None
                    ) -> Probe:
    """A trained surrogate (:func:`odernn.learn.models.load_surrogate`) on the first steps of
    ``data``.

    The model reads what it was trained on (its layout's normalised inputs,
    teacher-forced with the true states) from its learned initial state, and
    the loss is its normalised one-step target error. A float64 copy is
    diagnosed; the model itself is left as it is.
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
        targets = codec.target(z[:, :-1], z[:, 1:])
    names = "(h, c)" if len(state0) == 2 else "h"
    return Probe(label or model.family, model.step, state0, inputs, targets,
                 radius_of(_recurrent_matrix(model)), names)


def _recurrent_matrix(model: Any) -> Tensor:
    """W of a vanilla RNN; the candidate block for the LSTM and the GRU."""
    if model.family == "rnn":
        return model.W
    return model.cell.fused.weight_hh_l0.chunk(4 if model.family == "lstm" else 3)[2]


# -- output ---------------------------------------------------------------------------------

def format_table(profiles: Sequence[GradientProfile], lags: Sequence[int] = TABLE_LAGS) -> str:
    """A text table: both norms at ``lags`` and the fitted rates per step, one row per profile."""
    T = min(len(p.lags) for p in profiles) - 1
    lags = [n for n in lags if n <= T]
    label_width = max(13, *(len(p.label) for p in profiles))
    cells = ["radius", *(f"J({n})" for n in lags), "J rate", *(f"dL({n})" for n in lags),
             "dL rate"]
    lines = [f"{'configuration':<{label_width}}" + "".join(f"{c:>10}" for c in cells)]
    for p in profiles:
        row = p.table(lags)
        values = [row["spectral_radius"], *(row[f"jacobian_lag_{n}"] for n in lags),
                  row["jacobian_rate"], *(row[f"gradient_lag_{n}"] for n in lags),
                  row["gradient_rate"]]
        lines.append(f"{p.label:<{label_width}}" + "".join(f"{v:>10.3g}" for v in values))
    lines.append(f"J(n) = ||ds_T/ds_(T-n)|| ({profiles[0].norm} norm), dL(n) = ||dL/ds_(T-n)|| "
                 f"(loss: {profiles[0].loss}), s the carried state (h; (h, c) for an LSTM);\n"
                 f"rate = fitted factor per step over lags T/2..T, T = {T}; "
                 "radius = spectral radius of the recurrent matrix (candidate block if gated)")
    return "\n".join(lines)


def figure(profiles: Sequence[GradientProfile]) -> Figure:
    """The vanishing/exploding picture as a standalone figure (no pyplot state)."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    plot_profiles(profiles, fig.subplots(1, 2, sharex=True))
    return fig


def plot_profiles(profiles: Sequence[GradientProfile], axes: Sequence[Axes]) -> None:
    """Both norms against the lag on two axes, log scale, one curve per profile."""
    for p in profiles:
        axes[0].semilogy(p.lags, p.jacobian_norm, label=p.label)
        axes[1].semilogy(p.lags, p.gradient_norm, label=p.label)
    axes[0].set(xlabel="lag T - k (steps)", ylabel=f"||ds_T/ds_k|| ({profiles[0].norm})",
                title="product of step Jacobians")
    axes[1].set(xlabel="lag T - k (steps)", ylabel="||dL/ds_k||",
                title=f"gradient reaching step k (loss: {profiles[0].loss})")
    for ax in axes:
        ax.axhline(1.0, color="k", lw=0.6)
        ax.yaxis.set_major_locator(LogLocator(numticks=8))  # decades apart: few labels
        ax.yaxis.set_minor_locator(NullLocator())
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize="small")


# -- helpers --------------------------------------------------------------------------------

def _geometric_mean(a: Array) -> Array:
    with np.errstate(divide="ignore"):
        return np.exp(np.mean(np.log(a), axis=0))




def _check_length(data: Trajectories, length: int) -> None:
    if length < 1:
        raise SpecError(f"length must be >= 1 step, got {length}")
    if data.n_steps < length + 1:
        raise DataError(f"the data have {data.n_steps} time points; a length of {length} "
                        f"steps needs {length + 1}")


def _float64(a: Array | Tensor) -> Tensor:
    return torch.as_tensor(a, dtype=torch.float64)


def _finite_or_none(obj: Any) -> Any:
    """JSON has no inf or nan: replace them by None, recursively."""
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite_or_none(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
