"""The documents name tests as proof of their promises: every test named must exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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
