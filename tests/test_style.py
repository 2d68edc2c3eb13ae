"""One style everywhere: ruff's formatter and linter (configured in pyproject.toml) find nothing to change.

The notebooks count too (ruff reads their code cells). To fix what this test reports:
``.venv/bin/ruff format . && .venv/bin/ruff check --fix .``
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def ruff() -> str:
    found = Path(sys.executable).with_name("ruff")
    path = str(found) if found.exists() else shutil.which("ruff")
    if path is None:
        pytest.fail("ruff is not installed: it is pinned in requirements-dev.txt (make test installs it)")
    return path


@pytest.mark.parametrize("command", [["format", "--check"], ["check", "--no-fix"]], ids=["format", "lint"])
def test_ruff_finds_nothing_to_change(command: list[str]) -> None:
    result = subprocess.run([ruff(), *command, "."], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"ruff {' '.join(command)} found problems:\n{result.stdout}{result.stderr}"
