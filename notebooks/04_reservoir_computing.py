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
# # Reservoir computing: echo state networks
#
# The third of the lecture notes' "four effective ways to learn an RNN":
#
# > Echo State Networks (ESN): Initialize the input -> hidden and hidden ->
# > hidden and output -> hidden connections very carefully so that the hidden
# > state has a huge reservoir of weakly coupled oscillators which can be
# > selectively driven by the input. ESNs only need to learn the hidden -> output
# > connections.
#
# odernn's reservoir (`odernn/learn/models/esn.py`) is a leaky tanh network with
# fixed random weights, driven by the inputs $u_t$ (the normalised
# $x_t, v_t, F_t, F_{t+1}, \eta$):
#
# $$r_t = (1 - a)\, r_{t-1} + a \tanh(W_\text{in} u_t + W r_{t-1} + b),
# \qquad y_t = W_\text{out} \, [1, u_t, r_t].$$
#
# $W$ is sparse and scaled to a chosen spectral radius $\rho$, $a$ is the leak
# rate, $W_\text{in}$ and $b$ are uniform random; in the notes' names $W_\text{in}$
# is $U$, $W$ is $W$, and the readout $W_\text{out}$ plays the part of $V$
# and $c$. Only $W_\text{out}$ is learned, and since $y$ is linear in it,
# learning is linear least squares: no gradients, no backpropagation through
# time, no vanishing gradients. This notebook looks inside the reservoir, checks
# the closed-form readout against a direct least-squares solve, and measures
# what the hyperparameters do to the error that matters: the closed loop.

# %%
import os

# One thread, as the command line: numpy's BLAS reads this once, when numpy loads
os.environ.setdefault("OMP_NUM_THREADS", "1")

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.stats import spearmanr

import odernn

# This notebook opens up the reservoir, which the public API (`odernn.fit`) trains as a
# whole: building one by hand, the training layout, split and normalisation, and the
# NRMSE helpers are internal pieces, imported from their modules.
from odernn.assess.metrics import nrmse, reference_scale
from odernn.learn.config import TrainConfig
from odernn.learn.models import build
from odernn.learn.windows import compute_stats, split_by_trajectory, to_tensors

QUICK = os.environ.get("ODERNN_QUICK") == "1"  # the test suite runs a smaller version
N, T, UNITS = (36, 200, 100) if QUICK else (144, 1000, 500)
N_SEARCH = 12 if QUICK else 32  # random hyperparameter settings in section 5
torch.set_num_threads(1)  # the reservoir's sparse steps are small: threads only add overhead

# %% [markdown]
# ## Data
#
# Trajectories of the built-in `train` spec (cosine-driven oscillators,
# $\eta \in [0.05, 0.5]$). One trajectory in nine is held out, whole, for
# validation: every error in this notebook is measured on trajectories the
# readout never saw. `TrainConfig(model="esn").layout(dt)` is the input/output
# layout `odernn train` uses (target `state`: predict the increment of
# $(x, v)$), and the normalisation comes from the training split only.

# %%
data = odernn.simulate_trajectories(odernn.load_spec("train").with_overrides(n=N, n_steps=T))
train_set, val_set = split_by_trajectory(data, 1 / 9, seed=0)
layout = TrainConfig(model="esn").layout(data.dt)
stats = compute_stats(train_set, layout)
train_t, val_t = to_tensors(train_set, layout), to_tensors(val_set, layout)
x_val = val_set.x
scale = reference_scale(x_val)  # std of x over steps 1..T-1: the unit of every NRMSE
print(f"{train_set.n} training and {val_set.n} validation trajectories of {T} points; "
      f"inputs {layout.inputs}")

# %% [markdown]
# ## 1. Inside the reservoir: weakly coupled oscillators
#
# `build("esn", layout, stats, ...)` makes a reservoir with odernn's defaults
# unless told otherwise. $W$ has `degree` non-zeros per row, so a step costs
# $O(\text{units} \times \text{degree})$, and is rescaled so that its largest
# eigenvalue modulus is exactly $\rho$.

# %%
esn = build("esn", layout, stats, units=UNITS)
print("hyperparameters:", esn.hparams)


def reservoir_matrix(model):
    """The reservoir's recurrent matrix W (a sparse torch tensor in the model) as a dense array."""
    return model.recurrent_matrix().to_dense().double().numpy()


W = reservoir_matrix(esn)
eig = np.linalg.eigvals(W)
print(f"W: {W.shape}, {np.count_nonzero(W) / len(W):.0f} non-zeros per row, "
      f"spectral radius {np.abs(eig).max():.4f}; readout features [1, u, r]: {esn.n_features}")

# %% [markdown]
# Why "oscillators"? Linearise the update around $r = 0$ with $a = 1$ and no
# input: $r_t = W r_{t-1}$. Along each eigenvector the state is multiplied by
# the eigenvalue $\lambda_k$ every step. A complex pair $\lambda = |\lambda|
# e^{\pm i\theta}$ is a damped oscillation: amplitude $|\lambda|^t$, period
# $2\pi/\theta$ steps. A random reservoir is hundreds of such modes with
# scattered frequencies and decay rates; the input drives them all, each mode
# keeps a fading memory of it, and the readout picks the combination that
# predicts the next state. (The tanh and the bias make the coupling between
# modes weak but not zero.) The slowest decay sets how long the reservoir
# remembers: with $\rho = 0.5$ only a few steps, which is all this task needs,
# since the present state $(x_t, v_t)$ is itself an input.

# %%
pairs = eig[eig.imag > 1e-12]
periods = 2 * np.pi / np.angle(pairs)
memory = -1 / np.log(np.abs(eig).max())
print(f"{pairs.size} complex pairs (damped oscillators), {np.sum(np.abs(eig.imag) <= 1e-12)} "
      f"real modes; |lambda| from {np.abs(eig).min():.3f} to {np.abs(eig).max():.3f}")
print(f"periods from {periods.min():.1f} to {periods.max():.0f} steps; the slowest mode "
      f"decays by a factor e in {memory:.1f} steps ({memory * data.dt:.2f} time units)")
fig, ax = plt.subplots(figsize=(4.2, 4.2))
ax.plot(eig.real, eig.imag, ".", ms=3)
ax.add_patch(plt.Circle((0, 0), esn.hparams["spectral_radius"], fill=False, ls="--"))
ax.set(xlabel="Re lambda", ylabel="Im lambda", aspect="equal",
       title=f"eigenvalues of W, rho = {esn.hparams['spectral_radius']}")
plt.show()

# %% [markdown]
# ## 2. The echo state property
#
# A reservoir is useful only if its state is a function of the input history
# alone: two copies started from different states and driven by the same input
# must converge, so the initial state is forgotten and the state "echoes" the
# input. That is the **echo state property**, and the spectral radius is its
# control knob. We drive two copies of reservoirs with several $\rho$ by the
# same training trajectory, from two random initial states, and follow the
# distance between them.
#
# For a tanh reservoir with leak rate 1 there is a sufficient condition: the
# largest *singular* value $\sigma_\max(W) < 1$ makes every step a contraction
# (tanh has slope at most 1), whatever the input. The usual rule of thumb,
# $\rho < 1$, is weaker: $\rho \le \sigma_\max$, and a sparse random $W$ is far
# from symmetric, so $\sigma_\max$ can be well above $\rho$. Conversely the bias
# keeps units away from the steepest part of tanh, which can preserve the
# property a little beyond $\rho = 1$. The printed numbers say where this
# reservoir stands.

# %%
radii = (0.5, 0.9, 1.2, 1.5, 2.0)
u = esn.codec.encode(train_t.z[:1, :-1], train_t.e[:1, :-1])  # one trajectory's inputs
g = torch.Generator().manual_seed(0)
r0 = (2 * torch.rand(2, UNITS, generator=g) - 1).split(1)
fig, ax = plt.subplots(figsize=(6, 3.6))
print(f"{'rho':>5s} {'sigma_max':>9s}   distance after 1 step, after {u.shape[1]} steps")
for rho in radii:
    model = build("esn", layout, stats, units=UNITS, spectral_radius=rho)
    sigma = np.linalg.norm(reservoir_matrix(model), ord=2)  # largest singular value
    ra, rb = r0
    distance = []
    with torch.no_grad():
        for i in range(u.shape[1]):
            ra, rb = model.reservoir_step(u[:, i], ra), model.reservoir_step(u[:, i], rb)
            distance.append(torch.linalg.vector_norm(ra - rb).item())
    ax.semilogy(np.arange(1, len(distance) + 1), np.maximum(distance, 1e-9), label=f"rho = {rho}")
    print(f"{rho:5.1f} {sigma:9.2f}   {distance[0]:9.2e} {distance[-1]:9.2e}")
ax.set(xlabel="step", ylabel="||r_a - r_b||", title="two reservoirs, same input")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Distances that end near $10^{-6}$ (or at zero) have converged: the reservoir
# runs in float32, and that is its rounding level for states of this size. A reservoir
# that keeps a distance of order one never forgets where it started; its state
# depends on an arbitrary initial condition, and no fixed readout can work for
# it. odernn's default, $\rho = 0.5$ (section 1), is safely inside.

# %% [markdown]
# ## 3. The readout in closed form
#
# With the features $X$ (one row $[1, u_t, r_t]$ per time step and
# trajectory, the reservoir driven by the true trajectory) and the targets $Y$
# (the normalised increments), ridge regression minimises
# $\frac1n\|X W_\text{out}^\top - Y\|^2 + \lambda \|W_\text{out}\|^2$, whose
# solution is
#
# $$W_\text{out}^\top = \Big(\tfrac1n X^\top X + \lambda I\Big)^{-1} \tfrac1n X^\top Y.$$
#
# $X$ has one row per time step of every trajectory, which can be far more
# than fits in memory; but $X^\top X$ (features $\times$ features) and
# $X^\top Y$ are sums over rows, so `ESN.accumulate` adds them up a block of
# trajectories at a time, in float64, and `solve_readout` solves once.
# Memory does not grow with the data.

# %%
nf = esn.n_features
gram = torch.zeros(nf, nf, dtype=torch.float64)
cross = torch.zeros(nf, layout.n_outputs, dtype=torch.float64)
rows = 0
for start in range(0, train_t.n, 8):  # eight trajectories at a time
    block = slice(start, start + 8)
    rows += esn.accumulate(train_t.z[block], train_t.e[block], gram, cross)
print(f"{rows} rows of {nf} features: X would take {rows * nf * 8 / 1e6:.1f} MB, "
      f"X^T X takes {nf * nf * 8 / 1e6:.2f} MB")

# %% [markdown]
# To check the closed form, we solve the same problem directly on the first
# few training trajectories: build $X$ and $Y$ explicitly (teacher forcing,
# the same states) and hand the ridge problem to a least-squares solver as the
# ordinary least-squares problem
# $\big\| [X/\sqrt n;\ \sqrt\lambda I]\, W_\text{out}^\top - [Y/\sqrt n;\ 0] \big\|^2$,
# which `numpy.linalg.lstsq` solves by an SVD of the stacked matrix, never
# forming $X^\top X$.

# %%
RIDGE = 1e-8
z, e = train_t.z[:8], train_t.e[:8]
gram_8 = torch.zeros(nf, nf, dtype=torch.float64)
cross_8 = torch.zeros(nf, layout.n_outputs, dtype=torch.float64)
esn.solve_readout(gram_8, cross_8, esn.accumulate(z, e, gram_8, cross_8), RIDGE)
w_accumulated = esn.W_out.detach().numpy().T.copy()
with torch.no_grad():
    s0 = esn.initial_state(esn.codec.init_features(z[:, 0], e[:, 0]))
    u_all = esn.codec.encode(z[:, :-1], e[:, :-1])
    states, _ = esn.states(u_all, s0)
    X = esn.features(u_all, states).reshape(-1, nf).numpy()
    Y = esn.codec.target(z[:, :-1], z[:, 1:]).double().reshape(len(X), -1).numpy()
stacked_X = np.vstack([X / np.sqrt(len(X)), np.sqrt(RIDGE) * np.eye(nf)])
stacked_Y = np.vstack([Y / np.sqrt(len(X)), np.zeros((nf, Y.shape[1]))])
w_direct = np.linalg.lstsq(stacked_X, stacked_Y, rcond=None)[0]
difference = np.linalg.norm(w_direct - w_accumulated) / np.linalg.norm(w_direct)
fit_difference = np.abs(X @ (w_direct - w_accumulated)).max() / np.abs(Y).max()
print(f"X: {X.shape}; relative difference of the weights {difference:.1e}, "
      f"of the fitted outputs {fit_difference:.1e}")
assert fit_difference < 1e-6

# %% [markdown]
# Both routes give the same readout, up to the conditioning of the problem:
# the normal equations square the condition number of $X$, which is why the
# accumulation and the solve run in float64 even though the reservoir runs in
# float32.

# %% [markdown]
# ## 4. Spectral radius, leak rate, ridge strength
#
# Three knobs, swept one at a time from the defaults. For the spectral radius
# and the leak rate, each setting gets its best ridge strength from odernn's
# default grid, as `odernn train` would choose it. For every setting we report
# two errors on the validation trajectories, both as NRMSE of $x$ (RMS error
# over all steps and trajectories divided by the standard deviation of $x$):
#
# - **one-step**: start each step from the true state, with the reservoir
#   driven by the true trajectory (teacher forcing), and predict the next
#   state: the error the ridge regression minimises;
# - **closed loop**: start from $(x_0, v_0)$ only and feed the predictions
#   back for all $T - 1$ steps, as an integrator would: the error that matters.

# %%
def fit(ridges, **hparams):
    """Build an ESN, accumulate X^T X and X^T Y once, and solve the readout for each ridge.

    Returns one dict per ridge with the one-step and closed-loop validation NRMSE of x.
    """
    model = build("esn", layout, stats, units=UNITS, **hparams)
    k = model.n_features
    xtx = torch.zeros(k, k, dtype=torch.float64)
    xty = torch.zeros(k, layout.n_outputs, dtype=torch.float64)
    n_rows = model.accumulate(train_t.z, train_t.e, xtx, xty)
    results = []
    for ridge in ridges:
        model.solve_readout(xtx, xty, n_rows, ridge)
        with torch.no_grad():
            y, _ = model.teacher_forced(val_t.z, val_t.e)
            one_step = model.codec.decode(val_t.z[:, :-1], y)[..., 0].double().numpy()
        out = model.rollout(val_set.x[:, 0], val_set.v[:, 0], val_set.F, val_set.params["eta"])
        results.append({
            "ridge": ridge,
            "one_step": nrmse(one_step, x_val[:, 1:], start=0, scale=scale),
            "closed_loop": np.inf if out.n_diverged else nrmse(out.x, x_val),
            "readout_norm": model.W_out.detach().norm().item(),
        })
    return results


def best_ridge(**hparams):
    """The result with the lowest closed-loop error over odernn's default ridge grid."""
    return min(fit(TrainConfig(model="esn").ridge_grid, **hparams),
               key=lambda r: r["closed_loop"])


sweeps = {
    "spectral radius": ("spectral_radius", (0.1, 0.3, 0.5, 0.8, 0.95, 1.1, 1.3)),
    "leak rate": ("leak_rate", (0.1, 0.2, 0.4, 0.7, 1.0)),
}
results = {label: [best_ridge(**{name: value}) for value in values]
           for label, (name, values) in sweeps.items()}
ridges = (1e-15, 1e-13, 1e-11, 1e-9, 1e-7, 1e-5, 1e-3, 1e-1)
results["ridge strength"] = fit(ridges)
sweeps["ridge strength"] = ("ridge", ridges)

fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
for ax, (label, (name, values)) in zip(axes, sweeps.items(), strict=True):
    closed = [r["closed_loop"] for r in results[label]]
    one = [r["one_step"] for r in results[label]]
    ax.plot(values, closed, "o-", label="closed loop")
    ax.plot(values, one, "s--", label="one step")
    ax.set(xlabel=label, ylabel="validation NRMSE(x)", yscale="log")
    if name == "ridge":
        ax.set_xscale("log")
    best = int(np.argmin(closed))
    print(f"{label:16s}: " + ", ".join(f"{v:g}: {c:.2e}" for v, c in zip(values, closed,
                                                                          strict=True)))
    by_one = int(np.argmin(one))
    print(f"{'':16s}  lowest closed-loop error at {name} = {values[best]:g}, lowest "
          f"one-step error at {values[by_one]:g}: choosing by the one-step error costs a "
          f"factor {closed[by_one] / closed[best]:.2g} in closed loop")
axes[0].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# What each knob does:
#
# - **spectral radius** sets the memory: with leak rate 1 (the default) modes
#   decay like $\rho^t$ (with leak rate $a$, like $|1 - a + a\lambda|^t$ for an
#   eigenvalue $\lambda$ of the reservoir's matrix), so a small
#   $\rho$ forgets within a few steps and a $\rho$ near 1 remembers long input
#   histories. The oscillator's next state depends on its present state, which
#   is already an input, so the task needs little memory; the echo state
#   property (section 2) sets the ceiling;
# - **leak rate** $a$ low-pass filters the reservoir: each unit follows its
#   tanh drive with a time constant of $-1/\ln(1 - a) \approx 1/a$ steps (for
#   small $a$), slowing the reservoir
#   relative to the sampling step;
# - **ridge strength** trades bias for variance. A large $\lambda$ shrinks the
#   readout towards zero, a systematic error that the closed loop accumulates;
#   a tiny $\lambda$ lets the readout use directions of the feature space the
#   data hardly constrain, with larger weights that cancel each other (the
#   norm of $W_\text{out}$, below, grows as $\lambda$ shrinks); in closed
#   loop the model meets states slightly off the training data, where that
#   cancellation can fail.

# %%
for r in results["ridge strength"]:
    print(f"ridge {r['ridge']:7.0e}: |W_out| = {r['readout_norm']:9.3g}, one-step "
          f"{r['one_step']:.2e}, closed loop {r['closed_loop']:.2e}")

# %% [markdown]
# ## 5. One-step error is not closed-loop quality
#
# The ridge regression minimises the one-step error, yet we choose the ridge
# strength (and `odernn train` chooses it, and the checkpoint of every
# gradient-trained model) on the closed-loop error. Why not on the cheaper
# one-step error? Because the closed loop does not add errors up: it feeds them
# back, and what matters is their *structure*, not only their size.
#
# The cleanest demonstration needs no network at all. Forward Euler (the
# notes' update) and semi-implicit Euler make one-step errors of the same size:
# both are $O(\Delta t^2)$ per step, with the same error in $v$ and leading
# errors $\pm \tfrac12 \Delta t^2 \ddot x$ in $x$. But forward Euler's errors are
# systematic: for the free oscillator its one-step map has determinant
# $1 - \eta\Delta t + \Delta t^2$, so it integrates an oscillator with damping
# $\eta - \Delta t$ instead of $\eta$. Semi-implicit Euler's determinant is
# $1 - \eta \Delta t$, the right damping to first order; its error is a small
# shift of frequency.

# %%
x_ex, v_ex = odernn.INTEGRATORS["exact"](val_set.oscillator(), val_set.x[:, 0], val_set.v[:, 0],
                                         val_set.t)
dt, eta, F = val_set.dt, val_set.params["eta"][:, None], val_set.F
v_next = v_ex[:, :-1] + dt * (F[:, :-1] - eta * v_ex[:, :-1] - x_ex[:, :-1])  # the notes' step
one_step_x = {"euler": x_ex[:, :-1] + dt * v_ex[:, :-1],
              "semi-implicit-euler": x_ex[:, :-1] + dt * v_next}
errors = {}
print(f"{'method':20s} {'one-step':>9s} {'closed loop':>11s} {'ratio':>6s}")
for name, x_one in one_step_x.items():
    x_closed, _ = odernn.INTEGRATORS[name](val_set.oscillator(), val_set.x[:, 0],
                                           val_set.v[:, 0], val_set.t)
    one = nrmse(x_one, x_ex[:, 1:], start=0, scale=reference_scale(x_ex))
    closed = nrmse(x_closed, x_ex)
    errors[name] = closed
    print(f"{name:20s} {one:9.2e} {closed:11.2e} {closed / one:6.0f}")
print(f"forward Euler's closed-loop error is {errors['euler'] / errors['semi-implicit-euler']:.1f} "
      "times semi-implicit Euler's")
eta_eff = {"euler": -np.log(1 - 0.1 * dt + dt**2) / dt, "semi-implicit-euler":
           -np.log(1 - 0.1 * dt) / dt}
print("effective damping for eta = 0.1: " + ", ".join(f"{k} {v:.4f}" for k, v in eta_eff.items()))

# %% [markdown]
# Equal one-step errors, closed-loop errors several times apart: forward
# Euler's errors push every trajectory the same way (too little damping) and
# add up, semi-implicit Euler's mostly shift the phase. Among reservoirs the
# effect is milder. We draw random settings of spectral radius, leak
# rate, input scaling and ridge strength, and compare their two errors.

# %%
rng = np.random.default_rng(1)
search = []
for k in range(N_SEARCH):
    hparams = {"spectral_radius": float(np.exp(rng.uniform(np.log(0.1), np.log(1.5)))),
               "leak_rate": float(rng.uniform(0.1, 1.0)),
               "input_scaling": float(np.exp(rng.uniform(np.log(0.01), np.log(1.0)))),
               "seed": k}
    search.append(fit((float(10 ** rng.uniform(-15, -3)),), **hparams)[0])
one = np.array([r["one_step"] for r in search])
closed = np.array([r["closed_loop"] for r in search])
ratio = closed / one
rho_s = spearmanr(one, closed).statistic
i, j = np.triu_indices(len(one), k=1)
inverted = np.mean((one[i] - one[j]) * (closed[i] - closed[j]) < 0)
print(f"{N_SEARCH} random reservoirs: rank correlation of one-step and closed-loop error "
      f"{rho_s:.2f}; {inverted:.0%} of pairs are ranked the other way round")
print(f"closed loop / one step: from {np.min(ratio):.0f} to {np.max(ratio):.0f} "
      f"(a factor {np.max(ratio) / np.min(ratio):.0f} apart)")
best_one = int(np.argmin(one))
rank = 1 + int(np.sum(closed < closed[best_one]))
print(f"the lowest one-step error ranks {rank} of {N_SEARCH} in closed loop, with a closed-loop "
      f"error {closed[best_one] / np.min(closed):.1f} times the lowest")
fig, ax = plt.subplots(figsize=(5, 4))
ax.loglog(one, closed, "o")
ax.set(xlabel="one-step NRMSE(x)", ylabel="closed-loop NRMSE(x)",
       title="random reservoirs, validation set")
plt.show()

# %% [markdown]
# Over settings this far apart the two errors rank the reservoirs much alike:
# a model that is bad for one step is bad in closed loop too (the rank
# correlation printed above, and where the lowest one-step error ranks in
# closed loop). But the closed loop multiplies the one-step error by a factor
# that changes from model to model (by the amount printed above), depending on
# whether the errors accumulate systematically or partly cancel. So the
# one-step error says how good a model is to within that factor, while
# hyperparameter tuning chooses between models much closer than that. The
# sweeps of section 4 are such close calls: each printed what choosing by the
# one-step error would have cost in closed loop. Only the closed-loop error
# measures what we want, and it costs just one rollout of the validation set.
#
# That is why `odernn train --model esn` (in Python, `odernn.fit(data,
# model="esn")`) accumulates $X^\top X$ and $X^\top Y$ once, solves the readout
# for every ridge strength of `ridge_grid`, and keeps the one with the lowest
# closed-loop validation error:

# %%
_, run = odernn.fit(data, model="esn", units=UNITS, run_dir="esn-run", overwrite=True)
for row in run.history:
    print(f"ridge {row['ridge']:7.0e}: closed-loop validation NRMSE(x) {row['val_nrmse_x']:.3e}")
print(run.message)
