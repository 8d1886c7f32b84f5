"""Vanishing and exploding gradients, measured on recurrent networks.

Backpropagation through time carries the error derivative back one step at a
time, multiplying it by the Jacobian of each step (the notes)::

    dh_t/dh_k = prod_{i=k+1}^{t} dh_i/dh_{i-1}

so the size of this product as the lag ``t - k`` grows decides whether the
loss at ``t`` can still teach the network anything about step ``k``: it
shrinks exponentially (vanishing) or grows exponentially (exploding). For a
linear RNN the product is ``W^(t-k)`` and its rate per step,
``||W^n||^(1/n)``, tends to the spectral radius of ``W``.

A probe (:class:`odernn.notes.probes.Probe`) is a network plus the sequences it
runs on; :func:`gradient_profile` measures, against the lag from the last step ``T``:

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

The table and figure of the results: :mod:`odernn.notes.diagnostics_output`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from odernn.checks import check_choice
from odernn.notes.probes import Probe, State, Step
from odernn.types import Array

NORMS = ("spectral", "frobenius")
LOSSES = ("final", "sum")
TABLE_LAGS = (1, 10, 50, 100)
"""Lags whose norms :meth:`GradientProfile.table` quotes."""


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


def _unroll(step: Step, state0: State, inputs: Tensor) -> tuple[list[State], list[State], Tensor]:
    """The states ``s_0 .. s_T``, what each step was fed (``s_k`` with its parts after ``h``
    as aliases: only the next step reads those), and the outputs ``(B, T, O)``."""
    states, fed, ys = [state0], [], []
    for i in range(inputs.shape[1]):
        fed.append((states[-1][0], *(s.view_as(s) for s in states[-1][1:])))
        y, state = step(inputs[:, i], fed[-1])
        states.append(state)
        ys.append(y)
    return states, fed, torch.stack(ys, dim=1)


def _backpropagate(probe: Probe, loss: str) -> tuple[list[State], Array]:
    """The states ``s_0 .. s_T`` (detached) and ``||dL/ds_k||``, shape (B, T + 1), by BPTT.

    ``dL/ds_k`` is L's derivative in ``s_k = (h_k, ...)`` as a variable of its own: the
    readout reads ``h`` alone, so an LSTM's ``c_k`` reaches L through the next step only. A
    step computes its ``h_k`` from its ``c_k``, so autograd's gradient of the tensor ``c_k``
    also held that path (up to 18% off the Jacobian product's; a nonzero ``c_T`` part of a
    loss on ``y_T`` alone): the parts after ``h`` are differentiated as the next step was
    fed them, and are 0 at ``T``."""
    state0 = tuple(s.detach().requires_grad_(True) for s in probe.state0)
    states, fed, y = _unroll(probe.step, state0, probe.inputs)
    per_step = 0.5 * (y - probe.targets).pow(2).sum(dim=-1)
    total = per_step[:, -1].sum() if loss == "final" else per_step.sum()
    parts = [s[0] for s in states] + [a for into in fed for a in into[1:]]
    grads = torch.autograd.grad(total, parts, materialize_grads=True)
    heads, others, m = grads[:len(states)], grads[len(states):], len(state0) - 1
    rest = [others[k * m:(k + 1) * m] for k in range(len(fed))]
    rest.append(tuple(torch.zeros_like(s) for s in states[-1][1:]))  # nothing reads c_T
    per_state = [torch.cat((h, *r), dim=-1) for h, r in zip(heads, rest, strict=True)]
    norms = torch.linalg.vector_norm(torch.stack(per_state, dim=1), dim=-1).numpy()
    return [tuple(s.detach() for s in state) for state in states], norms


def _geometric_mean(a: Array) -> Array:
    with np.errstate(divide="ignore"):
        return np.exp(np.mean(np.log(a), axis=0))


def _finite_or_none(obj: Any) -> Any:
    """JSON has no inf or nan: replace them by None, recursively."""
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite_or_none(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
