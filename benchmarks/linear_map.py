"""A linear system's defaults for the gradient families, measured: on the linear oscillator
against the previous defaults and against each of their three choices undone, and on Duffing,
where they are not defaults, forced on.

    python benchmarks/linear_map.py                              # 4 families, 3 seeds (long)
    python benchmarks/linear_map.py --families gru --seeds 0 --configs default previous

For a linear system (``odernn.learn.models.layout.linear_map``) a state-mode surrogate reads
the forcing sample before (``F_prev``), its skip takes the damping's monomials up to degree 2
times each other input (``products=2``), and its readout ``V`` starts at zero, so that the
model starts as the skip's least-squares fit (``odernn/learn/models/readout.py``). Each
family is trained with its defaults otherwise, one run per seed (``odernn.fit``), and scored
by the closed-loop NRMSE of x over the test sets (``test`` and ``test-ood``: 64 trajectories
of 1000 steps each; ``duffing-test``), ``inf`` when a trajectory diverged. Configurations:

- ``default``: the defaults (on Duffing, the nonlinear defaults: no F_prev, degree 1, V drawn);
- ``previous``: the linear oscillator with the nonlinear defaults, what every system had
  before (``previous_defaults.BEFORE_LINEAR_MAP``);
- ``no-F_prev``, ``degree-1``, ``V-drawn``: the linear defaults with one choice undone;
- ``linear-choices``: on Duffing, the linear system's three choices forced on;
- for the echo state network (``esn``, no skip), on the linear oscillator: ``default`` and
  ``with-F_prev``.

Printed: per system, family and configuration the median over the seeds (best, worst) and its
ratio to the ``previous`` (linear oscillator) or ``default`` (Duffing) median. One torch thread.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from previous_defaults import BEFORE_LINEAR_MAP  # noqa: E402

import odernn  # noqa: E402
from odernn.assess.metrics import nrmse, reference_scale  # noqa: E402
from odernn.data.simulate import simulate_trajectories  # noqa: E402
from odernn.data.spec import load_spec  # noqa: E402

FAMILIES = ("rnn", "lstm", "gru", "ffn", "esn")
LINEAR = {  # name -> training options
    "previous": BEFORE_LINEAR_MAP,
    "default": {},
    "no-F_prev": {"inputs": ["x", "v", "F", "F_next"]},
    "degree-1": {"products": 1},
    "V-drawn": {"start_as_skip": False},
}
DUFFING = {
    "default": {},
    "linear-choices": {"inputs": ["x", "v", "F", "F_next", "F_prev"], "products": 2,
                       "start_as_skip": True},
}
RESERVOIR = {  # the echo state network has no skip: F_prev alone
    "default": {},
    "with-F_prev": {"inputs": ["x", "v", "F", "F_next", "F_prev"]},
}
SYSTEMS = {"linear": ("train", ("test", "test-ood"), LINEAR, "previous"),
           "duffing": ("duffing-train", ("duffing-test",), DUFFING, "default")}


def score(family: str, train: Any, tests: list[Any], options: dict[str, Any],
          seed: int) -> list[float]:
    """Closed-loop NRMSE of x over each test set of one training with ``options``, ``seed``."""
    model, _ = odernn.fit(train, model=family, seed=seed, progress=False, **options)
    out = []
    for test in tests:
        run = model.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params)
        x = np.where(np.isfinite(run.x), run.x, np.inf)
        out.append(float(nrmse(x, test.x, scale=reference_scale(test.x))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--configs", nargs="+", default=None,
                        help="configurations to run (default: every one of the system)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread; seeds {args.seeds}")
    print("| system | family | configuration | test set | NRMSE x, median (best, worst) | "
          "/ baseline |")
    print("|---|---|---|---|---:|---:|")
    for system in args.systems:
        train_spec, test_specs, configs, base = SYSTEMS[system]
        train = simulate_trajectories(load_spec(train_spec))
        tests = [simulate_trajectories(load_spec(name)) for name in test_specs]
        for family in args.families:
            table, first = (RESERVOIR, "default") if family == "esn" else (configs, base)
            if family == "esn" and system != "linear":
                continue
            names = [c for c in table if args.configs is None or c in args.configs]
            start = time.perf_counter()
            medians: dict[tuple[str, str], float] = {}
            for name in names:
                runs = np.array([score(family, train, tests, table[name], s)
                                 for s in args.seeds])  # (seeds, test sets)
                for k, test_name in enumerate(test_specs):
                    values = runs[:, k]
                    medians[name, test_name] = median = float(np.median(values))
                    baseline = medians.get((first, test_name), float("nan"))
                    print(f"| {system} | {family} | {name} | {test_name} | {median:.3g} "
                          f"({values.min():.3g}, {values.max():.3g}) | "
                          f"{median / baseline:.3g} |", flush=True)
            print(f"<!-- {system} {family}: {time.perf_counter() - start:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
