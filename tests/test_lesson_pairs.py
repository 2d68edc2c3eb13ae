"""Every lesson with an exercise and its worked solution: the same notebook except the answer.

A solution in ``notebooks/solutions/`` is the lesson with its ``answer`` cells written: every other
cell is the same (links to sibling lessons gain ``../``, since the solution lives one folder down),
the learner's ``answer`` cells still raise ``NotImplementedError``, the learner's ``check`` cells are
the only cells allowed to raise (tagged ``raises-exception`` for nbval: an unanswered exercise stops
Run All there, by design) and the solution's checks must pass (no such tag).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "notebooks" / "solutions"
PAIRS = sorted(p.name for p in SOLUTIONS.glob("[0-9][0-9]_*.ipynb")) if SOLUTIONS.exists() else []

pytestmark = pytest.mark.skipif(
    not SOLUTIONS.exists() and not os.environ.get("CI"), reason="hand-out copy: notebooks/solutions/ left out"
)


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def tags(cell: dict) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def source(cell: dict) -> str:
    return "".join(cell["source"])


def as_from_lessons_folder(text: str) -> str:
    """A solution's markdown as the lesson folder would write it: ``](../01_x.ipynb`` -> ``](01_x.ipynb``."""
    return re.sub(r"\]\(\.\./(\d\d_[^)/]+\.ipynb)", r"](\1", text)


def test_every_lesson_with_an_exercise_has_a_solution() -> None:
    with_answers = sorted(
        p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb") if any("answer" in tags(c) for c in cells(p))
    )
    assert with_answers == PAIRS, "a lesson with an answer cell needs notebooks/solutions/<same name>, and back"
    assert len(PAIRS) >= 6


@pytest.mark.parametrize("name", PAIRS)
def test_a_solution_is_its_lesson_with_the_answer_written(name: str) -> None:
    learner, solution = cells(ROOT / "notebooks" / name), cells(SOLUTIONS / name)
    assert [c["id"] for c in learner] == [c["id"] for c in solution], f"{name}: the two versions have different cells"
    answers = [i for i, c in enumerate(learner) if "answer" in tags(c)]
    assert answers and answers == [i for i, c in enumerate(solution) if "answer" in tags(c)]
    for i, (ours, theirs) in enumerate(zip(learner, solution)):
        if i in answers:
            assert "raise NotImplementedError" in source(ours), f"{name}: answer cell {i} is already answered"
            assert "NotImplementedError" not in source(theirs), f"{name}: the solution leaves cell {i} unanswered"
        else:
            assert source(ours) == as_from_lessons_folder(source(theirs)), f"{name}: cell {i} differs"


@pytest.mark.parametrize("name", PAIRS)
def test_only_the_lessons_check_cells_may_raise_and_they_call_a_checker(name: str) -> None:
    learner, solution = cells(ROOT / "notebooks" / name), cells(SOLUTIONS / name)
    checks = {i for i, c in enumerate(learner) if "check" in tags(c)}
    assert checks and checks == {i for i, c in enumerate(solution) if "check" in tags(c)}
    assert {i for i, c in enumerate(learner) if "raises-exception" in tags(c)} == checks
    assert all(re.search(r"\bcheck_\w+\(", source(learner[i])) for i in checks), (
        f"{name}: a check cell calls no checker"
    )
    assert not any("raises-exception" in tags(c) for c in solution), f"{name}: the solution's checks must pass"


@pytest.mark.parametrize("name", PAIRS)
def test_links_from_a_solution_reach_real_notebooks(name: str) -> None:
    for cell in cells(SOLUTIONS / name):
        if cell["cell_type"] == "markdown":
            for target in re.findall(r"\]\(([^)#\s]+\.ipynb)", source(cell)):
                assert (SOLUTIONS / target).resolve().is_file(), f"{name}: link to {target} goes nowhere"
