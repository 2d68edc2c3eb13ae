"""One execution of each notebook serves the tests and the site.

``make test`` runs every notebook under nbval; conftest.py keeps each notebook that ran whole and
passed, with its outputs, under ``build/executed/``; ``make html`` (book/_ext/course_site.py's
``take_executed``) moves them into MyST-NB's cache, where a page takes them only while its code is
the code that ran. Under pytest-xdist a notebook's cells run on one worker, in order.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import nbformat
import pytest
from jupyter_cache import get_cache

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


course_site = _load("course_site", ROOT / "book" / "_ext" / "course_site.py")
root_conftest = _load("course_root_conftest", ROOT / "conftest.py")


def test_a_worker_takes_a_whole_notebook_a_whole_test_file_or_all_the_site_tests() -> None:
    scope = root_conftest.course_scope
    assert scope("notebooks/01_grad_cam.ipynb::Cell 0") == scope("notebooks/01_grad_cam.ipynb::Cell 17")
    assert scope("notebooks/01_grad_cam.ipynb::Cell 0") != scope("notebooks/solutions/01_grad_cam.ipynb::Cell 0")
    assert scope("tests/test_site.py::test_a") == scope("tests/test_browser.py::test_b[x::y]") == "the site tests"
    assert (
        scope("tests/test_saliency.py::test_a[p]")
        == scope("tests/test_saliency.py::test_b")
        != scope("tests/test_sanity.py::test_a")
    )
    assert scope("utils/saliency.py::utils.saliency.grad_cam") == "utils/saliency.py"


def _notebook(cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _run_nbval(path: Path, model: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XAI_MODEL": model}
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_XDIST_WORKER_COUNT", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "--rootdir", str(ROOT), str(path)]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A folder inside the repository (the test run keeps only notebooks of the course's own tree)."""
    folder = ROOT / "build" / "test-executed" / uuid.uuid4().hex[:8]
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.parent.rmdir()  # when no other test is using it


def test_a_notebook_nbval_ran_is_kept_and_the_site_takes_its_outputs_while_its_code_is_unchanged(
    scratch: Path, tmp_path: Path
) -> None:
    model = f"test-model-{uuid.uuid4().hex[:6]}"  # a folder of its own under build/executed/
    source = scratch / "tiny.ipynb"
    raising = nbformat.v4.new_code_cell("raise ValueError('expected')")
    raising.metadata.tags = ["raises-exception"]
    nb = _notebook(
        [
            nbformat.v4.new_markdown_cell("# Tiny"),
            nbformat.v4.new_code_cell("print('hello'); print('world')"),
            nbformat.v4.new_code_cell("from IPython.display import HTML\nHTML('<b>bold</b>')"),
            raising,
        ]
    )
    nbformat.write(nb, source)
    executed_root = course_site.EXECUTED / model
    try:
        result = _run_nbval(source, model)
        assert result.returncode == 0, result.stdout[-3000:]
        folder = executed_root / course_site.code_fingerprint()
        kept = folder / source.relative_to(ROOT)
        assert kept.is_file(), f"nothing kept under {executed_root}: {sorted(executed_root.rglob('*'))}"
        outputs = [cell.get("outputs") for cell in nbformat.read(kept, as_version=4).cells]
        assert outputs[0] is None  # the markdown cell
        assert [o["text"] for o in outputs[1]] == ["hello\nworld\n"]
        assert outputs[2][0]["data"]["text/html"] == "<b>bold</b>"
        assert outputs[3][0]["output_type"] == "error" and outputs[3][0]["ename"] == "ValueError"
        seconds = float(json.loads(kept.with_suffix(".json").read_text())["seconds"])
        assert 0 < seconds < 300

        cache = tmp_path / "cache"
        assert course_site.take_executed(folder, cache) == [source.relative_to(ROOT).as_posix()]
        assert not kept.exists(), "a kept notebook is moved into the cache, not left behind"
        store = get_cache(str(cache))
        committed = nbformat.read(source, as_version=4)
        assert store.match_cache_notebook(committed).data["execution_seconds"] == seconds
        _, merged = store.merge_match_into_notebook(committed)
        assert merged.cells[1].outputs[0]["text"] == "hello\nworld\n"
        assert merged.metadata.language_info["name"] == "python"  # as nbclient records it: the pages' lexer

        changed = nbformat.read(source, as_version=4)
        changed.cells[1].source = "print('changed')"
        with pytest.raises(KeyError):
            store.match_cache_notebook(changed)  # other code: the site executes it itself
    finally:
        shutil.rmtree(executed_root, ignore_errors=True)


def test_a_notebook_with_a_failing_cell_is_not_kept(scratch: Path) -> None:
    model = f"test-model-{uuid.uuid4().hex[:6]}"
    source = scratch / "failing.ipynb"
    nbformat.write(
        _notebook([nbformat.v4.new_code_cell("print('ran')"), nbformat.v4.new_code_cell("1 / 0")]),
        source,
    )
    executed_root = course_site.EXECUTED / model
    try:
        result = _run_nbval(source, model)
        assert result.returncode == 1 and "ZeroDivisionError" in result.stdout
        assert not any(executed_root.rglob("*.ipynb")), "a notebook that failed was kept for the site"
    finally:
        shutil.rmtree(executed_root, ignore_errors=True)


def test_taking_from_a_folder_that_does_not_exist_takes_nothing(tmp_path: Path) -> None:
    assert course_site.take_executed(tmp_path / "missing", tmp_path / "cache") == []
