"""Every surrogate family and the integrators on each system's train/test pair, and the
simulation throughput of the nonlinear systems against the linear oscillator.

    python benchmarks/systems.py --systems duffing-chaos --no-simulation   # chaotic data

    python benchmarks/systems.py                           # full size (about 40 minutes)
    python benchmarks/systems.py --quick                   # small sizes: a smoke run
    python benchmarks/systems.py --systems duffing --families esn lstm --json out.json

Part 1, simulation (NumPy, one thread): fixed-step RK4 on N trajectories drawn
from each system's training ranges (the linear oscillator's ``train``, then
``duffing-train``, ``van-der-pol-train``, ``pendulum-train``), in trajectory-steps
per second with its ratio to the linear oscillator's, median of several calls;
then the stacked SciPy call (DOP853, rtol 1e-10) against a loop of one
``solve_ivp`` per trajectory (the loop timed on a subsample and scaled), both
checked to agree.

Part 2, surrogates: for each system, its built-in ``SYSTEM-train`` and
``SYSTEM-test`` sets (DOP853 at rtol 1e-12: the reference), every family
trained with its defaults (the RNN, LSTM and GRU with those of before
``training_speed.py``, ``previous_defaults.py``; ``odernn.fit``; fit seconds include the
validation the defaults run), then one ``odernn.evaluate`` of all of them with the
integrators on the test set, the same measurement as the report: NRMSE of x
pooled over the test set, the median over trajectories of each trajectory's
NRMSE, the rollout wall time of the whole test set, and the speed-up over the
cheapest integrator setting of the work-precision sweep that is at least as
accurate (``-`` when none in the sweep is). ``duffing`` also scores its models on
``duffing-test-ood`` (forcing amplitudes above the training range): absolute RMSE
of x there against in distribution.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from previous_defaults import previous  # noqa: E402
from simulate import measure_scipy_loop, timed  # noqa: E402

import odernn  # noqa: E402
from odernn.assess.metrics import rmse  # noqa: E402
from odernn.data.forcing import forcing_from_params  # noqa: E402
from odernn.data.integrators import integrate  # noqa: E402
from odernn.data.simulate import sample_parameters, simulate_trajectories, time_grid  # noqa: E402
from odernn.data.spec import load_spec  # noqa: E402
from odernn.data.systems import Oscillator  # noqa: E402
from odernn.data.trajectories import Trajectories  # noqa: E402

SYSTEMS = ("duffing", "van-der-pol", "pendulum")
CHAOS = "duffing-chaos"
"""Trained on the chaotic spec drawn with another seed, tested on the built-in one
(``--systems duffing-chaos``): the valid time in Lyapunov times and the statistics."""
CHAOS_KEYS = ("valid_lyapunov_median", "x2_max_rel_error", "x2_mean_rel_error", "w1_x",
              "spectrum_error_x")
FAMILIES = ("esn", "lstm", "gru", "rnn", "ffn")
TRAIN_SPEC = {"oscillator": "train", **{s: f"{s}-train" for s in SYSTEMS}}
OOD = {"duffing": "duffing-test-ood"}


# --------------------------------------------------------------------------- simulation

def batch(system: str, n: int, n_steps: int) -> tuple[Oscillator, np.ndarray, np.ndarray,
                                                       np.ndarray]:
    """``n`` oscillators of ``system`` from its training spec's ranges, their initial states
    and the time grid."""
    spec = load_spec(TRAIN_SPEC[system]).with_overrides(n=n, n_steps=n_steps)
    params = sample_parameters(spec, 0, n)
    forcing = forcing_from_params(spec.forcing, params)
    return (Oscillator.of(spec.system, params, forcing), params["x0"], params["v0"],
            time_grid(spec))


def simulation_rows(n: int, n_steps: int, loop_n: int, sample: int, repeats: int) -> list[dict]:
    """RK4 throughput per system (ratio to the linear oscillator) and stacked SciPy against a
    loop of ``solve_ivp`` on ``loop_n`` trajectories."""
    rows: list[dict] = []
    for system in TRAIN_SPEC:
        osc, x0, v0, t = batch(system, n, n_steps)
        seconds, _ = timed(lambda o=osc, x0=x0, v0=v0, t=t: integrate("rk4", o, x0, v0, t),
                           repeats)
        rows.append({"system": system, "what": "rk4", "n": n, "T": n_steps, "seconds": seconds,
                     "rate": n * n_steps / seconds})
        print(f"{system}: rk4 {n * n_steps / seconds / 1e6:.1f} M traj-steps/s", flush=True)
    linear = rows[0]["rate"]
    for row in rows:
        row["ratio_to_linear"] = row["rate"] / linear
    for system in SYSTEMS:
        osc, x0, v0, t = batch(system, loop_n, n_steps)
        [row] = measure_scipy_loop(osc, x0, v0, t, repeats, sample)[:1]
        rows.append({"system": system, "what": row.what, "n": loop_n, "T": n_steps,
                     "seconds": row.seconds, "rate": row.rate, "note": row.note})
        print(f"{system}: {row.what} {row.note}", flush=True)
    return rows


# --------------------------------------------------------------------------- surrogates

def dataset(name: str, quick: bool, **overrides: Any) -> Trajectories:
    spec = load_spec(name).with_overrides(**overrides) if overrides else load_spec(name)
    if quick:
        spec = spec.with_overrides(n=min(spec.n, 32), n_steps=300)
    return simulate_trajectories(spec)


def surrogate_rows(system: str, families: list[str], quick: bool) -> list[dict]:
    """Every family trained with its defaults on ``SYSTEM-train``, evaluated with the
    integrators on ``SYSTEM-test`` (and on the out-of-distribution set where there is one)."""
    if system == CHAOS:
        spec = load_spec(CHAOS)
        train = dataset(CHAOS, quick, seed=spec.seed + 1000)
        tests = {"test": dataset(CHAOS, quick)}
    else:
        train = dataset(f"{system}-train", quick)
        tests = {"test": dataset(f"{system}-test", quick)}
    if system in OOD:
        tests["ood"] = dataset(OOD[system], quick)
    models, fit_s = {}, {}
    for family in families:
        options: dict[str, Any] = {"model": family, **previous(family)}
        if quick and family != "esn":
            options.update(epochs=2, val_every=1)
        start = time.perf_counter()
        models[family], result = odernn.fit(train, options)
        fit_s[family] = time.perf_counter() - start
        print(f"{system}: {family} fitted in {fit_s[family]:.1f} s ({result.status})", flush=True)
    rows = []
    for set_name, test in tests.items():
        evaluation = odernn.evaluate(test, models, resonance=False,
                                     work_precision=set_name == "test", progress=False)
        ref_x = evaluation.methods[evaluation.reference].x
        for name, m in evaluation.methods.items():
            if name == evaluation.reference:
                continue
            metrics = m.metrics
            speedup = metrics.get("speedup", math.nan)
            rows.append({
                "system": system, "set": set_name, "method": name, "kind": m.kind,
                "nrmse_x": metrics["nrmse_x"], "median_nrmse_x": metrics["median_nrmse_x"],
                "rmse_x": rmse(m.x[:, evaluation.start:], ref_x[:, evaluation.start:]),
                "fit_s": fit_s.get(name, math.nan), "rollout_s": metrics["wall_time_s"],
                "speedup": speedup, "diverged": metrics.get("n_diverged", 0),
                **{k: metrics.get(k, math.nan) for k in CHAOS_KEYS},
            })
        print(f"{system}/{set_name}: evaluated against {evaluation.reference}", flush=True)
    return rows


# --------------------------------------------------------------------------- tables

def fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-" if value is None or math.isnan(value) else "inf"
    return format(value, spec)


def simulation_table(rows: list[dict]) -> str:
    lines = ["| system | measurement | N x T | seconds | M traj-steps/s | note |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        note = (f"{r['ratio_to_linear']:.2f}x the linear oscillator" if "ratio_to_linear" in r
                else r.get("note", ""))
        lines.append(f"| {r['system']} | {r['what']} | {r['n']} x {r['T']} | "
                     f"{r['seconds']:.3f} | {r['rate'] / 1e6:.2f} | {note} |")
    return "\n".join(lines)


def surrogate_table(rows: list[dict]) -> str:
    lines = ["| system | set | method | NRMSE x | median NRMSE x | RMSE x | fit s | rollout s "
             "| speed-up at matched accuracy | diverged |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['system']} | {r['set']} | {r['method']} | {fmt(r['nrmse_x'], '.2e')} | "
            f"{fmt(r['median_nrmse_x'], '.2e')} | {fmt(r['rmse_x'], '.2e')} | "
            f"{fmt(r['fit_s'], '.1f')} | {fmt(r['rollout_s'], '.3f')} | "
            f"{fmt(r['speedup'], '.2g')} | {r['diverged']} |")
    return "\n".join(lines)


def chaos_table(rows: list[dict]) -> str:
    lines = ["| method | valid time [Lyapunov times], median | max x^2 rel. error | mean x^2 "
             "rel. error | W1(x) / std | spectrum error |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | " + " | ".join(
            fmt(r[k], ".3g") for k in CHAOS_KEYS) + " |")
    return "\n".join(lines)


def targets(rows: list[dict], sim: list[dict]) -> list[str]:
    """The issue's targets, each with its measured value and met / not met."""
    out = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    chaos = [r for r in rows if r["system"] == CHAOS and r["kind"] == "surrogate"]
    if chaos:
        best = max(chaos, key=lambda r: np.nan_to_num(r["valid_lyapunov_median"], nan=-1))
        stats = max(best["x2_max_rel_error"], best["x2_mean_rel_error"])
        out.append(f"{CHAOS}: best surrogate {best['method']} valid time "
                   f"{best['valid_lyapunov_median']:.3g} Lyapunov times (target >= 5, stretch "
                   f"10): {verdict(best['valid_lyapunov_median'] >= 5)}; its x^2 statistics "
                   f"within {stats:.2%} (target 5%): {verdict(stats <= 0.05)}")
    for system in sorted({r["system"] for r in rows if r["system"] != CHAOS}):
        test = [r for r in rows if r["system"] == system and r["set"] == "test"]
        euler = next((r["nrmse_x"] for r in test if r["method"] == "euler"), math.nan)
        surrogates = [r for r in test if r["kind"] == "surrogate"]
        if not surrogates:
            continue
        worse = [r["method"] for r in surrogates if not r["nrmse_x"] < euler]
        out.append(f"{system}: every family below forward Euler ({euler:.2e}): "
                   f"{verdict(not worse)}{' (not: ' + ', '.join(worse) + ')' if worse else ''}")
        best = min(surrogates, key=lambda r: r["nrmse_x"])
        out.append(f"{system}: best surrogate {best['method']} NRMSE x {best['nrmse_x']:.2e} "
                   f"(target <= 1e-3): {verdict(best['nrmse_x'] <= 1e-3)}")
        esn = next((r for r in surrogates if r["method"] == "esn"), None)
        if esn is not None:
            out.append(f"{system}: reservoir NRMSE x {esn['nrmse_x']:.2e} "
                       f"(<= 1e-4 on at least two systems): "
                       f"{'yes' if esn['nrmse_x'] <= 1e-4 else 'no'}")
        ood = {r["method"]: r for r in rows if r["system"] == system and r["set"] == "ood"}
        for r in surrogates:
            if r["method"] in ood:
                ratio = ood[r["method"]]["rmse_x"] / r["rmse_x"]
                out.append(f"{system}: {r['method']} RMSE x out of distribution "
                           f"{ood[r['method']]['rmse_x']:.2e} = {ratio:.2f}x in distribution "
                           f"(target <= 5x): {verdict(ratio <= 5)}")
    for r in sim:
        if "ratio_to_linear" in r and r["system"] != "oscillator":
            out.append(f"{r['system']}: rk4 at {r['ratio_to_linear']:.2f}x the linear "
                       f"oscillator's throughput (target >= 0.5x): "
                       f"{verdict(r['ratio_to_linear'] >= 0.5)}")
        elif "note" in r:
            factor = float(r["note"].split("x faster")[0])
            out.append(f"{r['system']}: stacked SciPy {factor:.0f}x a loop of solve_ivp "
                       f"(target >= 100x): {verdict(factor >= 100)}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, few epochs")
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS),
                        choices=(*SYSTEMS, CHAOS))
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--no-simulation", action="store_true", help="skip part 1")
    parser.add_argument("--no-surrogates", action="store_true", help="skip part 2")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    sim = []
    if not args.no_simulation:
        n, loop_n = (1000, 100) if args.quick else (10000, 1000)
        sim = simulation_rows(n, 1000, loop_n, sample=20 if args.quick else 50,
                              repeats=3 if args.quick else 7)
    rows = [] if args.no_surrogates else [
        row for system in args.systems for row in surrogate_rows(system, args.families, args.quick)]
    if sim:
        print("\n" + simulation_table(sim))
    print("\n" + surrogate_table(rows))
    chaos = [r for r in rows if r["system"] == CHAOS]
    if chaos:
        print("\n" + chaos_table(chaos))
    print("\n" + "\n".join(f"- {line}" for line in targets(rows, sim)))
    if args.json:
        args.json.write_text(json.dumps({"simulation": sim, "surrogates": rows}, indent=2))


if __name__ == "__main__":
    main()
