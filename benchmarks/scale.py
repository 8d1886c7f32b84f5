"""Simulation throughput with 1 and 2 shards run in parallel processes.

    python benchmarks/scale.py [--n 20000] [--integrator rk4]

Each shard is an ``odernn simulate --shard k/n`` process writing its own file,
as on a batch scheduler; the table gives wall time and trajectory-steps per
second for 1 and 2 shards (the ratio is the parallel speed-up on this
machine), then checks that the merged shards equal the single-process file.
(Distributed training throughput will join this table with DDP training.)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from odernn.store import read_trajectories


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="trajectories (default 20000)")
    parser.add_argument("--integrator", default="rk4")
    args = parser.parse_args()
    T = 1000
    print(f"simulate train, N = {args.n}, T = {T}, integrator {args.integrator}, "
          f"{os.cpu_count()} cores, one thread per process")
    print(f"{'shards':>6} {'wall s':>8} {'traj-steps/s':>14} {'speed-up':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        base = None
        files = {}
        for shards in (1, 2):
            wall, outs = run_shards(args.n, args.integrator, shards, Path(tmp))
            files[shards] = outs
            base = base or wall
            rate = args.n * T / wall / 1e6
            print(f"{shards:>6} {wall:>8.2f} {rate:>12.1f} M {base / wall:>8.2f}x")
        merged = Path(tmp) / "merged.h5"
        subprocess.run([sys.executable, "-m", "odernn", "merge", *map(str, files[2]), "-o",
                        str(merged)], check=True, stdout=subprocess.DEVNULL)
        same = np.array_equal(read_trajectories(files[1][0]).x, read_trajectories(merged).x)
        print(f"merged 2 shards equal the single process bit for bit: {same}")


if __name__ == "__main__":
    main()
