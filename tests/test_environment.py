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


def _in_git() -> bool:
    if shutil.which("git") is None:
        return False
    found = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    return found.returncode == 0 and Path(found.stdout.strip()).resolve() == ROOT.resolve()


def as_committed(path: Path) -> str:
    """The notebook as the next commit would hold it: git's index (HEAD's copy unless the change was staged).

    A learner who saves a notebook after Run All changes the working tree only, so ``make test`` still passes;
    a notebook git does not track yet would be committed as it is on disk.
    """
    relative = path.relative_to(ROOT).as_posix()
    staged = subprocess.run(
        ["git", "-C", str(ROOT), "show", f":{relative}"], capture_output=True, text=True, encoding="utf-8"
    )
    return staged.stdout if staged.returncode == 0 else path.read_text(encoding="utf-8")


@pytest.mark.skipif(not _in_git(), reason="not a git checkout (a hand-out?): nothing here is committed")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    cells = json.loads(as_committed(path))["cells"]
    dirty = [
        i for i, c in enumerate(cells) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
    ]
    assert not dirty, f"{path.name}: cells {dirty} have outputs or execution counts as staged; run nbstripout on it"


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


def _fresh_python(code: str) -> str:
    """Run ``code`` in a new interpreter in the project root; return what it printed."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def _stand_in_in_this_process() -> None:
    """The stand-in's functions called in the test's own process too, where torchvision is already imported, with
    what they return there checked. The behaviour is checked in a fresh interpreter; these calls let make mutation
    (mutmut maps each test to the functions it calls in its own process) run these tests on the stand-in's mutants."""
    import torchvision

    from utils import _torchvision

    assert _torchvision._checked_release() is True  # the pinned release (test_the_stand_in_is_used_...)
    assert _torchvision.import_torchvision() is torchvision  # imported already: returned as it is


def test_importing_utils_imports_torchvision_but_not_the_compiler_and_leaves_it_importable() -> None:
    _stand_in_in_this_process()
    printed = _fresh_python(
        "import sys, torch, utils.models\n"
        "roi = sys.modules['torchvision.ops.roi_align']\n"
        "print('torchvision' in sys.modules, 'torch._dynamo' in sys.modules, '_dynamo' in vars(torch))\n"
        "from torchvision.ops import roi_align\n"
        "x = torch.arange(16.0).reshape(1, 1, 4, 4)\n"
        "print(roi_align(x, [torch.tensor([[0.0, 0.0, 3.0, 3.0]])], 1, aligned=True).item())\n"
        "import torch._dynamo.utils as real\n"
        "print(hasattr(torch._dynamo, 'optimize'), roi.is_compile_supported('cpu') == real.is_compile_supported('cpu'))"
    )
    assert printed.splitlines() == ["True False False", "5.0", "True True"]  # the box's centre, (1, 1)


def test_torchvision_imported_after_the_compiler_gets_the_real_function() -> None:
    _stand_in_in_this_process()
    import torch._dynamo.utils as real  # here too: the stand-in's function asks the real one (imported on first call)

    from utils import _torchvision

    assert [_torchvision._is_compile_supported(d) for d in ("cpu", "meta")] == [
        real.is_compile_supported(d) for d in ("cpu", "meta")
    ]
    printed = _fresh_python(
        "import sys, torch._dynamo.utils as real, utils\n"
        "print(sys.modules['torchvision.ops.roi_align'].is_compile_supported is real.is_compile_supported)"
    )
    assert printed == "True"


def test_a_failed_torchvision_import_leaves_no_stand_in_behind() -> None:
    _stand_in_in_this_process()
    printed = _fresh_python(
        "import sys, torch\n"
        "class Refuse:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torchvision':\n"
        "            raise ImportError('no torchvision here')\n"
        "sys.meta_path.insert(0, Refuse())\n"
        "import importlib.util\n"  # the file alone: importing the package utils would import torchvision
        "spec = importlib.util.spec_from_file_location('stand_in', 'utils/_torchvision.py')\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "try:\n"
        "    module.import_torchvision()\n"
        "except ImportError as error:\n"
        "    print(error)\n"
        "print(sorted(n for n in sys.modules if n.startswith('torch._dynamo')), '_dynamo' in vars(torch))"
    )
    assert printed.splitlines() == ["no torchvision here", "[] False"]


def test_the_release_check_reads_the_public_version_and_takes_a_missing_torchvision_as_unchecked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.metadata

    from utils import _torchvision

    def version(found: str | None):
        def read(name: str) -> str:
            assert name == "torchvision"
            if found is None:
                raise importlib.metadata.PackageNotFoundError(name)
            return found

        return read

    seen = {}
    for found in ("0.29.1", "0.29.1+cu130", "0.29.1+cpu", "0.29.10", "0.30.0", None):
        monkeypatch.setattr(importlib.metadata, "version", version(found))
        seen[found] = _torchvision._checked_release()
    assert seen == {
        "0.29.1": True,
        "0.29.1+cu130": True,
        "0.29.1+cpu": True,
        "0.29.10": False,
        "0.30.0": False,
        None: False,
    }


def _without_torchvision(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as if torchvision and the compiler were not imported yet (monkeypatch puts them back)."""
    for name in ("torchvision", "torch._dynamo", "torch._dynamo.utils"):
        monkeypatch.delitem(sys.modules, name, raising=False)


class _FakeTorchvision:
    """A torchvision served from memory that imports ``is_compile_supported`` as 0.29's roi_align does, and binds
    ``torch._dynamo`` as loading that package would."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> object:
        import importlib.util

        return importlib.util.spec_from_loader(name, self) if name == "torchvision" else None

    def create_module(self, spec: object) -> None:
        return None

    def exec_module(self, module: object) -> None:
        import torch
        from torch._dynamo.utils import is_compile_supported

        module.is_compile_supported = is_compile_supported  # type: ignore[attr-defined]
        torch._dynamo = sys.modules["torch._dynamo"]  # type: ignore[attr-defined]


def test_the_stand_ins_serve_the_import_and_leave_no_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from utils import _torchvision

    _without_torchvision(monkeypatch)
    monkeypatch.delattr(torch, "_dynamo", raising=False)  # bound if another test imported the compiler
    monkeypatch.setattr(sys, "meta_path", [_FakeTorchvision(), *sys.meta_path])
    fake = _torchvision.import_torchvision()
    assert fake.is_compile_supported is _torchvision._is_compile_supported  # the stand-in's function
    assert not any(name in sys.modules for name in ("torch._dynamo", "torch._dynamo.utils"))
    assert "_dynamo" not in vars(torch)  # the stand-in package unbound from torch again
    assert sys.modules["torchvision"] is fake


def test_with_torchvision_imported_nothing_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    import torchvision

    from utils import _torchvision

    for name in ("torch._dynamo", "torch._dynamo.utils"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    asked = []

    def import_module(name: str) -> object:
        asked.append((name, [n for n in ("torch._dynamo", "torch._dynamo.utils") if n in sys.modules]))
        return torchvision

    monkeypatch.setattr(importlib, "import_module", import_module)
    assert _torchvision.import_torchvision() is torchvision
    assert asked == [("torchvision", [])]  # imported as it is: no stand-in was put in sys.modules


def test_the_stand_in_is_used_for_the_pinned_torchvision_only() -> None:
    from utils import _torchvision

    assert _pip_pins(ROOT / "requirements.txt")["torchvision"] in _torchvision.CHECKED_RELEASES
    _stand_in_in_this_process()
    printed = _fresh_python(
        "import sys, importlib.metadata as metadata\n"
        "real = metadata.version\n"  # another torchvision release: imported as it is, compiler and all
        "metadata.version = lambda name: '0.30.0' if name == 'torchvision' else real(name)\n"
        "import utils\n"
        "print('torchvision' in sys.modules, 'torch._dynamo' in sys.modules)"
    )
    assert printed == "True True"
