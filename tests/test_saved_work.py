"""``make test`` is a learner's command too: a notebook saved after Run All, with its outputs, still passes.

The committed notebooks carry no outputs (tests/test_environment.py reads them as git holds them, not as saved);
nbval executes the learner's copy and ignores what it had saved (``--nbval-lax`` in pyproject.toml).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSON = "notebooks/00_start_here.ipynb"
SAVED = "a line the learner's own run printed, which this run must not compare\n"


def _git_checkout() -> bool:
    return shutil.which("git") is not None and (ROOT / ".git").exists()


def save_with_outputs(path: Path) -> int:
    """Give every code cell of ``path`` an execution count and outputs, as JupyterLab saves them; return how many."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [cell for cell in nb["cells"] if cell["cell_type"] == "code"]
    for count, cell in enumerate(code, 1):
        cell["execution_count"] = count
        cell["outputs"] = [
            {"output_type": "stream", "name": "stdout", "text": [SAVED]},
            {"output_type": "execute_result", "execution_count": count, "metadata": {}, "data": {"text/plain": ["42"]}},
        ]
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(code)


@pytest.mark.skipif(not _git_checkout(), reason="not a git checkout (a hand-out?): the test clones the repository")
def test_a_notebook_saved_with_outputs_in_a_clone_passes_the_output_check_and_its_own_run(tmp_path: Path) -> None:
    clone = tmp_path / "course"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    cells = save_with_outputs(clone / LESSON)
    status = subprocess.run(["git", "-C", str(clone), "status", "--porcelain"], capture_output=True, text=True)
    assert status.stdout.split() == ["M", LESSON], "the clone holds the learner's saved notebook and nothing else"

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "tests/test_environment.py", LESSON]
    command += ["-k", "committed_without_outputs or ipynb"]
    result = subprocess.run(command, cwd=clone, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:]
    notebooks = len(list((clone / "notebooks").rglob("*.ipynb")))
    assert f"{notebooks + cells} passed" in result.stdout, result.stdout[-2000:]
