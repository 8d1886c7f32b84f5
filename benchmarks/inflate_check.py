"""What gzip costs and saves, and what bounding its filters costs (``odernn/data/inflate.py``).

Simulates the ``train`` spec (RK4, float64; ``--n`` trajectories of ``--steps`` points)
under a temporary directory, uncompressed and gzip-compressed (the spec's
``compression = "gzip"``), and gives both files' sizes and whole ``simulate`` times, median
of ``--repeat``; then times, on the gzip file, median of ``--repeat``:

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
        paths = {kind: Path(tmp) / f"{kind}.h5" for kind in ("none", "gzip")}
        spec = load_spec("train").with_overrides(n=args.n, n_steps=args.steps,
                                                 integrator="rk4")
        print(f"{args.n} x {args.steps} points, x v F float64")
        print(f"{'compression':<12} {'stored (MB)':>12} {'simulate (s)':>13}")
        simulate(spec.with_overrides(n=8, n_steps=100), Path(tmp) / "warm-up.h5")  # compiled
        seconds = {}
        for kind, path in paths.items():
            spec_of = spec.with_overrides(compression=None if kind == "none" else kind)
            seconds[kind] = median_time(
                lambda s=spec_of, p=path: simulate(s, p, overwrite=True, progress=False),
                args.repeat)
            print(f"{kind:<12} {path.stat().st_size / 1e6:>12.1f} {seconds[kind]:>13.2f}")
        size = paths["gzip"].stat().st_size / paths["none"].stat().st_size
        print(f"gzip / none: {size:.2f} of the size, {seconds['gzip'] / seconds['none']:.1f} "
              "times the time\n")
        path = paths["gzip"]
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
