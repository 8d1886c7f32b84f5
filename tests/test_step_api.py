"""The public step API: a surrogate advanced one step at a time in physical units gives its
rollout's numbers to the last bit, for every family and layout (docs/api.md)."""

from __future__ import annotations

import copy
import functools
import pickle
import warnings

import numpy as np
import pytest
import torch
from test_models import oscillator_data, series_data

import odernn
from odernn.errors import DataError
from odernn.learn.models.stepper import EXPLODED, beyond

FAMILIES = ("rnn", "lstm", "gru", "esn", "ffn")
MODES = {
    "state": {},
    "velocity": {"target": "velocity"},
    "withheld": {"withhold": ["eta"], "warmup": 10},  # eta not given: 10 observed steps first
    "no-products": {"products": False},  # the gradient families' skip over the inputs alone
    "hybrid": {"prior": "linear"},  # corrects the linear oscillator's rk4-sampled step
}
TINY = {"hidden": 8, "epochs": 2, "batch_size": 8, "window": 20, "horizon": 10,
        "horizon_start": 5, "lr": 1e-2, "val_every": 1}
"""Training options that fit a gradient family in a fraction of a second (the esn: 50 units)."""


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@functools.cache
def tiny_data():
    return oscillator_data(n=8, n_steps=120), oscillator_data(n=5, n_steps=150, seed=3)


@functools.cache
def tiny_model(family: str, mode: str):
    """``family`` trained briefly in ``mode`` (a key of :data:`MODES`, or ``series``)."""
    options = {"units": 50} if family == "esn" else dict(TINY)
    if mode == "series":
        data = series_data(n=6, n_steps=150)
        options.update(target="next-value", lags=3, warmup=3)
        options.update({} if family == "esn" else {"window": 1})
    else:
        data = tiny_data()[0]
        options.update(MODES[mode])
        if family == "esn":  # no skip layer: products are the gradient families' option
            options.pop("products", None)
        if family == "ffn" and mode == "velocity":  # no memory: it must be given v
            options["inputs"] = ["x", "v", "F", "F_next"]
        if family == "esn" and mode != "state":  # a readout of moderate gain (docs/export.md)
            options["ridge"] = 1e-4
    torch.set_num_threads(1)
    model, result = odernn.fit(data, model=family, val_fraction=0.25, seed=0, **options)
    assert result.status == "ok", result.message
    return model


def stepped(model, x_obs, v_obs, F, params):
    """``model`` driven through its stepper over the horizon of ``F (N, T)``, observing the
    first ``K = x_obs.shape[1]`` states; returns ``x, v (N, T)`` and the stepper."""
    stepper = model.stepper(x_obs[:, 0], v_obs[:, 0], params)
    xs, vs = [x_obs[:, 0]], [v_obs[:, 0]]
    for i in range(F.shape[1] - 1):
        if 0 < i < x_obs.shape[1]:
            stepper.observe(x_obs[:, i], v_obs[:, i])
        x, v = stepper.step(F[:, i], F[:, i + 1])
        xs.append(x)
        vs.append(v)
    return np.stack(xs, axis=1), np.stack(vs, axis=1), stepper


def test_a_warm_up_leaves_a_step_to_predict():
    """Observed steps K of a horizon T: 1 <= K < T. A warm-up as long as the horizon leaves
    nothing to predict, and was taken."""
    model = tiny_model("gru", "state")
    test = tiny_data()[1]
    with pytest.raises(DataError, match=r"warmup must be \(x_obs, v_obs\) of shape "
                                        r"\(N, K\) with 1 <= K < T"):
        model.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params,
                      warmup=(test.x, test.v))
    out = model.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params,
                        warmup=(test.x[:, :-1], test.v[:, :-1]))
    np.testing.assert_array_equal(out.x[:, :-1], test.x[:, :-1])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("family", FAMILIES)
def test_steps_give_the_rollout_to_the_last_bit(family, mode):
    model = tiny_model(family, mode)
    test = tiny_data()[1]
    k = max(model.warmup_steps, 1)
    warmup = (test.x[:, :k], test.v[:, :k]) if model.warmup_steps else None
    out = model.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params, warmup=warmup)
    assert out.n_diverged == 0
    x, v, stepper = stepped(model, test.x[:, :k], test.v[:, :k], test.F, test.params)
    np.testing.assert_array_equal(x[:, k:], out.x[:, k:])
    np.testing.assert_array_equal(v[:, k:], out.v[:, k:])
    # the given steps as given (they were the float32 state that carried them, 2e-8 off)
    np.testing.assert_array_equal(out.x[:, :k], test.x[:, :k])
    np.testing.assert_array_equal(out.v[:, :k], test.v[:, :k])
    assert x.dtype == np.float64 and stepper.steps == test.n_steps - 1
    np.testing.assert_array_equal(stepper.diverged_at, out.diverged_at)


def test_a_host_that_reuses_its_forcing_arrays_gets_the_rollout():
    """The stepper keeps its own copy of the last F (the next step's F_prev): a host program
    that writes every step's samples into the same two arrays gets the rollout's numbers."""
    model = tiny_model("gru", "state")
    assert "F_prev" in model.layout.inputs
    test = tiny_data()[1]
    out = model.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params)
    stepper = model.stepper(test.x[:, 0], test.v[:, 0], test.params)
    now, nxt, xs = np.empty(test.n), np.empty(test.n), [test.x[:, 0]]
    for i in range(test.n_steps - 1):
        now[:], nxt[:] = test.F[:, i], test.F[:, i + 1]
        xs.append(stepper.step(now, nxt)[0])
    np.testing.assert_array_equal(np.stack(xs, axis=1)[:, 1:], out.x[:, 1:])


def test_a_host_may_pass_its_forcing_in_any_layout_in_memory():
    """A list, a column of a Fortran-ordered array, a view with negative strides, a read-only
    array: each step's samples are taken by value, without a warning, and the rollout's
    numbers come back."""
    model = tiny_model("gru", "state")  # it reads F_prev, F and F_next
    test = tiny_data()[1]
    out = model.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params)
    backwards, fortran = np.ascontiguousarray(test.F[::-1]), np.asfortranarray(test.F)
    read_only = np.ascontiguousarray(test.F.T)
    read_only.flags.writeable = False
    for sample in (lambda i: backwards[::-1, i], lambda i: fortran[:, i],
                   lambda i: test.F[:, i].tolist(), lambda i: read_only[i]):
        stepper = model.stepper(test.x[:, 0], test.v[:, 0], test.params)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            x = [stepper.step(sample(i), sample(i + 1))[0] for i in range(test.n_steps - 1)]
        np.testing.assert_array_equal(np.stack(x, axis=1), out.x[:, 1:])


@pytest.mark.parametrize("family", ["gru", "esn"])
def test_F_prev_given_is_the_sample_the_model_reads(family):
    """``step(F, F_next, F_prev=...)``: given what the stepper carries, the rollout's bits; a
    stepper started in the middle of a trajectory, given the true ``F_{k-1}``, reads it at
    its first step (it would read ``F_k``); a model without ``F_prev`` (the reservoir's
    default) ignores it."""
    model = tiny_model(family, "state")
    reads = "F_prev" in model.layout.inputs
    assert reads == (family == "gru")
    test = tiny_data()[1]
    out = model.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params)
    stepper = model.stepper(test.x[:, 0], test.v[:, 0], test.params)
    xs = [stepper.step(test.F[:, i], test.F[:, i + 1], F_prev=test.F[:, max(i - 1, 0)])[0]
          for i in range(test.n_steps - 1)]
    np.testing.assert_array_equal(np.stack(xs, axis=1), out.x[:, 1:])
    k = 40  # started at step k from the true state; the first step with and without F_{k-1}
    firsts = []
    for given in (None, test.F[:, k - 1]):
        late = model.stepper(test.x[:, k], test.v[:, k], test.params)
        firsts.append(late.step(test.F[:, k], test.F[:, k + 1], F_prev=given)[0])
    assert (not np.array_equal(*firsts)) == reads
    with pytest.raises(DataError, match="F_prev must have shape"):
        late.step(test.F[:, k + 1], test.F[:, k + 2], F_prev=test.F[:2, k])
    bad = test.F[:, k + 1].copy()
    bad[1] = np.nan  # a sensor's gap would pass for the model diverging
    with pytest.raises(DataError, match=r"^F holds nan at index \[1\]; a closed loop takes"):
        late.step(bad, test.F[:, k + 2])
    with pytest.raises(DataError, match=r"^x holds inf at index \[1\]"):
        late.observe(np.where(np.arange(test.n) == 1, np.inf, 0.0), test.v[:, k])


@pytest.mark.parametrize("family", ["lstm", "esn"])
def test_a_series_steps_like_its_rollout(family):
    model = tiny_model(family, "series")
    series = series_data(n=3, n_steps=80, seed=5)
    k = model.warmup_steps
    out = model.rollout(series.x[:, 0], warmup=(series.x[:, :k], None), n_steps=80)
    stepper = model.stepper(series.x[:, 0])
    xs = []
    for i in range(79):
        if 0 < i < k:
            stepper.observe(series.x[:, i])
        x, v = stepper.step()
        assert v is None
        xs.append(x)
    np.testing.assert_array_equal(np.stack(xs, axis=1)[:, k - 1:], out.x[:, k:])
    np.testing.assert_array_equal(out.x[:, :k], series.x[:, :k])  # given, as given


def test_divergence_is_reported_as_in_the_rollout():
    model = tiny_model("rnn", "state")
    test = tiny_data()[1]
    F = test.F.copy()
    F[1, 40] = 1e38  # float32's edge: the inputs overflow, the state goes non-finite
    out = model.rollout(test.x[:, 0], test.v[:, 0], F, test.params)
    assert out.diverged_at[1] > 0 and out.n_diverged == 1
    x, v, stepper = stepped(model, test.x[:, :1], test.v[:, :1], F, test.params)
    np.testing.assert_array_equal(stepper.diverged_at, out.diverged_at)
    np.testing.assert_array_equal(x[:, 1:], out.x[:, 1:])
    assert np.isinf(x[1, out.diverged_at[1]:]).all()


def test_the_stepper_refuses_bad_input_in_one_line():
    model = tiny_model("gru", "withheld")  # needs 10 observed steps
    test = tiny_data()[1]
    x0, v0, F = test.x[:, 0], test.v[:, 0], test.F
    with pytest.raises(DataError, match="shape"):
        model.stepper(x0, v0[:3])
    stepper = model.stepper(x0, v0)
    stepper.step(F[:, 0], F[:, 1])
    with pytest.raises(DataError, match="warm-up of 10 observed steps: observe"):
        stepper.step(F[:, 1], F[:, 2])
    stepper.observe(test.x[:, 1], test.v[:, 1])
    with pytest.raises(DataError, match=r"F_next must have shape \(5,\)"):
        stepper.step(F[:, 1], None)
    with pytest.raises(DataError, match="takes eta"):
        tiny_model("gru", "state").stepper(x0, v0)
    with pytest.raises(DataError, match="takes no forcing"):
        tiny_model("esn", "series").stepper(x0).step(F[:, 0], F[:, 1])


def test_what_is_not_an_array_of_real_numbers_is_refused_in_one_line():
    """Strings, ragged lists, complex numbers (numpy would cast them, dropping the imaginary
    part) and a warm-up that is not a pair: one DataError each, from rollout and stepper."""
    model, series = tiny_model("gru", "state"), tiny_model("esn", "series")
    test = tiny_data()[1]
    x0, v0, F, eta = test.x[:, 0], test.v[:, 0], test.F, test.params["eta"]
    ragged = [list(row) for row in F]
    ragged[0] = ragged[0][:-1]
    cases = [
        (lambda: model.rollout(x0, v0, F, eta, warmup=(test.x[:, :2],)), "warmup must be a pair"),
        (lambda: series.rollout(x0, warmup=(test.x[:, :4],), n_steps=10), "warmup must be a pair"),
        (lambda: model.rollout(x0, v0, F, {"eta": "abc"}), "eta must hold real numbers"),
        (lambda: model.rollout(x0.astype(str), v0, F, eta), "x0 must hold real numbers"),
        (lambda: model.rollout(x0, v0, ragged, eta), "F must be an array of real numbers"),
        (lambda: model.rollout(x0 + 1j, v0, F, eta), "x0 must hold real numbers, not complex"),
        (lambda: model.rollout(x0, v0, F + 1j, eta), "F must hold real numbers"),
        (lambda: model.stepper(x0, v0, eta).step(F[:, 0].astype(str), F[:, 1]),
         "F must hold real numbers"),
        (lambda: model.stepper(x0[:0], v0[:0], eta[:0]), "at least one trajectory"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning: refused, not cast
        for call, needle in cases:
            with pytest.raises(DataError, match=needle):
                call()


@pytest.mark.parametrize("family", FAMILIES)
def test_a_stepper_keeps_the_weights_it_was_made_with(family):
    """Every parameter changed after the stepper was made (training further, a new readout
    of the reservoir) changes a new stepper's steps and not the old one's."""
    model = copy.deepcopy(tiny_model(family, "state"))
    test = tiny_data()[1]
    x0, v0, F = test.x[:, 0], test.v[:, 0], test.F
    before = model.stepper(x0, v0, test.params)
    want = model.stepper(x0, v0, test.params).step(F[:, 0], F[:, 1])
    with torch.no_grad():
        for p in [*model.parameters()] if family != "esn" else [model.W_out]:  # the reservoir
            p.mul_(1.5)  # is fixed
    np.testing.assert_array_equal(before.step(F[:, 0], F[:, 1]), want)
    changed = model.stepper(x0, v0, test.params).step(F[:, 0], F[:, 1])
    assert not np.allclose(changed, want)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mode", ["state", "withheld"])
def test_a_stepper_pickles_and_branches_with_its_weights_and_state(family, mode):
    """A stepper saved midway (pickle) or branched (``copy.deepcopy``) steps on to the
    rollout's bits, with the weights it was made with even where the model has changed since,
    its warm-up and divergence record included; a branch driven otherwise leaves the original
    alone."""
    model = copy.deepcopy(tiny_model(family, mode))
    test = tiny_data()[1]
    k = max(model.warmup_steps, 1)
    want, want_v, _ = stepped(model, test.x[:, :k], test.v[:, :k], test.F, test.params)
    stepper = model.stepper(test.x[:, 0], test.v[:, 0], test.params)
    half = k + 5
    for i in range(half):
        if 0 < i < k:
            stepper.observe(test.x[:, i], test.v[:, i])
        stepper.step(test.F[:, i], test.F[:, i + 1])
    with torch.no_grad():
        for p in [*model.parameters()] if family != "esn" else [model.W_out]:
            p.mul_(1.5)  # after the stepper was made: neither it nor a copy may see this
    saved = pickle.loads(pickle.dumps(stepper))
    branch = copy.deepcopy(stepper)
    np.testing.assert_array_equal(saved.diverged_at, stepper.diverged_at)
    assert saved.steps == branch.steps == half
    for i in range(half, test.n_steps - 1):
        F, F_next = test.F[:, i], test.F[:, i + 1]
        branch.step(2 * F, 2 * F_next)  # interleaved, another drive
        for s in (stepper, saved):
            x, v = s.step(F, F_next)
            np.testing.assert_array_equal(x, want[:, i + 1])
            np.testing.assert_array_equal(v, want_v[:, i + 1])
    assert not np.allclose(branch.step(F, F_next)[0], want[:, -1])


def test_a_prediction_replaced_by_an_observation_does_not_count_as_a_divergence():
    """In a warm-up the observed state replaces the prediction, as in the rollout (whose
    warm-up steps are the observed ones): an exploding prediction there is not a divergence,
    the first one after it is."""
    from odernn.learn.models import build
    from odernn.learn.models.layout import Layout
    from odernn.learn.windows import compute_stats

    data, k = oscillator_data(n=3, n_steps=10), 3
    layout = Layout(inputs=("x", "v", "F", "F_next"), dt=data.dt, warmup=k)
    model = build("ffn", layout, compute_stats(data, layout), hidden=4)
    with torch.no_grad():
        model.c.fill_(1e9)  # every prediction explodes
    out = model.rollout(data.x[:, 0], data.v[:, 0], data.F, None,
                        warmup=(data.x[:, :k], data.v[:, :k]))
    _, _, stepper = stepped(model, data.x[:, :k], data.v[:, :k], data.F, None)
    assert list(out.diverged_at) == [k] * 3
    np.testing.assert_array_equal(stepper.diverged_at, out.diverged_at)


def test_the_divergence_rule_is_the_same_on_numpy_and_torch_arrays():
    """Non-finite or beyond EXPLODED standard deviations, on either kind of array, to the bit
    at the limit (the rollout tests a torch tensor where it is, the stepper a numpy array)."""
    mean, std = np.array([0.5, -1.0]), np.array([2.0, 0.25])
    limit = EXPLODED * std
    z = np.zeros((7, 2)) + mean
    z[1, 0], z[2, 1], z[3, 0] = np.nan, np.inf, -np.inf
    z[4, 1] = mean[1] + np.nextafter(limit[1], np.inf)  # just beyond
    z[5, 0] = mean[0] - limit[0]  # on the limit: not beyond
    z[6] = mean + 0.9 * limit
    want = [False, True, True, True, True, False, False]
    assert beyond(z, mean, std).tolist() == want
    assert beyond(torch.from_numpy(z), mean, std).tolist() == want


def test_an_initial_state_that_contradicts_the_warm_up_is_refused():
    """With a warm-up, its first observations are the initial state: x0 and v0 that differ
    were dropped without a word (the same rollout whatever they were)."""
    model = tiny_model("gru", "state")
    test = tiny_data()[1]
    warmup = (test.x[:, :3], test.v[:, :3])
    with pytest.raises(DataError, match="x0, v0 differ from them"):
        model.rollout(test.x[:, 0] + 5, test.v[:, 0], test.F, test.params, warmup=warmup)
    with pytest.raises(DataError, match=r"with 1 <= K < T"):  # K = 0 was taken as none
        model.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params,
                      warmup=(test.x[:, :0], test.v[:, :0]))
