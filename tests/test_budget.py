"""The memory budget (odernn.budget) and signals during long work, on real processes.

Each adversarial case is a command line a tester found to allocate gigabytes from a few
bytes of input (or to trace back). They run in one worker process, one after the other,
under an address-space limit (a regression fails here instead of taking the machine down);
the worker resets its peak resident memory (``/proc/self/clear_refs``) before each case and
reads it (``VmHWM``) after: each must end with exit code 2, one ``error:`` line naming the
size, nothing written, and a peak under 1 GB (torch and the command line included).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest

from odernn import budget
from odernn.errors import SpecError

GB = 1 << 30
LIMIT_AS = 6 * GB
"""The workers' address-space limit: torch imports under it; a regression hits it."""
PEAK = 1 * GB

WORKER = r"""
import contextlib, io, json, sys
from odernn.cli.app import main

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

import torch  # noqa: F401  (the baseline every command pays)
out = []
for argv in json.loads(sys.argv[1]):
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except MemoryError:
            code = "MemoryError"
    out.append({"argv": argv, "code": code, "stderr": err.getvalue(), "peak": hwm()})
print(json.dumps(out))
"""


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_AS, LIMIT_AS))


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k != budget.ENV}
    e["OMP_NUM_THREADS"] = "1"
    return e


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in directory.rglob("*") if not p.is_fifo()}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A small dataset, a crafted checkpoint, a spec with K = 1e8 and a FIFO."""
    import torch

    import odernn
    from odernn.data.simulate import simulate
    from odernn.data.spec import load_spec
    from odernn.learn.checkpoint import FORMAT, FORMAT_VERSION
    from odernn.learn.config import TrainConfig
    from odernn.learn.models import build, surrogate_record
    from odernn.learn.windows import compute_stats

    d = tmp_path_factory.mktemp("budget")
    simulate(load_spec("train").with_overrides(n=16, n_steps=200, integrator="rk4"),
             d / "small.h5")
    from odernn.data.store import read_trajectories

    data = read_trajectories(d / "small.h5")
    config = TrainConfig.from_dict({"model": "lstm", "hidden": 4})
    layout = config.layout(data.dt)
    record = surrogate_record(build("lstm", layout, compute_stats(data, layout),
                                    **config.model_args()))
    record["args"]["hparams"]["hidden"] = 20000  # tiny tensors, a huge declared model
    (d / "crafted").mkdir()
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION,
                "odernn_version": odernn.__version__, **record}, d / "crafted" / "best.pt")
    assert (d / "crafted" / "best.pt").stat().st_size < 20_000
    (d / "k.toml").write_text(
        'system = "oscillator"\nn = 1\nseed = 1\ndt = 0.05\nn_steps = 1000\n'
        '[integrator]\nname = "rk4"\n[parameters]\neta = 0.1\nx0 = 0.0\nv0 = 0.0\n'
        '[forcing]\nfamily = "random"\nK = 100000000\n')
    os.mkfifo(d / "fifo")
    return d


def cases(d: Path) -> list[tuple[list[str], str]]:
    """(argv, a word the error line must hold)."""
    small, out = str(d / "small.h5"), str(d / "out")
    return [
        (["simulate", str(d / "k.toml"), "-o", f"{out}.h5"], "K = 100000000"),
        (["simulate", "train", "--n", "1", "--n-steps", "100000000", "-o", f"{out}.h5"],
         "n_steps = 100000000"),
        (["simulate", "train", "--n", "100000000", "--n-steps", "100000000", "-o",
          f"{out}.h5"], "n_steps = 100000000"),
        (["train", small, "-o", out, "--batch-size", "1000000000"], "batch_size = 1000000000"),
        (["train", small, "-o", out, "-m", "esn", "--units", "30000"], "units = 30000"),
        (["train", small, "-o", out, "--hidden", "100000"], "hidden = 100000"),
        (["train", small, "-o", out, "--set", "head=[100000,100000]"],
         "head = [100000, 100000]"),  # it named hidden = 64 alone
        # its activations were not counted: passed at 1.5 GiB, killed at 23.7 GB
        (["train", small, "-o", out, "--set", "head=[1000000]"], "head = [1000000]"),
        (["train", small, "-o", out, "-m", "ffn", "--set", "head=[1000000]"],
         "head = [1000000]"),
        (["train", small, "-o", out, "-m", "esn", "--units", "100000"], "units = 100000"),
        # the hint named units alone; degree (non-zeros per row) sizes the reservoir too
        (["train", small, "-o", out, "-m", "esn", "--units", "100000"], "reduce units (or degree)"),
        (["gradients", "--sequences", "1000000", "-o", out], "sequences = 1000000"),
        (["gradients", "--hidden", "100000", "-o", out], "hidden = 100000"),
        (["demo", "--quick", "--hidden", "100000", "-o", out], "hidden = 100000"),
        (["train", small, "-o", out, "--config", "/dev/zero"], "not a regular file"),
        (["train", small, "-o", out, "--config", str(d / "fifo")], "FIFO"),
        (["simulate", "train", "-o", f"{out}.h5", "--config", "/dev/zero"],
         "not a regular file"),
        (["evaluate", str(d / "crafted"), "--data", small, "-o", out], "hidden=20000"),
    ]


def test_every_adversarial_size_is_refused_in_one_line_in_bounded_memory(work):
    todo = cases(work)
    before = snapshot(work)
    proc = subprocess.run([sys.executable, "-c", WORKER, json.dumps([a for a, _ in todo])],
                          capture_output=True, text=True, timeout=300, cwd=work, env=env(),
                          preexec_fn=limit_memory)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for (argv, word), r in zip(todo, results, strict=True):
        lines = [line for line in r["stderr"].splitlines() if line.strip()]
        label = " ".join(argv)
        assert r["code"] == 2, f"{label}: exit {r['code']}: {r['stderr'][-2000:]}"
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{label}: {lines}"
        assert word in lines[0], f"{label}: {lines[0]}"
        assert r["peak"] < PEAK, f"{label}: peak {r['peak'] / GB:.2f} GB"
        print(f"{r['peak'] / 2**20:6.0f} MiB  {label}")
    assert snapshot(work) == before  # nothing written, nothing left behind


def test_the_budget_names_the_size_and_can_be_raised(monkeypatch):
    monkeypatch.setenv(budget.ENV, "1M")
    with pytest.raises(budget.BudgetError, match=r"n_steps = 7: needs ~2 MiB, more than the "
                       r"memory budget of 1 MiB \(ODERNN_MEMORY_BUDGET=1M\); reduce n_steps"):
        budget.check("n_steps = 7", 2 << 20, "reduce n_steps")
    budget.check("n_steps = 7", 1 << 20, "reduce n_steps")  # at the budget: allowed
    monkeypatch.setenv(budget.ENV, "lots")
    with pytest.raises(SpecError, match="ODERNN_MEMORY_BUDGET='lots'"):
        budget.memory_budget()
    assert [budget.parse_size(s) for s in ("16G", "512M", "2e9", "4GiB", "1024")] == [
        16 << 30, 512 << 20, 2 * 10**9, 4 << 30, 1024]
    monkeypatch.delenv(budget.ENV)
    assert budget.memory_budget()[0] <= budget.DEFAULT_CAP


def test_a_spec_too_large_as_written_is_checked_as_overridden(monkeypatch, tmp_path, capsys):
    """The budget judges what will be simulated: ``--n-steps``, ``--n`` and ``--set`` shrink a
    spec that does not fit as written (it was checked, and refused, before they applied)."""
    from odernn.cli.app import main

    monkeypatch.setenv(budget.ENV, "4M")  # the `train` spec's blocks need 7.4 MiB
    out = tmp_path / "small.h5"
    assert main(["simulate", "train", "-o", str(out), "--n", "10", "--n-steps", "100",
                 "-q"]) == 0
    assert main(["simulate", "train", "-o", str(tmp_path / "set.h5"), "--set", "n_steps=100",
                 "-q"]) == 0
    assert h5py.File(out).attrs["n_steps"] == 100
    assert main(["simulate", "train", "-o", str(tmp_path / "big.h5"), "-q"]) == 2
    assert "n = 256, n_steps = 1000: needs ~7.36 MiB" in capsys.readouterr().err
    assert not (tmp_path / "big.h5").exists()


def test_data_parallel_processes_share_the_budget(monkeypatch):
    monkeypatch.setenv(budget.ENV, "16G")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # a worker of torchrun's 4 on this machine
    assert budget.memory_budget() == (4 << 30, "ODERNN_MEMORY_BUDGET=16G, shared by 4 processes")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert budget.memory_budget() == (16 << 30, "ODERNN_MEMORY_BUDGET=16G")
    for wrong in ("²", "two", "-2"):  # not torchrun's: refused, not taken as 1
        monkeypatch.setenv("LOCAL_WORLD_SIZE", wrong)
        with pytest.raises(SpecError, match="LOCAL_WORLD_SIZE="):
            budget.memory_budget()
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    with budget.shared_by(2):  # the launcher of 2 workers checks their share
        assert budget.memory_budget()[0] == 8 << 30
        with pytest.raises(budget.BudgetError, match="shared by 2 processes"):
            budget.check("units = 9", 9 << 30, "reduce units")
    assert budget.memory_budget()[0] == 16 << 30


def test_a_spec_within_the_budget_still_simulates_and_the_override_allows_more(monkeypatch):
    from odernn.data.simulate import check_memory
    from odernn.data.spec import load_spec

    long = load_spec("train").with_overrides(n_steps=1_000_000)
    check_memory(long)  # ~80 MB a block: fine
    monkeypatch.setenv(budget.ENV, "64M")
    with pytest.raises(budget.BudgetError, match="n_steps = 1000000"):
        check_memory(long)


def test_the_reservoir_is_the_same_matrix_drawn_in_row_blocks(monkeypatch):
    from odernn.learn.models import esn

    def dense(units: int, degree: int, rng: np.random.Generator) -> np.ndarray:
        cols = np.argsort(rng.random((units, units)), axis=1)[:, :degree]
        cols.sort(axis=1)
        return cols

    monkeypatch.setattr(esn, "RESERVOIR_BLOCK", 1000)  # many blocks of a few rows
    for units, degree in ((300, 10), (40, 40)):
        w = esn.sparse_reservoir(units, degree, 0.5, np.random.default_rng(3))
        assert np.array_equal(w.indices.reshape(units, degree),
                              dense(units, degree, np.random.default_rng(3)))


def wide_params_file(path: Path, n: int = 8, width: int = 1 << 17) -> Path:
    """n trajectories of 10 points (240 bytes of x, v, F each) with a parameter of ``width``
    values (1 MiB a row by default), stored compressed: the parameters are most of a row."""
    from odernn.data.writer import TrajectoryWriter

    attrs = {"kind": "oscillator", "system": "external", "forcing": "samples"}
    with TrajectoryWriter(path, t=np.arange(10) * 0.1, n=n, params={"wide": (width,)},
                          attrs=attrs, compression="gzip") as w:
        w.write(0, {k: np.zeros((n, 10)) for k in ("x", "v", "F")},
                {"wide": np.zeros((n, width))})
    return path


def test_checking_a_file_counts_its_parameters_in_blocks_and_budget(tmp_path, monkeypatch):
    from test_store import TracedPeak

    from odernn.data import store

    path = wide_params_file(tmp_path / "wide.h5")
    monkeypatch.setattr(store, "BLOCK_BYTES", 1 << 20)  # one row's parameters fill a block
    with store.open_trajectories(path) as f:
        with TracedPeak() as traced:
            f.check_parts()
        assert traced.peak < 3 << 20  # a row at a time, not all 8 MiB
        monkeypatch.setenv(budget.ENV, "512K")
        with pytest.raises(budget.BudgetError, match=r"the parameters of 1 trajectory\(ies\), "
                                                     r"1 MiB each"):
            f.check_parts()


def test_reading_file_rows_counts_their_parameters(tmp_path, monkeypatch):
    from odernn.data.filerows import FileRows

    rows = FileRows(wide_params_file(tmp_path / "wide.h5"))
    assert rows.row_bytes() == 10 * 24 + (8 << 17)
    monkeypatch.setenv(budget.ENV, "4M")  # the 8 rows' x, v, F (2 KiB) fit; with params not
    with pytest.raises(budget.BudgetError, match="8 trajectories of 10 points"):
        rows.read()
    monkeypatch.setenv(budget.ENV, "64M")
    assert rows.read().params["wide"].shape == (8, 1 << 17)


def zeros_file(path: Path, n: int, steps: int, chunk: tuple[int, int] = (1, 1 << 17)) -> Path:
    """An odernn series file of ``n x steps`` zeros, gzip-compressed to a few MB: every
    chunk (1 MiB by default) is the same compressed bytes, written directly (no GBs in this
    process)."""
    from odernn.data.simulate import simulate
    from odernn.data.spec import parse_spec

    model = path.with_name("model.h5")
    simulate(parse_spec('system = "sine"\nn = 2\nseed = 0\ndt = 0.5\nn_steps = 4\n'
                        '[integrator]\nname = "exact"\n'), model)
    payload = zlib.compress(np.zeros(chunk).tobytes(), 1)
    with h5py.File(model, "r") as src, h5py.File(path, "w", libver=("v110", "v110")) as f:
        for k, v in src.attrs.items():
            f.attrs[k] = v
        f.attrs["n_trajectories"], f.attrs["n_steps"] = n, steps
        f.create_dataset("t", data=np.arange(steps) * 0.5)
        x = f.create_dataset("x", (n, steps), dtype="f8", chunks=chunk, compression="gzip")
        for row in range(0, n, chunk[0]):
            for col in range(0, steps, chunk[1]):
                x.id.write_direct_chunk((row, col), payload)
    return path


def run_inspect(path: Path, term_after: float | None = None) -> tuple[int, str, int, float]:
    """``odernn inspect path`` in its own process: exit code, stderr, peak bytes, and the
    seconds from SIGTERM (sent ``term_after`` seconds after the start) to its exit."""
    proc = subprocess.Popen([sys.executable, "-m", "odernn", "inspect", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env(),
                            preexec_fn=limit_memory)
    waited = 0.0
    if term_after is not None:
        time.sleep(term_after)
        assert proc.poll() is None, "inspect ended before the signal"
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
    _, status, usage = os.wait4(proc.pid, 0)
    if term_after is not None:
        waited = time.monotonic() - sent
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    return proc.returncode, err, usage.ru_maxrss * 1024, waited


def test_inspect_streams_a_compressed_file_of_zeros_in_bounded_memory(tmp_path):
    path = zeros_file(tmp_path / "zeros.h5", 96, 1_500_000)  # 1.15 GB of zeros
    assert path.stat().st_size < 24 << 20  # mostly the time grid
    code, err, peak, _ = run_inspect(path)
    assert code == 0, err
    assert peak < PEAK, f"inspect peak {peak / GB:.2f} GB"


def test_sigterm_ends_a_long_inspect_within_a_second_or_two(tmp_path):
    path = zeros_file(tmp_path / "zeros.h5", 512, 1_500_000)  # 6 GB of zeros
    code, err, peak, waited = run_inspect(path, term_after=2.5)
    assert code == 130, err
    assert waited < 2.0, f"{waited:.2f} s from SIGTERM to exit"
    assert "interrupted" in err and "Traceback" not in err


def test_sigterm_ends_a_long_simulation_block_within_a_second_or_two(tmp_path):
    out = tmp_path / "long.h5"
    proc = subprocess.Popen([sys.executable, "-m", "odernn", "simulate", "train", "--n", "1",
                             "--n-steps", "20000000", "--integrator", "rk4", "-q", "-o",
                             str(out)], stderr=subprocess.PIPE, env=env(),
                            preexec_fn=limit_memory, cwd=tmp_path)
    # inside the one block or its write: 20 million RK4 steps take seconds (compiled), and
    # their 460 MB took seconds more to write, in one call a signal waited for (2.2 s seen);
    # the write now goes in pieces of at most a block's 64 MB
    time.sleep(4.0)
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    code = proc.wait(timeout=30)
    waited = time.monotonic() - sent
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert code == 130, err
    assert waited < 2.0, f"{waited:.2f} s from SIGTERM to exit"
    assert list(tmp_path.iterdir()) == []  # no file, no temporary file


def test_chunks_taller_than_a_block_are_read_within_the_budget(tmp_path, monkeypatch):
    """A file's chunks set how many whole rows a block of a pass over it holds (a chunk's
    rows at least): 512 rows of 8192 points in chunks of 512 x 64 make 32 MiB blocks from a
    file of a few hundred KB. Beyond odernn's own block size they are budgeted first."""
    from odernn.data import store

    path = zeros_file(tmp_path / "tall.h5", 512, 8192, chunk=(512, 64))
    assert path.stat().st_size < 1 << 20
    monkeypatch.setattr(store, "BLOCK_BYTES", 4 << 20)  # (64 MiB by default)
    monkeypatch.setenv(budget.ENV, "16M")
    with store.open_trajectories(path) as f, pytest.raises(
            budget.BudgetError, match="blocks of 512 rows"):
        f.content_digest()
    monkeypatch.setenv(budget.ENV, "64M")
    with store.open_trajectories(path) as f:
        assert f.content_digest().startswith("sha256:")


def test_index_arrays_of_a_file_with_many_rows_are_budgeted_or_blocked(tmp_path, monkeypatch):
    """A file's trajectory count sets two index arrays of 8 bytes a row: the streamed view's
    rows (budgeted) and the /trajectory scale a merge writes (now in blocks)."""
    from test_store import TracedPeak

    from odernn.data.filerows import FileRows
    from odernn.data.writer import write_scales

    path = zeros_file(tmp_path / "rows.h5", 1 << 21, 2, chunk=(1 << 16, 2))
    monkeypatch.setenv(budget.ENV, "8M")
    with pytest.raises(budget.BudgetError, match="row index of its 2097152 trajectories"):
        FileRows(path)
    monkeypatch.setenv(budget.ENV, "64M")
    assert FileRows(path).n == 1 << 21
    with h5py.File(tmp_path / "scales.h5", "w") as f, TracedPeak() as traced:
        f.create_dataset("t", data=np.arange(2.0))
        write_scales(f, 1 << 22, [], {})
        assert f["trajectory"][-1] == (1 << 22) - 1
    assert traced.peak < 12 << 20  # 32 MiB as one array


def test_attributes_are_budgeted_as_python_values(tmp_path, monkeypatch):
    """An attribute of 1 MiB (the limit) of short strings is about 60 MiB as Python values,
    and a file may hold 1024: their elements are budgeted before they are read, for the
    file's own attributes and for its datasets' (which the content digest reads)."""
    from odernn.data import store

    path = zeros_file(tmp_path / "attrs.h5", 2, 4, chunk=(1, 4))
    many = np.array([b"a"] * (1 << 19))  # 512 Ki strings of 1 byte: 0.5 MiB stored
    with h5py.File(path, "r+") as f:
        f["x"].attrs["notes"] = many
    monkeypatch.setenv(budget.ENV, "16M")
    with store.open_trajectories(path) as f, pytest.raises(
            budget.BudgetError, match="1 attributes of 524288 values"):
        f.content_digest()
    with h5py.File(path, "r+") as f:
        del f["x"].attrs["notes"]
        f.attrs["notes"] = many
    with pytest.raises(budget.BudgetError, match="attributes of 52"):
        store.open_trajectories(path)


def test_reading_a_file_checks_its_forcing_in_blocks(tmp_path):
    """A read is budgeted for the values it returns; its check of the forcing against the
    parameters made five float64 copies of them (3.7 times a float32 file's values, found
    by an audit). It now runs in blocks of rows, with the same answers
    (tests/test_data_checks.py)."""
    from test_store import TracedPeak

    import odernn
    from odernn.data.store import read_trajectories

    spec = odernn.load_spec("train").with_overrides(n=16, n_steps=32768, dtype="float32")
    path = odernn.simulate(spec, tmp_path / "f32.h5", progress=False)
    stored = 16 * 32768 * 3 * 4
    with TracedPeak() as traced:
        data = read_trajectories(path)
    assert data.x.dtype == np.float32
    assert traced.peak < 1.6 * stored, traced.peak / stored


def test_an_rnn_drawn_as_an_echo_state_network_is_built_within_its_estimate():
    """``init="esn"`` draws ``W`` in float64 and takes its eigenvalues: the estimate counts
    them (before, an RNN of hidden 6000 built in 1 GB under a budget of 420 MB)."""
    child = r"""
import json
from odernn.learn.models.layout import Layout, Stats
from odernn.learn.models.rnn import VanillaRNN

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

layout = Layout(dt=0.05)
stats = Stats({k: 0.0 for k in ("x", "v", "F", "eta", "y0", "y1")},
              {k: 1.0 for k in ("x", "v", "F", "eta", "y0", "y1")})
VanillaRNN(layout, stats, hidden=8)  # torch's own allocations first
before = hwm()
hparams = {"hidden": 1500, "init": "esn"}
model = VanillaRNN(layout, stats, **hparams)
print(json.dumps([hwm() - before, VanillaRNN.model_bytes(model.hparams, *layout.sizes)]))
"""
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                          env=env(), timeout=120)
    assert done.returncode == 0, done.stderr
    grew, estimate = json.loads(done.stdout)
    assert grew <= estimate, f"built in {grew >> 20} MiB, estimated {estimate >> 20} MiB"


def test_the_sizes_of_evaluation_rollouts_and_the_notes_are_checked_first(monkeypatch,
                                                                          small_linear_sets):
    """From an audit of every size a user sets: each of these reached allocation unchecked
    (a MemoryError traceback, gigabytes taken, or minutes) and is refused in one line before:
    the resonance sweep's drives and steps, the bifurcation's amplitudes (drawn before their
    check), the work-precision grids (a factor of 0 was an OverflowError), a closed loop's
    trajectories and steps (rollout, series rollout, stepper), what evaluate holds, and the
    notes' helpers."""
    import odernn
    from odernn.assess.bifurcation import BifurcationSettings, plan_bifurcation
    from odernn.assess.frequency_response import plan_response
    from odernn.assess.resonance import ResonanceSettings, plan_sweep
    from odernn.assess.work_precision import WorkPrecisionSettings
    from odernn.notes import bptt, dynamics, four_ways, probes

    train, test = small_linear_sets
    duffing = odernn.simulate_trajectories(odernn.load_spec("duffing-test").with_overrides(
        n=4, n_steps=100))
    esn, _ = odernn.fit(train, model="esn", units=20)
    series = odernn.simulate_trajectories(odernn.load_spec("sine").with_overrides(n_steps=100))
    sine, _ = odernn.fit(series, model="esn", units=20, target="next-value", val=series)
    with pytest.raises(SpecError, match="step_factors must be positive"):
        WorkPrecisionSettings(step_factors=(0.0,))
    small = bptt.RNNParams.random(1, 40, 1)
    monkeypatch.setenv(budget.ENV, "1M")
    refused = [
        (lambda: plan_sweep(test, ResonanceSettings(n_omega=10**9)), "n_omega = 1000000000"),
        (lambda: plan_sweep(test, ResonanceSettings(omegas=(1e-6,), max_steps=10**9)),
         "resonance: 2 drives x"),
        (lambda: plan_response(duffing, ResonanceSettings(max_steps=10**9)), "resonance:"),
        (lambda: plan_bifurcation(duffing, BifurcationSettings(n_amplitudes=10**9)),
         "bifurcation:"),
        (lambda: esn.rollout(np.zeros(4000), np.zeros(4000), np.zeros((4000, 100)),
                             np.full(4000, 0.2)), "closed loop: 4000 trajectories x 100"),
        (lambda: esn.stepper(np.zeros(10**5), np.zeros(10**5), np.full(10**5, 0.2)),
         "closed loop: 100000 trajectories x 1"),
        (lambda: sine.rollout(np.zeros(1), n_steps=10**10), "closed loop: 1 trajectories"),
        (lambda: dynamics.random_weights(10**6, 1.0), "random_weights"),
        (lambda: dynamics.run_autonomous(np.eye(2), np.zeros(2), 10**9), "run_autonomous"),
        (lambda: four_ways.long_range_data(n_steps=10**9), "long_range_data"),
        (lambda: probes.rnn_params(1, 10**5), "rnn_params"),
        # an audit of the API, 7 December 2026: a MemoryError of 7.3 TiB, one of 30 GiB,
        # and 1.6 GB under a budget of 512 MiB
        (lambda: bptt.RNNParams.random(1, 10**6, 1), "RNNParams.random: 1 x 1000000 x 1"),
        (lambda: four_ways.linear_window_nmse(*four_ways.long_range_data(4, 2, 20), 10**9),
         "linear_window_nmse: window 1000000000"),
        (lambda: bptt.jacobian_products(small, bptt.forward(small, np.ones((300, 1)))),
         "jacobian_products: 1 sequences x 300 steps, hidden 40"),
    ]
    for call, needle in refused:
        with pytest.raises(budget.BudgetError) as caught:
            call()
        assert needle in str(caught.value) and "\n" not in str(caught.value)
    quick = {"resonance": False, "chaos": False, "bifurcation": False, "progress": False}
    with pytest.raises(budget.BudgetError,  # its finest grid counted with the rest, up front
                       match=r"evaluate: \d+ methods .* no work-precision study"):
        odernn.evaluate(test, {}, work_precision=WorkPrecisionSettings(step_factors=(1e-9,)),
                        **quick)
    monkeypatch.setenv(budget.ENV, "100K")  # what evaluate holds, checked before it runs
    with pytest.raises(budget.BudgetError, match=r"evaluate: \d+ methods x 6 trajectories"):
        odernn.evaluate(test, {}, work_precision=False, **quick)


def test_an_ensembles_rollout_counts_the_members_rollouts_it_keeps(monkeypatch,
                                                                   small_linear_sets):
    """A review's: the members' own rollouts, kept together with the joint loop's, were never
    counted (each member's loop was checked alone); a member's one-step prediction, which
    lives one step, was counted for every step (a large ensemble was refused at twice what
    it takes)."""
    import odernn
    from odernn.learn.models import stepper
    from odernn.learn.models.ensemble import Ensemble

    train, test = small_linear_sets
    group = Ensemble({f"seed-{s}": odernn.fit(train, model="esn", units=20, seed=s)[0]
                      for s in range(3)})
    needs = []
    monkeypatch.setattr(stepper.budget, "check", lambda what, need, hint: needs.append(need))
    args = (test.x[:, 0], test.v[:, 0], test.F, test.params)
    group.rollout(*args, members=False)
    alone = needs[0]
    needs.clear()
    group.rollout(*args, members=True)
    assert needs[0] - alone == 16 * 3 * test.n * test.n_steps  # x and v of each member's
    needs.clear()
    group.members["seed-0"].rollout(*args)
    assert needs[0] > alone - 2**20 and needs[0] < alone  # members cost only hidden states


def test_a_simulations_block_is_budgeted_at_the_rows_it_holds_and_names_what_to_reduce(
        monkeypatch):
    """One trajectory is checked as one row, not a whole block of them; the hint names the
    forcing's harmonics where they take most of the block, else the steps."""
    from odernn.data.simulate import block_size, check_memory
    from odernn.data.spec import load_spec
    from odernn.data.spec_settings import with_settings

    one = load_spec("train").with_overrides(n=1, n_steps=100_000)
    assert block_size(one) > 1
    need = budget.simulation_bytes(1, one.n_steps, one.K, "scipy")
    monkeypatch.setenv(budget.ENV, str(2 * need))  # one row fits, a block of them would not
    assert budget.simulation_bytes(block_size(one), one.n_steps, one.K, "scipy") > 2 * need
    check_memory(one)
    monkeypatch.setenv(budget.ENV, str(need // 2))
    with pytest.raises(budget.BudgetError, match=r"one integration block of 1 trajectory; "
                       r"reduce n_steps"):
        check_memory(one)
    harmonics = with_settings(load_spec("train").with_overrides(n=1, n_steps=20),
                              sets={"family": "random", "K": 500})
    monkeypatch.setenv(budget.ENV, "100000")  # 300 kB, nearly all of it the harmonics'
    with pytest.raises(budget.BudgetError, match="forcing K = 500.*reduce forcing.K"):
        check_memory(harmonics)


def test_the_budget_is_the_smaller_of_the_cap_and_half_the_available(monkeypatch):
    monkeypatch.delenv(budget.ENV, raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr(budget, "available_memory", lambda: 2 << 30)
    assert budget.memory_budget()[0] == 1 << 30
    monkeypatch.setattr(budget, "available_memory", lambda: 64 << 30)
    assert budget.memory_budget()[0] == 4 << 30
    monkeypatch.setattr(budget, "available_memory", lambda: None)
    assert budget.memory_budget()[0] == 4 << 30


def test_available_memory_is_in_bytes():
    got = budget.available_memory()
    assert got is None or got > 64 << 20  # kB read as bytes would be ~1000x too small


def test_local_world_size_zero_is_one_process_and_shared_by_is_undone(monkeypatch):
    monkeypatch.setenv(budget.ENV, "8G")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "0")
    assert budget.memory_budget()[0] == 8 << 30
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    with budget.shared_by(4):
        assert budget.memory_budget()[0] == 2 << 30
    assert budget.processes() == 1


@pytest.mark.parametrize("text", ["0", "-1G", "lots", "nanG", "", "0.5", "0.99B"])
def test_parse_size_refuses(text):
    with pytest.raises(SpecError, match="expected a size"):
        budget.parse_size(text)


def test_a_budget_set_empty_is_refused_not_taken_for_the_default(monkeypatch):
    """``ODERNN_MEMORY_BUDGET=`` (a typo, or a script's unset variable) silently meant the
    default; ``0.5`` meant 0 bytes (refused above)."""
    monkeypatch.setenv(budget.ENV, "")
    with pytest.raises(SpecError, match="ODERNN_MEMORY_BUDGET='': expected a size"):
        budget.memory_budget()


@pytest.mark.parametrize("failure", [
    MemoryError("Unable to allocate 7.45 GiB for an array with shape (10, 10)"),
    RuntimeError("Unable to allocate 7.45 GiB: [enforce fail at alloc_cpu.cpp:121] . "
                 "DefaultCPUAllocator: can't allocate memory: you tried to allocate 8000000000 "
                 "bytes. Error code 12 (Cannot allocate memory)")], ids=["numpy", "torch"])
def test_an_allocation_that_fails_ends_in_one_line_that_names_the_budget(monkeypatch, capsys,
                                                                          tmp_path, failure):
    """A budget above what the machine has was taken without a word, and the allocation that
    then failed ended in numpy's traceback. The command line says it in one line, exit 2, and
    names the machine's memory when the budget is more."""
    from odernn.cli.app import main

    total = budget.total_memory()
    monkeypatch.setenv(budget.ENV, str(2 * total))

    def fail(*args, **kwargs):  # numpy's MemoryError, or torch's RuntimeError
        raise failure

    main(["simulate", "--help"])  # the command's module imported, to patch what it calls
    monkeypatch.setattr("odernn.cli.simulate.load_spec", fail)
    capsys.readouterr()
    code = main(["simulate", "train", "-o", str(tmp_path / "o.h5")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: out of memory (Unable to allocate 7.45 GiB") and \
        f"more than this machine's {budget.size(total)}: lower it" in err[0], err


def test_check_refuses_just_over_the_budget(monkeypatch):
    monkeypatch.setenv(budget.ENV, "1M")
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    budget.check("x", 1 << 20, "reduce x")
    with pytest.raises(budget.BudgetError):
        budget.check("x", (1 << 20) + 1, "reduce x")



def _harmonic_spec(n: int, K: int, n_steps: int = 20):
    """``n`` trajectories of the linear oscillator under ``K`` random harmonics (exact)."""
    from odernn.data.spec import load_spec

    return load_spec("random-forcing").with_overrides(n=n, n_steps=n_steps, K=K,
                                                      integrator="exact")


@pytest.mark.parametrize("uniform", [True, False])
def test_the_closed_forms_tables_are_within_their_estimate(uniform):
    """:func:`budget.exact_bytes` against the peak that the closed form allocates beside its
    output (tracemalloc sees numpy's arrays), on a uniform grid and point by point (in blocks
    of 64 points: fewer points take less): within a factor of two under it, so that the
    estimate neither refuses what fits by much nor lets pass what does not."""
    import tracemalloc

    from odernn.data.exact import exact
    from odernn.data.forcing import HarmonicForcing
    from odernn.data.systems import Oscillator

    rng = np.random.default_rng(0)
    for n, K, steps in ((8, 2000, 100), (64, 300, 400), (500, 20, 1000)):
        forcing = HarmonicForcing(*(rng.uniform(0.1, 1.0, (n, K)) for _ in range(3)))
        system = Oscillator.of("oscillator", {"eta": rng.uniform(0.1, 0.5, n)}, forcing)
        grid = (0.05 * np.arange(steps) if uniform
                else np.cumsum(rng.uniform(0.04, 0.06, steps)))
        exact(system, np.zeros(n), np.zeros(n), grid[:8])  # numba's start-up, not counted
        tracemalloc.start()
        try:
            exact(system, np.zeros(n), np.zeros(n), grid)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        tables = peak - 2 * n * steps * 8
        estimate = budget.exact_bytes(n, K, uniform)
        assert estimate / 2 < tables <= estimate, (n, K, steps, tables, estimate)


def test_harmonics_a_file_declares_are_budgeted_before_the_closed_form_runs(
        monkeypatch, tmp_path, capsys):
    """A test set whose forcing has many harmonics (a file can declare any number) made
    evaluate's closed-form reference allocate its tables unchecked: 13.7 GB under a budget
    of 512 MiB for a 400 KB file of 2 x 10^6 harmonics. The closed form checks its tables
    itself, and evaluate counts them up front with the rest (the API, the command line, the
    demo given the file), before any work."""
    import odernn
    from odernn.cli.app import main
    from odernn.data.exact import exact
    from odernn.data.simulate import simulate
    from odernn.data.store import read_trajectories

    path = tmp_path / "many.h5"
    simulate(_harmonic_spec(4, 2000), path)
    test = read_trajectories(path)
    monkeypatch.setenv(budget.ENV, "4M")  # the arrays fit; 2000 harmonics' tables do not
    with pytest.raises(budget.BudgetError, match="closed-form solution: 2000 forcing harmonics"):
        exact(test.oscillator(), test.x[:, 0], test.v[:, 0], test.t)
    quick = {"resonance": False, "chaos": False, "bifurcation": False, "progress": False,
             "work_precision": False}
    with pytest.raises(budget.BudgetError, match="4 trajectories x 20 steps, forcing K = 2000"):
        odernn.evaluate(test, {}, **quick)
    assert main(["evaluate", "--data", str(path), "-o", str(tmp_path / "report"), "-q",
                 "--no-work-precision"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: evaluate: ") and "forcing K = 2000" in err
    assert "\n" not in err and not (tmp_path / "report").exists()
    assert main(["demo", "--quick", "--data", str(path), "--test", str(path), "--models",
                 "esn", "-o", str(tmp_path / "demo"), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert "forcing K = 2000" in err and not (tmp_path / "demo").exists()
