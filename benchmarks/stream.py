"""Training streamed from a file: peak memory against the file's size, speed against memory.

Simulates the ``train`` spec (exact solution, T = 1000, float64: 24 kB per trajectory) into
files of 10^4 and 10^5 trajectories (and 10^6 with ``--huge``, a 24 GB file) under a
temporary directory (deleted after), and a separate validation file of 256 trajectories.
Each measurement runs in a fresh process; its peak resident memory is that process's
``VmHWM`` (as in ``benchmarks/simulate.py``):

* an LSTM (hidden 32, batch 256, window 50) trained streamed (``FileRows``) for
  ``--batches`` batches, enough to refill the shuffling buffer several times (a whole epoch
  of 10^5 trajectories is 7800 batches), after the passes that precede
  training (fingerprint, statistics, the skip connection's least-squares start);
* beside them, the floor: the same LSTM trained in memory on a file of 256 trajectories;
* an ESN (100 units, ridge given) accumulating its normal equations over the first
  ``--esn-rows`` training trajectories, streamed (the whole 10^4 file; at 10^5 a whole pass
  would take ten minutes here, most of it the reservoir's steps, not the reading).

Throughput: the same LSTM training, in memory and streamed, on the 10^4 file (which fits),
windows per second over the first ``--batches`` batches as the training loop reports it
(the streamed figure includes reading every buffer it fills, and the first buffer's wait);
the streamed run is the one above (its two buffers, 32 MiB in all, ``BUFFER_CAP``, hold
about 800 trajectories each, so they are refilled about six times during the measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, re, sys, time
from odernn.data.filerows import FileRows
from odernn.data.store import read_trajectories
from odernn.learn.config import TrainConfig
from odernn.learn.training import train

path, val, family, streamed, batches = sys.argv[1:6]
# the LSTM with the model choices of the figures quoted (before a linear system's own:
# benchmarks/previous_defaults.py, BEFORE_LINEAR_MAP)
options = ({"model": "lstm", "hidden": 32, "batch_size": 256, "window": 50, "epochs": 1,
            "horizon": 0, "inputs": ["x", "v", "F", "F_next"], "products": 1,
            "start_as_skip": False} if family == "lstm" else {"model": "esn", "units": 100,
                                                               "ridge": 1e-6})
config = TrainConfig.from_dict({**options, "device": "cpu", "seed": 0})
seen = {}

class Enough(Exception):
    pass

def progress(event):
    if event.stage == "reservoir" and event.done >= int(batches):
        seen["rows_per_s"] = event.done / (time.perf_counter() - seen["first"])
        raise Enough
    if event.stage == "reservoir":
        seen.setdefault("first", time.perf_counter())
    if event.stage == "epoch":
        seen.setdefault("first", time.perf_counter())
        if event.values["batch"] == int(batches):
            seen["windows_per_s"] = event.values["steps_per_s"] / config.window
            raise Enough

start = time.perf_counter()
data = FileRows(path) if streamed == "1" else read_trajectories(path)
try:
    result = train(data, config, None, val=read_trajectories(val), progress=progress)
    seen["status"] = result.status
except Enough:
    seen["status"] = "stopped"
seen["seconds"] = time.perf_counter() - start
seen["before_training_s"] = seen.get("first", time.perf_counter()) - start
status = open("/proc/self/status").read()
seen["peak_mib"] = int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024
print(json.dumps(seen))
"""


def measure(path: Path, val: Path, family: str, streamed: bool, batches: int) -> dict:
    """One training in a fresh process: its figures (peak MiB, windows/s, seconds)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(val), family,
                          "1" if streamed else "0", str(batches)],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def simulate(n: int, path: Path, seed: int = 1) -> Path:
    from odernn.data.simulate import simulate as run
    from odernn.data.spec import load_spec

    spec = load_spec("train").with_overrides(n=n, n_steps=1000, integrator="exact", seed=seed)
    return run(spec, path, progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--huge", action="store_true", help="also 10^6 trajectories (24 GB)")
    parser.add_argument("--sizes", type=int, nargs="+", help="these sizes only (no throughput "
                        "comparison unless 10000 is among them)")
    parser.add_argument("--no-esn", action="store_true", help="the LSTM only")
    parser.add_argument("--batches", type=int, default=400, help="LSTM batches measured")
    parser.add_argument("--esn-rows", type=int, default=10_000, help="ESN rows measured")
    parser.add_argument("--dir", default="/tmp", help="where the temporary files go")
    args = parser.parse_args()
    sizes = (10_000, 100_000, 1_000_000) if args.huge else (10_000, 100_000)
    sizes = tuple(args.sizes) if args.sizes else sizes
    memory = stream = None
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        val = simulate(256, folder / "val.h5", seed=2)
        floor = measure(val, val, "lstm", False, args.batches)  # the same, on 256 trajectories
        rows = []
        for n in sizes:
            path = simulate(n, folder / f"train-{n}.h5")
            size = path.stat().st_size / 2**20
            lstm = measure(path, val, "lstm", True, args.batches)
            esn = ({"peak_mib": float("nan"), "before_training_s": float("nan")} if args.no_esn
                   else measure(path, val, "esn", True, args.esn_rows))
            rows.append((n, size, lstm, esn))
            print(f"N = {n:>7} ({size:7.0f} MiB file): LSTM streamed peak {lstm['peak_mib']:6.0f} "
                  f"MiB ({lstm['before_training_s']:.0f} s before training), ESN streamed peak "
                  f"{esn['peak_mib']:6.0f} MiB ({esn['before_training_s']:.0f} s before its pass)",
                  flush=True)
            if n == 10_000:
                memory = measure(path, val, "lstm", False, args.batches)
                stream = lstm
            path.unlink()
    print("\npeak resident memory (fresh process, VmHWM), T = 1000, streamed:")
    print(f"{'N':>9} {'file MiB':>9} {'LSTM MiB':>9} {'ESN MiB':>8} {'LSTM / smallest':>16}")
    for n, size, lstm, esn in rows:
        print(f"{n:>9} {size:>9.0f} {lstm['peak_mib']:>9.0f} {esn['peak_mib']:>8.0f} "
              f"{lstm['peak_mib'] / rows[0][2]['peak_mib']:>15.2f}x")
    print(f"(the floor: the same LSTM trained in memory on the 256 validation trajectories "
          f"peaks at {floor['peak_mib']:.0f} MiB: Python, torch, h5py, the model, one batch)")
    if memory is None:
        return
    print(f"\nLSTM throughput on N = 10000 (fits in memory), first {args.batches} batches:")
    for name, run in (("in memory", memory), ("streamed", stream)):
        print(f"  {name + ':':<10} {run['windows_per_s']:8.0f} windows/s, peak "
              f"{run['peak_mib']:.0f} MiB, {run['before_training_s']:.0f} s before training")
    print(f"  streamed / in memory: {stream['windows_per_s'] / memory['windows_per_s']:.2f}")


if __name__ == "__main__":
    main()
