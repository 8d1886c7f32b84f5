"""Several trained seeds of one surrogate, and their mean as a surrogate of its own.

A result trained once is partly the luck of its seed (the reservoir's draw, the initial
weights, the batch order). ``odernn train --seeds K`` trains K independent members
(:func:`odernn.learn.training.train_seeds`); loaded together they are an :class:`Ensemble`,
whose closed loop runs every member in its own closed loop and averages their
trajectories: the ensemble mean, an estimate that is never judged by its best member.
The members' own rollouts travel with the mean's (``Rollout.info["members"]``), so the
evaluator scores each seed and the mean from one pass (:mod:`odernn.assess.evaluate`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from odernn.errors import DataError
from odernn.learn.models.base import Rollout
from odernn.types import Array


class Ensemble:
    """The members ``name -> surrogate`` (one family, one layout) and their mean."""

    def __init__(self, members: Mapping[str, Any]) -> None:
        if not members:
            raise DataError("an ensemble needs at least one member")
        first = next(iter(members.values()))
        for name, m in members.items():
            if (m.family, m.layout) != (first.family, first.layout):
                raise DataError(f"ensemble member {name!r} is a {m.family} surrogate of another "
                                f"layout than the first ({first.family}); seeds of one model "
                                "only")
        self.members = dict(members)
        self.family, self.target, self.layout = first.family, first.target, first.layout
        self.parameter_inputs = tuple(first.parameter_inputs)
        self.warmup_steps = int(first.warmup_steps)
        self.description = first.description

    def check_data(self, data: Any, where: str = "data") -> None:
        next(iter(self.members.values())).check_data(data, where=where)

    def rollout(self, x0: Array, v0: Array | None = None, F: Array | None = None,
                params: Mapping[str, Array] | Array | None = None,
                warmup: tuple[Array, Array | None] | None = None, *,
                n_steps: int | None = None) -> Rollout:
        """Every member's closed loop, and their mean (a trajectory is diverged from the first
        step any member diverged at: the mean is inf from there)."""
        runs = {name: m.rollout(x0, v0, F, params, warmup, n_steps=n_steps)
                for name, m in self.members.items()}
        x = np.mean([r.x for r in runs.values()], axis=0)
        v = None if next(iter(runs.values())).v is None else np.mean(
            [r.v for r in runs.values()], axis=0)
        at = np.stack([r.diverged_at for r in runs.values()])
        first = np.where(at >= 0, at, np.iinfo(at.dtype).max).min(axis=0)
        diverged_at = np.where((at >= 0).any(axis=0), first, -1)
        return Rollout(x, v, diverged_at, warmup=max(r.warmup for r in runs.values()),
                       info={"members": runs})
