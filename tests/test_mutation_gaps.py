"""Tests that close gaps a mutation audit found: each fails on a plausible wrong number."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from odernn.assess.metrics import summarize


def test_the_tenth_percentile_of_the_valid_time_is_the_tenth_not_another() -> None:
    """Ten trajectories leave the reference at steps 10, 20, .., 100: the valid times are
    t_10 .. t_100, so the 10th percentile (inverted cdf) is the first of them and the median
    the mean of the fifth and sixth."""
    t = 0.1 * np.arange(121)
    ref = np.tile(np.sin(t), (10, 1))
    pred = ref.copy()
    for i in range(10):
        pred[i, 10 * (i + 1):] += 1.0  # far past the threshold from that step on
    out = summarize(pred, pred, ref, ref, t)
    valid = t[10 * np.arange(1, 11)]
    assert out["valid_time_p10"] == pytest.approx(valid[0], rel=1e-12)
    assert out["valid_time_median"] == pytest.approx(0.5 * (valid[4] + valid[5]), rel=1e-12)
    assert out["valid_time_censored"] == 0


@pytest.mark.parametrize("length", [30, 82, 1026])  # Welch segments of 15, 41, 513: odd
def test_the_power_spectrum_is_welchs_for_an_odd_segment_too(length) -> None:
    """An odd segment has no Nyquist bin: every one-sided bin but 0 counts twice, the last
    one too, as in scipy.signal.welch."""
    from scipy.signal import welch

    from odernn.assess.statistics import power_spectrum

    dt = 0.05
    x = np.random.default_rng(3).normal(size=(2, length)).cumsum(axis=1)
    f, p = welch(x, fs=1 / dt, window="hann", nperseg=length // 2, axis=-1)
    assert (length // 2) % 2 == 1
    freqs, power = power_spectrum(x, dt)
    np.testing.assert_allclose(freqs, f, rtol=1e-14)
    np.testing.assert_allclose(power, p / p.sum(axis=1, keepdims=True), rtol=1e-10, atol=1e-15)


def test_backtracking_stops_at_the_first_iterate_that_does_not_improve() -> None:
    """Martens' rule walks back only while the objective improves: an earlier, lower dip
    behind a worse iterate is not visited (nor its objective evaluated)."""
    from odernn.learn.hessian_free import backtrack

    values = {1: 0.5, 2: 3.0, 4: 2.0, 7: 4.0, 9: 6.0}  # 1 is lowest, but 2 is worse than 4
    iterates = [(i, torch.tensor([float(i)])) for i in values]
    seen = []

    def objective(v):
        seen.append(int(v))
        return values[int(v)]

    i, x, best = backtrack(iterates, objective)
    assert (i, float(x), best) == (4, 4.0, 2.0)
    assert seen == [9, 7, 4, 2]


def test_best_pt_is_the_epoch_of_the_lowest_closed_loop_validation_error(tmp_path, monkeypatch):
    """Scripted validation errors 3, 1, 2, 0.5, 0.7: the best checkpoint is epoch 4's (its
    error and its weights), never a worse later one nor the first."""
    from test_models import oscillator_data, small_config

    import odernn.learn.gradient as gradient
    from odernn.learn.checkpoint import read_checkpoint
    from odernn.learn.models import load_surrogate
    from odernn.learn.training import train

    data = oscillator_data(n=12, n_steps=100)
    errors, weights = iter([3.0, 1.0, 2.0, 0.5, 0.7]), []

    def scripted(model, *args, **kwargs):
        weights.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return next(errors)

    monkeypatch.setattr(gradient, "closed_loop_nrmse", scripted)
    config = small_config("gru", epochs=5, window=10, horizon=10, batch_size=8, val_every=1,
                          patience=None)
    result = train(data, config, tmp_path, progress=False)
    assert result.best_epoch == 3 and result.best_val_nrmse == 0.5
    assert read_checkpoint(tmp_path / "best.pt")["metrics"]["val_nrmse_x"] == 0.5
    best = load_surrogate(tmp_path).state_dict()
    assert all(torch.equal(best[k], w) for k, w in weights[3].items() if k in best)
    assert not all(torch.equal(best[k], w) for k, w in weights[4].items() if k in best)


def test_every_window_of_a_trajectory_is_drawn_the_last_one_too() -> None:
    """Windows of ``length + 1`` points start anywhere from 0 to ``T - length - 1``: the last
    step of the trajectories is trained on like any other, and no window runs past the end."""
    from odernn.learn.windows import MemoryWindows, SequenceTensors

    T, length = 12, 5
    z = torch.arange(T, dtype=torch.float32).repeat(3, 1)[..., None]  # z = the step index
    data = SequenceTensors(z, torch.zeros(3, T, 0))
    source = MemoryWindows(data, n_windows=2000, batch_size=500, length=length, device="cpu")
    batches = [batch for _, batch in source.epoch(torch.Generator().manual_seed(0))]
    starts = torch.cat([batch.starts for batch in batches])
    assert sorted(set(starts.tolist())) == list(range(T - length))
    last = torch.cat([batch.windows().z[:, -1, 0] for batch in batches])
    assert float(last.max()) == T - 1  # a window ends on the trajectory's last point


@pytest.mark.parametrize("uniform", [True, False])
def test_every_integrator_returns_the_given_initial_state_to_the_last_bit(uniform) -> None:
    """The initial state is given, not computed: row 0 of every method's x and v is x0, v0
    exactly (the closed form would otherwise give it back only to rounding)."""
    from odernn.data.forcing import HarmonicForcing
    from odernn.data.integrators import INTEGRATORS, integrate
    from odernn.data.systems import Oscillator

    rng = np.random.default_rng(0)
    n, K = 64, 3
    forcing = HarmonicForcing(rng.uniform(0, 1, (n, K)), rng.uniform(0.2, 3, (n, K)),
                              rng.uniform(0, 6, (n, K)))
    osc = Oscillator.linear(rng.uniform(0, 3, n), forcing)
    x0, v0 = rng.standard_normal(n), rng.standard_normal(n)
    t = 0.01 * np.arange(300) if uniform else np.cumsum(rng.uniform(0.005, 0.015, 300))
    for name, entry in INTEGRATORS.items():
        if entry.order is not None and not uniform:
            continue
        x, v = integrate(name, osc, x0, v0, t)
        assert np.array_equal(x[:, 0], x0) and np.array_equal(v[:, 0], v0), name


def test_the_seed_reaches_every_draw_it_is_documented_to_make(monkeypatch) -> None:
    """``seed`` chooses the initial weights, the batches' windows and the held-out
    trajectories: another seed changes each of them on its own (the same seed, none)."""
    from test_models import oscillator_data, small_config

    from odernn.learn.models import build
    from odernn.learn.models.layout import Layout
    from odernn.learn.training import train
    from odernn.learn.windows import MemoryWindows, compute_stats, split_by_trajectory

    data = oscillator_data(n=12, n_steps=60)
    layout = Layout(dt=data.dt)
    stats = compute_stats(data, layout)

    def weights(seed):
        return build("gru", layout, stats, hidden=8, seed=seed).state_dict()

    a, b, c = weights(0), weights(0), weights(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)

    def held_out(seed):
        return sorted(np.round(split_by_trajectory(data, 0.25, seed)[1].x[:, 0], 12))

    assert held_out(0) == held_out(0) != held_out(1)

    drawn, epoch = [], MemoryWindows.epoch

    def recording(self, gen, first=0):
        for b, batch in epoch(self, gen, first):
            drawn[-1].append((batch.rows.clone(), batch.starts.clone()))
            yield b, batch

    monkeypatch.setattr(MemoryWindows, "epoch", recording)
    runs = []
    for seed in (0, 0, 1):
        drawn.append([])
        train(data, small_config("gru", epochs=1, window=10, horizon=0, batch_size=8,
                                 seed=seed), None, progress=False)
        runs.append(torch.cat([torch.cat(w) for w in drawn[-1]]))
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_another_seed_draws_other_replicas_for_the_lyapunov_exponent() -> None:
    """The replicas' offsets and perturbations come from ``seed``: the same seed gives the
    same estimate to the last bit, another a different one (the same exponent, -eta/2)."""
    from odernn.assess.lyapunov import largest_lyapunov
    from odernn.data.forcing import HarmonicForcing
    from odernn.data.systems import Oscillator

    eta = np.array([0.2, 0.6])
    osc = Oscillator.linear(eta, HarmonicForcing.none(2))

    def run(seed):
        return largest_lyapunov(osc, np.ones(2), np.zeros(2), max_step=0.2, n_transient=2,
                                n_measure=20, replicas=2, seed=seed).exponent

    assert np.array_equal(run(0), run(0))
    assert not np.array_equal(run(0), run(5))
    np.testing.assert_allclose(run(5), -eta / 2, atol=2e-2)


def test_the_pooled_energy_balance_is_the_rms_over_every_trajectory() -> None:
    """Two undamped, unforced oscillators: one predicted exactly (no drift, up to the
    quadrature), one whose amplitude grows 1 % per unit time. The pooled balance is the rms
    of all drifts, sqrt((d0^2 + d1^2) / 2), not their mean: the growing one dominates."""
    from odernn.assess.metrics import energy_balance_error

    t = np.linspace(0.0, 10.0, 2001)
    ref_x = np.stack([np.cos(t), 2.0 * np.cos(t)])
    ref_v = np.stack([-np.sin(t), -2.0 * np.sin(t)])
    grow = np.stack([np.ones_like(t), np.exp(0.01 * t)])
    px, pv = ref_x * grow, ref_v * grow
    F, eta = np.zeros_like(t)[None].repeat(2, 0), np.zeros(2)
    out = summarize(px, pv, ref_x, ref_v, t, F=F, params={"eta": eta})
    drift = energy_balance_error(px, pv, F, eta, t)
    assert drift[1] > 1e3 * drift[0]  # the exact one drifts by the trapezoid rule's error only
    e_ref = float(np.mean(0.5 * (ref_x[:, 1:] ** 2 + ref_v[:, 1:] ** 2)))
    assert out["energy_balance"] == pytest.approx(np.sqrt(np.mean(drift**2)) / e_ref, rel=1e-12)


def test_the_learning_rate_follows_its_schedule_batch_by_batch(monkeypatch) -> None:
    """The schedule is a function of the fractional epoch: batch b of n in epoch e runs at
    ``lr_at(e + b / n)`` (the cosine decays within an epoch, not in steps of an epoch)."""
    from test_models import oscillator_data, small_config

    import odernn.learn.gradient as gradient
    from odernn.learn.training import train

    seen, real = [], gradient.lr_at
    monkeypatch.setattr(gradient, "lr_at", lambda config, p: seen.append(p) or real(config, p))
    data = oscillator_data(n=12, n_steps=60)
    train(data, small_config("gru", epochs=2, window=10, horizon=0, batch_size=8), None,
          progress=False)
    n = (len(seen) - 2) // 2  # each epoch asks once at its start, then once per batch
    assert n > 1
    assert sorted(set(seen)) == pytest.approx([e + b / n for e in range(2) for b in range(n)])
