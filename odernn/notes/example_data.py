"""The data of the notes' two examples: the two series, the split, and the noise floor.

``sine``: ``sin(t)`` at 1000 points on ``[0, 4 pi]``; ``noisy-sine``: ``sin(0.02 t) +
2 U[0, 1)`` at ``t = 0..999`` (the built-in specs ``datasets/sine.toml`` and
``noisy-sine.toml``). Both scripts train on the first 800 points and hold out the last 200.
The sine is computed in float64 and rounded to float32 once, so it is not bit for bit the
PyTorch script's ``torch.sin(torch.linspace(0, 4 pi, 1000))``, which rounds the times to
float32 before the sine: the two differ in the last bits of float32.

What the noise allows on ``noisy-sine``: ``x - (sin(0.02 t) + 1)`` is uniform on
``[-1, 1)``, independent of the past, with variance ``4/12 = 1/3``. No forecaster,
one-step or recursive, can score an MSE against the held-out values below 1/3 in
expectation; the conditional mean ``sin(0.02 t) + 1`` attains it.
"""

from __future__ import annotations

import numpy as np

from odernn.data.simulate import simulate_trajectories
from odernn.data.spec import load_spec

TRAIN_POINTS = 800
"""Both scripts train on the first 800 of 1000 points and hold out the last 200."""
NOISE_VARIANCE = 4.0 / 12.0
"""Variance of ``2 U[0, 1)``: the floor of any one-step MSE on ``noisy-sine``."""


def notes_series(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Times and values ``(t (1000,), x (1000,))`` of a preset, from its built-in spec."""
    data = simulate_trajectories(load_spec(name))
    return data.t, data.x[0]


def conditional_mean(t: np.ndarray) -> np.ndarray:
    """``E[x(t)] = sin(0.02 t) + 1`` of ``noisy-sine`` (``t`` = 0, 1, ..., the sample index):
    the best forecast of the noisy series."""
    return np.sin(0.02 * t) + 1.0

