"""Training tensors: carried states, exogenous inputs, targets, normalisation, splits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from test_models import oscillator_data, series_data

from odernn.errors import DataError, SpecError
from odernn.learn.models.codec import Codec
from odernn.learn.models.layout import Layout, check_data
from odernn.learn.windows import (
    carried_state,
    compute_stats,
    exogenous,
    fingerprint,
    raw_targets,
    split_by_trajectory,
    to_tensors,
)


@pytest.fixture(scope="module")
def data():
    return oscillator_data(n=6, n_steps=40)


def test_carried_state_and_exogenous_channels(data):
    layout = Layout(dt=data.dt, inputs=("x", "v", "F", "F_next", "F_prev", "eta"))
    z, e = carried_state(data, layout), exogenous(data, layout)
    np.testing.assert_array_equal(z[..., 0], data.x)
    np.testing.assert_array_equal(z[..., 1], data.v)
    np.testing.assert_array_equal(e[:, :, 0], data.F)
    np.testing.assert_array_equal(e[:, :-1, 1], data.F[:, 1:])  # F_next
    np.testing.assert_array_equal(e[:, -1, 1], data.F[:, -1])  # no sample after the last
    np.testing.assert_array_equal(e[:, 1:, 2], data.F[:, :-1])  # F_prev
    np.testing.assert_array_equal(e[:, 0, 2], data.F[:, 0])  # no sample before the first
    np.testing.assert_array_equal(e[:, 3, 3], data.params["eta"])


def test_series_state_is_the_last_lags_values_padded_with_x0():
    s = series_data(n=2, n_steps=10)
    z = carried_state(s, Layout("next-value", ("x",), s.dt, lags=3))
    np.testing.assert_array_equal(z[:, 0], np.repeat(s.x[:, :1], 3, axis=1))
    np.testing.assert_array_equal(z[:, 5], s.x[:, 3:6])


@pytest.mark.parametrize("target", ["state", "velocity"])
def test_codec_decode_inverts_target(data, target):
    layout = Layout(target, ("x", "v", "F", "eta") if target == "state" else ("x", "F"),
                    data.dt)
    codec = Codec(layout, compute_stats(data, layout)).double()
    z = torch.as_tensor(carried_state(data, layout))
    y = codec.target(z[:, :-1], z[:, 1:])
    stepped = codec.decode(z[:, :-1], y)
    if target == "state":
        torch.testing.assert_close(stepped, z[:, 1:], rtol=0, atol=1e-12)
    else:  # v exact; x by the trapezoid rule
        torch.testing.assert_close(stepped[..., 1], z[:, 1:, 1], rtol=0, atol=1e-12)
        trap = z[:, :-1, 0] + data.dt * 0.5 * (z[:, :-1, 1] + z[:, 1:, 1])
        torch.testing.assert_close(stepped[..., 0], trap, rtol=0, atol=1e-12)


def test_stats_normalise_inputs_and_targets(data):
    layout = Layout(dt=data.dt)
    stats = compute_stats(data, layout)
    codec = Codec(layout, stats).double()
    z = torch.as_tensor(carried_state(data, layout))
    e = torch.as_tensor(exogenous(data, layout))
    u = codec.encode(z, e).reshape(-1, layout.n_inputs)
    torch.testing.assert_close(u[:, :2].mean(0), torch.zeros(2, dtype=u.dtype), atol=1e-6,
                               rtol=0)
    torch.testing.assert_close(u[:, :2].std(0, unbiased=False), torch.ones(2, dtype=u.dtype),
                               rtol=1e-6, atol=0)
    y = codec.target(z[:, :-1], z[:, 1:]).reshape(-1, 2)
    torch.testing.assert_close(y.std(0, unbiased=False), torch.ones(2, dtype=u.dtype),
                               rtol=1e-6, atol=0)
    np.testing.assert_allclose(stats.std["y0"], np.std(raw_targets(z.numpy(), layout)[..., 0]))


def test_constant_quantity_gets_unit_std():
    unforced = oscillator_data(n=3, n_steps=20, F0=(0.0, 0.0))
    assert compute_stats(unforced, Layout(dt=unforced.dt)).std["F"] == 1.0


def test_statistics_are_in_the_data_units_however_small(data):
    """Data in units 1e-13 of these (a nanomechanical system in SI units) are normalised by
    their own spread: every std scales with them (the rule was absolute, std <= 1e-12, and
    such a channel was taken for a constant and normalised by 1: the model lost it)."""
    layout = Layout(dt=data.dt)
    k = 1e-13
    small = dataclasses.replace(data, x=data.x * k, v=data.v * k, F=data.F * k,
                                params={**data.params, "eta": data.params["eta"] * k})
    before, after = compute_stats(data, layout), compute_stats(small, layout)
    for name in before.std:
        assert after.std[name] == pytest.approx(k * before.std[name], rel=1e-9), name


def test_split_is_by_whole_trajectory_and_reproducible(data):
    train, val = split_by_trajectory(data, 0.34, seed=3)
    again, _ = split_by_trajectory(data, 0.34, seed=3)
    assert (train.n, val.n) == (4, 2)
    np.testing.assert_array_equal(train.x, again.x)
    rows = {tuple(r) for r in data.x}
    assert {tuple(r) for r in train.x} | {tuple(r) for r in val.x} == rows
    assert not {tuple(r) for r in train.x} & {tuple(r) for r in val.x}
    with pytest.raises(SpecError):
        split_by_trajectory(data, 1.5, seed=0)
    with pytest.raises(DataError, match="validation"):
        split_by_trajectory(data.take(slice(0, 1)), 0.5, seed=0)


def test_windows_are_gathers_of_the_device_tensors(data):
    layout = Layout(dt=data.dt)
    t = to_tensors(data, layout)
    w = t.windows(torch.tensor([2, 0]), torch.tensor([5, 11]), length=4)
    assert w.z.shape == (2, 5, 2) and w.e.shape == (2, 5, 3)
    np.testing.assert_allclose(w.z[0, :, 0].numpy(), data.x[2, 5:10], rtol=1e-6)
    np.testing.assert_allclose(w.e[1, :, 0].numpy(), data.F[0, 11:16], rtol=1e-6, atol=1e-7)


def test_check_data_refuses_other_layouts(data):
    layout = Layout(dt=data.dt)
    check_data(data, layout)
    with pytest.raises(DataError, match="dt"):
        check_data(data, Layout(dt=0.1))
    with pytest.raises(DataError, match="series"):
        check_data(series_data(n=2, n_steps=10), layout)
    with pytest.raises(DataError, match="eta"):
        check_data(dataclasses.replace(data, params={}), layout)
    bad = data.x.copy()
    bad[1, 3] = np.nan
    with pytest.raises(DataError, match="non-finite"):
        check_data(dataclasses.replace(data, x=bad), layout)


def test_layout_validation():
    with pytest.raises(SpecError, match="target"):
        Layout("acceleration")
    with pytest.raises(SpecError, match="inputs"):
        Layout(inputs=("x", "v", "G"))
    with pytest.raises(SpecError, match="'v'"):
        Layout(inputs=("x", "F"))
    assert Layout(inputs=("eta", "F", "v", "x")).inputs == ("x", "v", "F", "eta")
    assert Layout.from_dict(Layout(warmup=3).to_dict()) == Layout(warmup=3)


def test_fingerprint_follows_the_contents(data):
    first = fingerprint(data)
    assert first == fingerprint(data)
    x = data.x.copy()
    x[0, 0] += 1e-12
    assert fingerprint(dataclasses.replace(data, x=x))["sha256"] != first["sha256"]


@pytest.mark.parametrize("mean", [-1.0, 1.0, -3e5, 0.0])
def test_a_constant_quantity_of_either_sign_is_normalised_by_one(mean):
    """A parameter of one value (Duffing's alpha = -1) has std 0 or its rounding: scale 1,
    not 0 (a division by zero) whatever its sign; a varying one keeps its own std."""
    from odernn.learn.windows import scale

    assert scale(mean, 0.0) == 1.0
    assert scale(mean, 1e-13 * abs(mean)) == 1.0
    assert scale(mean, 0.25) == 0.25
