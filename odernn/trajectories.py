"""A dataset of trajectories in memory: what the store reads and everything else uses.

Models, training and the evaluator see this (numpy arrays), never HDF5.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from odernn.systems import Oscillator, forcing_from_params
from odernn.types import Array


@dataclass(frozen=True)
class Trajectories:
    """N trajectories on a common time grid.

    ``t (T,)``; ``x (N, T)``; ``v (N, T)`` and ``F (N, T)`` (None for a
    univariate series); ``params[name]`` of shape ``(N,)`` or ``(N, K)``;
    ``attrs`` the provenance (spec text, integrator, seed, ...), with
    ``attrs["forcing"]`` naming the forcing family of an oscillator dataset.
    """

    t: Array
    x: Array
    v: Array | None = None
    F: Array | None = None
    params: dict[str, Array] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_steps(self) -> int:
        return int(self.t.shape[0])

    @property
    def dt(self) -> float:
        return float(self.t[1] - self.t[0])

    @property
    def is_series(self) -> bool:
        """True for a univariate series (``x`` only)."""
        return self.v is None

    def oscillator(self) -> Oscillator:
        """The oscillators that produced these trajectories (needs stored params)."""
        family = str(self.attrs.get("forcing", "none"))
        return Oscillator(np.asarray(self.params["eta"]), forcing_from_params(family, self.params))

    def take(self, index: np.ndarray | slice) -> Trajectories:
        """A subset of the trajectories (same grid, same attrs)."""

        def pick(a: Array | None) -> Array | None:
            return None if a is None else a[index]

        params = {k: v[index] for k, v in self.params.items()}
        return replace(self, x=self.x[index], v=pick(self.v), F=pick(self.F), params=params)
