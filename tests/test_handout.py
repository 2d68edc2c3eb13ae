"""``make handout``: the course without its worked answers, saying where they are, and passing its own tests.

Made from a clone (the hand-out zips the last commit, so it refuses a working tree with edits). The hand-out's own
suite is run in part, to stay within CI's time: every test and notebook must be collected there (nothing imports a
left-out answer), and the environment, lesson-pair and site-function tests and lesson 01, which stops at its check
cell, must pass. The full ``make test`` of the hand-out also builds the site and runs every notebook (minutes).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "guided-gradcam-course/"
LEFT_OUT = ("notebooks/solutions/", "tests/solutions/")
pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or shutil.which("make") is None or not (ROOT / ".git").exists(),
    reason="make handout needs git, make and the course's repository",
)


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("handout") / "course"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(folder)], check=True, timeout=120)
    return folder


@pytest.fixture(scope="module")
def handout(clone: Path) -> Path:
    made = subprocess.run(["make", "-C", str(clone), "handout"], capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    return clone / "build" / "handout.zip"


def _code_lines(text: str) -> list[str]:
    """Lines of code as compared here: stripped, without blank lines and comments."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _file_lines(name: str, data: bytes) -> str:
    """A file of the hand-out as lines of code, joined; a notebook by its cells' sources."""
    text = data.decode("utf-8", "replace")
    if name.endswith(".ipynb"):
        text = "\n".join(cell.source for cell in nbformat.reads(text, as_version=4).cells)
    return "\n".join(_code_lines(text))


def answers(window: int = 3) -> dict[str, list[str]]:
    """For each solution: each run of ``window`` consecutive lines of its ``answer`` cells that its lesson lacks."""
    found = {}
    for solution in sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb")):
        lesson = "\n".join(
            _code_lines("\n".join(c.source for c in nbformat.read(ROOT / "notebooks" / solution.name, 4).cells))
        )
        runs = []
        for cell in nbformat.read(solution, as_version=4).cells:
            if "answer" in cell.metadata.get("tags", []):
                lines = _code_lines(cell.source)
                runs += ["\n".join(lines[i : i + window]) for i in range(max(1, len(lines) - window + 1))]
        found[solution.name] = [run for run in runs if run not in lesson]
    return found


def test_the_handout_holds_no_worked_answer_and_says_where_they_are(handout: Path) -> None:
    with zipfile.ZipFile(handout) as archive:
        names = archive.namelist()
        files = {name: _file_lines(name, archive.read(name)) for name in names if name.endswith((".py", ".ipynb"))}
        note = archive.read(f"{PREFIX}SOLUTIONS.md").decode()
    assert [n for n in names if n.startswith(tuple(PREFIX + folder for folder in LEFT_OUT))] == []
    assert f"{PREFIX}notebooks/00_start_here.ipynb" in names and f"{PREFIX}Makefile" in names
    assert "notebooks/solutions/" in note
    found = answers()
    assert found and all(found.values()), f"a solution without an answer to look for: {found}"
    for solution, runs in found.items():  # the search finds each answer where it is: in its solution
        text = _file_lines(solution, (ROOT / "notebooks" / "solutions" / solution).read_bytes())
        assert all(run in text for run in runs), solution
    leaked = [
        f"{solution} -> {name}: {run!r}"
        for solution, runs in found.items()
        for run in runs
        for name, text in files.items()
        if run in text
    ]
    assert leaked == [], leaked[:10]


def test_make_handout_refuses_uncommitted_edits_and_a_copy_without_git_in_one_line(clone: Path, tmp_path: Path) -> None:
    readme = clone / "README.md"
    readme.write_text(readme.read_text() + "\nAn edit not committed.\n")
    try:
        edited = subprocess.run(["make", "-C", str(clone), "handout"], capture_output=True, text=True, timeout=60)
    finally:
        subprocess.run(["git", "-C", str(clone), "checkout", "-q", "README.md"], check=True)
    copy = tmp_path / "copy"
    shutil.copytree(clone, copy, ignore=shutil.ignore_patterns(".git"))
    no_git = subprocess.run(["make", "-C", str(copy), "handout"], capture_output=True, text=True, timeout=60)
    for result, says in ((edited, "commit or set aside your edits first"), (no_git, "has no git repository")):
        lines = [line for line in result.stderr.splitlines() if not line.startswith(("make: ", "make["))]
        assert result.returncode != 0 and len(lines) == 1 and says in lines[0], result.stderr


def test_the_unzipped_handout_collects_its_whole_suite_and_passes_a_part_of_it(handout: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(handout) as archive:
        archive.extractall(tmp_path)
    course = tmp_path / PREFIX.rstrip("/")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k != "CI"}
    pytest_command = [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "--rootdir", str(course)]
    collected = subprocess.run(
        [*pytest_command, "--collect-only"], cwd=course, env=env, capture_output=True, text=True, timeout=600
    )
    assert collected.returncode == 0, collected.stdout[-3000:]
    part = ["tests/test_environment.py", "tests/test_lesson_pairs.py", "notebooks/01_grad_cam.ipynb"]
    # test_environment.py's tests of the interpreter and of torchvision's import start Pythons of their own: they
    # test the installed packages, the same here as in the suite that runs this test, and take 14 s; left out.
    part += [
        "tests/test_site.py",
        "-k",
        "not test_make_takes and not torchvision and not importing_utils and not stand_in "
        "and (not test_site.py or docstring or found_by_file_name "
        "or repositorys_guide or update_guide or without_agenda)",
    ]
    ran = subprocess.run([*pytest_command, *part], cwd=course, env=env, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stdout[-4000:]
    assert " passed" in ran.stdout.splitlines()[-1] and "failed" not in ran.stdout.splitlines()[-1]
