"""mutation/modules.toml names every module of the package with tests that exist (make mutation, issue 26)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

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


def _earlier_run(run, root: Path, monkeypatch, codes: dict[str, int | None]) -> Path:
    """A module ``m`` mutated before in ``root``: its copy equal to today's file, its verdicts ``codes``."""
    monkeypatch.setattr(run, "ROOT", root)
    monkeypatch.setattr(run, "WORK", root / "build" / "mutation")
    (root / "utils").mkdir(parents=True)
    (root / "utils" / "m.py").write_text("def f():\n    return 1\n")
    work = root / "build" / "mutation" / "m"

    def prepare(module: str, tests: list[str], timeout_multiplier: float | None = None) -> Path:
        (work / "utils").mkdir(parents=True)
        (work / "utils" / "m.py").write_text("def f():\n    return 1\n")
        (work / "setup.cfg").write_text(
            "pytest_add_cli_args_test_selection =\n  tests/test_m.py\npytest_add_cli_args =\n"
        )
        (work / "mutants" / "utils").mkdir(parents=True)
        return work

    prepare("m", ["tests/test_m.py"])
    (work / "mutants" / "utils" / "m.py.meta").write_text(json.dumps({"exit_code_by_key": codes}))

    monkeypatch.setattr(run, "prepare", prepare)
    return work


def _verdicts(work: Path) -> dict[str, int | None]:
    return json.loads((work / "mutants" / "utils" / "m.py.meta").read_text())["exit_code_by_key"]


def _stand_in_mutmut(run, monkeypatch, caught: set[str]) -> list[str]:
    """mutmut replaced by a function that judges the mutants it is given (those in ``caught`` caught, the others
    survived) and writes their verdicts as mutmut does; the names it was given are returned, in order."""
    ran: list[str] = []

    def mutmut(where: Path, *args: str, log: Path | None = None) -> str:
        names = [a for a in args if a.startswith("m.")]
        ran.extend(names)
        meta = where / "mutants" / "utils" / "m.py.meta"
        meta.write_text(json.dumps({"exit_code_by_key": {n: int(n in caught) for n in names}}))
        return ""

    monkeypatch.setattr(run, "mutmut", mutmut)
    return ran


CODES = {"m.x_f__mutmut_1": 1, "m.x_f__mutmut_2": 0, "m.x_f__mutmut_3": None, "m.x_f__mutmut_4": None}
# mutmut's exit code for a mutant whose tests ran past its time limit (SIGXCPU), counted as caught
TIMEOUT = -24


@pytest.mark.parametrize("unfinished", [False, True])
def test_a_resumed_run_runs_only_what_it_should_and_keeps_the_earlier_verdicts(
    tmp_path: Path, monkeypatch, unfinished: bool
) -> None:
    run = _run_module()
    work = _earlier_run(run, tmp_path, monkeypatch, CODES)
    ran = _stand_in_mutmut(run, monkeypatch, caught={"m.x_f__mutmut_3"})
    run.resume("m", ["tests/test_m.py"], jobs=1, unfinished=unfinished)
    # --resume runs the survivor again with today's tests; --unfinished only the mutants never judged
    assert ran == (["m.x_f__mutmut_3", "m.x_f__mutmut_4"] if unfinished else list(CODES)[1:])
    assert _verdicts(work) == {"m.x_f__mutmut_1": 1, "m.x_f__mutmut_2": 0, "m.x_f__mutmut_3": 1, "m.x_f__mutmut_4": 0}
    assert not (tmp_path / "build" / "mutation" / "m.previous").exists()


def test_a_resumed_run_that_is_stopped_keeps_the_verdicts_reached_and_the_earlier_ones(
    tmp_path: Path, monkeypatch
) -> None:
    run = _run_module()
    work = _earlier_run(run, tmp_path, monkeypatch, CODES)

    def stopped(where: Path, *args: str, log: Path | None = None) -> str:  # one verdict written, then Ctrl-C
        meta = where / "mutants" / "utils" / "m.py.meta"
        meta.write_text(json.dumps({"exit_code_by_key": {"m.x_f__mutmut_3": 1, "m.x_f__mutmut_4": None}}))
        raise KeyboardInterrupt

    def stopped_at_once(where: Path, *args: str, log: Path | None = None) -> str:
        shutil.rmtree(where / "mutants")  # mutmut had not written its results yet
        raise KeyboardInterrupt

    reached = {"m.x_f__mutmut_1": 1, "m.x_f__mutmut_2": 0, "m.x_f__mutmut_3": 1, "m.x_f__mutmut_4": None}
    for stand_in in (stopped, stopped_at_once):  # the second stop finds the first one's verdicts and keeps them
        monkeypatch.setattr(run, "mutmut", stand_in)
        with pytest.raises(KeyboardInterrupt):
            run.resume("m", ["tests/test_m.py"], jobs=1, unfinished=True)
        assert _verdicts(work) == reached


def test_a_timeout_is_caught_in_the_score_and_listed_and_retry_timeouts_runs_it_again(
    tmp_path: Path, monkeypatch
) -> None:
    run = _run_module()
    codes = {**CODES, "m.x_f__mutmut_5": TIMEOUT}
    work = _earlier_run(run, tmp_path, monkeypatch, codes)
    monkeypatch.setattr(run, "mutant_diff", lambda work, module, name: "+    return 2\n")
    result = run.evaluate("m", work, [])
    assert (result.caught, result.timeouts, result.judged) == (2, ["m.x_f__mutmut_5"], 3)
    config = tmp_path / "modules.toml"
    config.write_text('[m]\ntests = ["tests/test_m.py"]\n')
    monkeypatch.setattr(run, "CONFIG", config)
    table = run.render({"m": {**_row(result), "timeouts": result.timeouts}})
    assert "| 2 (1 by timeout) |" in table and "- caught by a timeout: `m.x_f__mutmut_5`" in table

    ran = _stand_in_mutmut(run, monkeypatch, caught=set())
    run.resume("m", ["tests/test_m.py"], jobs=1, unfinished=True, retry_timeouts=True)
    assert ran == ["m.x_f__mutmut_3", "m.x_f__mutmut_4", "m.x_f__mutmut_5"]
    assert _verdicts(work)["m.x_f__mutmut_5"] == 0  # its tests, given the time, do not fail: a survivor


def _row(result) -> dict:
    return {
        "date": "2026-12-06",
        "mutants": result.total,
        "equivalent": 0,
        "without_verdict": len(result.other),
        "caught": result.caught,
        "score": result.score,
        "seconds": 1,
        "not_caught": {},
    }


def test_retry_timeouts_alone_is_refused_in_one_line(monkeypatch, capsys) -> None:
    run = _run_module()
    monkeypatch.setattr(sys, "argv", ["run.py", "explorer", "--retry-timeouts"])
    with pytest.raises(SystemExit) as stopped:
        run.main()
    assert stopped.value.code == 2
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .endswith("--retry-timeouts goes with --resume or --unfinished (a whole run judges every mutant anew)")
    )
