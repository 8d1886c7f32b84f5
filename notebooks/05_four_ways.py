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
# Here all four meet a plain vanilla RNN trained with Adam on one problem, with the
# same wall-clock budget each.

# %%
import math
import os

import matplotlib.pyplot as plt
import torch

from odernn.four_ways import METHODS, SHARED, compare, long_range_data

torch.set_num_threads(1)  # many small steps: one thread is fastest and timings are fair
QUICK = os.environ.get("ODERNN_QUICK") == "1"  # the test suite runs a smaller version
BUDGET = 2.0 if QUICK else 30.0  # seconds of training per method

# %% [markdown]
# ## A problem with long memory
#
# Weakly damped oscillators (eta in [0.01, 0.05]: transients last hundreds of
# steps), in the notes' `velocity` mode, but with **x and F as the only inputs**:
# the network never sees the velocity it predicts, so it has to carry it, and the
# history of x, in its hidden state. Every method gets the same options:

# %%
sizes = {"n_train": 8, "n_test": 4, "n_steps": 260} if QUICK else {}
train, test = long_range_data(**sizes)
print(f"{train.n} training and {test.n} test trajectories of {train.n_steps} points")
print("shared options:", SHARED)
for name, options in METHODS.items():
    print(f"  {name:<44} {options}")

# %% [markdown]
# ## Equal budgets
#
# Each method trains for about the same time (epochs are set from a one-epoch
# pilot run; the echo state network is fitted once, in closed form).

# %%
rows = compare(train, test, BUDGET)

# %%
print(f"{'method':<44} {'epochs':>6} {'train s':>8} {'val loss':>10} {'test NRMSE x':>13}")
for r in rows:
    print(f"{r['method']:<44} {r['epochs']:>6} {r['train_s']:>8.1f} {r['val_loss']:>10.3g} "
          f"{r['test_nrmse_x']:>13.3g}")

fig, ax = plt.subplots(figsize=(7, 4))
for r in rows:
    history = [h for h in r["history"] if math.isfinite(h.get("val_nrmse_x", math.nan))]
    if history and "time" in history[0]:
        ax.semilogy([h["time"] for h in history], [h["val_nrmse_x"] for h in history], "o-",
                    ms=3, label=r["method"])
    else:
        ax.semilogy([r["train_s"]], [r["test_nrmse_x"]], "s", ms=8, label=r["method"])
ax.set(xlabel="training time [s]", ylabel="closed-loop NRMSE of x (validation)")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# ## Reading the result
#
# The closed-loop error is what matters for a surrogate: the network runs on its
# own predictions for the whole horizon. With a short budget the reservoir,
# whose only training is one linear solve, is hard to beat; the gradient methods
# differ in how fast they make progress on the long-range part of the problem.
# `benchmarks/long_range.py` runs the same study with a longer budget and more
# data.
