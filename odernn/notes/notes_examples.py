"""The lecture notes' two code examples, reproduced as presets: faithful and improved.

Two presets, the notes' two series (``datasets/sine.toml``, ``noisy-sine.toml``):

- ``sine``, the notes' PyTorch example: ``sin(t)`` at 1000 points on
  ``[0, 4 pi]``, 800 for training, 200 held out; an ``nn.RNN`` of 64 tanh
  units and a linear layer predict the next value from 20 previous ones;
- ``noisy-sine``, the notes' Keras example: ``sin(0.02 t) + 2 U[0, 1)`` at
  ``t = 0..999``, split 800/200; ``SimpleRNN(32, relu) -> Dense(8, relu) ->
  Dense(1)`` predicts the next value from 4 previous ones. TensorFlow is not a
  dependency: the Keras model is rebuilt in PyTorch layer for layer (Keras'
  initialisers: Glorot-uniform kernels, orthogonal recurrent kernel, zero
  biases; RMSprop with Keras' defaults ``lr 1e-3, rho 0.9, eps 1e-7``).

Variants (:data:`VARIANTS`):

- ``faithful``: the notes' script as written, but seeded (model initialisation
  and shuffling draw from ``seed``, so a run is reproducible bit for bit).
  PyTorch: the per-sample ``SineDataset``/``DataLoader``, Adam 1e-3, batch 32,
  100 epochs, and the recursive forecast that re-feeds a 20-value window. Keras:
  windows of ``convertToMatrix`` reshaped to ``(1, step)`` (one time step of 4
  features, so the recurrence never acts across time), RMSprop, batch 16, 100
  epochs. As printed the Keras script raises ``IndexError`` (``np.append``
  without ``axis`` flattens the data); the fix used is
  ``np.append(test, np.repeat(test[-1:, :], step, axis=0), axis=0)`` (``axis=0``
  alone raises ``ValueError``: the repeated tail is 1-D).
- ``faithful-step1`` (Keras only): the same script with windows of shape
  ``(step, 1)``, four time steps of one value, so the recurrent weights act.
- ``improved``: same data, same model, our recipe. ``sine``: the linear layer
  solved by ridge regression on the states of the seeded recurrent layer, no
  gradient descent (:func:`train_improved_sine`); ``noisy-sine``: the state
  carried across windows and a closed-loop loss (:func:`train_improved_keras`).
  Forecasts are stateful rollouts that carry the hidden state instead of
  re-feeding windows.

Measurements (:class:`PresetResult`): the validation loss after each epoch
against the training work done (epochs, optimiser steps and recurrent-cell
steps: counts that do not depend on how busy the machine is; training seconds
are kept as information), and the recursive forecast of the 200 held-out
points from the training data.

What the noise allows on ``noisy-sine``: the series is ``sin(0.02 t) + 2 u``
with ``u ~ U[0, 1)``, so ``x - (sin(0.02 t) + 1)`` is uniform on ``[-1, 1)``,
independent of the past, with variance ``4/12 = 1/3``. No forecaster, one-step
or recursive, can score an MSE against the held-out values below 1/3 in
expectation; the forecast ``sin(0.02 t) + 1`` (the conditional mean) attains
it. So the validation loss (one-step MSE on the held-out values) is reported
beside the one-step MSE against the conditional mean, the recursive forecast is
scored against the conditional mean, and two baselines sit in the table
(:func:`noisy_sine_baselines`): the flat line at the training mean and the
conditional mean itself. Speed is the work until the validation loss first
reaches :data:`NOISY_THRESHOLD`, the noise variance plus a margin, so that a
run is not credited for a dip into the noise.

The improved recipes are written here in plain torch rather than with
:mod:`odernn.learn.training`, because the presets keep the notes' models (a bare
``nn.RNN`` + linear layer, the Keras stack), split one series in time, and time
training per epoch, while ``training.train`` builds its own surrogates (with a
learned initial-state map and normalisation), splits by trajectory and writes
checkpoints every epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure as MplFigure
from torch import Tensor, nn
from torch.func import functional_call

from odernn.assess.document import Figure, Section, Table
from odernn.data.simulate import simulate_trajectories
from odernn.data.spec import load_spec
from odernn.errors import SpecError

VARIANTS: dict[str, tuple[str, ...]] = {
    "sine": ("faithful", "improved"),
    "noisy-sine": ("faithful", "faithful-step1", "improved"),
}
"""Preset names and their variants."""
LAYOUTS = {"faithful": "1,step", "faithful-step1": "step,1"}
"""Window layout of the Keras example's faithful variants."""
NOTES_EPOCHS = 100
IMPROVED_EPOCHS = 20
QUICK_EPOCHS = 3
TRAIN_POINTS = 800
"""Both scripts train on the first 800 of 1000 points and hold out the last 200."""
SEQ_LEN, BATCH, HIDDEN, LR = 20, 32, 64, 1e-3
"""The PyTorch example's hyperparameters."""
STEP, KERAS_BATCH, UNITS, DENSE = 4, 16, 32, 8
"""The Keras example's hyperparameters."""
NOISE_VARIANCE = 4.0 / 12.0
"""Variance of ``2 U[0, 1)``: the floor of any one-step MSE on ``noisy-sine``."""
NOISE_MARGIN = 0.1
"""How far above the noise floor the ``noisy-sine`` speed threshold sits: above the dips of
a validation loss measured on 196 noisy points, below what a 4-value window allows."""
NOISY_THRESHOLD = NOISE_VARIANCE + NOISE_MARGIN
"""Validation loss whose first crossing measures a ``noisy-sine`` variant's speed."""


@dataclass
class PresetResult:
    """One run of a preset variant.

    ``history`` has one row per epoch: ``epoch``, ``steps`` (cumulative optimiser
    steps), ``work`` (cumulative recurrent-cell steps of the training forward passes,
    summed over the batch), ``time`` (cumulative training seconds), ``train_loss``,
    ``val_loss``. ``t`` are the held-out times,
    ``heldout`` the held-out values, ``reference`` what the forecast is scored
    against (the values for ``sine``, the conditional mean for ``noisy-sine``),
    ``forecast`` the recursive forecast. ``val_loss`` is the final validation
    loss; ``one_step_mse_vs_mean`` (``noisy-sine`` only) the final one-step MSE
    against the conditional mean.
    """

    name: str
    variant: str
    seed: int
    settings: dict[str, Any]
    history: list[dict[str, float]]
    t: np.ndarray
    heldout: np.ndarray
    reference: np.ndarray
    forecast: np.ndarray
    forecast_mse: float
    train_time_s: float
    forecast_time_s: float
    one_step_mse_vs_mean: float | None = None

    @property
    def val_loss(self) -> float:
        return self.history[-1]["val_loss"]

    def time_to(self, loss: float) -> float | None:
        """Training seconds until the validation loss first reached ``loss`` (None: never)."""
        return self.first(loss, "time")

    def first(self, loss: float, key: str = "epoch") -> float | None:
        """``key`` (``epoch``, ``steps``, ``work``, ``time``) of the first epoch whose
        validation loss is at most ``loss`` (None: never)."""
        return next((row[key] for row in self.history if row["val_loss"] <= loss), None)

    @property
    def threshold(self) -> float | None:
        """The loss speed is measured to on ``noisy-sine`` (:data:`NOISY_THRESHOLD`); None on
        ``sine``, where the table uses the faithful run's final loss."""
        return NOISY_THRESHOLD if self.name == "noisy-sine" else None


Progress = Callable[[dict[str, Any]], None]


@dataclass
class Fit:
    """What a training recipe returns to :func:`run_preset`."""

    settings: dict[str, Any]
    history: list[dict[str, float]]
    forecast: np.ndarray
    forecast_time_s: float
    one_step_vs_mean: float | None = None


def run_preset(name: str, variant: str, *, epochs: int | None = None, seed: int = 0,
               quick: bool = False, progress: Progress | None = None) -> PresetResult:
    """Train and evaluate one variant of a preset (see :data:`VARIANTS`).

    ``epochs``: passes over the training windows of a faithful variant (default
    the notes' 100, or 3 with ``quick``) or epochs of 10 optimiser steps of the
    improved ``noisy-sine`` recipe (default 20, or 3 with ``quick``); the
    improved ``sine`` recipe is a least-squares fit without epochs.
    ``progress(row)`` is called after every epoch.
    """
    if name not in VARIANTS:
        raise SpecError(f"preset {name!r} unknown; allowed: {', '.join(VARIANTS)}")
    if variant not in VARIANTS[name]:
        raise SpecError(f"variant {variant!r} of preset {name!r} unknown; allowed: "
                        f"{', '.join(VARIANTS[name])}")
    if epochs is not None and epochs < 1:
        raise SpecError(f"epochs must be >= 1, got {epochs}")
    if name == "sine" and variant == "improved" and epochs is not None:
        raise SpecError("the improved sine recipe is a least-squares fit: it has no epochs")
    t, x = notes_series(name)

    def report(row: dict[str, float]) -> None:
        if progress is not None:
            progress({"preset": name, "variant": variant, **row})

    default = QUICK_EPOCHS if quick else NOTES_EPOCHS
    if name == "sine" and variant == "faithful":
        fit = train_faithful_sine(x, epochs=epochs or default, seed=seed, report=report)
    elif name == "sine":
        fit = train_improved_sine(x, seed=seed, report=report)
    elif variant == "improved":
        fit = train_improved_keras(x, epochs=epochs or (QUICK_EPOCHS if quick
                                                        else IMPROVED_EPOCHS),
                                   seed=seed, report=report)
    else:
        fit = train_faithful_keras(x, LAYOUTS[variant], epochs=epochs or default, seed=seed,
                                   report=report)
    reference = x[TRAIN_POINTS:] if name == "sine" else conditional_mean(t[TRAIN_POINTS:])
    return PresetResult(
        name=name, variant=variant, seed=seed, settings=fit.settings, history=fit.history,
        t=t[TRAIN_POINTS:], heldout=x[TRAIN_POINTS:], reference=reference, forecast=fit.forecast,
        forecast_mse=float(np.mean((fit.forecast - reference) ** 2)),
        train_time_s=fit.history[-1]["time"], forecast_time_s=fit.forecast_time_s,
        one_step_mse_vs_mean=fit.one_step_vs_mean)


# -- data -------------------------------------------------------------------------------------


def notes_series(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Times and values ``(t (1000,), x (1000,))`` of a preset, from its built-in spec."""
    data = simulate_trajectories(load_spec(name))
    return data.t, data.x[0]


def conditional_mean(t: np.ndarray) -> np.ndarray:
    """``E[x(t)] = sin(0.02 t) + 1`` of ``noisy-sine`` (``t`` = 0, 1, ..., the sample index):
    the best forecast of the noisy series."""
    return np.sin(0.02 * t) + 1.0


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Draw from torch's global generator seeded with ``seed``, restoring it afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class Clock:
    """Training seconds: runs between :meth:`start` and :meth:`stop`, so validation is not timed."""

    def __init__(self) -> None:
        self.total, self._since = 0.0, None

    def start(self) -> None:
        self._since = time.perf_counter()

    def stop(self) -> float:
        self.total += time.perf_counter() - self._since
        return self.total


# -- the PyTorch example: sine ----------------------------------------------------------------


class SineDataset(torch.utils.data.Dataset):
    """The notes' dataset: window ``data[idx:idx+seq_len]`` (with a feature axis), target the
    next value."""

    def __init__(self, data: Tensor, seq_len: int) -> None:
        self.data = data
        self.seq_len = seq_len

    def __len__(self) -> int:
        return len(self.data) - self.seq_len

    def __getitem__(self, idx: int) -> tuple[Tensor, Tensor]:
        x = self.data[idx:idx + self.seq_len]
        y = self.data[idx + self.seq_len]
        return x.unsqueeze(-1), y


class RNNModel(nn.Module):
    """The notes' model: ``nn.RNN`` (tanh) then a linear layer on the last time step."""

    def __init__(self, input_size: int = 1, hidden_size: int = HIDDEN,
                 output_size: int = 1) -> None:
        super().__init__()
        self.rnn = nn.RNN(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x)
        return self.fc(out[:, -1, :])


def notes_val_loss(model: RNNModel, val: Tensor, seq_len: int = SEQ_LEN,
                   batch_size: int = BATCH) -> float:
    """The notes' validation loss, vectorised: the mean over batches of 32 windows of the
    batch-mean squared error of the one-step prediction."""
    windows, targets = val.unfold(0, seq_len, 1)[:-1], val[seq_len:]
    with torch.no_grad():
        errors = (model(windows.unsqueeze(-1))[:, 0] - targets) ** 2
    return float(torch.stack([e.mean() for e in errors.split(batch_size)]).mean())


def window_forecast(model: nn.Module, initial: Tensor, n: int) -> np.ndarray:
    """The notes' recursive forecast: predict, drop the window's first value, append the
    prediction, re-run the whole window (``n`` calls). ``initial`` is the first window in the
    model's layout, ``(1, L, 1)`` (the notes' ``torch.cat`` along time) or ``(1, 1, step)``."""
    shape, values = initial.shape, initial.flatten()
    predictions = []
    with torch.no_grad():
        for _ in range(n):
            pred = model(values.reshape(shape))
            predictions.append(pred.item())
            values = torch.cat([values[1:], pred.flatten()])
    return np.array(predictions)


def train_faithful_sine(x: np.ndarray, *, epochs: int = NOTES_EPOCHS, seed: int = 0,
                        report: Progress = lambda row: None) -> Fit:
    """The notes' PyTorch script: per-sample dataset, Adam 1e-3, batch 32, window re-feeding."""
    data = torch.as_tensor(x, dtype=torch.float32)
    train_data, val_data = data[:TRAIN_POINTS], data[TRAIN_POINTS:]
    train_loader = torch.utils.data.DataLoader(
        SineDataset(train_data, SEQ_LEN), batch_size=BATCH, shuffle=True,
        generator=torch.Generator().manual_seed(seed))
    with seeded(seed):
        model = RNNModel()
    criterion = nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    clock, history = Clock(), []
    for epoch in range(epochs):
        clock.start()
        model.train()
        epoch_train_loss = 0.0
        for x_batch, y_batch in train_loader:
            optimizer.zero_grad()
            y_pred = model(x_batch)
            loss = criterion(y_pred, y_batch.unsqueeze(-1))
            loss.backward()
            optimizer.step()
            epoch_train_loss += loss.item()
        elapsed = clock.stop()
        model.eval()
        row = {"epoch": epoch + 1, "steps": (epoch + 1) * len(train_loader),
               "work": (epoch + 1) * len(train_loader.dataset) * SEQ_LEN, "time": elapsed,
               "train_loss": epoch_train_loss / len(train_loader),
               "val_loss": notes_val_loss(model, val_data)}
        history.append(row)
        report(row)
    start = time.perf_counter()
    forecast = window_forecast(model, train_data[-SEQ_LEN:].reshape(1, SEQ_LEN, 1),
                               len(val_data))
    settings = {"model": "nn.RNN(1, 64, tanh) + Linear(64, 1)", "optimizer": "Adam",
                "lr": LR, "batch_size": BATCH, "epochs": epochs, "window": SEQ_LEN,
                "data": "per-sample Dataset/DataLoader", "forecast": "window re-feeding"}
    return Fit(settings, history, forecast, time.perf_counter() - start)


RIDGES = (1e-15, 1e-14, 1e-13, 1e-12, 1e-11)
"""Ridge strengths (per row) tried by the improved sine recipe. Smaller ones fit the
float32 rounding noise of the hidden states and are unstable."""
WASHOUT = SEQ_LEN
"""Steps of the teacher-forced pass whose states are not fitted (the state forgets h0 = 0)."""
SELECT_POINTS = 600
"""The improved sine recipe chooses the ridge by forecasting points 600..799 from a fit on
the points before (training data only)."""


def train_improved_sine(x: np.ndarray, *, seed: int = 0,
                        report: Progress = lambda row: None) -> Fit:
    """The notes' model, its linear layer fitted by least squares: no gradient descent.

    The output layer is linear in the hidden states, so for fixed recurrent
    weights the loss is a linear least-squares problem with an exact solution.
    The recurrent layer keeps its seeded initialisation (as in an echo state
    network): its states after 20 steps carry the recent values, and a sine
    obeys the linear recurrence ``x_{i+1} = 2 cos(dt) x_i - x_{i-1}``, so a
    linear readout of them predicts it to float32 precision. One teacher-forced
    pass over the training series gives the states (stateful, the whole series
    as one sequence); a ridge regression in float64 gives the readout; the
    ridge strength is the one whose closed-loop forecast of training points
    600..799, from a fit on the points before, is best.
    """
    data = torch.as_tensor(x, dtype=torch.float32)
    train_data, val_data = data[:TRAIN_POINTS], data[TRAIN_POINTS:]
    with seeded(seed):
        model = RNNModel()
    clock = Clock()
    clock.start()
    with torch.no_grad():
        states, _ = model.rnn(train_data.reshape(1, -1, 1))
    features = torch.cat([states[0, WASHOUT - 1:-1], torch.ones(TRAIN_POINTS - WASHOUT, 1)], 1)
    features, targets = features.double(), train_data[WASHOUT:].double()
    head = SELECT_POINTS - WASHOUT
    readouts = torch.stack([ridge_solve(features[:head], targets[:head], r) for r in RIDGES])
    start = states[:, SELECT_POINTS - 1].expand(len(RIDGES), -1)[None].contiguous()
    tail = train_data[SELECT_POINTS:].numpy()
    forecasts = stateful_forecast(model, start, len(tail), readouts.float())
    errors = np.mean((forecasts - tail) ** 2, axis=1).tolist()
    ridge = RIDGES[int(np.argmin(errors))]
    _set_readout(model, ridge_solve(features, targets, ridge))
    elapsed = clock.stop()
    with torch.no_grad():
        train_loss = float(torch.mean((model.fc(states[0, WASHOUT - 1:-1])[:, 0]
                                       - train_data[WASHOUT:]) ** 2))
    row = {"epoch": 1, "steps": 0, "work": TRAIN_POINTS, "time": elapsed,
           "train_loss": train_loss,
           "val_loss": notes_val_loss(model, val_data)}
    report(row)
    start = time.perf_counter()
    forecast = stateful_forecast(model, states[:, -1:], len(val_data))[0]
    settings = {"model": "nn.RNN(1, 64, tanh) + Linear(64, 1)",
                "recipe": "recurrent layer at its seeded initialisation; linear layer by "
                          "ridge regression (float64) on the states of one teacher-forced "
                          "pass over the training series",
                "ridge": ridge, "ridge_selection": dict(zip(map(str, RIDGES), errors, strict=True)),
                "washout": WASHOUT, "forecast": "stateful rollout"}
    return Fit(settings, [row], forecast, time.perf_counter() - start)


def ridge_solve(features: Tensor, targets: Tensor, ridge: float) -> Tensor:
    """``argmin_w |A w - y|^2 + ridge * rows * |w|^2`` through the SVD of ``A`` (stable
    for tiny ridges, unlike the normal equations)."""
    u, s, vh = torch.linalg.svd(features, full_matrices=False)
    return vh.T @ (s / (s**2 + ridge * len(features)) * (u.T @ targets))


def _set_readout(model: RNNModel, solution: Tensor) -> None:
    with torch.no_grad():
        model.fc.weight.copy_(solution[:-1].float()[None])
        model.fc.bias.copy_(solution[-1:].float())


def stateful_forecast(model: RNNModel, h: Tensor, n: int,
                      readouts: Tensor | None = None) -> np.ndarray:
    """Closed loop from hidden states ``h (1, B, H)``: predict, feed the prediction back as the
    next input, carry the state (one RNN step per point, O(n)); returns ``(B, n)``.
    ``readouts (B, H + 1)`` (weights, bias) replace ``model.fc`` by one linear layer per row."""

    def readout(state: Tensor) -> Tensor:
        if readouts is None:
            return model.fc(state)
        return (state * readouts[:, :-1]).sum(-1, keepdim=True) + readouts[:, -1:]

    predictions = []
    with torch.no_grad():
        y = readout(h[0])
        for _ in range(n):
            predictions.append(y[:, 0])
            _, h = model.rnn(y[:, :, None], h)
            y = readout(h[0])
    return torch.stack(predictions, dim=1).numpy()


# -- the Keras example: noisy sine ------------------------------------------------------------


def convert_to_matrix(data: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """The notes' ``convertToMatrix``: windows ``data[i:i+step, :]``, targets ``data[i+step, :]``
    (``data`` of shape ``(N, 1)``)."""
    X, Y = [], []  # noqa: N806 - the notes' names
    for i in range(len(data) - step):
        d = i + step
        X.append(data[i:d, :])
        Y.append(data[d, :])
    return np.array(X), np.array(Y)


def keras_arrays(x: np.ndarray, step: int = STEP,
                 layout: str = "1,step") -> tuple[np.ndarray, ...]:
    """``trainX, trainY, testX, testY`` of the Keras script, with the ``np.append`` fix.

    Each split is padded with ``step`` copies of its last value, so windows at
    the end repeat it (the script's doing). ``layout`` ``"1,step"`` reshapes
    windows to ``(1, step)`` as the script does; ``"step,1"`` keeps ``(step, 1)``.
    """
    values = x.reshape(-1, 1)
    train, test = values[0:TRAIN_POINTS, :], values[TRAIN_POINTS:, :]
    test = np.append(test, np.repeat(test[-1:, :], step, axis=0), axis=0)
    train = np.append(train, np.repeat(train[-1:, :], step, axis=0), axis=0)
    train_x, train_y = convert_to_matrix(train, step)
    test_x, test_y = convert_to_matrix(test, step)
    if layout == "1,step":
        train_x = np.reshape(train_x, (train_x.shape[0], 1, train_x.shape[1]))
        test_x = np.reshape(test_x, (test_x.shape[0], 1, test_x.shape[1]))
    elif layout != "step,1":
        raise SpecError(f"layout {layout!r} unknown; allowed: 1,step or step,1")
    return train_x, train_y, test_x, test_y


class KerasRNN(nn.Module):
    """``SimpleRNN(units, relu) -> Dense(dense, relu) -> Dense(1)`` with Keras' initialisers.

    The recurrence is Keras' ``h_t = relu(x_t kernel + h_{t-1} recurrent_kernel + bias)``
    (one bias), run by PyTorch's fused ``nn.RNN`` kernel with these weights.
    ``forward`` returns the output after the last time step, as Keras does.
    """

    def __init__(self, n_in: int, units: int = UNITS, dense: int = DENSE) -> None:
        super().__init__()
        self.kernel = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_in, units)))
        self.recurrent_kernel = nn.Parameter(nn.init.orthogonal_(torch.empty(units, units)))
        self.bias = nn.Parameter(torch.zeros(units))
        self.dense = nn.Linear(units, dense)
        self.out = nn.Linear(dense, 1)
        for layer in (self.dense, self.out):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.register_buffer("_zero", torch.zeros(units), persistent=False)
        self._kernel = [nn.RNN(n_in, units, nonlinearity="relu", batch_first=True,
                               device="meta")]

    def forward(self, x: Tensor) -> Tensor:
        return self.sequence(x)[0][:, -1]

    def sequence(self, x: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Outputs after every step ``(B, T, 1)`` of inputs ``x (B, T, n_in)``, and the final
        state ``(1, B, units)``, from state ``h`` (zero if None)."""
        if h is None:
            h = x.new_zeros(1, x.shape[0], self.bias.shape[0])
        weights = {"weight_ih_l0": self.kernel.T, "weight_hh_l0": self.recurrent_kernel.T,
                   "bias_ih_l0": self.bias, "bias_hh_l0": self._zero}
        hs, h = functional_call(self._kernel[0], weights, (x, h))
        return self.readout(hs), h

    def step(self, u: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """One step written out, ``u (B, n_in)``, ``h (B, units)`` (closed-loop training)."""
        h = torch.relu(u @ self.kernel + h @ self.recurrent_kernel + self.bias)
        return self.readout(h), h

    def readout(self, h: Tensor) -> Tensor:
        return self.out(torch.relu(self.dense(h)))


def keras_model(layout: str, seed: int) -> KerasRNN:
    """The Keras example's model for windows ``(1, step)`` or ``(step, 1)``, seeded."""
    with seeded(seed):
        return KerasRNN(STEP if layout == "1,step" else 1)


def keras_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """Keras' ``'rmsprop'``: lr 1e-3, rho 0.9, epsilon 1e-7, no momentum."""
    return torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)


def train_faithful_keras(x: np.ndarray, layout: str = "1,step", *, epochs: int = NOTES_EPOCHS,
                         seed: int = 0, report: Progress = lambda row: None) -> Fit:
    """The notes' Keras script in PyTorch: ``model.fit(epochs, batch_size=16)`` (shuffled
    each epoch) with MSE and RMSprop; then the window re-feeding forecast (the script itself
    stops at one-step predictions)."""
    train_x, train_y, test_x, _ = (torch.as_tensor(a, dtype=torch.float32)
                                   for a in keras_arrays(x, STEP, layout))
    train_y = train_y[:, 0]
    test_x, test_y = test_x[:-STEP], torch.as_tensor(x[TRAIN_POINTS + STEP:],
                                                       dtype=torch.float32)
    mean = torch.as_tensor(conditional_mean(np.arange(TRAIN_POINTS + STEP, len(x))),
                           dtype=torch.float32)
    model = keras_model(layout, seed)
    optimizer = keras_optimizer(model)
    generator = torch.Generator().manual_seed(seed)
    clock, history = Clock(), []
    for epoch in range(epochs):
        clock.start()
        total = 0.0
        for rows in torch.randperm(len(train_x), generator=generator).split(KERAS_BATCH):
            optimizer.zero_grad()
            loss = torch.mean((model(train_x[rows])[:, 0] - train_y[rows]) ** 2)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
        elapsed = clock.stop()
        with torch.no_grad():
            pred = model(test_x)[:, 0]
        cells = train_x.shape[0] * train_x.shape[1]  # windows x time steps per window
        row = {"epoch": epoch + 1, "steps": (epoch + 1) * math.ceil(len(train_x) / KERAS_BATCH),
               "work": (epoch + 1) * cells, "time": elapsed, "train_loss": total / len(train_x),
               "val_loss": float(torch.mean((pred - test_y) ** 2))}
        history.append(row)
        report(row)
    shape = (1, 1, STEP) if layout == "1,step" else (1, STEP, 1)
    start = time.perf_counter()
    initial = torch.as_tensor(x[TRAIN_POINTS - STEP:TRAIN_POINTS], dtype=torch.float32)
    forecast = window_forecast(model, initial.reshape(shape), len(x) - TRAIN_POINTS)
    forecast_time = time.perf_counter() - start
    settings = {"model": "SimpleRNN(32, relu) -> Dense(8, relu) -> Dense(1)",
                "layout": f"({layout})", "optimizer": "RMSprop (Keras defaults)",
                "batch_size": KERAS_BATCH, "epochs": epochs, "window": STEP,
                "forecast": "window re-feeding"}
    return Fit(settings, history, forecast, forecast_time,
               float(torch.mean((pred - mean) ** 2)))


IMPROVED_KERAS = {"lr": 3e-3, "batch_size": 16, "window": 50, "burn_in": 20, "horizon": 20,
                  "steps_per_epoch": 10}
"""The improved noisy-sine recipe's settings."""


def train_improved_keras(x: np.ndarray, *, epochs: int = 20, seed: int = 0,
                         report: Progress = lambda row: None) -> Fit:
    """The Keras model, stateful, with a closed-loop loss.

    Same model and ``(1, step)`` inputs, but the state is carried from window to
    window (Keras' ``stateful=True``), so the network can average the noise over
    many steps instead of 4 values. Each optimiser step takes 16 random stretches
    of 50 consecutive windows (teacher forced, loss after a burn-in of 20), then
    runs 20 steps in closed loop (its predictions fed back into the window) with
    the loss against the observed values: a multi-step loss against noisy
    targets is minimised by the conditional mean, so it teaches the model to
    forecast the mean rather than chase the noise. Adam, lr 3e-3, cosine decay.
    """
    cfg = IMPROVED_KERAS
    data = torch.as_tensor(x, dtype=torch.float32)
    windows, targets = data.unfold(0, STEP, 1)[:-1], data[STEP:]  # windows[i] -> targets[i]
    n_train = TRAIN_POINTS - STEP
    model = keras_model("1,step", seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    total_steps = epochs * cfg["steps_per_epoch"]
    generator = torch.Generator().manual_seed(seed)
    length, burn, horizon = cfg["window"], cfg["burn_in"], cfg["horizon"]
    clock, history = Clock(), []
    for epoch in range(epochs):
        clock.start()
        total = 0.0
        for k in range(cfg["steps_per_epoch"]):
            step = epoch * cfg["steps_per_epoch"] + k
            for group in optimizer.param_groups:
                group["lr"] = cfg["lr"] * (0.01 + 0.99 * 0.5 * (1 + math.cos(
                    math.pi * step / total_steps)))
            starts = torch.randint(n_train - length - horizon + 1, (cfg["batch_size"],),
                                   generator=generator)
            rows = starts[:, None] + torch.arange(length)
            optimizer.zero_grad()
            y, h = model.sequence(windows[rows])
            loss = torch.mean((y[:, burn:, 0] - targets[rows][:, burn:]) ** 2)
            future = (starts + length)[:, None] + torch.arange(horizon)
            free = _closed_loop(model, windows[starts + length], h[0], horizon)
            loss = loss + torch.mean((free - targets[future]) ** 2)
            loss.backward()
            optimizer.step()
            total += loss.item()
        elapsed = clock.stop()
        val_loss, vs_mean = _stateful_one_step(model, windows, targets)
        done = (epoch + 1) * cfg["steps_per_epoch"]
        row = {"epoch": epoch + 1, "steps": done,
               "work": done * cfg["batch_size"] * (length + horizon), "time": elapsed,
               "train_loss": total / cfg["steps_per_epoch"], "val_loss": val_loss}
        history.append(row)
        report(row)
    start = time.perf_counter()
    with torch.no_grad():
        _, h = model.sequence(windows[None, :n_train])
        forecast = _closed_loop(model, windows[n_train][None], h[0],
                                len(x) - TRAIN_POINTS)[0].numpy()
    forecast_time = time.perf_counter() - start
    settings = {"model": "SimpleRNN(32, relu) -> Dense(8, relu) -> Dense(1)",
                "layout": "(1,step), stateful", "optimizer": "Adam, cosine", "epochs": epochs,
                **cfg, "forecast": "stateful rollout"}
    return Fit(settings, history, forecast, forecast_time, vs_mean)


def _closed_loop(model: KerasRNN, window: Tensor, h: Tensor, n: int) -> Tensor:
    """``n`` predictions ``(B, n)`` from ``window (B, step)`` and state ``h (B, units)``, each
    appended to the window for the next step."""
    predictions = []
    for _ in range(n):
        y, h = model.step(window, h)
        predictions.append(y[:, 0])
        window = torch.cat([window[:, 1:], y], dim=1)
    return torch.stack(predictions, dim=1)


def _stateful_one_step(model: KerasRNN, windows: Tensor, targets: Tensor) -> tuple[float, float]:
    """One-step MSE of points 804..999 (the Keras test targets that are data), state carried
    over the whole series: against the values and against the conditional mean."""
    with torch.no_grad():
        y, _ = model.sequence(windows[None])
    pred = y[0, TRAIN_POINTS:, 0]  # windows[i] predicts point i + STEP
    t = np.arange(TRAIN_POINTS + STEP, TRAIN_POINTS + STEP + len(pred))
    mean = torch.as_tensor(conditional_mean(t), dtype=torch.float32)
    return (float(torch.mean((pred - targets[TRAIN_POINTS:]) ** 2)),
            float(torch.mean((pred - mean) ** 2)))


# -- tables and figures -----------------------------------------------------------------------


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a - b) ** 2))


def noisy_sine_baselines() -> list[dict[str, Any]]:
    """The two reference forecasters of ``noisy-sine``, scored like the variants.

    ``training mean``: the flat line at the mean of the 800 training values;
    ``sin(0.02 t) + 1``: the conditional mean, the best any forecaster can do
    (expected MSE against the values: the noise variance). Each row: the one-step
    MSE on points 804..999 against the values (``val_loss``) and against the
    conditional mean, and the forecast of points 800..999 against the conditional
    mean (``forecast_mse``). Neither looks at the data after point 799.
    """
    t, x = notes_series("noisy-sine")
    mean = conditional_mean(t)
    one, held = slice(TRAIN_POINTS + STEP, None), slice(TRAIN_POINTS, None)
    rows = []
    for variant, forecast in (("baseline: training mean",
                               np.full_like(x, x[:TRAIN_POINTS].mean())),
                              ("baseline: sin(0.02 t) + 1", mean)):
        rows.append({"preset": "noisy-sine", "variant": variant,
                     "val_loss": _mse(forecast[one], x[one]),
                     "one_step_mse_vs_mean": _mse(forecast[one], mean[one]),
                     "forecast_mse": _mse(forecast[held], mean[held])})
    return rows


def preset_table(results: list[PresetResult]) -> list[dict[str, Any]]:
    """One row per result, then (when ``noisy-sine`` is among them) its two baselines.

    Speed is work, not seconds: the epochs, optimiser steps and recurrent-cell steps
    (``work``) until the validation loss first reached ``threshold``
    (:data:`NOISY_THRESHOLD` on ``noisy-sine``; on ``sine`` the final validation loss of
    the ``faithful`` run of the same seed). ``work_ratio`` is the faithful run's work to
    the threshold over this run's; ``forecast_gain`` the faithful forecast MSE over this
    one's (None without a faithful run of the same preset and seed).
    """
    faithful = {(r.name, r.seed): r for r in results if r.variant == "faithful"}
    rows = []
    for r in results:
        ref = faithful.get((r.name, r.seed))
        threshold = r.threshold if r.threshold is not None else (
            ref.val_loss if ref is not None else None)
        reach = {key: None if threshold is None else r.first(threshold, key)
                 for key in ("epoch", "steps", "work")}
        ref_work = None if ref is None or threshold is None else ref.first(threshold, "work")
        last = r.history[-1]
        rows.append({
            "preset": r.name, "variant": r.variant, "seed": r.seed,
            "epochs": last["epoch"], "steps": last["steps"], "work": last["work"],
            "threshold": threshold, "epochs_to_threshold": reach["epoch"],
            "steps_to_threshold": reach["steps"], "work_to_threshold": reach["work"],
            "work_ratio": None if r is ref or not ref_work or not reach["work"]
            else ref_work / reach["work"],
            "train_time_s": r.train_time_s, "val_loss": r.val_loss,
            "one_step_mse_vs_mean": r.one_step_mse_vs_mean, "forecast_mse": r.forecast_mse,
            "forecast_time_s": r.forecast_time_s,
            "forecast_gain": None if ref is None else ref.forecast_mse / r.forecast_mse,
        })
    if any(r.name == "noisy-sine" for r in results):
        rows += [{**dict.fromkeys(COLUMNS), **row} for row in noisy_sine_baselines()]
    return rows


def preset_figure(results: list[PresetResult]) -> MplFigure:
    """Per preset, a row: held-out truth and the variants' forecasts; validation loss against
    training work (recurrent-cell steps, log-log)."""
    names = [n for n in VARIANTS if any(r.name == n for r in results)]
    fig = MplFigure(figsize=(11.0, 3.6 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), 2, squeeze=False)
    for (ax_f, ax_l), name in zip(axes, names, strict=True):
        runs = [r for r in results if r.name == name]
        first = runs[0]
        if name == "noisy-sine":
            ax_f.plot(first.t, first.heldout, ".", color="0.75", ms=3, label="held-out data")
            ax_f.plot(first.t, first.reference, "k", lw=1.5,
                      label="conditional mean (forecast MSE 0)")
            flat = noisy_sine_baselines()[0]
            _, x = notes_series(name)
            ax_f.axhline(x[:TRAIN_POINTS].mean(), color="0.4", ls="--", lw=1,
                         label=f"training mean: MSE {flat['forecast_mse']:.2g}")
        else:
            ax_f.plot(first.t, first.reference, "k", lw=1.5, label="held-out truth")
        for r in runs:
            label = f"{r.variant} (seed {r.seed})"
            ax_f.plot(r.t, r.forecast, lw=1.2, label=f"{label}: MSE {r.forecast_mse:.2g}")
            rows = r.history
            ax_l.loglog([row["work"] for row in rows], [row["val_loss"] for row in rows],
                        "o-" if len(rows) == 1 else "-", ms=4, label=label)
        ax_f.set(title=f"{name}: recursive forecast of the held-out points", xlabel="t",
                 ylabel="x")
        ax_f.legend(fontsize=7)
        ax_l.set(title=f"{name}: validation loss", xlabel="training work [recurrent-cell steps]",
                 ylabel="validation MSE")
        faithful = [r for r in runs if r.variant == "faithful"]
        if name == "noisy-sine":
            ax_l.axhline(NOISE_VARIANCE, color="k", ls=":", lw=1, label="noise floor 1/3")
            ax_l.axhline(NOISY_THRESHOLD, color="0.5", ls="--", lw=1,
                         label=f"speed threshold {NOISY_THRESHOLD:.3g}")
        elif faithful:
            ax_l.axhline(faithful[0].val_loss, color="0.5", ls="--", lw=1,
                         label=f"faithful's final (seed {faithful[0].seed})")
        ax_l.legend(fontsize=7)
    return fig


def plot_preset(results: list[PresetResult], path: str | Path) -> Path:
    """Save :func:`preset_figure` as a PNG at ``path``."""
    path = Path(path)
    preset_figure(results).savefig(path, dpi=110)
    return path


COLUMNS = {"preset": "preset", "variant": "variant", "seed": "seed", "epochs": "epochs",
           "steps": "optimiser steps", "work": "work [cell steps]",
           "threshold": "speed threshold", "epochs_to_threshold": "epochs to threshold",
           "steps_to_threshold": "steps to threshold",
           "work_to_threshold": "work to threshold", "work_ratio": "faithful's work / this",
           "train_time_s": "training [s]", "val_loss": "val loss",
           "one_step_mse_vs_mean": "one-step MSE vs mean", "forecast_mse": "forecast MSE",
           "forecast_time_s": "forecast [s]", "forecast_gain": "forecast gain"}
"""Columns of :func:`preset_table` and their headers in the report."""


def preset_section(results: list[PresetResult]) -> Section:
    """A report section (:func:`odernn.assess.report.write_report`'s ``extra_sections``): the
    variants side by side with the work they took, and :func:`preset_figure`."""
    rows = [[row[k] for k in COLUMNS] for row in preset_table(results)]
    text = (
        "The lecture notes' two examples, run as written (`faithful`, seeded) and with our "
        "recipe (`improved`: same data, same model). Speed is counted in work, not seconds: "
        "epochs, optimiser steps and recurrent-cell steps (windows times time steps, forward) "
        "until the validation loss first reached the speed threshold; `faithful's work / "
        "this` compares the two. Training seconds are given for information only. "
        "`forecast gain` is the faithful forecast MSE over this one's. The forecast is "
        "recursive over the 200 held-out points.\n\n"
        "`sine`: the threshold is the faithful run's final validation loss. The improved "
        "recipe keeps the recurrent layer at its seeded initialisation and fits the linear "
        "layer by ridge regression on the hidden states (a sine obeys a linear two-term "
        "recurrence): no optimiser steps, one forward pass. It forecasts by carrying the "
        "hidden state instead of re-feeding a window.\n\n"
        "`noisy-sine`: the noise `2 U[0,1)` has variance 4/12 = 1/3 and cannot be forecast, "
        "so no forecaster's expected one-step MSE on the held-out values is below 1/3, and "
        "the conditional mean `sin(0.02 t) + 1` attains it. The two baseline rows are the "
        f"flat line at the training mean and that conditional mean. The speed threshold is "
        f"the noise variance plus {NOISE_MARGIN:g} ({NOISY_THRESHOLD:.3g}), so a run is not "
        "credited for a dip into the noise. The recursive forecast is scored against the "
        "conditional mean: a forecast no better than the training-mean line has learned "
        "nothing of the slow sine. The notes' `(1, step)` layout is one time step of 4 "
        "features, so the recurrent weights never act; `faithful-step1` uses `(step, 1)`; "
        "`improved` carries the state across windows and adds a closed-loop loss.")
    table = Table([COLUMNS[k] for k in COLUMNS], rows,
                  caption="The notes' examples: faithful against improved, and the noisy-sine "
                          "baselines")
    figure = Figure("notes_examples", "Recursive forecasts of the held-out points (left) and "
                    "validation loss against training work (right).", preset_figure(results))
    return Section("The notes' examples, reproduced", text, tables=[table], figures=[figure])
