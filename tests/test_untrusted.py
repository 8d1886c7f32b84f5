"""Untrusted files: a checkpoint crafted to run code when unpickled is refused, and runs nothing."""

from __future__ import annotations

import os
import pickle
import tarfile

import pytest
import torch

from odernn.cli.app import main
from odernn.errors import DataError
from odernn.learn.checkpoint import check_safe_loading
from odernn.learn.models import load_surrogate


class _Payload:
    """Unpickling this calls os.system: what a malicious checkpoint would do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# torch warns that a plain pickle uses another protocol than torch.save: expected here
@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_code_executing_checkpoint_is_refused_without_running(tmp_path, how):
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    run.mkdir()
    record = {"format": "odernn.checkpoint", "format_version": 1, "family": "lstm",
              "args": _Payload(str(marker))}
    with open(run / "best.pt", "wb") as f:
        if how == "pickle":
            pickle.dump(record, f)
        else:
            torch.save(record, f)
    with pytest.raises(DataError, match="not a readable odernn checkpoint"):
        load_surrogate(run)
    assert not marker.exists()


def test_evaluate_refuses_it_with_one_line(tmp_path, capsys):
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"format": "odernn.checkpoint", "x": _Payload(str(marker))}, run / "best.pt")
    data = tmp_path / "test.h5"
    assert main(["simulate", "test", "-o", str(data), "--n", "2", "--integrator", "exact",
                 "-q"]) == 0
    code = main(["evaluate", str(run), "--data", str(data), "-o", str(tmp_path / "report")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "best.pt is not a readable odernn checkpoint" in err, err
    assert not marker.exists() and not (tmp_path / "report").exists()



@pytest.mark.parametrize("version", ["2.2.0", "2.5.1+cu121", "1.13.1"])
def test_a_torch_with_a_known_weights_only_bypass_loads_nothing(version, tmp_path, monkeypatch):
    path = tmp_path / "best.pt"
    torch.save({"format": "odernn.checkpoint"}, path)
    monkeypatch.setattr(torch, "__version__", version)
    with pytest.raises(DataError, match="CVE-2025-32434"):
        load_surrogate(path)


@pytest.mark.parametrize("version", ["2.6.0", "2.13.0+cpu", "2.10.1+cu128"])
def test_safe_torch_versions_pass(version):
    check_safe_loading(version)


@pytest.mark.parametrize("content", [bytes(100), bytes(4096), b'{"a": 1}\n',
                                     b"\x89PNG\r\n\x1a\n" + bytes(64), "tar"])
def test_a_corrupt_checkpoint_is_unreadable_not_forged_and_no_unsafe_load_is_advised(
        tmp_path, content):
    """torch's UnpicklingError for any such file advised re-running torch.load with
    weights_only=False, and odernn called a zeroed file left by a crash 'forged'."""
    run = tmp_path / "run"
    run.mkdir()
    if content == "tar":  # torch's message for a tar file quoted its advice past 500 bytes
        with tarfile.open(run / "best.pt", "w") as tar:
            tar.add(__file__, arcname="x")
    else:
        (run / "best.pt").write_bytes(content)
    with pytest.raises(DataError, match="not a readable odernn checkpoint") as caught:
        load_surrogate(run)
    assert "weights_only" not in str(caught.value) and "forged" not in str(caught.value)


def test_a_pickle_bomb_is_refused_by_the_budget_before_it_is_unpickled(tmp_path, monkeypatch):
    """A 20 kB checkpoint whose compressed pickle is 20 MB of ``}``: every byte an empty
    dict, 1.9 GB of them, made under any budget before torch's load refused the result."""
    import zipfile

    from odernn import budget
    from odernn.learn.checkpoint import read_checkpoint

    path = tmp_path / "best.pt"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02](" + b"}" * 20_000_000 + b"e.")
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")
    assert path.stat().st_size < 50_000
    monkeypatch.setenv(budget.ENV, "512M")
    with pytest.raises(budget.BudgetError, match="needs ~4.81 GiB.*unpickling its records"):
        read_checkpoint(path)


def test_a_checkpoint_in_torchs_legacy_format_is_refused_unloaded(tmp_path, monkeypatch):
    """torch.load(weights_only=True) unpickles torch's legacy (non-zip) format too, and a
    plain pickle of 2 MB of ``}`` took 135 MB beside a budget that counted 4 MB. odernn
    writes zip archives only: anything else is refused before torch reads it."""
    from odernn.learn.checkpoint import read_checkpoint

    path = tmp_path / "best.pt"
    path.write_bytes(b"\x80\x02](" + b"}" * 2_000_000 + b"e.")
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))
    with pytest.raises(DataError, match="not a readable odernn checkpoint .not a torch archive"):
        read_checkpoint(path)
