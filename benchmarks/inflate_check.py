"""What bounding a file's compression filters costs (``odernn/data/inflate.py``).

Simulates the ``train`` spec gzip-compressed (RK4, float64; ``--n`` trajectories of
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
import tempfile
from pathlib import Path

from import_csv import median_time  # benchmarks/: the same timing

from odernn import budget
from odernn.data.filecheck import open_checked
from odernn.data.simulate import simulate
from odernn.data.spec import load_spec
from odernn.data.store import read_trajectories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--small", default="256M", help="the small budget (default 256M)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gzip.h5"
        spec = load_spec("train").with_overrides(n=args.n, n_steps=args.steps,
                                                 integrator="rk4", compression="gzip")
        simulate(spec, path)
        print(f"{args.n} x {args.steps} points, x v F float64, gzip: "
              f"{path.stat().st_size / 1e6:.0f} MB stored")
        print(f"{'budget':<10} {'open, checked (s)':>18} {'read (s)':>9} {'open / read':>12}")
        for label, value in (("default", None), (args.small, args.small)):
            if value is None:
                os.environ.pop(budget.ENV, None)
            else:
                os.environ[budget.ENV] = value
            opened = median_time(lambda: open_checked(path).file.close(), args.repeat)
            read = median_time(lambda: read_trajectories(path), args.repeat)
            print(f"{label:<10} {opened:>18.3f} {read:>9.3f} {opened / read:>12.2f}")


if __name__ == "__main__":
    main()
