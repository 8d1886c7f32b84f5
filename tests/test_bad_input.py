"""The bad-input matrix: every command, every kind of bad input a user can give. Each gets one
clear line naming the problem, exit code 2, no traceback, and nothing is written or changed."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from test_cli import SPEC  # a small spec: 6 trajectories x 40 steps

from odernn.cli.app import MAX_MESSAGE, main
from odernn.learn.checkpoint import read_checkpoint


def rewrite(src: Path, dst: Path, *, rows=slice(None), cols=slice(None), attrs=None,
            arrays=None) -> Path:
    """A copy of an odernn file with rows/time points sliced, attributes or arrays replaced."""
    with h5py.File(src, "r") as a, h5py.File(dst, "w") as b:
        b.attrs.update(dict(a.attrs))
        for name in ("x", "v", "F"):
            if name in a:
                b[name] = a[name][rows, cols]
        b["t"] = a["t"][cols]
        for name, d in a["params"].items():
            b[f"params/{name}"] = d[rows]
        b.attrs["n_trajectories"], b.attrs["n_steps"] = b["x"].shape
        b.attrs.update(attrs or {})
        for name, value in (arrays or {}).items():
            del b[name]
            b[name] = value
    return dst


def ok(args: list[str]) -> None:
    assert main([str(a) for a in args]) == 0, args


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    data = root / "train.h5"
    ok(["simulate", "train", "-o", data, "--n", "12", "--integrator", "exact", "-q"])
    other_dt = root / "other-dt.h5"
    ok(["simulate", "test", "-o", other_dt, "--n", "4", "--integrator", "exact", "--set",
        "dt=0.1", "-q"])  # a consistent file on another grid (one edited was not: its F)
    spec = root / "tiny.toml"
    spec.write_text(SPEC)
    run = root / "run"
    ok(["train", data, "-o", run, "--model", "esn", "--units", "30", "--quiet"])
    ok(["train", data, "-o", root / "group", "--model", "esn", "--units", "30", "--seeds", "2",
        "--quiet"])
    (root / "bad_group").mkdir()
    (root / "bad_group" / "seeds.json").write_text("{not json")
    blind = root / "blind"  # withholds eta: needs 100 observed steps before it predicts
    ok(["train", data, "-o", blind, "--model", "esn", "--units", "30", "--no-eta", "--warmup",
        "100", "--quiet"])
    fixed_eta = root / "fixed-eta.h5"  # eta 0.2 throughout: not an input of a model trained on it
    ok(["simulate", "train", "-o", fixed_eta, "--n", "12", "--integrator", "exact", "--set",
        "eta=0.2", "-q"])
    fixed_run = root / "fixed-run"
    ok(["train", fixed_eta, "-o", fixed_run, "--model", "esn", "--units", "30", "--quiet"])
    parts = [root / f"part{k}.h5" for k in (1, 2)]  # two of three shards (a block is 4096)
    for k, part in enumerate(parts, start=1):
        ok(["simulate", spec, "-o", part, "--n", "8200", "--shard", f"{k}/3", "-q"])
    x = h5py.File(data, "r")["x"][...]
    truncated = root / "truncated.h5"
    truncated.write_bytes(data.read_bytes()[: os.path.getsize(data) // 2])
    text = root / "notes.txt"
    text.write_text("not hdf5")
    bad_toml = root / "bad.toml"
    bad_toml.write_text("epochs = [")
    deep_toml = root / "deep.toml"  # tomllib recurses once per level
    deep_toml.write_text("epochs = " + "[" * 1000 + "]" * 1000 + "\n")
    deep_spec = root / "deep-spec.toml"
    deep_spec.write_text(SPEC + "description = " + "[" * 1000 + "]" * 1000 + "\n")
    neg_dt = root / "neg-dt.toml"
    neg_dt.write_text(SPEC.replace("dt = 0.05", "dt = -0.05"))
    unknown_key = root / "unknown-key.toml"
    unknown_key.write_text(SPEC.replace("n = 6", "nn = 6"))
    no_schema = root / "no-schema.h5"
    with h5py.File(no_schema, "w") as f:
        f["x"] = x
    matlab = root / "log.mat"  # MATLAB's -v7.3: HDF5 after a user block of 512 bytes
    with h5py.File(matlab, "w", userblock_size=512) as f:
        f["x"] = x
    series = root / "sine.h5"
    ok(["simulate", "sine", "-o", series, "-q"])
    existing = root / "keep.h5"
    existing.write_bytes(b"keep me")
    foreign_dir = root / "photos"
    foreign_dir.mkdir()
    (foreign_dir / "holiday.jpg").write_bytes(b"jpeg")
    checkpoint = (run / "best.pt").read_bytes()
    bad_runs = {name: root / name for name in ("cut_run", "text_run", "future_run", "shape_run")}
    for path in bad_runs.values():
        path.mkdir()
    (bad_runs["cut_run"] / "best.pt").write_bytes(checkpoint[:3000])
    (bad_runs["cut_run"] / "last.pt").write_bytes(checkpoint[:3000])
    (bad_runs["text_run"] / "best.pt").write_text("not a checkpoint")
    record = read_checkpoint(run / "best.pt")
    torch.save({**record, "format_version": 99}, bad_runs["future_run"] / "best.pt")
    key = next(iter(record["state_dict"]))
    record["state_dict"][key] = record["state_dict"][key][:1]
    torch.save(record, bad_runs["shape_run"] / "best.pt")
    made = {
        "nan": rewrite(data, root / "nan.h5", arrays={"x": np.where(x == x[3, 10], np.nan, x)}),
        "inf": rewrite(data, root / "inf.h5", arrays={"x": np.where(x == x[2, 5], np.inf, x)}),
        "version": rewrite(data, root / "version.h5", attrs={"schema_version": 99}),
        "shape": rewrite(data, root / "shape.h5", arrays={"v": np.zeros((12, 999))}),
        "dtype": rewrite(data, root / "dtype.h5", arrays={"x": x.astype(np.int32)}),
        "empty": rewrite(data, root / "empty.h5", rows=slice(0, 0)),
        "one_point": rewrite(data, root / "one-point.h5", cols=slice(0, 1)),
        "short": rewrite(data, root / "short.h5", cols=slice(0, 30)),
        "huge_name": rewrite(data, root / "huge-name.h5", attrs={"system": "q" * 10**6}),
    }
    return {"data": data, "other_dt": other_dt, "run": run, "blind": blind, "spec": spec,
            "fixed_eta": fixed_eta, "fixed_run": fixed_run,
            "part1": parts[0], "part2": parts[1], "truncated": truncated, "text": text,
            "bad_toml": bad_toml, "deep_toml": deep_toml, "deep_spec": deep_spec,
            "neg_dt": neg_dt, "unknown_key": unknown_key,
            "no_schema": no_schema, "matlab": matlab, "series": series, "existing": existing,
            "foreign_dir": foreign_dir, "root": root, **made, **bad_runs}


# the kinds of bad file every command that reads a dataset refuses
BAD_FILES = [
    ("{root}/missing.h5", "does not exist"),
    ("{text}", "not an HDF5 file"),
    ("{truncated}", "truncated or corrupt"),
    ("{no_schema}", "not an odernn trajectory file"),
    ("{version}", "schema_version is 99"),
    ("{nan}", "non-finite"),
    ("{inf}", "non-finite"),
    ("{shape}", "shape (12, 999)"),
    ("{dtype}", "dtype int32"),
    ("{empty}", "is empty (0 trajectories)"),
    ("{one_point}", "no step"),
]

CASES = [
    # simulate
    (["simulate", "trian", "-o", "{root}/o.h5"], "did you mean 'train'"),
    (["simulate", "{root}/missing.toml", "-o", "{root}/o.h5"], "not found"),
    (["simulate", "{data}", "-o", "{root}/o.h5"], "is an HDF5 file (a dataset?), not a spec"),
    (["train", "{data}", "-o", "{root}/o", "--config", "{data}"], "is an HDF5 file (a dataset"),
    (["simulate", "{matlab}", "-o", "{root}/o.h5"], "is an HDF5 file (a dataset?), not a spec"),
    (["simulate", "{bad_toml}", "-o", "{root}/o.h5"], "malformed TOML"),
    (["simulate", "{deep_spec}", "-o", "{root}/o.h5"], "nested too deeply"),
    (["inspect", "{huge_name}"], "characters left out) ... qqq"),  # and the end, the advice
    (["simulate", "{spec}", "-o", "{root}/o.h5", "--config", "{deep_toml}"], "nested too deeply"),
    (["train", "{data}", "-o", "{root}/o", "--config", "{deep_toml}"], "nested too deeply"),
    (["simulate", "{spec}", "-o", "{root}/o.h5", "--set", "x0=" + "[" * 5000 + "]" * 5000],
     "nested too deeply"),
    (["train", "{data}", "-o", "{root}/o", "--set", "head=" + "[" * 5000 + "]" * 5000],
     "nested too deeply"),
    (["simulate", "{neg_dt}", "-o", "{root}/o.h5"], "dt must be > 0"),
    (["simulate", "{unknown_key}", "-o", "{root}/o.h5"], "did you mean 'n'"),
    (["simulate", "{spec}", "-o", "{root}/o.h5", "--integrator", "rk5"], "did you mean 'rk4'"),
    (["simulate", "{spec}", "-o", "{root}/o.h5", "--n", "0"], "n must be >= 1, got 0"),
    (["simulate", "{spec}", "-o", "{root}/o.h5", "--dtype", "float16"], "float16"),
    (["simulate", "{spec}", "-o", "{root}/o.h5", "--n", "abc"], "'--n'"),
    (["simulate", "{spec}", "-o", "{root}/o.h5", "--seed", "-1"], "seed must be >= 0, got -1"),
    (["simulate", "{spec}", "-o", "{root}/o.h5", "--seed", str(2**70)],
     "seed must be an integer in"),
    (["simulate", "{spec}", "-o", "{existing}"], "--overwrite"),
    (["simulate", "{spec}", "-o", "{root}/no-dir/o.h5"], "does not exist"),
    (["simulate", "{spec}", "-o", "{root}/o.h5", "--shard", "3/2"], "--shard"),
    (["simulate", "{spec}", "-o", "{root}/o.h5", "--shard", "1/0"], "--shard"),
    (["simulate", "{spec}", "-o", "{root}/o.h5", "--bogus"], "No such option"),
    (["simulate", "{spec}", "-o", "{root}/o.h5", "--config", "{bad_toml}"], "malformed TOML"),
    (["simulat"], "Did you mean 'simulate'"),
    # inspect
    *[(["inspect", bad], needle) for bad, needle in BAD_FILES if bad not in ("{nan}", "{inf}")],
    (["inspect", "{root}"], "is a directory"),
    # merge
    (["merge", "{part1}", "-o", "{root}/o.h5"], "missing"),
    (["merge", "{part1}", "{part1}", "-o", "{root}/o.h5"], "again"),
    (["merge", "{part1}", "{data}", "-o", "{root}/o.h5"], "not a shard"),
    (["merge", "{part1}", "{text}", "-o", "{root}/o.h5"], "not an HDF5 file"),
    (["merge", "{part1}", "{root}/missing.h5", "-o", "{root}/o.h5"], "does not exist"),
    (["merge", "{part1}", "{part2}", "-o", "{existing}"], "--overwrite"),
    (["merge", "{part1}", "{part2}", "-o", "{part1}", "--overwrite"],
     "is also an input of this command"),
    (["merge", "-o", "{root}/o.h5"], "Missing argument"),
    # train
    *[(["train", bad, "-o", "{root}/o"], needle) for bad, needle in BAD_FILES],
    (["train", "{data}", "-o", "{root}/o", "--val", "{nan}"], "non-finite"),
    (["train", "{data}", "-o", "{root}/o", "--val", "{other_dt}"],
     "validation data has dt = 0.1; the model was built for dt = 0.05"),
    (["train", "{fixed_eta}", "-o", "{root}/o", "--val", "{data}"], "eta fixed at 0.2"),
    (["train", "{short}", "-o", "{root}/o", "--model", "gru", "--set", "window=40"],
     "need at least 41"),
    (["train", "{data}", "-o", "{root}/o", "--model", "tcn"], "tcn"),
    (["train", "{data}", "-o", "{root}/o", "--set", "lerning_rate=1"], "lerning_rate"),
    (["train", "{data}", "-o", "{root}/o", "--set", "epoch=3"], "did you mean 'epochs'"),
    (["train", "{data}", "-o", "{root}/o", "--set", "epochs"], "KEY=VALUE"),
    (["train", "{data}", "-o", "{root}/o", "--lr", "0.1", "--set", "lr=0.2"], "both set lr"),
    (["train", "{data}", "-o", "{root}/o", "--no-eta", "--set", "use_eta=true"],
     "use_eta = true contradicts withhold"),
    (["train", "{data}", "-o", "{root}/o", "--set", "lr=0.1", "--set", "lr=0.2"], "twice"),
    (["train", "{data}", "-o", "{root}/o", "--model", "rnn", "--set", "lr=1e39"],
     "float32's largest"),  # finite in float64, not in the optimiser's float32
    (["train", "{data}", "-o", "{root}/o", "--model", "rnn", "--set", "weight_decay=-1e300"],
     "float32's largest"),
    (["train", "{data}", "-o", "{root}/o", "--prior", "dufing"], "did you mean 'duffing'"),
    (["train", "{data}", "-o", "{root}/o", "--prior", "duffing", "--prior-set", "bta=1"],
     "no parameter 'bta' (did you mean 'beta'?)"),
    (["train", "{data}", "-o", "{root}/o", "--prior", "linear", "--prior-set", "eta=-1"],
     "eta = -1.0 is outside its valid range"),
    (["train", "{data}", "-o", "{root}/o", "--prior", "duffing", "--prior-set", "beta"],
     "--prior-set expects KEY=VALUE"),
    (["train", "{data}", "-o", "{root}/o", "--prior", "duffing"],
     "the prior duffing needs alpha: give --prior-set alpha=VALUE"),
    (["train", "{data}", "-o", "{root}/o", "--prior", "linear", "--target", "velocity"],
     "needs target 'state'"),
    (["train", "{data}", "-o", "{root}/o", "--prior-set", "eta=0.2"], "--prior SYSTEM"),
    (["train", "{data}", "-o", "{root}/o", "--epochs", "-1"], "epochs"),
    (["train", "{data}", "-o", "{root}/o", "--window", "0"], "window must be > 0"),
    (["train", "{data}", "-o", "{root}/o", "--horizon", "-1"], "horizon"),
    (["train", "{data}", "-o", "{root}/o", "--lr", "nan"], "lr"),
    (["train", "{data}", "-o", "{root}/o", "--optimizer", "adagrad"], "adagrad"),
    (["train", "{data}", "-o", "{root}/o", "--optimizer", "hf", "--horizon", "10"], "hf"),
    (["train", "{data}", "-o", "{root}/o", "--target", "acceleration"], "acceleration"),
    (["train", "{data}", "-o", "{root}/o", "--model", "rnn", "--set", "init=xavier"], "xavier"),
    (["train", "{data}", "-o", "{root}/o", "--model", "rnn", "--set", "activation=gelu"],
     "gelu"),
    (["train", "{data}", "-o", "{root}/o", "--hidden", "0"], "hidden"),
    (["train", "{data}", "-o", "{root}/o", "--config", "{bad_toml}"], "malformed TOML"),
    (["train", "{data}", "-o", "{root}/o", "--model", "esn", "--set", "epochs=3"], "epochs"),
    (["train", "{data}", "-o", "{root}/o", "--model", "esn", "--units", "30", "--set",
      "spectral_radius=1e39"], "float32's largest"),  # else saved, and refused as corrupt
    (["train", "{data}", "-o", "{root}/o", "--model", "esn", "--units", "30", "--set",
      "input_scaling=1e39"], "float32's largest"),
    (["train", "{data}", "-o", "{run}"], "already holds config.json"),
    (["train", "{data}", "-o", "{root}/fresh", "--resume"], "cannot resume"),
    (["train", "{data}", "-o", "{cut_run}", "--model", "esn", "--resume"], "not a readable"),
    (["train", "{data}", "-o", "{root}/o", "--device", "tpu"], "tpu"),
    (["train", "{data}", "-o", "{root}/o", "--seed", "-1"], "seed must be an integer in"),
    (["train", "{data}", "-o", "{root}/o", "--nproc", "0"], "--nproc must be >= 1, got 0"),
    (["train", "{data}", "-o", "{root}/o", "--nproc", str(len(os.sched_getaffinity(0)) + 1)],
     "CPUs this command may use"),  # 12 on 2 cores took 4.7 GB before any training
    (["train", "{data}", "-o", "{root}/o", "--val", "{data}", "--set", "val_fraction=0.5"],
     "with --val they are all trained on"),  # val_fraction was dropped silently
    (["train", "{data}", "-o", "{root}/o", "--seeds", "0"], "(--seeds) must be a whole number"),
    (["train", "{data}", "-o", "{root}/o", "--seeds", "2", "--nproc", "2"],
     "--seeds and --nproc together"),
    (["train", "{data}", "-o", "{run}", "--seeds", "2"], "not empty and not a seed group"),
    (["export", "{root}/group", "-o", "{root}/m.onnx"], "is a seed group"),
    (["train", "{data}", "-o", "{root}/bad_group", "--seeds", "2", "--resume"],
     "not readable as a seed group"),
    (["evaluate", "{root}/bad_group", "--data", "{data}", "-o", "{root}/r"],
     "not readable as a seed group"),
    (["train", "{root}/missing.h5", "-o", "{root}/o", "--nproc", "2"], "does not exist"),
    (["train", "{data}", "-o", "{run}", "--nproc", "2"], "already holds"),
    (["train", "{data}", "-o", "{root}/o", "--model", "tcn", "--nproc", "2"], "tcn"),
    # evaluate
    *[(["evaluate", "{run}", "--data", bad, "-o", "{root}/r"], needle)
      for bad, needle in BAD_FILES],
    (["evaluate", "{root}/no-run", "--data", "{data}", "-o", "{root}/r"], "no-run"),
    (["evaluate", "{cut_run}", "--data", "{data}", "-o", "{root}/r"], "not a readable"),
    (["evaluate", "{text_run}", "--data", "{data}", "-o", "{root}/r"], "not a readable"),
    (["evaluate", "{future_run}", "--data", "{data}", "-o", "{root}/r"], "format 99"),
    (["evaluate", "{shape_run}", "--data", "{data}", "-o", "{root}/r"], "size mismatch"),
    (["gradients", "-o", "{root}/g", "--run", "{cut_run}"], "not a readable"),
    (["evaluate", "{root}", "--data", "{data}", "-o", "{root}/r"], "best.pt"),
    (["evaluate", "{run}", "--data", "{other_dt}", "-o", "{root}/r"],
     "has dt = 0.1; the model was built for dt = 0.05"),
    (["evaluate", "{run}", "--data", "{series}", "-o", "{root}/r"],
     "is a univariate series"),
    (["evaluate", "{blind}", "--data", "{short}", "-o", "{root}/r"], "warm"),
    (["evaluate", "{fixed_run}", "--data", "{data}", "-o", "{root}/r"], "eta fixed at 0.2"),
    (["evaluate", "{run}", "--data", "{data}", "-o", "{root}/nowhere/r"], "nowhere"),
    (["evaluate", "{run}", "--data", "{data}", "-o", "{data}"], "train.h5"),
    (["evaluate", "{run}", "--data", "{data}", "-o", "{foreign_dir}", "--overwrite"],
     "is not an odernn report"),
    # gradients
    (["gradients", "-o", "{root}/g", "--model", "tcn"], "tcn"),
    (["gradients", "-o", "{root}/g", "--model", "rnn", "--spectral-radius", ",".join(["1"] * 33)],
     "--spectral-radius takes at most 32 values (a network and a curve each), got 33"),
    (["gradients", "-o", "{root}/g", "--model", "esn"], "esn"),
    (["gradients", "-o", "{root}/g", "--hidden", "0"], "--hidden"),
    (["gradients", "-o", "{root}/g", "--length", "0"], "--length"),
    (["gradients", "-o", "{root}/g", "--sequences", "0"], "--sequences"),
    (["gradients", "-o", "{root}/g", "--spectral-radius", "big"], "big"),
    (["gradients", "-o", "{root}/g", "--spectral-radius", "-1"], "--spectral-radius"),
    (["gradients", "-o", "{root}/g", "--spectral-radius", "inf"], "--spectral-radius"),
    (["gradients", "-o", "{root}/g", "--input-scale", "0"], "--input-scale"),
    (["gradients", "-o", "{root}/g", "--input-scale", "inf"], "--input-scale"),
    (["gradients", "-o", "{root}/g", "--seed", "-1"], "--seed"),
    (["gradients", "-o", "{root}/g", "--model", "lstm", "--spectral-radius", "0.9"], "rnn"),
    (["gradients", "-o", "{root}/g", "--model", "rnn", "--forget-bias", "1"], "lstm"),
    (["gradients", "-o", "{root}/g", "--loss", "mean"], "mean"),
    (["gradients", "-o", "{root}/g", "--norm", "nuclear"], "nuclear"),
    (["gradients", "-o", "{root}/g", "--init", "xavier"], "xavier"),
    *[(["gradients", "-o", "{root}/g", "--model", "rnn", "--data", bad], needle)
      for bad, needle in BAD_FILES],
    (["gradients", "-o", "{root}/g", "--model", "rnn", "--data", "{short}"],
     "--length 200 needs at least 201"),
    (["gradients", "-o", "{root}/g", "--run", "{root}/no-run"], "no-run"),
    (["gradients", "-o", "{root}/g", "--run", "{run}"],
     "not trained by backpropagation through time"),
    (["gradients", "-o", "{foreign_dir}", "--overwrite"],
     "holds more than gradients.json and gradients.png"),
    (["gradients", "-o", "{existing}"], "keep.h5"),
    (["gradients", "-o", "{root}/no-dir/g"], "does not exist"),
    # demo
    (["demo", "-o", "{root}/d", "--models", "lstm,tcn"], "tcn"),
    (["demo", "-o", "{root}/d", "--models", ""], "--models"),
    (["demo", "-o", "{root}/d", "--n-train", "0"], "--n-train"),
    (["demo", "-o", "{root}/d", "--epochs", "0"], "epochs"),
    (["demo", "-o", "{root}/d", "--device", "tpu"], "tpu"),
    (["demo", "-o", "{root}/d", "--preset", "cosine"], "cosine"),
    (["demo", "-o", "{root}/d", "--models", "esn", "--seeds", "1", "--n-test", "100000"],
     "smaller test set (--n-test"),  # before it simulates and trains, not after
    (["demo", "-o", "{root}/d", "--preset", "sine", "--epochs", "3"], "--epochs"),
    (["demo", "-o", "{root}/d", "--preset", "sine", "--seed", "-1"], "--seed"),
    (["demo", "-o", "{root}/d", "--seed", "3"], "--preset"),
    (["demo", "-o", "{root}/d", "--preset", "sine", "--seeds", "2"], "--seeds applies to"),
    (["demo", "-o", "{foreign_dir}"], "photos"),
    (["demo", "-o", "."], "a directory of its own"),
    (["demo", "-o", "{existing}"], "keep.h5"),
    (["demo", "-o", "{root}/no-dir/d"], "does not exist"),
]


def case_id(args: list[str]) -> str:
    words = (a.replace("{", "").replace("}", "") for a in args)
    return " ".join(w if len(w) <= 40 else f"{w[:20]}...({len(w)} characters)" for w in words)


@pytest.mark.parametrize(("args", "needle"), CASES, ids=[case_id(c[0]) for c in CASES])
def test_bad_input_fails_cleanly(files, capsys, args, needle):
    fails_cleanly(files, capsys, args, needle)


def fails_cleanly(files, capsys, args, needle):
    """``odernn ARGS`` (``{name}`` filled from ``files``) exits 2 with one ``error:`` line
    holding ``needle``, and nothing under ``files["root"]`` appears or changes."""
    root = files["root"]

    def snapshot():
        return {str(p): p.stat().st_mtime_ns for p in root.rglob("*")}

    before = snapshot()
    code = main([a.format(**{k: str(v) for k, v in files.items()}) for a in args])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert needle in lines[0], lines[0]
    assert len(lines[0]) <= MAX_MESSAGE + 100, lines[0][:200]  # a value quoted is shortened
    assert snapshot() == before


@pytest.mark.parametrize("args", [["simulate", "trian", "-o", "x.h5"],  # a spec: odernn's own
                                  ["simulate", "train", "--n", "many", "-o", "x.h5"]])  # click's
def test_debug_prints_the_traceback_and_keeps_the_exit_code(args, tmp_path, capsys,
                                                            monkeypatch):
    """``--debug`` shows the traceback of bad input, then the same one line; the exit code
    stays 2 (it re-raised: Python's 1)."""
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    plain = capsys.readouterr().err.strip().splitlines()
    assert main([*args, "--debug"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and err.strip().splitlines()[-1] == plain[-1]
    assert list(tmp_path.iterdir()) == []
