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
GROUP_VALUES = 1 << 18
"""Cosines evaluated at once off the separable path: the harmonics of a few time points are
taken together (a file of 2e6 harmonics took minutes one harmonic at a time)."""


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


class _Separable:
    """Harmonics ``amplitude, omega, phase (N, K)`` on a uniform grid ``t (M,)`` of step
    ``dt`` in separable form.

    With block starts ``t_j = t[j B]`` and offsets ``s_r = r dt``,
    ``cos(omega (t_j + s_r) + phase) = Re(e^{i (omega t_j + phase)} e^{i omega s_r})``:
    a cosine and a sine per block start and per offset, then two products per point and
    harmonic (:meth:`fill`). The phases carry the same rounding as in the direct form.
    In numpy, not compiled: every file read checks its forcing samples with it, and numba's
    start-up would then cost every command that reads a file.
    """

    def __init__(self, t: Array, dt: float, amplitude: Array, omega: Array, phase: Array):
        K, N, J = amplitude.shape[1], amplitude.shape[0], t[::_BLOCK].size
        self.re, self.im = np.empty((K, J, N)), np.empty((K, J, N))
        self.cos, self.sin = np.empty((K, _BLOCK, N)), np.empty((K, _BLOCK, N))
        for k in range(K):
            start = np.multiply.outer(t[::_BLOCK], omega[:, k])
            start += phase[:, k]
            np.multiply(amplitude[:, k], np.cos(start), out=self.re[k])
            np.multiply(amplitude[:, k], np.sin(start), out=self.im[k])
            offset = np.multiply.outer(np.arange(_BLOCK) * dt, omega[:, k])
            np.cos(offset, out=self.cos[k])
            np.sin(offset, out=self.sin[k])

    @staticmethod
    def table_rows(M: int, K: int) -> int:
        """Rows of ``N`` floats the tables of ``K`` harmonics on ``M`` points hold."""
        return 2 * K * (-(-M // _BLOCK) + _BLOCK)

    def fill(self, start: int, stop: int, out: Array, first: bool = True) -> None:
        """``out (stop - start, N)`` ``=`` (``first``; else ``+=``) the harmonics at the
        grid's rows ``start .. stop - 1``, added harmonic by harmonic in their order."""
        scratch = np.empty((min(_BLOCK, stop - start), out.shape[1]))
        i = start
        while i < stop:
            j, r = divmod(i, _BLOCK)
            n = min(stop - i, _BLOCK - r)
            block, tmp = out[i - start : i - start + n], scratch[:n]
            for k in range(self.cos.shape[0]):
                if first and k == 0:
                    np.multiply(self.cos[k, r : r + n], self.re[k, j], out=block)
                else:
                    np.multiply(self.cos[k, r : r + n], self.re[k, j], out=tmp)
                    block += tmp
                np.multiply(self.sin[k, r : r + n], self.im[k, j], out=tmp)
                block -= tmp
            i += n


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
        (:class:`_Separable`), several times faster than one cosine
        per point and as accurate.
        """
        t = _as_time(t)
        K = np.shape(self.amplitude)[1]
        out = np.empty((t.size, self.n)) if K else np.zeros((t.size, self.n))
        if t.size >= 4 * _BLOCK and (dt := uniform_step(t)) is not None:
            for k in range(K):  # a harmonic's tables at a time: the least memory
                harmonic = [a[:, k : k + 1] for a in (self.amplitude, self.omega, self.phase)]
                _Separable(t, dt, *harmonic).fill(0, t.size, out, first=k == 0)
            return out.T
        group = max(1, GROUP_VALUES // max(1, t.size * self.n))
        for k in range(0, K, group):  # a few points and many harmonics: several at a time
            amplitude, omega, phase = (a[:, k : k + group]
                                       for a in (self.amplitude, self.omega, self.phase))
            arg = t[:, None, None] * omega
            arg += phase
            np.cos(arg, out=arg)
            arg *= amplitude
            if k:
                arg[:, :, 0] += out
            np.cumsum(arg, axis=2, out=arg)  # summed in order, one harmonic after another
            out[...] = arg[:, :, -1]
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

    def on_grid(self, t: Array) -> bool:
        """Whether ``t`` is the grid of the table."""
        return t.shape == np.shape(self.t) and np.array_equal(t, self.t)

    def __call__(self, t: Array) -> Array:
        t = _as_time(t)
        return self.F if self.on_grid(t) else self.base(t)

    def take(self, index: np.ndarray | slice) -> GridForcing:
        return GridForcing(self.base.take(index), self.t, self.F[index])


Forcing = HarmonicForcing | SampledForcing | GridForcing


def time_major(forcing: Forcing, t: Array) -> Array:
    """``forcing(t)`` as a C-contiguous ``(M, N)`` table of native float64: the compiled
    loops take no other (a given table may be big-endian)."""
    return np.ascontiguousarray(forcing(t).T, dtype=np.float64)


class ForcingRows:
    """A forcing on a grid, time-major, a slice of rows at a time: what the fixed-step
    integrators read, a slice per compiled call.

    A harmonic forcing on a long uniform grid computes each slice into a buffer reused from
    call to call, from its separable tables (:class:`_Separable`) where those are smaller
    than the whole ``(M, N)`` table: no such table is made, and the slice is still in the
    cache when the integrator reads it. The slice is computed compiled
    (:func:`odernn.data.kernels.separable_rows`, one pass where numpy makes three per
    harmonic); :class:`_Separable` stays numpy for ``forcing(t)``, which every file read
    calls, without numba. Any other forcing is evaluated once and its slices are views of
    that table. Either way a row holds the bits ``forcing(t)`` gives
    (``tests/test_forcing_rows.py``).
    """

    def __init__(self, table: Array | None, separable: _Separable | None = None):
        """The rows of a time-major table ``(M, N)``, or those ``separable`` computes."""
        self._table, self._separable = table, separable
        self._buffer = np.empty((0, 0))

    @classmethod
    def of(cls, forcing: Forcing, t: Array) -> ForcingRows:
        """The rows of ``forcing`` on the grid ``t``."""
        t = _as_time(t)
        if isinstance(forcing, GridForcing) and not forcing.on_grid(t):
            forcing = forcing.base
        if isinstance(forcing, HarmonicForcing) and t.size >= 4 * _BLOCK:
            K, dt = np.shape(forcing.amplitude)[1], uniform_step(t)
            if K and dt is not None and _Separable.table_rows(t.size, K) < t.size:
                return cls(None, _Separable(t, dt, forcing.amplitude, forcing.omega,
                                            forcing.phase))
        return cls(time_major(forcing, t))

    def __call__(self, start: int, stop: int) -> Array:
        """Rows ``start .. stop - 1``, ``(stop - start, N)``: valid until the next call."""
        if self._separable is None:
            return self._table[start:stop]
        from odernn.data import kernels  # numba: the integrators' callers load it anyway

        if self._buffer.shape[0] < stop - start:  # the largest slice asked for so far
            self._buffer = np.empty((stop - start, self._separable.re.shape[2]))
        out = self._buffer[: stop - start]
        s = self._separable
        kernels.separable_rows(s.cos, s.sin, s.re, s.im, start, stop, out)
        return out


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
