"""How streaming plans and reads its work: the blocks, the buffers and their bounds, a
rank's share, a part of the file, and the estimate that decides to stream
(docs/scaling.md, "Training on data larger than memory"). The training itself streamed
against in memory: test_stream.py."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from test_stream import config, windows_of

from odernn import budget
from odernn.data.filerows import FileRows
from odernn.data.simulate import simulate
from odernn.data.spec import load_spec
from odernn.data.store import read_trajectories
from odernn.learn import stream
from odernn.learn.windows import fingerprint, to_tensors


def sim(folder, n, steps, **kw):
    spec = load_spec("train").with_overrides(n=n, n_steps=steps, integrator="exact", **kw)
    return simulate(spec, folder / f"f{n}-{steps}-{'-'.join(map(str, kw.values()))}.h5",
                    progress=False)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return sim(tmp_path_factory.mktemp("a"), 512, 120)


def test_a_part_of_the_file_is_fingerprinted_as_its_rows(small):
    """A view of some rows has its own digest and parameter ranges."""
    rows, data = FileRows(small), read_trajectories(small)
    part = rows.take(np.arange(3, rows.n, 2))
    assert not part.whole and rows.whole
    assert stream.fingerprint(part) == fingerprint(data.take(part.rows))
    assert stream.fingerprint(part) != stream.fingerprint(rows)


def test_reading_rows_is_budgeted_at_twice_their_bytes_and_in_whole_chunks(small, monkeypatch):
    """The read holds the spans and their concatenation; spans of whole chunks."""
    rows = FileRows(small)
    monkeypatch.setenv(budget.ENV, str(int(1.5 * rows.n * rows.row_bytes())))
    with pytest.raises(budget.BudgetError, match="512 trajectories"):
        rows.read()
    monkeypatch.setenv(budget.ENV, str(2 * rows.n * rows.row_bytes() + (1 << 20)))
    seen, real = [], FileRows.blocks
    monkeypatch.setattr(FileRows, "blocks", lambda self, k: seen.append(k) or real(self, k))
    part = rows.take(np.arange(0, rows.n, 3))
    got = part.read()
    assert seen and all(k % rows.chunk_rows == 0 for k in seen)
    assert np.array_equal(got.x, read_trajectories(small).x[part.rows])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_odernns_own_gzip_files_stream_without_a_warning(tmp_path, dtype):
    """Odernn's own compressed layout is what streaming plans for."""
    path = sim(tmp_path, 512, 120, dtype=dtype, compression="gzip")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stream.for_training(path, stream=True)


def test_uncompressed_wide_chunks_do_not_warn(tmp_path, small):
    """Only compressed chunks are decompressed again per block."""
    import h5py
    wide = tmp_path / "wide.h5"
    with h5py.File(small, "r") as f, h5py.File(wide, "w", libver=("v110", "v110")) as g:
        for group in ("", "params"):
            source = f[group] if group else f
            target = g.create_group(group) if group else g
            target.attrs.update(source.attrs)
            for k, a in source.items():
                if isinstance(a, h5py.Dataset):
                    chunked = a.ndim == 2 and a.shape[0] > 64
                    target.create_dataset(k, data=a[()],
                                          **({"chunks": (a.shape[0], 8)} if chunked else {}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stream.for_training(wide, stream=True)


def test_both_buffers_together_stay_within_the_bound(tmp_path, monkeypatch):
    """The two buffers, not each, fit min(BUFFER_CAP, BUFFER_SHARE x budget);
    and every buffer but the last is filled as far as its blocks allow."""
    rows = FileRows(sim(tmp_path, 256, 1000))
    layout = config().layout(rows.dt, rows.system, stream.layout_params(rows))
    cpu = torch.device("cpu")
    for env, cap in (("12M", None), ("1G", 3 << 20)):
        monkeypatch.setenv(budget.ENV, env)
        if cap:
            monkeypatch.setattr(stream, "BUFFER_CAP", cap)
        s = stream.window_source(rows, layout, cpu, 2000, 64, 25)
        per_row = rows.n_steps * sum(s.channels) * 4
        limit = min(stream.BUFFER_CAP, 0.25 * budget.memory_budget()[0])
        assert s.n_buffers == 2 and s.n_buffers * s.capacity * per_row <= limit, env
        assert 2 * (s.capacity + 1) * per_row > limit  # and not far below it
        biggest = max(hi - lo for lo, hi in s.spans)
        rounds = s.rounds(torch.Generator().manual_seed(3))
        assert all(sum(hi - lo for lo, hi in r) > s.capacity - biggest for r in rounds[:-1])


def test_buffers_smaller_than_a_block_hold_a_block(tmp_path, monkeypatch):
    """Long trajectories, a bound below one block: a buffer holds a block, and the
    windows are the file's."""
    path = sim(tmp_path, 128, 2000)
    rows, data = FileRows(path), read_trajectories(path)
    layout = config().layout(data.dt, data.system, data.params)
    monkeypatch.setattr(stream, "BUFFER_CAP", 1 << 20)
    s = stream.window_source(rows, layout, torch.device("cpu"), 500, 64, 25)
    assert s.capacity == stream.block_rows(rows) < rows.n and s.n_buffers == 2
    memory = to_tensors(data, layout)
    batches = windows_of(s, 5)
    assert sum(len(r) for _, r, _, _ in batches) == 500
    for _, r, st, w in batches:
        assert torch.equal(w.z, memory.windows(r, st, 25).z)


def test_the_statistics_pass_with_a_prior_is_budgeted_twice(tmp_path, monkeypatch):
    """With a prior the pass holds twice the bytes per point, and is refused first."""
    path = sim(tmp_path, 64, 4000)
    rows = FileRows(path)
    layout = config("ffn", prior="linear").layout(rows.dt, rows.system,
                                                 stream.layout_params(rows))
    counted = stream.block_rows(rows) * rows.n_steps * stream.STATS_BYTES_PER_POINT
    monkeypatch.setenv(budget.ENV, str(int(1.5 * counted)))
    with pytest.raises(budget.BudgetError, match="statistics' pass"):
        stream.stats(rows, layout)


def test_a_series_file_streams_as_it_trains_in_memory(tmp_path):
    """A series (x only) read from a view, and trained streamed, as in memory."""
    from test_models import small_config

    from odernn.data.spec import parse_spec
    from odernn.learn.training import train

    spec = parse_spec('system = "sine"\nn = 120\nseed = 0\ndt = 0.1\nn_steps = 100\n'
                      '[integrator]\nname = "exact"\n')
    path = simulate(spec, tmp_path / "s.h5", progress=False)
    rows, data = FileRows(path), read_trajectories(path)
    assert data.is_series
    got = rows.take(np.arange(0, rows.n, 3)).read()
    assert got.v is None and got.F is None and np.array_equal(got.x, data.x[::3])
    cfg = small_config("gru", target="next-value", epochs=1, window=20, horizon=0,
                       batch_size=16, val_fraction=0.1)
    one = train(data, cfg, None, progress=False)
    two = train(FileRows(path), cfg, None, progress=False)
    assert two.status == one.status == "ok" and two.best_val_nrmse == one.best_val_nrmse


def test_the_in_memory_estimate_decides_streaming(small, monkeypatch):
    """The estimate counts `copies` stored copies, parameters
    included, in memory as from the file; about twelve times the stored size
    (docs/scaling.md); the choice flips at the budget; stream=False reads into memory."""
    from odernn.data.trajectories import Trajectories

    rows, data = FileRows(small), read_trajectories(small)
    est = stream.in_memory_bytes(rows)
    assert est == stream.in_memory_bytes(data)
    assert stream.in_memory_bytes(rows, copies=3) - est == rows.n * rows.row_bytes()
    assert 10 * rows.n * rows.row_bytes() <= est <= 16 * rows.n * rows.row_bytes()
    monkeypatch.setenv(budget.ENV, str(est))
    assert isinstance(stream.for_training(small), Trajectories)
    monkeypatch.setenv(budget.ENV, str(est - 1))
    assert isinstance(stream.for_training(small), FileRows)
    assert isinstance(stream.for_training(small, stream=False), Trajectories)


def test_a_value_too_large_deep_in_the_file_is_refused_by_the_statistics_pass(small, tmp_path):
    """Each block is checked as training checks data (an OverflowError otherwise)."""
    import h5py

    from odernn.errors import DataError

    bad = tmp_path / "huge.h5"
    bad.write_bytes(small.read_bytes())
    with h5py.File(bad, "r+") as f:
        f["x"][509, 20] = 1e200
    rows = FileRows(bad)
    layout = config("ffn").layout(rows.dt, rows.system, stream.layout_params(rows))
    with pytest.raises(DataError, match="x holds values up to 1e.200"):
        stream.stats(rows, layout)


def test_each_process_reads_through_its_own_handle(small, monkeypatch):
    """An HDF5 handle does not survive a fork: a process that is not the opener opens
    the file again (and does not close the opener's)."""
    import os

    rows = FileRows(small)
    mine = rows.file()
    assert rows.file() is mine
    monkeypatch.setattr(os, "getpid", lambda: -4242)
    theirs = rows.file()
    assert theirs is not mine and rows.read_span(0, 3).n == 3


@pytest.mark.parametrize("share", [slice(0, 512), slice(100, 301), slice(290, 300)])
def test_tensor_blocks_give_the_share_in_order_with_the_positions_done(small, share):
    """A rank's share of the file, block by block, as in memory (each rank of a
    distributed reservoir accumulates its own share; folds align labels by `done`)."""
    rows, data = FileRows(small), read_trajectories(small)
    layout = config().layout(data.dt, data.system, data.params)
    cpu = torch.device("cpu")
    whole = to_tensors(data, layout)
    for source in (rows, data):
        got = list(stream.tensor_blocks(source, layout, cpu, 64, share))
        done = [d for d, _ in got]
        assert done == sorted(done) and done[-1] == share.stop - share.start
        assert all(d - b.n == prev for (d, b), prev in zip(got, [0, *done[:-1]], strict=True))
        z = torch.cat([b.z for _, b in got])
        assert torch.equal(z, whole.z[share]) and max(b.n for _, b in got) <= 64


def test_a_stream_batch_gives_a_rank_its_share_of_the_windows(tmp_path, monkeypatch):
    """A batch spanning two buffers, and a rank's slice of it."""
    path = sim(tmp_path, 256, 1000)
    rows, data = FileRows(path), read_trajectories(path)
    layout = config().layout(data.dt, data.system, data.params)
    monkeypatch.setattr(stream, "BUFFER_CAP", 3 << 20)
    s = stream.window_source(rows, layout, torch.device("cpu"), 700, 64, 25)
    memory = to_tensors(data, layout)
    for _, batch in s.epoch(torch.Generator().manual_seed(1)):
        full = memory.windows(batch.rows, batch.starts, 25)
        assert torch.equal(batch.windows().z, full.z)
        part = batch.windows(slice(10, 30))
        assert torch.equal(part.z, full.z[10:30]) and torch.equal(part.e, full.e[10:30])


def test_parameter_ranges_span_every_block_of_the_file(tmp_path, monkeypatch):
    """The fingerprint's pass reads a parameter in blocks (8M rows each by default):
    its range is over all of them, not the last block's."""
    from odernn.data import store

    path = sim(tmp_path, 100_000, 8)  # parameters in chunks of 32768 rows
    monkeypatch.setattr(store, "BLOCK_BYTES", 1 << 10)  # a chunk a block
    rows, data = FileRows(path), read_trajectories(path)
    stream.fingerprint(rows)
    for k, v in data.params.items():
        assert rows.summary[k].tolist() == [v.min(), v.max()], k


def test_blocks_are_whole_chunks_of_at_least_32_rows():
    """Rounded up to whole chunks, never below BLOCK_FILE_ROWS."""
    from types import SimpleNamespace

    for chunk, rows in ((1, 32), (5, 35), (32, 32), (33, 33), (273, 273)):
        assert stream.block_rows(SimpleNamespace(chunk_rows=chunk)) == rows


@pytest.mark.filterwarnings("error")
def test_one_buffer_of_the_set_is_one_buffer_and_resumes_in_memory_silently(small):
    """A buffer of every row is one buffer (budgeted once); a run that streamed
    with one buffer draws the in-memory windows, so resuming in memory says nothing."""
    rows, data = FileRows(small), read_trajectories(small)
    layout = config().layout(data.dt, data.system, data.params)
    plan = stream.planned_buffers(rows, layout)
    assert plan.capacity == rows.n and plan.n_buffers == 1
    stream.window_source(data, layout, torch.device("cpu"), 100, 64, 25, rows=data.n)


@pytest.mark.parametrize("eta", [None, 0.2])
def test_a_part_of_a_file_has_the_layout_of_its_rows_in_memory(tmp_path, eta):
    """A view of some of the file's rows (``FileRows(path).take``) lays its model out as those
    rows in memory do: its parameters' ranges come from the rows it reads (they were None,
    and every parameter became an input, a fixed eta too)."""
    from odernn.data.spec_settings import with_settings

    spec = load_spec("train").with_overrides(n=100, n_steps=60, integrator="exact")
    path = simulate(with_settings(spec, sets={"eta": eta}) if eta else spec,
                    tmp_path / "t.h5", progress=False)
    idx = np.arange(0, 100, 2)
    part, memory = FileRows(path).take(idx), read_trajectories(path).take(idx)
    params = stream.layout_params(part)
    for k, v in memory.params.items():
        assert params[k].tolist() == [v.min(), v.max()], k
    for cfg in (config("ffn"), config("ffn", withhold=["eta"])):
        assert (cfg.layout(part.dt, part.system, params)
                == cfg.layout(memory.dt, memory.system, memory.params))
    if eta:
        assert "eta" not in cfg.layout(part.dt, part.system, params).inputs


@pytest.mark.parametrize("rows", [[-1, 2], [5, 3], [0, 0, 1], [2, 512], [[0, 1]], [0.0, 1.0]])
def test_rows_outside_the_file_or_out_of_order_are_refused(small, rows):
    """A negative row would wrap, one repeated would count the view as the whole file, one
    out of order failed later with a bare IndexError: each is refused in one line."""
    from odernn.errors import DataError

    with pytest.raises(DataError, match="file rows must"):
        FileRows(small, rows=np.array(rows))
    with pytest.raises(DataError, match="positions in the view must"):
        FileRows(small).take(np.array(rows))
    assert FileRows(small, rows=np.array([], dtype=np.int64)).n == 0  # a rank with no share
