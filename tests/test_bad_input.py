"""The bad-input matrix for train and evaluate: one clear line, exit code 2, nothing written."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from odernn.cli.app import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    data = root / "train.h5"
    assert main(["simulate", "train", "-o", str(data), "--n", "12", "--integrator", "exact",
                 "-q"]) == 0
    other_dt = root / "other-dt.h5"
    assert main(["simulate", "test", "-o", str(other_dt), "--n", "4", "--integrator", "exact",
                 "-q"]) == 0
    with h5py.File(other_dt, "r+") as f:  # a consistent file on another grid
        f["t"][...] = f["t"][...] * 2
        f.attrs["dt"] = f.attrs["dt"] * 2
    run = root / "run"
    assert main(["train", str(data), "-o", str(run), "--model", "esn", "--units", "30",
                 "--quiet"]) == 0
    nan = root / "nan.h5"
    nan.write_bytes(data.read_bytes())
    with h5py.File(nan, "r+") as f:
        f["x"][3, 10] = np.nan
    truncated = root / "truncated.h5"
    truncated.write_bytes(data.read_bytes()[: os.path.getsize(data) // 2])
    text = root / "notes.txt"
    text.write_text("not hdf5")
    bad_toml = root / "bad.toml"
    bad_toml.write_text("epochs = [")
    series = root / "sine.h5"
    assert main(["simulate", "sine", "-o", str(series), "-q"]) == 0
    return {"data": data, "other_dt": other_dt, "run": run, "nan": nan, "truncated": truncated,
            "text": text, "bad_toml": bad_toml, "series": series, "root": root}


CASES = [
    (["train", "{root}/missing.h5", "-o", "{root}/o"], "missing.h5"),
    (["train", "{text}", "-o", "{root}/o"], "notes.txt"),
    (["train", "{truncated}", "-o", "{root}/o"], "truncated.h5"),
    (["train", "{nan}", "-o", "{root}/o"], "nan.h5"),
    (["train", "{data}", "-o", "{root}/o", "--model", "tcn"], "tcn"),
    (["train", "{data}", "-o", "{root}/o", "--set", "lerning_rate=1"], "lerning_rate"),
    (["train", "{data}", "-o", "{root}/o", "--set", "epoch=3"], "did you mean 'epochs'"),
    (["train", "{data}", "-o", "{root}/o", "--epochs", "-1"], "epochs"),
    (["train", "{data}", "-o", "{root}/o", "--optimizer", "adagrad"], "adagrad"),
    (["train", "{data}", "-o", "{root}/o", "--target", "acceleration"], "acceleration"),
    (["train", "{data}", "-o", "{root}/o", "--config", "{bad_toml}"], "bad.toml"),
    (["train", "{data}", "-o", "{root}/o", "--model", "esn", "--set", "epochs=3"], "epochs"),
    (["train", "{data}", "-o", "{run}"], "run"),
    (["train", "{data}", "-o", "{root}/fresh", "--resume"], "fresh"),
    (["train", "{data}", "-o", "{root}/o", "--device", "tpu"], "tpu"),
    (["evaluate", "{root}/no-run", "--data", "{data}", "-o", "{root}/r"], "no-run"),
    (["evaluate", "{root}", "--data", "{data}", "-o", "{root}/r"], "best.pt"),
    (["evaluate", "{run}", "--data", "{root}/missing.h5", "-o", "{root}/r"], "missing.h5"),
    (["evaluate", "{run}", "--data", "{other_dt}", "-o", "{root}/r"], "dt"),
    (["evaluate", "{run}", "--data", "{series}", "-o", "{root}/r"], "sine.h5"),
    (["evaluate", "{run}", "--data", "{data}", "-o", "{root}/nowhere/r"], "nowhere"),
    (["evaluate", "{run}", "--data", "{data}", "-o", "{data}"], "train.h5"),
]


@pytest.mark.parametrize(("args", "needle"), CASES, ids=[" ".join(c[0][:1] + c[0][3:])
                                                          for c in CASES])
def test_bad_input_fails_cleanly(files, capsys, args, needle):
    root = files["root"]
    before = sorted(str(p) for p in root.rglob("*"))
    code = main([a.format(**files) for a in args])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert needle in lines[0], lines[0]
    assert sorted(str(p) for p in root.rglob("*")) == before
