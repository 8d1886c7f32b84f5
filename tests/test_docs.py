"""The documents name tests as proof of their promises: every test named must exist."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from odernn.cli.app import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_test_a_document_names_exists(doc):
    text = doc.read_text(encoding="utf-8")
    current = None
    missing = []
    # `test_file.py::test_name`, or `::test_name` after an earlier file in the same paragraph
    for file, name in re.findall(r"(test_\w+\.py)?::(test_\w+)", text):
        current = file or current
        source = (ROOT / "tests" / current).read_text(encoding="utf-8") if current else ""
        if not re.search(rf"^def {name}\(", source, flags=re.M):
            missing.append(f"{current}::{name}")
    assert not missing, f"{doc.name} names tests that do not exist: {missing}"


def test_the_own_data_walkthrough_runs_as_written(tmp_path, monkeypatch, capsys):
    """docs/own-data.md's Python block writes the CSVs; each line of its ``sh`` blocks is an
    odernn command, run as written; the file's first lines are those the page shows."""
    text = (ROOT / "docs" / "own-data.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(python|sh)\n(.*?)```", text, flags=re.S)
    assert [lang for lang, _ in blocks][:2] == ["python", "sh"]
    monkeypatch.chdir(tmp_path)
    for lang, code in blocks:
        if lang == "python":
            exec(compile(code, "docs/own-data.md", "exec"), {"__name__": "own_data"})
            continue
        for line in code.strip().splitlines():
            args = shlex.split(line)
            assert args[0] == "odernn" and main(args[1:]) == 0, line
    shown = re.search(r"The first lines of `lab-train.csv`:\n\n```text\n(.*?)```", text,
                      flags=re.S).group(1)
    assert (tmp_path / "lab-train.csv").read_text().startswith(shown)
    note = json.loads((tmp_path / "report" / "metrics.json").read_text())["settings"]["note"]
    assert "never replaced by another equation" in note
    assert (tmp_path / "my-demo" / "report" / "report.html").exists()
    assert "lab-train.csv" in capsys.readouterr().out


def test_the_design_names_every_module_where_it_lives():
    """docs/design.md's table of where things live is the map a contributor reads first:
    seven modules had been added without it."""
    table = (ROOT / "docs" / "design.md").read_text(encoding="utf-8").split(
        "## Where things live", 1)[1].split("\n## ", 1)[0]
    rows = {row.split("|")[1].strip().replace("`", ""): row for row in table.splitlines()
            if row.startswith("| `odernn/")}
    missing = []
    for package in ("data", "learn", "learn/models", "assess", "notes", ""):
        folder = ROOT / "odernn" / package
        row = rows["odernn/learn/" if package == "learn/models" else
                   f"odernn/{package}/" if package else "odernn/ (shared)"]
        missing += [f"{package}/{m.name}" for m in sorted(folder.glob("*.py"))
                    if m.name != "__init__.py" and m.name != "__main__.py"
                    and f"`{m.name}`" not in row]
    assert not missing, missing


def test_the_out_of_range_duffing_sets_figures_are_measured():
    """docs/datasets.md's figures for `duffing-test-ood` against `duffing-test` and the
    training set: RMS x, the median over trajectories of max |x| over the second half, the
    training range of x and what leaves it, each as the page prints it."""
    import numpy as np

    from odernn.data.simulate import simulate_trajectories

    train, test, ood = (simulate_trajectories(name).x for name in
                        ("duffing-train", "duffing-test", "duffing-test-ood"))

    def rms(x):
        return np.sqrt(np.mean(np.square(x)))

    def late(x):
        return np.median(np.max(np.abs(x[:, x.shape[1] // 2:]), axis=1))

    edge = np.max(np.abs(train))
    out = np.abs(ood) > edge
    said = (f"RMS x {rms(ood):.2f} against {rms(test):.2f} in `duffing-test`, median amplitude "
            f"over the second half (max \\|x\\|) {late(ood):.2f} against {late(test):.2f}; "
            f"{np.count_nonzero(out.any(axis=1))} of the {len(ood)} trajectories leave the "
            f"training set's range of x (\\|x\\| <= {edge:.2f}), for {100 * out.mean():.1f}% "
            "of the samples")
    text = " ".join((ROOT / "docs" / "datasets.md").read_text(encoding="utf-8").split())
    assert said in text

