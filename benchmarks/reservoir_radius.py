"""How close the echo state network's reservoir comes to the spectral radius it is asked for.

``sparse_reservoir`` scales ``W`` by ARPACK's estimate of its largest eigenvalue modulus
(``largest_modulus``: six eigenvalues of largest modulus, 40 Lanczos vectors). The
straightforward estimate, and the one odernn used before, asks ARPACK for one eigenvalue with
its default 20 Lanczos vectors. A random sparse matrix has many eigenvalues near the edge of
its spectrum, and that estimate can settle on one that is not the largest: the reservoir's
true radius is then above the option. For each ``--units``, the reservoirs of ``--seeds``
seeds (each drawn from the ESN's own stream for that seed, at the default degree and radius,
with the ESN's own start vector) are scaled by each estimate, and their true radius is taken
from a dense eigenvalue solve. The times are those of each estimate alone. ``--degree 1``
(one connection per unit) puts each cycle's eigenvalues on one circle, where ARPACK may not
converge: "failed" counts the reservoirs an estimate raised on (``largest_modulus`` then
retries with 160 vectors and falls back on a dense solve); "now by" counts which step gave
the estimate now. One BLAS thread (numpy's, scipy's), as under the command line.

``python benchmarks/reservoir_radius.py`` (about 30 s at the defaults)
``python benchmarks/reservoir_radius.py --degree 1 --seeds 20``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse.linalg  # noqa: E402

from odernn.learn.models.esn import ESN, largest_modulus, random_connections  # noqa: E402


def one_eigenvalue(w: scipy.sparse.csr_matrix, v0: np.ndarray) -> float:
    """The previous estimate: ARPACK asked for one eigenvalue, its default 20 vectors."""
    return float(np.abs(scipy.sparse.linalg.eigs(w, k=1, which="LM", v0=v0,
                                                 return_eigenvectors=False)).max())


def traced(w: scipy.sparse.csr_matrix, v0: np.ndarray, paths: list[str]) -> float:
    """``largest_modulus``, noting in ``paths`` which step gave it: ARPACK with 40 Lanczos
    vectors (``ncv=40``, fewer on small reservoirs), with 160 (``ncv=160``), or the dense
    solve (``dense``)."""
    eigs, eigvals, steps = scipy.sparse.linalg.eigs, np.linalg.eigvals, []

    def arpack(*args, **kwargs):
        steps.append(f"ncv={160 if kwargs['ncv'] > 40 else 40}")
        return eigs(*args, **kwargs)

    def dense(*args, **kwargs):
        steps.append("dense")
        return eigvals(*args, **kwargs)

    scipy.sparse.linalg.eigs, np.linalg.eigvals = arpack, dense
    try:
        return largest_modulus(w, v0)
    finally:
        scipy.sparse.linalg.eigs, np.linalg.eigvals = eigs, eigvals
        paths.append(steps[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, nargs="+", default=[100, 400, 1000, 2000])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--degree", type=int, default=ESN.defaults["degree"])
    args = parser.parse_args()
    degree = args.degree
    paths: list[str] = []
    estimates = {"k=1 (before)": one_eigenvalue,
                 "now": lambda w, v0: traced(w, v0, paths)}
    print(f"degree {degree}; true radius / requested over {args.seeds} seeds (the ESN's own "
          f"stream of each): the farthest from 1, the median; off: how many are more than 1e-9 "
          f"away; s: the estimate's mean time")
    print(f"{'units':>6}" + "".join(f"  {name + ': farthest':>18} {'median':>7} {'off':>4} "
                                    f"{'failed':>6} {'s':>6}" for name in estimates))
    for units in args.units:
        ratios = {name: [] for name in estimates}
        times = dict.fromkeys(estimates, 0.0)
        failed = dict.fromkeys(estimates, 0)
        for seed in range(args.seeds):
            rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[0])
            w = random_connections(units, degree, rng)
            v0 = rng.standard_normal(units)  # as sparse_reservoir draws it
            true = float(np.abs(np.linalg.eigvals(w.toarray())).max())
            for name, estimate in estimates.items():
                start = time.perf_counter()
                try:
                    ratios[name].append(true / estimate(w, v0))
                except scipy.sparse.linalg.ArpackNoConvergence:
                    failed[name] += 1
                times[name] += time.perf_counter() - start
        cells = []
        for name in estimates:
            r = np.array(ratios[name] or [np.nan])
            off = int(np.sum(np.abs(r - 1) > 1e-9))
            cells.append(f"  {r[np.argmax(np.abs(r - 1))]:>18.6f} {np.median(r):>7.4f} {off:>4} "
                         f"{failed[name]:>6} {times[name] / args.seeds:>6.3f}")
        print(f"{units:>6}" + "".join(cells) + "  now by: " + ", ".join(
            f"{p} {n}" for p, n in sorted(Counter(paths).items())))
        paths.clear()


if __name__ == "__main__":
    main()
