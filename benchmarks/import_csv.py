"""Importing a CSV of 1e6 rows: ``odernn import`` against the straightforward readers.

    python benchmarks/import_csv.py [--rows 1000000] [--repeat 3] [--memory]

The CSV has a header and five columns, ``run,t,x,v,F``: 100 trajectories of 10,000
points, every value written with 17 significant digits (``%.17g``, the most a float64
needs: the slowest text to parse). Timed, each the median of ``--repeat`` runs in this
process, on the same file:

- ``odernn import`` (:func:`odernn.data.importer.import_file`): read, check, split into
  trajectories, hash the file and write the HDF5 dataset, end to end;
- ``np.loadtxt`` of the whole file (NumPy's C parser; parsing only: no checks, no
  trajectories, no output);
- the csv module, ``float`` of every cell into a list of rows, then one array (parsing
  only).

The issue's target: an import of 1e6 rows under 5 s.

``--memory`` times nothing: one import under ``tracemalloc``, its peak of traced memory
against the largest estimate it checked against the memory budget (the peak must not
exceed it: ``tests/test_import.py::test_a_csv_import_stays_within_the_memory_it_checked``).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

from odernn import budget
from odernn.data.importer import ImportOptions, import_file

TARGET_S = 5.0


def write_csv(path: Path, rows: int, runs: int = 100) -> None:
    """``rows`` rows of ``runs`` trajectories: run index, time, random x, v, F."""
    rng = np.random.default_rng(0)
    per = rows // runs
    table = np.column_stack([np.repeat(np.arange(runs), per), np.tile(0.01 * np.arange(per), runs),
                             rng.standard_normal((runs * per, 3))])
    np.savetxt(path, table, delimiter=",", fmt="%.17g", header="run,t,x,v,F", comments="")


def median_time(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def with_csv_module(path: Path) -> np.ndarray:
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        return np.array([[float(cell) for cell in row] for row in reader])


def memory(source: Path, out: Path, options: ImportOptions) -> tuple[int, float]:
    """The traced peak of one import and the largest estimate it checked, in bytes."""
    checked, check = [], budget.check

    def record(what: str, need: float, hint: str) -> None:
        checked.append(need)
        check(what, need, hint)

    budget.check = record
    tracemalloc.start()
    try:
        import_file(source, out, options, overwrite=True)
        return tracemalloc.get_traced_memory()[1], max(checked)
    finally:
        tracemalloc.stop()
        budget.check = check


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="measure the import's traced "
                        "peak against its checked estimate instead of timing")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "data.csv"
        write_csv(source, args.rows)
        out = Path(tmp) / "data.h5"
        options = ImportOptions(time="t", x="x", v="v", forcing="F", trajectory="run")
        if args.memory:
            peak, estimate = memory(source, out, options)
            print(f"{args.rows} rows x 5 columns, {source.stat().st_size / 2**20:.1f} MiB of "
                  f"CSV: traced peak {peak / 2**20:.1f} MiB, checked estimate "
                  f"{estimate / 2**20:.1f} MiB ({peak / estimate:.2f} of it)")
            return 0 if peak <= estimate else 1
        ours = median_time(lambda: import_file(source, out, options, overwrite=True),
                           args.repeat)
        loadtxt = median_time(lambda: np.loadtxt(source, delimiter=",", skiprows=1),
                              args.repeat)
        module = median_time(lambda: with_csv_module(source), args.repeat)
        size = source.stat().st_size
    rows = [("odernn import (read, check, hash, write HDF5)", ours),
            ("np.loadtxt (parse only)", loadtxt),
            ("csv module + float (parse only)", module)]
    print(f"{args.rows} rows x 5 columns, {size / 2**20:.1f} MiB of CSV, median of "
          f"{args.repeat}")
    for name, seconds in rows:
        print(f"  {name:<46} {seconds:7.2f} s   {seconds / ours:5.2f}x the import's time")
    if args.rows == 1_000_000:
        verdict = "meets" if ours < TARGET_S else "misses"
        print(f"target: a 1e6-row import under {TARGET_S:g} s: {verdict} it ({ours:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
