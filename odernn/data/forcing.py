"""The forcing ``F(t)`` of a batch of driven oscillators, whatever their system.

A forcing is a callable ``forcing(t) -> F`` taking a 1-D time array of M points
and returning an ``(N, M)`` array. Two kinds exist:

- :class:`HarmonicForcing`, ``F(t) = sum_k A_k cos(omega_k t + phase_k)``,
  covers the families ``none`` (K = 0), ``cosine`` (K = 1) and ``random``
  (K sinusoids); the linear oscillator under it has a closed-form solution
  (:mod:`odernn.data.exact`);
- :class:`SampledForcing`, linear interpolation of samples ``F_i`` on a grid:
  the samples a surrogate sees, used to give an integrator no more than them;
- :class:`GridForcing`, a harmonic forcing with its values on one grid computed once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from odernn.types import Array


def _as_time(t: Array | float) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError(f"t must be a 1-D array of times, got shape {t.shape}")
    return t


_BLOCK = 32
"""Points per block of the separable evaluation of cosines on a uniform grid."""


def uniform_step(t: Array) -> float | None:
    """The step ``dt`` if ``t_i = t_0 + i dt`` holds to rounding (a few ulps), else None."""
    t = _as_time(t)
    if t.size < 2:
        return None
    dt = float(t[-1] - t[0]) / (t.size - 1)
    if dt == 0.0:
        return None
    deviation = np.abs(t - (t[0] + dt * np.arange(t.size))).max()
    tolerance = 4 * np.finfo(np.float64).eps * max(abs(t[0]), abs(t[-1]))
    return dt if deviation <= tolerance else None


def _add_cosine_uniform(
    out: Array, t: Array, dt: float, amplitude: Array, omega: Array, phase: Array, first: bool
) -> None:
    """``out (M, N) += amplitude cos(omega t + phase)`` on a uniform grid ``t (M,)`` (``=``
    for the ``first`` harmonic: ``out`` may hold anything).

    With block starts ``t_j = t[j B]`` and offsets ``s_r = r dt``,
    ``cos(omega (t_j + s_r) + phase) = Re(e^{i (omega t_j + phase)} e^{i omega s_r})``:
    a cosine and a sine per block start and per offset, then two products per
    point. The phases carry the same rounding as in the direct form. In numpy, not compiled:
    every file read checks its forcing samples with it, and numba's start-up would then
    cost every command that reads a file.
    """
    start = np.multiply.outer(t[::_BLOCK], omega)
    start += phase
    re, im = amplitude * np.cos(start), amplitude * np.sin(start)
    offset = np.multiply.outer(np.arange(_BLOCK) * dt, omega)
    cos, sin = np.cos(offset), np.sin(offset)
    tmp = np.empty_like(cos)
    for j in range(re.shape[0]):
        block = out[j * _BLOCK : (j + 1) * _BLOCK]
        n = block.shape[0]
        if first:
            np.multiply(cos[:n], re[j], out=block)
        else:
            np.multiply(cos[:n], re[j], out=tmp[:n])
            block += tmp[:n]
        np.multiply(sin[:n], im[j], out=tmp[:n])
        block -= tmp[:n]


@dataclass(frozen=True)
class HarmonicForcing:
    """``F(t) = sum_k amplitude[:, k] cos(omega[:, k] t + phase[:, k])``.

    ``amplitude``, ``omega`` and ``phase`` have shape ``(N, K)``; K = 0 is no
    forcing at all.
    """

    amplitude: Array
    omega: Array
    phase: Array

    def __post_init__(self) -> None:
        shapes = {np.shape(self.amplitude), np.shape(self.omega), np.shape(self.phase)}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise ValueError(
                f"amplitude, omega and phase must share one (N, K) shape, got {shapes}"
            )

    @property
    def n(self) -> int:
        return int(np.shape(self.amplitude)[0])

    @classmethod
    def none(cls, n: int) -> HarmonicForcing:
        """No forcing for ``n`` trajectories."""
        empty = np.zeros((n, 0))
        return cls(empty, empty, empty)

    def __call__(self, t: Array) -> Array:
        """Forcing at times ``t`` (M,), shape ``(N, M)``.

        Computed time-major and returned as a transposed view, so that
        ``forcing(t).T`` is C-contiguous for integrators that loop over time.
        On a long uniform grid the cosines are evaluated by separability
        (:func:`_add_cosine_uniform`), several times faster than one cosine
        per point and as accurate.
        """
        t = _as_time(t)
        K = np.shape(self.amplitude)[1]
        out = np.empty((t.size, self.n)) if K else np.zeros((t.size, self.n))
        dt = uniform_step(t) if t.size >= 4 * _BLOCK else None
        for k in range(K):
            amplitude, omega, phase = self.amplitude[:, k], self.omega[:, k], self.phase[:, k]
            if dt is not None:
                _add_cosine_uniform(out, t, dt, amplitude, omega, phase, first=k == 0)
                continue
            arg = np.multiply.outer(t, omega)
            arg += phase
            np.cos(arg, out=arg)
            arg *= amplitude
            if k == 0:
                out[...] = arg
            else:
                out += arg
        return out.T

    def take(self, index: np.ndarray | slice) -> HarmonicForcing:
        """The forcing of a subset of the trajectories."""
        return HarmonicForcing(self.amplitude[index], self.omega[index], self.phase[index])


@dataclass(frozen=True)
class SampledForcing:
    """Linear interpolation of samples ``F (N, T)`` taken at times ``t (T,)``.

    Outside ``[t[0], t[-1]]`` the end values are held.
    """

    t: Array
    F: Array

    @property
    def n(self) -> int:
        return int(np.shape(self.F)[0])

    def __call__(self, t: Array) -> Array:
        t = _as_time(t)
        grid = np.asarray(self.t, dtype=np.float64)
        j = np.clip(np.searchsorted(grid, t, side="right") - 1, 0, grid.size - 2)
        w = np.clip((t - grid[j]) / (grid[j + 1] - grid[j]), 0.0, 1.0)
        F = np.asarray(self.F, dtype=np.float64)
        return F[:, j] * (1.0 - w) + F[:, j + 1] * w

    def take(self, index: np.ndarray | slice) -> SampledForcing:
        return SampledForcing(self.t, self.F[index])


@dataclass(frozen=True)
class GridForcing:
    """A harmonic forcing with its values ``F (N, T)`` on the grid ``t (T,)`` computed once:
    simulation stores those samples and integrates with them, and evaluating the cosines
    twice would cost as much as a forward Euler pass. The grid itself is answered from the
    table, any other time by ``base``."""

    base: HarmonicForcing
    t: Array
    F: Array

    @property
    def n(self) -> int:
        return self.base.n

    def __call__(self, t: Array) -> Array:
        t = _as_time(t)
        if t.shape == np.shape(self.t) and np.array_equal(t, self.t):
            return self.F
        return self.base(t)

    def take(self, index: np.ndarray | slice) -> GridForcing:
        return GridForcing(self.base.take(index), self.t, self.F[index])


Forcing = HarmonicForcing | SampledForcing | GridForcing


FORCINGS = ("none", "cosine", "random")


def forcing_from_params(family: str, params: dict[str, Array]) -> HarmonicForcing:
    """Rebuild a forcing from the sampled parameters stored with a dataset.

    ``cosine`` uses ``F0, omega, phase`` of shape ``(N,)``; ``random`` uses
    ``amplitude, omega, phase`` of shape ``(N, K)``; ``none`` needs only ``x0``
    (for its N).
    """
    if family == "none":
        return HarmonicForcing.none(len(params["x0"]))
    if family == "cosine":
        cols = [np.asarray(params[k], dtype=np.float64)[:, None] for k in ("F0", "omega", "phase")]
        return HarmonicForcing(*cols)
    if family == "random":
        cols = [np.asarray(params[k], dtype=np.float64) for k in ("amplitude", "omega", "phase")]
        return HarmonicForcing(*cols)
    raise ValueError(f"unknown forcing family {family!r}; allowed: {', '.join(FORCINGS)}")
