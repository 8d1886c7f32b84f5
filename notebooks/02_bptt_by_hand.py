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
# # Backpropagation through time, by hand
#
# The lecture notes' simplest recurrent network reads an input $x^{(t)}$ at
# every step and carries a hidden state $h^{(t)}$:
#
# $$a^{(t)} = U x^{(t)} + W h^{(t-1)} + b, \qquad h^{(t)} = \tanh(a^{(t)}),
# \qquad y^{(t)} = V h^{(t)} + c,$$
#
# with the loss summed over time, $L = \sum_t L^{(t)}$, here
# $L^{(t)} = \tfrac12 \|y^{(t)} - \text{target}^{(t)}\|^2$. Training it needs
# $\partial L / \partial U, W, V, b, c$. Backpropagation through time (BPTT)
# computes them in three moves (the notes):
#
# 1. the **forward pass** builds up a stack of the activities of all units at
#    each time step;
# 2. the **backward pass** peels activities off the stack to compute the error
#    derivatives at each time step;
# 3. after the backward pass we **add together** the derivatives at all the
#    different times for each weight.
#
# `odernn.notes.bptt` is these equations in numpy, written to be read beside the
# notes. Here we run it on the damped, driven oscillator
# $x'' + \eta x' + x = F(t)$, check it three ways, and see why its backward
# pass is linear.

# %%
import os

# One thread, as the command line: numpy's BLAS reads this once, when numpy loads
os.environ.setdefault("OMP_NUM_THREADS", "1")
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import torch

import odernn

# The subject of this notebook: the notes' BPTT equations, an internal teaching module
# that the public API (whose models are trained by torch autograd) does not expose.
from odernn.notes.bptt import PARAM_NAMES, RNNParams, backward, forward, loss_and_gradients

QUICK = os.environ.get("ODERNN_QUICK") == "1"  # the test suite runs a smaller version
N, T, H = (4, 60, 16) if QUICK else (8, 200, 32)
ITERATIONS = 30 if QUICK else 300
torch.set_num_threads(1)

# %% [markdown]
# ## Oscillator data in the notes' formulation
#
# The notes map $(x_i, F_i, h_{i-1}) \to v_{i+1}$: the network sees the
# position and the forcing (and here the damping $\eta$, constant along a
# trajectory) and predicts the next velocity. We simulate a few trajectories of
# the built-in `train` set in memory and scale each input channel to unit size,
# so that tanh units start in their sensitive range.

# %%
data = odernn.simulate_trajectories(odernn.load_spec("train").with_overrides(n=N, n_steps=T + 1))
eta = np.broadcast_to(data.params["eta"][:, None], (N, T))
x = np.stack([data.x[:, :T], data.F[:, :T], eta], axis=-1)  # (N, T, 3): inputs x_i, F_i, eta
x = x / np.sqrt(np.mean(x**2, axis=(0, 1)))
target = data.v[:, 1:, None]  # (N, T, 1): v_{i+1}
print(f"inputs {x.shape}, targets {target.shape}, dt = {data.dt}")

# %% [markdown]
# ## The forward pass: a stack of activities
#
# `forward` returns every $a^{(t)}$, $h^{(t)}$ and $y^{(t)}$, and the slope
# $\sigma_h'(a^{(t)}) = 1 - (h^{(t)})^2$ that the backward pass will need. The
# weights are Gaussian with variance $1/\text{fan-in}$, and $W$ is scaled to
# spectral radius 0.9 (notebook 03 explains why that number matters).

# %%
params = RNNParams.random(n_in=3, n_hidden=H, n_out=1, seed=0, spectral_radius=0.9)
fwd = forward(params, x)
for name in ("a", "h", "slope", "y"):
    print(f"{name:6s} {getattr(fwd, name).shape}")
print(f"mean slope 1 - h^2 = {fwd.slope.mean():.3f} (1 would be a linear network)")

fig, ax = plt.subplots(figsize=(8, 3))
ax.plot(data.t[1:], target[0, :, 0], label="target $v_{i+1}$")
ax.plot(data.t[1:], fwd.y[0, :, 0], label="untrained network $y_i$")
ax.set(xlabel="t", ylabel="v")
ax.legend()
plt.show()

# %% [markdown]
# ## The backward pass
#
# Starting from the last step $\tau$ and going back, the notes' recursion
# gives the gradient with respect to each hidden state:
#
# $$\nabla_{h^{(\tau)}} L = V^\top \nabla_{y^{(\tau)}} L, \qquad
# \nabla_{h^{(t)}} L = \Big(\frac{\partial h^{(t+1)}}{\partial h^{(t)}}\Big)^{\!\top}
# \nabla_{h^{(t+1)}} L + V^\top \nabla_{y^{(t)}} L,$$
#
# with $\partial h^{(t+1)}/\partial h^{(t)} = \operatorname{diag}(1 - (h^{(t+1)})^2)\, W$;
# then each weight's gradient is a sum over time, e.g.
# $\nabla_W L = \sum_t \operatorname{diag}(1 - (h^{(t)})^2)\,
# \nabla_{h^{(t)}} L \; (h^{(t-1)})^\top$. For our loss
# $\nabla_{y^{(t)}} L = y^{(t)} - \text{target}^{(t)}$.

# %%
loss, grads = loss_and_gradients(params, x, target)
print(f"L = {loss:.4f}")
for name in PARAM_NAMES:
    g = getattr(grads, "d" + name)
    print(f"dL/d{name}: shape {str(g.shape):9s} norm {np.linalg.norm(g):.4e}")

# %% [markdown]
# ## Check 1: finite differences
#
# A derivative is a limit of difference quotients. For a few entries of each
# weight, the central difference $(L(\theta + \epsilon) - L(\theta - \epsilon))
# / 2\epsilon$ has error $O(\epsilon^2)$ from truncation and
# $O(\text{machine } \epsilon \, L / \epsilon)$ from rounding, relative to the
# gradient $|g|$: $\epsilon = 10^{-6}$ in float64 balances them near $10^{-9}$
# where $|g|$ is of the order of the loss $L$, and leaves more (still far below
# the check's $10^{-5}$) on an entry whose gradient is small against $L$.


# %%
def loss_at(p: RNNParams) -> float:
    return loss_and_gradients(p, x, target)[0]


rng = np.random.default_rng(1)
eps = 1e-6
print(f"{'weight':8s}{'entry':>10s}{'BPTT':>14s}{'finite diff.':>14s}{'rel. error':>12s}")
worst_fd = 0.0
for name in PARAM_NAMES:
    w = getattr(params, name)
    flat = rng.choice(w.size, size=min(2, w.size), replace=False)
    for index in (tuple(int(i) for i in np.unravel_index(f, w.shape)) for f in flat):
        shifted = []
        for sign in (+1, -1):
            w2 = w.copy()
            w2[index] += sign * eps
            shifted.append(loss_at(replace(params, **{name: w2})))
        fd = (shifted[0] - shifted[1]) / (2 * eps)
        exact = getattr(grads, "d" + name)[index]
        rel = abs(fd - exact) / max(abs(exact), 1e-12)
        worst_fd = max(worst_fd, rel)
        print(f"{name:8s}{str(index):>10s}{exact:>14.6e}{fd:>14.6e}{rel:>12.1e}")
assert worst_fd < 1e-5

# %% [markdown]
# ## Check 2: torch autograd
#
# Automatic differentiation does the same bookkeeping mechanically: write the
# forward pass with torch tensors and call `backward()`. Both are exact up to
# rounding, so they agree to about $10^{-14}$ over every entry of every weight.

# %%
p = {n: torch.tensor(getattr(params, n), requires_grad=True) for n in PARAM_NAMES}
h = torch.zeros(N, H, dtype=torch.float64)
xs, ts = torch.tensor(x), torch.tensor(target)
L = torch.zeros((), dtype=torch.float64)
for t in range(T):
    h = torch.tanh(xs[:, t] @ p["U"].T + h @ p["W"].T + p["b"])
    L = L + 0.5 * ((h @ p["V"].T + p["c"] - ts[:, t]) ** 2).sum()
L.backward()
print(f"L: numpy {loss:.12f}, torch {L.item():.12f}")
for name in PARAM_NAMES:
    ours, theirs = getattr(grads, "d" + name), p[name].grad.numpy()
    rel = np.linalg.norm(ours - theirs) / np.linalg.norm(theirs)
    print(f"dL/d{name}: relative difference {rel:.1e}")
    assert rel < 1e-10

# %% [markdown]
# ## The backward pass is linear
#
# The notes: *in the forward pass we use squashing functions to prevent the
# activity vectors from exploding; the backward pass is completely linear. If
# you double the error derivatives at the final layer, all the error
# derivatives will double.* The forward pass fixes the slopes
# $1 - (h^{(t)})^2$; given them, `backward` is a linear map from the output
# errors $\nabla_y L$ to every gradient. So it doubles with doubled errors and
# adds up over superposed errors, exactly (to rounding):

# %%
g1 = fwd.y - target
g2 = np.random.default_rng(2).normal(size=g1.shape)
b1, b2 = backward(params, fwd, g1), backward(params, fwd, g2)
doubled, summed = backward(params, fwd, 2 * g1), backward(params, fwd, g1 + g2)
for name in ("dU", "dW", "dV", "grad_h"):
    size = np.abs(getattr(b1, name)).max() + np.abs(getattr(b2, name)).max()  # relative to it
    e_double = np.abs(getattr(doubled, name) - 2 * getattr(b1, name)).max() / size
    e_sum = np.abs(getattr(summed, name) - getattr(b1, name) - getattr(b2, name)).max() / size
    print(f"{name:7s} |B(2g) - 2B(g)| = {e_double:.1e}   |B(g1+g2) - B(g1) - B(g2)| = {e_sum:.1e}"
          "   (relative)")
    assert e_double < 1e-12 and e_sum < 1e-12

# %% [markdown]
# The forward pass, by contrast, is not linear: doubling the *inputs* does not
# double the hidden states, because tanh squashes them.

# %%
h2 = forward(params, 2 * x).h
departure = np.linalg.norm(h2 - 2 * fwd.h) / np.linalg.norm(2 * fwd.h)
print(f"forward pass: ||h(2x) - 2 h(x)|| / ||2 h(x)|| = {departure:.2f}")

# %% [markdown]
# ## Which time steps does the gradient hear from?
#
# The notes write the gradient of the loss at step $t$ as a sum over earlier
# steps $k$,
#
# $$\frac{\partial L^{(t)}}{\partial W} = \frac{\partial L^{(t)}}{\partial y^{(t)}}
# \frac{\partial y^{(t)}}{\partial h^{(t)}} \sum_{k \le t}
# \frac{\partial h^{(t)}}{\partial h^{(k)}} \frac{\partial h^{(k)}}{\partial W}.$$
#
# Backpropagating only the final step's error shows each term: the
# contribution of step $k$ to $\nabla_W L^{(T)}$ is
# $\operatorname{diag}(1 - (h^{(k)})^2)\, \nabla_{h^{(k)}} L^{(T)} (h^{(k-1)})^\top$.
# Its size falls off exponentially with the lag $T - k$: steps more than a few
# dozen back barely contribute. This is the vanishing gradient problem,
# the subject of notebook 03.

# %%
final_only = np.zeros_like(g1)
final_only[:, -1] = g1[:, -1]
bk = backward(params, fwd, final_only)
grad_a = fwd.slope * bk.grad_h  # (N, T, H)
# steps k = 1 .. T-1 (step 0 reads h0 = 0 and adds nothing to dL/dW)
contribution = np.linalg.norm(grad_a[:, 1:, :, None] * fwd.h[:, :-1, None, :], axis=(-2, -1))
lag = T - 1 - np.arange(1, T)
typical = np.exp(np.log(contribution).mean(axis=0))  # geometric mean over trajectories
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.semilogy(lag, typical)
ax.set(xlabel="lag T - k (steps)", ylabel="|| contribution of step k to dL/dW ||")
plt.show()
print(f"contribution at lag 1: {typical[-2]:.2e}, at lag {lag[0]}: {typical[0]:.2e}")

# %% [markdown]
# ## The gradients at work
#
# Gradient descent with these hand-made gradients fits the oscillator. A few
# hundred steps of Adam (the update rule only; the gradients are
# `loss_and_gradients`) bring the loss down by orders of magnitude; the
# surrogates in `odernn.learn.models` do the same with autograd and fused kernels.

# %%
theta = {n: getattr(params, n).copy() for n in PARAM_NAMES}
m = {n: np.zeros_like(v) for n, v in theta.items()}
s = {n: np.zeros_like(v) for n, v in theta.items()}
losses = []
for i in range(1, ITERATIONS + 1):
    loss_i, g = loss_and_gradients(RNNParams(**theta), x, target)
    losses.append(loss_i / (N * T))
    for n in PARAM_NAMES:
        d = getattr(g, "d" + n) / (N * T)
        m[n] = 0.9 * m[n] + 0.1 * d
        s[n] = 0.999 * s[n] + 0.001 * d**2
        theta[n] -= 1e-2 * (m[n] / (1 - 0.9**i)) / (np.sqrt(s[n] / (1 - 0.999**i)) + 1e-8)
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.semilogy(losses)
ax.set(xlabel="iteration", ylabel="mean loss per step")
plt.show()
print(f"mean loss per step: {losses[0]:.3e} -> {losses[-1]:.3e}")
assert losses[-1] < 0.5 * losses[0]
