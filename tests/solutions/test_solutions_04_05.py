"""Worked answers to the exercises of lessons 04 and 05, and each usual mistake written out as a learner would.

These tests hold the answers, so the hand-out leaves this folder out (tests/solutions/): a right answer written from
scratch passes in every form a learner may give, and each mistake written independently of the checker is the one
the checker names. tests/test_exercises_04_05.py tests the same checkers without answers.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage import filters

from utils.exercises import AnswerCheckError
from utils.exercises.discriminativity import check_discriminativity_map, diagnose_discriminativity_map
from utils.exercises.sanity import check_edge_map, diagnose_edge_map
from utils.sanity import edge_map


@pytest.fixture(scope="module")
def rich_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """Two signed 1 x 3 x 8 x 8 maps with unequal maxima, like a GBP pair."""
    generator = torch.Generator().manual_seed(3)
    return torch.randn(1, 3, 8, 8, generator=generator), 5 * torch.randn(1, 3, 8, 8, generator=generator)


# --- lesson 04: the discriminativity map -----------------------------------------------------------------------------


def a_learners_answer(s_a, s_b):
    """What the lesson asks for, written the way a learner might."""

    def scaled(s):
        m = s[0].abs().sum(dim=0)
        return m / m.max() if m.max() > 0 else m

    return scaled(s_a) - scaled(s_b)


def min_max(s: torch.Tensor) -> torch.Tensor:
    """The other common way to scale to [0, 1], which the lesson does not ask for."""
    m = s[0].abs().sum(dim=0)
    return (m - m.min()) / (m.max() - m.min())


def test_a_correct_answer_passes_as_function_array_or_tensor(rich_pair):
    s_a, s_b = rich_pair
    for answer in (a_learners_answer, a_learners_answer(s_a, s_b), a_learners_answer(s_a, s_b).numpy()[None, None]):
        verdict = diagnose_discriminativity_map(answer, s_a, s_b)
        assert verdict.passed and verdict.status == verdict.reason == "correct", verdict  # float32 rounding is fine


def test_a_deliberately_wrong_answer_is_caught_for_the_right_reason(rich_pair):
    s_a, s_b = rich_pair

    def swapped(s_a, s_b):  # the classes in the wrong order
        return a_learners_answer(s_b, s_a)

    with pytest.raises(
        AnswerCheckError,
        match=r"^GBP: Not yet right \(sign\): the answer is S_B - S_A: the classes are in the wrong order",
    ):
        check_discriminativity_map(swapped, s_a, s_b, label="GBP")


@pytest.mark.parametrize(
    "mistake, reason, words",
    [
        (lambda a, b: a[0].abs().sum(0) - b[0].abs().sum(0), "not scaled", "divide each map by its own maximum"),
        (lambda a, b: b[0].abs().sum(0) - a[0].abs().sum(0), "not scaled", "classes are in the wrong order"),
        (
            lambda a, b: (a[0].abs().sum(0) - b[0].abs().sum(0)) / max(a.abs().sum(1).max(), b.abs().sum(1).max()),
            "joint scaling",
            "divided by the same maximum",
        ),
        (
            lambda a, b: (d := a[0].abs().sum(0) - b[0].abs().sum(0)) / d.abs().max(),
            "scaled difference",
            r"scale each map to \[0, 1\] first",
        ),
        (lambda a, b: min_max(a) - min_max(b), "min-max", "minimum was subtracted; divide by the maximum only"),
        (lambda a, b: a_learners_answer(a.clamp(min=0), b.clamp(min=0)), "reduction", "only the positive parts"),
        (
            lambda a, b: a_learners_answer(a.sum(1, keepdim=True), b.sum(1, keepdim=True)),
            "reduction",
            "summed before taking absolute values",
        ),
        (lambda a, b: a_learners_answer(a, a), "zero", "subtracted from itself"),
        (lambda a, b: a_learners_answer(a, torch.zeros_like(b)), "not subtracted", "subtract the scaled S_B"),
        (lambda a, b: a_learners_answer(a, b)[None].repeat(3, 1, 1), "channels", "reduce each map to one channel"),
        (lambda a, b: a_learners_answer(a, b)[:4, :4], "shape", r"shape \(4, 4\), expected 8 x 8.*Upsample Grad-CAM"),
        (lambda a, b: a_learners_answer(a, b) * float("nan"), "not finite", "leave an all-zero map at zero"),
        (lambda a, b: a_learners_answer(a, b) + 0.3, "values", r"the largest difference is at pixel"),
        (lambda a, b: 3 * a_learners_answer(a, b) + 0.3, "not scaled", r"outside \[-1, 1\]"),
        (
            lambda a, b: "a string",
            "type",
            "the answer is a str; return the map as an H x W numpy array or torch tensor",
        ),
        (lambda a, b: a.no_such_method(), "raised", "raised AttributeError"),
    ],
    ids=[
        "not-scaled",
        "not-scaled-and-swapped",
        "joint-scaling",
        "scaled-difference",
        "min-max",
        "positive-parts",
        "abs-of-sum",
        "same-map-twice",
        "no-subtraction",
        "channels",
        "shape",
        "nan",
        "values",
        "out-of-range",
        "type",
        "raised",
    ],
)
def test_each_usual_mistake_is_named(rich_pair, mistake, reason, words):
    verdict = diagnose_discriminativity_map(mistake, *rich_pair)
    assert (verdict.status, verdict.reason) == ("wrong", reason), verdict.message
    assert verdict.message.startswith(f"Not yet right ({reason}): ")
    assert re.search(words, verdict.message), verdict.message


def test_min_max_scaling_is_refused_on_maps_whose_minimum_is_0_like_the_lessons():
    """Grad-CAM and GBP maps have zeros: there min-max equals the division by the maximum, so the checker tries a
    pair without zeros too."""
    generator = torch.Generator().manual_seed(4)
    cam_a, cam_b = (torch.relu(torch.randn(1, 1, 8, 8, generator=generator)) for _ in range(2))
    assert min_max(cam_a).min() == 0 and torch.allclose(min_max(cam_a), a_learners_answer(cam_a, torch.zeros(1)))
    verdict = diagnose_discriminativity_map(lambda a, b: min_max(a) - min_max(b), cam_a, cam_b)
    assert verdict.reason == "min-max" and "right on these maps, but not on a test pair" in verdict.message
    assert diagnose_discriminativity_map(a_learners_answer, cam_a, cam_b).passed


def test_the_checker_accepts_an_all_zero_map_done_right_and_catches_division_by_zero():
    s_a, blank = torch.rand(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    assert diagnose_discriminativity_map(a_learners_answer, s_a, blank).passed

    def divides_by_zero(s_a, s_b):
        return s_a[0, 0] / s_a.max() - s_b[0, 0] / s_b.max()

    assert diagnose_discriminativity_map(divides_by_zero, s_a, blank).reason == "not finite"


def test_a_learner_function_cannot_change_the_maps_it_is_checked_on(rich_pair):
    s_a, s_b = rich_pair
    kept = s_a.clone()

    def vandal(a, b):
        a.mul_(0)
        return a_learners_answer(a, b)

    diagnose_discriminativity_map(vandal, s_a, s_b)
    assert torch.equal(s_a, kept)


@pytest.mark.parametrize(
    "answer, words",
    [
        (
            lambda a, b: a_learners_answer(a, b).numpy() + 1j,
            r"the answer is a complex array \(dtype complex(64|128)\); the map is real",
        ),
        (
            lambda a, b: a_learners_answer(a, b).to(torch.complex64),
            r"the answer is a complex tensor \(dtype complex64\)",
        ),
        (lambda a, b: a_learners_answer(a, b).numpy() > 0, r"the answer is a boolean array \(dtype bool\)"),
        (lambda a, b: a_learners_answer(a, b) > 0, r"the answer is a boolean tensor \(dtype bool\)"),
        (lambda a, b: a_learners_answer(a, b).numpy().astype(str), r"the answer is an array of dtype <U"),
    ],
    ids=["complex-array", "complex-tensor", "bool-array", "bool-tensor", "strings"],
)
def test_answers_that_are_not_real_maps_are_named_by_what_they_are(rich_pair, answer, words):
    verdict = diagnose_discriminativity_map(answer, *rich_pair)
    assert (verdict.status, verdict.reason) == ("wrong", "type"), verdict.message
    assert re.search(words, verdict.message), verdict.message
    assert "a ndarray" not in verdict.message and "a array" not in verdict.message


def test_a_complex_answer_with_the_right_real_part_is_not_accepted(rich_pair):
    with pytest.raises(AnswerCheckError, match=r"\(type\): the answer is a complex array"):
        check_discriminativity_map(a_learners_answer(*rich_pair).numpy() + 1j, *rich_pair)


# --- lesson 05: the edge detector ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    """A 24 x 28 x 3 picture in [0, 1] with structure at several contrasts, like LessonPhoto.picture."""
    rows, cols = np.meshgrid(np.linspace(0, 1, 24), np.linspace(0, 1, 28), indexing="ij")
    base = np.stack([np.sin(6 * rows) * cols, rows**2, (rows + cols) / 2], axis=-1)
    return (0.5 + 0.5 * base + 0.05 * np.random.default_rng(0).random((24, 28, 3))).clip(0, 1) / 1.05


def gray_of(picture: np.ndarray) -> np.ndarray:
    return picture.mean(axis=-1)


@pytest.mark.parametrize(
    "answer",
    [
        lambda p: np.hypot(ndimage.sobel(gray_of(p), axis=1), ndimage.sobel(gray_of(p), axis=0)),
        lambda p: filters.sobel(gray_of(p)),  # scaled differently and reflected at the border: still right
        lambda p: np.sqrt(filters.sobel_h(gray_of(p)) ** 2 + filters.sobel_v(gray_of(p)) ** 2),
        lambda p: torch.from_numpy(10 * edge_map(p)).float()[None],
    ],
    ids=["scipy", "skimage-sobel", "skimage-h-v", "tensor-scaled"],
)
def test_a_correct_edge_map_passes_in_any_usual_form(picture, answer):
    verdict = diagnose_edge_map(answer, picture)
    assert verdict.passed and verdict.reason == "correct", verdict.message


def test_a_deliberately_wrong_edge_map_is_caught_for_the_right_reason(picture):
    def squared(p):
        gray = gray_of(p)
        return ndimage.sobel(gray, axis=1) ** 2 + ndimage.sobel(gray, axis=0) ** 2

    with pytest.raises(AnswerCheckError, match=r"^cat: Not yet right \(squared\): the answer is gx\*\*2 \+ gy\*\*2"):
        check_edge_map(squared, picture, label="cat")


@pytest.mark.parametrize(
    "mistake, reason, words",
    [
        (lambda p: np.abs(ndimage.sobel(gray_of(p), axis=1)), "one direction", "only the horizontal gradient gx"),
        (lambda p: np.abs(ndimage.sobel(gray_of(p), axis=0)), "one direction", "only the vertical gradient gy"),
        (
            lambda p: np.abs(ndimage.sobel(gray_of(p), axis=1)) + np.abs(ndimage.sobel(gray_of(p), axis=0)),
            "L1",
            r"\|gx\| \+ \|gy\|",
        ),
        (lambda p: filters.sobel(p @ np.array([0.2125, 0.7154, 0.0721])), "gray", "luminance weights"),
        (lambda p: np.hypot(*np.gradient(gray_of(p))), "not Sobel", "plain differences"),
        (lambda p: ndimage.sobel(gray_of(p), axis=1) + ndimage.sobel(gray_of(p), axis=0), "sign", "negative values"),
        (lambda p: -edge_map(p), "sign", "negative values"),
        (
            lambda p: np.stack([edge_map(p[..., c]) for c in range(3)], axis=-1),
            "channels",
            "one map per colour channel",
        ),
        (lambda p: edge_map(p)[:10], "shape", r"shape \(10, 28\), expected 24 x 28"),
        (lambda p: edge_map(p) * np.nan, "not finite", "NaN"),
        (lambda p: np.zeros(p.shape[:2]), "zero", "zero everywhere"),
        (lambda p: edge_map(p) + 0.5, "values", "not proportional"),
        (lambda p: edge_map(p) > 1, "type", r"boolean array \(dtype bool\)"),
        (lambda p: edge_map(p) + 0j, "type", "complex128"),
        (lambda p: [[1.0]], "type", "the answer is a list"),
        (lambda p: p.no_such_method(), "raised", "raised AttributeError"),
    ],
    ids=[
        "gx-only",
        "gy-only",
        "l1",
        "luminance",
        "np-gradient",
        "signed",
        "negated",
        "per-channel",
        "shape",
        "nan",
        "zero",
        "offset",
        "bool",
        "complex",
        "list",
        "raised",
    ],
)
def test_each_usual_edge_map_mistake_is_named(picture, mistake, reason, words):
    verdict = diagnose_edge_map(mistake, picture)
    assert (verdict.status, verdict.reason) == ("wrong", reason), verdict.message
    assert re.search(words, verdict.message), verdict.message


def test_the_edge_checker_never_changes_the_picture(picture):
    kept = picture.copy()

    def vandal(p):
        p[:] = 0
        return edge_map(kept)

    assert diagnose_edge_map(vandal, picture).passed
    assert np.array_equal(picture, kept)
