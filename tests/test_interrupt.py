"""SIGINT and SIGTERM during a real `odernn simulate` leave the previous output or nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def start_simulate(out: Path, *extra: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "odernn", "simulate", "train", "-o", str(out), "--n", "40000",
            "--integrator", "rk4", "--quiet", *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_temp_file(directory: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.name.startswith(".") and ".tmp" in p.name for p in directory.iterdir()):
            return
        if proc.poll() is not None:
            pytest.fail(f"simulate ended before it was interrupted: {proc.stderr.read()}")
        time.sleep(0.02)
    pytest.fail("no temporary file appeared")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_simulate_leaves_nothing(tmp_path, sig):
    out = tmp_path / "data.h5"
    proc = start_simulate(out)
    wait_for_temp_file(tmp_path, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_interrupted_overwrite_keeps_the_previous_file(tmp_path):
    out = tmp_path / "data.h5"  # an odernn dataset: --overwrite may replace it
    subprocess.run([sys.executable, "-m", "odernn", "simulate", "sine", "-o", str(out), "-q"],
                   check=True)
    before = out.read_bytes()
    proc = start_simulate(out, "--overwrite")
    wait_for_temp_file(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["data.h5"]


def _train_args(data: Path, run: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "odernn", "train", str(data), "-o", str(run), "--model", "gru",
            "--hidden", "8", "--epochs", "6", "--set", "window=20", "--set", "horizon=10",
            "--set", "horizon_start=5", "--set", "batch_size=16", "--quiet", *extra]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_training_resumes_to_the_uninterrupted_result(tmp_path, sig):
    import torch

    data = tmp_path / "train.h5"
    subprocess.run([sys.executable, "-m", "odernn", "simulate", "train", "-o", str(data), "--n",
                    "24", "--integrator", "exact", "--quiet"], check=True)
    whole = tmp_path / "whole"
    subprocess.run(_train_args(data, whole), check=True, capture_output=True)

    run = tmp_path / "run"
    proc = subprocess.Popen(_train_args(data, run), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "last.pt").exists():  # written at the end of the first epoch
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    resumed = subprocess.run(_train_args(data, run, "--resume"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    a = torch.load(whole / "best.pt", weights_only=True)["state_dict"]
    b = torch.load(run / "best.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def evaluation_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    odernn = [sys.executable, "-m", "odernn"]
    subprocess.run([*odernn, "simulate", "test", "-o", str(root / "test.h5"), "--quiet"],
                   check=True)
    subprocess.run([*odernn, "train", str(root / "test.h5"), "-o", str(root / "run"), "--model",
                    "esn", "--units", "50", "--quiet"], check=True, capture_output=True)
    return root


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*")
            if p.is_file()}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("previous", [False, True], ids=["new", "overwrite"])
def test_interrupted_evaluate_keeps_the_previous_report_or_writes_nothing(
        evaluation_inputs, tmp_path, sig, previous):
    root = evaluation_inputs
    out = tmp_path / "report"
    args = [sys.executable, "-m", "odernn", "evaluate", str(root / "run"), "--data",
            str(root / "test.h5"), "-o", str(out)]
    if previous:
        subprocess.run([*args, "--no-work-precision", "--no-resonance", "--quiet"], check=True,
                       capture_output=True)
        before = snapshot(out)
    proc = subprocess.Popen([*args, "--overwrite"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()  # the first stage's line: the rollouts have begun
    assert first.startswith("evaluate: "), first + proc.stderr.read()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    if previous:
        assert snapshot(out) == before
        assert [p.name for p in tmp_path.iterdir()] == ["report"]
    else:
        assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("delay", [0.1, 0.2, 0.3, 0.5])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_the_command_starts_exits_130_with_one_line(tmp_path, sig, delay):
    """Before odernn's work begins (imports, option checks): exit 130, one line, nothing written
    (the interpreter's own first ~50 ms, before any odernn code runs, are Python's)."""
    proc = start_simulate(tmp_path / "data.h5")
    time.sleep(delay)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert list(tmp_path.iterdir()) == []
    if proc.returncode == -sig or "init_import_site" in err:  # still in the interpreter's
        return  # own start-up (a loaded machine stretches it), before odernn runs a line
    assert proc.returncode == 130, err
    assert len(err.strip().splitlines()) == 1 and "interrupted" in err, err


def test_a_swallowed_interrupt_still_ends_the_command_at_its_first_check(tmp_path, monkeypatch,
                                                                          capsys):
    """A KeyboardInterrupt raised where an extension's import swallows it (Cython's patching of
    numpy.random's classes lost one signal in ten 0.1 s after start) leaves the request noted
    (odernn.interrupt.REQUESTED): the simulation stops at its first check, exit 130, nothing
    written; the next command in the same process starts afresh."""
    from odernn import interrupt
    from odernn.cli.app import main
    from odernn.data import simulate as sim

    checked = sim.check_memory

    def swallowed(spec):  # the handler ran, its exception was lost: only the note remains
        interrupt.REQUESTED.set()
        checked(spec)

    monkeypatch.setattr(sim, "check_memory", swallowed)
    out = tmp_path / "data.h5"
    args = ["simulate", "train", "-o", str(out), "--n", "5000", "--integrator", "rk4",
            "--quiet"]
    assert main(args) == 130
    assert list(tmp_path.iterdir()) == [] and not interrupt.REQUESTED.is_set()
    assert "interrupted" in capsys.readouterr().err
    monkeypatch.setattr(sim, "check_memory", checked)
    assert main(args) == 0 and out.exists()


def test_a_signal_while_the_file_is_made_ends_before_the_first_block(tmp_path, monkeypatch,
                                                                       capsys):
    """A SIGTERM after the interrupt guard is set but before a block starts (the file being
    made, its time grid written) ends the run at once: a block of one long trajectory can
    take minutes, and is not started (CI's run once sent it there, and waited the block out)."""
    import os

    from odernn.cli.app import main
    from odernn.data import simulate as sim

    grid, started = sim.time_grid, []

    def grid_then_signal(spec):  # the writer's time grid: inside the guard, before any block
        os.kill(os.getpid(), signal.SIGTERM)
        return grid(spec)

    monkeypatch.setattr(sim, "time_grid", grid_then_signal)
    monkeypatch.setattr(sim, "simulate_block", lambda *a: started.append(a) or pytest.fail())
    out = tmp_path / "data.h5"
    assert main(["simulate", "train", "-o", str(out), "--n", "50", "--quiet"]) == 130
    assert started == [] and list(tmp_path.iterdir()) == []
    assert "interrupted" in capsys.readouterr().err
