"""`odernn demo` end to end at a reduced size: every stage, a report, reruns and refusals."""

from __future__ import annotations

import importlib
import json

from odernn.cli.app import main
from odernn.errors import OutputError


def test_quick_demo_runs_end_to_end_and_reruns(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "-o", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    report = out / "report"
    assert (report / "report.html").stat().st_size > 10_000
    metrics = json.loads((report / "metrics.json").read_text())
    methods = metrics["methods"]
    assert {"exact", "rk4", "rnn", "lstm", "gru", "esn"} <= set(methods)
    for family in ("rnn", "lstm", "gru", "esn"):  # three seeds each by default
        assert sorted(p.name for p in (out / "runs" / family).glob("seed-*")) == \
            ["seed-0", "seed-1", "seed-2"]
        assert (out / "runs" / family / "seed-2" / "config.json").exists()
        assert metrics["methods"][family]["seeds"]["n"] == 3
        assert family in printed
    stages = json.loads((out / "stages.json").read_text())
    assert {"simulate", "train lstm", "evaluate", "report"} <= set(stages)
    assert "Demo budget" in (report / "report.html").read_text()
    # a second demo replaces the first one's directory, with --overwrite
    assert main(["demo", "--quick", "-o", str(out), "--quiet", "--models", "esn"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "runs" / "lstm").exists()
    assert main(["demo", "--quick", "-o", str(out), "--quiet", "--models", "esn",
                 "--overwrite"]) == 0
    assert not (out / "runs" / "lstm").exists()


def test_demo_refuses_a_directory_it_did_not_make(tmp_path, capsys):
    (tmp_path / "precious.txt").write_text("keep")
    assert main(["demo", "--quick", "-o", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--overwrite" in err
    assert (tmp_path / "precious.txt").read_text() == "keep"


def test_demo_rejects_an_unknown_family(tmp_path, capsys):
    assert main(["demo", "--quick", "-o", str(tmp_path / "d"), "--models", "lstm,tcn"]) == 2
    assert "tcn" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_preset_demo_writes_a_side_by_side_report(tmp_path, capsys):
    out = tmp_path / "sine"
    assert main(["demo", "--preset", "sine", "--quick", "-o", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "variant=faithful" in printed and "variant=improved" in printed
    html = (out / "report" / "report.html").read_text()
    assert "faithful" in html and "improved" in html
    presets = json.loads((out / "report" / "presets.json").read_text())
    assert [row["variant"] for row in presets] == ["faithful", "improved", "baseline: zero"]
    capsys.readouterr()
    assert main(["demo", "--preset", "sinus", "-o", str(tmp_path / "x")]) == 2
    assert "--preset 'sinus' unknown (did you mean 'sine'?)" in capsys.readouterr().err


def test_a_failed_demo_leaves_the_previous_one(tmp_path, capsys, monkeypatch):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--models", "esn", "-o", str(out), "--quiet"]) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def fail(*args, **kwargs):
        raise OutputError("the disk went away")

    evaluate_module = importlib.import_module("odernn.assess.evaluate")

    monkeypatch.setattr(evaluate_module, "evaluate", fail)
    assert main(["demo", "--quick", "--models", "esn", "-o", str(out), "--quiet",
                 "--overwrite"]) == 2
    assert "the disk went away" in capsys.readouterr().err
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]  # no copy left beside it


def test_the_quick_demo_shrinks_the_evaluation_sweeps(tmp_path):
    """--quick runs every stage, the frequency response and the bifurcation diagram of a
    system without a closed form included, on the few drives of QUICK_SWEEPS (their full
    size took a minute, most of the quick run)."""
    from odernn.demo import QUICK_SWEEPS

    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--system", "duffing", "--models", "esn", "-o", str(out),
                 "--quiet"]) == 0
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    response, diagram = metrics["resonance"], metrics["bifurcation"]
    assert response["kind"] == "frequency-response"
    n_omega = QUICK_SWEEPS["resonance"]["n_omega"]
    assert response["n_drives"] == 2 * len(response["levels"]) * n_omega  # up and down
    assert len(diagram["amplitudes"]) == QUICK_SWEEPS["bifurcation"]["n_amplitudes"]
