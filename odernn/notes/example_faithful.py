"""The notes' two example scripts as written, seeded, and the models they train.

- The PyTorch example (``sine``): an ``nn.RNN`` of 64 tanh units and a linear
  layer predict the next value from 20 previous ones (:class:`RNNModel`); the
  per-sample ``SineDataset``/``DataLoader``, Adam 1e-3, batch 32, 100 epochs, and
  the recursive forecast that re-feeds a 20-value window (:func:`train_faithful_sine`).
- The Keras example (``noisy-sine``): ``SimpleRNN(32, relu) -> Dense(8, relu) ->
  Dense(1)`` predicts the next value from 4 previous ones. TensorFlow is not a
  dependency: the model is rebuilt in PyTorch layer for layer (:class:`KerasRNN`,
  with Keras' initialisers: Glorot-uniform kernels, orthogonal recurrent kernel,
  zero biases; RMSprop with Keras' defaults ``lr 1e-3, rho 0.9, eps 1e-7``).
  Windows of ``convertToMatrix`` are reshaped to ``(1, step)`` (one time step of
  4 features, so the recurrence never acts across time), batch 16, 100 epochs
  (:func:`train_faithful_keras`). As printed the script raises ``IndexError``
  (``np.append`` without ``axis`` flattens the data); the fix used is
  ``np.append(test, np.repeat(test[-1:, :], step, axis=0), axis=0)`` (``axis=0``
  alone raises ``ValueError``: the repeated tail is 1-D). Layout ``"step,1"``
  gives windows of shape ``(step, 1)``, four time steps of one value, so the
  recurrent weights act.

Seeded: model initialisation and shuffling draw from ``seed``, so a run is
reproducible bit for bit. Every recipe (these and :mod:`odernn.notes.example_improved`)
returns a :class:`Fit` and times its training with a :class:`Clock`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call

from odernn.errors import SpecError
from odernn.notes.example_data import TRAIN_POINTS, conditional_mean

NOTES_EPOCHS = 100
"""Epochs of both scripts."""
SEQ_LEN, BATCH, HIDDEN, LR = 20, 32, 64, 1e-3
"""The PyTorch example's hyperparameters."""
STEP, KERAS_BATCH, UNITS, DENSE = 4, 16, 32, 8
"""The Keras example's hyperparameters."""

RowReport = Callable[[dict[str, Any]], None]
"""Called with each epoch's row of a recipe's history."""


@dataclass
class Fit:
    """What a training recipe returns to :func:`odernn.notes.notes_examples.run_preset`."""

    settings: dict[str, Any]
    history: list[dict[str, float]]
    forecast: np.ndarray
    forecast_time_s: float
    one_step_vs_mean: float | None = None


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
                        report: RowReport = lambda row: None) -> Fit:
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
    """Keras' ``'rmsprop'`` settings: lr 1e-3, rho 0.9, epsilon 1e-7, no momentum. Not its
    update to the last digit: torch divides by ``sqrt(v) + eps``, Keras by
    ``sqrt(v + eps)``: they agree to about ``eps / sqrt(v)`` (relative) and part where ``v``
    falls to ``eps`` (Keras' denominator never goes below ``sqrt(eps)``, 3.2e-4)."""
    return torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)


def train_faithful_keras(x: np.ndarray, layout: str = "1,step", *, epochs: int = NOTES_EPOCHS,
                         seed: int = 0, report: RowReport = lambda row: None) -> Fit:
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


