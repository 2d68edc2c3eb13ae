"""Lesson 09's checker, tested without its answer: every diagnosis fires, and a rounded share is named as rounded.

The hand-out ships this file, so no share here is computed by hand: each wrong answer is built from the course's
reference (``utils.shortcuts.box_share``) or from the checker's own table of mistakes.
tests/solutions/test_solutions_09_clever_hans.py holds the worked answer and the mistakes written from scratch. The
last test keeps the lesson's questions in shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from _shared import source_as_written

import utils.exercises.shortcuts as share_checker
from utils.exercises import AnswerCheckError, Verdict
from utils.exercises.shortcuts import check_box_share, diagnose_box_share
from utils.shortcuts import Box, box_share

ROOT = Path(__file__).resolve().parents[1]
LESSON = "09_clever_hans.ipynb"
BOX = Box(top=2, left=5, height=3, width=4, image_size=(10, 12))  # not square, not on the diagonal
COMMON = {"not attempted", "raised", "type", "verdict"}
"""Diagnoses every checker shares (utils.exercises.call_answer and answer_array): tests/test_exercises_common.py."""


@pytest.fixture(scope="module")
def gbp_like() -> torch.Tensor:
    """A signed 1 x 3 x 10 x 12 map, like a GBP map."""
    return torch.randn(1, 3, 10, 12, generator=torch.Generator().manual_seed(7))


def of_share(change: Callable[[float], Any]) -> Callable[..., Any]:
    """An answer that returns ``change`` of the reference's share."""
    return lambda saliency, box: change(box_share(saliency, box))


CASES: dict[str, tuple[Callable[..., Any], str]] = {
    "rounded": (of_share(lambda share: round(share, 3)), "rounded to 3 decimals; return it unrounded"),
    "range": (lambda s, b: 1.5, "a share lies between 0 and 1"),
    "value": (lambda s, b: 0.5, "divide the sum inside the box"),
    "not a number": (lambda s, b: np.array([0.1, 0.2]), r"shape \(2,\); return one number"),
    "not finite": (lambda s, b: float("nan"), "is the map's total zero"),
}


def assert_named(verdict: Verdict, reason: str, words: str = "") -> None:
    assert (verdict.status, verdict.reason) == ("wrong", reason), verdict.message
    assert verdict.message.startswith(f"Not yet right ({reason}): ") and "\n" not in verdict.message
    assert re.search(words, verdict.message), verdict.message


@pytest.mark.parametrize("reason", sorted(CASES))
def test_each_diagnosis_fires(gbp_like, reason: str) -> None:
    answer, words = CASES[reason]
    assert_named(diagnose_box_share(answer, gbp_like, BOX), reason, words)


@pytest.mark.parametrize("saliency", ["gbp", "cam"])
def test_each_mistake_in_the_table_is_named(gbp_like, saliency: str) -> None:
    values = gbp_like if saliency == "gbp" else gbp_like[:, :1].abs()
    mistakes = share_checker._mistakes(values, BOX)
    assert {"outside", "density", "percent", "rows and columns", "box +1", "box -1"} <= set(mistakes)
    for reason, (share, words) in mistakes.items():
        if reason == "signed" and saliency == "cam":
            continue  # a map without negative values: signed and absolute are one share
        if reason == "one channel" and saliency == "cam":
            continue  # a one-channel map: its one channel is all of it
        assert_named(diagnose_box_share(share, values, BOX), reason, re.escape(words))


def test_every_diagnosis_has_a_test(gbp_like) -> None:
    named = set(re.findall(r'wrong\(\s*"([^"]+)"', source_as_written(share_checker)))
    assert named <= set(CASES) | COMMON, named - set(CASES) - COMMON


@pytest.mark.parametrize(
    "answer, words",
    [
        (lambda s, b: "0.3", "the answer is a str; return one number"),
        (lambda s, b: True, "True/False"),
        (lambda s, b: [0.1, "x"], "the answer is a list of something other than numbers"),
        (lambda s, b: np.array(["0.3"]), "the answer is an array of dtype <U3"),
        (lambda s, b: 3, None),
    ],
    ids=["str", "bool", "mixed-list", "str-array", "int"],
)
def test_answers_that_are_not_a_share_are_named_in_plain_words(gbp_like, answer, words) -> None:
    verdict = diagnose_box_share(answer, gbp_like, BOX)
    assert not verdict.passed and "\n" not in verdict.message
    assert words is None or words in verdict.message, verdict.message
    assert "a ndarray" not in verdict.message and "a int" not in verdict.message and "a array" not in verdict.message


def test_the_reference_passes_as_function_number_tensor_or_list(gbp_like, capsys) -> None:
    expected = box_share(gbp_like, BOX)
    for answer in (box_share, expected, torch.tensor(expected), [expected], np.float32(expected)):
        assert diagnose_box_share(answer, gbp_like, BOX).passed, answer
    assert check_box_share(box_share, gbp_like, BOX, label="GBP").passed
    assert capsys.readouterr().out.startswith("GBP: Correct: ")


@pytest.mark.parametrize("answer", [None, ...])
def test_no_answer_is_not_attempted(gbp_like, answer) -> None:
    assert diagnose_box_share(answer, gbp_like, BOX).status == "not attempted"


def test_an_unanswered_notebook_function_is_not_attempted_and_the_check_stops(gbp_like) -> None:
    def my_box_share(saliency, box):
        raise NotImplementedError("write my_box_share in the cell marked YOUR ANSWER")

    assert diagnose_box_share(my_box_share, gbp_like, BOX).status == "not attempted"
    with pytest.raises(AnswerCheckError, match="Not attempted"):
        check_box_share(my_box_share, gbp_like, BOX, label="GBP")


# --- the lesson's questions ----------------------------------------------------------------------


def read_cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def test_the_lesson_ends_with_questions_whose_answers_are_folded():
    learner = read_cells(ROOT / "notebooks" / LESSON)
    text = "".join("".join(c["source"]) for c in learner if c["cell_type"] == "markdown")
    questions = text.split("## Check your understanding", 1)[-1]
    assert "## Check your understanding" in text and 2 <= questions.count("<details><summary>Answer</summary>") <= 4
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in learner if c["cell_type"] == "code")
