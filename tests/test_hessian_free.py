"""Hessian-free optimisation: curvature products, CG, damping, and optimisation itself."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from torch.func import functional_call

import odernn.learn.hessian_free as hf
from odernn.errors import DataError, SpecError
from odernn.learn.hessian_free import (
    HessianFree,
    backtrack,
    conjugate_gradient,
    gauss_newton_operator,
    levenberg_marquardt,
    mse,
)

torch.set_num_threads(1)
f64 = torch.float64
# torch's first forward-mode call scripts its jvp decompositions (about 2 s, once per process)
pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:DeprecationWarning"
)


def tiny_net(p, x):
    """One tanh layer, returning (outputs, hidden) as structural damping needs."""
    h = torch.tanh(x @ p["W1"].T + p["b1"])
    return h @ p["W2"].T, h


def tiny_params(seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = {"W1": (4, 3), "b1": (4,), "W2": (2, 4)}
    return {k: torch.randn(s, generator=g, dtype=f64) for k, s in shapes.items()}


def flat(d):
    return torch.cat([t.reshape(-1) for t in d.values()])


def unflat(vec, like):
    out, i = {}, 0
    for k, t in like.items():
        out[k] = vec[i : i + t.numel()].view_as(t)
        i += t.numel()
    return out


def explicit_curvature(params, x, hidden_weight):
    """``G = J^T H_L J`` with ``H_L = 2/N I`` (mean squared error), plus the hidden-state
    term weighted by ``hidden_weight``, as a dense matrix from autograd's Jacobians."""
    theta = flat(params)
    J_out = torch.autograd.functional.jacobian(
        lambda v: tiny_net(unflat(v, params), x)[0].reshape(-1), theta
    )
    J_hid = torch.autograd.functional.jacobian(
        lambda v: tiny_net(unflat(v, params), x)[1].reshape(-1), theta
    )
    return J_out.T @ J_out * (2 / J_out.shape[0]) + hidden_weight * J_hid.T @ J_hid * (
        2 / J_hid.shape[0]
    )


@pytest.mark.parametrize("hidden_weight", [0.0, 0.7])
def test_gauss_newton_product_equals_explicit_matrix(hidden_weight):
    params = tiny_params()
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1), dtype=f64)
    theta = flat(params)
    G = explicit_curvature(params, x, hidden_weight)
    product = gauss_newton_operator(tiny_net, params, x)
    for seed in range(3):
        v = torch.randn(theta.shape, generator=torch.Generator().manual_seed(10 + seed), dtype=f64)
        Gv = flat(product(unflat(v, params), hidden_weight))
        torch.testing.assert_close(Gv, G @ v, rtol=1e-12, atol=1e-14)


def test_cg_solves_with_the_damped_curvature_of_martens_and_sutskever(monkeypatch):
    """The system CG solves is ``(G + lambda I + mu lambda S) d = -g``: the structural term's
    weight is the damping ``lambda`` times ``mu`` (a weight of ``mu`` alone passed the tests
    that check only that the loss falls)."""
    params = tiny_params()
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1), dtype=f64)
    y = torch.randn(5, 2, generator=torch.Generator().manual_seed(2), dtype=f64)
    lam, mu = 0.3, 0.7
    opt = HessianFree(tiny_net, params, damping=lam, structural_damping=mu, max_cg_iters=3)
    v = torch.randn(flat(params).shape, generator=torch.Generator().manual_seed(5), dtype=f64)
    want = explicit_curvature(params, x, lam * mu) + lam * torch.eye(v.numel(), dtype=f64)
    seen = []
    real = hf.conjugate_gradient

    def spy(operator, b, x0, **options):
        seen.append(operator(v))  # at the step's parameters: the step moves them after
        return real(operator, b, x0, **options)

    monkeypatch.setattr(hf, "conjugate_gradient", spy)
    opt.step((x, y))
    torch.testing.assert_close(seen[0], want @ v, rtol=1e-12, atol=1e-14)


def test_gauss_newton_product_of_outputs_only_model():
    params = tiny_params()
    x = torch.randn(5, 3, dtype=f64)
    outputs_only = gauss_newton_operator(lambda p, u: tiny_net(p, u)[0], params, x)
    with_hidden = gauss_newton_operator(tiny_net, params, x)
    v = {k: torch.ones_like(t) for k, t in params.items()}
    torch.testing.assert_close(flat(outputs_only(v)), flat(with_hidden(v)), rtol=1e-14, atol=0)
    with pytest.raises(SpecError, match="structural damping"):
        outputs_only(v, 1.0)


def spd_matrix(n, condition, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=f64))
    return Q @ torch.diag(torch.logspace(0, math.log10(condition), n, dtype=f64)) @ Q.T


def test_cg_solves_an_spd_system():
    A = spd_matrix(30, 100.0)
    b = torch.randn(30, generator=torch.Generator().manual_seed(3), dtype=f64)
    result = conjugate_gradient(lambda v: A @ v, b, tol=0.0, max_iters=200)
    torch.testing.assert_close(result.x, torch.linalg.solve(A, b), rtol=1e-9, atol=1e-12)
    assert result.iters <= 60  # CG converges in n steps in exact arithmetic
    assert np.all(np.diff(result.phi) <= 1e-12)  # phi decreases monotonically
    assert result.phi[-1] == pytest.approx(-0.5 * float(b @ torch.linalg.solve(A, b)), rel=1e-10)
    # warm start from the answer: nothing left to do
    again = conjugate_gradient(lambda v: A @ v, b, result.x, tol=0.0)
    assert again.iters <= 1


def test_cg_keeps_geometrically_spaced_iterates_and_stops_by_martens_rule():
    A = spd_matrix(200, 1e6, seed=1)
    b = torch.randn(200, generator=torch.Generator().manual_seed(4), dtype=f64)
    tol = 5e-4
    result = conjugate_gradient(lambda v: A @ v, b, tol=tol, max_iters=1000)
    spaced = sorted({math.ceil(1.3**j) for j in range(40)})  # 1, 2, 3, 4, 5, 7, 9, 11, 14, ...
    kept = [i for i, _ in result.iterates]
    assert kept == [i for i in spaced if i < result.iters] + [result.iters]

    def rule_holds(i):
        k = max(10, math.ceil(0.1 * i))
        phi = result.phi
        return i > k and phi[i] < 0 and (phi[i] - phi[i - k]) / phi[i] < k * tol

    assert result.iters < 1000
    assert rule_holds(result.iters)
    assert not any(rule_holds(i) for i in range(1, result.iters))


def test_backtrack_walks_back_while_the_objective_improves():
    values = {1: 5.0, 2: 3.0, 4: 2.0, 7: 4.0, 9: 6.0}
    iterates = [(i, torch.tensor([float(i)])) for i in values]
    i, x, best = backtrack(iterates, lambda v: values[int(v)])
    assert (i, float(x), best) == (4, 4.0, 2.0)
    assert backtrack(iterates[:1], lambda v: values[int(v)])[0] == 1


def test_levenberg_marquardt_rule():
    assert levenberg_marquardt(2.0, 0.1) == pytest.approx(3.0)
    assert levenberg_marquardt(2.0, -math.inf) == pytest.approx(3.0)
    assert levenberg_marquardt(2.0, math.nan) == pytest.approx(3.0)
    assert levenberg_marquardt(2.0, 0.5) == 2.0
    assert levenberg_marquardt(3.0, 0.9) == pytest.approx(2.0)
    assert levenberg_marquardt(2.0, 0.25) == 2.0 and levenberg_marquardt(2.0, 0.75) == 2.0


def linear_problem():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(50, 4, generator=g, dtype=f64)
    Y = torch.randn(50, 2, generator=g, dtype=f64)
    params = {"w": torch.zeros(4, 2, dtype=f64), "b": torch.zeros(2, dtype=f64)}
    return (lambda p, x: x @ p["w"] + p["b"]), params, (X, Y)


def test_one_undamped_step_solves_linear_least_squares():
    f, params, (X, Y) = linear_problem()
    opt = HessianFree(f, params, damping=0.0, cg_tol=0.0, max_cg_iters=100)
    stats = opt.step((X, Y))
    X1 = torch.cat([X, torch.ones(50, 1, dtype=f64)], dim=1)
    solution = torch.linalg.lstsq(X1, Y).solution
    minimum = float(mse(X1 @ solution, Y))
    assert stats["new_loss"] == pytest.approx(minimum, rel=1e-12)
    assert float(mse(f(params, X), Y)) == pytest.approx(minimum, rel=1e-12)
    torch.testing.assert_close(params["w"], solution[:4], rtol=1e-9, atol=1e-12)
    assert stats["rho"] == pytest.approx(1.0, rel=1e-9)  # the quadratic model is exact
    assert stats["alpha"] == 1.0


def test_damping_follows_the_reduction_ratio():
    f, params, batch = linear_problem()
    opt = HessianFree(f, params, damping=1.0)
    stats = opt.step(batch)  # quadratic loss: rho = 1, so lambda shrinks
    assert stats["rho"] == pytest.approx(1.0, rel=1e-9)
    assert opt.damping == pytest.approx(2 / 3)

    # A cubic model undamped: the Gauss-Newton step overshoots wildly, rho < 1/4.
    cube = {"w": torch.tensor([0.1], dtype=f64)}
    opt = HessianFree(lambda p, x: p["w"] ** 3 * x, cube, damping=1e-6)
    stats = opt.step((torch.ones(1, dtype=f64), torch.tensor([8.0], dtype=f64)))
    assert stats["rho"] < 0.25
    assert opt.damping == pytest.approx(1.5e-6)
    assert stats["new_loss"] < stats["loss"]  # the line search still found a decrease
    assert stats["lambda"] == 1e-6  # the damping the step used, not the next one

    # At an exact minimum (zero gradient) the step predicts no decrease: a failure, lambda grows
    opt = HessianFree(lambda p, x: p["w"] * x, {"w": torch.zeros(1, dtype=f64)}, damping=1.0)
    stats = opt.step((torch.ones(3, dtype=f64), torch.zeros(3, dtype=f64)))
    assert stats["rho"] == -math.inf and opt.damping == 1.5 and stats["alpha"] == 0.0


def oscillator_batch(B=4, T=30, dt=0.2, eta=0.2):
    """Inputs F_i (cosines) and targets x_i of x'' + eta x' + x = F by Euler's method."""
    rng = np.random.default_rng(0)
    omega, phase = rng.uniform(0.5, 1.5, B), rng.uniform(0, 2 * np.pi, B)
    F = np.cos(np.outer(omega, np.arange(T) * dt) + phase[:, None])
    x, v = np.zeros((B, T)), np.zeros(B)
    for i in range(T - 1):
        x[:, i + 1] = x[:, i] + dt * v
        v = v + dt * (F[:, i] - eta * v - x[:, i])
    return torch.tensor(F[..., None]), torch.tensor(x[..., None])


class SmallRNN(torch.nn.Module):
    def __init__(self, hidden=8):
        super().__init__()
        self.rnn = torch.nn.RNN(1, hidden, batch_first=True, dtype=f64)
        self.out = torch.nn.Linear(hidden, 1, dtype=f64)

    def forward(self, u):
        h, _ = self.rnn(u)
        return self.out(h), h


def small_rnn():
    torch.manual_seed(0)
    net = SmallRNN()
    init = {k: v.detach().clone() for k, v in net.named_parameters()}
    return net, init


@pytest.mark.parametrize("structural_damping", [0.0, 0.3])
def test_hf_beats_gradient_descent_on_a_small_rnn(structural_damping):
    net, init = small_rnn()
    batch = u, y = oscillator_batch()
    steps = 6

    def f(p, inputs):
        out, h = functional_call(net, p, (inputs,))
        return (out, h) if structural_damping else out

    params = {k: v.clone() for k, v in init.items()}
    opt = HessianFree(f, params, structural_damping=structural_damping, max_cg_iters=40)
    for _ in range(steps):
        opt.step(batch)
    hf_loss = float(mse(f(params, u)[0] if structural_damping else f(params, u), y))

    gd_losses = []
    for lr in (0.1, 0.3, 1.0):
        p = {k: v.clone().requires_grad_() for k, v in init.items()}
        for _ in range(steps):
            loss = mse(functional_call(net, p, (u,))[0], y)
            grads = torch.autograd.grad(loss, list(p.values()))
            with torch.no_grad():
                for q, g in zip(p.values(), grads, strict=True):
                    q -= lr * g
        with torch.no_grad():
            gd_losses.append(float(mse(functional_call(net, p, (u,))[0], y)))
    initial = float(mse(functional_call(net, init, (u,))[0], y))
    assert hf_loss < 0.4 * initial
    assert hf_loss < 0.5 * min(gd_losses)


def test_state_dict_round_trip_and_determinism():
    net, init = small_rnn()
    batch = oscillator_batch(T=12)

    def f(p, inputs):
        return functional_call(net, p, (inputs,))

    def fresh():
        params = {k: v.clone() for k, v in init.items()}
        return params, HessianFree(f, params, structural_damping=0.1, max_cg_iters=15)

    params_a, a = fresh()
    for _ in range(2):
        a.step(batch)
    buffer = io.BytesIO()
    torch.save({"params": params_a, "hf": a.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    params_b, b = fresh()
    for k in params_b:
        params_b[k].copy_(saved["params"][k])
    b.load_state_dict(saved["hf"])
    assert b.state_dict()["damping"] == a.damping and b.steps == 2
    stats_a, stats_b = a.step(batch), b.step(batch)
    assert stats_a == stats_b
    for k in params_a:
        assert torch.equal(params_a[k], params_b[k])

    params_c, c = fresh()  # an uninterrupted run gives the same bits
    for _ in range(3):
        c.step(batch)
    assert all(torch.equal(params_a[k], params_c[k]) for k in params_a)

    other = HessianFree(f, {"w": torch.zeros(3, dtype=f64)})
    with pytest.raises(DataError, match="another model"):
        other.load_state_dict(a.state_dict())
    with pytest.raises(DataError, match="lacks"):
        other.load_state_dict({"damping": 1.0})


def test_cg_batch_supplies_the_curvature():
    net, init = small_rnn()
    u, y = oscillator_batch(T=12)

    def f(p, inputs):
        return functional_call(net, p, (inputs,))[0]

    results = []
    for cg_batch in (None, (u, y), (u[:2], y[:2])):
        params = {k: v.clone() for k, v in init.items()}
        results.append((HessianFree(f, params, max_cg_iters=15).step((u, y), cg_batch), params))
    (same_stats, same), (stats, _), (half_stats, half) = results
    assert same_stats == stats
    assert not torch.equal(same["out.weight"], half["out.weight"])
    assert half_stats["new_loss"] < half_stats["loss"]


def test_cg_is_warm_started_from_the_decayed_previous_solution(monkeypatch):
    calls = []

    def recording_cg(matvec, b, x0=None, **options):
        result = conjugate_gradient(matvec, b, x0, **options)
        calls.append((x0.clone(), result.x.clone()))
        return result

    monkeypatch.setattr(hf, "conjugate_gradient", recording_cg)
    net, init = small_rnn()
    params = {k: v.clone() for k, v in init.items()}
    opt = HessianFree(lambda p, u: functional_call(net, p, (u,))[0], params, max_cg_iters=8)
    for _ in range(3):
        opt.step(oscillator_batch(T=12))
    assert torch.count_nonzero(calls[0][0]) == 0  # the first run starts from zero
    for (_, previous), (start, _) in zip(calls[:-1], calls[1:], strict=True):
        torch.testing.assert_close(start, 0.95 * previous, rtol=0, atol=0)
    torch.testing.assert_close(opt.state_dict()["solution"], calls[-1][1], rtol=0, atol=0)


def test_bad_options_and_non_finite_loss():
    f, params, (X, Y) = linear_problem()
    with pytest.raises(SpecError, match="damping"):
        HessianFree(f, params, damping=-1.0)
    with pytest.raises(SpecError, match="cg_decay"):
        HessianFree(f, params, cg_decay=2.0)
    with pytest.raises(SpecError, match="floating-point"):
        HessianFree(f, {})
    opt = HessianFree(f, params)
    with pytest.raises(SpecError, match="target has shape"):
        opt.step((X, Y[:, :1]))
    with pytest.raises(FloatingPointError, match="loss is nan"):
        opt.step((X, torch.full_like(Y, math.nan)))
