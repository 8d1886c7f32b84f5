"""What bounding a file's compression filters costs (``odernn/data/inflate.py``).

Simulates a gzip-compressed dataset (the oscillator, RK4, float64; ``--n`` trajectories of
``--steps`` points) under a temporary directory, then times, median of ``--repeat``:

* opening the file with every check (``open_checked``), under the default memory budget
  (4 GiB where memory allows: no honest chunk of 1 MiB is inflated twice) and under
  ``--small`` (every chunk's deflate bound exceeds it: each is inflated first, with its
  declared size as the limit);
* reading the whole file (``read_trajectories``), the work those checks precede.

Run with nothing else on the machine: ``OMP_NUM_THREADS=1 python benchmarks/inflate_check.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from odernn import budget
from odernn.data.filecheck import open_checked
from odernn.data.simulate import simulate
from odernn.data.spec import parse_spec
from odernn.data.store import read_trajectories

SPEC = """compression = "gzip"
n = {n}
seed = 3
dt = 0.05
n_steps = {steps}
[integrator]
name = "rk4"
[parameters]
eta = [0.1, 0.3]
x0 = [-1, 1]
v0 = [-1, 1]
[forcing]
family = "cosine"
F0 = [0, 1]
omega = [0.5, 2]
"""


def median_seconds(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--small", default="256M", help="the small budget (default 256M)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gzip.h5"
        simulate(parse_spec(SPEC.format(n=args.n, steps=args.steps)), path)
        print(f"{args.n} x {args.steps} points, x v F float64, gzip: "
              f"{path.stat().st_size / 1e6:.0f} MB stored")
        print(f"{'budget':<10} {'open, checked (s)':>18} {'read (s)':>9} {'open / read':>12}")
        for label, value in (("default", None), (args.small, args.small)):
            if value is None:
                os.environ.pop(budget.ENV, None)
            else:
                os.environ[budget.ENV] = value
            opened = median_seconds(lambda: open_checked(path).file.close(), args.repeat)
            read = median_seconds(lambda: read_trajectories(path), args.repeat)
            print(f"{label:<10} {opened:>18.3f} {read:>9.3f} {opened / read:>12.2f}")


if __name__ == "__main__":
    main()
