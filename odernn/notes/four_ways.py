"""The notes' "four effective ways to learn an RNN", compared on a task that needs memory.

The notes end with four remedies for RNNs that are hard to train: LSTM,
Hessian-free optimisation, echo state networks, and echo-state-style
initialisation with momentum. :func:`compare` trains each, and a plain vanilla
RNN with Adam as the baseline, on the same data with the same budget of
gradient evaluations, and reports the error on held-out sequences.

The task (:func:`long_range_data`): a weakly damped oscillator
``x'' + eta x' + x = F`` starts at rest and is driven by a random forcing,
held constant over each step of ``dt``; the network reads the forcing ``F_i``
only and must output the displacement ``x_{i+1}``. The displacement is a
convolution of the whole past forcing with the oscillator's impulse response,
which rings for about ``2 / eta`` time units (hundreds of steps), so the
network has to carry the oscillator's state in its hidden state: nothing in
a short window of recent inputs determines the output.
:func:`linear_window_errors` shows it: least squares on the last ``w``
inputs leaves most of the variance unexplained until ``w`` covers the ringing.
(The study used to give the networks ``x, F, F_next, eta`` and ask for the
next velocity, which is an exact linear function of the last three ``x`` and
four ``F`` samples: no memory needed, as :func:`old_task_residual` shows.)

Budgets are counted in gradient evaluations (one forward and backward pass over
a batch), not seconds: an Adam or momentum step costs one; a Hessian-free step
costs one plus one per conjugate-gradient iteration (each a Gauss-Newton
product, a forward-mode and a reverse pass; its few forward-only loss
evaluations are not counted); the echo state network is one forward pass over
the training set and a ridge solve.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
import torch
from torch import Tensor, nn

from odernn import budget
from odernn.checks import is_whole
from odernn.errors import SpecError
from odernn.learn.hessian_free import HessianFree
from odernn.learn.models.esn import sparse_reservoir
from odernn.learn.models.rnn import ESN_CONNECTIONS
from odernn.learn.schedules import momentum_at

DT, ETA = 0.1, 0.1
"""Step and damping of the task's oscillator: a period is ~63 steps, the ringing ~200."""

METHODS: dict[str, dict[str, Any]] = {
    "vanilla RNN, Adam": {"model": "rnn", "init": "uniform", "optimizer": "adam", "lr": 3e-3},
    "vanilla RNN, ESN init + Nesterov momentum": {
        "model": "rnn", "init": "esn", "optimizer": "sgd", "lr": 3e-2, "momentum": 0.99},
    "vanilla RNN, Hessian-free": {"model": "rnn", "init": "uniform", "optimizer": "hf",
                                  "structural_damping": 0.3, "max_cg_iters": 50},
    "LSTM, Adam": {"model": "lstm", "optimizer": "adam", "lr": 3e-3},
    "echo state network": {"model": "esn", "units": 400, "spectral_radius": 0.999,
                           "input_scaling": 0.02, "degree": 10,
                           "ridge_grid": (1e-12, 1e-10, 1e-8, 1e-6, 1e-4)},
}
"""Each method's options; the rest are shared (:data:`SHARED`). The momentum learning rate
and the reservoir's spectral radius and input scaling were picked from small sweeps on this
task (lr 1e-2, 3e-2, 1e-1; four reservoirs): a near-linear reservoir with long memory."""

SHARED: dict[str, Any] = {"hidden": 32, "batch_size": 16, "clip": 1.0,
                          "init_spectral_radius": 1.1}
"""Options of every gradient-trained method: width, batch of whole sequences, gradient-norm
clipping (Adam and momentum), spectral radius of the echo-state initialisation."""


@dataclass
class Sequences:
    """Inputs ``u (n, T, 1)`` (the forcing) and targets ``y (n, T, 1)`` (the next
    displacement, divided by ``scale``, the training targets' standard deviation)."""

    u: Tensor
    y: Tensor
    scale: float

    @property
    def n(self) -> int:
        return self.u.shape[0]


def oscillator_map(dt: float = DT, eta: float = ETA) -> tuple[np.ndarray, np.ndarray]:
    """Exact one-step map ``z_{i+1} = A z_i + B F_i`` of ``x'' + eta x' + x = F`` for
    ``z = (x, v)`` and ``F`` held constant over the step."""
    m = np.array([[0.0, 1.0], [-1.0, -eta]])
    a = scipy.linalg.expm(m * dt)
    b = np.linalg.solve(m, (a - np.eye(2)) @ np.array([0.0, 1.0]))
    return a, b


def simulate(forcing: np.ndarray, dt: float = DT, eta: float = ETA) -> np.ndarray:
    """Displacements ``x_1 .. x_T`` of the oscillator started at rest under ``forcing
    (n, T)``."""
    a, b = oscillator_map(dt, eta)
    z = np.zeros((forcing.shape[0], 2))
    out = np.empty_like(forcing)
    for i in range(forcing.shape[1]):
        z = z @ a.T + forcing[:, i:i + 1] * b
        out[:, i] = z[:, 0]
    return out


def long_range_data(n_train: int = 64, n_test: int = 32, n_steps: int = 300, *,
                    seed: int = 0) -> tuple[Sequences, Sequences]:
    """Training and test sequences of the task: Gaussian forcing, unit variance per step."""
    budget.check(f"long_range_data: {n_train + n_test} sequences x {n_steps} steps",
                 6 * 8 * (n_train + n_test) * n_steps, "reduce n_train, n_test or n_steps")
    rng = np.random.default_rng(seed)
    forcing = rng.standard_normal((n_train + n_test, n_steps))
    x = simulate(forcing)
    scale = float(x[:n_train].std())

    def pack(rows: slice) -> Sequences:
        return Sequences(torch.tensor(forcing[rows, :, None], dtype=torch.float32),
                         torch.tensor(x[rows, :, None] / scale, dtype=torch.float32), scale)

    return pack(slice(0, n_train)), pack(slice(n_train, None))


# -- the fixed-window linear baseline ---------------------------------------------------------


def window_design(u: np.ndarray, w: int) -> np.ndarray:
    """Rows ``(u_i, u_{i-1}, ..., u_{i-w+1}, 1)`` for every step of ``u (n, T)``, zero before
    the start (the oscillator starts at rest, so the zeros are the truth)."""
    n, t = u.shape
    padded = np.concatenate([np.zeros((n, w - 1)), u], axis=1)
    cols = [padded[:, w - 1 - k:w - 1 - k + t] for k in range(w)]
    return np.stack([*cols, np.ones((n, t))], axis=-1).reshape(n * t, w + 1)


def linear_window_nmse(train: Sequences, test: Sequences, w: int) -> float:
    """Test NMSE (MSE over the target variance) of least squares on the last ``w`` inputs."""
    if not is_whole(w) or w < 1:
        raise SpecError(f"the window must be a whole number of inputs >= 1, got {w!r}")
    rows = math.prod(train.u.shape[:2]) + math.prod(test.u.shape[:2])
    budget.check(f"linear_window_nmse: window {w} over {rows} rows", 4 * rows * (w + 1) * 8,
                 "use a shorter window or fewer sequences")  # the designs, lstsq's copy
    a = window_design(train.u[..., 0].double().numpy(), w)
    coef, *_ = np.linalg.lstsq(a, train.y.double().numpy().reshape(-1), rcond=None)
    pred = window_design(test.u[..., 0].double().numpy(), w) @ coef
    truth = test.y.double().numpy().reshape(-1)
    return float(np.mean((pred - truth) ** 2) / np.var(truth))


def linear_window_errors(train: Sequences, test: Sequences,
                         windows: tuple[int, ...] = (5, 20, 50, 100)) -> dict[int, float]:
    """:func:`linear_window_nmse` for each window length."""
    return {w: linear_window_nmse(train, test, w) for w in windows}


def old_task_residual(n: int = 16, n_steps: int = 600, lags: int = 3) -> float:
    """Worst relative RMS residual, over ``n`` trajectories, of least squares of the old
    task's target ``v_{i+1}`` on its inputs in a window of ``lags`` steps (``x_i ..
    x_{i-lags+1}``, ``F_{i+1} .. F_{i-lags+1}``, a constant), fitted per trajectory (its
    ``eta`` is constant along it). The old task: weakly damped cosine-driven oscillators
    (the ``train`` spec, eta in [0.01, 0.05], exact solution), inputs ``x, F, F_next,
    eta``."""
    from dataclasses import replace

    from odernn.data.simulate import simulate_trajectories
    from odernn.data.spec import Range, load_spec

    spec = load_spec("train").with_overrides(n=n, n_steps=n_steps, integrator="exact")
    data = simulate_trajectories(replace(spec, parameters={**spec.parameters,
                                                           "eta": Range(0.01, 0.05)}))
    worst = 0.0
    for x, v, f in zip(data.x, data.v, data.F, strict=True):
        idx = np.arange(lags - 1, len(x) - 1)
        cols = [x[idx - k] for k in range(lags)] + [f[idx + 1 - k] for k in range(lags + 1)]
        a = np.stack([*cols, np.ones(len(idx))], axis=1)
        y = v[idx + 1]
        coef, *_ = np.linalg.lstsq(a, y, rcond=None)
        worst = max(worst, float(np.sqrt(np.mean((a @ coef - y) ** 2) / np.mean(y ** 2))))
    return worst


# -- the networks -----------------------------------------------------------------------------


def elman(params: dict[str, Tensor], u: Tensor) -> tuple[Tensor, Tensor]:
    """The notes' vanilla RNN ``h = tanh(U u + W h + b)``, ``y = V h + c`` from ``h_0 = 0``:
    outputs ``(B, T, 1)`` and hidden states ``(B, T, H)`` (for structural damping). Written
    as a function of ``params`` so that Adam, momentum and Hessian-free train one model."""
    h = u.new_zeros(u.shape[0], params["W"].shape[0])
    hs = []
    for i in range(u.shape[1]):
        h = torch.tanh(u[:, i] @ params["U"].T + h @ params["W"].T + params["b"])
        hs.append(h)
    hidden = torch.stack(hs, dim=1)
    return hidden @ params["V"].T + params["c"], hidden


def elman_params(hidden: int, init: str, seed: int, radius: float = 1.1) -> dict[str, Tensor]:
    """Initial weights: PyTorch's ``nn.RNN`` uniform default, or (``init="esn"``, after
    Sutskever et al. 2013) ``W`` with 15 Gaussian weights per unit scaled to spectral radius
    ``radius`` and Gaussian ``U``."""
    g = torch.Generator().manual_seed(seed)
    bound = 1 / math.sqrt(hidden)

    def uniform(*shape: int) -> Tensor:
        return (torch.rand(*shape, generator=g) * 2 - 1) * bound

    p = {"U": uniform(hidden, 1), "W": uniform(hidden, hidden), "b": uniform(hidden),
         "V": uniform(1, hidden), "c": uniform(1)}
    if init == "esn":
        w = torch.zeros(hidden, hidden, dtype=torch.float64)
        k = min(ESN_CONNECTIONS, hidden)
        for row in range(hidden):
            w[row, torch.randperm(hidden, generator=g)[:k]] = torch.randn(
                k, generator=g, dtype=torch.float64)
        p["W"] = (w * radius / torch.linalg.eigvals(w).abs().max()).float()
        p["U"] = torch.randn(hidden, 1, generator=g)
    elif init != "uniform":
        raise SpecError(f"init {init!r} unknown; allowed: uniform, esn")
    return p


class LSTMNet(nn.Module):
    """``nn.LSTM`` then a linear readout of every step's hidden state."""

    def __init__(self, hidden: int, seed: int) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.lstm = nn.LSTM(1, hidden, batch_first=True)
            self.out = nn.Linear(hidden, 1)

    def forward(self, u: Tensor) -> Tensor:
        return self.out(self.lstm(u)[0])


Forward = Callable[[dict[str, Tensor], Tensor], Tensor]
"""A network as a function of its weights: ``forward(params, u (B, T, 1)) -> y (B, T, 1)``."""


def _elman_network(options: dict[str, Any], seed: int) -> tuple[dict[str, Tensor], Forward]:
    """The trainable weights (:func:`elman_params`) and forward function of :func:`elman`."""
    params = {k: v.requires_grad_() for k, v in elman_params(
        options["hidden"], options["init"], seed, options["init_spectral_radius"]).items()}
    return params, lambda p, u: elman(p, u)[0]


def _lstm_network(options: dict[str, Any], seed: int) -> tuple[dict[str, Tensor], Forward]:
    """The trainable weights and forward function of an :class:`LSTMNet`."""
    net = LSTMNet(options["hidden"], seed)
    return dict(net.named_parameters()), lambda p, u: torch.func.functional_call(net, p, (u,))


NETWORKS: dict[str, Callable[[dict[str, Any], int], tuple[dict[str, Tensor], Forward]]] = {
    "rnn": _elman_network, "lstm": _lstm_network}
"""The gradient-trained networks, by the ``model`` of a method's options."""


def nmse(pred: Tensor, data: Sequences) -> float:
    """MSE over the target variance (1: as good as predicting the mean; the variance of the
    values, as :func:`linear_window_nmse`'s, not torch's unbiased default)."""
    return float(torch.mean((pred - data.y) ** 2) / torch.var(data.y, correction=0))


# -- training ---------------------------------------------------------------------------------


Say = Callable[[str], None]


def train_method(name: str, train: Sequences, test: Sequences, budget: int, *, seed: int = 0,
                 evaluations: int = 10) -> dict[str, Any]:
    """Train method ``name`` of :data:`METHODS` for ``budget`` gradient evaluations.

    Returns ``method``, ``seed``, ``cost`` (gradient evaluations spent), ``steps``
    (optimiser steps), ``test_nmse`` (final, on ``test``) and ``history`` (rows
    ``cost``, ``test_nmse`` about ``evaluations`` times over the budget); the echo state
    network also ``ridge``, the strength kept, and ``ridge_scores``, each strength's held-out
    NMSE.
    """
    if name not in METHODS:
        raise SpecError(f"method {name!r} unknown; allowed: {', '.join(METHODS)}")
    if budget < 1:
        raise SpecError(f"budget must be >= 1 gradient evaluation, got {budget}")
    options = {**SHARED, **METHODS[name]}
    return TRAINERS[options["model"]](name, options, train, test, budget, seed, evaluations)


def _descend(name: str, options: dict[str, Any], train: Sequences, test: Sequences,
             budget: int, seed: int, evaluations: int) -> dict[str, Any]:
    """Gradient steps (Adam, Nesterov momentum or Hessian-free) on a :data:`NETWORKS`
    network until ``budget`` gradient evaluations are spent."""
    gen = torch.Generator().manual_seed(seed + 1)
    every = max(1, budget // evaluations)
    params, forward = NETWORKS[options["model"]](options, seed)
    hf = None
    if options["optimizer"] == "hf":
        hf = HessianFree(lambda p, u: elman(p, u), params,
                         structural_damping=options["structural_damping"],
                         max_cg_iters=options["max_cg_iters"])
    elif options["optimizer"] == "adam":
        opt = torch.optim.Adam(params.values(), lr=options["lr"])
    else:
        opt = torch.optim.SGD(params.values(), lr=options["lr"], momentum=0.5, nesterov=True)
    cost, steps, history, next_eval = 0, 0, [], 0
    while cost < budget:
        if cost >= next_eval:
            history.append({"cost": cost, "test_nmse": _evaluate(forward, params, test)})
            next_eval += every
        rows = torch.randint(train.n, (options["batch_size"],), generator=gen)
        u, y = train.u[rows], train.y[rows]
        if hf is not None:
            try:
                stats = hf.step((u, y))
            except FloatingPointError:
                break
            cost += 1 + int(stats["cg_iters"])
        else:
            if options["optimizer"] == "sgd":
                for group in opt.param_groups:
                    group["momentum"] = momentum_at(steps, options["momentum"])
            opt.zero_grad()
            loss = torch.mean((forward(params, u) - y) ** 2)
            if not torch.isfinite(loss):
                break
            loss.backward()
            nn.utils.clip_grad_norm_(params.values(), options["clip"])
            opt.step()
            cost += 1
        steps += 1
    final = _evaluate(forward, params, test)
    history.append({"cost": cost, "test_nmse": final})
    return {"method": name, "seed": seed, "cost": cost, "steps": steps, "test_nmse": final,
            "history": history}


def _evaluate(forward: Forward, params: dict[str, Tensor], data: Sequences) -> float:
    with torch.no_grad():
        return nmse(forward({k: v.detach() for k, v in params.items()}, data.u), data)


def _fit_esn(name: str, options: dict[str, Any], train: Sequences, test: Sequences,
             budget: int, seed: int, evaluations: int) -> dict[str, Any]:
    """Reservoir ``h = tanh(W h + U u)`` and a ridge readout, its strength chosen on the last
    quarter of the training sequences (fitted on the rest), then refitted on all: one
    forward pass and a solve, whatever the ``budget``."""
    rng = np.random.default_rng(seed)
    units = options["units"]
    w = torch.tensor(sparse_reservoir(units, options["degree"], options["spectral_radius"],
                                      rng).toarray(), dtype=torch.float64)
    u_w = torch.tensor(rng.uniform(-1, 1, (units, 1)) * options["input_scaling"])

    def states(data: Sequences) -> Tensor:
        h = torch.zeros(data.n, units, dtype=torch.float64)
        out = []
        for i in range(data.u.shape[1]):
            h = torch.tanh(h @ w.T + data.u[:, i].double() @ u_w.T)
            out.append(h)
        s = torch.stack(out, dim=1)
        return torch.cat([s, torch.ones(*s.shape[:2], 1, dtype=s.dtype)], -1)

    def solve(s: Tensor, y: Tensor, ridge: float) -> Tensor:
        a, b = s.reshape(-1, s.shape[-1]), y.double().reshape(-1, 1)
        gram = a.T @ a + ridge * len(a) * torch.eye(a.shape[1], dtype=a.dtype)
        return torch.linalg.solve(gram, a.T @ b)

    s_train = states(train)
    cut = max(1, train.n * 3 // 4)
    scores = {}
    for ridge in options["ridge_grid"]:
        readout = solve(s_train[:cut], train.y[:cut], ridge)
        held = Sequences(train.u[cut:], train.y[cut:], train.scale)
        scores[ridge] = nmse((s_train[cut:] @ readout).float(), held)
    ridge = min(scores, key=scores.get)
    readout = solve(s_train, train.y, ridge)
    final = nmse((states(test) @ readout).float(), test)
    return {"method": name, "seed": seed, "cost": 1, "steps": 0, "test_nmse": final,
            "ridge": ridge, "ridge_scores": scores,
            "history": [{"cost": 1, "test_nmse": final}]}


TRAINERS: dict[str, Callable[..., dict[str, Any]]] = {
    "rnn": _descend, "lstm": _descend, "esn": _fit_esn}
"""How each ``model`` of :data:`METHODS` is trained: gradient steps on its network, or for the
reservoir one ridge solve."""


def compare(train: Sequences, test: Sequences, budget: int, *,
            methods: tuple[str, ...] = tuple(METHODS), seeds: tuple[int, ...] = (0,),
            say: Say = print) -> list[dict[str, Any]]:
    """Every method, every seed, the same ``budget`` of gradient evaluations: one row each
    (see :func:`train_method`)."""
    rows = []
    for seed in seeds:
        for name in methods:
            rows.append(train_method(name, train, test, budget, seed=seed))
            say(f"{name}, seed {seed}: {rows[-1]['steps']} steps, {rows[-1]['cost']} gradient "
                f"evaluations, test NMSE {rows[-1]['test_nmse']:.3g}")
    return rows
