"""mutation/modules.toml names every module of the package with tests that exist (make mutation, issue 26)."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "mutation" / "modules.toml").read_text(encoding="utf-8"))


def _run_module():  # mutation/run.py is a script, not a package module
    spec = importlib.util.spec_from_file_location("mutation_run", ROOT / "mutation" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # its dataclasses look their module up there
    spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules[spec.name]


def test_every_module_with_code_is_mutated() -> None:
    run = _run_module()
    listed = {run.module_file(module) for module in CONFIG}
    files = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "utils").rglob("*.py")
        if "def " in path.read_text(encoding="utf-8")  # utils/__init__.py only imports: nothing to mutate
    }
    assert files - listed == set(), f"modules no mutation run covers: {sorted(files - listed)}"
    assert listed - files == set(), f"modules.toml names files that are not there: {sorted(listed - files)}"
    assert run.module_file("saliency") == "utils/saliency.py"
    assert run.module_file("exercises.grad_cam") == "utils/exercises/grad_cam.py"
    assert run.module_file("exercises") == "utils/exercises/__init__.py"


def test_every_module_is_judged_by_tests_that_exist_and_its_own_doctests_where_it_has_some() -> None:
    run = _run_module()
    for module, settings in CONFIG.items():
        tests = settings["tests"]
        assert tests and all((ROOT / t.split("::")[0]).exists() for t in tests), (module, tests)
        assert all(t.startswith("tests/") or t == run.module_file(module) for t in tests), (module, tests)
        if ">>>" in (ROOT / run.module_file(module)).read_text(encoding="utf-8"):
            assert run.module_file(module) in tests, f"{module}'s doctests are not among its tests"
