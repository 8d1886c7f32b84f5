"""The reservoir: its recurrent matrix, its ridge readout, and the automatic ridge choice."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse.linalg
import torch
from conftest import drawn_readout
from test_models import oscillator_data, small_config

import odernn
from odernn import budget
from odernn.assess.metrics import nrmse
from odernn.errors import SpecError
from odernn.learn.models import build, load_surrogate
from odernn.learn.models import esn as esn_module
from odernn.learn.models.layout import Layout
from odernn.learn.ridge import RIDGE_TOLERANCE, choose_ridge
from odernn.learn.training import train
from odernn.learn.windows import compute_stats, split_by_trajectory, to_tensors


@pytest.fixture(scope="module")
def data():
    return oscillator_data(n=6, n_steps=80)


def esn(data, **hparams):
    layout = Layout(dt=data.dt)
    return build("esn", layout, compute_stats(data, layout), **{"units": 60, **hparams})


@pytest.mark.parametrize(("hparams", "overflow"), [({"spectral_radius": 1e39}, "(W_value)"),
                                                   ({"input_scaling": 1e39}, "(W_in, W_0)")])
def test_weights_that_overflow_float32_are_refused(data, hparams, overflow):
    """Else trained, saved, and refused as corrupt by every loader. (The command line's options
    stop such values sooner: a float option is at most float32's largest.)"""
    with pytest.raises(SpecError, match=rf"\({overflow[1:-1]}\) overflow float32"):
        esn(data, **hparams)


@pytest.mark.parametrize("radius", [0.5, 0.9, 1.3])
def test_recurrent_matrix_has_the_requested_spectral_radius(data, radius):
    model = esn(data, spectral_radius=radius, degree=6)
    w = model.recurrent_matrix().to_dense().double().numpy()
    assert np.max(np.abs(np.linalg.eigvals(w))) == pytest.approx(radius, rel=1e-6)
    assert np.all(np.count_nonzero(w, axis=1) == 6)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_default_reservoir_has_the_requested_spectral_radius(data, seed):
    """1000 units, degree 10: ARPACK asked for one eigenvalue settled short of the largest
    on these seeds (the true radius was 1.1 % and 0.1 % above the option)."""
    model = esn(data, units=1000, degree=10, seed=seed)
    w = model.recurrent_matrix().to_dense().double().numpy()
    assert np.max(np.abs(np.linalg.eigvals(w))) == pytest.approx(0.5, rel=1e-6)


@pytest.mark.parametrize("units, seed", [(200, 5), (1000, 0), (1000, 12)])
def test_a_reservoir_of_one_connection_per_unit_is_scaled_too(units, seed):
    """Degree 1 puts each cycle's eigenvalues on one circle: ARPACK did not converge on these
    (a traceback), with 40 Lanczos vectors or with one eigenvalue asked for; 160 vectors give
    the radius (the dense solve is not reached)."""
    def no_dense(*args, **kwargs):
        raise AssertionError("the dense solve was reached")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(np.linalg, "eigvals", no_dense)
        w = esn_module.sparse_reservoir(units, 1, 0.5, np.random.default_rng(seed))
    assert np.max(np.abs(np.linalg.eigvals(w.toarray()))) == pytest.approx(0.5, rel=1e-9)


def test_where_arpack_does_not_converge_the_radius_is_a_dense_solve_within_the_budget(
        monkeypatch):
    def no_convergence(*args, **kwargs):
        raise scipy.sparse.linalg.ArpackNoConvergence("no convergence", [], [])

    monkeypatch.setattr(scipy.sparse.linalg, "eigs", no_convergence)
    w = esn_module.random_connections(300, 10, np.random.default_rng(0))
    assert esn_module.largest_modulus(w, np.ones(300)) == pytest.approx(
        np.max(np.abs(np.linalg.eigvals(w.toarray()))), rel=1e-12)
    monkeypatch.setenv(budget.ENV, "1M")
    with pytest.raises(budget.BudgetError, match="units = 300, the reservoir's spectral "
                       "radius by a dense solve"):
        esn_module.largest_modulus(w, np.ones(300))


def test_reservoir_is_fixed_by_the_seed(data):
    a, b, c = esn(data, seed=3), esn(data, seed=3), esn(data, seed=4)
    fixed = ("W_crow", "W_col", "W_value", "W_in", "W_0", "b")
    assert all(torch.equal(getattr(a, k), getattr(b, k)) for k in fixed)
    assert not torch.equal(a.W_value, c.W_value)


def test_the_draws_span_their_ranges_and_the_initial_state_is_tanh_of_w0_s0_plus_b(data):
    """``W_in`` and ``W_0`` uniform in +-input_scaling and ``b`` in +-bias (a bias drawn in
    [0, bias) passed), and ``r_0 = tanh(W_0 s_0 + b)`` with the bias (one without passed)."""
    model = esn(data, units=400, input_scaling=0.2, bias=0.7)
    for name, bound in (("W_in", 0.2), ("W_0", 0.2), ("b", 0.7)):
        w = getattr(model, name).detach().double()
        assert w.abs().max() <= bound and w.min() < -0.8 * bound and w.max() > 0.8 * bound, name
    s0 = torch.randn(5, model.layout.n_init, generator=torch.Generator().manual_seed(0))
    want = torch.tanh(s0.double() @ model.W_0.double().T + model.b.double())
    torch.testing.assert_close(model.initial_state(s0)[0].double(), want, rtol=0, atol=1e-6)


def test_readout_equals_direct_least_squares_on_the_same_states(data):
    model = esn(data)
    t = to_tensors(data, model.layout)
    nf = model.n_features
    gram, cross = torch.zeros(nf, nf, dtype=torch.float64), torch.zeros(nf, 2,
                                                                         dtype=torch.float64)
    rows = model.accumulate(t.z, t.e, gram, cross, chunk=7)
    gram2, cross2 = torch.zeros_like(gram), torch.zeros_like(cross)
    model.accumulate(t.z, t.e, gram2, cross2, chunk=100)  # time chunks change nothing
    torch.testing.assert_close(gram2, gram, rtol=1e-12, atol=1e-12)
    ridge = 1e-5
    model.solve_readout(gram, cross, rows, ridge)
    # The same states and targets, collected directly.
    with torch.no_grad():
        codec = model.codec
        state = model.initial_state(codec.init_features(t.z[:, 0], t.e[:, 0]))
        u = codec.encode(t.z[:, :-1], t.e[:, :-1])
        r, _ = model.states(u, state)
        x = model.features(u, r).reshape(-1, nf).numpy()
        y = codec.target(t.z[:, :-1], t.z[:, 1:]).double().reshape(-1, 2).numpy()
    assert rows == x.shape[0] == 6 * 79
    # Ridge as least squares on the augmented system [X / sqrt(n); sqrt(ridge) I].
    a = np.vstack([x / np.sqrt(rows), np.sqrt(ridge) * np.eye(nf)])
    b = np.vstack([y / np.sqrt(rows), np.zeros((nf, 2))])
    expected = np.linalg.lstsq(a, b, rcond=None)[0]
    # W_out is stored in float32: equal to the float64 solution up to its rounding
    np.testing.assert_allclose(model.W_out.detach().numpy().T, expected, rtol=1e-6, atol=1e-7)
    assert model.ridge.item() == ridge


def test_sequence_uses_the_fitted_readout_on_the_states(data):
    model = esn(data)
    torch.manual_seed(0)
    with torch.no_grad():
        model.W_out.normal_()
        u = torch.randn(2, 5, model.layout.n_inputs)
        y, _ = model.sequence(u)
        r, _ = model.states(u)
    expected = model.features(u, r) @ model.W_out.detach().double().T
    torch.testing.assert_close(y, expected.float())


@pytest.mark.parametrize("leak", [1.0, 0.4])
def test_the_closed_loop_differentiates_to_the_same_numbers(data, leak):
    """With autograd on, the reservoir's closed loop (``closed_loop`` steps the model's own
    ``step`` then) runs, gives the numbers it gives without autograd to the last bit, and
    differentiates: the readout gets a finite gradient (its sigmoid-form tanh wrote in place
    with ``out=``, which autograd refuses)."""
    model = drawn_readout(esn(data, leak_rate=leak))
    layout = model.layout
    z = torch.tensor(np.stack([data.x, data.v], -1)[:, :12], dtype=torch.float32)
    e = torch.tensor(layout.exogenous(data.F, {"eta": data.params["eta"]})[:, :11],
                     dtype=torch.float32)
    with torch.no_grad():
        ref = model.closed_loop(z[:, 0], e)
    got = model.closed_loop(z[:, 0], e)
    assert got.requires_grad and torch.equal(got.detach(), ref)
    torch.sum(torch.square(got[:, 1:] - z[:, 1:])).backward()
    assert model.W_out.grad is not None and torch.isfinite(model.W_out.grad).all()
    assert model.W_out.grad.abs().sum() > 0


def test_ridge_is_chosen_on_closed_loop_validation(data, tmp_path):
    """Each candidate's error is recomputed here, independently, as the closed-loop NRMSE of x
    on the validation trajectories (a selection that scored one-step error, or the training
    trajectories, would disagree); the choice is the rule's on those errors."""
    grid = [1e-12, 1e-8, 1e-4, 1.0]
    config = small_config("esn", ridge_grid=grid, val_folds=0)  # the holdout on 6 trajectories
    result = train(data, config, tmp_path, progress=False)
    fit, val = split_by_trajectory(data, config.val_fraction, config.seed)
    model = load_surrogate(tmp_path)
    t = to_tensors(fit, model.layout)
    gram = torch.zeros(model.n_features, model.n_features, dtype=torch.float64)
    cross = torch.zeros(model.n_features, 2, dtype=torch.float64)
    rows = model.accumulate(t.z, t.e, gram, cross)
    independent = {}
    for row in result.history:
        model.solve_readout(gram, cross, rows, row["ridge"])
        out = model.rollout(val.x[:, 0], val.v[:, 0], val.F, val.params["eta"])
        independent[row["ridge"]] = nrmse(out.x, val.x)
        assert row["val_nrmse_x"] == pytest.approx(independent[row["ridge"]], rel=1e-9)
    low = min(independent.values())
    chosen = max(r for r, e in independent.items() if e <= low * (1 + RIDGE_TOLERANCE))
    assert load_surrogate(tmp_path).ridge.item() == chosen
    assert result.best_val_nrmse == independent[chosen]
    assert independent[max(independent)] > 2 * low  # a strong ridge underfits: the choice matters
    fixed = train(data, small_config("esn", ridge=1e-4), tmp_path / "fixed", progress=False)
    assert [row["ridge"] for row in fixed.history] == [1e-4]


def bowl(best: float, floor: float = 1e-6):
    """A validation error with its minimum at ridge ``best`` (log-parabolic), flat below
    ``floor`` times ``best`` (the least-squares plateau of noise-free data)."""
    calls = []

    def score(ridge: float) -> float:
        calls.append(ridge)
        decades = np.log10(max(ridge, best * floor) / best)
        return 1e-3 * (1 + (decades**2 if decades > 0 else -1e-3 * decades))

    return score, calls


def test_a_readout_singular_to_rounding_is_a_diverged_candidate_not_a_traceback(data):
    """A huge bias saturates every unit, so that the features are the constant column's
    multiples: at the smallest ridges the normal equations are singular to rounding (torch's
    solver raised). Those candidates count as diverged; a larger ridge is chosen."""
    model, result = odernn.fit(data, model="esn", units=50, bias=1e30)
    assert result.status == "ok" and torch.isfinite(model.W_out).all()
    assert any(math.isinf(r["val_nrmse_x"]) for r in result.history)
    o, f = model.W_out.shape
    singular = torch.ones(f, f, dtype=torch.float64)  # rank 1
    model.solve_readout(singular, torch.ones(f, o, dtype=torch.float64), 1, 0.0)
    assert torch.isnan(model.W_out).all()


def test_a_grid_above_the_ceiling_is_not_said_to_be_at_it():
    (_, ridge), note = choose_ridge(lambda r: 1.0, (1e30,))
    assert ridge == 1e30 and "not widened above 10000" in note


@pytest.mark.parametrize("best", [1e-20, 1e-13, 1e-9, 1e-2, 10.0])
def test_the_ridge_search_widens_its_grid_until_the_choice_is_bracketed(best):
    score, calls = bowl(best)
    (err, ridge), note = choose_ridge(score, (1e-12, 1e-10, 1e-8))
    tried = sorted(calls)
    assert tried[0] < ridge < tried[-1] or ridge == 0.0, (ridge, tried)
    assert err == score(ridge) and err <= min(score(r) for r in tried) * (1 + RIDGE_TOLERANCE)
    assert ("bracketed" in note) == (ridge != 0.0)


def test_a_diverging_grid_is_reported_not_widened():
    (err, ridge), _ = choose_ridge(lambda r: float("inf"), (1e-8, 1e-6))
    assert err == float("inf") and ridge == 1e-8


def test_a_fit_whose_every_ridge_diverged_says_so(data, monkeypatch):
    """Every candidate's closed loop running away is a diverged run, not 'ridge X chosen'."""
    from odernn.learn import ridge

    monkeypatch.setattr(ridge, "closed_loop_nrmse", lambda *a, **k: math.inf)
    _, result = odernn.fit(data, model="esn", units=20, ridge_grid=[1e-8, 1e-6], val_folds=0)
    assert result.status == "diverged" and "every ridge strength diverged" in result.message
    assert result.best_val_nrmse == math.inf


def test_a_used_reservoir_deep_copies_to_the_same_function(data):
    """The cached sparse matrix (which torch cannot copy) is left out and remade."""
    import copy

    model = drawn_readout(esn(data, units=40))  # W_out = 0 before a fit: y would be 0
    g = torch.Generator().manual_seed(0)
    u, r = torch.randn(3, model.layout.n_inputs, generator=g), torch.randn(3, 40, generator=g)
    with torch.no_grad():
        y, (r1,) = model.step(u, (r,))  # the cache is made; r != 0, so the matrix acts
        y_twin, (r1_twin,) = copy.deepcopy(model).step(u, (r,))
    assert torch.equal(y_twin, y) and torch.equal(r1_twin, r1)


@pytest.mark.parametrize("family, hparams", [("esn", {"units": 60}),
                                             ("rnn", {"hidden": 30, "init": "esn"})])
def test_a_loaded_model_is_not_drawn_before_its_weights_replace_the_draw(
        data, tmp_path, monkeypatch, family, hparams):
    """Loading reads the reservoir; drawing it first (a draw per pair of units and an
    eigenvalue problem) would be thrown away."""
    from odernn.learn.models import save_surrogate

    layout = Layout(dt=data.dt)
    model = build(family, layout, compute_stats(data, layout), seed=5, **hparams)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)  # weights no fresh model of the seed has
    save_surrogate(model, tmp_path / "m.pt")

    def no_draw(*args, **kwargs):
        raise AssertionError("a random reservoir drawn for a loaded model")

    monkeypatch.setattr(esn_module, "sparse_reservoir", no_draw)
    monkeypatch.setattr(torch.linalg, "eigvals", no_draw)
    loaded = load_surrogate(tmp_path / "m.pt")
    torch.testing.assert_close(loaded.state_dict(), model.state_dict(), rtol=0, atol=0,
                               equal_nan=True)  # an unfitted reservoir's ridge is NaN
    u = torch.randn(4, layout.n_inputs)
    state = model.initial_state(torch.randn(4, layout.n_init))
    assert torch.equal(loaded.step(u, state)[0], model.step(u, state)[0])
    with pytest.raises(AssertionError, match="drawn"):  # a model built outside still draws
        build(family, layout, compute_stats(data, layout), seed=5, **hparams)


@pytest.mark.parametrize("leak", [1.0, 0.3])
def test_the_reservoir_step_is_the_leaky_update_and_so_is_its_export(data, leak):
    """``r_t = (1 - a) r_{t-1} + a tanh(W r_{t-1} + W_in u_t + b)`` with the dense W, for the
    step odernn runs and the one it exports (the same function written for an exporter)."""
    model = drawn_readout(esn(data, leak_rate=leak, seed=2))  # W_out = 0 before a fit
    torch.manual_seed(1)
    u, r = torch.randn(4, model.layout.n_inputs), 0.5 * torch.randn(4, 60)
    W = model.recurrent_matrix().to_dense().double()
    pre = torch.tanh(r.double() @ W.T + u.double() @ model.W_in.double().T + model.b.double())
    expected = ((1 - leak) * r.double() + leak * pre).float()
    with torch.no_grad():
        torch.testing.assert_close(model.reservoir_step(u, r), expected, rtol=0, atol=2e-6)
        y, (r_export,) = model.exportable_step()(u, (r,))
        torch.testing.assert_close(r_export, expected, rtol=0, atol=2e-6)
        torch.testing.assert_close(y, model.step(u, (r,))[0], rtol=0, atol=2e-6)


@pytest.mark.parametrize("option", [{"leak_rate": 0.0}, {"leak_rate": 1.5},
                                    {"spectral_radius": 0.0}, {"input_scaling": 0.0},
                                    {"bias": -0.1}, {"units": 1}, {"degree": 0}])
def test_a_reservoir_that_cannot_work_is_refused(option):
    """A leak rate of 0 freezes the reservoir at its initial state; a radius or an input
    scaling of 0 cuts it from its past or from its inputs: refused in one line."""
    from odernn.errors import SpecError

    data = oscillator_data(n=2, n_steps=20)
    with pytest.raises(SpecError, match="esn needs"):
        esn(data, **option)
