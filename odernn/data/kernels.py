"""The simulation's innermost loops, compiled by numba: the fixed-step integrators' time
loops and the forcing's rows they read, and the closed form's coefficients and expansion.

Each loop computes, per trajectory and point, the operations of the equation written out
in the order written (no fused multiply-add, no reassociation: numba's default), so the
results are those of the same equations in numpy to the last bit
(``tests/test_systems.py``, ``tests/test_integrators.py``). Compiled, a step reads its
inputs and writes its outputs once, where numpy makes one pass over memory per operation
(docs/performance.md). The loops release the GIL, so that a simulation's writer thread
runs beside them, and callers step a long run in slices of rows (:func:`row_slices`), so
that an interrupt is seen within a fraction of a second.

The accelerations of :data:`odernn.data.systems.SYSTEMS` are repeated here as scalar
functions, one branch per :data:`ACCELERATIONS` code (a compiled function cannot take
another as an argument and stay in numba's on-disk cache);
``tests/test_systems.py`` checks each against the system's own ``accel``, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numba
import numpy as np

ROWS_PER_CALL = 1 << 17
"""Trajectory-steps (or points) per compiled call at most, a millisecond or so, or one row
where a row holds more: between calls Python runs, and with it signal handlers, and a
slice's forcing computed for it (``forcing.ForcingRows``, 1 MiB) is still in the cache."""

LINEAR, DUFFING, VAN_DER_POL, PENDULUM = range(4)
ACCELERATIONS = {"duffing": DUFFING, "van-der-pol": VAN_DER_POL, "pendulum": PENDULUM}
"""Code of each nonlinear system's acceleration; a linear system's (:data:`LINEAR`,
``F - c v - k x``) takes ``p = (k, c)`` from ``System.linear``, a nonlinear one its
parameters in the order ``System.parameters`` lists them."""


def _compile(fn: Callable) -> Callable:
    """``fn`` compiled on first call, for one core, releasing the GIL, cached on disk where
    numba finds a writable place (``NUMBA_CACHE_DIR``, beside this module, or the user's
    cache directory); else, or where the cache cannot be read or written later (a full
    disk), compiled once per process."""
    try:
        compiled = numba.njit(cache=True, nogil=True, error_model="numpy")(fn)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(nogil=True, error_model="numpy")(fn)
    cache = getattr(compiled, "_cache", None)  # numba's FunctionCache: its I/O made optional
    for method in ("load_overload", "save_overload"):
        if callable(getattr(cache, method, None)):
            setattr(cache, method, _without_os_errors(getattr(cache, method)))
    return compiled


def _without_os_errors(method: Callable) -> Callable:
    """``method`` returning None (a cache miss; nothing saved) where it raises OSError."""
    def call(*args: object) -> object:
        try:
            return method(*args)
        except OSError:
            return None
    return call


def row_slices(T: int, n: int, stride: int = 1) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` row ranges covering the steps from rows ``0, stride, ...`` below
    ``T - stride`` of a ``(T, n)`` march, each of at most :data:`ROWS_PER_CALL`
    trajectory-steps (a multiple of ``stride`` rows, at least one step)."""
    rows = max(stride, ROWS_PER_CALL // max(n, 1) // stride * stride)
    for start in range(0, T - stride, rows):
        yield start, min(start + rows, T - stride)


@_compile
def acceleration(kind: int, x: float, v: float, F: float, p: np.ndarray, j: int) -> float:
    """``v' = F + a(x, v)`` of trajectory ``j`` (parameters ``p[:, j]``), each system's
    operations in the order of its numpy form."""
    if kind == LINEAR:
        return (F - p[1, j] * v) - p[0, j] * x
    if kind == DUFFING:  # eta, alpha, beta
        return (-(p[0, j] * v) - ((x * x) * p[2, j] + p[1, j]) * x) + F
    if kind == VAN_DER_POL:  # mu
        return (((1.0 - x * x) * p[0, j]) * v - x) + F
    return (-(p[0, j] * v) - math.sin(x)) + F  # PENDULUM: eta


@_compile
def separable_rows(cos: np.ndarray, sin: np.ndarray, re: np.ndarray, im: np.ndarray,
                   start: int, stop: int, out: np.ndarray) -> None:
    """``out (stop - start, N)``: rows ``start .. stop - 1`` of harmonics in separable form,
    ``sum_k cos_k re_k - sin_k im_k`` over offsets ``cos, sin (K, B, N)`` and block starts
    ``re, im (K, J, N)`` (``forcing._Separable``), in the order of its numpy ``fill``: one
    pass over ``out``, where numpy makes three per harmonic."""
    B = cos.shape[1]
    for i in range(start, stop):
        j, r = i // B, i % B
        o = out[i - start]
        for k in range(cos.shape[0]):
            c, s, a, b = cos[k, r], sin[k, r], re[k, j], im[k, j]
            if k == 0:
                for q in range(o.size):
                    o[q] = c[q] * a[q] - s[q] * b[q]
            else:
                for q in range(o.size):
                    o[q] = (o[q] + c[q] * a[q]) - s[q] * b[q]


@_compile
def euler(kind: int, F: np.ndarray, x: np.ndarray, v: np.ndarray, p: np.ndarray, dt: float,
          semi_implicit: bool, start: int, stop: int) -> None:
    """Rows ``start + 1 .. stop`` of ``x, v (T, N)`` from row ``start``:
    ``v_{i+1} = v_i + dt a(x_i, v_i, F_i)``, then ``x_{i+1} = x_i + dt v_i`` (forward) or
    ``x_i + dt v_{i+1}`` (semi-implicit); ``F`` holds the forcing's rows from ``start``."""
    for i in range(start, stop):
        for j in range(x.shape[1]):
            v[i + 1, j] = v[i, j] + acceleration(kind, x[i, j], v[i, j], F[i - start, j], p,
                                                 j) * dt
            x[i + 1, j] = (v[i + 1, j] if semi_implicit else v[i, j]) * dt + x[i, j]


@_compile
def rk4(kind: int, F: np.ndarray, Fh: np.ndarray, x: np.ndarray, v: np.ndarray,
        p: np.ndarray, h: float, stride: int, start: int, stop: int) -> None:
    """Classic RK4 steps of size ``h`` from rows ``start, start + stride, ...`` below
    ``stop`` to the row ``stride`` later, the forcing ``F`` at the start and end, ``Fh`` at
    the midpoint (row of the start), each holding its rows from ``start``: the operations of
    ``stepping.rk4_step`` in its order."""
    half, sixth = h / 2, h / 6
    for i in range(start, stop, stride):
        r = i - start
        for j in range(x.shape[1]):
            x0, v0, f0, fh, f1 = x[i, j], v[i, j], F[r, j], Fh[r, j], F[r + stride, j]
            k1v = acceleration(kind, x0, v0, f0, p, j)
            k2x = half * k1v + v0  # a stage's velocity is the next stage's slope of x
            k2v = acceleration(kind, half * v0 + x0, k2x, fh, p, j)
            k3x = half * k2v + v0
            k3v = acceleration(kind, half * k2x + x0, k3x, fh, p, j)
            k4x = h * k3v + v0
            k4v = acceleration(kind, h * k3x + x0, k4x, f1, p, j)
            v[i + stride, j] = v0 + (((2 * k2v + k1v) + 2 * k3v) + k4v) * sixth
            x[i + stride, j] = x0 + (((2 * k2x + v0) + 2 * k3x) + k4x) * sixth


@_compile
def linear_map(F: np.ndarray, Fh: np.ndarray, x: np.ndarray, v: np.ndarray, cx: np.ndarray,
               cv: np.ndarray, stride: int, start: int, stop: int) -> None:
    """A linear system's steps as a linear map of ``(x_i, v_i, F_i, Fh_i, F_{i+stride})``
    with coefficients ``cx, cv (5, N)`` (``stepping._rk4_coefficients``), summed in that
    order; ``F_{i+stride}`` enters v only. ``F`` and ``Fh`` hold their rows from ``start``."""
    for i in range(start, stop, stride):
        r = i - start
        for j in range(x.shape[1]):
            u0, u1, u2, u3 = x[i, j], v[i, j], F[r, j], Fh[r, j]
            x[i + stride, j] = ((cx[0, j] * u0 + cx[1, j] * u1) + cx[2, j] * u2) + cx[3, j] * u3
            v[i + stride, j] = ((((cv[0, j] * u0 + cv[1, j] * u1) + cv[2, j] * u2)
                                 + cv[3, j] * u3) + cv[4, j] * F[r + stride, j])


@_compile
def coefficients(xh: np.ndarray, vh: np.ndarray, zr: np.ndarray, zi: np.ndarray,
                 c: np.ndarray, e: np.ndarray, w: np.ndarray, cx: np.ndarray,
                 cv: np.ndarray) -> None:
    """The closed form's coefficients ``cx, cv (J, 2 + 2K, N)`` of its basis ``[B, S,
    cos w_k s, sin w_k s]`` from the modes at ``J`` reference times (``xh, vh (J, N)``,
    ``zr, zi (K, J, N)``; ``c, e (N,)``, ``w (K, N)``: ``exact._Modes``)."""
    K = zr.shape[0]
    for j in range(xh.shape[0]):
        for n in range(xh.shape[1]):
            cx[j, 0, n], cv[j, 0, n] = xh[j, n], vh[j, n]
            cx[j, 1, n] = c[n] * xh[j, n] + vh[j, n]
            cv[j, 1, n] = -(e[n] * vh[j, n] + xh[j, n])
            for k in range(K):
                cx[j, 2 + k, n], cx[j, 2 + K + k, n] = zr[k, j, n], -zi[k, j, n]
                cv[j, 2 + k, n] = -(w[k, n] * zi[k, j, n])
                cv[j, 2 + K + k, n] = -(w[k, n] * zr[k, j, n])


@_compile
def expand(x: np.ndarray, v: np.ndarray, basis: np.ndarray, cx: np.ndarray,
           cv: np.ndarray) -> None:
    """``x = sum_q basis_q cx_q`` and ``v = sum_q basis_q cv_q`` summed in the order of
    ``q`` from +0 (as numpy's ``einsum``: a sum of -0 terms is +0), for ``basis (M, Q, N)``,
    ``cx, cv (Q, N)`` and outputs ``(M', N)``, ``M' <= M``; a row at a time, term by term
    (an inner loop over trajectories, which vectorises)."""
    for r in range(x.shape[0]):
        for j in range(x.shape[1]):
            x[r, j] = 0.0 + basis[r, 0, j] * cx[0, j]
            v[r, j] = 0.0 + basis[r, 0, j] * cv[0, j]
        for q in range(1, cx.shape[0]):
            for j in range(x.shape[1]):
                x[r, j] += basis[r, q, j] * cx[q, j]
                v[r, j] += basis[r, q, j] * cv[q, j]
