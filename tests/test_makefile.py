"""The Makefile's set-up: which Pythons it takes, and the one line it says about any other."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def python_reporting(version: tuple[int, int, int], folder: Path) -> Path:
    """An interpreter that is this test's own Python but reports ``version`` to ``-c`` code (the Makefile's check)."""
    name = f"python{version[0]}.{version[1]}"
    fake = folder / name
    fake.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "-c" ]; then exec "{sys.executable}" -c "import sys; sys.version_info = {version}\n$2"; fi\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    fake.chmod(0o755)
    return fake


def make_venv(python: str, venv: Path) -> subprocess.CompletedProcess[str]:
    command = ["make", "-C", str(ROOT), f"PYTHON={python}", f"VENV={venv}", f"{venv}/bin/python"]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("version", [(3, 10, 4), (3, 14, 0)])
def test_another_python_is_refused_in_one_line_naming_it_and_what_to_do(tmp_path: Path, version: tuple) -> None:
    python = python_reporting(version, tmp_path)
    result = make_venv(str(python), tmp_path / "venv")
    assert result.returncode != 0 and not (tmp_path / "venv").exists()
    (line,) = [line for line in result.stderr.splitlines() if not line.startswith("make")]
    assert line == (
        f"The course needs Python 3.11, 3.12 or 3.13; {sys.executable} is Python {version[0]}.{version[1]}: "
        "install one of those and pass it, e.g. make lab PYTHON=python3.13"
    )


def test_a_python_that_is_not_there_is_named(tmp_path: Path) -> None:
    result = make_venv(str(tmp_path / "python3.12"), tmp_path / "venv")
    assert result.returncode != 0
    assert f"No Python found (PYTHON='{tmp_path}/python3.12')" in result.stderr.splitlines()[0]


def test_python_3_13_is_taken(tmp_path: Path) -> None:
    """3.13, the newest version taken (3.11 is every other test's; 3.10 and 3.14 are refused above)."""
    python = python_reporting((3, 13, 0), tmp_path)
    result = make_venv(str(python), tmp_path / "venv")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "venv" / "bin" / "python").is_file()


def test_make_lab_opens_lesson_00_with_no_news_pop_up(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    planned = subprocess.run(["make", "-C", str(ROOT), "-n", f"VENV={venv}", "lab"], capture_output=True, text=True)
    assert "lab --notebook-dir=notebooks notebooks/00_start_here.ipynb" in planned.stdout, planned.stdout
    overrides = venv / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    subprocess.run(["make", "-C", str(ROOT), f"VENV={venv}", str(overrides)], check=True, capture_output=True)
    (plugin, settings), *_ = json.loads(overrides.read_text()).items()
    schema = Path(sys.prefix, "share", "jupyter", "lab", "schemas", f"{plugin}.json")  # the installed JupyterLab's
    properties = json.loads(schema.read_text())["properties"]
    assert settings == {"fetchNews": "false", "checkForUpdates": False}
    assert {"const": "false", "title": "Never"} in properties["fetchNews"]["oneOf"]
    assert properties["checkForUpdates"]["type"] == "boolean"


def test_make_test_runs_every_test_path_unless_tests_names_some(tmp_path: Path) -> None:
    """Plain ``make test`` leaves the paths to pyproject.toml's testpaths (notebooks included); CI's Python 3.13 run
    passes ``TESTS="tests utils"``, and those paths, nothing else, reach pytest."""
    venv = tmp_path / "venv"
    # Not the settings of a make that runs this test (CI's `make test TESTS=...` hands them down in MAKEFLAGS).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "TESTS")}
    for tests, ending in (None, "-m pytest -n auto"), ("tests utils", "-m pytest -n auto tests utils"):
        arguments = ["make", "-C", str(ROOT), "-n", "-o", f"{venv}/.dev-installed", f"VENV={venv}", "test"]
        arguments += [f"TESTS={tests}"] if tests else []
        planned = subprocess.run(arguments, capture_output=True, text=True, env=env)
        (command,) = [line for line in planned.stdout.splitlines() if "-m pytest" in line]
        assert command.rstrip().endswith(ending), command


def test_with_a_wheelhouse_every_install_is_offline_from_it(tmp_path: Path) -> None:
    """make lab/test WHEELHOUSE=dir: uv, the runtime, the course's package and the test tools all come from dir, with
    the index off (CI builds a wheelhouse and installs the main suite's environment from it with the network closed)."""
    venv, wheelhouse = tmp_path / "venv", tmp_path / "wheels"
    command = ["make", "-n", "-C", str(ROOT), f"VENV={venv}", f"WHEELHOUSE={wheelhouse}", f"{venv}/.dev-installed"]
    plan = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    installs = [line for line in plan.splitlines() if "pip install" in line]
    assert len(installs) == 4, plan  # uv, the runtime, the course's package, the test tools
    assert all(f'--no-index --find-links "{wheelhouse}"' in line for line in installs), plan
    assert all("--offline" in line for line in installs if '/uv" pip install' in line), plan
    online = subprocess.run(
        ["make", "-n", "-C", str(ROOT), f"VENV={venv}", f"{venv}/.dev-installed"], capture_output=True, text=True
    ).stdout
    assert "--no-index" not in online and "--offline" not in online


def test_make_wheelhouse_fetches_every_pinned_file_and_what_the_install_needs(tmp_path: Path) -> None:
    plan = subprocess.run(
        ["make", "-n", "-C", str(ROOT), f"WHEELHOUSE={tmp_path}", "wheelhouse"], capture_output=True, text=True
    ).stdout
    (fetch,) = [line for line in plan.replace("\\\n", " ").splitlines() if "pip wheel" in line]
    for needed in ("-r requirements-dev.txt", '"uv==', '"setuptools>=68"', f'--wheel-dir "{tmp_path}"'):
        assert needed in fetch, fetch
