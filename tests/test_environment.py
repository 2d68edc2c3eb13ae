"""The project's own files describe one environment, and the notebooks are committed clean."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pyyaml": "pyyaml", "pytorch": "torch"}


def _pip_pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#")[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            pins.update(_pip_pins(path.parent / line[3:].strip()))
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)", line)
        assert match, f"{path.name}: {raw!r} is not pinned with =="
        pins[match[1].lower()] = match[2]
    return pins


def _conda_pins(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    spec = yaml.safe_load(path.read_text())
    conda: dict[str, str] = {}
    pip: dict[str, str] = {}
    for dep in spec["dependencies"]:
        if isinstance(dep, dict):
            for line in dep["pip"]:
                if line.startswith("-e "):
                    continue
                name, version = line.split("==")
                pip[name.lower()] = version
        else:
            name, _, version = dep.partition("=")
            conda[CONDA_TO_PIP.get(name.lower(), name.lower())] = version
    return conda, pip


def test_environment_yml_matches_pip_requirements() -> None:
    requirements = _pip_pins(ROOT / "requirements-dev.txt")
    conda, pip = _conda_pins(ROOT / "environment.yml")
    assert conda.pop("python") == "3.11"
    assert conda.pop("pip") == ""
    described = {**conda, **pip}
    assert described == requirements


def test_requirements_pin_the_torch_pair() -> None:
    pins = _pip_pins(ROOT / "requirements.txt")
    assert (pins["torch"], pins["torchvision"]) == ("2.14.1", "0.29.1")
    assert pins["captum"].startswith("0.9.")


def test_pin_parser_rejects_ranges(tmp_path: Path) -> None:
    loose = tmp_path / "requirements.txt"
    loose.write_text("torch>=2\n")
    with pytest.raises(AssertionError, match="not pinned"):
        _pip_pins(loose)


NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "no notebooks found under notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    cells = json.loads(path.read_text())["cells"]
    dirty = [
        i for i, c in enumerate(cells) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
    ]
    assert not dirty, f"{path.name}: cells {dirty} have outputs or execution counts; run nbstripout on it"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_takes_a_python_whose_path_holds_a_space(tmp_path: Path) -> None:
    """``make PYTHON="/path with space/python3.11" lab``: every recipe quotes the interpreter and the venv's paths."""
    folder = tmp_path / "with space"
    folder.mkdir()
    python = folder / "python3.11"
    python.symlink_to(sys.executable)
    venv = tmp_path / "venv"
    make = ["make", "-C", str(ROOT), f"PYTHON={python}", f"VENV={venv}"]
    planned = subprocess.run([*make, "-n", "lab"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert f'"{python}" -m venv "{venv}"' in planned and f'"{venv}/bin/jupyter" lab' in planned
    created = subprocess.run([*make, f"{venv}/bin/python"], capture_output=True, text=True, timeout=300)
    assert created.returncode == 0, created.stderr
    assert (venv / "bin" / "python").is_file()
