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
# # Four effective ways to learn an RNN, side by side
#
# The lecture notes end with four remedies for recurrent networks that are hard
# to train because their gradients vanish or explode:
#
# 1. **Long short-term memory**: build the RNN from modules designed to remember
#    values for a long time.
# 2. **Hessian-free optimisation**: an optimiser that finds directions with a tiny
#    gradient but even smaller curvature (Martens 2010; Martens & Sutskever 2011).
# 3. **Echo state networks**: fix carefully initialised input and recurrent weights,
#    a reservoir of weakly coupled oscillators, and learn only the readout.
# 4. **Good initialisation with momentum**: initialise like an echo state network,
#    then learn all the weights with momentum (Sutskever, Martens, Dahl & Hinton 2013).
#
# Here all four meet a plain vanilla RNN trained with Adam on one problem that
# needs memory, with the same budget of gradient evaluations each.

# %%
import os

# One thread, as the command line: numpy's BLAS reads this once, when numpy loads
os.environ.setdefault("OMP_NUM_THREADS", "1")

import matplotlib.pyplot as plt
import numpy as np
import torch

# The four remedies are compared on a purpose-built memory task with their own small
# training loops: an internal teaching module (the notes' stage), not the public API.
from odernn.notes.four_ways import (
    DT,
    ETA,
    METHODS,
    SHARED,
    compare,
    linear_window_errors,
    long_range_data,
    old_task_residual,
)

torch.set_num_threads(1)  # many small steps: one thread is fastest
QUICK = os.environ.get("ODERNN_QUICK") == "1"  # the test suite runs a smaller version
BUDGET = 10 if QUICK else 400  # gradient evaluations per method

# %% [markdown]
# ## A problem that needs memory
#
# A weakly damped oscillator, `x'' + eta x' + x = F`, starts at rest and is
# driven by a random forcing. The network reads **only the forcing** `F_i` and
# must output the displacement `x_{i+1}`. The displacement is the whole past
# forcing convolved with the oscillator's impulse response, which rings for
# about `2 / eta` time units: hundreds of steps. A network has to carry the
# oscillator's state in its hidden state.
#
# A fixed-window linear model (least squares on the last `w` inputs) measures
# how much memory that is: it fails until the window covers the ringing. The
# study used to ask for the next velocity from `x, F, F_next, eta`, which a
# 3-step linear window gives to rounding error: no memory needed.

# %%
sizes = {"n_train": 8, "n_test": 4, "n_steps": 80} if QUICK else {}
train, test = long_range_data(**sizes)
steps = train.u.shape[1]
print(f"{train.n} training and {test.n} test sequences of {steps} steps, eta {ETA}, dt {DT}")
print(f"old task, 3-step linear window: relative residual {old_task_residual(n=4):.1e}")
windows = tuple(w for w in (5, 20, 50, 100, 200, steps) if w <= steps)
linear = linear_window_errors(train, test, windows)
for w, err in linear.items():
    print(f"new task, linear window w = {w:>3}: test NMSE {err:.3g}")

fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(test.u[0, :, 0].numpy() * 0.1, lw=0.6, color="0.6", label="forcing (x 0.1)")
ax.plot(test.y[0, :, 0].numpy(), "k", lw=1.2, label="displacement (normalised)")
ax.set(xlabel="step", title="one test sequence")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# ## Equal budgets
#
# Every method gets the same number of gradient evaluations (a forward and a
# backward pass over a batch of whole sequences), counted rather than timed:
# an Adam or momentum step costs one, a Hessian-free step one plus one per
# conjugate-gradient iteration, and the echo state network is fitted in one
# pass and a ridge solve. Shared options and each method's own:

# %%
print("shared:", SHARED)
for name, options in METHODS.items():
    print(f"  {name:<44} {options}")
rows = compare(train, test, BUDGET)

# %%
print(f"{'method':<44} {'steps':>6} {'grad evals':>10} {'test NMSE':>10}")
for r in rows:
    print(f"{r['method']:<44} {r['steps']:>6} {r['cost']:>10} {r['test_nmse']:>10.3g}")

fig, ax = plt.subplots(figsize=(7, 4))
for r in rows:
    cost = [h["cost"] for h in r["history"]]
    err = [h["test_nmse"] for h in r["history"]]
    ax.plot(cost, err, "o-" if len(cost) > 1 else "s", ms=4, label=r["method"])
for w in (20, 50):
    if w in linear:
        ax.axhline(linear[w], color="0.5", ls=":", lw=1)
        ax.annotate(f"linear, w = {w}", (0, linear[w]), fontsize=7, va="bottom")
ax.set(xlabel="gradient evaluations", ylabel="test NMSE", yscale="log",
       ylim=(max(1e-3, 0.5 * np.min([r["test_nmse"] for r in rows])), 2))
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# ## Reading the result
#
# An NMSE of 1 is no better than predicting the mean; the linear windows show
# what a model without memory beyond `w` steps can reach. One seed does not
# rank the methods (and the test suite's quick run is too small for that
# anyway). `benchmarks/long_range.py` runs the study at full size with medians
# over seeds; its table, and the command that printed it, are in
# `docs/notebooks.md`.
