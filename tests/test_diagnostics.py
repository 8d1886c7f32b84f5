"""Gradient diagnostics: agreement with the numpy BPTT, linear-RNN identities, the expected
vanishing/exploding ordering, trained surrogates, and the ``odernn gradients`` command."""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np
import pytest
import torch
from conftest import drawn_readout

from odernn.cli import gradients  # noqa: F401  (registers the command)
from odernn.cli.app import main
from odernn.data.simulate import simulate_trajectories
from odernn.data.spec import load_spec
from odernn.errors import DataError, SpecError
from odernn.learn.checkpoint import save_checkpoint
from odernn.learn.models import Layout, build
from odernn.learn.windows import compute_stats
from odernn.notes import bptt
from odernn.notes.bptt import RNNParams
from odernn.notes.diagnostics import gradient_profile, step_jacobian
from odernn.notes.probes import (
    fresh_probe,
    radius_of,
    rnn_params,
    surrogate_probe,
    vanilla_probe,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    return simulate_trajectories(load_spec("train").with_overrides(n=2, n_steps=61))


def problem(T=12, B=2, C=3, H=6, O=2, radius=0.9):
    """Random weights with non-zero biases, inputs, initial state, targets."""
    rng = np.random.default_rng(3)
    params = RNNParams.random(C, H, O, seed=4, spectral_radius=radius)
    params = dataclasses.replace(params, b=rng.normal(0, 0.3, H), c=rng.normal(0, 0.3, O))
    return params, rng.normal(size=(B, T, C)), rng.normal(0, 0.5, (B, H)), rng.normal(
        size=(B, T, O))


@pytest.mark.parametrize("loss", ["final", "sum"])
@pytest.mark.parametrize("norm", ["spectral", "frobenius"])
def test_vanilla_rnn_agrees_with_numpy_bptt(loss, norm):
    params, x, h0, target = problem()
    profile = gradient_profile(vanilla_probe(params, x, target, h0), loss=loss, norm=norm)
    T = x.shape[1]

    fwd = bptt.forward(params, x, h0)
    # dh_{T-1}/dh_k for k = 0 .. T-1 (bptt's indices), then through the first step to h0
    products = bptt.jacobian_products(params, fwd)
    to_h0 = products[:, 0] @ bptt.step_jacobians(params, fwd)[:, 0]
    by_lag = np.concatenate([products[:, ::-1], to_h0[:, None]], axis=1)
    expected = np.linalg.norm(by_lag, ord=2 if norm == "spectral" else "fro", axis=(-2, -1))
    np.testing.assert_allclose(profile.jacobian, expected, rtol=1e-10)

    error = fwd.y - target
    if loss == "final":
        error[:, :-1] = 0.0
    grads = bptt.backward(params, fwd, error)
    expected = np.concatenate([grads.grad_h[:, ::-1], grads.dh0[:, None]], axis=1)
    np.testing.assert_allclose(profile.gradient, np.linalg.norm(expected, axis=-1), rtol=1e-10)
    assert profile.jacobian.shape == profile.gradient.shape == (2, T + 1)


def test_linear_rnn_jacobian_is_the_power_of_W():
    params, x, h0, target = problem(T=15, H=5, radius=1.3)
    profile = gradient_profile(vanilla_probe(params, x, target, h0, activation="identity"))
    powers = [np.linalg.matrix_power(params.W, n) for n in range(16)]
    np.testing.assert_allclose(profile.jacobian_norm, np.linalg.norm(powers, ord=2, axis=(1, 2)),
                               rtol=1e-10)


@pytest.mark.parametrize("radius", [0.8, 1.0, 1.2])
def test_linear_rnn_rate_tends_to_the_spectral_radius(radius):
    params, x, h0, target = problem(T=160, B=1, H=8, radius=radius)
    profile = gradient_profile(vanilla_probe(params, x, target, h0, activation="identity"))
    assert profile.spectral_radius == pytest.approx(radius, rel=1e-12)
    assert profile.rate() == pytest.approx(radius, rel=0.02)
    assert profile.rate("gradient") == pytest.approx(radius, rel=0.02)


def test_non_normal_W_grows_transiently_but_its_rate_is_the_radius():
    W = np.array([[0.9, 10.0], [0.0, 0.9]])  # radius 0.9, ||W|| ~ 10
    params = RNNParams(U=np.ones((2, 1)), W=W, V=np.ones((1, 2)), b=np.zeros(2), c=np.zeros(1))
    x, target = np.zeros((1, 160, 1)), np.zeros((1, 160, 1))
    profile = gradient_profile(vanilla_probe(params, x, target, np.ones((1, 2)),
                                             activation="identity"))
    J = profile.jacobian_norm
    assert J[10] > 3 * J[1] > 30  # the product grows for several steps ...
    assert J[160] < 1e-3  # ... before it vanishes
    # ||W^n|| ~ 10 n 0.9^(n-1): the polynomial factor biases a finite fit by ~exp(1/n)
    assert profile.rate() == pytest.approx(0.9, rel=0.02)


def test_spectral_radius_orders_the_vanishing(data):
    small, unit = (gradient_profile(fresh_probe("rnn", data, hidden=16, length=60,
                                                spectral_radius=r)) for r in (0.5, 1.0))
    assert small.spectral_radius == pytest.approx(0.5) and unit.spectral_radius == pytest.approx(1)
    assert small.rate() < unit.rate() < 1.0
    assert small.jacobian_norm[30] < 1e-3 * unit.jacobian_norm[30]
    assert small.gradient_norm[30] < 1e-3 * unit.gradient_norm[30]


def test_radius_above_one_with_small_inputs_explodes_at_first(data):
    quiet, driven = (gradient_profile(fresh_probe("rnn", data, hidden=16, length=20,
                                                  spectral_radius=1.5, input_scale=scale))
                     for scale in (1e-3, 1.0))
    J = quiet.jacobian_norm
    assert np.all(J[1:] > 1.0) and J[20] > 30.0 * J[1]
    # tanh saturates under order-one inputs: slopes < 1 tame the same weights
    assert driven.jacobian_norm[20] < 1e-2 * J[20]


@pytest.mark.parametrize("family", ["lstm", "gru"])
def test_gated_cells_product_equals_the_full_jacobian(data, family):
    probe = fresh_probe(family, data.take(slice(0, 1)), hidden=4, length=15, seed=1)
    profile = gradient_profile(probe)
    assert profile.state == ("(h, c)" if family == "lstm" else "h")
    n = len(probe.state0)

    def unrolled(s0: torch.Tensor) -> torch.Tensor:
        state = tuple(s0.split(4, dim=-1))
        for i in range(probe.length):
            _, state = probe.step(probe.inputs[:, i], state)
        return torch.cat(state, dim=-1)

    s0 = torch.cat(probe.state0, dim=-1) + 0.1
    full = torch.autograd.functional.jacobian(unrolled, s0)[0, :, 0, :]
    assert full.shape == (4 * n, 4 * n)
    product = torch.eye(4 * n, dtype=torch.float64)
    state = tuple(s0.split(4, dim=-1))
    for i in range(probe.length):
        product = step_jacobian(probe.step, probe.inputs[:, i], state)[0] @ product
        _, state = probe.step(probe.inputs[:, i], state)
    torch.testing.assert_close(product, full, rtol=1e-10, atol=1e-14)
    assert profile.jacobian[0, 0] == pytest.approx(1.0)
    assert np.all(np.isfinite(profile.jacobian)) and 0 < profile.rate() < 1


@pytest.mark.parametrize(("family", "bias"), [("lstm", None), ("lstm", 3.0), ("gru", None)])
def test_the_gradient_is_the_derivative_in_the_state_as_a_variable(data, family, bias):
    """dL/ds_k for s_k = (h_k, c_k) a variable of its own: the final loss run from a fresh
    leaf s_k through the remaining steps. Autograd's gradient of the tensor c_k also held
    the path c_k -> h_k inside step k (the LSTM's column up to 18% off)."""
    probe = fresh_probe(family, data.take(slice(0, 3)), hidden=5, length=12, seed=2,
                        **({"forget_bias": bias} if bias else {}))
    profile = gradient_profile(probe, loss="final")
    state = probe.state0
    states = [state]
    for i in range(probe.length):
        _, state = probe.step(probe.inputs[:, i], state)
        states.append(tuple(s.detach() for s in state))
    for k in range(probe.length):  # lag T - k
        leaf = tuple(s.clone().requires_grad_(True) for s in states[k])
        state = leaf
        for i in range(k, probe.length):
            y, state = probe.step(probe.inputs[:, i], state)
        loss = 0.5 * (y - probe.targets[:, -1]).pow(2).sum()
        grads = torch.autograd.grad(loss, leaf)
        norm = torch.linalg.vector_norm(torch.cat(grads, dim=-1), dim=-1).numpy()
        np.testing.assert_allclose(profile.gradient[:, probe.length - k], norm, rtol=1e-10)


def test_fresh_probe_refuses_options_its_family_does_not_take(data):
    with pytest.raises(SpecError, match="forget_bias applies to the lstm only, not to 'gru'"):
        fresh_probe("gru", data, hidden=4, length=10, forget_bias=1.0)
    with pytest.raises(SpecError, match="spectral_radius applies to the rnn only, not to 'lstm'"):
        fresh_probe("lstm", data, hidden=4, length=10, spectral_radius=0.5)
    probe = fresh_probe("lstm", data, hidden=4, length=10, forget_bias=1.0, input_scale=2.0)
    assert probe.label == "lstm forget_bias=1 inputs*2"


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru"])
def test_candidate_weight_is_the_recurrent_block_playing_ws_role(data, family):
    layout = Layout(dt=data.dt)
    model = build(family, layout, compute_stats(data, layout), hidden=5)
    w = model.candidate_weight()
    if family == "rnn":
        assert w is model.W
    else:  # the third block in PyTorch's gate order: g of (i, f, g, o), n of (r, z, n)
        assert torch.equal(w, model.cell.fused.weight_hh_l0[10:15])
    assert surrogate_probe(model, data, 5).spectral_radius == pytest.approx(radius_of(w))


def test_rnn_params_inits_and_bad_options():
    for init in ("gaussian", "uniform", "orthogonal"):
        assert radius_of(rnn_params(3, 10, spectral_radius=0.7, init=init).W) == \
            pytest.approx(0.7)
    W = rnn_params(3, 10, spectral_radius=0.7, init="orthogonal").W
    np.testing.assert_allclose(np.linalg.svd(W, compute_uv=False), 0.7)
    with pytest.raises(SpecError, match="spectral radius"):
        rnn_params(3, 10, spectral_radius=-1.0)
    with pytest.raises(SpecError, match="init"):
        rnn_params(3, 10, init="he")


def test_surrogate_probe_and_too_short_data(data):
    layout = Layout(dt=data.dt)
    # V = 0 as built for a linear system: the loss would not depend on the state (gradient 0)
    model = drawn_readout(build("lstm", layout, compute_stats(data, layout), hidden=6))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    profile = gradient_profile(surrogate_probe(model, data, 30, label="trained lstm"))
    assert profile.jacobian.shape == (2, 31) and profile.state == "(h, c)"
    g, jac = profile.gradient, profile.jacobian  # column j: the state j steps before the last
    assert np.all(np.isfinite(g)) and np.all(g > 0)
    # dL/ds_k = dL/ds_T ds_T/ds_k: autograd's gradient within the Jacobian products' bound
    assert np.all(g <= g[:, :1] * jac * (1 + 1e-5) + 1e-12)
    assert next(model.parameters()).dtype == torch.float32  # the model is left as it is
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    with pytest.raises(DataError, match="61 time points"):
        surrogate_probe(model, data, 100)
    esn = build("esn", layout, compute_stats(data, layout), units=10)
    with pytest.raises(DataError, match="not trained by backpropagation"):
        surrogate_probe(esn, data, 30)


@pytest.mark.filterwarnings("error::UserWarning")  # an untrained run's gradients are all 0:
# matplotlib warned that it could not log-scale them
def test_cli_writes_the_picture_and_the_numbers(tmp_path, capsys, data):
    out = tmp_path / "grads"
    args = ["gradients", "--model", "rnn", "--spectral-radius", "0.5,1.5", "--model", "gru",
            "--hidden", "8", "--length", "20", "--sequences", "2", "-o", str(out), "-q"]
    assert main(args) == 0
    stdout = capsys.readouterr().out
    assert "rnn rho=0.5 gaussian" in stdout and "gru" in stdout and "J(10)" in stdout
    record = json.loads((out / "gradients.json").read_text())
    assert record["schema"] == "odernn.gradients"
    labels = [p["label"] for p in record["profiles"]]
    assert labels == ["rnn rho=0.5 gaussian", "rnn rho=1.5 gaussian", "gru"]
    assert len(record["profiles"][0]["jacobian_norm"]) == 21
    assert (out / "gradients.png").read_bytes()[:4] == b"\x89PNG"

    assert main(args) == 2  # exists: refused without --overwrite
    assert capsys.readouterr().err.count("\n") == 1
    assert main([*args, "--overwrite"]) == 0
    assert main(["gradients", "--model", "lstm", "--forget-bias", "3", "--hidden", "4",
                 "--length", "20", "--sequences", "2", "-o", str(out), "-q", "--overwrite"]) == 0
    record = json.loads((out / "gradients.json").read_text())
    assert [p["label"] for p in record["profiles"]] == ["lstm forget_bias=3"]
    assert record["profiles"][0]["table"]["jacobian_rate"] > 0.9  # f ~ 0.95: long memory

    layout = Layout(dt=data.dt)
    model = build("rnn", layout, compute_stats(data, layout), hidden=5)
    run = tmp_path / "run"
    run.mkdir()
    save_checkpoint(run / "best.pt", {"family": "rnn", "args": model.constructor_args(),
                                      "state_dict": model.state_dict()})
    assert main(["gradients", "--run", str(run), "--length", "20", "--sequences", "2",
                 "-o", str(tmp_path / "trained"), "-q"]) == 0
    record = json.loads((tmp_path / "trained" / "gradients.json").read_text())
    assert [p["label"] for p in record["profiles"]] == ["rnn run"]
    assert record["profiles"][0]["table"]["spectral_radius"] == pytest.approx(radius_of(model.W))
    assert set(record["profiles"][0]["gradient_norm"]) == {0.0}  # V = 0: the loss sees no h
    drawn_readout(model)  # as a trained run's: its gradients through h are not 0
    save_checkpoint(run / "best.pt", {"family": "rnn", "args": model.constructor_args(),
                                      "state_dict": model.state_dict()})
    assert main(["gradients", "--run", str(run), "--length", "20", "--sequences", "2",
                 "-o", str(tmp_path / "trained"), "-q", "--overwrite"]) == 0
    norms = json.loads((tmp_path / "trained" / "gradients.json").read_text()
                       )["profiles"][0]["gradient_norm"]
    assert len(norms) == 21 and all(0 < g < math.inf for g in norms)


@pytest.mark.parametrize(("option", "message"), [
    (["--model", "transformer"], "--model 'transformer' unknown; allowed: rnn, lstm, gru"),
    (["--spectral-radius", "-1"], "--spectral-radius must be >= 0"),
    (["--spectral-radius", "big"], "is not a number"),
    (["--length", "0"], "--length must be >= 1"),
    (["--model", "gru", "--spectral-radius", "0.5"], "--spectral-radius applies to --model rnn"),
    (["--model", "rnn", "--forget-bias", "1"], "--forget-bias applies to --model lstm"),
    (["--model", "gru", "--init", "orthogonal"], "--init applies to --model rnn"),  # recorded
    (["--data", "missing.h5"], "does not exist"),
    (["--model", "rnn", "--run", "nowhere"], "does not exist"),  # fails after the rnn's work
])
def test_cli_rejects_bad_options_in_one_line(tmp_path, capsys, option, message):
    out = tmp_path / "grads"
    code = main(["gradients", "--hidden", "4", "--length", "10", *option, "-o", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_overwrite_replaces_only_an_earlier_output_of_the_command(tmp_path, capsys):
    """A user's own gradients.png (no record of ours beside it) is never replaced; an earlier
    output is, with --overwrite."""
    out = tmp_path / "plots"
    out.mkdir()
    (out / "gradients.png").write_bytes(b"a user's own figure")
    args = ["gradients", "--hidden", "4", "--length", "10", "-o", str(out), "-q", "--overwrite"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an earlier output of odernn gradients" in err
    assert (out / "gradients.png").read_bytes() == b"a user's own figure"
    (out / "gradients.png").unlink()  # an empty directory is new: it was refused as an
    assert main(args[:-1]) == 0 and main(args) == 0  # existing output, then as not one
    assert json.loads((out / "gradients.json").read_text())["schema"] == "odernn.gradients"
    assert main(args[:-1]) == 2 and "(an earlier output); pass --overwrite" in \
        capsys.readouterr().err
    assert main([*args[:5], "-o", ".", "-q"]) == 2  # it replaced the working directory
    assert "a directory of its own" in capsys.readouterr().err
    (tmp_path / "here").mkdir()
    os.chdir(tmp_path / "here")  # empty, named by its path: replaced as a new output
    try:
        assert main([*args[:5], "-o", str(tmp_path / "here"), "-q"]) == 2
    finally:
        os.chdir(tmp_path)
    assert "a directory of its own" in capsys.readouterr().err


def test_links_and_directories_in_the_output_are_never_replaced(tmp_path, capsys):
    """A dangling link as -o became a directory (the link set aside), a link to an earlier
    output was replaced with --overwrite, and a directory named gradients.png inside one was
    removed with what it held."""
    args = ["gradients", "--hidden", "4", "--length", "10", "-q", "-o"]
    earlier = tmp_path / "earlier"
    assert main([*args, str(earlier)]) == 0
    capsys.readouterr()
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "link").symlink_to(earlier)
    for out, extra in (("dangling", []), ("link", ["--overwrite"])):
        assert main([*args, str(tmp_path / out), *extra]) == 2
        assert "symbolic link" in capsys.readouterr().err
        assert (tmp_path / out).is_symlink()
    (earlier / "gradients.png").unlink()
    (earlier / "gradients.png").mkdir()
    (earlier / "gradients.png" / "notes.txt").write_text("mine")
    assert main([*args, str(earlier), "--overwrite"]) == 2
    assert "holds more than" in capsys.readouterr().err
    assert (earlier / "gradients.png" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling", "earlier", "link"]


@pytest.mark.filterwarnings("error::UserWarning")
def test_a_profile_with_no_gradient_keeps_every_other_curves_colour():
    """A profile whose gradient norms are all 0 is left off the log axis: the next profile's
    curve took its colour there, under the other's name in the legend."""
    from odernn.notes.diagnostics import GradientProfile
    from odernn.notes.diagnostics_output import figure

    lags = np.arange(6)
    jacobian = np.exp(-0.3 * lags)[None, :]

    def profile(label, gradient):
        return GradientProfile(label, jacobian, gradient, 0.7, "spectral", "final", "h")

    fig = figure([profile("zero V", np.zeros((1, 6))), profile("drawn V", jacobian * 2)])
    left, right = fig.axes[:2]
    colours = {line.get_label(): line.get_color() for line in left.get_lines()}
    (drawn,) = [line for line in right.get_lines() if line.get_label() == "drawn V"]
    assert drawn.get_color() == colours["drawn V"] != colours["zero V"]
    assert any("every norm is 0: zero V" in t.get_text() for t in right.texts)


def test_fewer_trajectories_than_sequences_are_said(tmp_path, capsys):
    """A file of 2 trajectories under the default --sequences 4 was averaged over 2
    without a word (the record said 2)."""
    from odernn.data.simulate import simulate

    simulate(load_spec("train").with_overrides(n=2, n_steps=20), tmp_path / "two.h5",
             progress=False)
    assert main(["gradients", "--data", str(tmp_path / "two.h5"), "--hidden", "4", "--length",
                 "10", "-o", str(tmp_path / "out"), "-q"]) == 0
    assert "two.h5 holds 2 trajectories: the profiles average over 2, not --sequences 4" in \
        capsys.readouterr().err


def test_the_record_and_the_table_give_each_profiles_own_numbers():
    """gradients.json's norms and the printed table's cells are the profile's: each column
    its own quantity (the Jacobian's and the gradient's apart, each rate its own), and the
    norms the geometric mean over the sequences."""
    from odernn.notes.diagnostics import GradientProfile
    from odernn.notes.diagnostics_output import format_table

    profiles = []
    for radius in (0.7, 1.3):
        params, x, h0, target = problem(T=12, radius=radius)
        profiles.append(gradient_profile(vanilla_probe(params, x, target, h0, label=f"r{radius}")))
    for p in profiles:
        record = p.to_dict()
        assert record["jacobian_norm"] == p.jacobian_norm.tolist()
        assert record["gradient_norm"] == p.gradient_norm.tolist()
        assert not np.allclose(p.jacobian_norm, p.gradient_norm)
    lines = format_table(profiles, lags=(1, 10)).splitlines()
    assert lines[0].split() == ["configuration", "radius", "J(1)", "J(10)", "J", "rate",
                                "dL(1)", "dL(10)", "dL", "rate"]
    for p, line in zip(profiles, lines[1:3], strict=True):
        row = p.table((1, 10))
        want = [row[k] for k in ("spectral_radius", "jacobian_lag_1", "jacobian_lag_10",
                                 "jacobian_rate", "gradient_lag_1", "gradient_lag_10",
                                 "gradient_rate")]
        assert line.split() == [p.label, *(f"{v:.3g}" for v in want)]
    assert row["jacobian_rate"] != pytest.approx(row["gradient_rate"], rel=1e-3)
    ones = np.ones((2, 3))
    two = GradientProfile("g", ones, np.array([[1.0, 1.0, 1.0], [100.0, 4.0, 0.0]]), 1.0,
                          "spectral", "final", "h")
    np.testing.assert_allclose(two.gradient_norm, [10.0, 2.0, 0.0])


@pytest.mark.parametrize(("family", "block", "blocks"), [("lstm", 2, 4), ("gru", 2, 3)])
def test_a_fresh_gated_cells_radius_is_its_candidate_blocks_of_its_seed(data, family, block,
                                                                         blocks):
    """PyTorch's gate order: g of (i, f, g, o), n of (r, z, n); the cell drawn from the seed."""
    radii = []
    for seed in (0, 1):
        probe = fresh_probe(family, data, hidden=6, length=10, seed=seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            cell = (torch.nn.LSTMCell if family == "lstm" else torch.nn.GRUCell)(
                3, 6, dtype=torch.float64)
        assert probe.spectral_radius == radius_of(cell.weight_hh.chunk(blocks)[block])
        radii.append(probe.spectral_radius)
    assert radii[0] != radii[1]


def test_oscillator_sequences_are_x_f_eta_at_i_to_v_at_i_plus_1(data):
    """Inputs (x_i, F_i, eta) each scaled to the given RMS over the sequences, targets v_{i+1}."""
    from odernn.notes.probes import oscillator_sequences

    u, y = oscillator_sequences(data, 20, input_scale=0.5)
    np.testing.assert_array_equal(y[..., 0].numpy(), data.v[:, 1:21])
    raw = [data.x[:, :20], data.F[:, :20], np.broadcast_to(data.params["eta"][:, None], (2, 20))]
    for k, channel in enumerate(raw):
        np.testing.assert_allclose(u[..., k].numpy(), 0.5 * channel / np.sqrt(np.mean(channel**2)),
                                   rtol=1e-14)


def test_the_rate_is_the_fit_over_the_second_half_of_the_lags():
    """exp(slope) of log norm against lag over lags T//2 .. T (both ends), zeros skipped, NaN
    from fewer than two points; the table quotes the lags up to T and no further."""
    from odernn.notes.diagnostics import GradientProfile

    rng = np.random.default_rng(5)
    T = 10
    logs = np.where(np.arange(T + 1) < T // 2, 3.0, 0.7) * np.arange(T + 1) \
        + rng.normal(0, 0.2, T + 1)
    norms = np.exp(logs)
    norms[7] = 0.0
    p = GradientProfile("p", norms[None], norms[None], 1.0, "spectral", "final", "h")
    keep = [n for n in range(T // 2, T + 1) if n != 7]
    expected = np.exp(np.polyfit(keep, logs[keep], 1)[0])
    assert p.rate() == pytest.approx(expected, rel=1e-12)
    assert p.rate(start=4, stop=4) != p.rate(start=4, stop=4)  # NaN: one point
    assert p.rate(start=6, stop=7) != p.rate(start=6, stop=7)  # NaN: one point left
    assert set(p.to_dict()["table"]) >= {"jacobian_lag_1", "jacobian_lag_10"}
    short = GradientProfile("s", norms[None, :10], norms[None, :10], 1.0, "spectral", "final",
                            "h")
    assert "jacobian_lag_10" not in short.to_dict()["table"]


def test_a_surrogate_probe_reads_step_i_and_is_scored_on_step_i_plus_1(data):
    """The probe's targets decode to the next states, its inputs are the encoded states and
    forcing of the same step, and it starts from the model's learned initial state."""
    import copy

    from odernn.learn.windows import carried_state, exogenous

    layout = Layout(dt=data.dt)
    model = build("gru", layout, compute_stats(data, layout), hidden=6)
    probe = surrogate_probe(model, data, 30)
    z = torch.as_tensor(carried_state(data, layout)[:, :31], dtype=torch.float64)
    e = torch.as_tensor(exogenous(data, layout)[:, :31], dtype=torch.float64)
    codec = copy.deepcopy(model).double().codec
    torch.testing.assert_close(codec.decode(z[:, :-1], probe.targets, e[:, :-1]), z[:, 1:],
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(probe.inputs, codec.encode(z[:, :-1], e[:, :-1]), rtol=0,
                               atol=0)
    expected = copy.deepcopy(model).double().initial_state(codec.init_features(z[:, 0], e[:, 0]))
    assert probe.state0[0].abs().max() > 0
    torch.testing.assert_close(probe.state0[0], expected[0], rtol=0, atol=0)
