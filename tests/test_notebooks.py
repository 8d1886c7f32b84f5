"""Every teaching notebook runs (small size), and its .ipynb matches its jupytext script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("[0-9]*.py"))


@pytest.mark.parametrize("script", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(script, tmp_path):
    env = {**os.environ, "ODERNN_QUICK": "1", "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("script", NOTEBOOKS, ids=lambda p: p.stem)
def test_ipynb_is_generated_from_the_script(script):
    ipynb = script.with_suffix(".ipynb")
    assert ipynb.exists(), f"run `make notebooks` to generate {ipynb.name}"
    expected = [c.source for c in jupytext.read(script).cells]
    found = [c.source for c in nbformat.read(ipynb, as_version=4).cells]
    assert found == expected, f"{ipynb.name} is stale: run `make notebooks`"
