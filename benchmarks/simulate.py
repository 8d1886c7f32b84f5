"""Integrator throughput in trajectory-steps per second (compute only), and the
stacked SciPy call against a Python loop of ``solve_ivp`` per trajectory.

    python benchmarks/simulate.py [--quick] [--forcing cosine|none|random]
                                   [--only throughput|nonlinear|end-to-end|memory]

Trajectories are drawn from the ``train`` ranges (eta in [0.05, 0.5], x0, v0 in
[-1, 1], cosine forcing F0 in [0, 1], omega in [0.5, 2], phase 0; ``random``:
three such sinusoids with random phases), dt = 0.05. Every time is the median
of several calls of the public integrator on the whole batch (the forcing
evaluation included; its own row shows its share), and the floors under them: two new
``(T, N)`` float64 arrays (x and v) written once each, what Euler and RK4 return under a
harmonic forcing, which they read a slice of rows at a time (``forcing.ForcingRows``);
three (the forcing samples too), what the methods given only the samples hold; and the
forcing's separable tables alone, the cosines every method evaluates. NumPy and the
compiled loops (numba, :mod:`odernn.data.kernels`), one thread.
The loop of ``solve_ivp`` is timed on a subsample and scaled to N, and is
checked to give the same answer as the stacked call.

The nonlinear RK4 (``duffing-train``) is timed against the linear one (``train``), the
integration alone of the same number of trajectories in ``simulate``'s blocks, at
N = 10^4 (T = 1000) and N = 10^5 (T = 200) (target: within 2x).

End to end (``odernn.data.simulate.simulate``: parameter sampling from per-trajectory
streams, integration in fixed blocks, the HDF5 write overlapped with the next
block) is timed against the integration alone of the same trajectories in the
same blocks, for the linear ``train`` and the nonlinear ``duffing-train`` specs
at N = 10^4 (T = 1000) and N = 10^6 (T = 200; without SciPy), and against the bare
write of a file of the same size with its fsync (the disk's floor), and the peak
memory of a whole simulation is measured in a fresh process for growing N: it
is bounded by the block, not by N.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TypeVar  # noqa: E402

import numpy as np  # noqa: E402

from odernn.data.forcing import ForcingRows, HarmonicForcing, forcing_from_params  # noqa: E402
from odernn.data.integrators import INTEGRATORS, integrate  # noqa: E402
from odernn.data.simulate import blocks, sample_parameters, simulate, time_grid  # noqa: E402
from odernn.data.spec import Spec, load_spec  # noqa: E402
from odernn.data.systems import Oscillator  # noqa: E402
from odernn.writeback import start_writeback  # noqa: E402

DT = 0.05
T_ = TypeVar("T_")
LOOP_TOLERANCES = ({"rtol": 1e-10, "atol": 1e-12}, {})  # reference measurement, defaults


@dataclass
class Row:
    """One line of the table: a measurement of ``n`` trajectories of ``T`` points."""

    n: int
    T: int
    what: str
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.n * self.T / self.seconds


def train_system(n: int, forcing: str, seed: int = 0) -> tuple[Oscillator, np.ndarray, np.ndarray]:
    """``n`` oscillators and initial states drawn from the ``train`` ranges."""
    rng = np.random.default_rng(seed)
    eta = rng.uniform(0.05, 0.5, n)
    x0, v0 = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    if forcing == "none":
        return Oscillator.linear(eta, HarmonicForcing.none(n)), x0, v0
    k = 1 if forcing == "cosine" else 3
    phase = np.zeros((n, k)) if forcing == "cosine" else rng.uniform(0, 2 * np.pi, (n, k))
    harmonic = HarmonicForcing(rng.uniform(0, 1, (n, k)), rng.uniform(0.5, 2, (n, k)), phase)
    return Oscillator.linear(eta, harmonic), x0, v0


def timed(fn: Callable[[], T_], repeats: int, before: Callable[[], object] | None = None
          ) -> tuple[float, T_]:
    """Median wall time of ``repeats`` calls after one warm-up call, and its result;
    ``before`` runs untimed before each call."""
    result = fn()
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def measure_forcing(system: Oscillator, t: np.ndarray, repeats: int) -> list[Row]:
    """The forcing on the grid alone: part of every integrator's time."""
    seconds, _ = timed(lambda: system.forcing(t), repeats)
    return [Row(system.n, t.size, "forcing F(t) alone", seconds)]


def measure_floor(system: Oscillator, t: np.ndarray, repeats: int) -> list[Row]:
    """New ``(T, n)`` arrays written once each, what an integrator that returns ``x, v``
    costs in memory alone (page faults and writes), with and without the forcing samples
    ``F (T, n)``; and the forcing's separable tables (a cosine and a sine per block start
    and offset), the transcendentals under every fixed-step method."""
    def write(arrays: int) -> None:
        for _ in range(arrays):
            np.empty((t.size, system.n)).fill(1.0)

    rows = [Row(system.n, t.size, f"floor: {what} (T, N) new, written once",
                timed(lambda arrays=arrays: write(arrays), repeats)[0])
            for arrays, what in ((2, "x, v"), (3, "F, x, v"))]
    tables = timed(lambda: ForcingRows.of(system.forcing, t), repeats)[0]
    return rows + [Row(system.n, t.size, "forcing's separable tables alone", tables)]


def measure_integrators(
    system: Oscillator, x0: np.ndarray, v0: np.ndarray, t: np.ndarray, repeats: int
) -> list[Row]:
    """Every integrator but ``scipy`` (see :func:`measure_scipy_loop`) on the whole batch."""
    return [
        Row(system.n, t.size, name,
            timed(lambda name=name: integrate(name, system, x0, v0, t), repeats)[0])
        for name in INTEGRATORS if name != "scipy"
    ]  # fmt: skip


def measure_scipy_loop(
    system: Oscillator, x0: np.ndarray, v0: np.ndarray, t: np.ndarray, repeats: int, sample: int
) -> list[Row]:
    """Stacked ``solve_ivp`` (at most 3 repeats: it is slow) against a loop of one call per
    trajectory (timed on the first ``sample`` trajectories, scaled to N), for each of
    :data:`LOOP_TOLERANCES`; both must give the same answer within the tolerances."""
    rows = []
    picks = range(min(sample, system.n))
    for options in LOOP_TOLERANCES:
        label = ", ".join(f"{k}={v:g}" for k, v in options.items()) or "default tolerances"
        stacked, (x, v) = timed(lambda o=options: integrate("scipy", system, x0, v0, t, **o),
                                min(repeats, 3))  # fmt: skip

        def loop(options: dict = options) -> list[tuple[np.ndarray, np.ndarray]]:
            return [integrate("scipy", system.take([i]), x0[[i]], v0[[i]], t, **options)
                    for i in picks]  # fmt: skip

        seconds, looped = timed(loop, max(1, repeats // 2))
        per_trajectory = seconds / len(picks)
        difference = max(float(np.abs(np.vstack([u[k] for u in looped]) - w[list(picks)]).max())
                         for k, w in enumerate((x, v)))  # fmt: skip
        rtol = options.get("rtol", 1e-12)
        agree = "agree" if difference <= 1e3 * rtol else "DISAGREE"
        rows.append(Row(system.n, t.size, f"scipy stacked ({label})", stacked,
                        f"{per_trajectory * system.n / stacked:.0f}x faster than a loop of "
                        f"solve_ivp ({len(picks)} timed); max |stacked - loop| = "
                        f"{difference:.1e} ({agree})"))  # fmt: skip
    return rows


def measure_end_to_end(spec_name: str, n: int, T: int, integrators: tuple[str, ...],
                       repeats: int) -> list[Row]:
    """``simulate`` of the built-in spec ``spec_name`` with N trajectories of T points into an
    HDF5 file (streams, forcing, integration, the write), per integrator, against its
    integration alone: the same trajectories in the same blocks, each block's ``integrate``
    with the forcing computed inside (target: end to end within 2x)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.h5"
        for name in integrators:
            spec = load_spec(spec_name).with_overrides(n=n, n_steps=T, integrator=name)
            few = min(repeats, 3 if name != "scipy" else 1)
            alone, _ = timed(block_integration(spec), few)
            # a new file each time, as the bare write makes one: replacing the last call's
            # file would add the freeing of its blocks (55 ms for 230 MiB on one host)
            seconds, _ = timed(lambda s=spec: simulate(s, path, overwrite=True), few,
                               before=lambda: path.unlink(missing_ok=True))
            size = path.stat().st_size
            disk = statistics.median(bare_write(Path(tmp), size) for _ in range(few))
            label = f"{spec_name} {name}"
            rows.append(Row(n, T, f"{label}: integration alone", alone))
            rows.append(Row(n, T, f"{label}: bare write of the file", disk,
                            f"{size / 2**20:.0f} MiB and fsync"))
            rows.append(Row(n, T, f"{label}: end to end", seconds,
                            f"{seconds / alone:.2f}x its integration (target 2x), "
                            f"{seconds / max(alone, disk):.2f}x the slower of the two"))
    return rows


def block_integration(spec: Spec) -> Callable[[], None]:
    """The integration alone of ``spec``'s trajectories in ``simulate``'s blocks (each
    block's ``integrate``, the forcing computed inside), their parameters drawn first."""
    params = sample_parameters(spec, 0, spec.n)
    t = time_grid(spec)
    parts = []
    for lo, hi in blocks(spec, 0, spec.n):
        p = {k: a[lo:hi] for k, a in params.items()}
        parts.append((Oscillator.of(spec.system, p, forcing_from_params(spec.forcing, p)),
                      p["x0"], p["v0"]))

    def integration() -> None:
        for system, x0, v0 in parts:
            integrate(spec.integrator["name"], system, x0, v0, t)

    return integration


def measure_nonlinear(n: int, T: int, repeats: int) -> list[Row]:
    """The nonlinear RK4 (``duffing-train``) against the linear one (``train``), the
    integration alone of the same number of trajectories in the same blocks, in turn
    (target: within 2x)."""
    alone = {}
    for name in ("train", "duffing-train"):
        spec = load_spec(name).with_overrides(n=n, n_steps=T, integrator="rk4")
        alone[name], _ = timed(block_integration(spec), repeats)
    ratio = alone["duffing-train"] / alone["train"]
    return [Row(n, T, "train rk4: integration alone", alone["train"]),
            Row(n, T, "duffing-train rk4: integration alone", alone["duffing-train"],
                f"{ratio:.2f}x the linear one's (target 2x)")]


def bare_write(directory: Path, size: int) -> float:
    """Seconds to write ``size`` random bytes to a new file in ``directory`` and fsync it (then
    removed), asking the disk to start after each 64 MiB as ``simulate``'s writer does: the
    floor that the disk sets under any simulation writing a file of that size."""
    chunk = np.random.default_rng(0).integers(0, 256, 64 << 20, dtype=np.uint8)
    path = directory / "bare.bin"
    start = time.perf_counter()
    with open(path, "wb") as fh:
        for lo in range(0, size, chunk.size):
            fh.write(memoryview(chunk)[:min(chunk.size, size - lo)])
            fh.flush()
            start_writeback(path)
        fh.flush()
        os.fsync(fh.fileno())
    seconds = time.perf_counter() - start
    path.unlink()
    return seconds


def peak_memory_mib(n: int, T: int, integrator: str) -> float:
    """Peak resident memory of a fresh process simulating ``n`` trajectories to HDF5."""
    # VmHWM of the new process (ru_maxrss would include the forking parent's pages)
    code = (
        "import re, tempfile, pathlib\n"
        "from odernn.data.simulate import simulate\nfrom odernn.data.spec import load_spec\n"
        f"spec = load_spec('train').with_overrides(n={n}, n_steps={T}, integrator='{integrator}')\n"
        "with tempfile.TemporaryDirectory() as d:\n"
        "    simulate(spec, pathlib.Path(d) / 'm.h5')\n"
        "status = open('/proc/self/status').read()\n"
        "print(int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def print_table(rows: list[Row]) -> None:
    """One table: what was measured, its time and its throughput."""
    print(f"{'N':>6} {'T':>5}  {'measurement':<44} {'seconds':>9} {'traj-steps/s':>13}  note")
    for row in rows:
        print(f"{row.n:>6} {row.T:>5}  {row.what:<44} {row.seconds:>9.4f} "
              f"{row.rate / 1e6:>11.1f} M  {row.note}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--forcing", choices=("cosine", "none", "random"), default="cosine")
    parser.add_argument("--only", choices=("throughput", "nonlinear", "end-to-end", "memory"),
                        help="one of the four tables")
    args = parser.parse_args()
    tables = {args.only} if args.only else {"throughput", "nonlinear", "end-to-end", "memory"}
    sizes, T, repeats, sample = ((200, 1000), 200, 1, 4) if args.quick else \
        ((1000, 10_000), 1000, 5, 20)  # fmt: skip
    t = DT * np.arange(T)
    rows: list[Row] = []
    for n in sizes if "throughput" in tables else ():
        system, x0, v0 = train_system(n, args.forcing)
        rows += measure_forcing(system, t, repeats)
        rows += measure_floor(system, t, repeats)
        rows += measure_integrators(system, x0, v0, t, repeats)
        rows += measure_scipy_loop(system, x0, v0, t, repeats, sample)
    print(f"forcing: {args.forcing}, dt = {DT}, numpy {np.__version__}, one thread")
    if rows:
        print_table(rows)
    if args.forcing == "cosine" and "nonlinear" in tables:
        print("\nthe nonlinear RK4 (Duffing) against the linear one, integration alone:")
        print_table([row for n, T, k in (((1000, 200, 1),) if args.quick else
                                         ((10_000, 1000, 5), (100_000, 200, 3)))
                     for row in measure_nonlinear(n, T, k)])
    if args.forcing == "cosine" and "end-to-end" in tables:  # the train specs' forcing
        print("\nend to end (parameter streams, forcing, integration, HDF5 write) against the "
              "integration alone, the same blocks:")
        ends: list[Row] = []
        for n, T in ((1000, 200),) if args.quick else ((10_000, 1000), (1_000_000, 200)):
            fixed = ("euler", "rk4", "exact")
            ends += measure_end_to_end("train", n, T, fixed + (("scipy",) if n <= 10_000 else ()),
                                       repeats)
            ends += measure_end_to_end("duffing-train", n, T, ("rk4",) + (
                ("scipy",) if n <= 10_000 else ()), repeats)
        print_table(ends)
    if args.forcing == "cosine" and "memory" in tables:
        sizes = (1000, 10_000) if args.quick else (1000, 10_000, 100_000)
        print("\npeak memory of a whole simulate (euler, fresh process, T = 1000):")
        for n in sizes:
            print(f"  N = {n:>7}: {peak_memory_mib(n, 1000, 'euler'):8.1f} MiB "
                  f"(the (N, T) arrays alone would be {3 * 8 * n * 1000 / 2**20:8.1f} MiB)")


if __name__ == "__main__":
    main()
