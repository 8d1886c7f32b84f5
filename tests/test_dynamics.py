"""Autonomous RNN dynamics: Lyapunov exponents tell point attractors, cycles and chaos apart."""

from __future__ import annotations

import numpy as np
import pytest

from odernn.notes.dynamics import (
    lyapunov_exponent,
    random_weights,
    rotation_weights,
    run_autonomous,
)


def test_linear_map_exponent_is_log_spectral_radius():
    W = random_weights(30, 0.8, seed=1)
    radius = np.max(np.abs(np.linalg.eigvals(W)))
    lam = lyapunov_exponent(W, np.ones(30), steps=3000, activation="linear")
    assert lam == pytest.approx(np.log(radius), abs=0.02)


def test_small_gain_settles_to_the_origin_with_negative_exponent():
    W = random_weights(100, 0.5, seed=2)
    h = run_autonomous(W, np.full(100, 0.5), 200)
    assert np.linalg.norm(h[-1]) < 1e-10
    assert lyapunov_exponent(W, np.full(100, 0.5), 500) < -0.5


def test_large_gain_is_chaotic():
    W = random_weights(200, 3.0, seed=3)
    h0 = np.random.default_rng(0).standard_normal(200)
    assert lyapunov_exponent(W, h0, 1000) > 0.1
    # sensitive dependence: two nearby starts separate
    a, b = run_autonomous(W, h0, 200), run_autonomous(W, h0 + 1e-9, 200)
    assert np.linalg.norm(a[-1] - b[-1]) > 1e-2


def test_rotation_with_gain_oscillates_on_a_limit_cycle():
    W = rotation_weights(1.2, 0.3)
    h = run_autonomous(W, np.array([0.1, 0.0]), 3000)
    radius = np.linalg.norm(h[2000:], axis=1)
    early, late = radius[:500], radius[500:]
    assert radius.min() > 0.1  # not the point attractor at 0
    assert abs(early.max() - late.max()) < 1e-3 * late.max()  # neither decays nor grows
    assert np.sum(np.diff(np.sign(h[2000:, 0])) != 0) > 50  # it keeps turning
    assert abs(lyapunov_exponent(W, np.array([0.1, 0.0]), 3000)) < 0.02


@pytest.mark.parametrize("steps, discard", [(0, 100), (-5, 100), (10, -1)])
def test_lyapunov_exponent_refuses_empty_averages(steps, discard):
    """No steps to average over (or a negative transient) is refused, not a division by 0."""
    with pytest.raises(ValueError, match="steps must be"):
        lyapunov_exponent(np.eye(2), np.ones(2), steps, discard=discard)


def test_the_maps_are_the_equations_as_written():
    """One step is tanh(W h), not tanh(W^T h) (a non-symmetric W tells them apart); the
    rotation turns counter-clockwise by its angle; a map with no tangent growth (W = 0) has
    exponent -inf; the exponent averages exactly the steps after the transient."""
    W = random_weights(5, 1.5, seed=4)
    h0 = np.linspace(-1.0, 1.0, 5)
    np.testing.assert_array_equal(run_autonomous(W, h0, 1)[1], np.tanh(W @ h0))
    np.testing.assert_allclose(rotation_weights(2.0, np.pi / 2) @ [1.0, 0.0], [0.0, 2.0],
                               atol=1e-15)
    assert lyapunov_exponent(np.zeros((3, 3)), np.ones(3), 10) == -np.inf
    # a linear map scaled by 2 grows every tangent vector by 2 a step, from the first
    assert lyapunov_exponent(2.0 * np.eye(3), np.ones(3), 7, discard=3,
                             activation="linear") == pytest.approx(np.log(2.0), rel=1e-14)
