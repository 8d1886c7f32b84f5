"""From a spec to trajectories: parameter sampling, integration in blocks, streaming to HDF5.

Reproducibility rules (docs/design.md, "Rules every part follows"):

- trajectory i draws its parameters from its own stream,
  ``SeedSequence(seed).spawn(N)[i]`` (built directly as
  ``SeedSequence(seed, spawn_key=(i,))``; a whole block's streams are computed
  together by :class:`~odernn.data.random_streams.Streams`, the same numbers), so
  trajectory i's parameters are the same whatever N, block size or sharding;
- the fixed-step and exact integrators compute every trajectory on its own
  (element-wise array operations), so their results do not depend on the
  batch: a shard may be any contiguous run of rows (up to one per trajectory);
- SciPy's adaptive steps depend on the whole block it solves, so with SciPy
  the blocks are fixed by the spec and indexed globally (:func:`block_size`)
  and a shard is a contiguous run of whole blocks.

Either way shards give the single process's numbers bit for bit
(``tests/test_shards.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from odernn import budget, jsonio
from odernn.checks import is_whole, path_of
from odernn.data.chunks import chunk_shape
from odernn.data.exact import check_resonance, resonance_possible
from odernn.data.forcing import GridForcing, forcing_from_params
from odernn.data.integrators import INTEGRATORS, integrate
from odernn.data.random_streams import Streams
from odernn.data.spec import SERIES, Spec, load_spec
from odernn.data.systems import SYSTEMS, Oscillator
from odernn.data.trajectories import Trajectories
from odernn.errors import SpecError
from odernn.interrupt import interrupt_guard, raising_signals
from odernn.progress import Event, Progress, reporter

if TYPE_CHECKING:
    from odernn.data.writer import TrajectoryWriter

BLOCK_BYTES = 64 << 20
"""Memory budget of one integration block (x, v and F in float64)."""
WRITE_PIECE_BYTES = BLOCK_BYTES
"""What the writing thread stores between two looks at a signal's request (:func:`_write`):
a whole block, unless one trajectory alone is more."""
MAX_BLOCK = 4096
SCIPY_MIN_BLOCK = 64
"""SciPy: the smallest block (below it, solve_ivp's per-step overhead dominates)."""
SCIPY_BLOCKS = 8
"""SciPy: blocks per dataset aimed for, so that it can be split into that many shards."""
HARMONIC_ROW_BYTES = 160 * 8
"""Memory per trajectory and forcing harmonic of the closed-form solution's tables: many
harmonics (``forcing.K``) make smaller blocks (none of the built-in specs has enough)."""


def batch_independent(spec: Spec) -> bool:
    """Whether a trajectory's numbers do not depend on the others in its block (not SciPy's)."""
    return spec.system == SERIES or INTEGRATORS[spec.integrator["name"]].batch_independent


def block_size(spec: Spec) -> int:
    """Trajectories per integration block, fixed by the spec.

    At most :data:`BLOCK_BYTES` of trajectories, an odd number of them. With SciPy,
    whose adaptive step depends on the whole block, ``ceil(n / SCIPY_BLOCKS)`` but at least
    :data:`SCIPY_MIN_BLOCK`: a few blocks to shard, each large enough to
    solve efficiently (the built-in ``train``, 256 trajectories, makes 4).
    """
    memory = max(1, min(MAX_BLOCK, BLOCK_BYTES // (3 * 8 * spec.n_steps),
                        BLOCK_BYTES // (HARMONIC_ROW_BYTES * max(spec.K, 1))))
    if batch_independent(spec):
        # odd: the file wants each block transposed, and a row stride with a large power of
        # two in it maps a column onto a few cache sets (4096 rows: six times slower)
        return memory - 1 if memory > 1 and memory % 2 == 0 else memory
    return min(memory, max(SCIPY_MIN_BLOCK, -(-spec.n // SCIPY_BLOCKS)))


def check_memory(spec: Spec) -> None:
    """Refuse a spec whose integration block does not fit the memory budget
    (:mod:`odernn.budget`), before anything is allocated: a block holds at least one whole
    trajectory (``n_steps`` points) with its ``K`` forcing harmonics."""
    rows = min(spec.n, block_size(spec))
    name = spec.integrator["name"] if spec.system != SERIES else "exact"
    need = budget.simulation_bytes(rows, spec.n_steps, spec.K, name)
    steps_part = budget.simulation_bytes(rows, spec.n_steps, 0, name)
    forcing = f", forcing K = {spec.K}" if spec.K > 1 else ""
    hint = ("reduce forcing.K" if need - steps_part > steps_part else
            "reduce n_steps (a block holds at least one whole trajectory)")
    budget.check(f"{spec.source}: n = {spec.n}, n_steps = {spec.n_steps}{forcing}", need,
                 f"that is for one integration block of {rows} trajector"
                 f"{'y' if rows == 1 else 'ies'}; {hint}")


def check_parameters(spec: Spec, start: int, stop: int) -> None:
    """Refuse before anything is simulated what the closed form would refuse in some later
    block: a trajectory of rows ``[start, stop)`` driven near the undamped resonance
    (:func:`~odernn.data.exact.check_resonance`). Its parameters are drawn twice, only
    where the spec's ranges reach that near (:func:`~odernn.data.exact.resonance_possible`)."""
    if spec.system == SERIES or not INTEGRATORS[spec.integrator["name"]].closed_form \
            or spec.forcing == "none":
        return
    eta, omega = spec.parameters["eta"], spec.forcing_parameters["omega"]
    if not resonance_possible(eta.low, eta.high, omega.low, omega.high):
        return
    for lo, hi in blocks(spec, start, stop):
        params = sample_parameters(spec, lo, hi)
        harmonic = forcing_from_params(spec.forcing, params)
        check_resonance(params["eta"], harmonic.amplitude.T, harmonic.omega.T, first=lo)


def time_grid(spec: Spec) -> np.ndarray:
    """``t_i = i dt`` for ``i = 0 .. n_steps - 1``."""
    return np.arange(spec.n_steps, dtype=np.float64) * spec.dt


def param_shapes(spec: Spec) -> dict[str, tuple[int, ...]]:
    """Stored parameter names and their trailing shapes (``()`` or ``(K,)``)."""
    if spec.system == SERIES:
        return {}
    shapes: dict[str, tuple[int, ...]] = {name: () for name in spec.parameters}
    if spec.forcing == "cosine":
        shapes.update(F0=(), omega=(), phase=())
    elif spec.forcing == "random":
        shapes.update(amplitude=(spec.K,), omega=(spec.K,), phase=(spec.K,))
    return shapes


def sample_parameters(spec: Spec, start: int, stop: int) -> dict[str, np.ndarray]:
    """Parameters of trajectories ``start .. stop-1``, each from its own stream.

    Every parameter always consumes its draws (a fixed value too), so changing
    one range never changes the others' values.
    """
    shapes = param_shapes(spec)
    out: dict[str, np.ndarray] = {}
    fp = spec.forcing_parameters
    names = list(spec.parameters)  # the system's parameters, then x0, v0
    streams = Streams(spec.seed, np.arange(start, stop))
    for name, u in zip(names, streams.random(len(names)).T, strict=True):
        out[name] = np.asarray(spec.parameters[name].draw(u), dtype=np.float64)
    if spec.forcing == "cosine":
        for name, u in zip(("F0", "omega", "phase"), streams.random(3).T, strict=True):
            out[name] = np.asarray(fp[name].draw(u), dtype=np.float64)
    elif spec.forcing == "random":
        out["omega"] = np.asarray(fp["omega"].draw(streams.random(spec.K)), dtype=np.float64)
        out["phase"] = np.asarray(fp["phase"].draw(streams.random(spec.K)), dtype=np.float64)
        out["amplitude"] = np.empty((stop - start, spec.K))
        for row, rng in enumerate(streams.generators()):  # exponentials: numpy's own draws
            weights = rng.exponential(size=spec.K)  # a uniform split of the total (Dirichlet(1))
            total = fp["amplitude_sum"].draw(rng.random())
            out["amplitude"][row] = total * weights / weights.sum()
    assert set(out) == set(shapes)
    return out


def simulate_block(
    spec: Spec, start: int, stop: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Arrays ``(stop-start, T)`` and parameters of one block of trajectories."""
    t = time_grid(spec)
    if spec.system == SERIES:
        x = np.empty((stop - start, t.size))
        for row, rng in enumerate(Streams(spec.seed, np.arange(start, stop)).generators()):
            noise = rng.random(t.size)
            x[row] = np.sin(spec.series["frequency"] * t) + spec.series["noise"] * noise
        return {"x": x}, {}
    params = sample_parameters(spec, start, stop)
    harmonic = forcing_from_params(spec.forcing, params)
    F = harmonic(t)  # once: stored, and the integrator reads it
    system = Oscillator.of(spec.system, params, GridForcing(harmonic, t, F))
    options = {k: v for k, v in spec.integrator.items() if k != "name"}
    x, v = integrate(spec.integrator["name"], system, params["x0"], params["v0"], t, **options)
    return {"x": x, "v": v, "F": F}, params


def shard_rows(spec: Spec, shard: tuple[int, int] | None) -> tuple[int, int]:
    """Rows ``[start, stop)`` of shard ``k`` of ``n`` (1-based, contiguous).

    Fixed-step and exact integrators: an even split of the rows, any ``n`` up
    to the number of trajectories. SciPy: an even split of the global blocks
    (:func:`block_size`), so at most one shard per block.
    """
    if shard is None:
        return 0, spec.n
    if not isinstance(shard, tuple | list) or len(shard) != 2 or not all(map(is_whole, shard)):
        raise SpecError(f"shard must be a pair of whole numbers (k, n), got {shard!r}")
    k, n = shard
    if not 1 <= k <= n:
        raise SpecError(f"--shard {k}/{n}: k must be in 1..{n}")
    if batch_independent(spec):
        if n > spec.n:
            raise SpecError(f"--shard {k}/{n}: {spec.n} trajectories make at most {spec.n} "
                            f"shards (one trajectory each)")
        return (k - 1) * spec.n // n, k * spec.n // n
    b = block_size(spec)
    n_blocks = math.ceil(spec.n / b)
    if n > n_blocks:
        raise SpecError(
            f"--shard {k}/{n}: scipy solves {spec.n} trajectories in {n_blocks} fixed "
            f"block(s) of {b} (its adaptive step depends on the whole block); use at most "
            f"{n_blocks} shards, or --integrator rk4 or exact (up to one shard per trajectory)"
        )
    return min(spec.n, (k - 1) * n_blocks // n * b), min(spec.n, k * n_blocks // n * b)


def blocks(spec: Spec, start: int, stop: int) -> Iterator[tuple[int, int]]:
    """Blocks covering ``[start, stop)``: from ``start`` (block-aligned for SciPy, which
    :func:`shard_rows` guarantees), :func:`block_size` rows each."""
    b = block_size(spec)
    for lo in range(start, stop, b):
        yield lo, min(lo + b, stop)


def dataset_attrs(spec: Spec) -> dict[str, Any]:
    """Provenance stored with every file: enough to reproduce it from the file alone."""
    return {
        "name": spec.name,
        "kind": "oscillator" if spec.system != SERIES else "series",
        "system": spec.system,
        "equation": SYSTEMS[spec.system].equation if spec.system != SERIES
        else "x(t) = sin(frequency t) + noise U[0,1)",
        "forcing": spec.forcing,
        "integrator": spec.integrator["name"],
        "integrator_options": jsonio.dumps(dict(sorted(spec.integrator.items()))),
        "seed": spec.seed,
        "block_size": block_size(spec),
        "dtype": spec.dtype,
        "spec": spec.to_toml(),  # the effective spec, overrides applied: it reproduces the file
        "spec_source": spec.source,
    }


def simulate(
    spec: Spec | str | Path,
    path: Path | str,
    *,
    overwrite: bool = False,
    shard: tuple[int, int] | None = None,
    progress: bool | Progress | None = None,
) -> Path:
    """Simulate ``spec`` (a :class:`Spec`, a built-in name or a spec file's path, as the
    command line takes) into an HDF5 file, streaming one block at a time.

    The file appears only when complete (atomic rename). ``shard=(k, n)``
    writes the k-th of n contiguous slices (:func:`shard_rows`), to be joined
    by ``odernn merge``. ``progress`` (:mod:`odernn.progress`) hears of every block.
    """
    from odernn.data.writer import TrajectoryWriter  # h5py: imported when used

    spec = spec if isinstance(spec, Spec) else load_spec(spec)
    check_memory(spec)
    start, stop = shard_rows(spec, shard)
    check_parameters(spec, start, stop)
    attrs = dataset_attrs(spec)
    if shard is not None:
        attrs.update(
            shard_index=shard[0],
            shard_count=shard[1],
            row_start=start,
            row_stop=stop,
            n_total=spec.n,
        )
    names = ("x", "v", "F") if spec.system != SERIES else ("x",)
    path = path_of(path, "simulate's output")
    report, task, done = reporter(progress), f"simulate {spec.name}", 0
    with interrupt_guard() as interrupted, TrajectoryWriter(
        path,
        t=time_grid(spec),
        n=stop - start,
        datasets=names,
        params=param_shapes(spec),
        attrs=attrs,
        dtype=spec.dtype,
        compression=spec.compression,
        overwrite=overwrite,
    ) as writer, ThreadPoolExecutor(1, thread_name_prefix="odernn-write") as pool:
        # block k is written (cast, transposed to trajectory-major, checked, stored) while
        # block k + 1 is integrated; leaving the pool waits for the write in flight, and then
        # the writer keeps or removes its temporary file
        writing: Future[int] | None = None

        def written() -> None:
            nonlocal done
            if writing is not None:
                done += writing.result()  # a failed write raises here
                report(Event(task, "block", done, stop - start,
                             f"{done} of {stop - start} trajectories"))

        for lo, hi in blocks(spec, start, stop):
            with raising_signals(interrupted):
                arrays, params = simulate_block(spec, lo, hi)
            written()
            if interrupted():
                raise KeyboardInterrupt
            writing = pool.submit(_write, writer, lo - start, arrays, params, interrupted)
        written()
        if interrupted():  # during the last write: the previous output stays, not this one
            raise KeyboardInterrupt
    report(Event(task, "done", done, stop - start, f"wrote {path}"))
    return path


def _write(writer: TrajectoryWriter, row: int, arrays: dict[str, np.ndarray],
           params: dict[str, np.ndarray], interrupted: Callable[[], bool]) -> int:
    """Write one block, in one call where it holds at most :data:`WRITE_PIECE_BYTES`, else in
    pieces of about that size of whole chunks (rows, or for a trajectory longer than a chunk,
    time points); ``interrupted`` (the command's :func:`~odernn.interrupt.interrupt_guard`)
    asked before each: one long trajectory was hundreds of MB written in one call, which a
    signal waited for. Pieces cut out of a block that fits slowed the writing thread, the
    simulation's bottleneck at large N (docs/performance.md). Returns the block's number of
    rows."""
    B, T = arrays["x"].shape
    size = writer.dtype.itemsize
    rows, cols = B, T
    if B * T * len(arrays) * size > WRITE_PIECE_BYTES:
        chunk, width = chunk_shape(writer.n, (T,), size)  # the file's chunks
        cols = max(1, WRITE_PIECE_BYTES // (len(arrays) * size * chunk * width)) * width
        rows = max(1, WRITE_PIECE_BYTES // (len(arrays) * size * T * chunk)) * chunk
    for lo in range(0, B, rows):
        part = {k: p[lo:lo + rows] for k, p in params.items()}
        for col in range(0, T, cols):
            if interrupted():  # the writer then removes its file
                raise KeyboardInterrupt
            writer.write(row + lo, {k: a[lo:lo + rows, col:col + cols] for k, a in
                                    arrays.items()}, part, col=col)
    return B


def simulate_trajectories(spec: Spec | str | Path) -> Trajectories:
    """Simulate ``spec`` (as :func:`simulate` takes it) in memory (same blocks, same numbers
    as :func:`simulate`)."""
    spec = spec if isinstance(spec, Spec) else load_spec(spec)
    check_memory(spec)
    whole = 2 * spec.n * spec.n_steps * (3 * budget.FLOAT64 + np.dtype(spec.dtype).itemsize)
    budget.check(f"{spec.source}: n = {spec.n}, n_steps = {spec.n_steps}", whole,
                 "that is for all trajectories in memory at once; reduce n or n_steps")
    check_parameters(spec, 0, spec.n)
    parts = [simulate_block(spec, lo, hi) for lo, hi in blocks(spec, 0, spec.n)]
    arrays = {k: np.concatenate([a[k] for a, _ in parts]) for k in parts[0][0]}
    params = {k: np.concatenate([p[k] for _, p in parts]) for k in parts[0][1]}
    dtype = np.dtype(spec.dtype)
    arrays = {k: a.astype(dtype, copy=False) for k, a in arrays.items()}
    return Trajectories(t=time_grid(spec), params=params, attrs=dataset_attrs(spec), **arrays)
