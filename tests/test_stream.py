"""Training streamed from the file: the same statistics, fingerprint and windows as in memory,
a buffer bounded by the memory budget, bad files refused, resume."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tracemalloc
import warnings
from collections import Counter

import h5py
import numpy as np
import pytest
import torch
from test_cli import assert_one_line_error
from test_distributed import clean_env
from test_models import interrupt_at, small_config

import odernn
from odernn import budget
from odernn.cli.app import main
from odernn.data.filerows import FileRows
from odernn.data.simulate import simulate
from odernn.data.spec import load_spec
from odernn.data.store import read_trajectories
from odernn.errors import DataError
from odernn.learn import stream
from odernn.learn.training import train
from odernn.learn.windows import MemoryWindows, compute_stats, fingerprint, to_tensors

N, T = 8192, 120
TIGHT = "6M"
"""A memory budget far below the file's 23.6 MB (and its in-memory training's ~120 MB)."""


def simulated(folder, n: int):
    spec = load_spec("train").with_overrides(n=n, n_steps=T, integrator="exact")
    return simulate(spec, folder / "train.h5", progress=False)


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    return simulated(tmp_path_factory.mktemp("stream"), N)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return simulated(tmp_path_factory.mktemp("small"), 512)


def config(family: str = "gru", **changes):
    base = {"epochs": 2, "window": 50, "horizon": 5, "batch_size": 64, "val_fraction": 0.02}
    return small_config(family, **{**(base if family != "esn" else {"val_fraction": 0.02}),
                                   **changes})


def test_fingerprint_layout_and_statistics_equal_those_in_memory(path):
    rows, data = FileRows(path), read_trajectories(path)
    assert stream.fingerprint(rows) == fingerprint(data)
    cfg = config()
    layout = cfg.layout(data.dt, data.system, data.params)
    assert cfg.layout(rows.dt, rows.system, stream.layout_params(rows)) == layout
    part = rows.take(np.arange(3, N, 2))
    streamed, memory = stream.stats(part, layout), compute_stats(data.take(part.rows), layout)
    for name in memory.mean:
        assert math.isclose(streamed.mean[name], memory.mean[name], rel_tol=1e-10, abs_tol=1e-12)
        assert math.isclose(streamed.std[name], memory.std[name], rel_tol=1e-10)


def windows_of(source, gen_seed: int, first: int = 0):
    gen = torch.Generator().manual_seed(gen_seed)
    return [(b, batch.rows.clone(), batch.starts.clone(), batch.windows())
            for b, batch in source.epoch(gen, first)]


def test_a_buffer_holding_the_set_draws_the_in_memory_windows(path):
    rows, data = FileRows(path), read_trajectories(path)
    layout = config().layout(data.dt, data.system, data.params)
    memory = MemoryWindows(to_tensors(data, layout), 3000, 64, 25, torch.device("cpu"))
    streamed = stream.window_source(rows, layout, torch.device("cpu"), 3000, 64, 25)
    assert streamed.capacity == N
    a, b = windows_of(memory, 7), windows_of(streamed, 7)
    assert len(a) == len(b) == 47
    for (ba, ra, sa, wa), (bb, rb, sb, wb) in zip(a, b, strict=True):
        assert ba == bb and torch.equal(ra, rb) and torch.equal(sa, sb)
        assert torch.equal(wa.z, wb.z) and torch.equal(wa.e, wb.e)


def test_a_small_buffer_streams_every_block_once_per_epoch(path, monkeypatch):
    rows, data = FileRows(path), read_trajectories(path)
    layout = config().layout(data.dt, data.system, data.params)
    monkeypatch.setenv(budget.ENV, TIGHT)
    memory = to_tensors(data, layout)
    n_windows, bs = 5000, 64
    streamed = stream.window_source(rows, layout, torch.device("cpu"), n_windows, bs, 25)
    per_row = T * sum(streamed.channels) * 4
    assert streamed.capacity < N / 4  # the bound holds: a quarter of the budget at most
    assert streamed.capacity * per_row <= stream.BUFFER_SHARE * budget.parse_size(TIGHT)
    rounds = streamed.rounds(torch.Generator().manual_seed(7))
    spans = sorted(s for r in rounds for s in r)
    assert spans == streamed.spans and len(rounds) > 4  # every block once, in several buffers
    # in an order of the epoch's generator: shuffled, another for another epoch's seed
    order = [s for r in rounds for s in r]
    other = [s for r in streamed.rounds(torch.Generator().manual_seed(8)) for s in r]
    assert order != streamed.spans and other != order
    batches = windows_of(streamed, 7)
    assert [b for b, *_ in batches] == list(range(math.ceil(n_windows / bs)))
    every = torch.cat([r for _, r, _, _ in batches])
    assert len(every) == n_windows
    shares = Counter()  # each buffer's windows: its share of the epoch's, from its own rows
    owner = {p: k for k, r in enumerate(rounds) for lo, hi in r for p in range(lo, hi)}
    for row in every.tolist():
        shares[owner[row]] += 1
    held = np.cumsum([sum(hi - lo for lo, hi in r) for r in rounds])
    assert [shares[k] for k in range(len(rounds))] == list(np.diff(n_windows * held // N,
                                                                   prepend=0))
    for _, r, s, w in batches:  # each window is the file's trajectory r from start s
        assert torch.equal(w.z, memory.windows(r, s, 25).z)
        assert torch.equal(w.e, memory.windows(r, s, 25).e)
    later = windows_of(streamed, 7, first=30)  # a resumed epoch: the same batches from 30
    assert [b for b, *_ in later] == list(range(30, len(batches)))
    for (_, r, s, w), (_, r2, s2, w2) in zip(batches[30:], later, strict=True):
        assert torch.equal(r, r2) and torch.equal(s, s2) and torch.equal(w.z, w2.z)


def test_the_windows_drawn_depend_on_the_content_not_the_layout(path, tmp_path, monkeypatch):
    """A virtual merge of shards holds the file's content (the same digest) in no chunks at
    all: its blocks, and so its windows, were planned from its 1-row "chunks" and differed
    from the file's; they are planned from the content, as odernn writes it, and agree."""
    from odernn.data.merge import merge_files
    from odernn.data.store import content_digest

    spec = load_spec("train").with_overrides(n=N, n_steps=T, integrator="exact")
    shards = [simulate(spec, tmp_path / f"p{k}.h5", shard=(k, 3), progress=False)
              for k in (1, 2, 3)]
    virtual = merge_files(shards, tmp_path / "virtual.h5", virtual=True)
    assert content_digest(virtual) == content_digest(path)
    data = read_trajectories(path)
    layout = config().layout(data.dt, data.system, data.params)
    monkeypatch.setenv(budget.ENV, TIGHT)
    draws = []
    for file in (path, virtual):
        source = stream.window_source(FileRows(file), layout, torch.device("cpu"), 2000, 64, 25)
        draws.append(windows_of(source, 7))
    for (_, r, s, w), (_, r2, s2, w2) in zip(*draws, strict=True):
        assert torch.equal(r, r2) and torch.equal(s, s2) and torch.equal(w.z, w2.z)


@pytest.mark.parametrize("family", ["gru", "lstm", "rnn", "ffn", "esn"])
def test_streamed_training_with_one_buffer_is_in_memory_training(small, family):
    """The same windows and, for the gradient families, the same model to the last bit with
    the default options: the skip's least-squares start sums the same chunks either way (it
    summed a chunk per file block when streamed, and Adam carried that rounding into weights
    up to 0.096 apart, the GRU's). The reservoir's normal equations are summed per block when
    streamed: equal to rounding."""
    cfg = config(family, val_fraction=0.1)
    one = train(read_trajectories(small), cfg, None, progress=False)
    two = train(FileRows(small), cfg, None, progress=False)
    assert one.status == two.status == "ok"
    a, b = one.best_record["state_dict"], two.best_record["state_dict"]
    if family != "esn":
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        assert two.best_val_nrmse == one.best_val_nrmse
        return
    for k, v in a.items():
        torch.testing.assert_close(b[k], v, rtol=1e-3, atol=1e-4)
    assert math.isclose(two.best_val_nrmse, one.best_val_nrmse, rel_tol=1e-3)


@pytest.mark.parametrize("family", ["ffn", "esn"])
def test_training_under_a_budget_far_below_the_file_streams_and_succeeds(path, monkeypatch,
                                                                         family):
    monkeypatch.setenv(budget.ENV, TIGHT)
    with pytest.raises(budget.BudgetError):
        read_trajectories(path)  # the file alone is over the budget
    assert isinstance(stream.for_training(path), FileRows)
    model, result = odernn.fit(path, config(family))  # a path: streamed, as it does not fit
    assert result.status == "ok" and result.best_val_nrmse < 1.0
    assert model.layout.system == "oscillator"


def test_resume_after_an_interrupt_streams_to_the_uninterrupted_result(path, tmp_path,
                                                                       monkeypatch):
    monkeypatch.setenv(budget.ENV, TIGHT)
    cfg = config("ffn", horizon=0)
    whole = train(FileRows(path), cfg, tmp_path / "whole", progress=False)
    cut = train(FileRows(path), cfg, tmp_path / "cut", progress=interrupt_at(2, 100))
    assert cut.status == "interrupted"
    done = train(FileRows(path), cfg, tmp_path / "cut", resume=True, progress=False)
    assert done.status == whole.status == "ok"
    a = torch.load(tmp_path / "whole" / "best.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "cut" / "best.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.filterwarnings("error")
def test_a_resumed_run_keeps_its_buffers_under_another_budget(path, tmp_path, monkeypatch):
    """The buffers' size decides the windows drawn: ``last.pt`` records it, and a run resumed
    under a smaller budget and a smaller bound keeps it and ends as the uninterrupted run."""
    rows = FileRows(path)
    layout = config().layout(rows.dt, rows.system, stream.layout_params(rows))
    monkeypatch.setenv(budget.ENV, "12M")
    cfg = config("ffn", horizon=0)
    whole = train(FileRows(path), cfg, tmp_path / "whole", progress=False)
    cut = train(FileRows(path), cfg, tmp_path / "cut", progress=interrupt_at(1, 50))
    assert cut.status == "interrupted"
    kept = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["resume"]["buffer_rows"]
    monkeypatch.setenv(budget.ENV, "9M")  # a new run would now take smaller buffers
    monkeypatch.setattr(stream, "BUFFER_CAP", 1 << 20)
    now = stream.window_source(rows, layout, torch.device("cpu"), 5000, 64, 50).capacity
    assert now < kept < N / 4
    done = train(FileRows(path), cfg, tmp_path / "cut", resume=True, progress=False)
    assert done.status == whole.status == "ok"
    a = torch.load(tmp_path / "whole" / "best.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "cut" / "best.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_buffers_the_budget_no_longer_holds_are_resized_with_a_warning(path, monkeypatch):
    """A resumed run's buffers over today's budget, or a streamed run resumed in memory: it
    goes on with what the budget allows, and says the windows differ from there on."""
    data = read_trajectories(path)
    layout = config().layout(data.dt, data.system, data.params)
    monkeypatch.setenv(budget.ENV, "24M")
    cpu = torch.device("cpu")
    allowed = stream.window_source(FileRows(path), layout, cpu, 5000, 64, 25).capacity
    kept = stream.window_source(FileRows(path), layout, cpu, 5000, 64, 25, rows=allowed // 2)
    assert kept.capacity == allowed // 2
    with pytest.warns(UserWarning, match="more than the memory budget now allows"):
        over = stream.window_source(FileRows(path), layout, cpu, 5000, 64, 25, rows=N // 2)
    assert over.capacity == allowed
    with pytest.warns(UserWarning, match="resumes in memory"):
        stream.window_source(data, layout, cpu, 5000, 64, 25, rows=allowed)
    for forged in ("many", True, 0, -3, 2.5):  # last.pt's record, read back: refused in one line
        with pytest.raises(DataError, match="buffer_rows"):
            stream.window_source(FileRows(path), layout, cpu, 5000, 64, 25, rows=forged)


def test_a_short_or_corrupt_file_is_refused_in_one_line(path, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(budget.ENV, TIGHT)
    short = tmp_path / "short.h5"
    short.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    small = ["--model", "ffn", "--hidden", "16", "--batch-size", "64", "--quiet"]
    code = main(["train", str(short), "-o", str(tmp_path / "a"), *small])
    assert_one_line_error(code, capsys.readouterr().err, "short.h5",
                          "HDF5 file is truncated or corrupt")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(path.read_bytes())
    with h5py.File(bad, "r+") as f:
        f["x"][N - 3, 40] = np.nan  # deep in the file: found by the streamed pass
    with pytest.raises(DataError, match="non-finite"):
        train(stream.for_training(bad), config("ffn"), None, progress=False)
    code = main(["train", str(bad), "-o", str(tmp_path / "b"), *small])
    assert_one_line_error(code, capsys.readouterr().err, "bad.h5",
                          f"'x' has non-finite values (NaN or inf), first in trajectory {N - 3}")
    assert not (tmp_path / "b").exists()


def test_two_ranks_stream_the_single_process_run(path, tmp_path):
    """Under torchrun each rank opens the file itself, reads the same buffers and trains on
    its share of every batch: the weights of a single process with one rank's share of the
    budget (below the file), as its buffers are sized by it."""
    env = {**clean_env(), "OMP_NUM_THREADS": "1"}
    args = ["train", str(path), "--model", "ffn", "--hidden", "16", "--epochs", "1",
            "--batch-size", "64", "--window", "50", "--set", "val_fraction=0.02", "--quiet"]
    twice = f"{2 * budget.parse_size(TIGHT)}"  # the command's budget: TIGHT for each rank
    for name, launcher, share in (("one", (), TIGHT),
                                  ("two", ("-m", "torch.distributed.run", "--standalone",
                                           "--nproc_per_node", "2"), twice)):
        done = subprocess.run([sys.executable, *launcher, "-m", "odernn", *args, "-o",
                               str(tmp_path / name)], env={**env, budget.ENV: share},
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    one, two = (torch.load(tmp_path / k / "best.pt", weights_only=True)["state_dict"]
                for k in ("one", "two"))
    torch.testing.assert_close(two, one, rtol=1e-4, atol=1e-5)


def test_the_statistics_pass_over_long_trajectories_is_checked_before_it_allocates(
        tmp_path, monkeypatch, capsys):
    """Its float64 temporaries for a block of 32 trajectories of 20000 points take some
    60 MB: under a budget of 40 MB it went on (to 2.6 times a budget on longer ones) and only
    the buffers' check refused; now it is refused first, in one line, nothing written."""
    spec = load_spec("train").with_overrides(n=64, n_steps=20_000, integrator="exact")
    data = simulate(spec, tmp_path / "long.h5", progress=False)
    monkeypatch.setenv(budget.ENV, "40M")
    code = main(["train", str(data), "--model", "ffn", "--epochs", "1", "-o",
                 str(tmp_path / "run"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "the training statistics' pass over" in err and "32 trajectories of 20000" in err
    assert not (tmp_path / "run").exists()
    monkeypatch.setenv(budget.ENV, "400M")
    rows = FileRows(data)
    for options in ({}, {"prior": "linear"}):  # the pass holds no more than was counted
        layout = config("ffn", **options).layout(rows.dt, rows.system,
                                                 stream.layout_params(rows))
        tracemalloc.start()
        try:
            streamed = stream.stats(rows, layout)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        counted = (stream.block_rows(rows) * rows.n_steps * stream.STATS_BYTES_PER_POINT
                   * (2 if layout.prior else 1))
        assert 0.5 * counted < peak <= counted, (options, peak, counted)
        whole = compute_stats(read_trajectories(data), layout)  # the same numbers
        for name, mean in whole.mean.items():
            assert math.isclose(streamed.mean[name], mean, rel_tol=1e-12, abs_tol=1e-15)


def test_streaming_a_file_of_wide_compressed_chunks_warns_that_it_is_slow(small, tmp_path):
    """Each block read decompresses every chunk it touches: a gzip chunk across all the
    trajectories is decompressed again for every block (96 s a pass at 4096 trajectories,
    against 0.6 s in odernn's layout), and nothing said so. Odernn's own files do not warn."""
    wide = tmp_path / "wide.h5"
    with h5py.File(small, "r") as f, h5py.File(wide, "w", libver=("v110", "v110")) as g:
        for group in ("", "params"):  # the same content and attributes, chunked across rows
            source = f[group] if group else f
            target = g.create_group(group) if group else g
            target.attrs.update(source.attrs)
            for k, a in source.items():
                if isinstance(a, h5py.Dataset):
                    wide_chunks = a.ndim == 2 and a.shape[0] > 64
                    target.create_dataset(k, data=a[()], **(
                        {"chunks": (a.shape[0], 8), "compression": "gzip"} if wide_chunks
                        else {}))
    with pytest.warns(UserWarning, match=r"compressed chunks span 512 trajectories each, more "
                      r"than the \d+ streamed at a time.*h5repack -l CHUNK=1x120"):
        rows = stream.for_training(wide, stream=True)
    assert stream.fingerprint(rows) == stream.fingerprint(FileRows(small))  # the same content
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stream.for_training(small, stream=True)


def test_a_buffer_holding_the_set_is_read_once_and_draws_the_in_memory_windows(small,
                                                                                monkeypatch):
    """It was read again every epoch (4 s an epoch on a file of wide gzip chunks)."""
    rows, data = FileRows(small), read_trajectories(small)
    layout = config().layout(data.dt, data.system, data.params)
    memory = MemoryWindows(to_tensors(data, layout), 2000, 64, 25, torch.device("cpu"))
    streamed = stream.window_source(rows, layout, torch.device("cpu"), 2000, 64, 25)
    assert streamed.capacity >= rows.n
    reads, real = [], FileRows.read_span
    monkeypatch.setattr(FileRows, "read_span", lambda self, lo, hi: reads.append(lo) or
                        real(self, lo, hi))
    gens = [torch.Generator().manual_seed(0) for _ in range(2)]
    per_epoch = []
    for _ in range(3):
        before = len(reads)
        for (_, a), (_, b) in zip(memory.epoch(gens[0]), streamed.epoch(gens[1]), strict=True):
            assert torch.equal(a.rows, b.rows) and torch.equal(a.starts, b.starts)
            assert torch.equal(a.windows().z, b.windows().z)
        per_epoch.append(len(reads) - before)
    assert per_epoch[0] > 0 and per_epoch[1:] == [0, 0]


def test_the_command_says_when_it_streams(path, tmp_path, monkeypatch, capsys):
    """The mode was chosen silently by the memory free: the same command, file and seed
    could give another model on another machine, and nothing said why."""
    monkeypatch.setenv(budget.ENV, TIGHT)
    args = ["train", str(path), "--model", "ffn", "--hidden", "16", "--epochs", "1",
            "--batch-size", "64", "--set", "val_fraction=0.02"]
    assert main([*args, "-o", str(tmp_path / "a")]) == 0
    assert "training it in memory would exceed the memory budget; streamed from the file" \
        in capsys.readouterr().err
    assert main([*args, "-o", str(tmp_path / "b"), "-q"]) == 0
    assert capsys.readouterr().err == ""


def test_the_skips_chunks_fit_a_tight_budget_the_same_way_in_memory_and_streamed(
        small, monkeypatch):
    """The skip's least squares holds about four times a chunk's float64 features: chunks of
    up to 64 MiB of them took some 270 MiB streamed under any budget. Under a tight budget
    they take an eighth of it, the same chunks whether in memory or streamed."""
    from odernn.learn import skip_fit
    from odernn.learn.models import build

    monkeypatch.setenv(budget.ENV, "16M")
    rows, data = FileRows(small), read_trajectories(small)
    layout = config("gru").layout(data.dt, data.system, data.params)
    model = build("gru", layout, compute_stats(data, layout))
    per_row = 8 * (model.D.shape[1] + 1) * data.n_steps
    steps = data.n_steps - 1
    memory = [x.shape[0] // steps for x, _ in skip_fit._chunks(model, [to_tensors(data, layout)])]
    streamed = stream.window_source(rows, layout, torch.device("cpu"), 1000, 64, 25)
    from_file = [x.shape[0] // steps for x, _ in skip_fit._chunks(model, streamed.blocks())]
    assert memory == from_file and len(memory) > 1
    assert max(memory) * per_row <= (16 << 20) // skip_fit.SKIP_BUDGET_SHARE


SKIP_PEAK = r"""
import json, sys
import torch
from odernn.data.filerows import FileRows
from odernn.learn import skip_fit, stream
from odernn.learn.config import TrainConfig
from odernn.learn.models import build

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

rows = FileRows(sys.argv[1])
layout = TrainConfig(model="gru").layout(rows.dt, rows.system, stream.layout_params(rows))
model = build("gru", layout, stream.stats(rows, layout))
source = stream.window_source(rows, layout, torch.device("cpu"), 1000, 64, 25)
skip_fit.SKIP_CHUNK_BYTES = 32 << 20
width, outputs = model.D.shape[1] + 1, model.D.shape[0]
chunk = skip_fit.SKIP_CHUNK_BYTES // (8 * width * rows.n_steps)
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
before = hwm()
skip_fit.fit_skip(model, source.blocks())
print(json.dumps([hwm() - before, chunk * (rows.n_steps - 1) * (width + outputs) * 8,
                  rows.n / chunk]))
"""


def test_the_skips_least_squares_holds_one_chunk_when_streamed(path):
    """The skip's start held, streamed, a chunk's trajectories joined, their float32 features
    and a concatenation of them beside its float64 regressors, and the next chunk's arrays
    while the last one's were still referenced: some three times the regressors (a streamed
    LSTM peaked at 630 MiB where it had at 460, benchmarks/stream.py). It now holds one pair
    of arrays, refilled, and a few trajectories' features at a time."""
    done = subprocess.run([sys.executable, "-c", SKIP_PEAK, str(path)], capture_output=True,
                          text=True, env=clean_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    grew, held, chunks = json.loads(done.stdout)
    assert chunks > 3  # the arrays are refilled
    assert grew < 2 * held, f"grew {grew >> 20} MiB for a chunk of {held >> 20} MiB"


def test_a_parameter_of_two_columns_is_refused_when_streamed_too(small, tmp_path):
    """A file's parameter of shape (N, K) (written by hand; import refuses it) was refused in
    memory but not when streamed: its summary was a 1-D range."""
    wide = tmp_path / "wide.h5"
    wide.write_bytes(small.read_bytes())
    with h5py.File(wide, "r+") as f:
        eta = f["params/eta"][()]
        del f["params/eta"]
        f["params/eta"] = np.stack([eta, eta], 1)
        f.attrs["system"] = "external"
    for data in (read_trajectories(wide), FileRows(wide)):
        with pytest.raises(odernn.errors.SpecError, match=r"parameter 'eta' has shape \(N, 2\)"):
            train(data, config("gru"), None, progress=False)


def test_a_file_changed_while_it_streams_stops_the_training(small, tmp_path, monkeypatch,
                                                            capsys):
    """Truncated (or rewritten) under a training that streams it, a file was read on as zeros
    where its bytes were gone (HDF5 fills them): exit 0, other numbers, and the run recorded
    the original file's fingerprint. Every block read now checks the file is the one opened."""
    import shutil

    data = tmp_path / "train.h5"
    shutil.copy(small, data)
    rows = FileRows(data)
    rows.read_span(0, 4)
    with open(data, "r+b") as f:
        f.truncate(data.stat().st_size // 2)
    with pytest.raises(DataError, match="changed while it was being read"):
        rows.read_span(4, 8)
    moved = tmp_path / "moved.h5"  # a file moved (or deleted) under the reader is read on
    shutil.copy(small, data)
    rows = FileRows(data)
    data.rename(moved)
    assert rows.read_span(0, 4).n == 4
    from odernn.data.store import TrajectoryFile

    shutil.copy(small, data)
    rows, real_read = FileRows(data), TrajectoryFile.read

    def truncated_while_read(self, which):
        with open(data, "r+b") as f:
            f.truncate(data.stat().st_size // 2)
        return real_read(self, which)

    monkeypatch.setattr(TrajectoryFile, "read", truncated_while_read)
    with pytest.raises(DataError, match="changed while it was being read"):
        rows.read_span(0, 4)  # checked after the read too: the last block of the last epoch
    monkeypatch.undo()
    reads = []
    real = FileRows.read_span

    def truncated_after_the_first(self, lo, hi):
        if len(reads) == 1:
            with open(self.path, "r+b") as f:
                f.truncate(self.path.stat().st_size - 1000)
        reads.append(lo)
        return real(self, lo, hi)

    shutil.copy(small, data)
    monkeypatch.setenv(budget.ENV, "3M")
    monkeypatch.setattr(FileRows, "read_span", truncated_after_the_first)
    code = main(["train", str(data), "-o", str(tmp_path / "run"), "-m", "gru", "--hidden",
                 "8", "--epochs", "1", "-q"])
    assert len(reads) >= 2
    assert_one_line_error(code, capsys.readouterr().err, "changed while it was being read")


def test_streamed_windows_start_anywhere_up_to_the_last_and_end_on_the_file_s_points(
        path, monkeypatch):
    """The streamed windows' starts (their own expression, as the in-memory path's that had
    an off-by-one) run from 0 to ``T - length - 1``: the trajectories' last step is drawn, no
    window runs past it, and each window holds the file's points where it says it starts."""
    rows, data = FileRows(path), read_trajectories(path)
    layout = config().layout(data.dt, data.system, data.params)
    monkeypatch.setenv(budget.ENV, TIGHT)
    memory = to_tensors(data, layout)
    length = 25
    streamed = stream.window_source(rows, layout, torch.device("cpu"), 5000, 64, length)
    assert streamed.capacity < N  # streamed from small buffers, not the set at once
    drawn = windows_of(streamed, 3)
    starts = torch.cat([s for _, _, s, _ in drawn])
    assert sorted(set(starts.tolist())) == list(range(T - length))
    for _, r, s, w in drawn[:20]:
        ends = memory.z[r, s + length]
        assert torch.equal(w.z[:, -1], ends) and torch.equal(w.z[:, 0], memory.z[r, s])
