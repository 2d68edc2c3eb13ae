"""Mutation testing of utils/, one module at a time, each against its own tests and doctests (make mutation).

    python mutation/run.py [MODULE ...] [--jobs N] [--no-record]

For each module named in mutation/modules.toml (all of them when none is given) this copies the package and its
tests to build/mutation/<module>/, writes mutmut's settings there (setup.cfg: mutate only utils/<module>.py, run
only the module's tests and doctests), runs ``mutmut run`` and prints the score and every surviving mutant's diff.
The working tree is never changed: mutmut mutates its own copy. Unless --no-record is given, the module's result
is written to mutation/scores.json and mutation/scores.md is rendered from it (commit both).

Score = caught / (mutants - equivalent). Caught: a test failed, the tests timed out (the mutant made them loop)
or crashed. Not caught: survived, and "no tests" (no selected test ever calls the mutated function). Equivalent
mutants are listed in modules.toml with the reason; one whose line no longer matches is reported as stale and
counted as not caught.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "mutation" / "modules.toml"
SCORES_JSON = ROOT / "mutation" / "scores.json"
SCORES_MD = ROOT / "mutation" / "scores.md"
WORK = ROOT / "build" / "mutation"
# What the tests read: the exercises' tests read the lessons, the stand-in's the pinned torchvision release.
COPIED = ("utils", "tests", "data", "notebooks", "conftest.py", "pyproject.toml", "requirements.txt")
TARGET = 0.90

# mutmut's exit codes (mutmut/stats.py): which ones mean the tests noticed the mutant.
CAUGHT = {1: "killed", 3: "killed", 36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout"}
CAUGHT |= {-11: "crashed", -9: "crashed"}
NOT_CAUGHT = {0: "survived", 5: "no tests", 33: "no tests"}


@dataclass
class Result:
    module: str
    total: int = 0
    caught: int = 0
    equivalent: list[str] = field(default_factory=list)
    survivors: dict[str, str] = field(default_factory=dict)  # name -> status and diff
    other: dict[str, str] = field(default_factory=dict)  # name -> status (skipped, suspicious, not checked)
    timeouts: list[str] = field(default_factory=list)  # caught because their tests ran past mutmut's time limit

    @property
    def judged(self) -> int:
        """Mutants with a verdict, less the equivalent ones (an unfinished run leaves some without one)."""
        return self.total - len(self.equivalent) - len(self.other)

    @property
    def score(self) -> float:
        return self.caught / self.judged if self.judged else 1.0


def module_file(module: str) -> str:
    """The module's file under the package: ``saliency`` -> ``utils/saliency.py``, ``exercises.grad_cam`` ->
    ``utils/exercises/grad_cam.py`` (a submodule is named with dots, as Python imports it), ``exercises`` ->
    ``utils/exercises/__init__.py``."""
    stem = "utils/" + module.replace(".", "/")
    return f"{stem}/__init__.py" if (ROOT / stem).is_dir() else f"{stem}.py"


def mutmut(work: Path, *args: str, log: Path | None = None) -> str:
    """Run mutmut in ``work``; its output goes to ``log`` as it comes (tail -f it), else it is returned."""
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), MPLBACKEND="Agg", TERM="dumb")
    command = [str(Path(sys.executable).with_name("mutmut")), *args]
    if log is None:
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
        output = done.stdout + done.stderr
    else:
        with log.open("w") as sink:
            done = subprocess.run(command, cwd=work, env=env, stdout=sink, stderr=subprocess.STDOUT, text=True)
        output = log.read_text(errors="replace")
    if done.returncode != 0:
        where = f" (log: {log.relative_to(ROOT)})" if log else ""
        raise SystemExit(f"mutmut {' '.join(args)} failed in {work}{where}:\n{output[-3000:]}")
    return done.stdout if log is None else output


def prepare(module: str, tests: list[str], timeout_multiplier: float | None = None) -> Path:
    missing = [t for t in tests if not (ROOT / t.split("::")[0]).exists()]
    if missing:
        raise SystemExit(f"mutation/modules.toml: {module}'s tests {missing} do not exist; fix the list")
    work = WORK / module
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=ignore)
        else:
            shutil.copy2(source, work / name)
    settings = [
        "[mutmut]",
        "source_paths = utils",
        f"only_mutate = {module_file(module)}",
        "also_copy =\n" + "\n".join(f"    {name}" for name in COPIED if name not in ("utils", "tests")),
        "pytest_add_cli_args_test_selection =\n" + "\n".join(f"    {t}" for t in tests),
        # One process per test run (mutmut forks its own workers); no cache folder in the copy.
        "pytest_add_cli_args =\n    -p\n    no:xdist\n    -p\n    no:cacheprovider",
    ]
    if timeout_multiplier is not None:  # a mutant that makes the tests loop is stopped after this many times their time
        settings.append(f"timeout_multiplier = {timeout_multiplier}")
    settings.append("")
    (work / "setup.cfg").write_text("\n".join(settings))
    return work


def mutant_diff(work: Path, module: str, name: str) -> str:
    """What ``mutmut show NAME`` prints below its title, computed in this process (one mutmut start per module)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    here = Path.cwd()
    os.chdir(work)  # mutmut reads its copy (mutants/) relative to the current folder
    try:
        return get_diff_for_mutant(name, path=Path(module_file(module)))
    finally:
        os.chdir(here)


def resume(
    module: str,
    tests: list[str],
    jobs: int,
    timeout_multiplier: float | None = None,
    unfinished: bool = False,
    retry_timeouts: bool = False,
) -> Path:
    """Run again only the mutants the last run did not catch, with today's tests, and keep its caught ones.

    Sound only while the module is unchanged (the same mutants) and no test was taken away (a test added can
    catch more, never fewer); both are checked. The caught verdicts are merged into the new run's results.
    ``unfinished``: run only the mutants without a verdict and keep every earlier verdict, "not caught" too (a
    lower bound: today's tests may catch a kept survivor, which a later ``--resume`` finds out).
    ``retry_timeouts``: run again the mutants caught by a timeout too. mutmut's limit is wall-clock time (the
    module's ``timeout_multiplier`` x its tests' estimated seconds): on a busy machine a survivor's tests can run past
    it, and the mutant is counted as caught without any test failing.
    The merge is made also when the run is stopped (Ctrl-C, SIGTERM): the verdicts reached so far are kept.
    """
    work = WORK / module
    meta_path = Path("mutants") / f"{module_file(module)}.meta"
    if not (work / meta_path).exists():
        raise SystemExit(f"--resume: no earlier run of {module} in {work}; run without --resume first")
    if (work / module_file(module)).read_bytes() != (ROOT / module_file(module)).read_bytes():
        raise SystemExit(f"--resume: {module_file(module)} changed since the last run (other mutants); run it whole")
    before = (work / "setup.cfg").read_text()
    old_tests = before.split("pytest_add_cli_args_test_selection =", 1)[1].split("pytest_add_cli_args =", 1)[0].split()
    if not set(old_tests) <= set(tests):
        raise SystemExit(f"--resume: the last run also used {sorted(set(old_tests) - set(tests))}; run it whole")
    old = json.loads((work / meta_path).read_text())
    kept = {
        name: code
        for name, code in old["exit_code_by_key"].items()
        if (code in CAUGHT and not (retry_timeouts and CAUGHT[code] == "timeout"))
        or (unfinished and code in NOT_CAUGHT)
    }
    again = sorted(set(old["exit_code_by_key"]) - set(kept), key=natural)
    previous = WORK / f"{module}.previous"
    shutil.rmtree(previous, ignore_errors=True)
    work.rename(previous)
    work = prepare(module, tests, timeout_multiplier)
    print(f"resuming: {len(kept)} verdicts kept, {len(again)} mutants to run", flush=True)
    stop = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if again:
            mutmut(work, "run", "--max-children", str(jobs), *again, log=work / "mutmut.log")
        else:
            shutil.copytree(previous / "mutants", work / "mutants")
    finally:
        signal.signal(signal.SIGTERM, stop)
        if (work / meta_path).exists():  # mutmut writes each verdict as it comes: merge what is there
            meta = json.loads((work / meta_path).read_text())
            new = meta["exit_code_by_key"]
            meta["exit_code_by_key"] = {**new, **{n: c for n, c in kept.items() if new.get(n) is None}}
            (work / meta_path).write_text(json.dumps(meta))
            shutil.rmtree(previous)
        else:  # stopped before mutmut wrote anything: the last run stays as it was
            shutil.rmtree(work)
            previous.rename(work)
    return work


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def changed_line(diff: str) -> str:
    """The first line the mutant adds, stripped: what an equivalent mutant's entry in modules.toml quotes."""
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return added[0] if added else ""


def evaluate(module: str, work: Path, equivalent: list[dict[str, str]]) -> Result:
    meta = json.loads((work / "mutants" / f"{module_file(module)}.meta").read_text())
    codes: dict[str, int | None] = meta["exit_code_by_key"]
    declared = {entry["mutant"]: entry for entry in equivalent}
    result = Result(module, total=len(codes))
    for name, code in sorted(codes.items(), key=lambda item: natural(item[0])):
        if code in CAUGHT:
            result.caught += 1
            if CAUGHT[code] == "timeout":
                result.timeouts.append(name)
            continue
        status = NOT_CAUGHT.get(code)  # type: ignore[arg-type]
        if status is None:
            result.other[name] = "not run yet" if code is None else f"exit code {code}"
            continue
        diff = mutant_diff(work, module, name)
        entry = declared.get(name)
        if entry is not None and changed_line(diff) == entry["changed"].strip():
            result.equivalent.append(name)
            continue
        stale = " (listed as equivalent, but its line changed: re-check modules.toml)" if entry else ""
        result.survivors[name] = f"{status}{stale}\n{diff.strip()}"
    return result


def natural(name: str) -> tuple[str, int]:
    stem, _, number = name.rpartition("_")
    return stem, int(number) if number.isdigit() else 0


def report(result: Result) -> str:
    unjudged = f"; {len(result.other)} without a verdict (see below)" if result.other else ""
    lines = [
        f"== {module_file(result.module)}: {result.score:.1%} caught ({result.caught} of {result.judged} mutants; "
        f"{len(result.equivalent)} equivalent left out; {len(result.survivors)} not caught{unjudged})"
    ]
    for name, text in result.survivors.items():
        lines.append(f"-- {name}: {text}")
    waiting = [name for name, status in result.other.items() if status == "not run yet"]
    if waiting:
        lines.append(f"-- {len(waiting)} mutants not run yet (an unfinished run): the score covers the others only")
    for name, status in result.other.items():
        if status != "not run yet":
            lines.append(f"-- {name}: no verdict ({status})")
    return "\n".join(lines)


def record(result: Result, seconds: float | None, resumed: bool = False) -> None:
    scores = json.loads(SCORES_JSON.read_text()) if SCORES_JSON.exists() else {}
    scores[result.module] = {
        "date": datetime.date.today().isoformat(),
        "mutmut": mutmut_version(),
        "seconds": None if seconds is None else round(seconds),
        "resumed": resumed,
        "mutants": result.total,
        "equivalent": len(result.equivalent),
        "without_verdict": len(result.other),
        "caught": result.caught,
        "timeouts": result.timeouts,
        "score": round(result.score, 4),
        "not_caught": {
            name: text.splitlines()[0] + " | " + changed_line(text) for name, text in result.survivors.items()
        },
    }
    SCORES_JSON.write_text(json.dumps(dict(sorted(scores.items())), indent=1, ensure_ascii=False) + "\n")
    SCORES_MD.write_text(render(scores))


def render(scores: dict[str, dict]) -> str:
    config = tomllib.loads(CONFIG.read_text())
    lines = [
        "# Mutation scores (generated by `make mutation`; do not edit by hand)",
        "",
        "Each module of `utils/` mutated by mutmut and judged by its own tests and doctests only",
        "(`mutation/modules.toml`). Score = caught / (mutants - equivalent); target 90%.",
        "Caught includes the mutants whose tests ran past mutmut's time limit (listed under each module): a loop that",
        "never ends, or a survivor slowed down by a busy machine; `--retry-timeouts` runs them again.",
        "",
        "A run stopped before every mutant was tried shows how many had no verdict; its score covers the others.",
        "",
        "| module | date | mutants | equivalent | no verdict | caught | score | run time |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for module in config:
        if module in scores:
            s = scores[module]
            timeouts = len(s.get("timeouts", []))
            caught = f"{s['caught']} ({timeouts} by timeout)" if timeouts else s["caught"]
            row = [module, s["date"], s["mutants"], s["equivalent"], s.get("without_verdict", 0), caught]
            took = "not known (read back)" if s["seconds"] is None else f"{s['seconds']} s"
            row += [f"{s['score']:.1%}", took + (" (resumed)" if s.get("resumed") else "")]
        else:
            row = [module, "not measured yet", "", "", "", "", "", ""]
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    for module in config:
        entries = config[module].get("equivalent", [])
        survivors = scores.get(module, {}).get("not_caught", {})
        timeouts = scores.get(module, {}).get("timeouts", [])
        if not entries and not survivors and not timeouts:
            continue
        lines += ["", f"## {module}", ""]
        lines += [f"- equivalent, left out: `{e['mutant']}` (`{e['changed']}`): {e['reason']}" for e in entries]
        lines += [f"- not caught: `{name}`: {text}" for name, text in survivors.items()]
        lines += [f"- caught by a timeout: `{name}`" for name in timeouts]
    return "\n".join(lines) + "\n"


def mutmut_version() -> str:
    from importlib.metadata import version

    return version("mutmut")


def main() -> int:
    config = tomllib.loads(CONFIG.read_text())
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"modules of utils/ (default: all of {', '.join(config)})")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--no-record", action="store_true", help="do not write mutation/scores.json and .md")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="report the last run in build/mutation/ (even unfinished); run nothing",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the last run's caught mutants and run only the others (survivors, unfinished) with today's tests",
    )
    parser.add_argument(
        "--retry-timeouts",
        action="store_true",
        help="with --resume or --unfinished: run again the mutants caught by a timeout too",
    )
    parser.add_argument(
        "--unfinished",
        action="store_true",
        help="as --resume, but run only the mutants without a verdict (an unfinished run) and keep its survivors",
    )
    args = parser.parse_args()
    if args.retry_timeouts and not (args.resume or args.unfinished):
        parser.error("--retry-timeouts goes with --resume or --unfinished (a whole run judges every mutant anew)")
    unknown = [m for m in args.modules if m not in config]
    if unknown:
        parser.error(f"{unknown} not in mutation/modules.toml; known: {', '.join(config)}")
    below = []
    for module in args.modules or list(config):
        started = datetime.datetime.now()
        if not args.report_only:
            print(f"mutating {module_file(module)} (log: build/mutation/{module}/mutmut.log) ...", flush=True)
        if args.report_only:
            work = WORK / module
        elif args.resume or args.unfinished:
            try:
                work = resume(
                    module,
                    config[module]["tests"],
                    args.jobs,
                    config[module].get("timeout_multiplier"),
                    unfinished=args.unfinished,
                    retry_timeouts=args.retry_timeouts,
                )
            except KeyboardInterrupt:
                print(
                    f"stopped: the verdicts reached are merged into build/mutation/{module}; "
                    f"`mutation/run.py {module} --report-only` records them, `--unfinished` goes on"
                )
                return 130
        else:
            work = prepare(module, config[module]["tests"], config[module].get("timeout_multiplier"))
            mutmut(work, "run", "--max-children", str(args.jobs), log=work / "mutmut.log")
        result = evaluate(module, work, config[module].get("equivalent", []))
        seconds = (datetime.datetime.now() - started).total_seconds()
        print(report(result), flush=True)
        if not args.no_record:
            record(result, None if args.report_only else seconds, resumed=args.resume or args.unfinished)
        if result.score < TARGET:
            below.append(f"{module} {result.score:.1%}")
    if below:
        print(f"below the {TARGET:.0%} target: {', '.join(below)}")
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
