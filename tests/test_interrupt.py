"""SIGINT and SIGTERM during a real `odernn simulate` leave the previous output or nothing."""

from __future__ import annotations

import os
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


def test_one_sigterm_ends_an_evaluation_inside_an_integrators_long_run(tmp_path):
    """A batch scheduler sends one SIGTERM, then SIGKILL: an integrator's long run (SciPy on a
    drive of omega 1e4, about 4,000 evaluations per output step and 15 s here; one of 1e10
    is now refused by the cap on them, MAX_EVALUATIONS) went on until its end, the signal
    seen only after it."""
    data = tmp_path / "fast.h5"
    subprocess.run([sys.executable, "-m", "odernn", "simulate", "train", "-o", str(data),
                    "--n", "4", "--n-steps", "200", "--set", "omega=1e4", "--integrator",
                    "exact", "-q"], check=True)
    proc = subprocess.Popen([sys.executable, "-m", "odernn", "evaluate", "-d", str(data), "-o",
                             str(tmp_path / "report"), "-q", "--no-work-precision",
                             "--no-resonance", "--no-chaos", "--no-bifurcation"],
                            stderr=subprocess.PIPE, text=True)
    time.sleep(8)  # started, loaded, and inside SciPy's run
    assert proc.poll() is None
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and time.monotonic() - sent < 30, err
    assert "interrupted" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fast.h5"]


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
    for name, seed in (("train", 1), ("test", 2)):  # held-out test data: no in-sample note
        subprocess.run([*odernn, "simulate", "test", "-o", str(root / f"{name}.h5"), "--seed",
                        str(seed), "--quiet"], check=True)
    subprocess.run([*odernn, "train", str(root / "train.h5"), "-o", str(root / "run"),
                    "--model", "esn", "--units", "50", "--quiet"], check=True,
                   capture_output=True)
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


def test_a_signal_a_guard_never_looked_at_is_raised_again_when_it_ends():
    """A guard defers SIGINT and SIGTERM; one that came after the block's last look at the
    flag is not lost: it reaches the handler outside when the block ends (Python's: a
    KeyboardInterrupt; an enclosing guard's: its flag). One the block saw is its own."""
    import os

    from odernn.interrupt import interrupt_guard

    with pytest.raises(KeyboardInterrupt), interrupt_guard():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # the handler has run: the flag is set, nobody looks
    with interrupt_guard() as interrupted:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        assert interrupted()  # seen: the block acts on it, nothing is raised again
    with interrupt_guard() as outer:
        with interrupt_guard():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
        assert outer()


def _signal_once(monkeypatch, module, name: str, after: bool = False) -> None:
    """Send SIGTERM to this process at the first call of ``module.name`` (before it runs, or
    ``after``)."""
    import os

    original, sent = getattr(module, name), []

    def wrapped(*args, **kwargs):
        if not sent and not after:
            sent.append(os.kill(os.getpid(), signal.SIGTERM))
        out = original(*args, **kwargs)
        if not sent and after:
            sent.append(os.kill(os.getpid(), signal.SIGTERM))
        return out

    monkeypatch.setattr(module, name, wrapped)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    from odernn.cli.app import main

    path = tmp_path_factory.mktemp("signals") / "small.h5"
    assert main(["simulate", "train", "-o", str(path), "--n", "40", "--n-steps", "200",
                 "--quiet"]) == 0
    return path


TINY = ["--hidden", "8", "--epochs", "2", "--batch-size", "16", "--window", "20",
        "--horizon", "0", "--quiet"]


def test_a_signal_during_the_last_block_of_a_read_ends_the_command(small_set, tmp_path,
                                                                    monkeypatch, capsys):
    """SIGTERM while the training data's last (here only) block is checked: before, the
    reader's guard had looked at its flag for the last time and the signal was lost: the
    whole training ran and exited 0. Now: exit 130, no run directory."""
    from odernn.cli.app import main
    from odernn.data import store
    from odernn.learn import gradient

    _signal_once(monkeypatch, store, "check_finite")
    monkeypatch.setattr(gradient, "_train_batch", lambda *a, **k: pytest.fail("trained"))
    out = tmp_path / "run"
    assert main(["train", str(small_set), "-o", str(out), "--model", "gru", *TINY]) == 130
    assert not out.exists() and "interrupted" in capsys.readouterr().err


def test_a_signal_during_the_last_validation_stops_a_seed_group(small_set, tmp_path,
                                                                 monkeypatch, capsys):
    """SIGTERM during the first member's last closed-loop validation: it was lost, and the
    next member trained in full (exit 0). Now the first member is complete, the group stops
    there (exit 130) and resumes to the end."""
    from odernn.cli.app import main
    from odernn.learn import gradient

    calls = []
    original = gradient._end_epoch

    def end_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the first member's last epoch (of 2)
            import os

            os.kill(os.getpid(), signal.SIGTERM)
        return original(*args, **kwargs)

    monkeypatch.setattr(gradient, "_end_epoch", end_epoch)
    out = tmp_path / "group"
    args = ["train", str(small_set), "-o", str(out), "--model", "gru", "--seeds", "2", *TINY]
    assert main(args) == 130
    assert len(calls) == 2 and sorted(p.name for p in out.iterdir()) == ["seed-0", "seeds.json"]
    assert {"best.pt", "last.pt"} <= {p.name for p in (out / "seed-0").iterdir()}
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0 and (out / "seed-1" / "best.pt").exists()


def test_a_signal_between_a_reservoirs_two_checkpoints_leaves_both(small_set, tmp_path,
                                                                   monkeypatch):
    """SIGTERM just after the reservoir's best.pt is written: it left best.pt without last.pt,
    a run directory neither a rerun nor --resume accepted. Now both are written, exit 130,
    and --resume finishes it."""
    from odernn.cli.app import main
    from odernn.learn.rundir import RunWriter

    _signal_once(monkeypatch, RunWriter, "save_best", after=True)
    out = tmp_path / "esn"
    args = ["train", str(small_set), "-o", str(out), "--model", "esn", "--units", "40",
            "--quiet"]
    assert main(args) == 130
    assert {"best.pt", "last.pt"} <= {p.name for p in out.iterdir()}
    monkeypatch.undo()
    assert main([*args, "--resume"]) == 0


def test_a_signal_during_the_last_block_write_keeps_the_previous_file(tmp_path, monkeypatch):
    """SIGTERM while the last block is written (the writer's thread, after the loop's last
    look at the flag): the file was completed and installed, exit 0. Now the previous file
    stays, exit 130."""
    from odernn.cli.app import main
    from odernn.data import simulate as sim

    out = tmp_path / "data.h5"
    args = ["simulate", "train", "-o", str(out), "--n", "30", "--n-steps", "50", "--quiet"]
    assert main(args) == 0
    before = out.read_bytes()
    _signal_once(monkeypatch, sim, "_write")
    assert main([*args, "--seed", "7", "--overwrite"]) == 130
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "data.h5"]


def test_a_signal_in_the_middle_of_an_install_waits_for_the_swap(tmp_path, monkeypatch):
    """SIGTERM just after the previous output was set aside (``odernn gradients --overwrite``
    installs without a guard of its own): it left the output's path empty and the previous
    output under a hidden name. Now the swap finishes, then the signal ends the command. The
    swap by three renames, where the system has no renameat2 (with it, one exchange)."""
    import ctypes.util
    import os

    from odernn import atomic, interrupt

    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)

    new, target = tmp_path / "new", tmp_path / "out"
    for path, text in ((new, "new"), (target, "old")):
        path.mkdir()
        (path / "f").write_text(text)
    real, calls = os.replace, []

    def replace(a, b):
        real(a, b)
        calls.append(b)
        if len(calls) == 1:  # the previous output has just been set aside
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(atomic.os, "replace", replace)
    previous = signal.signal(signal.SIGTERM, interrupt.raise_interrupt)  # the command line's
    try:
        with pytest.raises(KeyboardInterrupt):
            atomic.install_dir(new, target)
    finally:
        signal.signal(signal.SIGTERM, previous)
        interrupt.REQUESTED.clear()
    assert (target / "f").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_signal_in_the_work_precision_sweep_stops_it_at_the_next_setting(monkeypatch):
    """The sweep times every integrator at every step size (as long as the main table
    again); a signal in it waited for all of them. Now it stops before the next setting."""
    import os

    import odernn
    from odernn.assess import work_precision
    from odernn.assess.evaluate import evaluate

    test = odernn.simulate_trajectories(odernn.load_spec("test").with_overrides(
        n=8, n_steps=400))
    real, calls = work_precision.timed, []

    def timed(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(work_precision, "timed", timed)
    with pytest.raises(KeyboardInterrupt):
        evaluate(test, {}, resonance=False, chaos=False, bifurcation=False, progress=False)
    assert len(calls) == 1


def test_an_interrupt_python_could_not_raise_prints_no_traceback():
    """A signal whose handler runs inside a weakref callback of the import machinery (CI saw
    ``_get_module_lock.<locals>.cb``) or a finaliser: Python cannot raise its
    KeyboardInterrupt and printed "Exception ignored ... Traceback" beside the command's one
    line. The request itself is kept (``REQUESTED``); other such errors are still shown."""
    child = """
import gc
from odernn.cli.entry import quiet_lost_interrupts
import sys
sys.unraisablehook = quiet_lost_interrupts

class Raises:
    def __init__(self, exc):
        self.exc = exc
    def __del__(self):
        raise self.exc

Raises(KeyboardInterrupt())
Raises(ValueError("shown"))
gc.collect()
from odernn.interrupt import REQUESTED
REQUESTED.set()  # once interrupted: an object cut short fails in its finaliser (llvmlite's)
Raises(AttributeError("_as_parameter_"))
gc.collect()
"""
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "KeyboardInterrupt" not in done.stderr and "_as_parameter_" not in done.stderr
    assert "ValueError: shown" in done.stderr


@pytest.mark.parametrize("interrupted", [True, False])
def test_an_interrupt_wrapped_while_the_commands_are_imported_is_one_line(interrupted):
    """A signal while numpy's class bodies ran (the command modules' imports, before the
    command's own handling) came wrapped, "RuntimeError: Error calling __set_name__", and
    printed its traceback with exit 1 (seen once in a fresh-clone CI run:
    ``test_a_signal_while_the_command_starts_exits_130_with_one_line[SIGINT-0.1]``). It is
    the interrupt: exit 130 and one line. Another RuntimeError stays an error."""
    child = f"""
import odernn.cli.app as app
from odernn import interrupt

def commands():
    if {interrupted}:
        interrupt.REQUESTED.set()
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as exc:
        raise RuntimeError("Error calling __set_name__ on 'cached_property'") from exc

app.main = commands
from odernn.cli.entry import main
main()
"""
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                          timeout=60)
    if interrupted:
        assert done.returncode == 130, done.stderr
        assert done.stderr.strip().splitlines() == ["interrupted before the command started"]
    else:
        assert done.returncode == 1 and "RuntimeError: Error calling" in done.stderr


def test_an_interrupted_run_of_several_processes_says_so_once(monkeypatch, tmp_path, capsys):
    """Among torchrun's processes rank 0 alone says it; under ``odernn train --nproc``
    (SAID_ENV) the first to speak alone, and the command itself where none did."""
    from odernn import interrupt

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    interrupt.say_interrupted("rank 1")
    monkeypatch.setenv("RANK", "0")
    interrupt.say_interrupted("rank 0")
    monkeypatch.setenv(interrupt.SAID_ENV, str(tmp_path / "said"))
    monkeypatch.setenv(interrupt.LAUNCHER_ENV, str(os.getpid()))  # the command is there
    interrupt.say_interrupted("first")
    interrupt.say_interrupted("second")
    assert capsys.readouterr().err.splitlines() == ["rank 0", "first"]
    assert (tmp_path / "said").exists()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    monkeypatch.setenv(interrupt.LAUNCHER_ENV, gone)  # killed: none would remove a marker
    monkeypatch.setenv(interrupt.SAID_ENV, str(tmp_path / "unread"))
    interrupt.say_interrupted("killed")
    assert capsys.readouterr().err.splitlines() == ["killed"]
    assert not (tmp_path / "unread").exists()


def test_a_worker_whose_peer_left_on_an_interrupt_says_interrupted(tmp_path, monkeypatch,
                                                                    capsys):
    """A data-parallel worker in a collective when its peer, reached by the signal first,
    left: gloo's "Connection closed by peer" was printed as a traceback (rank 0's; the
    fresh-clone CI's signal test saw it once). The command marks a signal it passes on, and
    the worker then says the one line; a peer's crash leaves no mark (torchrun stops the
    other workers alike), and the error stays an error."""
    import odernn.data.simulate
    from odernn.cli import app
    from odernn.interrupt import SAID_ENV, signal_marker

    def cut_short(*args, **kwargs):
        raise RuntimeError("[gloo/transport/tcp/pair.cc:553] Connection closed by peer")

    monkeypatch.setattr(odernn.data.simulate, "simulate", cut_short)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv(SAID_ENV, str(tmp_path / "run.said"))
    out = tmp_path / "out"
    out.mkdir()
    args = ["simulate", "train", "-o", str(out / "d.h5"), "-q"]
    with pytest.raises(RuntimeError, match="Connection closed by peer"):
        app.main(args)  # no signal was passed on: a peer crashed
    Path(signal_marker(str(tmp_path / "run.said"))).touch()  # the command passed one on
    capsys.readouterr()
    assert app.main(args) == 130
    err = capsys.readouterr().err
    assert err.startswith("interrupted") and len(err.splitlines()) == 1, err
    assert list(out.iterdir()) == []


def test_guards_restore_the_handlers_they_replaced():
    """Each guard puts back the handlers it replaced, nested too: one left installed would turn
    a later Ctrl-C into a flag nobody reads."""
    from odernn import interrupt

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with interrupt.interrupt_guard() as interrupted:
        guard = {s: signal.getsignal(s) for s in before}
        assert guard != before
        with interrupt.raising_signals(interrupted):
            pass
        assert {s: signal.getsignal(s) for s in before} == guard
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_guard_under_the_command_lines_handler_notes_the_request():
    """Inside a guard of a command, a signal is the command's request (``REQUESTED``), so that
    the finaliser of an object a raised KeyboardInterrupt cut short (llvmlite's, while numba
    compiled) stays quiet; under Python's own handler (the API) nothing is noted."""
    import os

    from odernn import interrupt

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with interrupt.interrupt_guard() as interrupted:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
            assert interrupted() and not interrupt.REQUESTED.is_set()
        signal.signal(signal.SIGINT, interrupt.raise_interrupt)
        with interrupt.interrupt_guard() as interrupted:
            with pytest.raises(KeyboardInterrupt), interrupt.raising_signals(interrupted):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.01)
            assert interrupted() and interrupt.REQUESTED.is_set()
    finally:
        signal.signal(signal.SIGINT, before)
        interrupt.REQUESTED.clear()
