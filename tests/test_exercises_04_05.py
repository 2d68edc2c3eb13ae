"""The checkers of lessons 04 and 05, tested without their answers: every diagnosis fires, and min-max scaling is
refused on maps whose minimum is 0, like the lesson's.

The hand-out ships this file, so no answer here is written out as a learner would: each is built from the course's
references (``utils.discriminativity.discriminativity_map`` and ``scale_01``, ``utils.sanity.edge_map``) or from the
checkers' own tables of mistakes. tests/solutions/test_solutions_04_05.py holds the worked answers and the mistakes
written from scratch. The last test keeps each lesson's questions in shape.
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

import utils.exercises.discriminativity as discriminativity_checker
import utils.exercises.sanity as edge_checker
from utils.discriminativity import discriminativity_map, scale_01
from utils.exercises import AnswerCheckError, Verdict
from utils.exercises.discriminativity import check_discriminativity_map, diagnose_discriminativity_map
from utils.exercises.sanity import check_edge_map, diagnose_edge_map
from utils.sanity import edge_map

ROOT = Path(__file__).resolve().parents[1]
LESSONS = {
    "04": ("04_discriminativity_challenge.ipynb", "check_discriminativity_map"),
    "05": ("05_sanity_checks.ipynb", "check_edge_map"),
}
COMMON = {"not attempted", "raised", "type", "verdict"}
"""Diagnoses every checker shares (utils.exercises.call_answer and answer_array): tests/test_exercises_common.py."""


def named_in(module: Any) -> set[str]:
    """The reasons a checker module names in its source (``wrong("reason", ...)``)."""
    return set(re.findall(r'wrong\(\s*"([^"]+)"', source_as_written(module)))


def assert_named(verdict: Verdict, reason: str, words: str = "") -> None:
    """``verdict`` refuses the answer for ``reason``, in one line that contains ``words`` (a regex)."""
    assert (verdict.status, verdict.reason) == ("wrong", reason), verdict.message
    assert verdict.message.startswith(f"Not yet right ({reason}): ") and "\n" not in verdict.message
    assert re.search(words, verdict.message), verdict.message


@pytest.fixture(scope="module")
def rich_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """Two signed 1 x 3 x 8 x 8 maps with unequal maxima, like a GBP pair."""
    generator = torch.Generator().manual_seed(3)
    return torch.randn(1, 3, 8, 8, generator=generator), 5 * torch.randn(1, 3, 8, 8, generator=generator)


@pytest.fixture(scope="module")
def cam_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """Two 1 x 1 x 8 x 8 maps with zeros, like Grad-CAM after its ReLU: each map's minimum is 0."""
    generator = torch.Generator().manual_seed(4)
    return torch.relu(torch.randn(1, 1, 8, 8, generator=generator)), torch.relu(
        torch.randn(1, 1, 8, 8, generator=generator)
    )


# --- lesson 04: the discriminativity map -----------------------------------------------------------------------------


def min_max_of_the_reference(s_a: torch.Tensor, s_b: torch.Tensor) -> np.ndarray:
    """Min-max scaling: the reference's scaled maps, minimum subtracted (the same as min-max of the raw magnitudes)."""
    return discriminativity_checker._min_max(scale_01(s_a)) - discriminativity_checker._min_max(scale_01(s_b))


DISCRIMINATIVITY_CASES: dict[str, tuple[Callable[..., Any], str]] = {
    "channels": (lambda a, b: np.stack([discriminativity_map(a, b)] * 3), "reduce each map to one channel"),
    "shape": (lambda a, b: discriminativity_map(a, b)[:4, :4], r"shape \(4, 4\), expected 8 x 8.*Upsample Grad-CAM"),
    "not finite": (lambda a, b: discriminativity_map(a, b) * np.nan, "leave an all-zero map at zero"),
    "values": (lambda a, b: discriminativity_map(a, b) + 0.01, "the largest difference is at pixel"),
    "not scaled": (lambda a, b: 3 * discriminativity_map(a, b) + 0.3, r"outside \[-1, 1\]"),
    "min-max": (min_max_of_the_reference, "minimum was subtracted"),
}


@pytest.mark.parametrize("reason", sorted(DISCRIMINATIVITY_CASES))
def test_each_discriminativity_diagnosis_fires(rich_pair, reason: str) -> None:
    answer, words = DISCRIMINATIVITY_CASES[reason]
    assert_named(diagnose_discriminativity_map(answer, *rich_pair), reason, words)


def test_each_mistake_in_the_discriminativity_table_is_named(rich_pair) -> None:
    expected = discriminativity_map(*rich_pair)
    for reason, text, candidate in discriminativity_checker._mistakes(*rich_pair, expected):
        assert_named(diagnose_discriminativity_map(candidate, *rich_pair), reason, re.escape(text))


def test_every_discriminativity_diagnosis_has_a_test(rich_pair) -> None:
    table = {
        reason for reason, _, _ in discriminativity_checker._mistakes(*rich_pair, discriminativity_map(*rich_pair))
    }
    assert named_in(discriminativity_checker) <= set(DISCRIMINATIVITY_CASES) | table | COMMON


def test_min_max_scaling_is_refused_on_maps_whose_minimum_is_0_like_the_lessons(cam_pair) -> None:
    """On these maps min-max equals the division by the maximum, so the checker tries a pair without zeros too."""
    assert np.allclose(min_max_of_the_reference(*cam_pair), discriminativity_map(*cam_pair))
    verdict = diagnose_discriminativity_map(min_max_of_the_reference, *cam_pair)
    assert_named(verdict, "min-max", "right on these maps, but not on a test pair whose maps have no zero")
    assert diagnose_discriminativity_map(discriminativity_map, *cam_pair).passed
    assert diagnose_discriminativity_map(min_max_of_the_reference(*cam_pair), *cam_pair).passed, (
        "an array cannot be tried on other maps: on these it is right"
    )


def test_the_test_pair_has_the_type_and_place_of_the_maps_and_no_zero(cam_pair) -> None:
    for saliency in (cam_pair[0], cam_pair[0].numpy(), cam_pair[0].double()):
        probe = discriminativity_checker._probe(saliency, seed=1)
        assert type(probe) is type(saliency) and probe.shape == saliency.shape and probe.dtype == saliency.dtype
        assert float(np.abs(np.asarray(probe)).min()) >= 0.5


def test_the_reference_passes_and_an_all_zero_map_is_no_division_by_zero(capsys) -> None:
    s_a, blank = torch.rand(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    assert check_discriminativity_map(discriminativity_map, s_a, blank, label="Grad-CAM").passed
    assert capsys.readouterr().out.startswith("Grad-CAM: Correct: your map equals S_A - S_B")
    assert diagnose_discriminativity_map(lambda a, b: a[0, 0] / a.max() - b[0, 0] / b.max(), s_a, blank).reason == (
        "not finite"
    )


@pytest.mark.parametrize(
    "answer", [None, ..., NotImplemented, lambda a, b: None], ids=["None", "Ellipsis", "NotImplemented", "returns None"]
)
def test_no_answer_is_not_attempted(rich_pair, answer) -> None:
    verdict = diagnose_discriminativity_map(answer, *rich_pair)
    assert (verdict.status, verdict.reason, verdict.passed) == ("not attempted", "not attempted", False)
    assert verdict.message.startswith("Not attempted:") and "YOUR ANSWER" in verdict.message


def test_an_unanswered_notebook_function_is_not_attempted_and_the_check_stops(rich_pair, capsys) -> None:
    def my_discriminativity_map(s_a, s_b):
        raise NotImplementedError("write my_discriminativity_map")

    with pytest.raises(
        AnswerCheckError, match=r"^Grad-CAM: Not attempted: my_discriminativity_map raises NotImplementedError"
    ):
        check_discriminativity_map(my_discriminativity_map, *rich_pair, label="Grad-CAM")
    assert capsys.readouterr().out == "", "a failed check prints nothing; the error says it all"


def test_a_learner_function_cannot_change_the_maps_it_is_checked_on(rich_pair) -> None:
    s_a, s_b = rich_pair
    kept = s_a.clone()

    def vandal(a, b):
        a.mul_(0)
        return a[0, 0]

    assert not diagnose_discriminativity_map(vandal, s_a, s_b).passed
    assert torch.equal(s_a, kept)


# --- lesson 05: the edge detector ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    """A 24 x 28 x 3 picture in [0, 1] with structure at several contrasts, like LessonPhoto.picture."""
    rows, cols = np.meshgrid(np.linspace(0, 1, 24), np.linspace(0, 1, 28), indexing="ij")
    base = np.stack([np.sin(6 * rows) * cols, rows**2, (rows + cols) / 2], axis=-1)
    return (0.5 + 0.5 * base + 0.05 * np.random.default_rng(0).random((24, 28, 3))).clip(0, 1) / 1.05


EDGE_CASES: dict[str, tuple[Callable[..., Any], str]] = {
    "channels": (lambda p: np.stack([edge_map(p[..., c]) for c in range(3)], axis=-1), "one map per colour channel"),
    "shape": (lambda p: edge_map(p)[:10], r"shape \(10, 28\), expected 24 x 28"),
    "not finite": (lambda p: edge_map(p) * np.nan, "NaN"),
    "zero": (lambda p: np.zeros(p.shape[:2]), "zero everywhere"),
    "sign": (lambda p: -edge_map(p), "negative values"),
    "values": (lambda p: edge_map(p) + 0.5, "not proportional"),
}


@pytest.mark.parametrize("reason", sorted(EDGE_CASES))
def test_each_edge_map_diagnosis_fires(picture, reason: str) -> None:
    answer, words = EDGE_CASES[reason]
    assert_named(diagnose_edge_map(answer, picture), reason, words)


def test_each_mistake_in_the_edge_map_table_is_named(picture) -> None:
    for reason, text, candidate in edge_checker._mistakes(picture):
        assert_named(diagnose_edge_map(candidate, picture), reason, re.escape(text))


def test_every_edge_map_diagnosis_has_a_test(picture) -> None:
    table = {reason for reason, _, _ in edge_checker._mistakes(picture)}
    assert named_in(edge_checker) <= set(EDGE_CASES) | table | COMMON


@pytest.mark.parametrize(
    "answer",
    [edge_map, lambda p: torch.from_numpy(10 * edge_map(p)).float()[None]],
    ids=["reference", "tensor-scaled"],
)
def test_the_reference_passes_in_any_usual_form(picture, answer) -> None:
    assert diagnose_edge_map(answer, picture).passed


@pytest.mark.parametrize("answer", [None, ..., lambda p: None], ids=["None", "Ellipsis", "returns None"])
def test_no_edge_map_is_not_attempted(picture, answer) -> None:
    verdict = diagnose_edge_map(answer, picture)
    assert verdict.status == "not attempted" and "YOUR ANSWER" in verdict.message


def test_the_edge_checker_never_changes_the_picture(picture) -> None:
    kept = picture.copy()

    def vandal(p):
        p[:] = 0
        return edge_map(kept)

    assert diagnose_edge_map(vandal, picture).passed
    assert np.array_equal(picture, kept)
    with pytest.raises(AnswerCheckError, match=r"^cat: Not yet right \(sign\)"):
        check_edge_map(lambda p: -edge_map(p), picture, label="cat")


# --- the lessons' questions ------------------------------------------------------------------------


def read_cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


@pytest.mark.parametrize("lesson", sorted(LESSONS))
def test_each_lesson_ends_with_questions_whose_answers_are_folded(lesson):
    learner = read_cells(ROOT / "notebooks" / LESSONS[lesson][0])
    text = "".join("".join(c["source"]) for c in learner if c["cell_type"] == "markdown")
    questions = text.split("## Check your understanding", 1)[-1]
    assert "## Check your understanding" in text and 2 <= questions.count("<details><summary>Answer</summary>") <= 4
    code = "".join("".join(c["source"]) for c in learner if c["cell_type"] == "code")
    assert not re.search(r"clip_percentile\s*=\s*\d", code), "use the named default, GRADIENT_CLIP_PERCENTILE"
