"""A dataset of trajectories in memory: what the store reads and everything else uses.

Models, training and the evaluator see this (numpy arrays), never HDF5.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from odernn.checks import real_numbers
from odernn.data.forcing import FORCINGS, SampledForcing, forcing_from_params
from odernn.data.schema import grid_step, off_grid, same_step, step_slack
from odernn.data.systems import EXTERNAL, SYSTEMS, Oscillator, parameter_names
from odernn.errors import DataError
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

    def __post_init__(self) -> None:
        """Arrays of real numbers (a list is taken as one) of consistent shapes on a uniform
        grid, or one DataError line: a grid of another length or step would be read as
        another dt."""
        t, x = real_numbers(self.t, "t"), real_numbers(self.x, "x")  # an array as it is
        if t.ndim != 1 or x.ndim != 2 or x.shape[1] != t.shape[0] or t.size == 0:
            raise DataError(f"trajectories need t (T,) and x (N, T), T >= 1; got t {t.shape}, "
                            f"x {x.shape}")
        for name in ("v", "F"):
            a = None if getattr(self, name) is None else real_numbers(getattr(self, name), name)
            if a is not None and a.shape != x.shape:
                raise DataError(f"trajectories need {name} of x's shape {x.shape}; got "
                                f"{a.shape}")
            object.__setattr__(self, name, a)
        if not isinstance(self.params, Mapping):
            raise DataError(f"params must be a mapping, name -> values per trajectory; got "
                            f"{type(self.params).__name__}")
        if not isinstance(self.attrs, Mapping):
            raise DataError(f"attrs must be a mapping, name -> value; got "
                            f"{type(self.attrs).__name__}")
        named = next((k for k in (*self.params, *self.attrs) if not isinstance(k, str)), None)
        if named is not None:
            raise DataError(f"params and attrs are named by strings; got the key {named!r}")
        params = {k: real_numbers(p, f"params/{k}") for k, p in self.params.items()}
        bad = next((k for k, p in params.items() if p.ndim < 1 or p.shape[0] != x.shape[0]), None)
        if bad is not None:
            raise DataError(f"params/{bad} must hold one value (or row) per trajectory, "
                            f"({x.shape[0]},); got {params[bad].shape}")
        eps = np.finfo(t.dtype if t.dtype.kind == "f" else np.float64).eps
        if t.size > 1 and np.any(off_grid(t, eps=float(eps))):
            raise DataError("trajectories need a uniform time grid t_0 + i dt (increasing); "
                            "this one is not")
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "params", params)

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_steps(self) -> int:
        return int(self.t.shape[0])

    @cached_property
    def dt(self) -> float:
        """The grid's step (:func:`~odernn.data.schema.grid_step`); a grid of one point has
        none (DataError)."""
        if self.t.size < 2:
            raise DataError("trajectories of one time point have no step dt: nothing to "
                            "learn, integrate or roll out")
        return grid_step(self.t)

    @property
    def is_series(self) -> bool:
        """True for a univariate series (``x`` only)."""
        return self.v is None

    @property
    def system(self) -> str:
        """The name of the system these trajectories are of (:data:`SYSTEMS`), ``sine`` for a
        series; files written before the name was stored say ``oscillator`` by their
        equation, and those without either are taken as the linear oscillator."""
        if self.is_series:
            return "sine"
        stored = str(self.attrs.get("system", "oscillator"))
        return LEGACY_SYSTEMS.get(stored, stored)

    @property
    def samples_only(self) -> bool:
        """Whether the forcing is known only at its stored samples (imported data, forcing
        ``samples``), with no formula to evaluate it between them."""
        return self.F is not None and str(self.attrs.get("forcing", "none")) not in FORCINGS

    def oscillator(self) -> Oscillator:
        """The oscillators that produced these trajectories (needs the stored parameters); the
        forcing is rebuilt from its parameters, or where :attr:`samples_only` interpolated
        linearly between the stored samples."""
        family = str(self.attrs.get("forcing", "none"))
        try:
            forcing = (SampledForcing(self.t, self.F) if self.samples_only else
                       forcing_from_params(family, self.params))
        except KeyError as err:
            raise DataError(f"these trajectories lack the parameter {err.args[0]!r} of their "
                            f"'{family}' forcing (params); without it they have no "
                            "oscillator to rebuild") from None
        return Oscillator.of(self.system, self.params, forcing)

    def take(self, index: np.ndarray | slice) -> Trajectories:
        """A subset of the trajectories (same grid, same attrs); an index beyond them is one
        DataError line."""
        if not isinstance(index, slice):
            index = np.asarray(index)
            if index.dtype.kind in "iu" and index.size and not (
                    -self.n <= index.min() and index.max() < self.n):
                raise DataError(f"take: trajectory indices must be in [-{self.n}, {self.n}) "
                                f"for {self.n} trajectories, got {index.min()}..{index.max()}")

        def pick(a: Array | None) -> Array | None:
            return None if a is None else a[index]

        params = {k: v[index] for k, v in self.params.items()}
        return replace(self, x=self.x[index], v=pick(self.v), F=pick(self.F), params=params)


def check_pair(train: Trajectories, test: Trajectories, train_name: str, test_name: str) -> None:
    """Refuse a training and a test set that cannot be paired, in one DataError line: another
    system, another step, or another set of stored system parameters (parameters that
    distinguish their trajectories; the initial state and start time aside)."""
    if train.system != test.system:
        raise DataError(f"{test_name} is of system {test.system!r} but {train_name} of "
                        f"{train.system!r}; train and test on one system")
    slack = step_slack(train.t, train.dt) + step_slack(test.t, test.dt)
    if not same_step(train.dt, test.dt, slack):
        raise DataError(f"{test_name} has step dt = {test.dt!r} but {train_name} dt = "
                        f"{train.dt!r}; a surrogate steps at the dt it was trained on")
    names = [sorted(p for p in parameter_names(d.system, d.params) if p in d.params)
             for d in (train, test)]
    if names[0] != names[1]:
        raise DataError(f"{test_name} has parameters {', '.join(names[1]) or 'none'} but "
                        f"{train_name} has {', '.join(names[0]) or 'none'}; give both files "
                        "the same parameters")


LEGACY_SYSTEMS = {"x'' + eta x' + x = F(t)": "oscillator"}
"""The ``system`` attribute of files written before it named the system: its equation."""
KINDS = ("oscillator", "series")
"""What a dataset holds: oscillator trajectories (x, v, F, params) or a univariate series."""
CONSISTENCY_BLOCK = 1 << 16
"""Points of the forcing :func:`check_consistency` recomputes at a time (its temporaries)."""


def check_consistency(data: Trajectories, where: str, row: int = 0, col: int = 0) -> None:
    """Refuse data whose parts contradict each other, the same way for every reader (inspect,
    train, evaluate): a ``kind`` that does not match the datasets, a negative or non-finite
    damping, and forcing samples ``F`` that are not the forcing its stored parameters
    describe at the stored times (the oscillators evaluate rebuilds would not be the data's).
    ``data`` may be a block of a file, from trajectory ``row`` and time point ``col``: the
    messages give the file's indices.
    """
    kind = data.attrs.get("kind")
    if kind is not None and kind not in KINDS:
        raise DataError(f"{where}: attribute 'kind' is {kind!r}; expected one of "
                        f"{', '.join(KINDS)}")
    if kind is not None and (kind == "series") != data.is_series:
        holds = "x only" if data.is_series else "x, v and F"
        raise DataError(f"{where}: attribute 'kind' is {kind!r} but the file holds {holds}")
    if data.is_series or data.F is None:
        return
    system = SYSTEMS.get(data.system)
    if system is None and data.system == EXTERNAL:  # imported data: no equation to check
        return
    if system is None:
        raise DataError(f"{where}: attribute 'system' is {data.system!r}; this odernn knows "
                        f"{', '.join(SYSTEMS)}")
    for p in system.parameters:
        values = data.params.get(p.name)
        if values is None:
            continue
        values = np.asarray(values, dtype=np.float64)
        bad = ~((values >= p.low) & (values <= p.high))
        if np.any(bad):
            i = int(np.argmax(bad))
            raise DataError(f"{where}: params/{p.name}[{row + i}] = {float(values[i])!r}; "
                            f"{p.meaning} {p.name} must be in {p.range}")
    family = data.attrs.get("forcing")
    if family not in FORCINGS or "x0" not in data.params:
        return
    t, F = np.asarray(data.t, np.float64), np.asarray(data.F)

    def expected(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows lo..hi of the forcing's values, and each row's bound on |F| (the sum of its
        amplitudes: a row's own, whatever block or columns of it are checked)."""
        try:
            part = {k: np.asarray(v)[lo:hi] for k, v in data.params.items()}
            forcing = forcing_from_params(str(family), part)
            return forcing(t), np.abs(forcing.amplitude).sum(axis=1)
        except (KeyError, ValueError, IndexError):
            raise DataError(f"{where}: the parameters of its '{family}' forcing are missing or "
                            "malformed in params/") from None

    # in blocks of rows (a read holds the file's values, not five float64 copies of them): each
    # row's largest deviation against its own tolerance, then the first value off
    single = np.float32 in (F.dtype, np.asarray(data.t).dtype)  # samples or times
    rtol = 1e-4 if single else 1e-9
    rows = max(1, CONSISTENCY_BLOCK // t.size)
    off = np.empty(F.shape[0], dtype=bool)
    for lo in range(0, F.shape[0], rows):
        e, bound = expected(lo, lo + rows)
        deviation = np.abs(F[lo:lo + rows].astype(np.float64) - e).max(axis=1)
        off[lo:lo + rows] = deviation > rtol * (1 + bound)
    if np.any(off):
        n = int(np.argmax(off))
        (e,), (bound,) = expected(n, n + 1)
        i = int(np.argmax(np.abs(F[n].astype(np.float64) - e) > rtol * (1 + bound)))
        raise DataError(f"{where}: F[{row + n}, {col + i}] = {float(F[n, i]):.6g} at t = "
                        f"{float(t[i]):.6g}, "
                        f"but its '{family}' forcing parameters give {e[i]:.6g}: the "
                        "samples, times and parameters disagree")
