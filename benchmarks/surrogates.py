"""Accuracy and speed of every surrogate family against the integrators, in one table.

Trains each family with its default options on ``train`` (state targets, eta
given; then again in velocity mode), rolls out on ``test`` and ``test-ood``,
and prints, on the same trajectories, forward Euler, semi-implicit Euler,
RK4 with the analytic forcing and the ``rk4-sampled*`` integrators given only
the forcing samples (linear, cubic, spline; RK4 at 2 dt) with the true eta.
Columns: training time, rollout time (64 x 1000 steps, best of 3), NRMSE and
absolute RMSE of x and v over the whole horizon and over the first 100 points
(docs/metrics.md). Then the velocity-mode floor (trapezoid rule fed the
exact velocity) and the stateful rollout against re-running a 20-step window
per step (batch 1024, hidden 64). numpy's and scipy's BLAS run on one thread, as under the
command line (so the reservoir's sums are the command line's whatever the cores); torch on
``--threads``.

    python benchmarks/surrogates.py            # full size (minutes per family)
    python benchmarks/surrogates.py --quick    # small sizes: a smoke run
    python benchmarks/surrogates.py --families esn lstm --targets state
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from odernn.assess.metrics import nrmse, rmse  # noqa: E402
from odernn.data.forcing import SampledForcing  # noqa: E402
from odernn.data.integrators import INTEGRATORS  # noqa: E402
from odernn.data.simulate import simulate_trajectories  # noqa: E402
from odernn.data.spec import load_spec  # noqa: E402
from odernn.data.trajectories import Trajectories  # noqa: E402
from odernn.learn.config import TrainConfig  # noqa: E402
from odernn.learn.models import build, load_surrogate  # noqa: E402
from odernn.learn.models.layout import Layout  # noqa: E402
from odernn.learn.training import train  # noqa: E402
from odernn.learn.windows import compute_stats  # noqa: E402

FAMILIES = ("esn", "lstm", "gru", "rnn")
FIRST = 100


def datasets(quick: bool) -> dict[str, Trajectories]:
    """The built-in ``train``, ``test`` and ``test-ood`` sets (exact solutions)."""
    out = {}
    for name in ("train", "test", "test-ood"):
        spec = load_spec(name).with_overrides(integrator="exact")
        if quick:
            spec = spec.with_overrides(n=min(spec.n, 32), n_steps=300)
        out[name] = simulate_trajectories(spec)
    return out


def scores(x: np.ndarray, v: np.ndarray, ref: Trajectories) -> dict[str, float]:
    """NRMSE and RMSE of x and v, whole horizon and first 100 points (pooled std of ref)."""
    sx, sv = np.std(ref.x[:, 1:]), np.std(ref.v[:, 1:])
    row = {}
    for name, pred, true, scale in (("x", x, ref.x, sx), ("v", v, ref.v, sv)):
        row[f"nrmse_{name}"] = nrmse(pred, true, scale=scale)
        row[f"rmse_{name}"] = rmse(pred, true)
        row[f"nrmse_{name}_100"] = nrmse(pred, true, stop=FIRST, scale=scale)
    return row


def best_of(fn, repeats: int = 3) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def integrator_rows(sets: dict[str, Trajectories]) -> list[dict]:
    rows = []
    methods = [("forward Euler", "euler"), ("semi-implicit Euler", "semi-implicit-euler"),
               ("RK4 (analytic F)", "rk4")]
    # given only the samples F_i, what a surrogate sees (the sampled_forcing entries)
    methods += [(f"{name} (sampled F)", name)
                for name, entry in INTEGRATORS.items() if entry.sampled_forcing]
    for label, name in methods:
        row = {"method": label, "train_s": 0.0}
        for set_name in ("test", "test-ood"):
            d = sets[set_name]
            system, samples = d.oscillator(), SampledForcing(d.t, d.F)
            method = INTEGRATORS[name]
            wall, (x, v) = best_of(lambda m=method, s=system, d=d, f=samples: m(
                s, d.x[:, 0], d.v[:, 0], d.t, samples=f))
            row.update({f"{set_name}:{k}": val for k, val in scores(x, v, d).items()})
            row[f"{set_name}:rollout_s"] = wall
        rows.append(row)
    return rows


def surrogate_row(family: str, target: str, sets: dict[str, Trajectories], quick: bool,
                  workdir: Path) -> dict:
    options = {"model": family, "target": target}
    if quick and family != "esn":
        options.update(epochs=3, val_every=1)
    config = TrainConfig.from_dict(options)
    run_dir = workdir / f"{family}-{target}"
    t0 = time.perf_counter()
    result = train(sets["train"], config, run_dir, progress=False)
    row = {"method": f"{family} ({target})", "train_s": time.perf_counter() - t0,
           "status": result.status}
    model = load_surrogate(run_dir)
    for set_name in ("test", "test-ood"):
        d = sets[set_name]
        with torch.no_grad():
            wall, out = best_of(lambda d=d: model.rollout(d.x[:, 0], d.v[:, 0], d.F,
                                                          d.params["eta"]))
        row.update({f"{set_name}:{k}": val for k, val in scores(out.x, out.v, d).items()})
        row[f"{set_name}:rollout_s"] = wall
        row[f"{set_name}:diverged"] = out.n_diverged
    return row


def velocity_floor(d: Trajectories) -> dict[str, float]:
    """NRMSE(x) of the kinematic rules fed the exact velocity."""
    dt = d.dt
    trap = d.x[:, :1] + np.concatenate(
        [np.zeros((d.n, 1)), np.cumsum(0.5 * dt * (d.v[:, 1:] + d.v[:, :-1]), axis=1)], axis=1)
    ahead = d.x[:, :1] + np.concatenate(  # x_{i+1} = x_i + dt v_{i+1}: semi-implicit
        [np.zeros((d.n, 1)), np.cumsum(dt * d.v[:, 1:], axis=1)], axis=1)
    return {"trapezoid": nrmse(trap, d.x), "semi-implicit": nrmse(ahead, d.x)}


def stateful_vs_window(d: Trajectories, batch: int = 1024, hidden: int = 64,
                       window: int = 20) -> dict[str, float]:
    """An LSTM surrogate's closed loop carrying its hidden state (``rollout``) against the
    notes' recursive forecast, re-running the last ``window`` steps at every step."""
    layout = Layout(dt=d.dt)
    model = build("lstm", layout, compute_stats(d, layout), hidden=hidden).eval()
    rows = np.arange(batch) % d.n
    x0, v0, F, eta = d.x[rows, 0], d.v[rows, 0], d.F[rows], d.params["eta"][rows]
    stateful, _ = best_of(lambda: model.rollout(x0, v0, F, eta), repeats=1)
    codec = model.codec
    z0, e, _ = model._rollout_tensors(x0, v0, F, eta, None, None)

    def rerun() -> None:
        with torch.no_grad():
            z, inputs, starts = z0, [], [z0]
            for i in range(e.shape[1]):
                inputs = [*inputs[1 - window:], codec.encode(z, e[:, i])]
                first = max(0, i + 1 - window)
                state = model.initial_state(codec.init_features(starts[first], e[:, first]))
                y, _ = model.sequence(torch.stack(inputs, dim=1), state)
                z = codec.decode(z, y[:, -1], e[:, i])
                starts.append(z)

    again, _ = best_of(rerun, repeats=1)
    return {"stateful_s": stateful, "rerun_s": again, "speedup": again / stateful}


def table(rows: list[dict]) -> str:
    cols = [("train_s", "train s", "{:.1f}")]
    for s in ("test", "test-ood"):
        cols += [(f"{s}:rollout_s", f"{s} roll s", "{:.3f}"),
                 (f"{s}:nrmse_x", f"{s} NRMSE x", "{:.2e}"),
                 (f"{s}:rmse_x", "RMSE x", "{:.2e}"),
                 (f"{s}:nrmse_x_100", "NRMSE x 100", "{:.2e}"),
                 (f"{s}:nrmse_v", "NRMSE v", "{:.2e}"),
                 (f"{s}:rmse_v", "RMSE v", "{:.2e}"),
                 (f"{s}:nrmse_v_100", "NRMSE v 100", "{:.2e}")]
    head = ["method".ljust(22)] + [c[1].rjust(max(11, len(c[1]))) for c in cols]
    lines = [" | ".join(head)]
    for r in rows:
        cells = [r["method"].ljust(22)]
        for (key, title, fmt) in cols:
            val = r.get(key)
            cells.append((fmt.format(val) if val is not None else "-").rjust(
                max(11, len(title))))
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, few epochs")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--targets", nargs="+", default=["state", "velocity"],
                        choices=["state", "velocity"])
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sets = datasets(args.quick)
    rows = integrator_rows(sets)
    with tempfile.TemporaryDirectory() as tmp:
        for target in args.targets:
            for family in args.families:
                rows.append(surrogate_row(family, target, sets, args.quick, Path(tmp)))
                print(f"{rows[-1]['method']}: trained in {rows[-1]['train_s']:.1f} s, "
                      f"NRMSE(x) {rows[-1]['test:nrmse_x']:.3g}", flush=True)
    print(table(rows))
    floor = velocity_floor(sets["test"])
    print(f"\nvelocity mode, exact v: NRMSE(x) trapezoid {floor['trapezoid']:.2e}, "
          f"semi-implicit {floor['semi-implicit']:.2e}")
    speed = stateful_vs_window(sets["test"], batch=128 if args.quick else 1024)
    print(f"stateful rollout {speed['stateful_s']:.2f} s vs re-running a 20-step window "
          f"{speed['rerun_s']:.2f} s: {speed['speedup']:.1f}x")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "velocity_floor": floor,
                                         "stateful_vs_window": speed}, indent=2))


if __name__ == "__main__":
    main()
