"""The contract every surrogate family keeps (one suite over all of them), and the notes' RNN.

Small problems (16 trajectories x 200 steps, hidden 16) so that the suite runs
in seconds; ``benchmarks/surrogates.py`` measures the full-size accuracy.
"""

from __future__ import annotations

import math
import os
import signal
from functools import partial

import numpy as np
import pytest
import torch

from odernn.assess.metrics import nrmse
from odernn.data.exact import exact
from odernn.data.forcing import HarmonicForcing
from odernn.data.systems import Oscillator
from odernn.data.trajectories import Trajectories
from odernn.errors import DataError, SpecError
from odernn.learn.config import TrainConfig
from odernn.learn.models import REGISTRY, build, describe, inference, load_surrogate, save_surrogate
from odernn.learn.models.layout import Layout, Stats
from odernn.learn.training import train
from odernn.learn.windows import compute_stats

FAMILIES = sorted(REGISTRY)

GRADIENT = {"hidden": 16, "epochs": 6, "batch_size": 8, "window": 20, "horizon": 10,
            "horizon_start": 5, "closed_loop_from": 0.5, "lr": 1e-2, "val_every": 2}
SMALL = {"rnn": GRADIENT, "lstm": GRADIENT, "gru": GRADIENT, "esn": {"units": 100},
         "ffn": GRADIENT}
"""Options that train each family on the small problem in about a second."""

CEILING = {"rnn": 0.25, "lstm": 0.25, "gru": 0.25, "esn": 0.02, "ffn": 0.25}
"""Closed-loop NRMSE(x) on held-out trajectories; a frozen x (x_i = x_0) scores about 1."""


def oscillator_data(n: int = 16, n_steps: int = 200, dt: float = 0.05, seed: int = 0,
                    omega: tuple[float, float] = (0.5, 2.0),
                    F0: tuple[float, float] = (0.0, 1.0)) -> Trajectories:
    """Cosine-driven oscillators like the ``train`` dataset, from the closed-form solution."""
    rng = np.random.default_rng(seed)
    eta, x0, v0 = rng.uniform(0.05, 0.5, n), rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    params = {"eta": eta, "x0": x0, "v0": v0, "F0": rng.uniform(*F0, n),
              "omega": rng.uniform(*omega, n), "phase": np.zeros(n)}
    forcing = HarmonicForcing(*(params[k][:, None] for k in ("F0", "omega", "phase")))
    t = np.arange(n_steps) * dt
    x, v = exact(Oscillator.linear(eta, forcing), x0, v0, t)
    return Trajectories(t, x, v, forcing(t), params, {"forcing": "cosine"})


def series_data(n: int = 4, n_steps: int = 200, dt: float = 0.05, seed: int = 0) -> Trajectories:
    """Sine series ``sin(omega t + phase)`` (the notes' examples), x only."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps) * dt
    x = np.sin(np.outer(rng.uniform(0.8, 1.2, n), t) + rng.uniform(0, 2 * np.pi, n)[:, None])
    return Trajectories(t, x)


def small_config(family: str, **changes) -> TrainConfig:
    base = {"model": family, "val_fraction": 0.25, "device": "cpu", **SMALL[family]}
    if changes.get("val_folds"):  # folds replace the holdout
        base.pop("val_fraction")
    if changes.get("optimizer") == "hf":  # it takes no learning rate
        base.pop("lr", None)
    if changes.get("horizon") == 0:  # no closed loop: no horizon to start from, none to shape
        base = {k: v for k, v in base.items() if k not in ("horizon_start", "closed_loop_from")}
    return TrainConfig.from_dict({**base, **changes})


def interrupt_at(epoch: int, batch: int):
    """A progress callback that presses Ctrl-C once at (epoch, batch)."""

    def callback(info):
        if info.stage == "epoch" and (info.values["epoch"], info.values["batch"]) == (epoch, batch):
            os.kill(os.getpid(), signal.SIGINT)

    return callback


def rollout(model, data: Trajectories):
    return model.rollout(data.x[:, 0], data.v[:, 0], data.F, data.params["eta"])


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def data():
    return oscillator_data()


@pytest.fixture(scope="module")
def test_data():
    return oscillator_data(n=8, seed=1)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """Each family trained once on the small problem: family -> (run dir, result)."""
    runs = {}
    for family in FAMILIES:
        run_dir = tmp_path_factory.mktemp(family)
        runs[family] = (run_dir, train(data, small_config(family), run_dir, progress=False))
    return runs


@pytest.mark.parametrize("family", FAMILIES)
def test_error_ceiling_in_closed_loop(family, trained, test_data):
    run_dir, result = trained[family]
    assert result.status == "ok"
    out = rollout(load_surrogate(run_dir), test_data)
    frozen = np.repeat(test_data.x[:, :1], test_data.n_steps, axis=1)
    assert nrmse(frozen, test_data.x) > 0.9
    assert out.n_diverged == 0
    assert nrmse(out.x, test_data.x) < CEILING[family]


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_model_other_seed_other_model(family, data, tmp_path):
    short = {} if family == "esn" else {"epochs": 2, "window": 10}

    def weights(name, **changes):
        train(data, small_config(family, **short, **changes), tmp_path / name, progress=False)
        return load_surrogate(tmp_path / name).state_dict()

    first = weights("first")
    assert same_weights(first, weights("same"))
    assert not same_weights(first, weights("other", seed=1))


@pytest.mark.parametrize("family", FAMILIES)
def test_save_load_gives_identical_rollout(family, trained, test_data, tmp_path):
    model = load_surrogate(trained[family][0])
    save_surrogate(model, tmp_path / "copy.pt")
    again = load_surrogate(tmp_path / "copy.pt")
    a, b = rollout(model, test_data), rollout(again, test_data)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.v, b.v)
    assert a.x.dtype == np.float64 and a.x.shape == test_data.x.shape


@pytest.mark.parametrize("family", FAMILIES)
def test_inputs_are_not_mutated(family, trained, test_data):
    model = load_surrogate(trained[family][0])
    arrays = [test_data.x[:, 0].copy(), test_data.v[:, 0].copy(), test_data.F.copy(),
              test_data.params["eta"].copy()]
    before = [a.copy() for a in arrays]
    model.rollout(*arrays, warmup=(test_data.x[:, :3].copy(), test_data.v[:, :3].copy()))
    for a, b in zip(arrays, before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_training_does_not_mutate_its_data(tmp_path):
    data = oscillator_data(n=8, n_steps=60)
    copies = {k: getattr(data, k).copy() for k in ("t", "x", "v", "F")}
    eta = data.params["eta"].copy()
    train(data, small_config("gru", epochs=1, window=10, horizon=10), tmp_path, progress=False)
    for k, a in copies.items():
        np.testing.assert_array_equal(getattr(data, k), a)
    np.testing.assert_array_equal(data.params["eta"], eta)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_trainable_parameter_gets_a_gradient(family, data):
    layout = Layout(dt=data.dt)
    model = build(family, layout, compute_stats(data, layout), **small_config(family).model_args())
    if getattr(model, "V", None) is not None:  # a linear system's zero start (V = 0) gives the
        with torch.no_grad():                  # cell no gradient until V has moved
            model.V.normal_()
    z = torch.as_tensor(np.stack([data.x, data.v], -1)[:4, :21], dtype=torch.float32)
    e = torch.randn(4, 21, layout.n_exogenous)
    y, y_true = model.teacher_forced(z, e)
    torch.sum(torch.square(y - y_true)).backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    for name, p in trainable.items():
        assert p.grad is not None and torch.count_nonzero(p.grad) > 0, name
    if family == "esn":  # the reservoir is fixed: only the readout is trained
        assert list(trainable) == ["W_out"]


@pytest.mark.parametrize("family", FAMILIES)
def test_a_model_rolled_out_and_stepped_trains_on(family, data):
    """A rollout and a stepper run in torch's inference mode; a tensor made there and kept by
    the model (a cache) would refuse training after it: autograd cannot save one for
    backward, nor can it be updated in place outside that mode. None is kept, and the
    reservoir's readout is solved again to the same weights."""
    layout = Layout(dt=data.dt)
    model = build(family, layout, compute_stats(data, layout), **small_config(family).model_args())
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.normal_(0.0, 0.3)  # every trainable weight reaches the loss (V = 0 would not)
    z = torch.as_tensor(np.stack([data.x, data.v], -1)[:4, :21], dtype=torch.float32)
    e = torch.as_tensor(data.F[:4, :21, None], dtype=torch.float32).expand(-1, -1, 1)
    e = torch.cat([e, torch.roll(e, -1, 1), torch.as_tensor(data.params["eta"][:4, None, None],
                  dtype=torch.float32).expand(-1, 21, 1)], -1)[..., :layout.n_exogenous]
    if family == "esn":
        def solved() -> torch.Tensor:
            gram = torch.zeros(model.n_features, model.n_features, dtype=torch.float64)
            cross = torch.zeros(model.n_features, model.W_out.shape[0], dtype=torch.float64)
            model.solve_readout(gram, cross, model.accumulate(z, e, gram, cross), 1e-6)
            return model.W_out.detach().clone()
        before = solved()
        model._csr = None  # its reservoir's sparse matrix made anew, in the rollout
    rollout(model, data)
    model.stepper(data.x[:, 0], data.v[:, 0], data.params["eta"]).step(data.F[:, 0], data.F[:, 1])
    held = [t for v in vars(model).values() for t in (v if isinstance(v, tuple) else (v,))
            if isinstance(t, torch.Tensor)] + list(model.parameters()) + list(model.buffers())
    assert held and not any(t.is_inference() for t in held)
    model.train()
    y, y_true = model.teacher_forced(z, e)
    loss = torch.sum(torch.square(y - y_true))
    if family != "esn":  # the reservoir is fitted teacher-forced only
        loss = loss + torch.sum(torch.square(model.closed_loop(z[:, 0], e[:, :10]) - z[:, :11]))
    loss.backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert all(p.grad is not None and torch.count_nonzero(p.grad) > 0 for p in trainable)
    torch.optim.SGD(trainable, lr=1e-3).step()
    if family == "esn":
        with torch.no_grad():
            model.W_out.copy_(before)
        rollout(model, data)
        assert torch.equal(solved(), before)


@pytest.mark.parametrize("family", FAMILIES)
def test_step_by_step_equals_sequence_call(family, trained):
    model = load_surrogate(trained[family][0]).double()  # float64: equal to rounding
    torch.manual_seed(0)
    u = torch.randn(3, 12, model.layout.n_inputs, dtype=torch.float64)
    state = model.initial_state(torch.randn(3, model.layout.n_init, dtype=torch.float64))
    with torch.no_grad():
        y_seq, end_seq = model.sequence(u, state)
        ys = []
        for i in range(u.shape[1]):
            y, state = model.step(u[:, i], state)
            ys.append(y)
    torch.testing.assert_close(torch.stack(ys, 1), y_seq, rtol=1e-10, atol=1e-12)
    for a, b in zip(state, end_seq, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_rollout_equals_one_by_one(family, trained, test_data):
    model = load_surrogate(trained[family][0])
    batch = rollout(model, test_data)
    for n in range(3):
        one = rollout(model, test_data.take(slice(n, n + 1)))
        # float32 kernels round differently at another batch size; trajectories leaking into
        # each other would differ by O(1)
        np.testing.assert_allclose(one.x[0], batch.x[n], rtol=0, atol=2e-5)
        np.testing.assert_allclose(one.v[0], batch.v[n], rtol=0, atol=2e-5)


N_BATCHES = 15
"""Batches per epoch of SMALL on ``data``: ceil(max(8, 12 x 199 // 20) / 8)."""


@pytest.mark.parametrize(("family", "epoch", "batch"), [
    *[(f, 3, 2) for f in FAMILIES],
    # epoch boundaries: after an epoch's last batch (the interrupt lands before the epoch is
    # closed), after the first batch, and after the run's very last batch
    *[(f, e, b) for f in ("gru", "rnn") for e, b in ((3, N_BATCHES), (1, 1), (6, N_BATCHES))],
])
def test_resume_equals_no_interrupt(family, epoch, batch, data, trained, tmp_path):
    config = small_config(family)
    stopped = train(data, config, tmp_path, progress=interrupt_at(epoch, batch))
    if family != "esn":  # the ridge fit is one step: nothing to interrupt
        assert stopped.status == "interrupted"
        assert len(stopped.history) == epoch - 1
        assert torch.load(tmp_path / "last.pt", weights_only=True)["resume"]["batch"] == batch
    resumed = train(data, config, tmp_path, resume=True, progress=False)
    assert resumed.status == "ok"
    full_dir = trained[family][0]
    for name in ("best.pt", "last.pt"):
        a = load_surrogate(full_dir / name).state_dict()
        assert same_weights(a, load_surrogate(tmp_path / name).state_dict()), name
    assert resumed.best_epoch == trained[family][1].best_epoch


def test_esn_init_has_the_requested_spectral_radius_and_sparsity(data):
    """Sutskever et al.'s echo-state start: 15 Gaussian inputs per unit, W scaled to a radius."""
    layout = Layout(dt=data.dt)
    stats = compute_stats(data, layout)
    for hidden, radius in ((40, 1.1), (8, 0.9)):
        model = build("rnn", layout, stats, hidden=hidden, seed=3, init="esn",
                      init_spectral_radius=radius)
        W = model.W.detach().double()
        assert torch.linalg.eigvals(W).abs().max().item() == pytest.approx(radius, rel=1e-5)
        assert ((W != 0).sum(dim=1) == min(15, hidden)).all()
    uniform = build("rnn", layout, stats, hidden=40, seed=3)
    esn = build("rnn", layout, stats, hidden=40, seed=3, init="esn")
    assert (uniform.W != 0).all() and esn.hparams["init_spectral_radius"] == 1.1
    assert torch.linalg.eigvals(esn.W.detach().double()).abs().max().item() == \
        pytest.approx(1.1, rel=1e-5)
    u = esn.U.detach()
    assert u.std().item() == pytest.approx(1 / math.sqrt(layout.n_inputs), rel=0.25)
    before = uniform.state_dict()
    changed = {k for k, v in esn.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"cell.U", "cell.W"}  # only U and W follow the recipe
    again = build("rnn", layout, stats, hidden=40, seed=3, init="esn")
    other = build("rnn", layout, stats, hidden=40, seed=4, init="esn")
    assert torch.equal(again.W, esn.W) and not torch.equal(other.W, esn.W)
    with pytest.raises(SpecError, match="init 'xavier' unknown"):
        build("rnn", layout, stats, init="xavier")
    with pytest.raises(SpecError, match="init='esn' only"):
        build("rnn", layout, stats, init_spectral_radius=0.5)
    with pytest.raises(SpecError, match="init_spectral_radius must be > 0, got 0"):
        build("rnn", layout, stats, init="esn", init_spectral_radius=0.0)  # W = 0


def test_ffn_is_a_memoryless_one_step_map(data):
    """``y_i = V tanh(U u_i + b) + c + D u_i``: each output depends on its own inputs only."""
    layout = Layout(dt=data.dt)
    model = build("ffn", layout, compute_stats(data, layout), hidden=8, seed=2,
                  products=False).double()  # the notes' form; products: test_products.py
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # not a linear system's V = 0 start: the output must depend on h
        model.V.copy_(torch.randn(model.V.shape, generator=g, dtype=torch.float64))
    U, b, V, c, D = (p.detach().numpy() for p in (model.U, model.b, model.V, model.c, model.D))
    u = torch.randn(3, 7, layout.n_inputs, generator=g, dtype=torch.float64)
    with torch.no_grad():
        y, state = model.sequence(u, model.initial_state(torch.zeros(3, layout.n_init)))
        shuffled, _ = model.sequence(u[:, torch.randperm(7)], ())
    expected = np.tanh(u.numpy() @ U.T + b) @ V.T + c + u.numpy() @ D.T
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12)
    assert state == () and not torch.equal(shuffled, y)
    torch.testing.assert_close(torch.sort(shuffled, dim=1).values, torch.sort(y, dim=1).values)
    with pytest.raises(SpecError, match="must contain 'v'"):
        build("ffn", Layout("velocity", ("x", "F", "eta"), data.dt), compute_stats(data, layout))
    model = build("ffn", layout, compute_stats(data, layout), hidden=8, seed=2, products=False,
                  activation="relu", head=[5]).double()  # its own activation, a ReLU head
    with torch.no_grad():
        model.V.copy_(torch.randn(model.V.shape, generator=g, dtype=torch.float64))
    U, b, V, c, D = (p.detach().numpy() for p in (model.U, model.b, model.V, model.c, model.D))
    A, a = (p.detach().numpy() for p in (model.head[0].weight, model.head[0].bias))
    with torch.no_grad():
        y, _ = model.sequence(u, ())
    relu = partial(np.maximum, 0.0)
    expected = relu(relu(u.numpy() @ U.T + b) @ A.T + a) @ V.T + c + u.numpy() @ D.T
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("target", ["state", "velocity"])
def test_the_carried_states_scale_is_x_and_vs_own_std(target):
    """The closed-loop loss and the divergence threshold divide the carried state by its
    components' std: x's and v's, in velocity mode too (there the inputs put F second)."""
    from odernn.learn.models.codec import Codec

    inputs = ("x", "v", "F", "F_next", "eta") if target == "state" else ("x", "F", "F_next",
                                                                         "eta")
    layout = Layout(target, inputs, 0.05)
    stats = Stats({k: 0.0 for k in ("x", "v", "F", "eta", "y0", "y1")},
                  {"x": 2.0, "v": 3.0, "F": 5.0, "eta": 7.0, "y0": 11.0, "y1": 13.0})
    assert Codec(layout, stats).state_std().tolist() == [2.0, 3.0]


@pytest.mark.parametrize("family", ["rnn", "lstm"])
def test_the_initial_state_is_the_hidden_activation_of_a_map_of_s0(family):
    """``h_0 = sigma_h(G s_0 + g)`` with the network's own sigma_h (relu here); the LSTM's
    ``h_0 = tanh`` of the first half and ``c_0`` the second half as it is (a cell state is
    not squashed)."""
    layout = Layout(dt=0.05)
    names = ("x", "v", "F", "eta", "y0", "y1")
    options = {"activation": "relu"} if family == "rnn" else {}
    model = build(family, layout, _unit_stats(names), hidden=6, seed=1, **options).double()
    s0 = 3 * torch.randn(5, layout.n_init, generator=torch.Generator().manual_seed(2),
                         dtype=torch.float64)
    with torch.no_grad():
        a, state = model.init(s0), model.initial_state(s0)
    if family == "rnn":
        assert (a < 0).any() and torch.equal(state[0], torch.relu(a))
    else:
        assert (a[:, 6:].abs() > 1).any()
        assert torch.equal(state[0], torch.tanh(a[:, :6])) and torch.equal(state[1], a[:, 6:])


def test_a_state_diverges_beyond_1e4_training_stds_from_the_training_mean():
    """A position measured far from zero (x around 1e5 with std 1): the state at the
    training mean is not diverged, one at 0 (1e5 standard deviations off) is."""
    from odernn.learn.models.stepper import exploded

    stats = Stats({"x": 1e5, "v": 0.0, "F": 0.0, "eta": 0.1, "y0": 1e5, "y1": 0.0},
                  {"x": 1.0, "v": 2.0, "F": 1.0, "eta": 0.1, "y0": 1.0, "y1": 2.0})
    model = build("gru", Layout(dt=0.05), stats, hidden=4, seed=0)
    z = np.array([[1e5, 0.0], [1e5 + 9e3, 1.9e4], [0.0, 0.0], [1e5, 2.1e4]])
    assert exploded(model, z).tolist() == [False, False, True, True]


def test_a_rollout_counts_a_divergence_at_step_0():
    from odernn.learn.models.base import Rollout

    r = Rollout(np.zeros((3, 4)), np.zeros((3, 4)), np.array([0, -1, 3]))
    assert r.n_diverged == 2


def test_an_ensemble_takes_seeds_of_one_model_only():
    """Members of another family or another layout (here another dt) have no common
    median: refused, where comparing the family alone let the dt through."""
    from types import SimpleNamespace

    from odernn.learn.models.ensemble import Ensemble

    def member(family: str, dt: float) -> SimpleNamespace:
        return SimpleNamespace(family=family, layout=Layout(dt=dt), target="state",
                               parameter_inputs=("eta",), warmup_steps=0, description="")

    assert Ensemble({"a": member("gru", 0.05), "b": member("gru", 0.05)}).family == "gru"
    for other in (member("gru", 0.1), member("lstm", 0.05)):
        with pytest.raises(DataError, match="ensemble member 'b' is a .* of another layout"):
            Ensemble({"a": member("gru", 0.05), "b": other})


def test_vanilla_rnn_is_the_notes_equations(data):
    """``h_t = tanh(U u_t + W h_{t-1} + b)``, ``y_t = V h_t + c`` written out in numpy."""
    layout = Layout(dt=data.dt)
    for activation, sigma in (("tanh", np.tanh), ("relu", lambda a: np.maximum(a, 0)),
                              ("sigmoid", lambda a: 1 / (1 + np.exp(-a)))):
        model = build("rnn", layout, compute_stats(data, layout), hidden=8, seed=2,
                      activation=activation, skip=False).double()
        U, W, b, V, c = (p.detach().numpy() for p in (model.U, model.W, model.b, model.V,
                                                       model.c))
        rng = np.random.default_rng(0)
        u, h = rng.standard_normal((2, 15, layout.n_inputs)), rng.standard_normal((2, 8))
        expected = []
        hn = h
        for t in range(u.shape[1]):
            hn = sigma(u[:, t] @ U.T + hn @ W.T + b)
            expected.append(hn @ V.T + c)
        with torch.no_grad():
            y, (h_end,) = model.sequence(torch.as_tensor(u), (torch.as_tensor(h),))
        np.testing.assert_allclose(y.numpy(), np.stack(expected, 1), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(h_end.numpy(), hn, rtol=1e-12, atol=1e-12)


def test_rollout_reports_divergence_with_its_step(data):
    layout = Layout(dt=data.dt)
    model = build("lstm", layout, compute_stats(data, layout), hidden=8)
    with torch.no_grad():
        model.c.fill_(1e4)  # every step adds ~1e4 standard deviations of increment
    out = rollout(model, data.take(slice(0, 2)))
    assert out.n_diverged == 2
    k = out.diverged_at[0]
    assert 0 < k < data.n_steps
    assert np.all(np.isfinite(out.x[0, :k])) and np.all(np.isinf(out.x[0, k:]))


def test_rollout_warmup_repeats_the_observed_steps(trained, test_data):
    model = load_surrogate(trained["lstm"][0])
    out = model.rollout(test_data.x[:, 0], test_data.v[:, 0], test_data.F,
                        test_data.params["eta"], warmup=(test_data.x[:, :5], test_data.v[:, :5]))
    assert out.warmup == 5
    np.testing.assert_allclose(out.x[:, :5], test_data.x[:, :5], rtol=1e-6, atol=1e-6)
    # an observed step beyond the divergence rule marks its row diverged from that step: the
    # given values are not copied back over the row's inf
    x_obs = test_data.x[:, :5].copy()
    x_obs[1, 3] = 1e9
    out = model.rollout(test_data.x[:, 0], test_data.v[:, 0], test_data.F,
                        test_data.params["eta"], warmup=(x_obs, test_data.v[:, :5]))
    assert out.diverged_at[1] == 3 and np.all(out.diverged_at[[0, *range(2, x_obs.shape[0])]] < 0)
    assert np.all(np.isinf(out.x[1, 3:])) and np.all(np.isinf(out.v[1, 3:]))
    np.testing.assert_array_equal(out.x[1, :3], x_obs[1, :3])


def test_rollout_argument_errors(trained, test_data):
    model = load_surrogate(trained["gru"][0])
    with pytest.raises(DataError, match="eta"):
        model.rollout(test_data.x[:, 0], test_data.v[:, 0], test_data.F, None)
    with pytest.raises(DataError, match="shape"):
        model.rollout(test_data.x[:, 0], test_data.v[:2, 0], test_data.F, test_data.params["eta"])


def test_checkpoint_of_another_layout_is_refused(trained, tmp_path):
    model = load_surrogate(trained["lstm"][0])
    with pytest.raises(DataError, match="dt = 0.1"):
        model.check_data(oscillator_data(n=2, n_steps=20, dt=0.1), where="test.h5")
    with pytest.raises(DataError, match="series"):
        model.check_data(series_data(n=2, n_steps=20))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="not a readable odernn checkpoint"):
        load_surrogate(tmp_path / "junk.pt")
    with pytest.raises(DataError, match="not a run directory"):
        load_surrogate(tmp_path)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(DataError, match="not an odernn checkpoint"):
        load_surrogate(tmp_path / "foreign.pt")


def test_describe_lists_every_family_with_defaults():
    rows = {row["family"]: row for row in describe()}
    assert set(rows) == {"rnn", "lstm", "gru", "esn", "ffn"}
    assert rows["esn"]["defaults"]["units"] == 1000
    assert all(row["description"] for row in rows.values())


def _unit_stats(names) -> Stats:
    return Stats({k: 0.1 for k in names}, {k: 1.5 for k in names})


@pytest.mark.parametrize("by_sigmoid", [False, True])
@pytest.mark.parametrize("family", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("variant", ["default", "head", "no-skip", "two-parameters", "hybrid",
                                     "velocity", "degree-1", "degree-3", "two-parameters-2",
                                     "activation-skip"])
def test_inference_step_is_the_step(family, variant, by_sigmoid, monkeypatch):
    """The rollout's step without autograd (fused products, in place, in blocks of rows) is
    the cell's equations as training writes them, to rounding (float64 here), for every
    readout variant, with tanh in either form (the CPU decides which)."""
    monkeypatch.setattr(inference, "BLOCK_BYTES", 1)  # blocks of 64 rows: 64, 64 and 22
    monkeypatch.setattr(inference, "TANH_BY_SIGMOID", by_sigmoid)
    names = ("x", "v", "F", "eta", "y0", "y1")
    layout, options = Layout(dt=0.05), {}
    if variant == "head":
        options = {"head": [8, 5]}
    elif variant == "no-skip":
        options = {"skip": False, **({"output_activation": "tanh", "activation": "relu"}
                                     if family == "rnn" else {})}
    elif variant.startswith("two-parameters"):  # slicing at degree 1, else skip_features
        layout = Layout(dt=0.05, system="external", inputs=("x", "v", "F", "F_next", "a", "b"))
        names = (*names, "a", "b")
        options = {"products": 2} if variant.endswith("-2") else {}
    elif variant.startswith("degree-"):  # one parameter's powers by slicing
        options = {"products": int(variant[-1])}
    elif variant == "hybrid":  # the prior's channels follow the parameters: a gather
        layout = Layout(dt=0.05, prior="oscillator")
    elif variant == "velocity":
        layout = Layout("velocity", ("x", "F", "F_next", "eta"), 0.05)
    elif variant == "activation-skip":  # sigma_y of V h + c, then the skip's terms added
        options = {"output_activation": "tanh"}
    model = build(family, layout, _unit_stats(names), hidden=12, seed=3, **options).double()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # not a linear system's zero start: the output must depend on h
        model.V.copy_(torch.randn(model.V.shape, generator=g, dtype=torch.float64))
    u = torch.randn(150, 10, layout.n_inputs, generator=g, dtype=torch.float64)
    s0 = torch.randn(150, layout.n_init, generator=g, dtype=torch.float64)
    with torch.no_grad():
        fast, plain = model.inference_step(), model.step
        state_f = state_p = model.initial_state(s0)
        for i in range(u.shape[1]):
            y_f, state_f = fast(u[:, i], state_f)
            y_p, state_p = plain(u[:, i], state_p)
            torch.testing.assert_close(y_f, y_p, rtol=1e-12, atol=1e-12)
    for a, b in zip(state_f, state_p, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert not torch.equal(state_f[0], model.initial_state(s0)[0])  # it moved


def test_external_data_with_a_constant_parameter_trains_with_it_fixed():
    """An imported file's parameters are its own (system external): one constant in the data
    is recorded as fixed, as a known system's is, and a rollout with another value of it is
    refused."""
    import odernn
    from odernn.data.trajectories import Trajectories
    from odernn.errors import DataError

    d = oscillator_data(n=8, n_steps=60)
    params = {"eta": d.params["eta"], "k": np.full(8, 1.0)}
    ext = Trajectories(d.t, d.x, d.v, d.F, params, {"system": "external"})
    model, result = odernn.fit(ext, model="esn", units=40)
    assert result.status == "ok" and model.layout.fixed == (("k", 1.0),)
    assert model.layout.parameters == ("eta",)
    with pytest.raises(DataError, match="k"):
        model.rollout(d.x[:, 0], d.v[:, 0], d.F, {**params, "k": np.full(8, 2.0)})


@pytest.mark.parametrize("family", ["lstm", "gru"])
def test_the_fused_cell_gets_contiguous_states(family):
    """cuDNN refuses a non-contiguous initial state (the LSTM's cell state is a view of the
    initial-state map's output): checked here on the CPU, where torch would accept it, so
    the CUDA path's requirement holds in every test run, not only on a GPU."""
    layout = Layout(dt=0.05)
    model = build(family, layout, _unit_stats(("x", "v", "F", "eta", "y0", "y1")), hidden=8)
    fused, seen = model.cell.fused, []

    def checked(u, hx):
        seen.extend(t.is_contiguous() for t in (hx if isinstance(hx, tuple) else (hx,)))
        return type(fused).forward(fused, u, hx)

    fused.forward = checked
    z = torch.randn(3, 6, layout.n_state)
    e = torch.randn(3, 6, layout.n_exogenous)
    model.teacher_forced(z, e)
    assert seen and all(seen)


def test_the_tanh_form_follows_the_processor_flag_and_the_device(monkeypatch):
    """The sigmoid form where TANH_BY_SIGMOID says so on a CPU, torch's tanh elsewhere (a
    GPU always): the two forms differ in float32's last bits, so a flag ignored shows."""
    a = torch.linspace(-3, 3, 10_001)
    monkeypatch.setattr(inference, "TANH_BY_SIGMOID", True)
    assert inference.by_sigmoid(torch.device("cpu"))
    assert not inference.by_sigmoid(torch.device("cuda"))
    by_sigmoid = inference.tanh_(a.clone())
    assert torch.equal(by_sigmoid, inference.sigmoid_form_(a.clone()))
    monkeypatch.setattr(inference, "TANH_BY_SIGMOID", False)
    native = inference.tanh_(a.clone())
    assert torch.equal(native, torch.tanh(a)) and not torch.equal(native, by_sigmoid)
    torch.testing.assert_close(native, by_sigmoid, rtol=0, atol=2e-7)
    layout = Layout(dt=0.05)
    model = build("rnn", layout, _unit_stats(("x", "v", "F", "eta", "y0", "y1")), hidden=8)
    u = torch.randn(5, layout.n_inputs, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        state = model.initial_state(torch.zeros(5, layout.n_init))
    steps = {}
    for flag in (False, True):
        monkeypatch.setattr(inference, "TANH_BY_SIGMOID", flag)
        with torch.no_grad():
            steps[flag] = model.inference_step()(u, state)[1][0]
    assert not torch.equal(steps[False], steps[True])
    torch.testing.assert_close(steps[False], steps[True], rtol=0, atol=1e-6)


def test_the_initial_state_map_reads_the_state_and_the_parameters():
    """``init_features``: the normalised ``x0, v0`` and the trajectory's parameters, the last
    exogenous channels (the first ones, the forcing samples, passed every test that took
    the codec itself as the reference)."""
    from odernn.learn.windows import to_tensors

    data = oscillator_data(n=6, n_steps=40)
    layout = Layout(dt=data.dt)
    stats = compute_stats(data, layout)
    model = build("gru", layout, stats, hidden=8)
    assert layout.parameters == ("eta",) and layout.inputs[-1] == "eta"
    w = to_tensors(data, layout).windows(torch.arange(6), torch.zeros(6, dtype=torch.long), 5)
    got = model.codec.init_features(w.z[:, 0], w.e[:, 0]).double()
    raw = np.stack([data.x[:, 0], data.v[:, 0], data.params["eta"]], axis=1)
    mean = np.array([stats.mean[k] for k in ("x", "v", "eta")])
    std = np.array([stats.std[k] for k in ("x", "v", "eta")])
    np.testing.assert_allclose(got.numpy(), (raw - mean) / std, rtol=1e-5, atol=1e-6)
