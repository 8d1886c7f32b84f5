"""The few-drives task: surrogates trained on two nearby drives of one regime, asked for drives
of other regimes, against what a user would otherwise pick.

    python benchmarks/generalisation.py                        # every family, 5 seeds (long)
    python benchmarks/generalisation.py --families esn gru --seeds 3
    python benchmarks/generalisation.py --quick                # small sets, 2 seeds

Training set ``duffing-drives-train``: the double-well Duffing oscillator (eta 0.3, alpha
-1, beta 1, omega 1.2) at F0 0.265 or 0.275, on either side of the first period doubling
(F0 0.2656): period 1, still settling, and period 2. Test set ``duffing-drives-test``: F0
0.15 and 0.22 (period 1), 0.37 (period 5), 0.45 (chaotic), 0.53 (period 3);
docs/datasets.md. Every method gets what an integrator on the samples gets
(the initial state, the forcing samples, the system's parameters that vary: here none, so
the drive's amplitude F0 comes only through the samples; the nearest-drive baseline alone
reads F0 itself) and runs in closed loop over the 2000 steps. The score: per test drive,
the steady-state (second half) ``max x^2`` and ``mean x^2``, each averaged over the drive's
trajectories; their mean squared error against the reference's over the five drives (MSE
max x^2, MSE mean x^2), and the NRMSE of x (pointwise: meaningless beyond a few periods on
the chaotic drive).

Methods, by the information they use:

- knows the equation: RK4 on the forcing samples a surrogate has by each step (the causal
  cubic at the half steps, ``rk4-sampled-causal``) with the true parameters;
- knows an approximate model: the prior alone (Duffing with beta 20% too large, and the
  linear oscillator with the data's eta), RK4 on the samples; the hybrids (``--prior``),
  each family trained on top of the Duffing prior with the wrong beta and the ESN also on
  top of the linear one;
- data only: each family with its defaults (RNN, LSTM, GRU: those of before
  ``training_speed.py``, ``previous_defaults.py``; ``odernn.fit_seeds``, ``--seeds`` members,
  scored each and as their ensemble, the members' joint closed loop), the peers (SINDy with
  control, DMD with control; ``odernn.assess.peers``) and the nearest-drive baseline: replay the
  training trajectory whose (F0, x0, v0), each scaled by its training range, is nearest.

Seeds: the median over members of each score, its worst member, the ensemble's, and the
members that diverged.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from previous_defaults import previous  # noqa: E402

import odernn  # noqa: E402
from odernn.assess.closed_loop import closed_loop  # noqa: E402
from odernn.assess.metrics import nrmse, reference_scale  # noqa: E402
from odernn.assess.peers import fit_peers  # noqa: E402
from odernn.assess.statistics import response_statistics  # noqa: E402
from odernn.data.forcing import SampledForcing  # noqa: E402
from odernn.data.integrators import INTEGRATORS  # noqa: E402
from odernn.data.simulate import simulate_trajectories  # noqa: E402
from odernn.data.spec import load_spec  # noqa: E402
from odernn.data.systems import Oscillator  # noqa: E402
from odernn.data.trajectories import Trajectories  # noqa: E402
from odernn.learn.models.base import Rollout  # noqa: E402

FAMILIES = ("esn", "lstm", "gru", "rnn", "ffn")
WRONG_BETA = 1.2
"""The approximate model's stiffness: beta 20% too large (the data's is 1)."""


class OnTheSamples:
    """RK4 on the forcing samples a surrogate has by each step (``rk4-sampled-causal``) of
    ``system`` with ``params``: the integrator of a model the user knows, exactly or
    approximately (``changes``)."""

    target, warmup_steps, family = "state", 0, "integrator"

    def __init__(self, system: str, dt: float, fixed: dict[str, float],
                 changes: dict[str, float] | None = None) -> None:
        self.system, self.dt, self.fixed = system, dt, fixed
        self.changes = changes or {}
        self.parameter_inputs = ("F0",)

    def rollout(self, x0, v0, F, params=None, warmup=None) -> Rollout:
        n, steps = F.shape
        t = self.dt * np.arange(steps)
        values = {k: np.full(n, v) for k, v in {**self.fixed, **self.changes}.items()}
        osc = Oscillator.of(self.system, values, SampledForcing(t, F))
        x, v = INTEGRATORS["rk4-sampled-causal"](osc, x0, v0, t)
        return Rollout(x, v, np.full(n, -1))


class NearestDrive:
    """Replays the training trajectory nearest in (F0, x0, v0), each scaled by its range in
    the training set: the trivial baseline a surrogate must beat off its training drives."""

    target, warmup_steps, family = "state", 0, "nearest-drive"
    parameter_inputs = ("F0",)

    def __init__(self, train: Trajectories) -> None:
        self.train = train
        self.keys = np.stack([train.params["F0"], train.x[:, 0], train.v[:, 0]], axis=1)
        self.span = np.ptp(self.keys, axis=0)
        self.span[self.span == 0] = 1.0

    def rollout(self, x0, v0, F, params=None, warmup=None) -> Rollout:
        query = np.stack([params["F0"], x0, v0], axis=1)
        d = np.linalg.norm((query[:, None, :] - self.keys[None]) / self.span, axis=2)
        pick = d.argmin(axis=1)
        steps = F.shape[1]
        return Rollout(self.train.x[pick, :steps], self.train.v[pick, :steps],
                       np.full(len(pick), -1))


def drive_statistics(x: np.ndarray, F0: np.ndarray) -> np.ndarray:
    """Per test drive (sorted F0), the steady-state (second half) max and mean of x^2, each
    averaged over the drive's trajectories: ``(D, 2)``."""
    top, mean = response_statistics(x, x.shape[1] // 2)
    rows = [np.flatnonzero(np.isclose(F0, a)) for a in np.unique(F0)]
    return np.array([[top[r].mean(), mean[r].mean()] for r in rows])


def scores(x: np.ndarray, test: Trajectories, ref: np.ndarray) -> dict[str, float]:
    """MSE of the drives' steady-state max and mean of x^2, NRMSE x, diverged trajectories."""
    finite = np.isfinite(x).all(axis=1)
    with np.errstate(over="ignore", invalid="ignore"):
        err = (drive_statistics(x, test.params["F0"]) - ref) ** 2
    return {"mse_max_x2": float(err[:, 0].mean()), "mse_mean_x2": float(err[:, 1].mean()),
            "nrmse_x": nrmse(x, test.x, scale=reference_scale(test.x)),
            "diverged": int((~finite).sum())}


def roll(name: str, method: Any, test: Trajectories) -> Rollout:
    return closed_loop(name, method, test.F, test.params, (test.x, test.v))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--seeds", type=int, default=5, help="members per family (default 5)")
    parser.add_argument("--quick", action="store_true", help="small sets, 2 seeds, few epochs")
    args = parser.parse_args()
    begin = time.perf_counter()
    specs = [load_spec(f"duffing-drives-{s}") for s in ("train", "test")]
    if args.quick:
        specs = [s.with_overrides(n=16, n_steps=600) for s in specs]
    train, test = (simulate_trajectories(s) for s in specs)
    seeds = 2 if args.quick else args.seeds
    ref = drive_statistics(test.x, test.params["F0"])
    fixed = {"eta": 0.3, "alpha": -1.0, "beta": 1.0}
    rows: list[tuple[str, str, dict[str, float], dict[str, float] | None]] = []

    def single(info: str, name: str, method: Any) -> None:
        rows.append((info, name, scores(roll(name, method, test).x, test, ref), None))

    single("knows the equation", "rk4 on the samples", OnTheSamples("duffing", test.dt, fixed))
    single("approximate model", f"prior alone: duffing, beta x {WRONG_BETA}",
           OnTheSamples("duffing", test.dt, fixed, {"beta": WRONG_BETA}))
    single("approximate model", "prior alone: linear oscillator",
           OnTheSamples("oscillator", test.dt, {"eta": 0.3}))
    single("data only", "nearest drive", NearestDrive(train))
    peers = fit_peers(train)
    for name, peer in peers.peers.items():
        x = peer.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params).x
        rows.append(("data only", name, scores(x, test, ref), None))
    for name, why in peers.skipped.items():
        print(f"{name} skipped: {why}")
    options = {} if not args.quick else {"epochs": 3, "val_every": 1}
    wrong = {"prior": "duffing", "prior_set": {"beta": WRONG_BETA}}
    for family in args.families:
        variants = {family: ("data only", {}),
                    f"{family} + duffing prior, beta x {WRONG_BETA}": ("approximate model", wrong)}
        if family == "esn":
            variants["esn + linear prior"] = ("approximate model", {"prior": "linear"})
        for name, (info, prior) in variants.items():
            start = time.perf_counter()
            ensemble, _ = odernn.fit_seeds(train, model=family, seeds=seeds, **prior,
                                           **(previous(family, options) if family != "esn" else {}))
            rollout = roll(name, ensemble, test)
            members = {m: scores(r.x, test, ref) for m, r in rollout.info["members"].items()}
            rows.append((info, name, scores(rollout.x, test, ref), spread(members)))
            print(f"{name}: {seeds} seeds in {time.perf_counter() - start:.0f} s", flush=True)
    print(f"\n# The few-drives task ({train.n} training trajectories at F0 "
          f"{sorted(set(train.params['F0'].tolist()))}, {test.n} test trajectories at F0 "
          f"{sorted(set(test.params['F0'].tolist()))}, {test.n_steps} steps)\n")
    print("reference per drive (max x^2, mean x^2): " + ", ".join(
        f"F0 {a:g}: {m:.3g}, {s:.3g}" for a, (m, s) in zip(np.unique(test.params["F0"]), ref,
                                                            strict=True)) + "\n")
    print("| information | method | MSE max x^2 | MSE mean x^2 | NRMSE x | diverged | seeds: "
          "median MSE max x^2 / mean x^2 (worst), members diverged |")
    print("|---|---|---:|---:|---:|---:|---|")
    for info, name, s, seed in rows:
        extra = "" if seed is None else (
            f"{seed['median']['mse_max_x2']:.3g} / {seed['median']['mse_mean_x2']:.3g} "
            f"({seed['max']['mse_max_x2']:.3g} / {seed['max']['mse_mean_x2']:.3g}), "
            f"{seed['n_diverged']} of {seed['n']}")
        name = name if seed is None else f"{name} (ensemble of {seed['n']} seeds)"
        print(f"| {info} | {name} | {s['mse_max_x2']:.3g} | {s['mse_mean_x2']:.3g} | "
              f"{s['nrmse_x']:.3g} | {s['diverged']} | {extra} |")
    print(f"\n({time.perf_counter() - begin:.0f} s)")


def spread(members: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Median and worst over members of each score; members with a diverged trajectory."""
    keys = ("mse_max_x2", "mse_mean_x2", "nrmse_x")
    return {"n": len(members),
            "median": {k: float(np.median([m[k] for m in members.values()])) for k in keys},
            "max": {k: float(np.max([m[k] for m in members.values()])) for k in keys},
            "n_diverged": sum(m["diverged"] > 0 for m in members.values())}


if __name__ == "__main__":
    main()
