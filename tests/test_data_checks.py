"""One validation path for data files: inspect, train and evaluate refuse the same
inconsistent files with the same line (exit 2, nothing written)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from odernn.cli.app import main
from odernn.data.simulate import simulate
from odernn.data.spec import load_spec


def shift_time(f: h5py.File) -> None:  # t moved, F and the parameters left as they were
    f["t"][...] = f["t"][()] + 1000.0


def uneven_grid(f: h5py.File) -> None:  # t[1] - t[0] right, a later step wrong
    t = f["t"][()]
    t[500:] += 0.3 * f.attrs["dt"]
    f["t"][...] = t


def negative_eta(f: h5py.File) -> None:
    eta = f["params/eta"][()]
    eta[3] = -0.2
    f["params/eta"][...] = eta


def foreign_kind(f: h5py.File) -> None:
    f.attrs["kind"] = "pendulum"


def series_kind(f: h5py.File) -> None:
    f.attrs["kind"] = "series"


def changed_forcing(f: h5py.File) -> None:  # one sample edited by hand
    F = f["F"][()]
    F[2, 100] += 1e-3
    f["F"][...] = F


CASES = {
    "shifted-time": (shift_time, "forcing parameters give"),
    "uneven-grid": (uneven_grid, "time grid is not uniform: t[500] - t[499]"),
    "negative-eta": (negative_eta, "params/eta[3] = -0.2"),
    "foreign-kind": (foreign_kind, "attribute 'kind' is 'pendulum'"),
    "series-kind": (series_kind, "attribute 'kind' is 'series' but the file holds x, v and F"),
    "changed-forcing": (changed_forcing, "F[2, 100]"),
}


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("checks")
    simulate(load_spec("test").with_overrides(n=6, n_steps=1000, integrator="exact"),
             root / "good.h5")
    assert main(["train", str(root / "good.h5"), "-m", "esn", "--units", "30", "-o",
                 str(root / "run"), "-q"]) == 0
    return root


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", ["inspect", "train", "evaluate"])
def test_every_reader_refuses_an_inconsistent_file_alike(good, tmp_path, capsys, case, command):
    corrupt, needle = CASES[case]
    bad = tmp_path / "bad.h5"
    shutil.copy(good / "good.h5", bad)
    with h5py.File(bad, "r+") as f:
        corrupt(f)
    out = tmp_path / "out"
    args = {"inspect": ["inspect", str(bad)],
            "train": ["train", str(bad), "-m", "esn", "--units", "30", "-o", str(out), "-q"],
            "evaluate": ["evaluate", str(good / "run"), "--data", str(bad), "-o", str(out),
                         "-q"]}[command]
    capsys.readouterr()
    assert main(args) == 2
    printed = capsys.readouterr()
    err = printed.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err
    assert not out.exists()
    assert printed.out == ""  # inspect printed 7 lines of its report before the error


def test_a_grid_far_from_zero_is_uniform_to_its_rounding(good, tmp_path, capsys):
    """t starting at 1e6 with F made from its parameters at those times is a valid file."""
    path = tmp_path / "late.h5"
    shutil.copy(good / "good.h5", path)
    with h5py.File(path, "r+") as f:
        t = 1e6 + f.attrs["dt"] * np.arange(f["t"].shape[0])
        f["t"][...] = t
        F0, omega, phase = (f[f"params/{k}"][()][:, None] for k in ("F0", "omega", "phase"))
        f["F"][...] = F0 * np.cos(omega * t + phase)
    assert main(["inspect", str(path)]) == 0, capsys.readouterr().err


def test_data_too_large_to_normalise_is_refused_up_front(good, tmp_path, capsys):
    path = tmp_path / "huge.h5"
    shutil.copy(good / "good.h5", path)
    with h5py.File(path, "r+") as f:
        f["v"][...] = f["v"][()] * 1e200
    capsys.readouterr()
    assert main(["train", str(path), "-m", "esn", "--units", "30", "-o", str(tmp_path / "r"),
                 "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "rescale the data" in err[0], err


def test_overflow_inside_an_integrator_is_one_line_without_warnings(tmp_path):
    spec = tmp_path / "stiff.toml"
    spec.write_text("seed = 1\nn = 3\nn_steps = 50\ndt = 0.05\n[parameters]\neta = 1e300\n"
                    "x0 = 1.0\nv0 = 0.0\n[forcing]\nfamily = 'cosine'\nF0 = 1.0\nomega = 1.0\n")
    for integrator in ("rk4", "scipy"):  # a real process: pytest would catch the warnings
        run = subprocess.run([sys.executable, "-m", "odernn", "simulate", str(spec), "-o",
                              str(tmp_path / f"{integrator}.h5"), "--integrator", integrator,
                              "-q"], capture_output=True, text=True)
        err = run.stderr.strip().splitlines()
        assert run.returncode == 2 and len(err) == 1 and err[0].startswith("error: "), err
        assert {"rk4": "dataset 'x' gets non-finite values",
                "scipy": "solve_ivp (DOP853"}[integrator] in err[0], err


def test_a_run_whose_every_validation_diverged_is_not_reported_ok(good, tmp_path, capsys):
    run = tmp_path / "r"
    code = main(["train", str(good / "good.h5"), "-m", "gru", "--hidden", "4", "--epochs", "2",
                 "--lr", "1e10", "-o", str(run), "-q"])
    out = capsys.readouterr().out
    assert code == 1 and out.startswith("diverged:") and "lower lr" in out, out
