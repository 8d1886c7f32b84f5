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
    out = tmp_path / "data.h5"
    out.write_bytes(b"previous complete output")
    proc = start_simulate(out, "--overwrite")
    wait_for_temp_file(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert out.read_bytes() == b"previous complete output"
    assert [p.name for p in tmp_path.iterdir()] == ["data.h5"]
