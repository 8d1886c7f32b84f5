"""From trajectories to training tensors: carried states, exogenous inputs, statistics, splits.

Models never see :class:`~odernn.data.trajectories.Trajectories`; training turns a
dataset into two device tensors once (:func:`to_tensors`), the carried state
``z (N, T, Z)`` and the exogenous inputs ``e (N, T, E)`` of a
:class:`~odernn.learn.models.layout.Layout`, and every batch is a gather of windows
from them (:meth:`SequenceTensors.windows`). Normalisation statistics come
from the training split only (:func:`compute_stats`); splits are by
trajectory, never by time inside a trajectory (:func:`split_by_trajectory`, or the folds of
:func:`folds_by_trajectory` for cross-validation).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from odernn.data.trajectories import Trajectories
from odernn.errors import DataError, SpecError
from odernn.learn.models.layout import Layout, Stats, check_data, raw_target
from odernn.types import Array


def carried_state(data: Trajectories, layout: Layout) -> Array:
    """The true carried state ``z`` at every step, ``(N, T, Z)``.

    ``(x, v)`` for an oscillator; for a series the last ``lags`` values,
    padded at the start with ``x_0``.
    """
    if not layout.series:
        return np.stack([data.x, data.v], axis=-1)
    pad = np.repeat(data.x[:, :1], layout.lags - 1, axis=1)
    padded = np.concatenate([pad, data.x], axis=1)
    return np.lib.stride_tricks.sliding_window_view(padded, layout.lags, axis=1).copy()


def exogenous(data: Trajectories, layout: Layout) -> Array:
    """What is known in advance at every step of ``data``, ``(N, T, E)``
    (:meth:`Layout.exogenous`)."""
    if layout.series:
        return np.zeros((data.n, data.n_steps, 0))
    return layout.exogenous(data.F, data.params)


def raw_targets(z: Array, layout: Layout, e: Array | None = None) -> Array:
    """Un-normalised outputs ``(N, T-1, O)`` of the steps ``i -> i+1`` (:func:`raw_target`;
    ``e (N, T, E)``, the exogenous channels, for a hybrid)."""
    return raw_target(layout, z[:, :-1], z[:, 1:], None if e is None else e[:, :-1])


def _mean_std(a: Array) -> tuple[float, float]:
    """Mean and :func:`scale` of ``a``."""
    mean = float(np.mean(a))
    return mean, scale(mean, float(np.std(a)))


def scale(mean: float, std: float) -> float:
    """The std a quantity is normalised by: its own, or 1 for a constant one (no forcing, a
    parameter of one value), whose std is its rounding, within ``1e-12`` of its mean. Relative
    only: data in any units (a nanomechanical system's 1e-13 m) keeps its variation."""
    return std if std > 1e-12 * abs(mean) else 1.0


def compute_stats(data: Trajectories, layout: Layout) -> Stats:
    """Normalisation statistics of ``data`` (the training split) for ``layout``."""
    check_data(data, layout)
    pairs = {"x": _mean_std(data.x)}
    if not layout.series:
        pairs["v"] = _mean_std(data.v)
        pairs["F"] = _mean_std(data.F)
        for p in layout.parameters:
            pairs[p] = _mean_std(np.asarray(data.params[p]))
    with np.errstate(over="ignore", invalid="ignore"):  # said below, in one line
        y = raw_targets(carried_state(data, layout), layout,
                        exogenous(data, layout) if layout.prior else None)
        for k in range(layout.n_outputs):
            pairs[f"y{k}"] = _mean_std(y[..., k])
    return finite_stats(Stats({k: m for k, (m, _) in pairs.items()},
                              {k: s for k, (_, s) in pairs.items()}), layout)


def finite_stats(stats: Stats, layout: Layout) -> Stats:
    """``stats``, or one DataError line naming the first quantity whose mean or std is not
    finite in float32, which the codec keeps them in: a prior whose one-step prediction
    overflows on the data (a parameter set to ``1e200``) would train to NaN, say "try a lower
    lr", and leave a run that cannot load."""
    top = float(np.finfo(np.float32).max)  # the codec keeps them in float32
    for name, mean in stats.mean.items():
        std = stats.std[name]
        if not (abs(mean) <= top and std <= top):  # NaN fails too
            why = (f"the prior {layout.prior_label}'s one-step prediction overflows on it: "
                   "check its parameters" if layout.prior and name.startswith("y") else
                   "its values overflow float32")
            which, value = ("mean", mean) if not abs(mean) <= top else ("std", std)
            raise DataError(f"the training data's {name} has a {which} of {value!r}, not a "
                            f"finite float32 number: {why}")
    return stats


@dataclass(frozen=True)
class SequenceTensors:
    """A dataset on the device: carried states ``z (N, T, Z)``, exogenous inputs ``e (N, T, E)``."""

    z: Tensor
    e: Tensor

    @property
    def n(self) -> int:
        return int(self.z.shape[0])

    @property
    def n_steps(self) -> int:
        return int(self.z.shape[1])

    def windows(self, rows: Tensor, starts: Tensor, length: int) -> SequenceTensors:
        """Windows of ``length + 1`` points from ``starts`` in trajectories ``rows``: a gather."""
        idx = starts[:, None] + torch.arange(length + 1, device=starts.device)
        r = rows[:, None]
        return SequenceTensors(self.z[r, idx], self.e[r, idx])


class Batch:
    """One batch of windows: ``n`` of them, ``windows(share)`` those of positions ``share``
    (all when None) on the device; ``rows`` and ``starts`` say which they are."""

    n: int
    rows: Tensor
    starts: Tensor

    def windows(self, share: slice | None = None) -> SequenceTensors:
        raise NotImplementedError


class MemoryBatch(Batch):
    """A batch gathered from the device tensors of the whole training set."""

    def __init__(self, data: SequenceTensors, rows: Tensor, starts: Tensor, length: int,
                 device: torch.device) -> None:
        self.data, self.rows, self.starts, self.length = data, rows, starts, length
        self.device, self.n = device, len(rows)

    def windows(self, share: slice | None = None) -> SequenceTensors:
        rows, starts = (self.rows, self.starts) if share is None else (self.rows[share],
                                                                       self.starts[share])
        return self.data.windows(rows.to(self.device), starts.to(self.device), self.length)


class MemoryWindows:
    """The epochs' windows when the training set is in memory (``data``, on the device):
    each epoch ``n_windows`` windows, each of a trajectory and a start drawn uniformly."""

    def __init__(self, data: SequenceTensors, n_windows: int, batch_size: int, length: int,
                 device: torch.device) -> None:
        self.data, self.n_windows, self.batch_size = data, n_windows, batch_size
        self.length, self.device = length, device
        self.n_batches = -(-n_windows // batch_size)

    def blocks(self) -> list[SequenceTensors]:
        return [self.data]

    def epoch(self, gen: torch.Generator, first: int = 0) -> Iterator[tuple[int, Batch]]:
        """``(b, batch)`` for the epoch's batches from ``first`` (all drawn first from ``gen``)."""
        rows = torch.randint(self.data.n, (self.n_windows,), generator=gen)
        starts = torch.randint(self.data.n_steps - self.length, (self.n_windows,), generator=gen)
        for b in range(first, self.n_batches):
            sl = slice(b * self.batch_size, (b + 1) * self.batch_size)
            yield b, MemoryBatch(self.data, rows[sl], starts[sl], self.length, self.device)


def to_tensors(data: Trajectories, layout: Layout, device: torch.device | str = "cpu",
               dtype: torch.dtype = torch.float32) -> SequenceTensors:
    """The dataset as device tensors for ``layout`` (refused by ``check_data`` if it misfits)."""
    check_data(data, layout)
    z = torch.as_tensor(carried_state(data, layout), dtype=dtype, device=device)
    e = torch.as_tensor(exogenous(data, layout), dtype=dtype, device=device)
    return SequenceTensors(z, e)


def split_by_trajectory(data: Trajectories, val_fraction: float,
                        seed: int) -> tuple[Trajectories, Trajectories]:
    """Hold out ``round(val_fraction N)`` whole trajectories (at least one), chosen by ``seed``."""
    if not 0.0 < val_fraction < 1.0:
        raise SpecError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_val = max(1, round(val_fraction * data.n))
    if n_val >= data.n:
        raise DataError(f"cannot hold out {n_val} of {data.n} trajectories for validation; "
                        "give more trajectories or a separate validation set (--val FILE: "
                        "another recording imported the same way, or the same spec simulated "
                        "with another --seed)")
    order = np.random.default_rng(np.random.SeedSequence(seed)).permutation(data.n)
    return data.take(np.sort(order[n_val:])), data.take(np.sort(order[:n_val]))


def folds_by_trajectory(n: int, folds: int, seed: int) -> np.ndarray:
    """Fold labels ``(n,)`` of ``min(folds, n)`` folds of whole trajectories, as even as
    possible, chosen by ``seed`` (``folds >= n``: one trajectory each, leave-one-out)."""
    if folds < 2 or n < 2:
        raise DataError(f"cross-validation needs at least 2 folds of at least 2 trajectories; "
                        f"got val_folds={folds} on {n} trajectories")
    order = np.random.default_rng(np.random.SeedSequence(seed)).permutation(n)
    labels = np.empty(n, dtype=np.int64)
    labels[order] = np.arange(n) % min(folds, n)
    return labels


def _hash_rows(h: Any, a: Any) -> None:
    """Feed ``a``'s values to ``h`` as C-order float64 bytes, a block of rows at a time: the
    same bytes as the whole array's, without a float64 copy of it (a set of 4.8 GB took
    copies as large to hash, before training could refuse it)."""
    a = np.asarray(a)
    step = max(1, HASH_BLOCK // max(1, 8 * math.prod(a.shape[1:])))
    for lo in range(0, max(1, len(a)) if a.ndim else 1, step):
        h.update(np.ascontiguousarray(a[lo:lo + step] if a.ndim else a, dtype=np.float64))


HASH_BLOCK = 8 << 20
"""Bytes of float64 values hashed at a time."""


def fingerprint(data: Trajectories) -> dict[str, Any]:
    """What identifies a dataset: its shape, grid, system, parameter names and a hash of its
    contents."""
    h = hashlib.sha256()
    for a in (data.t, data.x, data.v, data.F):
        if a is not None:
            _hash_rows(h, a)
    for k in sorted(data.params):
        h.update(k.encode())
        _hash_rows(h, data.params[k])
    return {
        "n": data.n,
        "n_steps": data.n_steps,
        "dt": data.dt,
        "series": data.is_series,
        "system": data.system,
        "forcing": str(data.attrs.get("forcing", "")),
        "params": sorted(data.params),
        "sha256": h.hexdigest(),
    }
