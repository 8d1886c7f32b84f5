"""Backpropagation through time by hand: the lecture notes' equations in numpy.

This is a float64 reference, written to be read beside the notes, not to be
fast. The network is the notes' "Mathematical setup" (``W_hx = U``,
``W_hh = W``, output weights ``V``)::

    a_t = U x_t + W h_{t-1} + b        (net input)
    h_t = sigma_h(a_t)                 (activation, tanh by default)
    y_t = V h_t + c                    (output; sigma_y is the identity: regression)

with the loss ``L = sum_t L_t``, ``L_t = 1/2 ||y_t - target_t||^2``, summed
over the sequences of a batch too. Arrays count time ``t = 0 .. T-1`` (the
notes count ``1 .. T``); ``h0`` is the state before the first step.

"The forward pass builds up a stack of the activities of all the units at each
time step" (:func:`forward`, :class:`Forward`); "the backward pass peels
activities off the stack to compute the error derivatives at each time step"
and "after the backward pass we add together the derivatives at all the
different times for each weight" (:func:`backward`). The backward pass is
linear in the output error derivatives: "the forward pass determines the slope
of the linear function used for backpropagating through each neuron", which is
why :class:`Forward` keeps ``slope = sigma_h'(a_t)``.

Inputs are ``x (T, C)`` for one sequence or ``(B, T, C)`` for a batch; every
array of :class:`Forward` and :class:`Gradients` keeps that leading layout.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from odernn import budget
from odernn.errors import SpecError
from odernn.types import Array, Seed

PARAM_NAMES = ("U", "W", "V", "b", "c")

# name -> (sigma_h(a), sigma_h'(a) written with a and h = sigma_h(a))
_Activation = tuple[Callable[[Array], Array], Callable[[Array, Array], Array]]
ACTIVATIONS: dict[str, _Activation] = {
    "tanh": (np.tanh, lambda a, h: 1.0 - h**2),
    "sigmoid": (expit, lambda a, h: h * (1.0 - h)),
    "relu": (lambda a: np.maximum(a, 0.0), lambda a, h: (a > 0).astype(np.float64)),
    "identity": (lambda a: a, lambda a, h: np.ones_like(a)),
}


@dataclass(frozen=True)
class RNNParams:
    """The notes' weights: ``U (H, C)``, ``W (H, H)``, ``V (O, H)``, ``b (H,)``, ``c (O,)``."""

    U: Array
    W: Array
    V: Array
    b: Array
    c: Array

    def __post_init__(self) -> None:
        for name in PARAM_NAMES:
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        H, C = self.U.shape if self.U.ndim == 2 else (-1, -1)
        O = self.V.shape[0] if self.V.ndim == 2 else -1
        expected = {"U": (H, C), "W": (H, H), "V": (O, H), "b": (H,), "c": (O,)}
        for name, shape in expected.items():
            if getattr(self, name).shape != shape or min(shape) < 1:
                raise SpecError(
                    f"RNN weights: {name} has shape {getattr(self, name).shape}, expected {shape} "
                    f"for U (H, C), W (H, H), V (O, H), b (H,), c (O,)"
                )

    @property
    def n_in(self) -> int:
        return self.U.shape[1]

    @property
    def n_hidden(self) -> int:
        return self.W.shape[0]

    @property
    def n_out(self) -> int:
        return self.V.shape[0]

    @classmethod
    def random(
        cls,
        n_in: int,
        n_hidden: int,
        n_out: int,
        seed: Seed = 0,
        spectral_radius: float | None = None,
    ) -> RNNParams:
        """Gaussian weights with variance 1/fan-in and zero biases.

        With ``spectral_radius``, W is rescaled so that its largest eigenvalue
        modulus is that value (the echo-state recipe): the radius sets how fast
        ``dh_t/dh_k`` grows or decays with ``t - k`` in a linearised network.
        """
        if min(n_in, n_hidden, n_out) < 1:
            raise SpecError(f"RNN sizes must be >= 1, got {n_in=}, {n_hidden=}, {n_out=}")
        weights = (n_in + n_hidden + n_out) * n_hidden * budget.FLOAT64
        budget.check(f"RNNParams.random: {n_in} x {n_hidden} x {n_out}", weights + (
            0 if spectral_radius is None else budget.dense_eigvals_bytes(n_hidden)),
            "use a smaller network")
        rng = np.random.default_rng(seed)
        U = rng.normal(0.0, 1.0 / np.sqrt(n_in), (n_hidden, n_in))
        W = rng.normal(0.0, 1.0 / np.sqrt(n_hidden), (n_hidden, n_hidden))
        V = rng.normal(0.0, 1.0 / np.sqrt(n_hidden), (n_out, n_hidden))
        if spectral_radius is not None:
            if not spectral_radius >= 0:
                raise SpecError(f"spectral_radius must be >= 0, got {spectral_radius}")
            W *= spectral_radius / np.max(np.abs(np.linalg.eigvals(W)))
        return cls(U, W, V, np.zeros(n_hidden), np.zeros(n_out))


@dataclass(frozen=True)
class Forward:
    """The stack of activities, built by :func:`forward`.

    ``a``, ``h`` and ``slope = sigma_h'(a)`` have shape (..., T, H), ``y``
    (..., T, O); ``x`` and ``h0`` are the inputs the stack was built from.
    """

    x: Array
    h0: Array
    a: Array
    h: Array
    slope: Array
    y: Array
    activation: str


@dataclass(frozen=True)
class Gradients:
    """``dL/d`` every weight (summed over time and batch), ``grad_h[..., t, :] = dL/dh_t``
    (the total derivative, through all later steps) and ``dh0 = dL/dh0``."""

    dU: Array
    dW: Array
    dV: Array
    db: Array
    dc: Array
    grad_h: Array
    dh0: Array


def forward(
    params: RNNParams, x: Array, h0: Array | None = None, activation: str = "tanh"
) -> Forward:
    """Run the network over ``x`` (T, C) or (B, T, C), keeping every activity."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim not in (2, 3) or x.shape[-1] != params.n_in or x.shape[-2] < 1:
        raise SpecError(
            f"x has shape {x.shape}, expected (T, {params.n_in}) or (B, T, {params.n_in}), T >= 1"
        )
    if activation not in ACTIVATIONS:
        raise SpecError(f"unknown activation {activation!r}, expected one of {list(ACTIVATIONS)}")
    sigma, sigma_prime = ACTIVATIONS[activation]
    state_shape = x.shape[:-2] + (params.n_hidden,)
    h0 = np.zeros(state_shape) if h0 is None else np.asarray(h0, dtype=np.float64)
    if h0.shape != state_shape:
        raise SpecError(f"h0 has shape {h0.shape}, expected {state_shape}")

    U, W, V, b, c = params.U, params.W, params.V, params.b, params.c
    a = np.empty(x.shape[:-1] + (params.n_hidden,))
    h = np.empty_like(a)
    h_prev = h0
    for t in range(x.shape[-2]):
        # a_t = U x_t + W h_{t-1} + b   (row vectors: x_t @ U^T)
        a[..., t, :] = x[..., t, :] @ U.T + h_prev @ W.T + b
        # h_t = sigma_h(a_t)
        h[..., t, :] = sigma(a[..., t, :])
        h_prev = h[..., t, :]
    # y_t = V h_t + c
    y = h @ V.T + c
    return Forward(x, h0, a, h, sigma_prime(a, h), y, activation)


def backward(params: RNNParams, fwd: Forward, grad_y: Array) -> Gradients:
    """Backpropagate the output error derivatives ``grad_y[..., t, :] = dL/dy_t`` through time.

    The notes' recursion, from the last step ``tau`` back to the first::

        grad_h_tau = V^T grad_y_tau
        grad_h_t   = (dh_{t+1}/dh_t)^T grad_h_{t+1} + V^T grad_y_t,
        dh_{t+1}/dh_t = diag(sigma_h'(a_{t+1})) W        (= diag(1 - h_{t+1}^2) W for tanh)

    then the sums over t: ``dc = sum_t grad_y_t``, ``dV = sum_t grad_y_t h_t^T``,
    and with ``grad_a_t = diag(sigma_h'(a_t)) grad_h_t``: ``db = sum_t grad_a_t``,
    ``dW = sum_t grad_a_t h_{t-1}^T``, ``dU = sum_t grad_a_t x_t^T``.
    """
    grad_y = np.asarray(grad_y, dtype=np.float64)
    if grad_y.shape != fwd.y.shape:
        raise SpecError(f"grad_y has shape {grad_y.shape}, expected the outputs' {fwd.y.shape}")
    W, V = params.W, params.V
    T = fwd.h.shape[-2]

    grad_h = np.empty_like(fwd.h)
    # grad_h_tau = V^T grad_y_tau   (row vectors: grad_y @ V)
    grad_h[..., T - 1, :] = grad_y[..., T - 1, :] @ V
    for t in range(T - 2, -1, -1):
        # (dh_{t+1}/dh_t)^T grad_h_{t+1} = W^T diag(sigma_h'(a_{t+1})) grad_h_{t+1}
        through_time = (fwd.slope[..., t + 1, :] * grad_h[..., t + 1, :]) @ W
        grad_h[..., t, :] = through_time + grad_y[..., t, :] @ V

    grad_a = fwd.slope * grad_h  # (dh_t/da_t)^T grad_h_t
    h_prev = np.concatenate([fwd.h0[..., None, :], fwd.h[..., :-1, :]], axis=-2)

    def sum_over_time(grad: Array, activity: Array) -> Array:
        """sum_t grad_t activity_t^T, over the batch too (rows are (sequence, t) pairs)."""
        return grad.reshape(-1, grad.shape[-1]).T @ activity.reshape(-1, activity.shape[-1])

    return Gradients(
        dU=sum_over_time(grad_a, fwd.x),
        dW=sum_over_time(grad_a, h_prev),
        dV=sum_over_time(grad_y, fwd.h),
        db=grad_a.reshape(-1, grad_a.shape[-1]).sum(axis=0),
        dc=grad_y.reshape(-1, grad_y.shape[-1]).sum(axis=0),
        grad_h=grad_h,
        dh0=grad_a[..., 0, :] @ W,
    )


def loss_and_gradients(
    params: RNNParams,
    x: Array,
    target: Array,
    h0: Array | None = None,
    activation: str = "tanh",
) -> tuple[float, Gradients]:
    """``L = sum_t 1/2 ||y_t - target_t||^2`` (summed over the batch) and its gradients.

    For this loss ``dL/dy_t = y_t - target_t``, the error derivatives fed to
    :func:`backward`.
    """
    fwd = forward(params, x, h0, activation)
    target = np.asarray(target, dtype=np.float64)
    if target.shape != fwd.y.shape:
        raise SpecError(f"target has shape {target.shape}, expected the outputs' {fwd.y.shape}")
    error = fwd.y - target
    return 0.5 * float(np.sum(error**2)), backward(params, fwd, error)


def step_jacobians(params: RNNParams, fwd: Forward) -> Array:
    """``dh_t/dh_{t-1} = diag(sigma_h'(a_t)) W`` for every step, shape (..., T, H, H).

    Entry 0 is the Jacobian with respect to the initial state ``h0``.
    """
    return fwd.slope[..., :, None] * params.W


def jacobian_products(params: RNNParams, fwd: Forward, t: int = -1) -> Array:
    """``dh_t/dh_k`` for every ``k = 0 .. t``, shape (..., t + 1, H, H).

    The notes' product of adjacent-step Jacobians,
    ``dh_t/dh_k = prod_{i=k+1}^{t} dh_i/dh_{i-1} = D_t D_{t-1} ... D_{k+1}``
    (the identity for ``k = t``), built from ``k = t`` downwards. Its size with
    ``t - k`` is what makes gradients vanish or explode. ``t`` counts like a
    Python index (-1 is the last step).
    """
    T = fwd.h.shape[-2]
    if not -T <= t < T:
        raise SpecError(f"t = {t} is outside a sequence of {T} steps")
    t %= T
    H, sequences = params.n_hidden, math.prod(fwd.h.shape[:-2])
    budget.check(f"jacobian_products: {sequences} sequences x {T} steps, hidden {H}",
                 (T + t + 1) * sequences * H * H * budget.FLOAT64,
                 "use fewer or shorter sequences, or an earlier t")  # D and the products
    D = step_jacobians(params, fwd)
    out = np.empty(D.shape[:-3] + (t + 1,) + D.shape[-2:])
    product = np.broadcast_to(np.eye(params.n_hidden), D.shape[:-3] + D.shape[-2:])
    out[..., t, :, :] = product
    for k in range(t - 1, -1, -1):
        product = product @ D[..., k + 1, :, :]
        out[..., k, :, :] = product
    return out
