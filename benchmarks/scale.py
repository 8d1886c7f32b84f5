"""Simulation throughput with 1 and 2 shards, training throughput with 1 and 2 processes.

    python benchmarks/scale.py [--n 20000] [--integrator rk4] [--model gru] [--epochs 2]

Simulation: each shard is an ``odernn simulate --shard k/n`` process writing
its own file, as on a batch scheduler; the table gives wall time and
trajectory-steps per second for 1 and 2 shards (the ratio is the parallel
speed-up on this machine), then checks that the merged shards hold the
single-process file's content: every dataset (values, dtype, shape, attributes)
and every root attribute but ``created``, by :func:`odernn.data.store.content_digest`.

Training: ``odernn train`` on the built-in ``train`` set (256 x 1000) with the
family's defaults but windows of 50 steps in global batches of 256 (the defaults
when it was measured), once in one process
and once data-parallel in 2 (``--nproc 2``, gloo on the CPU); the table gives
the training windows per second (the batch loop's time, from ``history.csv``,
validation excluded), the command's wall time, and the ratio to one process.
One thread per process, so 2 processes use the 2 cores that one would not.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from odernn.data.store import content_digest
from odernn.learn.rundir import read_config, read_history


def run_shards(n: int, integrator: str, shards: int, directory: Path) -> tuple[float, list[Path]]:
    """Wall time of ``shards`` parallel ``odernn simulate`` processes, and their files."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    outs = [directory / f"s{shards}-part{k}.h5" for k in range(1, shards + 1)]
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "odernn", "simulate", "train", "-o", str(out),
                               "--n", str(n), "--integrator", integrator, "--quiet",
                               *(["--shard", f"{k}/{shards}"] if shards > 1 else [])], env=env)
             for k, out in enumerate(outs, start=1)]
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("a shard failed")
    return time.perf_counter() - start, outs


def run_training(data: Path, model: str, epochs: int, nproc: int,
                 directory: Path) -> tuple[float, float, int]:
    """Wall time, training-loop time (from history.csv) and windows per epoch of one run."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    run = directory / f"{model}-{nproc}"
    command = [sys.executable, "-m", "odernn", "train", str(data), "-o", str(run), "--model",
               model, "--epochs", str(epochs), "--quiet", "--set", "val_every=1000",
               "--set", "window=50", "--set", "batch_size=256"]
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    loop_time = float(read_history(run)["time"][-1])
    config = read_config(run)["config"]
    n, n_steps = 256, 1000
    windows = max(config["batch_size"], n * (n_steps - 1) // config["window"])
    return wall, loop_time, windows


def simulation_table(args: argparse.Namespace, tmp: Path) -> None:
    T = 1000
    print(f"simulate train, N = {args.n}, T = {T}, integrator {args.integrator}, "
          f"{os.cpu_count()} cores, one thread per process")
    print(f"{'shards':>6} {'wall s':>8} {'traj-steps/s':>14} {'speed-up':>9}")
    base = None
    files = {}
    for shards in (1, 2):
        wall, outs = run_shards(args.n, args.integrator, shards, tmp)
        files[shards] = outs
        base = base or wall
        rate = args.n * T / wall / 1e6
        print(f"{shards:>6} {wall:>8.2f} {rate:>12.1f} M {base / wall:>8.2f}x")
    merged = tmp / "merged.h5"
    subprocess.run([sys.executable, "-m", "odernn", "merge", *map(str, files[2]), "-o",
                    str(merged)], check=True, stdout=subprocess.DEVNULL)
    same = content_digest(files[1][0]) == content_digest(merged)
    print(f"merged 2 shards hold the single process's content (every dataset bit for bit, "
          f"every attribute but created): {same}")
    if not same:
        raise SystemExit("the merged shards differ from the single-process file")


def training_table(args: argparse.Namespace, tmp: Path) -> None:
    data = tmp / "train.h5"
    subprocess.run([sys.executable, "-m", "odernn", "simulate", "train", "-o", str(data),
                    "--quiet"], check=True)
    print(f"\ntrain {args.model} on train (256 x 1000), family defaults, {args.epochs} epochs, "
          f"one thread per process, median of {args.repeat}")
    print(f"{'processes':>9} {'windows/s':>10} {'loop s':>8} {'wall s':>8} {'speed-up':>9}")
    base = None
    for nproc in (1, 2):
        runs = [run_training(data, args.model, args.epochs, nproc, tmp / f"r{i}")
                for i in range(args.repeat)]
        wall = statistics.median(r[0] for r in runs)
        loop = statistics.median(r[1] for r in runs)
        rate = args.epochs * runs[0][2] / loop
        base = base or rate
        print(f"{nproc:>9} {rate:>10.0f} {loop:>8.2f} {wall:>8.2f} {rate / base:>8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="trajectories (default 20000)")
    parser.add_argument("--integrator", default="rk4")
    parser.add_argument("--model", default="gru", help="family to train (default gru)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per training run")
    parser.add_argument("--repeat", type=int, default=3, help="training runs per setting")
    parser.add_argument("--skip-simulation", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeat):
            (Path(tmp) / f"r{r}").mkdir()
        if not args.skip_simulation:
            simulation_table(args, Path(tmp))
        training_table(args, Path(tmp))

if __name__ == "__main__":
    main()
