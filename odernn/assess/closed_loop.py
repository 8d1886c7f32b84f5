"""A surrogate in closed loop with exactly the integrators' information, its output checked.

Used by the accuracy study (:mod:`odernn.assess.evaluate`) and the resonance check
(:mod:`odernn.assess.resonance`), so both give a surrogate the same inputs.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from odernn.errors import DataError
from odernn.learn.models.base import Rollout, Surrogate


def closed_loop(name: str, surrogate: Surrogate, F: np.ndarray,
                params: Mapping[str, np.ndarray],
                observed: tuple[np.ndarray, np.ndarray]) -> Rollout:
    """A closed loop from the observed initial states with exactly the integrators' information:
    ``F`` samples, of the trajectories' ``params`` only those the surrogate takes (none: None),
    and its K warm-up steps of the ``observed`` trajectories (x, v), if it asks for any."""
    k = int(getattr(surrogate, "warmup_steps", 0))
    taken = tuple(getattr(surrogate, "parameter_inputs", ()))
    missing = [p for p in taken if p not in params]
    if missing:
        raise DataError(f"surrogate {name!r} takes {', '.join(taken)}; the test set has no "
                        f"params/{missing[0]}")
    x, v = observed
    rollout = surrogate.rollout(
        x[:, 0], v[:, 0], F, {p: params[p] for p in taken} if taken else None,
        warmup=(x[:, :k], v[:, :k]) if k > 0 else None)
    return _checked(rollout, x.shape, f"surrogate {name!r}")


def _checked(rollout: Rollout, shape: tuple[int, ...], who: str) -> Rollout:
    if rollout.v is None:
        raise DataError(f"{who} predicts no velocity; evaluate compares oscillator surrogates "
                        "(targets state, velocity)")
    x = np.asarray(rollout.x, dtype=np.float64)
    v = np.asarray(rollout.v, dtype=np.float64)
    if x.shape != shape or v.shape != shape:
        raise DataError(f"{who} returned x {x.shape}, v {v.shape}; the test set needs {shape}")
    return Rollout(x, v, np.asarray(rollout.diverged_at), int(rollout.warmup), rollout.info)
