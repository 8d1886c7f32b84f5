"""What rebuilding an echo state network from its checkpoint costs, with and without drawing a
random reservoir first (``odernn/learn/models/surrogate.py``, ``to_be_loaded``).

For each ``--units``, builds a reservoir (on a few trajectories of the ``train`` spec) and
saves it under a temporary directory, then times, median of ``--repeat``:

* ``load_surrogate``, which builds the model without its random draws and reads the stored
  weights (what every command that reads a checkpoint does);
* the straightforward alternative: the model built as for training (its reservoir drawn and
  scaled to its spectral radius) and the stored weights loaded over it.

Run with nothing else on the machine: ``OMP_NUM_THREADS=1 python benchmarks/load_checkpoint.py``.
"""

from __future__ import annotations

import argparse
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from import_csv import median_time  # benchmarks/: the same timing

from odernn.data.simulate import simulate
from odernn.data.spec import load_spec
from odernn.data.store import read_trajectories
from odernn.learn.checkpoint import read_checkpoint
from odernn.learn.models import build, load_surrogate, save_surrogate
from odernn.learn.models.layout import Layout
from odernn.learn.windows import compute_stats


def drawn_then_loaded(record: dict[str, Any], layout: Layout, stats: Any) -> None:
    """The model built as for training, then the stored weights loaded over its draw."""
    model = build("esn", layout, stats, **record["args"]["hparams"])
    model.load_state_dict(record["state_dict"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_path = Path(tmp) / "train.h5"
        simulate(load_spec("train").with_overrides(n=4, n_steps=200), data_path)
        data = read_trajectories(data_path)
        layout = Layout(dt=data.dt)
        stats = compute_stats(data, layout)
        print(f"{'units':>6} {'load (s)':>9} {'draw, then load (s)':>20} {'ratio':>7}")
        for units in args.units:
            path = Path(tmp) / f"esn-{units}.pt"
            save_surrogate(build("esn", layout, stats, units=units), path)
            loaded = median_time(partial(load_surrogate, path), args.repeat)
            drawn = median_time(partial(drawn_then_loaded, read_checkpoint(path), layout, stats),
                                args.repeat)
            print(f"{units:>6} {loaded:>9.4f} {drawn:>20.3f} {drawn / loaded:>7.0f}")


if __name__ == "__main__":
    main()
