"""Promises about the repository itself: the benchmarks stand on their own, every ADR is in the
index a successor reads first, and the check tier starts no process of its own."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imported(source: Path) -> set[str]:
    tree = ast.parse(source.read_text(), str(source))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_benchmarks_never_import_from_the_tests() -> None:
    """bench/ runs from a checkout without tests/ in mind (`make bench`); the tests may use bench/
    (bench/bulklog.py fills large logs for both)."""
    sources = sorted((ROOT / "bench").rglob("*.py"))
    assert sources
    offending = {
        str(source.relative_to(ROOT)): sorted(
            name for name in _imported(source) if name == "tests" or name.startswith("tests.")
        )
        for source in sources
    }
    assert {k: v for k, v in offending.items() if v} == {}


def test_every_adr_has_a_line_in_the_index() -> None:
    adr = ROOT / "docs" / "adr"
    index = (adr / "README.md").read_text()
    numbered = sorted(p.name for p in adr.glob("[0-9][0-9][0-9][0-9]-*.md"))
    listed = set(re.findall(r"\]\(([0-9]{4}-[^)]+\.md)\)", index))
    assert [name for name in numbered if name not in listed] == []
    assert sorted(listed - set(numbered)) == [], "the index links an ADR that does not exist"
    assert (adr / "0000-template.md").exists()


def test_a_test_outside_e2e_that_starts_python_fails_and_says_to_mark_it() -> None:
    """The guard in tests/conftest.py keeps `make check` free of processes (docs/adr/0025)."""
    with pytest.raises(AssertionError, match="marked e2e"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)
    with pytest.raises(AssertionError, match="marked e2e"):
        subprocess.Popen(["/usr/bin/chromium", "--version"])
    assert subprocess.run(["true"], check=False).returncode == 0  # a small system tool may run
