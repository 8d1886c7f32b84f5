"""The notes' two examples as presets: faithful data and windows, the Keras layouts, seeding,
and the improved recipe against the faithful one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from odernn.errors import SpecError
from odernn.notes import example_data, example_faithful
from odernn.notes import notes_examples as ne


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def results() -> dict[tuple[str, str], ne.PresetResult]:
    runs = [("sine", "faithful"), ("sine", "improved"), ("noisy-sine", "faithful"),
            ("noisy-sine", "faithful-step1"), ("noisy-sine", "improved")]
    return {run: ne.run_preset(*run, quick=True) for run in runs}


def test_sine_windows_are_the_notes_dataset_items():
    _, x = example_data.notes_series("sine")
    notes_data = torch.sin(torch.linspace(0, 4 * np.pi, 1000))  # the notes' float32 series
    data = torch.as_tensor(x, dtype=torch.float32)
    torch.testing.assert_close(data, notes_data, rtol=0, atol=1e-6)
    ours = example_faithful.SineDataset(data[:800], 20)
    notes = example_faithful.SineDataset(notes_data[:800], 20)
    assert len(ours) == len(notes) == 780
    for i in (0, 1, 379, 779):
        (w, y), (nw, ny) = ours[i], notes[i]
        assert w.shape == (20, 1)
        torch.testing.assert_close(w[:, 0], data[i:i + 20], rtol=0, atol=0)
        torch.testing.assert_close(y, data[i + 20], rtol=0, atol=0)
        torch.testing.assert_close((w, y), (nw, ny), rtol=0, atol=1e-6)


def test_vectorised_val_loss_equals_the_notes_loop():
    data = torch.as_tensor(example_data.notes_series("sine")[1], dtype=torch.float32)
    with example_faithful.seeded(3):
        model = example_faithful.RNNModel()
    loader = torch.utils.data.DataLoader(example_faithful.SineDataset(data[800:], 20),
                                         batch_size=32, shuffle=False)
    criterion, total = torch.nn.MSELoss(), 0.0
    with torch.no_grad():
        for x_val, y_val in loader:
            total += criterion(model(x_val), y_val.unsqueeze(-1)).item()
    assert len(loader) == 6
    assert example_faithful.notes_val_loss(model, data[800:]) == pytest.approx(
        total / len(loader), rel=1e-5)


def test_keras_script_as_printed_raises_and_the_fix_gives_its_windows():
    # the script's data lines, numpy only: np.append without axis flattens the (N, 1) array
    step = 4
    values = np.random.default_rng(0).random((1000, 1))
    train, test = values[0:800, :], values[800:1000, :]
    printed = np.append(test, np.repeat(test[-1, :], step))
    assert printed.shape == (204,)
    with pytest.raises(IndexError):
        example_faithful.convert_to_matrix(printed, step)
    with pytest.raises(ValueError):  # axis=0 alone: the repeated tail is 1-D
        np.append(test, np.repeat(test[-1, :], step), axis=0)
    fixed = np.append(train, np.repeat(train[-1:, :], step, axis=0), axis=0)
    train_x, train_y = example_faithful.convert_to_matrix(fixed, step)

    ours = example_faithful.keras_arrays(values[:, 0], step)
    np.testing.assert_array_equal(ours[0], train_x.reshape(800, 1, 4))
    np.testing.assert_array_equal(ours[1], train_y)
    assert ours[2].shape == (200, 1, 4) and ours[3].shape == (200, 1)
    x = values[:, 0]
    np.testing.assert_array_equal(ours[0][10, 0], x[10:14])
    np.testing.assert_array_equal(ours[1][:796, 0], x[4:800])
    np.testing.assert_array_equal(ours[0][799, 0], [x[799]] * 4)  # the padded end
    np.testing.assert_array_equal(ours[3][:196, 0], x[804:])
    step1 = example_faithful.keras_arrays(x, step, layout="step,1")
    np.testing.assert_array_equal(step1[0][:, :, 0], ours[0][:, 0, :])


@pytest.mark.parametrize(("layout", "shape"), [("1,step", (8, 1, 4)), ("step,1", (8, 4, 1))])
def test_recurrent_weights_act_only_in_the_step_1_layout(layout, shape):
    model = example_faithful.keras_model(layout, seed=0)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    loss = torch.sum(model(x) ** 2)
    loss.backward()
    assert torch.count_nonzero(model.kernel.grad) > 0
    if layout == "1,step":  # one time step: W_hh multiplies only the zero initial state
        assert torch.equal(model.recurrent_kernel.grad, torch.zeros(32, 32))
    else:
        assert model.recurrent_kernel.grad.abs().max() > 1e-6


def test_keras_step_equals_the_fused_sequence():
    model = example_faithful.keras_model("1,step", seed=2)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # Keras starts it at zero, which would hide a bias counted twice
        model.bias.copy_(0.3 * torch.randn(model.bias.shape, generator=g))
    u = torch.rand(3, 7, 4, generator=g)
    y, h = model.sequence(u)
    state = torch.zeros(3, 32)
    for i in range(7):
        out, state = model.step(u[:, i], state)
        torch.testing.assert_close(out, y[:, i], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(state, h[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("name", "variant", "epochs"),
                         [("sine", "faithful", 2), ("sine", "improved", None),
                          ("noisy-sine", "faithful-step1", 2), ("noisy-sine", "improved", 1)])
def test_seeded_runs_are_reproducible(name, variant, epochs):
    a, b = (ne.run_preset(name, variant, epochs=epochs, seed=4) for _ in range(2))
    c = ne.run_preset(name, variant, epochs=epochs, seed=5)
    assert [r["val_loss"] for r in a.history] == [r["val_loss"] for r in b.history]
    np.testing.assert_array_equal(a.forecast, b.forecast)
    assert not np.array_equal(a.forecast, c.forecast)


def test_improved_sine_beats_the_faithful_script(results):
    faithful, improved = results["sine", "faithful"], results["sine", "improved"]
    assert len(faithful.history) == ne.QUICK_EPOCHS
    assert faithful.forecast.shape == improved.forecast.shape == (200,)
    np.testing.assert_array_equal(faithful.reference, improved.heldout)
    # the least-squares readout predicts to float32 precision and forecasts stably
    assert improved.val_loss < 1e-8 < faithful.val_loss
    assert improved.forecast_mse < 1e-5
    assert improved.forecast_mse * 1e3 < faithful.forecast_mse
    assert improved.time_to(faithful.val_loss) == improved.train_time_s


def test_noisy_sine_metrics_use_the_conditional_mean(results):
    for variant in ne.VARIANTS["noisy-sine"]:
        r = results["noisy-sine", variant]
        np.testing.assert_allclose(r.reference, np.sin(0.02 * np.arange(800, 1000)) + 1)
        assert r.forecast_mse == pytest.approx(np.mean((r.forecast - r.reference) ** 2))
        # one-step MSE: noise variance 1/3 plus the error of the estimated mean (cross term
        # small on 196 points)
        assert 0.25 < r.val_loss < 1.5
        assert 0 < r.one_step_mse_vs_mean < r.val_loss
    assert results["noisy-sine", "faithful"].settings["layout"] == "(1,step)"


def test_table_section_and_figure(results, tmp_path):
    rows = ne.preset_table(list(results.values()))
    assert [(r["preset"], r["variant"]) for r in rows] == [
        *results, ("sine", "baseline: zero"), ("noisy-sine", "baseline: training mean"),
        ("noisy-sine", "baseline: sin(0.02 t) + 1")]
    by = {(r["preset"], r["variant"]): r for r in rows}
    faithful, improved = results["sine", "faithful"], results["sine", "improved"]
    assert by["sine", "faithful"]["work_ratio"] is None
    assert by["sine", "improved"]["threshold"] == faithful.val_loss
    assert by["sine", "improved"]["steps_to_threshold"] == 0  # a least-squares fit
    assert by["sine", "improved"]["work_ratio"] == pytest.approx(
        faithful.first(faithful.val_loss, "work") / improved.first(faithful.val_loss, "work"))
    assert by["sine", "improved"]["forecast_gain"] == pytest.approx(
        faithful.forecast_mse / improved.forecast_mse)
    assert by["sine", "improved"]["one_step_mse_vs_mean"] is None
    for key, r in results.items():  # each row's totals are its history's last
        assert [by[key][k] for k in ("epochs", "steps", "work")] == [
            r.history[-1][k] for k in ("epoch", "steps", "work")]
    for variant in ne.VARIANTS["noisy-sine"]:
        row = by["noisy-sine", variant]
        assert row["threshold"] == pytest.approx(example_data.NOISE_VARIANCE + ne.NOISE_MARGIN)
        reached = [h for h in results["noisy-sine", variant].history
                   if h["val_loss"] <= row["threshold"]]
        assert row["epochs_to_threshold"] == (reached[0]["epoch"] if reached else None)
    section = ne.preset_section(list(results.values()))
    assert len(section.tables[0].rows) == 8
    path = ne.plot_preset(list(results.values()), tmp_path / "presets.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_work_counts_are_per_epoch_and_cumulative(results):
    # the notes' Keras data: 800 windows, batches of 16; (1, step) is one cell step per window,
    # (step, 1) four; the improved recipe: 10 steps of 16 stretches of 50 + 20 windows
    per_epoch = {"faithful": (50, 800), "faithful-step1": (50, 3200), "improved": (10, 11200)}
    for variant, (steps, work) in per_epoch.items():
        history = results["noisy-sine", variant].history
        assert [h["steps"] for h in history] == [steps * (i + 1) for i in range(len(history))]
        assert [h["work"] for h in history] == [work * (i + 1) for i in range(len(history))]
    sine = results["sine", "faithful"].history
    assert sine[0]["steps"] == 25 and sine[0]["work"] == 780 * 20


def test_the_sine_forecast_of_zero_scores_the_held_out_mean_square():
    """The held-out points cover t from 10.06 to 12.57, less than a period: the integral of
    sin^2 over them, not the mean square over a period (1/2)."""
    t, _ = example_data.notes_series("sine")
    a, b = t[800], t[-1]
    integral = ((b - a) / 2 - (np.sin(2 * b) - np.sin(2 * a)) / 4) / (b - a)
    assert ne.sine_baseline()["forecast_mse"] == pytest.approx(integral, rel=2e-2)
    assert ne.sine_baseline()["forecast_mse"] > 0.55


def test_noisy_sine_baselines_score_what_the_noise_allows():
    # the notes' noise is 2 * np.random.rand: U[0, 2), mean 1, variance 4/12
    t, x = example_data.notes_series("noisy-sine")
    truth = np.sin(0.02 * t) + 1
    assert abs(example_data.NOISE_VARIANCE - 4 / 12) < 1e-15
    assert np.mean(x - truth) == pytest.approx(0, abs=4 * np.sqrt(1 / 3 / 1000))
    flat, best = ne.noisy_sine_baselines()
    n = 196  # the one-step points 804..999
    # MSE of the conditional mean: mean of e^2, e ~ U[-1, 1): mean 1/3, variance 1/5 - 1/9
    sigma = np.sqrt((1 / 5 - 1 / 9) / n)
    assert abs(best["val_loss"] - example_data.NOISE_VARIANCE) < 3 * sigma
    assert best["one_step_mse_vs_mean"] == best["forecast_mse"] == 0.0
    # the flat line adds its squared bias b; the cross term 2 e (mu - m) adds variance 4 b / 3
    m = x[:800].mean()
    bias = np.mean((truth[804:] - m) ** 2)
    assert flat["one_step_mse_vs_mean"] == pytest.approx(bias)
    assert abs(flat["val_loss"] - (example_data.NOISE_VARIANCE + bias)) < 3 * np.sqrt(
        (1 / 5 - 1 / 9 + 4 * bias / 3) / n)
    assert flat["forecast_mse"] == pytest.approx(np.mean((truth[800:] - m) ** 2))
    # a variant that learned the noise's mean beats the flat line but not the floor
    assert best["val_loss"] < flat["val_loss"]


def test_bad_names_are_refused():
    with pytest.raises(SpecError, match="allowed: sine, noisy-sine"):
        ne.run_preset("cosine", "faithful")
    with pytest.raises(SpecError, match="faithful-step1"):
        ne.run_preset("noisy-sine", "step1")
    with pytest.raises(SpecError, match="no epochs"):
        ne.run_preset("sine", "improved", epochs=5)


# -- the four ways: a task that needs memory ---------------------------------------------------


def test_long_range_task_defeats_a_fixed_window_linear_model():
    from odernn.notes import four_ways as fw

    train, test = fw.long_range_data(n_train=16, n_test=8, n_steps=300)
    errors = fw.linear_window_errors(train, test, (5, 20, 50, 300))
    # windows shorter than the oscillator's ringing (~200 steps) leave most of the variance
    for w in (5, 20, 50):
        assert errors[w] > 0.3, (w, errors[w])
    assert errors[5] > errors[20] > errors[50]
    # the task is linear: the whole history (the window covering every step) is exact, so
    # the failure above is missing memory, not noise or nonlinearity
    assert errors[300] < 1e-8
    # the old task (next velocity from x, F, F_next, eta) is solved by a 3-step window
    assert fw.old_task_residual(n=4, n_steps=300) < 1e-10


def test_the_two_nmses_of_the_four_ways_share_their_denominator():
    """Predicting the mean scores 1 in both: the networks' NMSE divided by torch's unbiased
    variance (0.99 for 100 values) while the linear windows' divided by numpy's, and the
    table compares the two."""
    from odernn.notes import four_ways as fw

    train, test = fw.long_range_data(n_train=4, n_test=1, n_steps=100)
    mean = torch.full_like(test.y, float(test.y.mean()))
    assert fw.nmse(mean, test) == pytest.approx(1.0, abs=1e-6)
    assert test.y.numel() == 100


def test_long_range_oscillator_is_exact():
    from scipy.integrate import solve_ivp

    from odernn.notes import four_ways as fw

    forcing = np.random.default_rng(1).standard_normal((1, 30))
    x = fw.simulate(forcing)[0]
    z, expected = np.zeros(2), []
    for f in forcing[0]:
        sol = solve_ivp(lambda t, s, f=f: [s[1], f - fw.ETA * s[1] - s[0]], (0, fw.DT), z,
                        rtol=1e-12, atol=1e-12)
        z = sol.y[:, -1]
        expected.append(z[0])
    np.testing.assert_allclose(x, expected, rtol=0, atol=1e-9)


def test_four_ways_spend_equal_budgets():
    from odernn.notes import four_ways as fw

    train, test = fw.long_range_data(n_train=8, n_test=4, n_steps=40)
    rows = fw.compare(train, test, 6, say=lambda s: None)
    by = {r["method"]: r for r in rows}
    assert list(by) == list(fw.METHODS)
    for name in ("vanilla RNN, Adam", "vanilla RNN, ESN init + Nesterov momentum", "LSTM, Adam"):
        assert by[name]["cost"] == by[name]["steps"] == 6
    hf = by["vanilla RNN, Hessian-free"]
    assert hf["steps"] >= 1 and hf["cost"] >= 6 and hf["cost"] > hf["steps"]  # CG products
    assert by["echo state network"]["steps"] == 0
    for r in rows:
        assert np.isfinite(r["test_nmse"]) and r["history"][-1]["test_nmse"] == r["test_nmse"]
    again = fw.train_method("vanilla RNN, Adam", train, test, 6)
    assert again["test_nmse"] == by["vanilla RNN, Adam"]["test_nmse"]
    with pytest.raises(SpecError, match="allowed"):
        fw.train_method("GRU", train, test, 6)


def test_the_four_ways_parts_are_the_notes_equations():
    """The Elman network is the notes' (bptt.forward, bias included); the ESN-initialised W
    has 15 weights per unit at spectral radius 1.1; NMSE is 1 for the mean, 0 for the
    targets; the echo state network keeps the ridge that scored best on held-out sequences."""
    from odernn.notes import bptt
    from odernn.notes import four_ways as fw

    p = fw.elman_params(6, "uniform", seed=2)
    u = torch.randn(3, 7, 1, generator=torch.Generator().manual_seed(0))
    y, h = fw.elman(p, u)
    notes = bptt.forward(bptt.RNNParams(*(p[k].double().numpy() for k in ("U", "W", "V", "b",
                                                                          "c"))),
                         u.double().numpy())
    np.testing.assert_allclose(h.numpy(), notes.h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y.numpy(), notes.y, rtol=1e-5, atol=1e-6)
    w = fw.elman_params(40, "esn", seed=1)["W"].double()
    assert torch.linalg.eigvals(w).abs().max().item() == pytest.approx(1.1, rel=1e-6)
    assert torch.all((w != 0).sum(dim=1) == 15)
    train, test = fw.long_range_data(n_train=8, n_test=4, n_steps=40)
    n = test.y.numel()
    assert fw.nmse(torch.full_like(test.y, float(test.y.mean())), test) == pytest.approx(
        1.0, rel=2 / n)
    assert fw.nmse(test.y, test) == 0.0
    row = fw.train_method("echo state network", train, test, 1)
    assert row["ridge"] == min(row["ridge_scores"], key=row["ridge_scores"].get)
    assert len(set(row["ridge_scores"].values())) > 1


def test_the_improved_keras_training_never_reads_the_held_out_points():
    """Every window, teacher-forced target and closed-loop target of training lies before
    TRAIN_POINTS: changing the held-out values leaves the training losses as they were."""
    from odernn.notes.example_data import TRAIN_POINTS, notes_series
    from odernn.notes.example_improved import train_improved_keras

    _, x = notes_series("noisy-sine")
    other = x.copy()
    other[TRAIN_POINTS:] += 5.0
    losses = [[row["train_loss"] for row in train_improved_keras(a, epochs=1).history]
              for a in (x, other)]
    assert losses[0] == losses[1]


@pytest.mark.parametrize("shape", [(1, 4, 1), (1, 1, 4)])
def test_the_window_forecast_appends_each_prediction_and_drops_the_oldest(shape):
    """The notes' recursive forecast, with a model that predicts the window's last value plus
    its first (so that the order within the window shows): windows [1, 2, 3, 4] ->
    5, then [2, 3, 4, 5] -> 7, then [3, 4, 5, 7] -> 10."""
    def model(window):
        assert window.shape == shape
        flat = window.flatten()
        return (flat[-1] + flat[0]).reshape(1, 1)

    initial = torch.arange(1.0, 5.0).reshape(shape)
    np.testing.assert_array_equal(example_faithful.window_forecast(model, initial, 4),
                                  [5.0, 7.0, 10.0, 14.0])
