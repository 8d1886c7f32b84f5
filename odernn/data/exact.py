"""The closed-form solution of the damped, driven oscillator for a harmonic forcing: the
reference every error is measured against (entry ``exact`` of
:data:`odernn.data.integrators.INTEGRATORS`).

Same calling convention as the integrators, vectorised over trajectories; each
trajectory's result depends only on its own parameters, to the last bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from odernn import budget
from odernn.data.forcing import GridForcing, HarmonicForcing, uniform_step
from odernn.data.systems import Oscillator
from odernn.errors import SpecError
from odernn.types import Array

CANCELLATION = 1e-10
"""Near the undamped resonance the free and forced parts nearly cancel: the closed form's
relative error is then about ``eps / |1 - w^2 + i eta w|`` (1e-12 at 1e-4 from the
resonance). A harmonic where that bound exceeds this is refused, not computed inaccurately;
the resonance itself (``eta = 0, |w| = 1``) has its own exact form."""

EPS = float(np.finfo(np.float64).eps)

_FINE, _MID = 16, 8
"""Points per block of the separable evaluation, and blocks per coarse block."""


PRIME = 2.0
"""From ``a = eta / 2`` above this the free motion is expanded in ``S'`` rather than ``E``
(:func:`_free_decay`): there ``E - a S`` would cancel in v, and below it ``S' + 2 a S`` would
in x (near critical damping, for ``vh`` near ``-xh``)."""


def _free_decay(a: Array, d: Array, s: Array) -> tuple[Array, Array]:
    """The free motion's basis ``B, S`` of shape ``(M, N)`` for ``s (M,) >= 0``.

    ``a = eta / 2``, ``d = 1 - a^2``; ``S = e^{-a s} sin(w s) / w`` with ``w = sqrt(d)``
    (``s e^{-a s}`` at ``d = 0``), and ``B = E = e^{-a s} cos(w s)``: the state from
    ``(xh, vh)`` is ``x = E xh + S (a xh + vh)``, ``v = E vh - S (xh + a vh)``.

    Overdamped (``d < 0``, ``g = sqrt(-d)``, roots ``-1 / (a + g)`` and ``-(a + g)``)
    ``S = -e^{-s / (a + g)} m / (2 g)`` and ``E = e^{-s / (a + g)} (1 + m / 2)`` with
    ``m = expm1(-2 g s)`` (no overflow, no cancellation near ``d = 0``); beyond
    ``a =`` :data:`PRIME`, ``B = S' = dS/ds`` instead of ``E = S' + a S``: ``v = S' vh - S xh``
    keeps the digits ``E - a S`` would lose (a relative error ``eps a^2`` in v once the fast
    mode has decayed), and ``x = S' xh + S (2 a xh + vh)`` (:meth:`_Modes.coefficients`).
    """
    E = np.empty((s.size, a.size))
    S = np.empty_like(E)
    under, over = d > 0, d < 0
    critical = ~(under | over)
    if under.any():
        w = np.sqrt(d[under])
        decay, phase = np.exp(np.multiply.outer(s, -a[under])), np.multiply.outer(s, w)
        E[:, under] = decay * np.cos(phase)
        S[:, under] = decay * np.sin(phase) / w
    if critical.any():
        decay = np.exp(np.multiply.outer(s, -a[critical]))
        E[:, critical] = decay
        S[:, critical] = decay * s[:, None]
    if over.any():
        E[:, over], S[:, over] = _overdamped(a[over], -d[over], s)
    return E, S


def _overdamped(a: Array, g2: Array, s: Array) -> tuple[Array, Array]:
    """``B`` (``E``, or ``S'`` beyond :data:`PRIME`) and ``S`` of :func:`_free_decay` for
    ``a > 1``, ``g2 = a^2 - 1`` (inf beyond ``a = 1.3e154``, where ``g = a`` to rounding).
    ``S' / slow = 1 + (a + g) m / (2 g) = e^{-2 g s} (a + g) / (2 g) - 1 / (2 g (a + g))``,
    summed in whichever form has the smaller terms."""
    g = np.where(np.isinf(g2), a, np.sqrt(g2))
    slow = np.exp(np.multiply.outer(s, -1.0 / (a + g)))
    m = np.expm1(np.multiply.outer(s, -2.0 * g))
    r = (a + g) / (2.0 * g)
    first, tail = r * m, 0.5 / g / (a + g)
    second = np.exp(np.multiply.outer(s, -2.0 * g)) * r  # not (1 + m) r: that cancels
    prime = np.where(second + tail < 1.0 - first, second - tail, 1.0 + first)
    B = np.where(a > PRIME, prime, 1.0 + 0.5 * m)
    return slow * B, -slow * m / (2.0 * g)


@dataclass(frozen=True)
class _Modes:
    """The exact solution at J reference times as free motion plus forced phasors.

    ``x = xh + sum_k Re Z_k``, ``v = vh + sum_k Re(i w_k Z_k)`` with ``xh, vh (J, N)``
    the free (homogeneous) state and ``Z = zr + i zi (K, J, N)`` the phasors
    ``P_k e^{i w_k t}`` of the particular solution. A time shift ``s`` maps
    ``(xh, vh)`` by the free propagator and rotates ``Z_k`` by ``e^{i w_k s}``.
    """

    a: Array  # (N,) eta / 2
    d: Array  # (N,) 1 - a^2
    c: Array  # (N,) x = B xh + S (c xh + vh), v = B vh - S (xh + e vh) (:func:`_free_decay`):
    e: Array  # (N,) c = e = a, or c = 2 a and e = 0 beyond PRIME (B = S')
    w: Array  # (K, N) forcing frequencies
    xh: Array
    vh: Array
    zr: Array
    zi: Array

    def basis(self, s: Array) -> Array:
        """Basis functions ``[B, S, cos w_k s, sin w_k s]`` of shape ``(2 + 2K, M, N)``."""
        phase = self.w[:, None, :] * s[None, :, None]
        return np.concatenate((np.stack(_free_decay(self.a, self.d, s)), np.cos(phase),
                               np.sin(phase)))

    def coefficients(self, cx: Array, cv: Array) -> None:
        """Fill ``cx, cv (J, 2 + 2K, N)`` so that ``x(t_j + s) = sum_q basis_q(s) cx[j, q]``
        (likewise v); buffers are reused because fresh large arrays cost page faults."""
        from odernn.data import kernels  # numba, imported when used

        kernels.coefficients(self.xh, self.vh, self.zr, self.zi, self.c, self.e, self.w, cx,
                             cv)

    def shifted(self, basis: Array) -> _Modes:
        """The modes at every reference time plus every offset ``s (M,)`` of
        ``basis = self.basis(s)``: J * M times, j-major."""
        K = self.w.shape[0]
        B, S, cos, sin = basis[0], basis[1], basis[2 : 2 + K, None], basis[2 + K :, None]
        c, e, xh, vh = self.c, self.e, self.xh[:, None], self.vh[:, None]
        zr, zi = self.zr[:, :, None], self.zi[:, :, None]

        def flat(u: Array) -> Array:
            return u.reshape(*u.shape[:-3], u.shape[-3] * u.shape[-2], u.shape[-1])

        return _Modes(
            self.a, self.d, self.c, self.e, self.w,
            flat(B * xh + S * (c * xh + vh)), flat(B * vh - S * (xh + e * vh)),
            flat(cos * zr - sin * zi), flat(sin * zr + cos * zi),
        )  # fmt: skip


def check_resonance(eta: Array, amplitude: Array, omega: Array, first: int = 0) -> None:
    """Refuse, in one line, a harmonic (``amplitude, omega (K, N)``, damping ``eta (N,)``)
    within :data:`CANCELLATION` of the undamped resonance, the resonance itself excepted;
    ``first`` is the first trajectory's index, for the message."""
    eta = np.broadcast_to(np.asarray(eta, dtype=np.float64), np.shape(omega)[1:])
    denominator = np.abs((1.0 - omega**2) + 1j * eta * omega)
    near = (amplitude != 0) & (denominator != 0) & (CANCELLATION * denominator < EPS)
    if near.any():
        k, n = (int(i[0]) for i in np.nonzero(near))
        raise SpecError(
            f"integrator 'exact': trajectory {first + n} is driven at omega = "
            f"{float(omega[k, n])!r} with eta = {float(eta[n])!r}, {denominator[k, n]:.2g} "
            "from the undamped resonance, where the closed form loses its accuracy (free and "
            "forced parts cancel); use 'scipy' or 'rk4', or the resonance itself: eta = 0 "
            "and omega = 1")


def resonance_possible(eta_low: float, eta_high: float, omega_low: float,
                       omega_high: float) -> bool:
    """Whether ``eta`` in ``[eta_low, eta_high]`` and ``omega`` in ``[omega_low, omega_high]``
    (``>= 0``) can come near enough the undamped resonance for :func:`check_resonance` to
    refuse them: ``|1 - w^2 + i eta w|`` is least at ``eta_low`` and ``w^2 = 1 - eta^2 / 2``
    (clipped into the range). A fixed ``eta = 0, omega = 1`` is the resonance itself."""
    if eta_high == 0 and omega_low == omega_high == 1:
        return False
    if eta_low >= 1:  # |1 - w^2 + i eta w| >= 0.86 for every w
        return False
    w = min(max(math.sqrt(1 - eta_low * eta_low / 2), omega_low), omega_high)
    return CANCELLATION * abs(complex(1 - w * w, eta_low * w)) < 2 * EPS


def exact(system: Oscillator, x0: Array, v0: Array, t: Array) -> tuple[Array, Array]:
    """The closed-form solution for a :class:`~odernn.data.forcing.HarmonicForcing`, any
    ``eta >= 0``.

    Free motion from ``(x0, v0)`` minus the particular solution at ``t0``, plus
    the particular solutions ``x_p = Re(A e^{i(w t + p)} / (1 - w^2 + i eta w))``
    (at the undamped resonance ``eta = 0, |w| = 1`` the secular
    ``(A / 2w) (t - t0) sin(w t + p)`` instead). Free motion is
    ``e^{-eta t/2} [c x_h0 + s (v_h0 + eta x_h0 / 2)]`` (see :func:`_free_decay`).
    Accurate to rounding except near the undamped resonance, where free and forced parts
    nearly cancel: a relative error of about ``eps / |1 - w^2 + i eta w|``, refused in one
    line where that exceeds :data:`CANCELLATION`.

    On a uniform grid the time dependence separates: the state at ``t_j + s`` is
    the state at ``t_j`` shifted by ``s``, so a few tables of transcendentals
    (coarse block starts, their refinement into blocks, the offsets within a
    block) replace one per point; other grids are evaluated point by point.
    """
    forcing = system.forcing
    if isinstance(forcing, GridForcing):
        forcing = forcing.base
    if not isinstance(forcing, HarmonicForcing):
        raise SpecError(
            f"integrator 'exact' needs a harmonic forcing (families none, cosine, random), got "
            f"{type(forcing).__name__}; use 'rk4' or 'scipy' for sampled forcing"
        )
    dt, K = uniform_step(t), np.shape(forcing.amplitude)[1]
    budget.check(f"the closed-form solution: {K} forcing harmonics x {system.n} trajectories",
                 budget.exact_bytes(system.n, K, dt is not None),
                 "use fewer harmonics or trajectories")
    eta = np.asarray(system.params["eta"], dtype=np.float64)
    # (K, N): one row per harmonic
    A, w, p = (np.asarray(u, dtype=np.float64).T
               for u in (forcing.amplitude, forcing.omega, forcing.phase))  # fmt: skip
    denominator = (1.0 - w**2) + 1j * eta * w
    resonant = denominator == 0
    check_resonance(eta, A, w)
    P = np.where(resonant, 0, A * np.exp(1j * p) / np.where(resonant, 1, denominator))
    Z0 = P * np.exp(1j * w * t[0])
    res_amp = np.where(resonant, A / np.where(resonant, 2 * w, 1), 0.0)
    a = eta / 2
    with np.errstate(over="ignore"):  # -inf beyond eta = 2.7e154: see _overdamped
        d = (1 - a) * (1 + a)
    modes = _Modes(
        a, d, np.where(a > PRIME, 2 * a, a), np.where(a > PRIME, 0.0, a), w,
        (x0 - Z0.real.sum(0))[None],
        (v0 + (w * Z0.imag).sum(0) - (res_amp * np.sin(w * t[0] + p)).sum(0))[None],
        Z0.real[:, None], Z0.imag[:, None],
    )  # fmt: skip
    x = np.empty((t.size, system.n))
    v = np.empty_like(x)
    if dt is None:
        _exact_pointwise(x, v, modes, t - t[0])
    else:
        _exact_uniform(x, v, modes, t - t[0], dt)
    if resonant.any():
        _add_resonances(x, v, t, res_amp, w, p)
    x[0], v[0] = x0, v0  # the initial state is given, not computed: keep it exact
    return x.T, v.T


def _exact_pointwise(x: Array, v: Array, modes: _Modes, tau: Array) -> None:
    """Every point from the modes at ``t0``, in blocks of rows to bound memory."""
    from odernn.data import kernels  # numba, imported when used: `odernn --help` stays quick

    n_basis = 2 + 2 * modes.w.shape[0]
    cx, cv = np.empty((2, 1, n_basis, x.shape[1]))
    modes.coefficients(cx, cv)
    cx, cv = cx[0], cv[0]
    for start in range(0, tau.size, 64):
        rows = slice(start, start + 64)
        kernels.expand(x[rows], v[rows], modes.basis(tau[rows]).transpose(1, 0, 2), cx, cv)


def _exact_uniform(x: Array, v: Array, modes: _Modes, tau: Array, dt: float) -> None:
    """Separable evaluation on a uniform grid ``tau = t - t0``: each coarse block start
    directly at its grid time, its ``_MID`` block starts by one shift of ``j _FINE dt``,
    then ``_FINE`` points each by a shift of ``r dt``."""
    from odernn.data import kernels

    fine = np.ascontiguousarray(modes.basis(dt * np.arange(_FINE)).transpose(1, 0, 2))
    mid = modes.basis(dt * _FINE * np.arange(_MID))
    cx, cv = np.empty((2, _MID, fine.shape[1], x.shape[1]))  # block-major: cx[j] contiguous
    coarse = _FINE * _MID
    for c in range(0, x.shape[0], coarse):
        modes.shifted(modes.basis(tau[c : c + 1])).shifted(mid).coefficients(cx, cv)
        for j, row in enumerate(range(c, min(c + coarse, x.shape[0]), _FINE)):
            rows = slice(row, row + _FINE)
            kernels.expand(x[rows], v[rows], fine, cx[j], cv[j])


def _add_resonances(x: Array, v: Array, t: Array, amp: Array, w: Array, p: Array) -> None:
    """Add ``amp (t - t0) sin(w t + p)`` and its derivative (``amp (K, N)``, zero off resonance)
    to the trajectories that have a resonant harmonic."""
    cols = np.flatnonzero((amp != 0).any(0))
    tau = (t - t[0])[:, None]
    for k in range(amp.shape[0]):
        phase = np.multiply.outer(t, w[k, cols]) + p[k, cols]
        x[:, cols] += amp[k, cols] * tau * np.sin(phase)
        v[:, cols] += amp[k, cols] * (np.sin(phase) + w[k, cols] * tau * np.cos(phase))


def steady_state_response(omega: Array, eta: Array, F0: Array = 1.0) -> tuple[Array, Array]:
    """Amplitude and phase lag of the steady state under ``F0 cos(omega t)``.

    ``x_ss = amplitude cos(omega t - lag)`` with
    ``amplitude = F0 / sqrt((1 - omega^2)^2 + (eta omega)^2)`` and
    ``lag = atan2(eta omega, 1 - omega^2)`` in ``[0, pi]``.
    """
    omega = np.asarray(omega, dtype=np.float64)
    eta = np.asarray(eta, dtype=np.float64)
    re, im = 1.0 - omega**2, eta * omega
    return np.asarray(F0) / np.hypot(re, im), np.arctan2(im, re)
