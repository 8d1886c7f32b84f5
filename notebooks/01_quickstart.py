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
# # Quickstart: from an equation to a trained surrogate and a report
#
# odernn asks one question: can a recurrent neural network replace the
# integrator of an ordinary differential equation? The equation is the lecture
# notes' damped, driven oscillator
#
# $$\ddot x + \eta \dot x + x = F(t), \qquad \text{i.e.} \qquad
# \dot x = v, \quad \dot v = F(t) - \eta v - x,$$
#
# and the pipeline runs in one direction:
#
# ```
# spec --simulate--> trajectories.h5 --train--> surrogate --evaluate--> report
# ```
#
# This notebook walks through every stage with the public Python API (each
# stage is also one `odernn` command): simulate trajectories, look inside the
# HDF5 file, train an echo state network and a small LSTM, run them in closed
# loop against the exact solution, and write the evaluation report.
#
# The whole API is one import, `import odernn`: the functions `load_spec`,
# `simulate`, `simulate_trajectories`, `read_trajectories`, `fit`,
# `load_surrogate`, `evaluate` and `write_report`, the data class
# `Trajectories`, and the registries `SPECS` (built-in dataset specs),
# `INTEGRATORS` and `MODELS` (`docs/api.md` lists each with its signature).
# Importing it is quick: torch is loaded only when a model is trained or
# loaded.

# %%
import os

# One thread, as the command line: numpy's BLAS reads this once, when numpy loads
os.environ.setdefault("OMP_NUM_THREADS", "1")
from pathlib import Path

import h5py
import matplotlib.pyplot as plt
import numpy as np
import torch

import odernn

# The error measures are not in the public API (`odernn.evaluate` computes them for
# you); section 5 uses the evaluator's own helpers to take a rollout apart by hand.
from odernn.assess.metrics import error_vs_time, nrmse, reference_scale

QUICK = os.environ.get("ODERNN_QUICK") == "1"  # the test suite runs a smaller version
N_TRAIN, N_TEST, N_STEPS = (32, 8, 200) if QUICK else (256, 64, 1000)
torch.set_num_threads(1)  # closed-loop rollouts are many small steps: threads only add overhead
OUT = Path("odernn-quickstart")  # everything this notebook writes goes here
print(f"odernn {odernn.__version__}:", ", ".join(n for n in odernn.__all__ if n[0] != "_"))

# %% [markdown]
# ## 1. Simulate
#
# A dataset is described by a *spec*, a small TOML file: the system, how many
# trajectories, the time grid (`dt` and `n_steps`, which counts the time
# points **including** $t = 0$), the seed, the integrator, and a range for
# every random parameter. `load_spec` reads one from a `.toml` path, or a
# built-in one by name. odernn ships a few (`odernn.SPECS`); `train` and
# `test` draw $\eta \in [0.05, 0.5]$, $x_0, v_0 \in [-1, 1]$ and a forcing
# $F(t) = F_0 \cos(\omega t)$ with $F_0 \in [0, 1]$, $\omega \in [0.5, 2]$,
# from different seeds. `with_overrides` changes fields of a spec (here: fewer
# trajectories and steps), as the `odernn simulate` options do.

# %%
print("built-in specs:", ", ".join(odernn.SPECS))
spec = odernn.load_spec("train").with_overrides(n=N_TRAIN, n_steps=N_STEPS)
print(f"spec {spec.name!r}: {spec.n} trajectories, dt = {spec.dt}, n_steps = {spec.n_steps} "
      f"(t from 0 to {spec.t_end:g}), integrator {spec.integrator['name']}, seed {spec.seed}")
print("parameters:", {k: str(r) for k, r in {**spec.parameters, **spec.forcing_parameters}.items()})

# %% [markdown]
# `simulate_trajectories` integrates a spec in memory; `simulate` streams it
# into an HDF5 file, block by block, so that memory stays bounded however many
# trajectories you ask for (the file appears only once it is complete). We
# keep the test set in memory and write the training set to disk.

# %%
OUT.mkdir(exist_ok=True)
path = odernn.simulate(spec, OUT / "train.h5", overwrite=True)
test_spec = odernn.load_spec("test").with_overrides(n=N_TEST, n_steps=N_STEPS)
test = odernn.simulate_trajectories(test_spec)
print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB); test set in memory: "
      f"x {test.x.shape}, v {test.v.shape}, F {test.F.shape}")

# %% [markdown]
# ## 2. Inspect the file
#
# The file is plain HDF5, readable by `h5ls`, `h5dump`, h5py or any HDF5
# tool: a time grid `t (T)`, arrays `x, v, F (N, T)`, and under `params/` every
# sampled parameter, one value per trajectory. Root attributes record the
# provenance, including the full spec text, so the file alone says how to make
# it again. (`odernn inspect train.h5` prints the same on the command line.)

# %%
with h5py.File(path, "r") as f:
    f.visititems(lambda name, obj: print(f"  {name:14s} {obj.shape} {obj.dtype}")
                 if isinstance(obj, h5py.Dataset) else None)
    print("root attributes:", ", ".join(sorted(f.attrs)))

# %% [markdown]
# odernn's reader, `read_trajectories`, validates the schema, every shape and
# every value before handing you the data (a damaged file gets a one-line
# message naming what is wrong). It returns a `Trajectories` object: the grid
# `t`, the arrays `x, v, F` and the dict `params`, numpy arrays in memory, and
# the file's root attributes as plain Python values in `attrs` (the same
# object `simulate_trajectories` returned for the test set). The attribute
# `spec` is the text of the spec file; the overrides we applied (fewer
# trajectories and steps) are the attributes `n_trajectories` and `n_steps`.
# Together they reproduce the file: we save the stored text as a spec file,
# load it like any other, apply them and simulate again, and the arrays agree
# bit for bit.

# %%
train_data = odernn.read_trajectories(path)
print(f"{type(train_data).__name__}: n = {train_data.n}, n_steps = {train_data.n_steps}, "
      f"dt = {train_data.dt}, params {tuple(train_data.params)}")
attrs = train_data.attrs  # the file's root attributes, as plain Python values
print({k: attrs[k] for k in ("schema", "schema_version", "integrator", "dt", "n_steps", "seed")})
print(attrs["integrator_options"])
for name, values in train_data.params.items():
    print(f"  params/{name:6s} in [{values.min():+.3f}, {values.max():+.3f}]")
(OUT / "stored-spec.toml").write_text(attrs["spec"], encoding="utf-8")
stored = odernn.load_spec(OUT / "stored-spec.toml")
print(f"stored spec text: n = {stored.n}, n_steps = {stored.n_steps}; file: "
      f"n_trajectories = {attrs['n_trajectories']}, n_steps = {attrs['n_steps']}")
again = odernn.simulate_trajectories(stored.with_overrides(n=attrs["n_trajectories"],
                                                           n_steps=attrs["n_steps"]))
print("simulated again from the stored spec, identical:",
      all(np.array_equal(getattr(again, k), getattr(train_data, k)) for k in ("x", "v", "F")))

# %% [markdown]
# A few training trajectories: a transient that depends on $(x_0, v_0)$ and
# decays at the rate $\eta/2$, on top of the steady response at the driving
# frequency $\omega$.

# %%
fig, axes = plt.subplots(2, 1, figsize=(9, 4.5), sharex=True)
for n in range(3):
    label = f"eta = {train_data.params['eta'][n]:.2f}, omega = {train_data.params['omega'][n]:.2f}"
    axes[0].plot(train_data.t, train_data.x[n], lw=1, label=label)
    axes[1].plot(train_data.t, train_data.F[n], lw=1)
axes[0].set(ylabel="x")
axes[0].legend(fontsize=8, loc="upper right")
axes[1].set(xlabel="t", ylabel="F")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. The honesty rule
#
# A surrogate is only useful if it can do the integrator's job with the
# integrator's information. So every comparison in odernn gives both the same
# thing: the initial state $(x_0, v_0)$, the forcing **samples** $F_i$ on the
# grid and, when the configuration says so, the damping $\eta$. Never the true
# trajectory after $t = 0$. At every step the surrogate reads
# $(x_i, v_i, F_i, F_{i+1}, \eta)$, where $(x_i, v_i)$ is its *own* previous
# prediction (on this linear oscillator the LSTM, GRU and RNN also read the
# sample before, $F_{i-1}$), and predicts the increment to
# $(x_{i+1}, v_{i+1})$; its hidden state $h$ carries memory between steps.
#
# Running the model on its own predictions is called the **closed loop**. It
# is how an integrator works, and it is much harder than predicting one step
# from the true state (*teacher forcing*), because errors feed back and grow.
# Since a surrogate sees $F$ only at the grid points, and in closed loop has
# $F_0, \dots, F_{i+1}$ when it gives $x_{i+1}$, the fair integrators to beat are
# those fed the same samples and no later one: RK4 with $F$ at the half step
# from the mean of $F_i, F_{i+1}$ (`rk4-sampled`) or from the cubic through the
# last four samples (`rk4-sampled-causal`). The evaluator also runs RK4 with the
# exact forcing and RK4 with a local cubic, a cubic spline or at step $2\,dt$,
# which read later samples, and compares each surrogate with the most accurate
# of the two fair ones.

# %% [markdown]
# ## 4. Train two surrogates
#
# `odernn.fit(data, options)` trains a surrogate and returns two things: the
# model, at the point of training with the lowest closed-loop validation error
# (validation trajectories are held out from `data`), and the run's result (a
# message, the training `history`, the best epoch and its error). The options
# are those of `odernn train` (the model family, one of `odernn.MODELS`, and
# its sizes, epochs, ...), given as a dict or as keywords. Without `run_dir`
# nothing is written, the model is fitted in memory; with it, `fit` writes a
# run directory, which the report reads below.
#
# **Echo state network (ESN).** A large, fixed, random recurrent network (the
# reservoir) driven by the inputs; only the linear readout is trained, in
# closed form by ridge regression. Training is one pass over the data, and the
# ridge strength is then chosen on the *closed-loop* error of validation
# trajectories held out from the training set. Notebook 04 takes it apart.

# %%
print("model families:", ", ".join(odernn.MODELS))
esn_units = 100 if QUICK else 1000
esn, esn_run = odernn.fit(train_data, {"model": "esn", "units": esn_units},
                          run_dir=OUT / "runs" / "esn", overwrite=True)
print(f"ESN ({esn_units} units): {esn_run.message}, in {esn_run.train_time_s:.1f} s")

# %% [markdown]
# **LSTM.** Trained by gradient descent (Adam) on windows of the training
# trajectories. By default the loss is teacher-forced: each step of a window
# starts from the true state. The options `horizon` and `horizon_start` add a
# closed-loop loss over a horizon that grows during training, so that the
# network learns to live with its own errors; the small run of this notebook
# in the test suite uses them, the full-size run below does not. Either way
# the checkpoint kept (`best.pt`) is the epoch with the lowest closed-loop
# validation error. We train 20 epochs here; `odernn train --model lstm`
# uses 25.

# %%
lstm_options = {"model": "lstm", "hidden": 16 if QUICK else 64, "epochs": 2 if QUICK else 20,
                **({"window": 20, "horizon": 20, "horizon_start": 5} if QUICK else {})}
lstm, lstm_run = odernn.fit(train_data, lstm_options, run_dir=OUT / "runs" / "lstm",
                            overwrite=True)
print(f"LSTM (hidden {lstm_options['hidden']}, {lstm_options['epochs']} epochs): "
      f"{lstm_run.message}, "
      f"best closed-loop validation NRMSE(x) {lstm_run.best_val_nrmse:.3g} "
      f"(epoch {lstm_run.best_epoch + 1}), in {lstm_run.train_time_s:.1f} s")

# %% [markdown]
# A run directory holds the configuration, the training history and
# self-describing checkpoints; `odernn.load_surrogate` rebuilds the model from
# one (a checkpoint file, or a run directory's `best.pt`), for instance in a
# later session. `fit` has already handed us the same models.

# %%
print(sorted(p.name for p in (OUT / "runs" / "lstm").iterdir()))
reloaded = odernn.load_surrogate(OUT / "runs" / "lstm")
print("reloaded from the run directory, same weights as fit's model:",
      all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(),
                                            lstm.state_dict().values(), strict=True)))
surrogates = {"esn": esn, "lstm": lstm}
for name, model in surrogates.items():
    print(f"{name}: target {model.target!r}, inputs {model.layout.inputs}")

# %% [markdown]
# ## 5. Closed loop against the exact solution
#
# `odernn.INTEGRATORS` names every integrator; each entry is called the same
# way, `entry(system, x0, v0, t)` with `test.oscillator()` the oscillators
# behind the test set, and returns `x, v` of shape (trajectories, time points).
# The oscillator is linear, so it has a closed-form solution; the `exact`
# entry evaluates it on the grid and is the reference for every error.
# A model's `rollout` runs a surrogate from the test set's initial states,
# batched over trajectories, given only $x_0, v_0$, the forcing samples and
# $\eta$.

# %%
for name, entry in odernn.INTEGRATORS.items():
    print(f"  {name:20s} order {entry.order or '-'}: {entry.description}")
x0, v0, eta = test.x[:, 0], test.v[:, 0], test.params["eta"]
x_exact, v_exact = odernn.INTEGRATORS["exact"](test.oscillator(), x0, v0, test.t)
rollouts = {name: model.rollout(x0, v0, test.F, eta) for name, model in surrogates.items()}
x_euler, _ = odernn.INTEGRATORS["euler"](test.oscillator(), x0, v0, test.t)
for name, r in rollouts.items():
    print(f"{name:5s} NRMSE(x) = {nrmse(r.x, x_exact):.3g}, diverged: {r.n_diverged}")
print(f"euler NRMSE(x) = {nrmse(x_euler, x_exact):.3g}  (the notes' update, for scale)")

# %% [markdown]
# NRMSE is the root-mean-square error over all trajectories and steps
# $1 \dots T-1$, divided by the standard deviation of the reference
# (`docs/metrics.md`): 1 means "no better than guessing the mean", 0.01 is a
# curve you cannot tell from the truth by eye. Here is one test trajectory, and
# the error against time (median and 90th percentile over the test
# trajectories, in units of that standard deviation). Closed-loop errors
# typically grow with time: each step starts from the previous step's mistake.

# %%
scale = reference_scale(x_exact)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
axes[0].plot(test.t, x_exact[0], "k", lw=2.5, alpha=0.4, label="exact")
for k, (name, r) in enumerate(rollouts.items()):
    axes[0].plot(test.t, r.x[0], f"C{k}", lw=1, label=name)
    median, p90 = error_vs_time(r.x, x_exact, scale=scale)
    axes[1].semilogy(test.t[1:], median[1:], f"C{k}", label=f"{name}, median")
    axes[1].semilogy(test.t[1:], p90[1:], f"C{k}", ls=":", label=f"{name}, 90th percentile")
median, _ = error_vs_time(x_euler, x_exact, scale=scale)
axes[1].semilogy(test.t[1:], median[1:], "C7", label="euler, median")
axes[0].set(xlabel="t", ylabel="x", title="test trajectory 0, closed loop")
axes[0].legend(fontsize=8)
axes[1].set(xlabel="t", ylabel="|x - x_exact| / std(x_exact)", title="error against time")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 6. Evaluate and report
#
# `odernn.evaluate` does all of this systematically: it rolls out every surrogate and
# the integrators (forward and semi-implicit Euler, RK4 with exact and with
# sampled forcing, SciPy) on the same initial states and forcings, times them,
# and measures accuracy, valid prediction time, energy balance, a
# work-precision diagram (how fast must an integrator be run to be as accurate
# as the surrogate?) and the resonance curve. `odernn.write_report` turns the
# result into one self-contained HTML page plus `metrics.json`; given the run
# directories (`runs=`), it adds their training curves.

# %%
evaluation = odernn.evaluate(test, surrogates, progress=False)
print(f"{'method':20s} {'NRMSE x':>9s} {'valid time':>10s} {'wall [s]':>9s}")
for name, m in evaluation.metrics.items():
    print(f"{name:20s} {m['nrmse_x']:9.2e} {m['valid_time_median']:10.1f} "
          f"{m['wall_time_s']:9.4f}")
best = evaluation.info["same_information"]
for name, rel in best["surrogates"].items():
    print(f"{name}: {rel['error_ratio']:.3g} times the error and {rel['time_ratio']:.3g} times "
          f"the wall time of {best['baseline']}, the best integrator given the same samples")
report = odernn.write_report(evaluation, OUT / "report", overwrite=True,
                      runs={name: OUT / "runs" / name for name in surrogates})
print(f"report: {report / 'report.html'}; files: {sorted(p.name for p in report.iterdir())}")

# %% [markdown]
# `valid time` is the median over trajectories of the first time the error
# exceeds 0.1 standard deviations (the whole horizon if it never does). The
# wall times are a reminder of what a surrogate is for: on a linear
# two-variable ODE an integrator step is a handful of multiplications, far
# cheaper than a step of any network, so expect the integrators to win on speed
# here.
# Surrogates pay off for systems whose integration is expensive; the report's
# work-precision section measures the trade. Open
# `odernn-quickstart/report/report.html` in a browser for the figures.
#
# Things to try next: more epochs for the LSTM; `odernn.fit(train_data,
# model="gru")` or `model="rnn"`; the out-of-distribution test set
# `odernn.load_spec("test-ood")`, driven at higher frequencies and amplitudes
# than anything in training; withholding the damping with `withhold=("eta",)`, so
# that the surrogate must infer it from the trajectory (`warmup=K` gives it K
# observed steps to do so, which are then excluded from every method's
# error).
