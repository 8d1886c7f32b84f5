"""The bifurcation diagram on ``duffing-chaos``: the reference's classes, how stand-ins for
a surrogate score, and what the step costs.

    python benchmarks/bifurcation.py            # about 25 s on one core
    python benchmarks/bifurcation.py --quick    # no yardstick run, no ESN (seconds)

1. The reference (DOP853 at rtol 1e-12) over the default sweep
   (``odernn.assess.bifurcation.BifurcationSettings()``: 40 amplitudes over the test set's
   F0 range and 30% beyond its ends, 2 initial states, 32 transient and 32 sampled drive
   periods): the class of every amplitude, their counts, seconds. Unless ``--quick``, the
   same sweep 4 times longer (64 transient and 64 sampled periods, 4 initial states) as
   the yardstick of the default's classes.
2. Stand-ins for a surrogate, scored against it: RK4 on the forcing samples a surrogate
   has by each step (``rk4-sampled-causal``: the system itself, to ``~(omega dt)^3``), the
   same with
   beta 10% too large (a slightly wrong model), and, unless ``--quick``, echo state
   networks with the defaults, one per seed (``--seeds``, 3), fitted on
   ``duffing-chaos-drives`` (the same system at only four drive amplitudes, another seed
   than the test set; about 2 s each): the share of amplitudes classed right (all,
   inside the test set's range, beyond it), the median W1, seconds; then the median over
   the seeds against the target (80% inside, 30% beyond).
3. The bifurcation step with the reference and one surrogate (the ESN), in seconds of
   wall time and of CPU time (the target: under 10 s on 2 cores).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from odernn.assess.bifurcation import BifurcationSettings, measure_bifurcation  # noqa: E402
from odernn.data.forcing import SampledForcing  # noqa: E402
from odernn.data.integrators import INTEGRATORS  # noqa: E402
from odernn.data.simulate import simulate_trajectories  # noqa: E402
from odernn.data.spec import load_spec  # noqa: E402
from odernn.data.systems import Oscillator  # noqa: E402
from odernn.learn.models.base import Rollout  # noqa: E402

DRIVES = "duffing-chaos-drives"
"""The training set of the ESNs: four drive amplitudes only."""


class Integrating:
    """A stand-in surrogate: RK4 on the forcing samples a surrogate has by each step
    (``rk4-sampled-causal``), beta scaled by ``scale``."""

    target, warmup_steps, family = "state", 0, "integrating"
    parameter_inputs = ("eta", "alpha", "beta")

    def __init__(self, dt: float, scale: float = 1.0) -> None:
        self.dt, self.scale = dt, scale

    def rollout(self, x0, v0, F, params=None, warmup=None) -> Rollout:
        t = self.dt * np.arange(F.shape[1])
        params = {**params, "beta": self.scale * params["beta"]}
        system = Oscillator.of("duffing", params, SampledForcing(t, F))
        x, v = INTEGRATORS["rk4-sampled-causal"](system, x0, v0, t)
        return Rollout(x, v, np.full(F.shape[0], -1))


def row(name: str, m: dict) -> str:
    return (f"| {name} | {m['agreement']:.3f} | {m['agreement_inside']:.3f} | "
            f"{m['agreement_beyond']:.3f} | {m['w1_median']:.3g} | {m['w1_median_inside']:.3g} "
            f"| {m['w1_median_beyond']:.3g} | {m['n_diverged']} | {m['wall_time_s']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="no yardstick run, no ESN")
    parser.add_argument("--seeds", type=int, default=3, help="ESN seeds (default 3)")
    args = parser.parse_args()
    data = simulate_trajectories(load_spec("duffing-chaos"))
    print(f"# Bifurcation diagram on duffing-chaos ({data.n} x {data.n_steps} steps)\n")
    surrogates = {"rk4-sampled-causal": Integrating(data.dt),
                  "rk4-sampled-causal, beta x 1.1": Integrating(data.dt, 1.1)}
    if not args.quick:
        import odernn

        drives = simulate_trajectories(load_spec(DRIVES))
        amplitudes = np.unique(drives.params["F0"]).tolist()
        for seed in range(args.seeds):
            begin = time.perf_counter()
            surrogates[f"esn, seed {seed}"], _ = odernn.fit(drives, model="esn", seed=seed,
                                                            progress=False)
            print(f"esn (seed {seed}) fitted on {DRIVES} (F0 only {amplitudes}) in "
                  f"{time.perf_counter() - begin:.1f} s")
        print()
    res = measure_bifurcation(data, surrogates)
    ref = res["integrator"]
    amplitudes = np.round(res["amplitudes"], 3)
    print("## 1. The reference's classes (default sweep)\n")
    trained = np.round(res["trained_range"], 3).tolist()
    print(f"F0 {amplitudes[0]} to {amplitudes[-1]} (test set {trained}), "
          f"{len(res['initial_states']['x0'])} initial states, {res['n_steps']} steps a "
          f"drive; {ref['wall_time_s']:.2f} s\n")
    print("counts:", ref["counts"], "\n")
    print("| F0 | class |\n|---:|---|")
    for a, label in zip(amplitudes, ref["labels"], strict=True):
        print(f"| {a} | {label} |")
    if not args.quick:
        long = measure_bifurcation(data, {}, BifurcationSettings(transient=64, periods=64,
                                                                 initial_states=4))
        same = np.mean([a == b for a, b in zip(long["integrator"]["labels"], ref["labels"],
                                               strict=True)])
        print(f"\nyardstick (64 + 64 periods, 4 initial states, "
              f"{long['integrator']['wall_time_s']:.2f} s): counts {long['integrator']['counts']}"
              f"; the default's class is the yardstick's at {same:.0%} of the amplitudes; "
              "differences: " + "; ".join(
                  f"F0 {a}: {b} (yardstick {c})" for a, b, c in zip(
                      amplitudes, ref["labels"], long["integrator"]["labels"], strict=True)
                  if b != c))
    print("\n## 2. Stand-ins for a surrogate\n")
    print("| stand-in | right | right, inside | right, beyond | W1 median | W1 median, inside "
          "| W1 median, beyond | diverged | s |")
    print("|---|" + "---:|" * 8)
    for name, m in res["methods"].items():
        print(row(name, m))
    esns = [m for name, m in res["methods"].items() if name.startswith("esn")]
    if esns:
        median = {k: float(np.median([m[k] for m in esns]))
                  for k in ("agreement", "agreement_inside", "agreement_beyond")}
        print(f"\nESN trained on {DRIVES}, median over {len(esns)} seeds: right at "
              f"{median['agreement']:.1%} of the amplitudes, {median['agreement_inside']:.1%} "
              f"inside the test set's range (target 80%), {median['agreement_beyond']:.1%} "
              "beyond it (target 30%)")
        print("\n## 3. The step with the reference and one surrogate (the ESN)\n")
        wall, cpu = time.perf_counter(), time.process_time()
        measure_bifurcation(data, {"esn": surrogates["esn, seed 0"]})
        print(f"{time.perf_counter() - wall:.2f} s wall, {time.process_time() - cpu:.2f} s "
              "CPU")


if __name__ == "__main__":
    main()
