"""What a gradient training changes with its progress: the closed-loop horizon, the learning
rate and Sutskever et al.'s momentum (the options of :class:`~odernn.learn.config.TrainConfig`
that :func:`odernn.learn.gradient.fit` reads at every epoch or optimiser step)."""

from __future__ import annotations

import math
from typing import Any


def horizon_at(config: Any, epoch: int) -> int:
    """Closed-loop horizon of ``epoch``: 0 before ``closed_loop_from`` (a fraction of the
    epochs), then linear from ``horizon_start`` to ``horizon`` over half of the remaining
    epochs, then constant."""
    first = int(round(config.closed_loop_from * config.epochs))
    if config.horizon == 0 or epoch < first:
        return 0
    ramp = max(1, (config.epochs - first) // 2)
    frac = min(1.0, (epoch - first) / ramp)
    return int(round(config.horizon_start + frac * (config.horizon - config.horizon_start)))


def lr_at(config: Any, progress: float) -> float:
    """Learning rate at fractional epoch ``progress``: linear warm-up, then cosine to 1/100."""
    if progress < config.warmup_epochs:
        return config.lr * (progress + 1) / (config.warmup_epochs + 1)
    if config.schedule == "constant":
        return config.lr
    span = max(config.epochs - config.warmup_epochs, 1)
    frac = min(1.0, (progress - config.warmup_epochs) / span)
    return config.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac)))


def momentum_at(step: int, mu_max: float) -> float:
    """Sutskever et al.'s momentum schedule at optimiser step ``step`` (from 0):
    ``mu_t = min(1 - 2^(-1 - log2(floor(t / 250) + 1)), mu_max)``, i.e. 0.5, 0.75, 0.833, ...
    every 250 steps: little momentum while the gradients are large, then more."""
    return min(1.0 - 2.0 ** (-1.0 - math.log2(step // 250 + 1)), mu_max)
