"""Multiplicative conditioning (``products``): the gradient families' linear skip over each
parameter input times each other input holds the damped oscillator's one-step map for every
damping at once, which a skip over the inputs alone cannot."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_models import oscillator_data

from odernn.data.simulate import simulate_trajectories
from odernn.data.spec import load_spec
from odernn.learn.config import TrainConfig
from odernn.learn.models import REGISTRY, build
from odernn.learn.models.layout import Layout
from odernn.learn.models.readout import skip_features
from odernn.learn.skip_fit import fit_skip
from odernn.learn.windows import compute_stats, to_tensors


def skip_alone(data, products: int | bool | None):
    """An ffn whose output is its skip alone (V = 0), started at the least-squares fit."""
    layout = TrainConfig(model="ffn", products=products).layout(data.dt, params=data.params)
    model = build("ffn", layout, compute_stats(data, layout), products=products, seed=0)
    tensors = to_tensors(data, layout)
    fit_skip(model, [tensors])  # one block: the in-memory set
    with torch.no_grad():
        model.V.zero_()
    return model, tensors


def one_step_error(model, tensors) -> float:
    """RMS error of the normalised one-step outputs, teacher forced."""
    with torch.no_grad():
        u = model.codec.encode(tensors.z[:, :-1], tensors.e[:, :-1])
        y, _ = model.sequence(u)
        target = model.codec.target(tensors.z[:, :-1], tensors.z[:, 1:])
    return float(torch.sqrt(torch.mean((y - target) ** 2)))


def test_the_products_skip_holds_the_map_for_every_damping():
    data = oscillator_data(n=32, n_steps=200)  # eta from 0.05 to 0.5, closed form
    plain, products = (one_step_error(*skip_alone(data, p)) for p in (False, True))
    # the map is nearly bilinear in eta and the state: measured 0.10 against 2.6e-4
    assert products < plain / 100, (plain, products)


def test_the_skip_features_are_the_inputs_then_each_parameter_times_each_other_input():
    """A linear system's default degree 2: ``u``, eta times x, v, F, F_next, F_prev, eta^2
    times them, eta^2 alone; degree 1 without the last two; 0 the inputs alone."""
    data = oscillator_data(n=4, n_steps=20)
    model, tensors = skip_alone(data, None)
    assert model.layout.inputs == ("x", "v", "F", "F_next", "F_prev", "eta")
    assert model.hparams["products"] == 2 and model.D.shape == (2, 6 + 5 + 5 + 1)
    u = torch.arange(12.0).reshape(2, 6)
    s = skip_features(model, u)
    eta, others = u[:, 5:6], u[:, :5]
    assert torch.equal(s, torch.cat([u, eta * others, eta**2 * others, eta**2], 1))
    first, _ = skip_alone(data, 1)
    assert first.D.shape == (2, 11) and torch.equal(skip_features(first, u)[:, 6:], eta * others)
    plain, _ = skip_alone(data, False)
    assert plain.D.shape == (2, 6) and torch.equal(skip_features(plain, u), u)


@pytest.mark.parametrize("family", ["rnn", "ffn"])
def test_a_hybrids_products_take_the_parameter_not_the_priors_channels(family):
    """A hybrid's inputs end with the prior's channels, after the parameters: the products
    multiply by eta, not by the prior's prediction of v."""
    data = oscillator_data(n=4, n_steps=20)
    layout = Layout(dt=data.dt, prior="oscillator")
    model = build(family, layout, compute_stats(data, layout), hidden=4, seed=0, products=1)
    eta = layout.inputs.index("eta")
    assert layout.n_inputs > len(layout.inputs)  # the prior's channels come last
    assert model.param_cols.tolist() == [eta]
    assert model.other_cols.tolist() == [k for k in range(layout.n_inputs) if k != eta]


def test_two_parameters_make_every_monomial_up_to_the_degree():
    """eta and beta at degree 2: the monomials eta, beta, eta^2, eta beta, beta^2 times each
    other input, then the three of degree 2 alone; the fast rollout path agrees."""
    from odernn.learn.models.readout import monomials

    assert monomials(2, 2) == [(0,), (1,), (0, 0), (0, 1), (1, 1)]
    data = simulate_trajectories(load_spec("duffing-train").with_overrides(n=6, n_steps=40))
    config = TrainConfig(model="gru", products=2)
    layout = config.layout(data.dt, system=data.system, params=data.params)
    assert layout.parameters == ("eta", "beta") and not layout.linear
    model = build("gru", layout, compute_stats(data, layout), products=2, hidden=4)
    u = torch.randn(3, layout.n_inputs)
    p, o = u[:, -2:], u[:, :-2]
    m = torch.stack([p[:, 0], p[:, 1], p[:, 0] ** 2, p[:, 0] * p[:, 1], p[:, 1] ** 2], 1)
    want = torch.cat([u, (m[:, :, None] * o[:, None, :]).flatten(1), m[:, 2:]], 1)
    torch.testing.assert_close(skip_features(model, u), want)


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru", "ffn"])
def test_the_declared_size_counts_the_products(family):
    """The memory check before a model is built counts the products' weights exactly."""
    data = oscillator_data(n=4, n_steps=20)
    sizes = {}
    for products in (False, True):
        layout = TrainConfig(model=family, products=products).layout(data.dt, params=data.params)
        model = build(family, layout, compute_stats(data, layout), products=products, hidden=8)
        stored = sum(p.numel() for p in model.state_dict().values())
        declared = REGISTRY[family].parameter_count(model.hparams, *layout.sizes)
        sizes[products] = (stored, declared)
        assert np.isfinite(one_step_error(model, to_tensors(data, layout)))
    (plain, plain_declared), (more, more_declared) = sizes[False], sizes[True]
    assert more - plain == more_declared - plain_declared == 2 * 5  # 2 outputs, eta x 5 inputs


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru", "ffn"])
@pytest.mark.parametrize("spec", ["train", "duffing-train"])
def test_the_declared_size_is_the_stored_size(family, spec):
    """The memory check's count is every stored value, for the linear and a nonlinear
    system's layout, with and without products, a head and a prior (the vanilla cell has one
    bias per unit, the fused cells two)."""
    data = simulate_trajectories(load_spec(spec).with_overrides(n=4, n_steps=30))
    for products, head, prior in ((None, (), None), (False, (6,), None), (True, (), "linear"),
                                  (3, (), None)):
        config = TrainConfig(model=family, products=products, prior=prior)
        layout = config.layout(data.dt, system=data.system, params=data.params)
        model = build(family, layout, compute_stats(data, layout), products=products, hidden=8,
                      head=head)
        stored = sum(p.numel() for p in model.state_dict().values())
        assert REGISTRY[family].parameter_count(model.hparams, *layout.sizes) == stored, \
            (products, head)


@pytest.mark.parametrize(("family", "target", "inputs"), [
    ("rnn", "velocity", ("x", "F")), ("gru", "velocity", ("x", "F")),
    ("lstm", "state", ("x", "v")), ("ffn", "state", ("x", "v"))])
@pytest.mark.parametrize("products", [1, 2])
def test_the_declared_size_holds_for_two_channels_and_a_parameter(family, target, inputs,
                                                                  products):
    """Two channels and ``eta`` make as many inputs as the initial state's features, as a
    series has: the count follows the layout's parameter inputs, not a guess from those two
    widths (it took such a layout for a series and left out the products)."""
    data = oscillator_data(n=4, n_steps=20)
    config = TrainConfig(model=family, target=target, inputs=inputs, products=products)
    layout = config.layout(data.dt, params=data.params)
    assert layout.n_inputs == layout.n_init and layout.parameters == ("eta",)
    model = build(family, layout, compute_stats(data, layout), products=products, hidden=8)
    stored = sum(p.numel() for p in model.state_dict().values())
    assert REGISTRY[family].parameter_count(model.hparams, *layout.sizes) == stored


def test_a_model_stored_before_products_existed_loads_as_a_skip_over_the_inputs():
    import odernn
    from odernn.learn.models import from_record

    data = oscillator_data(n=8, n_steps=60)
    model, result = odernn.fit(data, model="ffn", products=False, hidden=8, epochs=1,
                               val_every=1, val_fraction=0.25)
    record = result.best_record
    del record["args"]["hparams"]["products"]  # as written before the option
    old = from_record(record)
    assert old.hparams["products"] == 0 and old.D.shape == (2, 6)
    r = (model.rollout(data.x[:, 0], data.v[:, 0], data.F, data.params),
         old.rollout(data.x[:, 0], data.v[:, 0], data.F, data.params))
    assert np.array_equal(r[0].x, r[1].x)


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru", "ffn"])
def test_a_linear_systems_model_starts_as_its_skip(family):
    """On a linear system V starts at zero, so the model is its skip (the least-squares fit,
    once fitted); on a nonlinear one, and without a skip, V is drawn as the rest."""
    data = oscillator_data(n=4, n_steps=20)
    layout = TrainConfig(model=family).layout(data.dt, params=data.params)
    model = build(family, layout, compute_stats(data, layout), hidden=8)
    assert layout.linear and torch.count_nonzero(model.V) == 0
    plain = build(family, layout, compute_stats(data, layout), hidden=8, skip=False)
    assert torch.count_nonzero(plain.V) == plain.V.numel()
    duffing = simulate_trajectories(load_spec("duffing-train").with_overrides(n=4, n_steps=20))
    layout = TrainConfig(model=family).layout(duffing.dt, system="duffing",
                                              params=duffing.params)
    model = build(family, layout, compute_stats(duffing, layout), hidden=8)
    assert not layout.linear and "F_prev" not in layout.inputs
    assert model.hparams["products"] == 1 and torch.count_nonzero(model.V) == model.V.numel()
    chosen = build(family, layout, compute_stats(duffing, layout), hidden=8, start_as_skip=True)
    assert chosen.hparams["start_as_skip"] is True and torch.count_nonzero(chosen.V) == 0


def test_an_output_activation_does_not_start_as_the_skip():
    """The fit's intercept c lies inside sigma_y: ``sigma_y(c) + D s(u)`` is not the fit (a
    sigmoid started 0.25 off, in mean square). By default such a model's V is drawn, and
    asking for both is refused in one line; a stored model keeps what it stored."""
    from odernn.errors import SpecError

    data = oscillator_data(n=4, n_steps=20)
    layout = TrainConfig(model="rnn").layout(data.dt, params=data.params)
    stats = compute_stats(data, layout)
    squashed = build("rnn", layout, stats, hidden=8, output_activation="sigmoid")
    assert layout.linear and squashed.hparams["start_as_skip"] is False
    assert torch.count_nonzero(squashed.V) == squashed.V.numel()
    assert build("rnn", layout, stats, hidden=8).hparams["start_as_skip"] is True
    with pytest.raises(SpecError, match="whose intercept c would lie inside output_activation"):
        TrainConfig(model="rnn", output_activation="tanh", start_as_skip=True)
    stored = build("rnn", layout, stats, hidden=8, output_activation="tanh", start_as_skip=True)
    assert stored.hparams["start_as_skip"] is True  # an earlier run's checkpoint still loads


@pytest.mark.parametrize("bad", [4, -1, 1.5, "two"])
def test_a_bad_degree_or_start_is_refused_before_anything_is_built(bad):
    from odernn.errors import SpecError

    with pytest.raises(SpecError, match="products"):
        TrainConfig(model="gru", products=bad)
    with pytest.raises(SpecError, match="'start_as_skip' = .* allowed: true or false"):
        TrainConfig(model="gru", start_as_skip=bad)
    data = oscillator_data(n=4, n_steps=20)  # and by a model built directly
    layout = TrainConfig(model="gru").layout(data.dt, params=data.params)
    for family in ("gru", "ffn"):
        with pytest.raises(SpecError, match="start_as_skip must be true or false"):
            build(family, layout, compute_stats(data, layout), hidden=8, start_as_skip=bad)


def test_a_value_of_the_wrong_kind_is_refused_with_what_is_allowed():
    """From a config file or ``--set``: one line that names what is allowed."""
    from odernn.errors import SpecError

    with pytest.raises(SpecError, match="'products' = '2' is invalid; allowed: an integer, or "
                                        "true or false"):
        TrainConfig.from_dict({"model": "gru", "products": "2"})
    for bad in (float("inf"), float("nan")):  # once a raw OverflowError / ValueError
        with pytest.raises(SpecError, match="'hidden' = .* is invalid; allowed: an integer"):
            TrainConfig.from_dict({"model": "gru", "hidden": bad})


def test_a_record_declaring_a_huge_degree_is_refused_before_it_sizes_anything():
    """The declared-size check of a checkpoint counts the skip without building its monomials:
    a forged degree is one line, at once."""
    from odernn.errors import SpecError

    with pytest.raises(SpecError, match="products must be a degree"):
        REGISTRY["gru"].parameter_count({"hidden": 8, "products": 2_000_000}, 6, 3, 2, 1)
    assert REGISTRY["gru"].parameter_count({"hidden": 8, "products": 3}, 6, 3, 2, 1) == \
        REGISTRY["gru"].parameter_count({"hidden": 8, "products": 1}, 6, 3, 2, 1) + 2 * (5 + 5 + 2)



def test_the_skips_normal_equations_are_checked_against_the_budget_before_they_are_built():
    """Its normal equations are square in the skip's width, which grows as the parameters'
    products: with 120 parameter inputs and products = 3 training asked for 18 TB in a
    traceback. Their memory is checked first, with what to change."""
    from odernn import budget

    data = oscillator_data(n=4, n_steps=50)
    layout = TrainConfig(model="ffn").layout(data.dt, params=data.params)
    model = build("ffn", layout, compute_stats(data, layout), seed=0)
    with torch.no_grad():  # a skip as wide as 120 parameters' products make it
        model.D = torch.nn.Parameter(torch.zeros(2, 100_000))
    with pytest.raises(budget.BudgetError, match=r"the linear skip's least squares over 100000 "
                                                 r"features: needs ~373 GiB.*products = 1 or 0"):
        fit_skip(model, [to_tensors(data, layout)])
