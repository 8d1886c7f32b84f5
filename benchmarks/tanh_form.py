"""Which form of tanh the echo state network's reservoir keeps: the demo's reservoirs fitted
and scored with ``2 sigmoid(2 a) - 1`` (odernn's, on every device) and with torch's tanh.

    python benchmarks/tanh_form.py              # 6 seeds, about 2 minutes
    python benchmarks/tanh_form.py --seeds 3

Each form runs ``odernn demo --models esn --seeds K`` (the built-in data, one thread) in a
temporary directory, the torch-tanh run with the reservoir's tanh replaced; printed per form:
the NRMSE of x of every seed's reservoir on the 64 test trajectories, sorted, their median,
and the seeds' joint loop. The gradient families' rollouts take torch's tanh where it is the
faster (``odernn/learn/models/inference.py``); the reservoir does not, because of this table
(``docs/performance.md``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from odernn.cli.app import main as odernn  # noqa: E402
from odernn.learn.models import esn  # noqa: E402


def scores(folder: Path, seeds: int, torch_tanh: bool) -> tuple[list[float], float]:
    """Every seed's NRMSE of x and the joint loop's, from the demo's report."""
    form = esn.sigmoid_form_
    if torch_tanh:
        esn.sigmoid_form_ = lambda a, doubled=False: a.tanh_()  # the reservoir's only tanh
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the demo's own table
            code = odernn(["demo", "--models", "esn", "--seeds", str(seeds), "-o",
                           str(folder), "-q"])
    finally:
        esn.sigmoid_form_ = form
    if code != 0:
        raise SystemExit(code)
    method = json.loads((folder / "report" / "metrics.json").read_text())["methods"]["esn"]
    members = sorted(m["nrmse_x"] for m in method["seeds"]["members"].values())
    return members, method["metrics"]["nrmse_x"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=6)
    args = parser.parse_args()
    if args.seeds < 2:
        parser.error("--seeds must be at least 2 (a seed group)")
    print(f"{'reservoir tanh':<18}{'median seed':>12}{'joint loop':>12}  seeds (sorted)")
    with tempfile.TemporaryDirectory() as tmp:
        for name, torch_tanh in (("2 sigmoid(2a) - 1", False), ("torch's tanh", True)):
            members, joint = scores(Path(tmp) / str(torch_tanh), args.seeds, torch_tanh)
            print(f"{name:<18}{statistics.median(members):>12.3e}{joint:>12.3e}  "
                  + " ".join(f"{m:.2e}" for m in members), flush=True)


if __name__ == "__main__":
    main()
