"""What an autonomous RNN can do: oscillate, settle to point attractors, behave chaotically.

The notes list these behaviours of recurrent networks; here they are shown in the
simplest setting, the map ``h_{t+1} = tanh(W h_t)`` with no input (the notes give no
such map). Which one appears is set by the recurrent weights: for ``W = g J`` with
``J_ij ~ N(0, 1/H)`` the spectral radius of ``W`` is about ``g``. Below 1 the origin is
stable (``W`` is the map's linearisation there), and a large random network's states fall
into it; well above 1 a large network is chaotic (shown for the continuous-time network
by Sompolinsky, Crisanti & Sommers, Phys. Rev. Lett. 61, 259 (1988); this map behaves
alike, as notebook 06's sweep measures). A rotation scaled by a gain just above 1 keeps
its states on a closed invariant curve: an oscillation.

The largest Lyapunov exponent, the mean exponential growth rate of a small
perturbation, tells them apart: negative at a point attractor (and on an attracting
periodic orbit of a map), zero on the rotation's closed curve (a quasi-periodic
oscillation), positive in chaos.
"""

from __future__ import annotations

import numpy as np

from odernn import budget
from odernn.types import Array, Seed


def random_weights(n_hidden: int, gain: float, seed: Seed = 0) -> Array:
    """``W = gain * J`` with ``J_ij ~ N(0, 1/H)``: spectral radius close to ``gain``."""
    budget.check(f"random_weights: n_hidden = {n_hidden}", 2 * 8 * n_hidden**2, "reduce n_hidden")
    rng = np.random.default_rng(seed)
    return gain * rng.standard_normal((n_hidden, n_hidden)) / np.sqrt(n_hidden)


def rotation_weights(gain: float, angle: float) -> Array:
    """A 2 x 2 rotation by ``angle`` scaled by ``gain``: with gain > 1 a tanh RNN oscillates."""
    c, s = np.cos(angle), np.sin(angle)
    return gain * np.array([[c, -s], [s, c]])


def run_autonomous(W: Array, h0: Array, steps: int) -> Array:
    """Iterate ``h_{t+1} = tanh(W h_t)``; returns the states ``(steps + 1, H)``, h0 first."""
    budget.check(f"run_autonomous: {steps} steps x {len(h0)} units", 8 * (steps + 1) * len(h0),
                 "reduce steps")
    h = np.empty((steps + 1, len(h0)))
    h[0] = h0
    for t in range(steps):
        h[t + 1] = np.tanh(W @ h[t])
    return h


def lyapunov_exponent(W: Array, h0: Array, steps: int, discard: int = 100,
                      activation: str = "tanh") -> float:
    """Largest Lyapunov exponent (per step) of ``h_{t+1} = sigma(W h_t)``.

    A tangent vector is pushed through the Jacobians ``diag(sigma'(W h_t)) W``
    and renormalised each step (Benettin's method); the exponent is the mean
    log growth after ``discard`` transient steps. ``activation`` is ``tanh``
    or ``linear`` (then the exponent is ``log`` of the spectral radius).
    """
    if activation not in ("tanh", "linear"):
        raise ValueError(f"activation must be 'tanh' or 'linear', got {activation!r}")
    if steps < 1 or discard < 0:
        raise ValueError(f"steps must be >= 1 and discard >= 0, got {steps} and {discard}")
    rng = np.random.default_rng(0)
    h = np.asarray(h0, dtype=np.float64).copy()
    u = rng.standard_normal(len(h))
    u /= np.linalg.norm(u)
    total = 0.0
    for t in range(discard + steps):
        a = W @ h
        if activation == "tanh":
            h = np.tanh(a)
            u = (1.0 - h**2) * (W @ u)
        else:
            h = a / max(1.0, np.linalg.norm(a))  # keep the linear orbit bounded; u is what counts
            u = W @ u
        growth = np.linalg.norm(u)
        if growth == 0.0:
            return -np.inf
        u /= growth
        if t >= discard:
            total += np.log(growth)
    return total / steps
