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
# # Vanishing and exploding gradients
#
# Backpropagation through time (notebook 02) sends the error at step $t$ back
# to an earlier step $k$ through the notes' product of adjacent-step Jacobians,
#
# $$\frac{\partial h^{(t)}}{\partial h^{(k)}} = \prod_{i=k+1}^{t}
# \frac{\partial h^{(i)}}{\partial h^{(i-1)}}, \qquad
# \frac{\partial h^{(i)}}{\partial h^{(i-1)}} = \operatorname{diag}\big(1 - (h^{(i)})^2\big)\, W$$
#
# for the tanh network. A product of $t - k$ matrices behaves like a power:
# *if the weights are small, the gradients shrink exponentially; if the weights
# are big, the gradients grow exponentially* (the notes). Over the 100 or more
# steps of an oscillator trajectory, that decides whether the network can learn
# that the present depends on the past at all.
#
# `odernn.notes.diagnostics` measures it: for a network run on oscillator inputs it
# returns $\|\partial s_T / \partial s_k\|$ (spectral norm) and the gradient
# that autograd actually delivers, $\|\partial L / \partial s_k\|$, against the
# lag $T - k$, where $s$ is the carried state ($h$, or $(h, c)$ for an LSTM).

# %%
import os

# One thread, as the command line: numpy's BLAS reads this once, when numpy loads
os.environ.setdefault("OMP_NUM_THREADS", "1")

import matplotlib.pyplot as plt
import numpy as np
import torch

import odernn

# The gradient diagnostics and the untrained probe networks they measure are internal
# teaching modules (the notes' stage), not part of the public API.
from odernn.notes.bptt import RNNParams
from odernn.notes.diagnostics import gradient_profile
from odernn.notes.diagnostics_output import format_table, plot_profiles
from odernn.notes.probes import fresh_probe, rnn_params, vanilla_probe

QUICK = os.environ.get("ODERNN_QUICK") == "1"  # the test suite runs a smaller version
N, T, H = (2, 60, 64) if QUICK else (4, 200, 64)
torch.set_num_threads(1)

# %% [markdown]
# ## The linear RNN: powers of W
#
# Without the squashing function, $h^{(t)} = U x^{(t)} + W h^{(t-1)}$ and every
# step Jacobian is $W$, so $\partial h^{(t)}/\partial h^{(k)} = W^{t-k}$. How
# fast $\|W^n\|$ grows or decays is set by the spectral radius $\rho(W)$, the
# largest eigenvalue modulus (Gelfand's formula):
#
# $$\lim_{n \to \infty} \|W^n\|^{1/n} = \rho(W).$$
#
# We draw Gaussian $W$ scaled to several radii and watch
# $\|W^n\|^{1/n}$ approach $\rho$: below 1 the gradient vanishes, above 1 it
# explodes, at 1 it is marginal.

# %%
n = np.arange(1, 151)
fig, ax = plt.subplots(figsize=(6, 3.6))
for radius in (0.5, 0.9, 1.0, 1.1):
    W = rnn_params(3, 32, spectral_radius=radius, seed=0).W
    norms = np.linalg.norm([np.linalg.matrix_power(W, k) for k in n], ord=2, axis=(1, 2))
    ax.plot(n, norms ** (1 / n), label=f"rho = {radius}")
    ax.axhline(radius, color="gray", lw=0.5, ls="--")
    print(f"rho = {radius}: ||W|| = {norms[0]:.2f}, ||W^150||^(1/150) = {norms[-1]**(1/150):.3f}")
ax.set(xlabel="n", ylabel="$||W^n||^{1/n}$", ylim=(0, 2.2))
ax.legend()
plt.show()

# %% [markdown]
# The spectral norm $\|W\|$ (the first point) is well above $\rho$: a random
# $W$ is not normal, its eigenvectors are not orthogonal. The approach to
# $\rho$ is slow, and for small $n$ the norm can even grow while $\rho < 1$.
#
# `gradient_profile` on the linear network (`activation="identity"`) gives the
# same numbers through autograd, and its fitted rate per step recovers $\rho$:

# %%
rng = np.random.default_rng(0)
inputs, targets = rng.normal(size=(1, 150, 3)), rng.normal(size=(1, 150, 1))
for radius in (0.5, 0.9, 1.1):
    params = rnn_params(3, 32, spectral_radius=radius, seed=0)
    profile = gradient_profile(vanilla_probe(params, inputs, targets, activation="identity"))
    exact = np.linalg.norm(np.linalg.matrix_power(params.W, 100), ord=2)
    print(f"rho = {radius}: ||ds_T/ds_(T-100)|| = {profile.jacobian_norm[100]:.4e} "
          f"(||W^100|| = {exact:.4e}), fitted rate {profile.rate():.4f}")
    assert abs(profile.rate() - radius) < 0.02 * radius

# %% [markdown]
# ## Non-normal W: growth before decay
#
# The spectral radius tells the asymptotic rate, not the whole story. Take
#
# $$W = \begin{pmatrix} 0.9 & 10 \\ 0 & 0.9 \end{pmatrix},$$
#
# both eigenvalues 0.9, yet $W^n = \begin{pmatrix} 0.9^n & 10\, n\, 0.9^{n-1} \\
# 0 & 0.9^n \end{pmatrix}$: the off-diagonal term grows for about ten steps
# before the decay wins. The singular values of $W$ (about 10 and 0.08) bound
# one step; the eigenvalues bound infinitely many. Gradients through such a
# network first explode by a factor of 40, then vanish. A trained RNN's
# weights are rarely normal, so transient growth is the rule, not the
# exception.

# %%
W = np.array([[0.9, 10.0], [0.0, 0.9]])
params = RNNParams(U=np.ones((2, 1)), W=W, V=np.ones((1, 2)), b=np.zeros(2), c=np.zeros(1))
profile = gradient_profile(vanilla_probe(params, np.zeros((1, 150, 1)), np.zeros((1, 150, 1)),
                                         h0=np.ones((1, 2)), activation="identity"))
print(f"eigenvalues {np.linalg.eigvals(W)}, singular values {np.linalg.svd(W)[1].round(3)}")
peak = int(np.argmax(profile.jacobian_norm))
print(f"||W^n|| peaks at n = {peak} with {profile.jacobian_norm[peak]:.1f}; "
      f"fitted asymptotic rate {profile.rate():.3f} (the radius, 0.9, up to a 1/n correction)")
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.semilogy(profile.lags, profile.jacobian_norm, label="non-normal W, rho = 0.9")
ax.semilogy(profile.lags, 0.9 ** profile.lags.astype(float), "--", label="normal W, rho = 0.9")
ax.set(xlabel="n", ylabel="$||W^n||$")
ax.legend()
plt.show()
assert peak > 5 and profile.jacobian_norm[peak] > 30 and abs(profile.rate() - 0.9) < 0.02

# %% [markdown]
# ## The tanh RNN on oscillator data
#
# Now the notes' network as it is used here: inputs $(x_i, F_i, \eta)$ from
# simulated oscillators (scaled to unit size), hidden state through tanh, the
# loss at the final step. The step Jacobian $\operatorname{diag}(1 - h^2) W$
# has slopes $1 - h^2 \le 1$, so a product of $n$ of them is at most
# $\|W\|_2^n$ in norm. That bound is not $\rho^n$: the slopes change from step to
# step, and a product of such matrices can grow where $W^n$ decays (for a
# non-normal $W$ and a bias that holds the units where the slopes reshape it).
# On these data the curves fall faster than $\rho^n$, and even
# $\rho = 1.5$ vanishes once the inputs drive the units into saturation.

# %%
data = odernn.simulate_trajectories(odernn.load_spec("train").with_overrides(n=N, n_steps=T + 1))
radii = (0.5, 0.9, 1.0, 1.5)
rnn = [gradient_profile(fresh_probe("rnn", data, hidden=H, length=T, spectral_radius=r))
       for r in radii]
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True, layout="constrained")
plot_profiles(rnn, axes)
plt.show()
print(format_table(rnn))
rates = [p.rate() for p in rnn]
assert rates == sorted(rates)  # a larger radius vanishes more slowly

# %% [markdown]
# The right panel is the gradient autograd delivers to each step,
# $\partial L^{(T)} / \partial h^{(k)} = (\partial h^{(T)} / \partial h^{(k)})^\top
# \nabla_{h^{(T)}} L$: it follows the Jacobian product, so whatever the product
# does to the error signal, training sees.
#
# ## Small inputs: the explosion at radius 1.5
#
# With inputs a thousand times smaller the units stay near zero, where
# $\tanh' \approx 1$ and the step Jacobian is $W$ itself: with $\rho = 1.5$ the
# gradient now grows with the lag. Once the state grows large enough to
# saturate, the network settles on its own chaotic attractor (notebook 06),
# where perturbations grow slowly on average: a positive Lyapunov exponent
# is a slowly exploding gradient.

# %%
scales = (1e-3, 1.0)
driven = [gradient_profile(fresh_probe("rnn", data, hidden=H, length=T, spectral_radius=1.5,
                                       input_scale=s)) for s in scales]
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True, layout="constrained")
plot_profiles(driven, axes)
plt.show()
print(format_table(driven))
assert driven[0].jacobian_norm[10] > 1 > driven[1].jacobian_norm[T // 2]

# %% [markdown]
# ## LSTM and GRU
#
# The notes' first remedy: *make the RNN out of little modules that are
# designed to remember values for a long time.* In an LSTM the cell state is
# updated additively, $c_t = f_t \odot c_{t-1} + i_t \odot g_t$, so its own
# step Jacobian is $\operatorname{diag}(f_t)$ plus terms through the gates: the
# memory decays at the rate of the forget gate $f_t$, not at a rate set by $W$.
# Untrained, with PyTorch's biases near 0, $f_t \approx 1/2$, and an LSTM
# forgets as fast as a vanilla RNN. A forget-gate bias of 3 ($f \approx 0.95$)
# keeps the gradient alive over the whole window. (We differentiate the full
# state $(h, c)$: only for it is the many-step Jacobian the product of
# one-step Jacobians.) The GRU's update gate $z_t$ plays the same role: with
# PyTorch's $h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$ its step Jacobian is
# $\operatorname{diag}(z_t)$ plus terms through the gates, so it keeps a
# gradient where $z$ is near 1. Untrained, $z_t \approx 1/2$, and the table
# below shows it forgetting about as fast as the vanilla RNN.

# %%
gated = [gradient_profile(fresh_probe(family, data, hidden=H, length=T, forget_bias=bias))
         for family, bias in (("lstm", None), ("lstm", 3.0), ("gru", None))]
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True, layout="constrained")
plot_profiles([rnn[1], *gated], axes)
plt.show()
print(format_table([rnn[1], *gated]))
assert gated[1].rate() > max(gated[0].rate(), rnn[1].rate())

# %% [markdown]
# ## What to take away
#
# - Gradients through $t - k$ steps scale like a product of $t - k$ Jacobians;
#   for a linear RNN exactly $W^{t-k}$, with rate $\rho(W)$ per step.
# - Non-normal weights grow transiently even with $\rho < 1$; the rate is
#   asymptotic.
# - tanh saturation multiplies by slopes below 1: it prevents explosion in the
#   forward pass and speeds up vanishing in the backward pass.
# - Gates (LSTM, GRU) with a forget gate near 1 carry gradients over long
#   lags; the notes' other remedies are careful initialisation (the spectral
#   radius, echo state networks) and Hessian-free optimisation.
#
# The same picture for a trained surrogate:
# `odernn gradients --run RUN_DIR -o OUT_DIR`.
