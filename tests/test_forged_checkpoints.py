"""Forged checkpoint records (an audit's, each reproduced first): refused in one line
(DataError) when the model is rebuilt, where before they crashed the process (an echo state
network's sparse indices), built what the file did not hold (an expanded tensor), raised a
traceback from deep inside, or went silently wrong (a zero std, an unknown option)."""

from __future__ import annotations

import math
import shutil
import zipfile

import pytest
import torch
from test_models import oscillator_data, small_config

from odernn.budget import BudgetError
from odernn.errors import DataError, OutputError
from odernn.learn.checkpoint import read_checkpoint, save_checkpoint
from odernn.learn.models import load_surrogate
from odernn.learn.training import train


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    data = oscillator_data(n=12, n_steps=100)
    root = tmp_path_factory.mktemp("forged")
    for family, changes in (("gru", {"epochs": 1}), ("esn", {"units": 50})):
        train(data, small_config(family, **changes), root / family, progress=False)
    return root


def forge(source, target, change) -> None:
    record = read_checkpoint(source)
    change(record)
    save_checkpoint(target, {k: v for k, v in record.items() if k != "format"})


def _set(*keys, value):
    def change(record):
        node = record
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value(node[keys[-1]]) if callable(value) else value
    return change


ESN = [
    ("W_col beyond the units", _set("state_dict", "W_col", value=lambda t: t.clone().fill_(10**9)),
     "reservoir"),
    ("W_col just past them", _set("state_dict", "W_col", value=lambda t: t.clone().fill_(50)),
     "reservoir"),
    ("W_col negative", _set("state_dict", "W_col", value=lambda t: t.clone().fill_(-5)),
     "reservoir"),
    ("W_crow reversed", _set("state_dict", "W_crow", value=lambda t: t.flip(0).contiguous()),
     "reservoir"),
    ("one unit", _set("args", "hparams", "units", value=1),
     r"checkpoint .*esn is inconsistent: esn needs units >= 2"),
    ("W_value not finite", _set("state_dict", "W_value", value=lambda t: t.clone().fill_(math.nan)),
     "reservoir"),
    ("W_in not finite", _set("state_dict", "W_in", value=lambda t: t.clone().fill_(math.inf)),
     "finite input weights"),
    ("b not finite", _set("state_dict", "b", value=lambda t: t.clone().fill_(math.nan)),
     "finite input weights and bias"),
]
GRU = [
    ("an expanded tensor", _set("state_dict", "V", value=lambda t: torch.zeros(1).expand(t.shape)),
     "not stored value by value"),
    ("format_version a string", _set("format_version", value="1"), "format_version"),
    ("a mean that is not a number", _set("args", "stats", "mean", "x", value="abc"), "mean of 'x'"),
    ("the means a list", _set("args", "stats", "mean", value=[1, 2]), "mean is not a mapping"),
    ("a zero std", _set("args", "stats", "std", "x", value=0.0), "std of 'x'"),
    ("a NaN std", _set("args", "stats", "std", "v", value=math.nan), "std of 'v'"),
    ("an infinite std", _set("args", "stats", "std", "v", value=math.inf), "std of 'v'"),
    ("a NaN seed", _set("args", "hparams", "seed", value=math.nan), "inconsistent"),
    ("a huge seed", _set("args", "hparams", "seed", value=2**80), "inconsistent"),
    ("an infinite hidden size", _set("args", "hparams", "hidden", value=math.inf), "inconsistent"),

    ("an option the family lacks", _set("args", "hparams", "output_activation", value="relu"),
     "output_activation it does not have"),
    ("dt a tensor", _set("args", "layout", "dt", value=torch.tensor([0.05, 0.1])), "dt must"),
    ("warmup a fraction", _set("args", "layout", "warmup", value=1.5), "warmup must"),
    # load_state_dict cast these silently (a complex one to its real part, with torch's
    # warning), and non-finite weights gave reports of nothing but diverged rollouts
    ("weights not finite", _set("state_dict", "V", value=lambda t: t.clone().fill_(math.nan)),
     "weights 'V' are not finite"),
    ("weights infinite", _set("state_dict", "c", value=lambda t: t.clone().fill_(math.inf)),
     "weights 'c' are not finite"),
    ("weights complex", _set("state_dict", "V", value=lambda t: t.to(torch.complex64)),
     "weights 'V' are torch.complex64, not torch.float32"),
    ("weights float64", _set("state_dict", "V", value=lambda t: t.double()),
     "weights 'V' are torch.float64"),
    ("weights integers", _set("state_dict", "V", value=lambda t: t.long()),
     "weights 'V' are torch.int64"),
    ("a stat missing", _set("args", "stats", "std", value=lambda s: {"x": 1.0}),
     "inconsistent: it lacks"),
]


@pytest.mark.parametrize("family, what, change, needle",
                         [("esn", *c) for c in ESN] + [("gru", *c) for c in GRU],
                         ids=[c[0] for c in ESN + GRU])
def test_a_forged_checkpoint_is_refused_when_its_model_is_rebuilt(runs, tmp_path, family, what,
                                                                  change, needle):
    run = tmp_path / family
    shutil.copytree(runs / family, run)
    forge(runs / family / "best.pt", run / "best.pt", change)
    with pytest.raises(DataError, match=needle):
        load_surrogate(run)
    load_surrogate(runs / family)  # the honest one loads


def test_a_checkpoint_compressed_small_is_checked_by_what_it_unpacks_to(runs, tmp_path,
                                                                        monkeypatch):
    """torch reads a checkpoint's zip entries compressed too: 64 MiB of zeros in a file of a
    few hundred KiB passed the check of twice the file's size (an audit's 1 GiB in 1 MB
    allocated 1.3 GB under any budget). The zip's directory gives what it unpacks to."""
    run = tmp_path / "gru"
    shutil.copytree(runs / "gru", run)
    forge(runs / "gru" / "best.pt", tmp_path / "stored.pt",
          _set("state_dict", value=lambda d: {**d, "zz": torch.zeros(16 * 2**20)}))
    with zipfile.ZipFile(tmp_path / "stored.pt") as src, \
            zipfile.ZipFile(run / "best.pt", "w", zipfile.ZIP_DEFLATED) as dst:
        for entry in src.infolist():
            dst.writestr(entry.filename, src.read(entry.filename))
    assert (run / "best.pt").stat().st_size < 2**20
    monkeypatch.setenv("ODERNN_MEMORY_BUDGET", "64M")
    # twice the 64 MiB unpacked, and the pickle's 256 bytes a byte
    with pytest.raises(BudgetError, match=r"MiB unpacked\): needs ~129 MiB"):
        read_checkpoint(run / "best.pt")
    read_checkpoint(runs / "gru" / "best.pt")  # the honest one fits


@pytest.mark.parametrize("family", ["gru", "esn"])
def test_a_checkpoint_with_a_flipped_bit_is_refused(runs, tmp_path, family, capsys):
    """One bit flipped in a weight's bytes (a damaged copy or disk): torch does not check the
    CRC-32 its zip stores, and loaded the checkpoint with one wrong weight."""
    source = runs / family / "best.pt"
    with zipfile.ZipFile(source) as archive:
        entry = max(archive.infolist(), key=lambda e: e.file_size)  # the largest tensor
        assert entry.filename.split("/")[-2] == "data" and entry.compress_type == 0
    data = bytearray(source.read_bytes())
    local = entry.header_offset  # the local header: 30 bytes, the name, its own extra field
    start = local + 30 + int.from_bytes(data[local + 26:local + 28], "little") \
        + int.from_bytes(data[local + 28:local + 30], "little")
    data[start + entry.file_size // 2] ^= 0x10
    damaged = tmp_path / f"{family}.pt"
    damaged.write_bytes(bytes(data))
    with pytest.raises(DataError, match=rf"is corrupt: {entry.filename} does not match its"):
        read_checkpoint(damaged)
    read_checkpoint(source)  # the intact file loads
    from odernn.cli.app import main

    assert main(["export", str(damaged), "-o", str(tmp_path / "m.onnx")]) == 2
    assert "is corrupt" in capsys.readouterr().err


def test_run_files_and_members_that_are_links_are_not_followed(runs, tmp_path):
    """A run directory from elsewhere whose config.json links to another file put that
    file's text into the report; a group member that links to a run elsewhere was loaded."""
    from odernn.assess.evaluate import load_runs
    from odernn.learn.seeds import read_group

    secret = tmp_path / "secret.json"
    secret.write_text('{"password": "hunter2"}')
    run = tmp_path / "run"
    shutil.copytree(runs / "gru", run)
    (run / "config.json").unlink()
    (run / "config.json").symlink_to(secret)
    with pytest.raises(DataError, match="config.json is a symbolic link"):
        load_runs({"gru": run})
    group = tmp_path / "group"
    group.mkdir()
    (group / "seeds.json").write_text('{"format": "odernn-seeds", "version": 1, '
                                      '"seeds": [0], "members": ["seed-0"], "done": ["seed-0"]}')
    (group / "seed-0").symlink_to(runs / "gru")
    with pytest.raises(DataError, match="member seed-0 is a symbolic link"):
        read_group(group)
    (group / "seed-0").unlink()
    shutil.copytree(runs / "gru", group / "seed-0")
    assert list(read_group(group)) == ["seed-0"]
    (group / "seeds.json").write_text('{"format": "odernn-seeds", "version": 1, "seeds": [0, 0], '
                                      '"members": ["seed-0", "seed-0"], "done": []}')
    with pytest.raises(DataError, match="not an odernn seed group"):  # one member, twice
        read_group(group)


def test_training_never_writes_through_a_link(tmp_path):
    """train -o LINK wrote its run into the link's target, and --overwrite replaced the link
    by a directory; every other command refused a link."""
    from odernn.learn.rundir import check_run_dir
    from odernn.learn.seeds import check_group

    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    for check in (lambda: check_run_dir(link, False, True),
                  lambda: check_group(link, [0, 1], False, True)):
        with pytest.raises(OutputError, match="is a symbolic link; odernn never writes"):
            check()
    assert list(target.iterdir()) == [] and link.is_symlink()


def test_a_checkpoint_that_is_no_file_is_named_as_such(tmp_path):
    """A FIFO or a device given as a checkpoint was said not to exist."""
    import os

    from odernn.learn.checkpoint import checkpoint_path

    fifo = tmp_path / "best.pt"
    os.mkfifo(fifo)
    for path, what in ((fifo, "is not a regular file"), ("/dev/zero", "is not a regular file"),
                       (tmp_path / "gone.pt", "does not exist")):
        with pytest.raises(DataError, match=f"checkpoint {path} {what}"):
            checkpoint_path(path)


def test_a_run_whose_config_and_checkpoint_are_two_families_is_refused(runs, tmp_path):
    """A directory holding one run's config.json and another's checkpoint was evaluated
    without comment: the report showed the reservoir's options beside the GRU's figures."""
    from odernn.assess.evaluate import load_runs

    run = tmp_path / "mixed"
    shutil.copytree(runs / "gru", run)
    shutil.copy(runs / "esn" / "config.json", run / "config.json")
    with pytest.raises(DataError, match=r"run gru: its config.json is of model esn and its "
                                        r"checkpoint of model gru"):
        load_runs({"gru": run})
    assert set(load_runs({"gru": runs / "gru", "esn": runs / "esn"})) == {"gru", "esn"}
