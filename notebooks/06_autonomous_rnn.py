# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # What an autonomous RNN can do
#
# The lecture notes list what recurrent networks can do: *they can oscillate,
# they can settle to point attractors, they can behave chaotically.* Here we
# see all three in the simplest setting, a network with no input,
#
# $$h_{t+1} = \tanh(W h_t),$$
#
# and tell them apart with one number, the largest Lyapunov exponent
# $\lambda$: the average exponential rate at which two nearby states separate.
# $\lambda < 0$ at a point attractor, $\lambda = 0$ on the closed curve of a
# quasi-periodic oscillation, $\lambda > 0$ in chaos. (The notes give no such
# map; it is the simplest network that shows all three.)

# %%
import os

# One thread, as the command line: numpy's BLAS reads this once, when numpy loads
os.environ.setdefault("OMP_NUM_THREADS", "1")

import matplotlib.pyplot as plt
import numpy as np

# Autonomous networks (no input, no training) are outside the public API, which is about
# surrogates of the oscillator: these helpers are an internal teaching module.
from odernn.notes.dynamics import (
    lyapunov_exponent,
    random_weights,
    rotation_weights,
    run_autonomous,
)

QUICK = os.environ.get("ODERNN_QUICK") == "1"  # the test suite runs a smaller version
H = 60 if QUICK else 200
STEPS = 300 if QUICK else 2000

# %% [markdown]
# ## Point attractor, oscillation, chaos
#
# With $W = g J$, $J_{ij} \sim N(0, 1/H)$, the spectral radius of $W$ is close
# to the gain $g$. For $g < 1$ the origin is stable, and a large network's
# states fall into it. A rotation scaled by $g > 1$ pushes states outwards
# until tanh saturates, where they circle on a closed curve: an oscillation. A
# large random network with $g$ well above 1 is chaotic.

# %%
rng = np.random.default_rng(0)
cases = {
    "point attractor (g = 0.8)": random_weights(H, 0.8, seed=1),
    "oscillation (rotation, g = 1.2)": rotation_weights(1.2, 0.3),
    "chaos (g = 3)": random_weights(H, 3.0, seed=1),
}
fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
for ax, (name, W) in zip(axes, cases.items(), strict=True):
    h0 = 0.5 * rng.standard_normal(len(W))
    h = run_autonomous(W, h0, STEPS)
    lam = lyapunov_exponent(W, h0, STEPS)
    ax.plot(h[:, 0], h[:, 1], lw=0.6)
    ax.plot(h[0, 0], h[0, 1], "o", color="C1")
    ax.set(title=f"{name}\nLyapunov exponent {lam:+.3f}", xlabel="$h_1$", ylabel="$h_2$")
    print(f"{name:34s} lambda = {lam:+.4f} per step")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The transition to chaos
#
# Sweeping the gain shows the exponent cross zero near $g = 1$, where the
# origin loses stability: the edge of chaos, where reservoirs (echo state
# networks) are usually tuned to sit just below.

# %%
gains = np.linspace(0.2, 3.0, 8 if QUICK else 29)
exponents = [lyapunov_exponent(random_weights(H, g, seed=2), 0.5 * np.ones(H), STEPS)
             for g in gains]
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.plot(gains, exponents, "o-")
ax.axhline(0, color="k", lw=0.8)
ax.set(xlabel="gain g (about the spectral radius)", ylabel="largest Lyapunov exponent")
plt.show()
assert exponents[0] < 0 < exponents[-1]
