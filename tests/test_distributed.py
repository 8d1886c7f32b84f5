"""Data-parallel training under torchrun: two CPU processes (gloo) give the single process's
weights, for gradient training (GRU) and the reservoir's ridge readout (ESN)."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from odernn.learn.checkpoint import read_checkpoint

GRU = ["--model", "gru", "--hidden", "8", "--epochs", "2", "--batch-size", "8", "--window", "10",
       "--set", "horizon=10", "--set", "start_as_skip=false", "--quiet"]
"""V drawn: started at zero, as by default on a linear system, Adam's first steps follow the
signs of tiny gradients, which the ranks' summation order can flip (tests/test_stream.py)."""
ESN = ["--model", "esn", "--units", "50", "--set", "ridge=1e-4", "--quiet"]


def clean_env() -> dict[str, str]:
    """This environment without a surrounding torchrun's variables."""
    return {k: v for k, v in os.environ.items()
            if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                         "MASTER_PORT")}


def odernn(*args: str, launcher: tuple[str, ...] = ()) -> None:
    done = subprocess.run([sys.executable, *launcher, "-m", "odernn", *args], env=clean_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("dist") / "train.h5"
    odernn("simulate", "train", "-o", str(path), "--n", "16", "--integrator", "exact", "--quiet")
    return path


def weights(run) -> dict[str, torch.Tensor]:
    return read_checkpoint(run / "best.pt")["state_dict"]


def test_two_ranks_train_the_single_process_gru(dataset, tmp_path):
    odernn("train", str(dataset), "-o", str(tmp_path / "one"), *GRU)
    odernn("train", str(dataset), "-o", str(tmp_path / "two"), *GRU,
           launcher=("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"))
    torch.testing.assert_close(weights(tmp_path / "two"), weights(tmp_path / "one"),
                               rtol=1e-4, atol=1e-5)
    one = (tmp_path / "one" / "history.csv").read_text().splitlines()
    two = (tmp_path / "two" / "history.csv").read_text().splitlines()
    assert len(two) == len(one) == 3  # header + 2 epochs, written once (rank 0)
    loss = one[0].split(",").index("loss")
    for a, b in zip(one[1:], two[1:], strict=True):
        assert math.isclose(float(b.split(",")[loss]), float(a.split(",")[loss]), rel_tol=1e-4)
    assert read_checkpoint(tmp_path / "two" / "last.pt")["resume"]["epoch"] == 2


def test_two_ranks_fit_the_single_process_esn_readout(dataset, tmp_path):
    odernn("train", str(dataset), "-o", str(tmp_path / "one"), *ESN)
    odernn("train", str(dataset), "-o", str(tmp_path / "two"), *ESN, "--nproc", "2")
    torch.testing.assert_close(weights(tmp_path / "two"), weights(tmp_path / "one"),
                               rtol=1e-4, atol=1e-5)


def test_nproc_from_python_relaunches_the_command_it_was_given(dataset, tmp_path, monkeypatch):
    """``main([...])`` from a script or a notebook: the workers run that command line, not the
    interpreter's own (which is pytest's here, and held no train command)."""
    from odernn.cli.app import main

    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    odernn("train", str(dataset), "-o", str(tmp_path / "one"), *ESN)
    assert main(["train", str(dataset), "-o", str(tmp_path / "two"), *ESN, "--nproc", "2"]) == 0
    torch.testing.assert_close(weights(tmp_path / "two"), weights(tmp_path / "one"),
                               rtol=1e-4, atol=1e-5)


def test_a_worker_ends_without_the_interpreters_shutdown(dataset, tmp_path):
    """torch's C++ destructors can abort a worker at exit after its work is done (gloo's
    threads; about one run in 40 on 2 busy cores): a worker ends by ``os._exit``. A hook
    that aborts at the interpreter's shutdown stands in for them."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import atexit, os\nif os.environ.get('RANK'):  # a worker\n"
        "    atexit.register(os.abort)\n")
    done = subprocess.run([sys.executable, "-m", "odernn", "train", str(dataset), "-o",
                           str(tmp_path / "run"), *ESN, "--nproc", "2"],
                          env={**clean_env(), "PYTHONPATH": str(hook)}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "best.pt").exists()


def test_interrupted_two_rank_run_resumes_to_the_uninterrupted_result(dataset, tmp_path):
    args = ["--model", "gru", "--hidden", "8", "--epochs", "5", "--batch-size", "16", "--window",
            "20", "--quiet", "--nproc", "2"]
    odernn("train", str(dataset), "-o", str(tmp_path / "whole"), *args)
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "odernn", "train", str(dataset), "-o", str(run),
                             *args], env=clean_env(), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "last.pt").exists():  # written by rank 0 at the end of the first epoch
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)  # as a batch scheduler would: to the launching process
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert read_checkpoint(run / "last.pt")["resume"]["epoch"] < 5
    odernn("train", str(dataset), "-o", str(run), *args, "--resume")
    a, b = weights(tmp_path / "whole"), weights(run)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("delay", [0.3, 1.0, 1.6, 2.0, 2.4, 2.8, 3.4])
def test_a_signal_at_any_moment_of_the_start_is_one_line(dataset, tmp_path, delay):
    """Ctrl-C while the launcher, torchrun or the workers start (each importing torch): exit
    130 and one line, said by whichever of them was there to say it, once (a traceback from
    the launcher's import of torch before; two lines, one per worker, after)."""
    proc = subprocess.Popen([sys.executable, "-m", "odernn", "train", str(dataset), "-o",
                             str(tmp_path / "run"), *GRU[:-1], "--epochs", "200", "--quiet",
                             "--nproc", "2"], env=clean_env(), stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert len(err.splitlines()) == 1 and err.startswith("interrupted"), err


def test_a_killed_command_leaves_nothing_in_the_temporary_directory(dataset, tmp_path):
    """SIGKILL of `odernn train --nproc 2` while its workers train: the workers, made to die
    with it, end interrupted and say so; rank 0 created the 'said' marker that the command,
    gone, never removed (before, a directory odernn-nproc-* was left in any case)."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "odernn", "train", str(dataset), "-o",
                             str(run), *GRU[:-1], "--epochs", "5000", "--nproc", "2"],
                            env={**clean_env(), "TMPDIR": str(temporary)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "last.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (run / "last.pt").exists(), proc.stderr
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 60  # the workers save, say it and end
    while time.monotonic() < deadline and running(str(run)):
        time.sleep(0.2)
    left = [p.name for p in temporary.iterdir() if p.name.startswith("odernn")]
    assert left == [], left


def running(needle: str) -> bool:
    """Whether a process whose command line holds ``needle`` is still there (not a zombie)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            line = (stat.parent / "cmdline").read_bytes()
            state = stat.read_bytes().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if needle.encode() in line and state not in (b"Z", b"X"):
            return True
    return False


class Launcher:
    """A stand-in for the launcher process: a signal reaches the command as it waits, then
    the launcher ends with ``code`` (0: its workers had finished; -15: ended by the SIGTERM
    passed on, still importing torch)."""

    def __init__(self, code: int) -> None:
        self.code, self.sent = code, []

    def __call__(self, *args, **kwargs) -> Launcher:
        return self

    def send_signal(self, signum: int) -> None:
        self.sent.append(signum)

    def wait(self) -> int:
        os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would, while the command waits
        self.temporary = os.listdir(tempfile.gettempdir())  # what a SIGKILL now would leave
        return self.code


@pytest.mark.parametrize(("code", "returned", "said"), [
    (0, 0, ""),  # the workers had finished: exit 0 said "interrupted" before
    (-signal.SIGTERM, 130, "interrupted before the training processes started"),
    (130, 130, "interrupted: "),
])
def test_a_signal_after_the_run_ended_changes_nothing(monkeypatch, capsys, tmp_path, code,
                                                      returned, said):
    """What the command says, given how the launcher ended after a signal reached it: a
    run whose workers finished is not called interrupted; a launcher that the SIGTERM passed
    on ended had started no worker; the handlers are the command's again afterwards."""
    from odernn.cli import common, train

    launcher = Launcher(code)
    monkeypatch.setattr(train.subprocess, "Popen", launcher)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(common, "ARGV", ["train", "data.h5", "--nproc", "2"])  # main's
    before = signal.getsignal(signal.SIGINT)
    assert train._relaunch(2) == returned
    assert launcher.sent == [signal.SIGTERM] and signal.getsignal(signal.SIGINT) is before
    err = capsys.readouterr().err
    assert err.startswith(said) and len(err.splitlines()) == (1 if said else 0), err
    # an empty odernn-nproc-* directory stayed in /tmp when the command was killed (SIGKILL);
    # now only the mark of a signal passed on (for the workers), from the signal to the end
    assert [n.split(".", 1)[1] for n in launcher.temporary] == ["said.signal"]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(("debug", "nproc"), [(False, ["--nproc", "2"]), (True, ["--nproc", "2"]),
                                             (False, ["--nproc=2"])])
def test_the_workers_run_the_command_given_with_its_debug(monkeypatch, tmp_path, debug, nproc):
    """The launcher runs ``odernn [--debug] train ...`` without ``--nproc`` (either form):
    what main() was given, whatever the interpreter's own argv (pytest's here)."""
    from odernn.cli import common, train

    commands = []

    class Recorder(Launcher):
        def __call__(self, command, *args, **kwargs) -> Launcher:
            commands.append(command)
            return self

        def wait(self) -> int:
            return self.code

    monkeypatch.setattr(train.subprocess, "Popen", Recorder(0))
    monkeypatch.setattr(common, "ARGV", ["train", "d.h5", "-o", "run", *nproc, "-q"])
    monkeypatch.setattr(common, "DEBUG", debug)
    assert train._relaunch(2) == 0
    tail = commands[0][commands[0].index("-m"):]
    assert tail == ["-m", "odernn", *(["--debug"] if debug else []), "train", "d.h5", "-o",
                    "run", "-q"]


def too_long(dataset) -> str:
    """A window the dataset's trajectories are too short for (one point short)."""
    from odernn.data.store import read_trajectories

    return str(read_trajectories(dataset).n_steps)


def test_the_workers_share_the_memory_budget(dataset, tmp_path, monkeypatch):
    """Each of --nproc P workers has a P-th of the budget: a reservoir of 100 units (about
    5.5 MiB for its normal equations) fits a budget of 8 MiB, not two workers' 4 MiB each;
    the launcher refuses it in one line before the workers start."""
    from odernn import budget
    from odernn.learn.config import TrainConfig

    monkeypatch.setenv(budget.ENV, "8M")
    TrainConfig.from_dict({"model": "esn", "units": 100})  # one process: within the budget
    done = subprocess.run([sys.executable, "-m", "odernn", "train", str(dataset), "-o",
                           str(tmp_path / "run"), "--model", "esn", "--units", "100",
                           "--quiet", "--nproc", "2"], env={**clean_env(), budget.ENV: "8M"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr
    assert "units = 100" in done.stderr and "memory budget of 4 MiB" in done.stderr
    assert "ODERNN_MEMORY_BUDGET=8M, shared by 2 processes" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_launcher_refuses_streaming_buffers_over_a_workers_share(tmp_path, monkeypatch,
                                                                     capsys):
    """A file streamed under a tight budget: buffers that fit the command's budget but not a
    worker's share are refused by `--nproc` before it starts the workers (the workers
    refused them, after torchrun had started them)."""
    from odernn import budget
    from odernn.cli import train as train_command
    from odernn.cli.app import main
    from odernn.data.filerows import FileRows
    from odernn.learn import stream
    from odernn.learn.config import TrainConfig

    path = tmp_path / "train.h5"
    assert main(["simulate", "train", "-o", str(path), "-q", "--n", "64", "--set",
                 "n_steps=500"]) == 0
    monkeypatch.setenv(budget.ENV, "8M")
    rows = FileRows(path)
    layout = TrainConfig.from_dict({"model": "gru", "hidden": 16}).layout(
        rows.dt, rows.system, stream.layout_params(rows))
    stream.planned_buffers(rows, layout)  # one process: within the budget
    monkeypatch.setattr(train_command, "_relaunch", lambda n: pytest.fail("workers started"))
    assert main(["train", str(path), "--model", "gru", "--hidden", "16", "--epochs", "1",
                 "-o", str(tmp_path / "run"), "--quiet", "--nproc", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: training buffer of") and err.count("\n") == 1, err
    assert "shared by 2 processes" in err and not (tmp_path / "run").exists()


def test_bad_input_is_one_line_from_the_launcher_before_the_workers_start(dataset, tmp_path):
    done = subprocess.run([sys.executable, "-m", "odernn", "train", str(dataset), "-o",
                           str(tmp_path / "run"), "--model", "rnn", "--epochs", "1", "--quiet",
                           "--window", too_long(dataset), "--nproc", "2"], env=clean_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr
    assert done.stderr.startswith("error: trajectories have") and "window" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_error_the_workers_find_is_one_line_from_rank_0(dataset, tmp_path):
    launch = ("-c", "import sys; from odernn.learn.distributed import launch; "
              "launch(sys.argv[1:])", "--standalone", "--nproc_per_node", "2", "-m", "odernn")
    done = subprocess.run([sys.executable, *launch, "train", str(dataset), "-o",
                           str(tmp_path / "run"), "--model", "rnn", "--epochs", "1", "--quiet",
                           "--window", too_long(dataset)], env=clean_env(), capture_output=True,
                          text=True, timeout=120)  # --nproc's torchrun without its checks
    assert done.returncode == 2
    assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr  # no torchrun log
    assert done.stderr.startswith("error: trajectories have")


def processes_mentioning(text: str) -> list[int]:
    """PIDs of live processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                state = (entry / "stat").read_text().split(") ")[-1][:1]
            except OSError:
                continue
            if text in cmdline and state != "Z":
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_launcher_takes_torchrun_and_its_workers_with_it(dataset, tmp_path):
    run = tmp_path / "orphans"
    proc = subprocess.Popen([sys.executable, "-m", "odernn", "train", str(dataset), "-o", str(run),
                             "--model", "gru", "--hidden", "8", "--epochs", "500", "--quiet",
                             "--nproc", "2"], env=clean_env(), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (run / "last.pt").exists():  # the workers are training
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.05)
    assert len(processes_mentioning(str(run))) >= 3  # launcher, torchrun, two workers
    proc.kill()  # SIGKILL: no handler runs in the launcher
    proc.wait()
    deadline = time.monotonic() + 60
    while processes_mentioning(str(run)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_mentioning(str(run)) == []
    assert read_checkpoint(run / "last.pt")["resume"]["epoch"] < 500  # resumable, not finished
