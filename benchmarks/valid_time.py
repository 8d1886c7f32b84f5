"""How long the echo state network follows the chaotic Duffing oscillator, in Lyapunov times,
with its reservoir chosen on validation data, never on the test set.

    python benchmarks/valid_time.py             # about 2 minutes on one core
    python benchmarks/valid_time.py --quick     # small sets, one seed (a smoke run)

1. Training set ``duffing-chaos-train`` (256 trajectories); validation set: the same spec
   at another seed, 64 trajectories. A small grid of the reservoir's input scaling and
   spectral radius (seed 0), each fitted with the family's own ridge selection; the
   point with the longest median valid time on the validation set is chosen.
2. The chosen reservoir and the family's defaults, each over ``--seeds`` reservoir draws,
   scored by ``odernn.evaluate`` on ``duffing-chaos`` (64 x 1000 steps, about 7.4 Lyapunov
   times) and on the same trajectories run twice as long (2000 steps; the reference's
   trust horizon is reported beside), with RK4 on the forcing samples (an integrator that
   knows the equation) and forward Euler beside them: median valid time in Lyapunov
   times, the steady-state statistics of x^2, per seed and their median.

The valid time is the first time the error in x exceeds ``threshold`` (0.1) times the
reference's standard deviation (``docs/metrics.md``), in units of each trajectory's
Lyapunov time (``odernn.assess.lyapunov``).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import itertools  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

import odernn  # noqa: E402
from odernn.data.simulate import simulate_trajectories  # noqa: E402
from odernn.data.spec import load_spec  # noqa: E402
from odernn.data.trajectories import Trajectories  # noqa: E402

TRAIN, TEST = "duffing-chaos-train", "duffing-chaos"
GRID = {"input_scaling": (0.05, 0.1, 0.2), "spectral_radius": (0.3, 0.5)}
KEYS = ("valid_lyapunov_median", "x2_max_rel_error", "x2_mean_rel_error")


def data(name: str, quick: bool, **overrides: Any) -> Trajectories:
    spec = load_spec(name)
    if quick:
        overrides = {"n": min(spec.n, 32), **overrides}
    return simulate_trajectories(spec.with_overrides(**overrides) if overrides else spec)


def score(test: Trajectories, models: dict[str, Any], integrators: tuple[str, ...] = ()
          ) -> dict[str, dict[str, float]]:
    """KEYS of every method, and the trust horizon, from one evaluation with the chaos stage."""
    ev = odernn.evaluate(test, models, integrators=integrators, work_precision=False,
                         resonance=False, bifurcation=False, progress=False)
    out = {name: {k: m.metrics.get(k, np.nan) for k in KEYS} | {
        "n_diverged": m.metrics.get("n_diverged", 0)}
        for name, m in ev.methods.items() if name != ev.reference}
    chaos = ev.chaos or {}
    horizon = chaos.get("trust_horizon", {}).get("median", np.nan)
    out["(reference's trust horizon)"] = {
        "valid_lyapunov_median": horizon * chaos.get("lyapunov", {}).get("median", np.nan)}
    return out


def fit(train: Trajectories, val: Trajectories, options: dict[str, Any]) -> Any:
    model, _ = odernn.fit(train, {"model": "esn", **options}, val=val)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sets, one seed")
    parser.add_argument("--seeds", type=int, default=3, help="reservoir draws (default 3)")
    args = parser.parse_args()
    seeds = 1 if args.quick else args.seeds
    begin = time.perf_counter()
    train = data(TRAIN, args.quick)
    val = data(TRAIN, args.quick, seed=load_spec(TRAIN).seed + 1, n=32 if args.quick else 64)
    print(f"# Valid time on {TEST}: ESN chosen on validation\n\ntrain {TRAIN} ({train.n}), "
          f"validation {TRAIN} at seed + 1 ({val.n})\n")
    print("## 1. Selection on the validation set (seed 0)\n")
    print("| input_scaling | spectral_radius | valid time [Lyapunov times], median |")
    print("|---:|---:|---:|")
    points = [dict(zip(GRID, p, strict=True)) for p in itertools.product(*GRID.values())]
    models = {str(i): fit(train, val, p) for i, p in enumerate(points)}
    found = score(val, models)
    for i, p in enumerate(points):
        print(f"| {p['input_scaling']} | {p['spectral_radius']} | "
              f"{found[str(i)]['valid_lyapunov_median']:.2f} |")
    best = points[max(range(len(points)),
                      key=lambda i: np.nan_to_num(found[str(i)]["valid_lyapunov_median"]))]
    print(f"\nchosen: {best}\n")
    print("## 2. On the test set\n")
    candidates = {f"esn {best} seed {s}": {**best, "seed": s} for s in range(seeds)}
    candidates |= {f"esn defaults seed {s}": {"seed": s} for s in range(seeds)}
    models = {name: fit(train, val, options) for name, options in candidates.items()}
    steps = load_spec(TEST).n_steps
    for label, n_steps in (("", steps), (", twice as long", 2 * steps)):
        test = data(TEST, args.quick, n_steps=n_steps)
        rows = score(test, models, integrators=("rk4-sampled-causal", "euler"))
        print(f"### {TEST}{label} ({test.n} x {test.n_steps} steps)\n")
        print("| method | valid time [Lyapunov times], median | max x^2 rel. error | "
              "mean x^2 rel. error | diverged |\n|---|---:|---:|---:|---:|")
        for name, m in rows.items():
            print(f"| {name} | " + " | ".join(f"{m.get(k, np.nan):.3g}" for k in KEYS)
                  + f" | {m.get('n_diverged', '')} |")
        chosen = [m for n, m in rows.items() if n.startswith(f"esn {best}")]
        median = {k: float(np.median([m[k] for m in chosen])) for k in KEYS}
        stats = max(median["x2_max_rel_error"], median["x2_mean_rel_error"])
        print(f"\nchosen ESN, median over {len(chosen)} seeds: valid time "
              f"{median['valid_lyapunov_median']:.2f} Lyapunov times (target >= 5, stretch "
              f"10); x^2 statistics within {stats:.2%} (target 5%)\n")
    print(f"({time.perf_counter() - begin:.0f} s)")


if __name__ == "__main__":
    main()
