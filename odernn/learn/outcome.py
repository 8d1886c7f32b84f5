"""What a fit produces and how it is judged: the result, the closed-loop validation error.

Both recipes (:mod:`odernn.learn.gradient`, :mod:`odernn.learn.ridge`) select their
checkpoint by :func:`closed_loop_nrmse` and return a :class:`TrainResult`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odernn.assess.metrics import nrmse
from odernn.data.trajectories import Trajectories
from odernn.learn.checkpoint import BEST, LAST
from odernn.learn.models import RecurrentSurrogate


@dataclass
class TrainResult:
    """What a run produced: ``status`` is ok, early-stopped, interrupted or diverged;
    ``best_epoch`` counts from 0 (history.csv's ``epoch`` column counts from 1; the reservoir,
    fitted in one pass, has 0)."""

    run_dir: Path | None
    status: str
    message: str
    best_epoch: int
    best_val_nrmse: float
    history: list[dict[str, float]] = field(default_factory=list)
    train_time_s: float = 0.0
    best_record: dict[str, Any] | None = None
    """The best checkpoint's record, kept in memory when the run has no directory."""

    @property
    def best(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / BEST

    @property
    def last(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / LAST

    @property
    def left_nothing(self) -> bool:
        """Diverged before its first checkpoint: such a run is removed, as a failure (a
        previous run in its place stays)."""
        return self.status == "diverged" and not self.history


def closed_loop_nrmse(model: RecurrentSurrogate, data: Trajectories,
                      n_steps: int | None = None) -> float:
    """NRMSE of x of the closed-loop rollout on ``data`` (warm-up steps excluded; inf if any
    trajectory diverged)."""
    t = data.n_steps if n_steps is None else min(n_steps, data.n_steps)
    k = model.warmup_steps
    warm = None if k == 0 else (data.x[:, :k], None if data.v is None else data.v[:, :k])
    if model.layout.series:
        out = model.rollout(data.x[:, 0], warmup=warm, n_steps=t)
    else:
        out = model.rollout(data.x[:, 0], data.v[:, 0], data.F[:, :t], data.params, warm)
    if out.n_diverged:
        return math.inf
    return nrmse(out.x, data.x[:, :t], start=max(k, 1))
