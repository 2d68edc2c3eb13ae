"""The worked answer to lesson 09's exercise (the share of a map's mass in a box) and each usual mistake written out as
a learner would: the answer passes in every form a learner may give, each mistake is named for its reason.

The hand-out leaves this folder out (tests/solutions/); tests/test_exercises_09_clever_hans.py tests the same checker
without the answer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from utils.exercises import AnswerCheckError
from utils.exercises.shortcuts import check_box_share, diagnose_box_share
from utils.shortcuts import Box, box_share

ROOT = Path(__file__).resolve().parents[1]
LESSON = "09_clever_hans.ipynb"
BOX = Box(top=2, left=5, height=3, width=4, image_size=(10, 12))  # not square, not on the diagonal


@pytest.fixture(scope="module")
def gbp_like() -> torch.Tensor:
    """A signed 1 x 3 x 10 x 12 map, like a GBP map."""
    return torch.randn(1, 3, 10, 12, generator=torch.Generator().manual_seed(7))


def right(saliency: torch.Tensor, box: Box) -> float:
    magnitude = saliency[0].abs().sum(dim=0)
    return float(magnitude[box.top : box.top + box.height, box.left : box.left + box.width].sum() / magnitude.sum())


def test_a_correct_answer_passes_as_function_number_or_tensor(gbp_like):
    expected = box_share(gbp_like, BOX)
    assert diagnose_box_share(right, gbp_like, BOX).passed
    assert diagnose_box_share(expected, gbp_like, BOX).passed
    assert diagnose_box_share(torch.tensor(expected), gbp_like, BOX).passed
    assert diagnose_box_share(lambda s, b: np.float32(right(s, b)), gbp_like, BOX).passed


def with_box(
    saliency: torch.Tensor, rows: slice, columns: slice, *, signed: bool = False, channel: bool = False
) -> float:
    values = saliency[0]
    values = values[0].abs() if channel else (values.sum(0) if signed else values.abs().sum(0))
    return float(values[rows, columns].sum() / values.sum())


MISTAKES = {
    "signed": (lambda s, b: with_box(s, b.rows, b.columns, signed=True), "absolute values"),
    "one channel": (lambda s, b: with_box(s, b.rows, b.columns, channel=True), "all channels"),
    "outside": (lambda s, b: 1 - right(s, b), "outside the box"),
    "density": (lambda s, b: right(s, b) / b.share, "divided by the box's share"),
    "percent": (lambda s, b: 100 * right(s, b), "a fraction between 0 and 1"),
    "rows and columns": (
        lambda s, b: with_box(s, slice(b.left, b.left + b.width), slice(b.top, b.top + b.height)),
        "rows and columns are swapped",
    ),
    "box +1": (
        lambda s, b: with_box(s, slice(b.top, b.top + b.height + 1), slice(b.left, b.left + b.width + 1)),
        "one pixel too large",
    ),
    "box -1": (
        lambda s, b: with_box(s, slice(b.top, b.top + b.height - 1), slice(b.left, b.left + b.width - 1)),
        "one pixel too small",
    ),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_each_usual_mistake_is_caught_for_its_reason(gbp_like, mistake):
    answer, words = MISTAKES[mistake]
    verdict = diagnose_box_share(answer, gbp_like, BOX)
    assert verdict.status == "wrong" and verdict.reason == mistake, verdict
    assert words in verdict.message


def test_a_deliberately_wrong_answer_is_caught_for_the_right_reason(gbp_like):
    """Forgetting abs() is the mistake the lesson's GBP case exists for: signed values cancel."""
    verdict = diagnose_box_share(lambda s, b: with_box(s, b.rows, b.columns, signed=True), gbp_like, BOX)
    assert not verdict.passed and verdict.reason == "signed"
    with pytest.raises(AnswerCheckError, match=r"Not yet right \(signed\)"):
        check_box_share(lambda s, b: with_box(s, b.rows, b.columns, signed=True), gbp_like, BOX)


def test_a_rounded_share_is_named_as_rounded_not_as_a_wrong_reduction(gbp_like):
    verdict = diagnose_box_share(lambda s, b: round(right(s, b), 3), gbp_like, BOX)
    assert verdict.reason == "rounded" and "rounded to 3 decimals" in verdict.message, verdict.message
    assert "|values|" not in verdict.message


def test_a_passing_check_prints_its_verdict_and_returns_it(gbp_like, capsys):
    verdict = check_box_share(right, gbp_like, BOX, label="GBP")
    assert verdict.passed and capsys.readouterr().out.startswith("GBP: Correct: ")


def test_a_learner_function_cannot_change_the_map_it_is_checked_on(gbp_like):
    kept = gbp_like.clone()

    def vandal(saliency, box):
        share = right(saliency, box)
        saliency.zero_()
        return share

    assert diagnose_box_share(vandal, gbp_like, BOX).passed
    assert torch.equal(gbp_like, kept)


def test_a_one_channel_map_like_grad_cam_is_checked_too():
    cam = torch.rand(1, 1, 10, 12, generator=torch.Generator().manual_seed(1))
    assert diagnose_box_share(right, cam, BOX).passed
    assert diagnose_box_share(lambda s, b: 100 * right(s, b), cam, BOX).reason == "percent"
