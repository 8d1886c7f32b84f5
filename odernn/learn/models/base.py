"""The one protocol every surrogate family follows.

A surrogate replaces the integrator: given what an integrator is given (the
initial state ``(x0, v0)``, the forcing samples ``F_i`` and, when configured,
the system's parameters such as the damping ``eta``), it produces the
trajectory in closed loop.

Three calls and a stepper, state always explicit (a value passed in and out, never hidden
mutation):

- ``step(u, state) -> (y, state)``: one time step on inputs ``u (B, C)``;
- ``sequence(u, state) -> (y, state)``: teacher-forced call over a window
  ``u (B, L, C)``, equal to L calls of ``step``;
- ``rollout(x0, v0, F, params=None, warmup=None) -> Rollout``: closed loop over
  the whole horizon, batched over trajectories, O(T), without autograd,
  carrying the hidden state and reporting divergence instead of silent NaNs
  (a series, in next-value mode: ``rollout(x0, warmup=(x_obs, None),
  n_steps=T)``);
- ``stepper(x0, v0, params)``: the same closed loop one step at a time in physical units,
  ``x, v = stepper.step(F_i, F_next)``, with the rollout's numbers to the last bit
  (:mod:`odernn.learn.models.stepper`).

Two attributes tell a caller what a surrogate needs: ``parameter_inputs`` (the names
of the system's parameters it takes, ``params[name]`` of shape ``(N,)``) and
``warmup_steps`` (K observed steps, ``warmup=(x[:, :K], v[:, :K])``, given
when a parameter is withheld and excluded from every error).

Target modes (named the same everywhere):

- ``state``: predict the next state ``(x_{i+1}, v_{i+1})``; closed loop feeds
  the prediction back;
- ``velocity``: the notes' ``(x_i, F_i, h_{i-1}) -> v_{i+1}``; x advances by a
  kinematic rule;
- ``next-value``: a univariate series' next value (the notes' sine examples).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from odernn.types import Array


@dataclass(frozen=True)
class Rollout:
    """A closed-loop trajectory batch.

    ``x`` and ``v`` have shape ``(N, T)`` (``v`` is None for a univariate
    series). ``diverged_at[n]`` is the first step at which trajectory n became
    non-finite or exploded, -1 where it stayed finite; values from that step
    on are ``inf``. ``warmup`` is the number of observed steps the surrogate
    was given (excluded from every method's error).
    """

    x: Array
    v: Array | None
    diverged_at: np.ndarray
    warmup: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_diverged(self) -> int:
        return int(np.count_nonzero(self.diverged_at >= 0))


@runtime_checkable
class Surrogate(Protocol):
    """What training, evaluation and the CLI rely on, whatever the family."""

    family: str
    target: str
    parameter_inputs: tuple[str, ...]
    warmup_steps: int

    def step(self, u: Any, state: Any) -> tuple[Any, Any]: ...

    def sequence(self, u: Any, state: Any = None) -> tuple[Any, Any]: ...

    def rollout(
        self,
        x0: Array,
        v0: Array | None = None,
        F: Array | None = None,
        params: Mapping[str, Array] | Array | None = None,
        warmup: tuple[Array, Array | None] | None = None,
        *,
        n_steps: int | None = None,
    ) -> Rollout: ...

    def stepper(self, x0: Array, v0: Array | None = None,
                params: Mapping[str, Array] | Array | None = None) -> Any: ...
