"""How close the echo state network's reservoir comes to the spectral radius it is asked for.

``sparse_reservoir`` scales ``W`` by ARPACK's estimate of its largest eigenvalue modulus
(``largest_modulus``: six eigenvalues of largest modulus, 40 Lanczos vectors). The
straightforward estimate, and the one odernn used before, asks ARPACK for one eigenvalue with
its default 20 Lanczos vectors. A random sparse matrix has many eigenvalues near the edge of
its spectrum, and that estimate can settle on one that is not the largest: the reservoir's
true radius is then above the option. For each ``--units``, the reservoirs of ``--seeds``
seeds (each drawn from the ESN's own stream for that seed, at the default degree and radius,
with the ESN's own start vector) are scaled by each estimate, and their true radius is taken
from a dense eigenvalue solve. The times are those of each estimate alone.

``python benchmarks/reservoir_radius.py`` (about 30 s at the defaults).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse.linalg

from odernn.learn.models.esn import ESN, largest_modulus, random_connections


def one_eigenvalue(w: scipy.sparse.csr_matrix, v0: np.ndarray) -> float:
    """The previous estimate: ARPACK asked for one eigenvalue, its default 20 vectors."""
    return float(np.abs(scipy.sparse.linalg.eigs(w, k=1, which="LM", v0=v0,
                                                 return_eigenvectors=False)).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, nargs="+", default=[100, 400, 1000, 2000])
    parser.add_argument("--seeds", type=int, default=8)
    args = parser.parse_args()
    degree = ESN.defaults["degree"]
    estimates = {"k=1 (before)": one_eigenvalue, "k=6, ncv=40": largest_modulus}
    print(f"degree {degree}; true radius / requested over {args.seeds} seeds (the ESN's own "
          f"stream of each); off: how many are more than 1e-9 away; s: the estimate's time")
    print(f"{'units':>6}" + "".join(f"  {name + ': max':>18} {'median':>7} {'off':>4} {'s':>6}"
                                    for name in estimates))
    for units in args.units:
        ratios = {name: [] for name in estimates}
        times = dict.fromkeys(estimates, 0.0)
        for seed in range(args.seeds):
            rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[0])
            w = random_connections(units, degree, rng)
            v0 = rng.standard_normal(units)  # as sparse_reservoir draws it
            true = float(np.abs(np.linalg.eigvals(w.toarray())).max())
            for name, estimate in estimates.items():
                start = time.perf_counter()
                ratios[name].append(true / estimate(w, v0))
                times[name] += time.perf_counter() - start
        cells = []
        for name in estimates:
            r = np.array(ratios[name])
            off = int(np.sum(np.abs(r - 1) > 1e-9))
            cells.append(f"  {r.max():>18.6f} {np.median(r):>7.4f} {off:>4} "
                         f"{times[name] / args.seeds:>6.3f}")
        print(f"{units:>6}" + "".join(cells))


if __name__ == "__main__":
    main()
