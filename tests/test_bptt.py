"""The hand-written BPTT of odernn.notes.bptt against torch autograd, finite differences and
the notes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from odernn.errors import SpecError
from odernn.notes.bptt import (
    ACTIVATIONS,
    PARAM_NAMES,
    RNNParams,
    backward,
    forward,
    jacobian_products,
    loss_and_gradients,
    step_jacobians,
)

torch.set_num_threads(1)

TORCH_ACTIVATIONS = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "identity": lambda a: a,
}


def make_problem(batch: tuple[int, ...] = (3,), T: int = 7, C: int = 3, H: int = 5, O: int = 2):
    """Random weights (non-zero biases), inputs, initial state and targets."""
    rng = np.random.default_rng(1)
    params = RNNParams.random(C, H, O, seed=2)
    params = dataclasses.replace(params, b=rng.normal(0, 0.3, H), c=rng.normal(0, 0.3, O))
    x = rng.normal(size=batch + (T, C))
    h0 = rng.normal(0, 0.5, size=batch + (H,))
    target = rng.normal(size=batch + (T, O))
    return params, x, h0, target


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def torch_loss_and_grads(params, x, h0, target, activation):
    """An independent autograd reference of the same network and loss."""
    p = {n: torch.tensor(getattr(params, n), requires_grad=True) for n in PARAM_NAMES}
    h = torch.tensor(h0, requires_grad=True)
    xs = torch.tensor(x)
    sigma = TORCH_ACTIVATIONS[activation]
    loss = torch.zeros((), dtype=torch.float64)
    for t in range(xs.shape[-2]):
        h = sigma(xs[..., t, :] @ p["U"].T + h @ p["W"].T + p["b"])
        y = h @ p["V"].T + p["c"]
        loss = loss + 0.5 * ((y - torch.tensor(target[..., t, :])) ** 2).sum()
    loss.backward()
    return loss.item(), {n: p[n].grad.numpy() for n in PARAM_NAMES}


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("batch", [(), (3,)], ids=["single", "batched"])
def test_gradients_equal_torch_autograd(activation, batch):
    params, x, h0, target = make_problem(batch)
    loss, grads = loss_and_gradients(params, x, target, h0, activation)
    ref_loss, ref = torch_loss_and_grads(params, x, h0, target, activation)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for name in PARAM_NAMES:
        assert rel_err(getattr(grads, "d" + name), ref[name]) < 1e-10, name


def test_forward_equals_torch_nn_rnn():
    params, x, h0, _ = make_problem((2,))
    rnn = torch.nn.RNN(params.n_in, params.n_hidden, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.tensor(params.U))
        rnn.weight_hh_l0.copy_(torch.tensor(params.W))
        rnn.bias_ih_l0.copy_(torch.tensor(params.b))
        rnn.bias_hh_l0.zero_()
        h, _ = rnn(torch.tensor(x), torch.tensor(h0)[None])
    fwd = forward(params, x, h0)
    assert rel_err(fwd.h, h.numpy()) < 1e-13
    assert rel_err(fwd.y, h.numpy() @ params.V.T + params.c) < 1e-13


def test_gradients_equal_central_differences():
    params, x, h0, target = make_problem((2,), T=6)
    _, grads = loss_and_gradients(params, x, target, h0)
    eps = 1e-6

    def loss_at(**changed):
        return loss_and_gradients(dataclasses.replace(params, **changed), x, target, h0)[0]

    for name in PARAM_NAMES:
        weights = getattr(params, name)
        numeric = np.zeros_like(weights)
        for i in np.ndindex(weights.shape):
            plus, minus = weights.copy(), weights.copy()
            plus[i] += eps
            minus[i] -= eps
            numeric[i] = (loss_at(**{name: plus}) - loss_at(**{name: minus})) / (2 * eps)
        assert rel_err(getattr(grads, "d" + name), numeric) < 1e-6, name

    numeric_h0 = np.zeros_like(h0)
    for i in np.ndindex(h0.shape):
        plus, minus = h0.copy(), h0.copy()
        plus[i] += eps
        minus[i] -= eps
        numeric_h0[i] = (
            loss_and_gradients(params, x, target, plus)[0]
            - loss_and_gradients(params, x, target, minus)[0]
        ) / (2 * eps)
    assert rel_err(grads.dh0, numeric_h0) < 1e-6


def test_grad_h_is_the_total_derivative_of_the_loss():
    """grad_h_t = dL/dh_t through all later steps: perturb h_t and rerun the rest."""
    params, x, h0, target = make_problem((), T=6)
    fwd = forward(params, x, h0)
    grads = backward(params, fwd, fwd.y - target)
    t, eps = 2, 1e-6

    def loss_from(h_t):
        """The part of L that depends on h_t: L_t and every later L_i."""
        rest = forward(params, x[t + 1 :], h_t)
        y = np.vstack([h_t @ params.V.T + params.c, rest.y])
        return 0.5 * np.sum((y - target[t:]) ** 2)

    numeric = np.array(
        [
            (loss_from(fwd.h[t] + eps * e) - loss_from(fwd.h[t] - eps * e)) / (2 * eps)
            for e in np.eye(params.n_hidden)
        ]
    )
    assert rel_err(grads.grad_h[t], numeric) < 1e-6


def test_backward_pass_is_linear():
    """Notes: "If you double the error derivatives at the final layer, all the error
    derivatives will double" -- exactly, since doubling is exact in floating point."""
    params, x, h0, target = make_problem((3,))
    fwd = forward(params, x, h0)
    g1 = fwd.y - target
    g2 = np.random.default_rng(5).normal(size=g1.shape)
    once, twice = backward(params, fwd, g1), backward(params, fwd, 2.0 * g1)
    other, summed = backward(params, fwd, g2), backward(params, fwd, g1 + 3.7 * g2)
    for field in ("dU", "dW", "dV", "db", "dc", "grad_h", "dh0"):
        np.testing.assert_array_equal(getattr(twice, field), 2.0 * getattr(once, field))
        expected = getattr(once, field) + 3.7 * getattr(other, field)
        np.testing.assert_allclose(getattr(summed, field), expected, rtol=1e-12, atol=1e-13)


def test_weight_gradient_equals_the_notes_sum_over_jacobian_products():
    """dL/dW = sum_t sum_{k<=t} dL_t/dy_t dy_t/dh_t dh_t/dh_k dh_k/dW (the notes' formula)."""
    params, x, h0, target = make_problem((), T=6)
    fwd = forward(params, x, h0)
    grad_y = fwd.y - target
    h_prev = np.vstack([h0, fwd.h[:-1]])
    dW = np.zeros_like(params.W)
    for t in range(x.shape[0]):
        J = jacobian_products(params, fwd, t)  # J[k] = dh_t/dh_k
        grad_h_t = params.V.T @ grad_y[t]  # (dy_t/dh_t)^T dL_t/dy_t
        for k in range(t + 1):
            # dh_k/dW_ij = slope_k,i h_{k-1},j: the immediate dependence, h_{k-1} held fixed
            dW += np.outer(fwd.slope[k] * (J[k].T @ grad_h_t), h_prev[k])
    assert rel_err(backward(params, fwd, grad_y).dW, dW) < 1e-12


@pytest.mark.parametrize("batch", [(), (2,)], ids=["single", "batched"])
def test_jacobian_products_equal_autograd(batch):
    params, x, h0, _ = make_problem(batch, T=6)
    fwd = forward(params, x, h0)
    U, W, b = (torch.tensor(getattr(params, n)) for n in ("U", "W", "b"))

    def h_t_from(h_k, k, t, index):
        h = h_k
        for i in range(k + 1, t + 1):
            h = torch.tanh(U @ torch.tensor(x[index + (i,)]) + W @ h + b)
        return h

    for t in (5, 3):
        J = jacobian_products(params, fwd, t)
        assert J.shape == batch + (t + 1, params.n_hidden, params.n_hidden)
        for index in np.ndindex(batch):
            for k in range(t + 1):
                ref = torch.autograd.functional.jacobian(
                    lambda h, k=k, t=t, index=index: h_t_from(h, k, t, index),
                    torch.tensor(fwd.h[index + (k,)]),
                )
                np.testing.assert_allclose(J[index + (k,)], ref.numpy(), rtol=1e-12, atol=1e-14)


def test_jacobian_products_of_a_linear_rnn_are_powers_of_W():
    params, x, h0, _ = make_problem((), T=9)
    fwd = forward(params, x, h0, activation="identity")
    J = jacobian_products(params, fwd)
    for k in range(9):
        np.testing.assert_allclose(J[k], np.linalg.matrix_power(params.W, 8 - k), rtol=1e-12)
    D = step_jacobians(params, fwd)
    np.testing.assert_array_equal(D, np.broadcast_to(params.W, (9, 5, 5)))


def test_jacobian_growth_rate_tends_to_the_spectral_radius():
    """For a linear map ||W^n||^(1/n) -> rho(W) (Gelfand), even when a non-normal W
    with rho < 1 first amplifies: decay rates, not monotonic decay, are what rho predicts."""
    rho = 0.9
    W = np.array([[rho, 4.0], [0.0, 0.7]])  # eigenvalues 0.9 and 0.7, strongly non-normal
    params = RNNParams(np.ones((2, 1)), W, np.ones((1, 2)), np.zeros(2), np.zeros(1))
    T = 801
    fwd = forward(params, np.zeros((T, 1)), activation="identity")
    J = jacobian_products(params, fwd)  # J[k] = dh_T/dh_k = W^(T-1-k)
    norms = np.array([np.linalg.norm(J[T - 1 - n], 2) for n in range(1, T)])
    assert norms[:10].max() > 3.0  # transient growth: ||W^n|| > 1 although rho < 1
    rate = norms ** (1.0 / np.arange(1, T))
    gaps = np.abs(rate[[9, 49, 199, 799]] - rho)
    assert np.all(np.diff(gaps) < 0)
    assert gaps[0] > 0.2
    assert gaps[-1] < 5e-3


def test_random_params_and_spectral_radius():
    p = RNNParams.random(3, 40, 2, seed=7, spectral_radius=0.8)
    assert (p.n_in, p.n_hidden, p.n_out) == (3, 40, 2)
    assert np.max(np.abs(np.linalg.eigvals(p.W))) == pytest.approx(0.8, rel=1e-10)
    q = RNNParams.random(3, 40, 2, seed=7, spectral_radius=0.8)
    np.testing.assert_array_equal(p.W, q.W)
    assert not np.array_equal(p.W, RNNParams.random(3, 40, 2, seed=8).W)


def test_bad_inputs_raise_spec_errors():
    params, x, h0, target = make_problem((3,))
    with pytest.raises(SpecError, match="expected"):
        forward(params, x[..., :2])
    with pytest.raises(SpecError, match="h0"):
        forward(params, x, h0[0])
    with pytest.raises(SpecError, match="activation"):
        forward(params, x, activation="softsign")
    with pytest.raises(SpecError, match="target"):
        loss_and_gradients(params, x, target[..., :1])
    with pytest.raises(SpecError, match="outside"):
        jacobian_products(params, forward(params, x), 7)
    with pytest.raises(SpecError, match="W has shape"):
        dataclasses.replace(params, W=np.zeros((5, 4)))
