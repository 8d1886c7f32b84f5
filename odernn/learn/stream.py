"""Training on a file larger than memory: its statistics, fingerprint and windows, streamed.

:func:`for_training` opens a training file in memory when its training fits the memory budget
(:mod:`odernn.budget`), else as a :class:`~odernn.data.filerows.FileRows`. For one of those,
the fingerprint is a pass over the file (the same digest as the trajectories in memory
give), the normalisation statistics a pass over the training rows (merged block by block in
float64), and the gradient recipe's windows come from a :class:`WindowStream`: every epoch
the file's chunk-aligned blocks are taken in a random order, as many as fill a bounded
buffer at a time, and each buffer gives its share of the epoch's windows, drawn within it,
while a thread reads the next. The buffers' size is checked against the budget before they
are allocated. Validation sets are read into memory (budget-checked).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from odernn import budget
from odernn.data.filerows import FileRows
from odernn.data.store import read_trajectories
from odernn.data.trajectories import Trajectories
from odernn.errors import DataError
from odernn.learn.models.layout import Layout, Stats, check_data
from odernn.learn.windows import (
    Batch,
    MemoryWindows,
    SequenceTensors,
    carried_state,
    compute_stats,
    exogenous,
    finite_stats,
    raw_targets,
    scale,
    to_tensors,
)
from odernn.learn.windows import fingerprint as memory_fingerprint

Data = Trajectories | FileRows

BUFFER_CAP = 32 << 20
"""The shuffling buffers hold at most this many bytes of training tensors in all (two halves:
one trains while a thread reads the other; docs/scaling.md has the peak memory of
benchmarks/stream.py with it) ..."""
BUFFER_SHARE = 0.25
"""... and at most this fraction of the memory budget (each data-parallel process has its own
buffer, within its share of the budget: :func:`odernn.budget.processes`)."""
IN_MEMORY_BYTES_PER_POINT = 8 * 32
"""What in-memory training holds per time point beyond two copies of the stored values (the
carried state and exogenous channels in float64 and float32, the statistics' targets, the
skip connection's least-squares problem): an estimate, set from what benchmarks/stream.py
measures for an oscillator file (docs/scaling.md)."""
BLOCK_FILE_ROWS = 32
"""Blocks read at a time span at least this many file rows (rounded up to whole chunks)."""
STATS_BYTES_PER_POINT = 96
"""What the statistics' pass may hold per time point of a block, the read included (its
float64 temporaries: the carried state, the targets, their deviations); twice this with a
prior, whose step has RK4's stages. ``tests/test_stream.py`` checks it bounds the pass."""


def for_training(path: Path | str, stream: bool | None = None) -> Data:
    """The trajectories of ``path`` for :func:`~odernn.learn.training.train`: in memory when
    training them in memory fits the budget (or ``stream`` is False), else streamed from the
    file (or when ``stream`` is True)."""
    rows = FileRows(path)
    if stream is None:
        stream = in_memory_bytes(rows) > budget.memory_budget()[0]
    if stream:
        _warn_of_wide_chunks(rows)
    return rows if stream else read_trajectories(path)


def _warn_of_wide_chunks(rows: FileRows) -> None:
    """Say where streaming will be slow: a compressed chunk across more trajectories than a
    block is decompressed again for each block it serves (docs/scaling.md)."""
    x = rows.file().dataset("x")
    if x.compression is not None and x.chunks is not None and x.chunks[0] > block_rows(rows):
        warnings.warn(f"{rows.path}: its compressed chunks span {x.chunks[0]} trajectories "
                      f"each, more than the {block_rows(rows)} streamed at a time, so each is "
                      "decompressed many times per epoch (slow); rewrite it with a chunk per "
                      f"trajectory, e.g. h5repack -l CHUNK=1x{x.shape[1]} IN OUT", stacklevel=2)


def in_memory_bytes(data: Data, copies: int = 2) -> int:
    """An estimate of what training ``data`` in memory holds: ``copies`` of its stored values
    (parameters included) and :data:`IN_MEMORY_BYTES_PER_POINT` per time point."""
    if isinstance(data, Trajectories):
        row = data.n_steps * sum(a.itemsize for a in (data.x, data.v, data.F) if a is not None)
        row += sum(np.asarray(p).nbytes for p in data.params.values()) // max(data.n, 1)
    else:
        row = data.row_bytes()
    return data.n * (copies * row + data.n_steps * IN_MEMORY_BYTES_PER_POINT)


def check_fold_trainings(data: Data, folds: int) -> None:
    """Refuse a gradient family's ``val_folds`` on data whose fold trainings would not fit the
    memory budget: they train in memory, each fold on a copy of the trajectories held beside
    them (one more copy than a training in memory holds), a file too large included."""
    budget.check(f"val_folds = {folds} with a gradient family: {data.n} trajectories of "
                 f"{data.n_steps} points trained in memory, each fold on a copy",
                 in_memory_bytes(data, copies=3),
                 "use val_fraction or a validation set (a file too large for memory then "
                 "trains streamed)")


def fingerprint(data: Data) -> dict[str, Any]:
    """:func:`odernn.learn.windows.fingerprint`, for a file without reading it into memory
    (the same digest); also records each parameter's range (``FileRows.summary``)."""
    if isinstance(data, Trajectories):
        return memory_fingerprint(data)
    if not data.whole:  # its rows in memory: their digest and their parameters' ranges
        part = data.read("fingerprinting a part of the file")
        data.summary = {k: np.stack([v.min(0), v.max(0)]) for k, v in part.params.items()}
        return memory_fingerprint(part)
    f = data.file()
    h = hashlib.sha256(np.ascontiguousarray(data.t, dtype=np.float64).tobytes())
    for label in ("x", "v", "F"):
        if label in f.names:
            for block in f.blocks(label, np.dtype(np.float64)):
                h.update(block)  # contiguous: hashed in place, no copy
    summary = {}
    for k in sorted(f.params_names):
        h.update(k.encode())
        low, high = np.inf, -np.inf
        for block in f.blocks(f"params/{k}", np.dtype(np.float64)):
            h.update(np.ascontiguousarray(block))
            if block.size:
                low, high = min(low, float(block.min())), max(high, float(block.max()))
        # of shape (2, K) for (N, K), refused as the values are
        summary[k] = np.multiply.outer([low, high], np.ones(f.param_shape(k)[1:]))
    data.summary = summary
    head = data.head
    return {"n": data.n, "n_steps": data.n_steps, "dt": data.dt, "series": data.is_series,
            "system": data.system, "forcing": str(head.attrs.get("forcing", "")),
            "params": sorted(f.params_names), "sha256": h.hexdigest()}


def layout_params(data: Data) -> dict[str, np.ndarray]:
    """What :meth:`TrainConfig.layout <odernn.learn.config.TrainConfig.layout>` needs of the
    parameters: their values, or for a file their ranges (whether one varies, and its value
    when it does not, are the same); after :func:`fingerprint`."""
    if isinstance(data, Trajectories):
        return data.params
    if data.summary is None:
        fingerprint(data)
    return data.summary


def validation(data: Data) -> Trajectories:
    """A validation set in memory (a file's rows read, refused first if over the budget)."""
    return data if isinstance(data, Trajectories) else data.read("validation data")


def block_rows(data: FileRows) -> int:
    """File rows per block: whole chunks, at least :data:`BLOCK_FILE_ROWS` rows."""
    chunk = max(data.chunk_rows, 1)
    return -(-BLOCK_FILE_ROWS // chunk) * chunk


def stats(data: Data, layout: Layout) -> Stats:
    """:func:`~odernn.learn.windows.compute_stats`; for a file, one pass over its rows, each
    block checked by ``check_data``, means and variances merged in float64."""
    if isinstance(data, Trajectories):
        return compute_stats(data, layout)
    rows = block_rows(data)
    per_point = STATS_BYTES_PER_POINT * (2 if layout.prior else 1)
    budget.check(f"the training statistics' pass over {data.path} ({rows} trajectories of "
                 f"{data.n_steps} points at a time)", rows * data.n_steps * per_point,
                 "give shorter trajectories")
    acc: dict[str, tuple[int, float, float]] = {}

    def add(name: str, a: np.ndarray) -> None:  # Chan et al.'s merge of (count, mean, M2)
        a = np.asarray(a, dtype=np.float64)
        n, mean = a.size, float(np.mean(a))
        m2 = float(np.sum(np.square(a - mean)))
        n0, mean0, m20 = acc.get(name, (0, 0.0, 0.0))
        total = n0 + n
        delta = mean - mean0
        acc[name] = (total, mean0 + delta * n / total, m20 + m2 + delta**2 * n0 * n / total)

    for _, _, block in data.blocks(rows):
        check_data(block, layout, where=f"training data {data.path}")
        add("x", block.x)
        if not layout.series:
            add("v", block.v)
            add("F", block.F)
            for p in layout.parameters:
                add(p, block.params[p])
        with np.errstate(over="ignore", invalid="ignore"):  # finite_stats says it
            y = raw_targets(carried_state(block, layout), layout,
                            exogenous(block, layout) if layout.prior else None)
            for k in range(layout.n_outputs):
                add(f"y{k}", y[..., k])
    means, stds = {}, {}
    for name, (n, mean, m2) in acc.items():
        std = float(np.sqrt(m2 / n))
        means[name], stds[name] = mean, scale(mean, std)
    return finite_stats(Stats(means, stds), layout)


def tensor_blocks(data: Data, layout: Layout, device: torch.device, rows: int,
                  share: slice) -> Iterator[tuple[int, SequenceTensors]]:
    """The trajectories at positions ``share`` as device tensors, at most ``rows`` at a time:
    ``(positions done, tensors)``. In memory, slices of one conversion; from a file, read
    block by block (bounded memory)."""
    if isinstance(data, Trajectories):
        whole = to_tensors(data, layout, device)
        for b in range(share.start, share.stop, rows):
            end = min(b + rows, share.stop)
            yield end - share.start, SequenceTensors(whole.z[b:end], whole.e[b:end])
        return
    part = data.take(np.arange(share.start, share.stop))
    for lo, hi, block in part.blocks(block_rows(data)):
        tensors = to_tensors(block, layout, device)
        for b in range(0, hi - lo, rows):
            yield lo + min(b + rows, hi - lo), SequenceTensors(tensors.z[b:b + rows],
                                                               tensors.e[b:b + rows])


def window_source(data: Data, layout: Layout, device: torch.device, n_windows: int,
                  batch_size: int, length: int, rows: int | None = None
                  ) -> MemoryWindows | WindowStream:
    """The epochs' windows: gathers from device tensors of the whole set, or streamed (with
    buffers of ``rows`` trajectories, a resumed run's; None: as the bound allows now)."""
    _check_rows(rows)
    if isinstance(data, Trajectories):
        if rows is not None and rows < data.n:
            warnings.warn(f"this run streamed its file with buffers of {rows} of its {data.n} "
                          "trajectories and resumes in memory (the memory budget grew): the "
                          "windows drawn from here on are not an uninterrupted run's",
                          stacklevel=3)
        return MemoryWindows(to_tensors(data, layout, device), n_windows, batch_size, length,
                             device)
    return WindowStream(data, layout, device, n_windows, batch_size, length, rows)


def _check_rows(rows: Any) -> None:
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 1):
        raise DataError(f"the checkpoint resumed holds buffer_rows = {rows!r}, not a number "
                        "of trajectories (corrupt or forged)")


class Buffers(NamedTuple):
    """The streaming buffers planned for a file (:func:`planned_buffers`)."""

    capacity: int  # trajectories a buffer holds
    n_buffers: int
    kept: bool  # a resumed run's size kept (False: more than the memory budget allows now)
    channels: tuple[int, int]  # the state and exogenous channels of a row, as trained


def resumed_rows(previous: dict[str, Any] | None) -> int | None:
    """The buffers' size a resumed run recorded in ``last.pt`` (None: not resumed, or not
    streamed)."""
    return (previous or {}).get("resume", {}).get("buffer_rows")


def planned_buffers(data: FileRows, layout: Layout, rows: int | None = None) -> Buffers:
    """The streaming buffers of ``data``, with a resumed run's ``rows`` (from ``last.pt``;
    None: not resumed) where the memory budget allows; refused in one line if they exceed
    it. Training's checks before it writes call it too (:func:`odernn.learn.training.check`),
    so that ``odernn train --nproc`` refuses before its workers start."""
    _check_rows(rows)
    probe = to_tensors(data.read_span(0, 1), layout)  # one row, as training reads it
    state_and_exogenous = (probe.z.shape[-1], probe.e.shape[-1])
    channels = sum(state_and_exogenous)
    per_row = data.n_steps * channels * 4
    blocks = block_rows(data)
    biggest = max(hi - lo for lo, hi in data.spans(blocks))
    most = budget.memory_budget()[0]  # read once: "half the available memory" moves
    limit = min(BUFFER_CAP, BUFFER_SHARE * most)
    allowed = data.n if data.n * per_row <= limit else int(limit / 2 // per_row)
    working = blocks * (2 * data.row_bytes() + data.n_steps * 12 * channels)

    def held(rows: int) -> tuple[int, int, int]:  # rows per buffer, buffers, their bytes
        rows = min(max(biggest, int(rows)), data.n)
        n_buffers = 1 if rows >= data.n else 2
        return rows, n_buffers, n_buffers * rows * per_row + working

    kept = rows is None or held(rows)[2] <= most
    capacity, n_buffers, need = held(rows if rows is not None and kept else allowed)
    budget.check(f"training buffer of {n_buffers} x {capacity} trajectories of "
                 f"{data.n_steps} points (streamed from {data.path})", need,
                 "give shorter trajectories")
    return Buffers(capacity, n_buffers, kept, state_and_exogenous)


class WindowStream:
    """An epoch's windows from a file through a bounded buffer (the module's docstring).

    The epoch draws as many windows as in memory, ``n_windows``; the blocks are taken in a
    random order (seeded by the epoch's generator), a buffer of them at a time; a buffer of
    ``m`` of the ``n`` trajectories gives its share of the windows (``n_windows m / n``,
    rounded so the shares add up), each from a trajectory drawn uniformly in the buffer and a
    start drawn uniformly. A buffer that holds every trajectory draws the in-memory windows
    exactly. Otherwise there are two buffers, each half the bound: a thread reads the next
    while the batches of the current one train. Resuming at a batch redraws the epoch and
    reads only the buffers from there on; a resumed run keeps the buffers' size it started
    with (``rows``, from ``last.pt``), where the memory budget allows, so that it draws the
    windows of an uninterrupted run whatever the bound or the budget is now.
    """

    def __init__(self, data: FileRows, layout: Layout, device: torch.device, n_windows: int,
                 batch_size: int, length: int, rows: int | None = None) -> None:
        self.data, self.layout, self.device = data, layout, device
        self.n_windows, self.batch_size, self.length = n_windows, batch_size, length
        self.n_batches = -(-n_windows // batch_size)
        self.spans = data.spans(block_rows(data))
        plan = planned_buffers(data, layout, rows)
        self.capacity, self.n_buffers, self.channels = plan.capacity, plan.n_buffers, plan.channels
        """Trajectories a buffer holds (they decide the draw: a resumed run keeps its own,
        from ``last.pt``, where the memory budget allows), and how many buffers."""
        if not plan.kept:
            warnings.warn(f"this run drew its windows from buffers of {rows} trajectories, "
                          "more than the memory budget now allows: the windows drawn from "
                          "here on are not an uninterrupted run's", stacklevel=3)
        self.buffers: list[tuple[SequenceTensors, torch.Tensor]] = []
        """Each buffer's tensors and the position (in the training rows) of each of its rows."""
        self.filled: dict[int, list[tuple[int, int]]] = {}  # the spans each buffer holds

    def rounds(self, gen: torch.Generator) -> list[list[tuple[int, int]]]:
        """The epoch's buffers, each a list of spans: every span once, in a random order."""
        if self.capacity >= self.data.n:
            return [self.spans]
        order = torch.randperm(len(self.spans), generator=gen).tolist()
        rounds, current, held = [], [], 0
        for i in order:
            lo, hi = self.spans[i]
            if held + hi - lo > self.capacity:
                rounds.append(current)
                current, held = [], 0
            current.append((lo, hi))
            held += hi - lo
        return [*rounds, current]

    def blocks(self) -> Iterator[SequenceTensors]:
        """The training trajectories as tensors, a block at a time (for a least-squares start)."""
        for _, block in tensor_blocks(self.data, self.layout, self.device, self.data.n,
                                      slice(0, self.data.n)):
            yield block

    def _fill(self, spans: list[tuple[int, int]], which: int) -> None:
        """Read ``spans`` into buffer ``which`` (run in the reading thread), unless it holds
        them already (one buffer of the whole set: read once, not every epoch)."""
        if self.filled.get(which) == spans:
            return
        self.filled.pop(which, None)  # a fill cut short holds nothing known
        tensors, positions = self.buffers[which]
        at = 0
        for lo, hi in spans:
            block = to_tensors(self.data.read_span(lo, hi), self.layout)
            tensors.z[at:at + hi - lo] = block.z
            tensors.e[at:at + hi - lo] = block.e
            positions[at:at + hi - lo] = torch.arange(lo, hi)
            at += hi - lo
        self.filled[which] = list(spans)

    def epoch(self, gen: torch.Generator, first: int = 0) -> Iterator[tuple[int, Batch]]:
        """``(b, batch)`` for the epoch's batches from ``first``; draws from ``gen`` the same
        way whatever ``first`` is, and whatever the reading thread's timing."""
        bs, n = self.batch_size, self.data.n
        rounds = self.rounds(gen)
        sizes = [sum(hi - lo for lo, hi in spans) for spans in rounds]
        ends = [self.n_windows * int(c) // n for c in np.cumsum(sizes)]
        begins = [0, *ends[:-1]]
        needed = [r for r in range(len(rounds))
                  if ends[r] > begins[r] and (ends[r] - 1) // bs >= first]
        while len(self.buffers) < min(self.n_buffers, len(needed)):
            shape = (self.capacity, self.data.n_steps)
            self.buffers.append((SequenceTensors(torch.empty(*shape, self.channels[0]),
                                                 torch.empty(*shape, self.channels[1])),
                                 torch.empty(self.capacity, dtype=torch.long)))
        carry: list[tuple[SequenceTensors, torch.Tensor, torch.Tensor]] = []
        with ThreadPoolExecutor(1, thread_name_prefix="odernn-read") as reader:
            pending = {}

            def read(i: int) -> None:  # the i-th round to read, into buffer i % 2
                if i < len(needed):
                    pending[needed[i]] = (i % 2, reader.submit(self._fill, rounds[needed[i]],
                                                               i % 2))

            read(0)
            for r in range(len(rounds)):
                done, end = begins[r], ends[r]
                rows = torch.randint(sizes[r], (end - done,), generator=gen)
                starts = torch.randint(self.data.n_steps - self.length, (end - done,),
                                       generator=gen)
                if r not in pending:
                    continue
                which, future = pending.pop(r)
                future.result()
                read(needed.index(r) + 1)  # the next buffer is read while this one trains
                tensors, positions = self.buffers[which]
                b = done // bs
                while b * bs < end:
                    lo, hi = max(b * bs, done), min((b + 1) * bs, end)
                    if b >= first:
                        w, s = rows[lo - done:hi - done], starts[lo - done:hi - done]
                        carry.append((tensors.windows(w, s, self.length), positions[w], s))
                    if hi == min((b + 1) * bs, self.n_windows) and b >= first:
                        yield b, StreamBatch(carry, self.device)
                        carry = []
                    b += 1


class StreamBatch(Batch):
    """A batch gathered from the buffer (in parts when it spans two buffers), on the CPU;
    ``rows`` and ``starts`` say which windows (positions in the training rows)."""

    def __init__(self, parts: list[tuple[SequenceTensors, torch.Tensor, torch.Tensor]],
                 device: torch.device) -> None:
        w = [p[0] for p in parts]
        whole = w[0] if len(w) == 1 else SequenceTensors(torch.cat([p.z for p in w]),
                                                         torch.cat([p.e for p in w]))
        self.whole, self.device = whole, device
        self.rows = torch.cat([p[1] for p in parts])
        self.starts = torch.cat([p[2] for p in parts])
        self.n = whole.n

    def windows(self, share: slice | None = None) -> SequenceTensors:
        w = self.whole if share is None else SequenceTensors(self.whole.z[share],
                                                             self.whole.e[share])
        return SequenceTensors(w.z.to(self.device), w.e.to(self.device))
