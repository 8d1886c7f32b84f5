"""The memory budget: every size a user or a file sets is checked against it before allocation.

A spec's ``n``, ``n_steps`` and ``K``, training's ``batch_size``, ``window``, ``hidden`` and
``units``, a checkpoint's declared hyperparameters, the gradient diagnostics' options: each
is turned into an estimate of the bytes it makes odernn allocate (the functions below), and
:func:`check` refuses an estimate above the budget with one line naming the size, the
estimate and what to change, before anything is allocated. A small input can then never
make odernn ask the kernel for more memory than the machine has.

The budget is the smaller of :data:`DEFAULT_CAP` and :data:`FRACTION` of the memory
available when asked, or the environment variable :data:`ENV` (``ODERNN_MEMORY_BUDGET=16G``;
suffixes K, M, G, T, powers of 1024) when set. It is the command's: the data-parallel
processes of ``odernn train --nproc P`` (or of ``torchrun``) on one machine each have a P-th
of it (:func:`processes`), so that together they stay within it.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

from odernn.errors import SpecError

ENV = "ODERNN_MEMORY_BUDGET"
DEFAULT_CAP = 4 << 30
"""Budget when the environment does not set one: at most 4 GiB ..."""
FRACTION = 0.5
"""... and at most half of the memory available when the command starts."""

FLOAT32, FLOAT64 = 4, 8
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class BudgetError(SpecError):
    """An option or a file asks for more memory than the budget; reported as one line."""


def available_memory() -> int | None:
    """Bytes of memory available now (Linux ``MemAvailable``); None where unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def parse_size(text: str) -> int:
    """``"16G"``, ``"512M"``, ``"1e9"``, ``"4GiB"`` -> bytes; SpecError for anything else."""
    match = re.fullmatch(r"\s*([0-9.eE+]+)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    try:
        value = float(match.group(1)) * _UNITS[match.group(2)] if match else math.nan
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1):  # 0.5 was taken, as 0 bytes
        raise SpecError(f"{ENV}={text!r}: expected a size such as 16G, 512M or 2e9 (bytes)")
    return int(value)


_SHARED_BY = 0
"""Set by :func:`shared_by` (0: not set)."""


def processes() -> int:
    """How many processes share the budget: the data-parallel workers that ``torchrun``
    started on this machine (its ``LOCAL_WORLD_SIZE``), those :func:`shared_by` announces, or
    1."""
    if _SHARED_BY:
        return _SHARED_BY
    text = os.environ.get("LOCAL_WORLD_SIZE", "1")
    if not re.fullmatch(r"[0-9]+", text):
        raise SpecError(f"LOCAL_WORLD_SIZE={text!r}: expected the number of processes torchrun "
                        "started on this machine")
    return max(1, int(text))


@contextmanager
def shared_by(n: int) -> Iterator[None]:
    """Within: sizes are checked against the share of ``n`` processes about to start (the
    parent of ``odernn train --nproc n`` checks what its workers will allocate)."""
    global _SHARED_BY
    before, _SHARED_BY = _SHARED_BY, max(1, n)
    try:
        yield
    finally:
        _SHARED_BY = before


def memory_budget() -> tuple[int, str]:
    """The budget in bytes (this process's share) and where it comes from (for the message)."""
    text = os.environ.get(ENV)
    if text is not None:  # set but empty is a mistake, not the default
        total, source = parse_size(text), f"{ENV}={text}"
    else:
        available = available_memory()
        total, source = ((int(available * FRACTION), "half the available memory")
                         if available is not None and available * FRACTION < DEFAULT_CAP else
                         (DEFAULT_CAP, f"the default; set {ENV} to change it"))
    n = processes()
    return (total, source) if n == 1 else (total // n, f"{source}, shared by {n} processes")


def total_memory() -> int | None:
    """Bytes of physical memory (Linux ``MemTotal``); None where unknown."""
    try:
        with open("/proc/meminfo") as fh:
            return next((int(line.split()[1]) * 1024 for line in fh
                         if line.startswith("MemTotal:")), None)
    except (OSError, ValueError, IndexError):
        return None


def out_of_memory(exc: MemoryError) -> str:
    """One line for an allocation that failed under the budget: what failed, the budget,
    and, where the budget is more than the machine has, that this is why."""
    detail = str(exc).splitlines()[0] if str(exc) else "an allocation failed"
    try:
        budget, source = memory_budget()
    except SpecError:  # a budget that cannot be read: said by the first check already
        return f"out of memory ({detail})"
    total = total_memory()
    beyond = (f", more than this machine's {size(total)}: lower it" if total and budget > total
              else ": lower it, or close what else uses the memory")
    return f"out of memory ({detail}) under a memory budget of {size(budget)} ({source}){beyond}"


def size(n: float) -> str:
    """Bytes as a short human string (``1.6 TiB``, ``512 MiB``)."""
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.3g} {unit}"
    return f"{int(n)} B"


def check(what: str, need: float, hint: str) -> None:
    """Refuse ``need`` bytes (an estimate) for ``what`` if it exceeds the budget.

    ``what`` names the size and where it was set (``"simulate: n_steps = 100000000"``),
    ``hint`` how to proceed (``"reduce n_steps"``); the budget's override is added.
    """
    budget, source = memory_budget()
    if need > budget:
        raise BudgetError(f"{what}: needs ~{size(need)}, more than the memory budget of "
                          f"{size(budget)} ({source}); {hint}, or raise {ENV} (e.g. "
                          f"{ENV}=64G) on a machine that has the memory")


# -- estimates ----------------------------------------------------------------------------

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
"""Recurrent weight blocks of the networks ``odernn gradients`` diagnoses (a model's own
memory estimates are its family's: :mod:`odernn.learn.models`)."""
STATES = {"rnn": 1, "gru": 1, "lstm": 2}
"""Tensors in their recurrent state (the LSTM's ``(h, c)``)."""


def dense_eigvals_bytes(n: int) -> int:
    """The eigenvalues of a dense ``n x n`` float64 matrix: the matrix, the solver's copy
    and work, three ``n x n`` float64s."""
    return 3 * FLOAT64 * n * n


def esn_init_bytes(hparams: dict) -> int:
    """A vanilla RNN's ``init="esn"`` (none otherwise): ``W`` drawn in float64, then its
    eigenvalues (:func:`dense_eigvals_bytes`)."""
    if hparams.get("init", "uniform") != "esn":
        return 0
    return dense_eigvals_bytes(int(hparams.get("hidden", 64)))


def gradients_bytes(family: str, hidden: int, sequences: int, length: int) -> int:
    """Memory of ``odernn gradients`` on one network: the inputs, BPTT's graph over
    ``length`` steps, the batched step Jacobians ``(sequences, S, S)`` (S the state size)
    and the eigenvalues of the ``hidden x hidden`` recurrent matrix, all float64."""
    state = STATES.get(family, 1) * hidden
    gates = GATES.get(family, 1)
    data = sequences * (length + 1) * 12 * FLOAT64
    graph = 2 * sequences * length * (gates + 3) * hidden * FLOAT64
    jacobians = sequences * state * (8 * state + 4 * gates * hidden) * FLOAT64
    weights = (gates * 2 + 6) * hidden * hidden * FLOAT64
    return data + graph + jacobians + weights


EXACT_PER_HARMONIC = 160
"""Float64 values per harmonic and trajectory that the closed-form solution's tables hold on a
uniform grid (its separable evaluation; measured about 115)."""
POINTWISE_PER_HARMONIC = 400
"""The same on a non-uniform grid, evaluated point by point in blocks of 64 (about 330)."""


def exact_bytes(rows: int, K: int, uniform: bool = True) -> int:
    """Memory of the closed-form solution's tables for ``rows`` trajectories with ``K`` forcing
    harmonics, beside its output (``tests/test_budget.py`` checks it against a measured
    peak)."""
    return (EXACT_PER_HARMONIC if uniform else POINTWISE_PER_HARMONIC) * rows * K * FLOAT64


def simulation_bytes(rows: int, n_steps: int, K: int, integrator: str) -> int:
    """Memory of simulating one block of ``rows`` trajectories of ``n_steps`` points with ``K``
    forcing harmonics: the time grids, the integrator's time-major buffers and forcing
    samples, the stored arrays and their conversion, the sampled parameters and the
    per-harmonic tables of the closed-form solution; and the previous block's arrays, written
    while this one is integrated."""
    grids = 4 * n_steps * FLOAT64
    buffers = 15 * rows * n_steps * FLOAT64
    per_harmonic = (EXACT_PER_HARMONIC if integrator == "exact" else 12) * rows + 64
    return grids + buffers + per_harmonic * K * FLOAT64
