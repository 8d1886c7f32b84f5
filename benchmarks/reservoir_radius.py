"""How close the echo state network's reservoir comes to the spectral radius it is asked for.

``sparse_reservoir`` scales ``W`` by ARPACK's estimate of its largest eigenvalue modulus
(``eigs``, ``k=1``). A random sparse matrix has many eigenvalues near the edge of its
spectrum, and with its default 20 Lanczos vectors ARPACK can settle on one that is not the
largest: the reservoir's true radius is then above the option. For each ``--units``, the
reservoirs of ``--seeds`` seeds (each drawn from the ESN's own stream for that seed, at the
default degree and radius) are scaled as the ESN scales them, and their true radius is taken
from a dense eigenvalue solve. The same is done with the alternative estimate, ARPACK's six
largest-modulus eigenvalues with 40 Lanczos vectors, for comparison. The times: the
whole ``sparse_reservoir`` (draw and estimate), and the alternative estimate alone.

``python benchmarks/reservoir_radius.py`` (about a minute at the defaults).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse.linalg

from odernn.learn.models.esn import ESN, sparse_reservoir


def true_radius(w: scipy.sparse.csr_matrix) -> float:
    return float(np.abs(np.linalg.eigvals(w.toarray())).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, nargs="+", default=[100, 400, 1000, 2000])
    parser.add_argument("--seeds", type=int, default=8)
    args = parser.parse_args()
    degree, radius = ESN.defaults["degree"], ESN.defaults["spectral_radius"]
    print(f"degree {degree}, requested radius {radius}; true radius / requested over "
          f"{args.seeds} seeds (the ESN's own stream of each)")
    print(f"{'units':>6}  {'as scaled: max':>14} {'median':>7} {'off':>4} {'s':>6}  "
          f"{'k=6, ncv=40: max':>16} {'median':>7} {'off':>4} {'s':>6}")
    for units in args.units:
        rows = {"k1": [], "k6": []}
        times = {"k1": 0.0, "k6": 0.0}
        for seed in range(args.seeds):
            stream = np.random.SeedSequence(seed).spawn(4)[0]  # ESN._draw's reservoir stream
            start = time.perf_counter()
            w = sparse_reservoir(units, degree, radius, np.random.default_rng(stream))
            times["k1"] += time.perf_counter() - start
            rows["k1"].append(true_radius(w) / radius)
            start = time.perf_counter()
            lam = scipy.sparse.linalg.eigs(w, k=min(6, units - 2), ncv=min(40, units),
                                           which="LM", return_eigenvectors=False,
                                           v0=np.random.default_rng(stream).standard_normal(units))
            times["k6"] += time.perf_counter() - start
            rows["k6"].append(true_radius(w * (radius / float(np.abs(lam).max()))) / radius)
        cells = []
        for key in ("k1", "k6"):
            r = np.array(rows[key])
            off = int(np.sum(np.abs(r - 1) > 1e-9))
            cells.append(f"{r.max():>{14 if key == 'k1' else 16}.6f} {np.median(r):>7.4f} "
                         f"{off:>4} {times[key] / args.seeds:>6.3f}")
        print(f"{units:>6}  {cells[0]}  {cells[1]}")


if __name__ == "__main__":
    main()
