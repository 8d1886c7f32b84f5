"""Multiplicative conditioning (``products``): the gradient families' linear skip over each
parameter input times each other input holds the damped oscillator's one-step map for every
damping at once, which a skip over the inputs alone cannot."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_models import oscillator_data

from odernn.learn.config import TrainConfig
from odernn.learn.gradient import _fit_skip
from odernn.learn.models import REGISTRY, build
from odernn.learn.models.readout import skip_features
from odernn.learn.windows import compute_stats, to_tensors


def skip_alone(data, products: bool):
    """An ffn whose output is its skip alone (V = 0), started at the least-squares fit."""
    layout = TrainConfig(model="ffn", products=products).layout(data.dt, params=data.params)
    model = build("ffn", layout, compute_stats(data, layout), products=products, seed=0)
    tensors = to_tensors(data, layout)
    _fit_skip(model, [tensors])  # one block: the in-memory set
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
    data = oscillator_data(n=4, n_steps=20)
    model, tensors = skip_alone(data, True)
    assert model.layout.inputs == ("x", "v", "F", "F_next", "eta")
    u = torch.arange(10.0).reshape(2, 5)
    s = skip_features(model, u)
    assert torch.equal(s[:, :5], u)
    assert torch.equal(s[:, 5:], u[:, 4:5] * u[:, :4])  # eta times x, v, F, F_next
    assert model.D.shape == (2, 9)
    plain, _ = skip_alone(data, False)
    assert plain.D.shape == (2, 5) and torch.equal(skip_features(plain, u), u)


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru", "ffn"])
def test_the_declared_size_counts_the_products(family):
    """The memory check before a model is built counts the products' weights exactly."""
    data = oscillator_data(n=4, n_steps=20)
    sizes = {}
    for products in (False, True):
        layout = TrainConfig(model=family, products=products).layout(data.dt, params=data.params)
        model = build(family, layout, compute_stats(data, layout), products=products, hidden=8)
        stored = sum(p.numel() for p in model.state_dict().values())
        declared = REGISTRY[family].parameter_count(model.hparams, layout.n_inputs,
                                                    layout.n_init, layout.n_outputs)
        sizes[products] = (stored, declared)
        assert np.isfinite(one_step_error(model, to_tensors(data, layout)))
    (plain, plain_declared), (more, more_declared) = sizes[False], sizes[True]
    assert more - plain == more_declared - plain_declared == 2 * 4  # 2 outputs, eta x 4 inputs


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru", "ffn"])
@pytest.mark.parametrize("spec", ["train", "duffing-train"])
def test_the_declared_size_is_the_stored_size(family, spec):
    """The memory check's count is every stored value, for the linear and a nonlinear
    system's layout, with and without products, a head and a prior (the vanilla cell has one
    bias per unit, the fused cells two)."""
    from odernn.data.simulate import simulate_trajectories
    from odernn.data.spec import load_spec

    data = simulate_trajectories(load_spec(spec).with_overrides(n=4, n_steps=30))
    for products, head, prior in ((True, (), None), (False, (6,), None), (True, (), "linear")):
        config = TrainConfig(model=family, products=products, prior=prior)
        layout = config.layout(data.dt, system=data.system, params=data.params)
        model = build(family, layout, compute_stats(data, layout), products=products, hidden=8,
                      head=head)
        stored = sum(p.numel() for p in model.state_dict().values())
        assert REGISTRY[family].parameter_count(model.hparams, layout.n_inputs, layout.n_init,
                                                layout.n_outputs) == stored, (products, head)


def test_a_model_stored_before_products_existed_loads_as_a_skip_over_the_inputs():
    import odernn
    from odernn.learn.models import from_record

    data = oscillator_data(n=8, n_steps=60)
    model, result = odernn.fit(data, model="ffn", products=False, hidden=8, epochs=1,
                               val_every=1, val_fraction=0.25)
    record = result.best_record
    del record["args"]["hparams"]["products"]  # as written before the option
    old = from_record(record)
    assert old.hparams["products"] is False and old.D.shape == (2, 5)
    r = (model.rollout(data.x[:, 0], data.v[:, 0], data.F, data.params),
         old.rollout(data.x[:, 0], data.v[:, 0], data.F, data.params))
    assert np.array_equal(r[0].x, r[1].x)
