"""Lesson 05's checker (utils/exercises/sanity.py), line by line: the exact line a learner reads for each plausible
wrong edge map, written here from scipy, NumPy and scikit-image rather than from the checker's own table; the
tolerance and the one-pixel border a right answer is given (make mutation, issue 26)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.color import rgb2gray

import utils.exercises.sanity as checker
from utils.exercises import AnswerCheckError
from utils.exercises.sanity import check_edge_map, diagnose_edge_map
from utils.sanity import edge_map

RIGHT = "Correct: your edge map equals the Sobel gradient magnitude of the gray picture (up to a constant factor)."
VALUES = (
    "Not yet right (values): the answer is not proportional to sqrt(gx**2 + gy**2) of the gray picture; check each "
    "step: gray = mean of the three channels, gx and gy = Sobel along the columns and the rows, then the magnitude."
)


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    """A 6 x 7 x 3 picture whose channels differ (luminance and the mean of the channels give other edges)."""
    rows, cols = np.meshgrid(np.linspace(0, 1, 6), np.linspace(0, 1, 7), indexing="ij")
    picture = np.stack([rows * cols, rows**2, (rows + cols) / 2], axis=-1)
    picture[2, 3] = [1.0, 0.0, 0.5]
    return picture


def message(answer, picture) -> str:
    return diagnose_edge_map(answer, picture).message


def sobel_xy(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return ndimage.sobel(gray, axis=1), ndimage.sobel(gray, axis=0)


@pytest.mark.parametrize("factor", [1.0, 3.0, 1 / (4 * np.sqrt(2))], ids=["scipy", "tripled", "skimage"])
def test_a_positive_multiple_of_the_edge_map_passes(picture, factor) -> None:
    assert message(factor * edge_map(picture), picture) == RIGHT


def test_a_map_one_per_colour_channel_is_told_to_make_the_picture_gray(picture) -> None:
    answer = np.stack([edge_map(picture[..., c]) for c in range(3)], axis=-1)
    assert message(answer, picture) == (
        "Not yet right (channels): the answer has shape (6, 7, 3), one map per colour channel; make the picture gray "
        "first: the mean of its three channels."
    )


@pytest.mark.parametrize("shape", [(6, 7, 2), (3, 6, 7), (3, 7), (6,)])
def test_any_other_shape_is_named_with_the_pictures_grid(picture, shape) -> None:
    assert message(np.ones(shape), picture) == (
        f"Not yet right (shape): the answer has shape {shape}, expected 6 x 7, the picture's grid."
    )


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_infinity_is_not_finite(picture, bad) -> None:
    answer = edge_map(picture)
    answer[0, 0] = bad  # on the border, which the comparison leaves out: still refused
    assert message(answer, picture) == "Not yet right (not finite): the answer contains NaN or infinite values."


def test_the_one_pixel_border_is_left_out_and_nothing_inside_it(picture) -> None:
    """Padding conventions differ on the border only: a map wrong there passes, one wrong a pixel inside does not."""
    right = edge_map(picture)
    for border in ((0, slice(None)), (-1, slice(None)), (slice(None), 0), (slice(None), -1)):
        answer = right.copy()
        answer[border] = 7.0
        assert message(answer, picture) == RIGHT, border
    for inside in ((1, 3), (-2, 3), (3, 1), (3, -2)):
        answer = right.copy()
        answer[inside] += 0.5
        assert message(answer, picture) == VALUES, inside


def test_a_map_zero_inside_the_border_is_zero_even_with_a_non_zero_border(picture) -> None:
    answer = np.zeros((6, 7))
    answer[0, :] = 1.0
    assert message(answer, picture) == (
        "Not yet right (zero): the answer is zero everywhere (away from the border); filter the gray picture with "
        "Sobel along the rows and the columns."
    )


def test_the_tolerance_is_relative_to_the_answers_largest_value(picture) -> None:
    right = 1000 * edge_map(picture)  # the largest value about 1,670
    near, off = right.copy(), right.copy()
    near[3, 3] += 0.05  # 3e-5 of the largest value
    off[3, 3] += 0.5  # 3e-4 of it
    assert message(near, picture) == RIGHT
    assert message(off, picture) == VALUES


def test_a_negative_multiple_is_a_signed_map_and_its_minimum_inside_the_border_is_printed(picture) -> None:
    answer = -edge_map(picture)
    answer[0, 0] = -100.0  # on the border: left out
    assert message(answer, picture) == (
        "Not yet right (sign): the answer has negative values (down to -1.67); an edge map is a magnitude, "
        "sqrt(gx**2 + gy**2)."
    )


def test_a_map_with_no_negative_values_that_is_wrong_gets_the_steps(picture) -> None:
    assert message(edge_map(picture) + 0.5, picture) == VALUES
    assert message(np.ones((6, 7)), picture) == VALUES


def test_gx_and_gy_alone_are_named_by_their_direction(picture) -> None:
    gx, gy = sobel_xy(picture.mean(axis=-1))
    assert message(np.abs(gx), picture) == (
        "Not yet right (one direction): the answer keeps only the horizontal gradient gx; combine both: "
        "sqrt(gx**2 + gy**2)."
    )
    assert message(np.abs(gy), picture) == (
        "Not yet right (one direction): the answer keeps only the vertical gradient gy; combine both: "
        "sqrt(gx**2 + gy**2)."
    )


def test_the_squared_and_the_l1_magnitudes_are_named(picture) -> None:
    gx, gy = sobel_xy(picture.mean(axis=-1))
    assert message(gx**2 + gy**2, picture) == (
        "Not yet right (squared): the answer is gx**2 + gy**2; take its square root, so that the map grows with the "
        "edge's contrast."
    )
    assert message(np.abs(gx) + np.abs(gy), picture) == (
        "Not yet right (L1): the answer is |gx| + |gy|; the exercise asks for the length of the gradient, "
        "sqrt(gx**2 + gy**2)."
    )


def test_scikit_images_luminance_and_numpys_gradient_are_named(picture) -> None:
    assert message(np.hypot(*sobel_xy(rgb2gray(picture))), picture) == (
        "Not yet right (gray): the picture was made gray with luminance weights (as skimage.color.rgb2gray); use the "
        "mean of the three channels."
    )
    rows, cols = np.gradient(picture.mean(axis=-1))
    assert message(np.hypot(cols, rows), picture) == (
        "Not yet right (not Sobel): the gradients are plain differences (np.gradient); use the Sobel filter "
        "(scipy.ndimage.sobel or skimage.filters.sobel_h / sobel_v)."
    )


def test_a_gray_picture_is_checked_as_it_is(picture) -> None:
    gray = picture.mean(axis=-1)
    gx, _ = sobel_xy(gray)
    assert message(edge_map(gray), gray) == RIGHT
    assert diagnose_edge_map(np.abs(gx), gray).reason == "one direction"
    rows, cols = np.gradient(gray)
    assert diagnose_edge_map(np.hypot(cols, rows), gray).reason == "not Sobel"


def test_a_tensor_picture_is_read_in_float64(picture) -> None:
    tensor = torch.from_numpy(picture).float()
    as_read = checker._as_array(tensor)
    assert as_read.dtype == np.float64 and np.array_equal(as_read, tensor.double().numpy())
    gx, gy = sobel_xy(tensor.double().numpy().mean(axis=-1))
    assert diagnose_edge_map(gx**2 + gy**2, tensor).reason == "squared"
    seen = []

    def spy(given):
        seen.append((type(given), given.dtype))
        given.zero_()
        return edge_map(tensor)

    before = tensor.clone()
    assert diagnose_edge_map(spy, tensor).passed
    assert seen == [(torch.Tensor, torch.float32)] and torch.equal(tensor, before)


def test_a_flat_picture_is_judged_without_dividing_by_zero() -> None:
    """A flat picture has no edges: nothing is proportional to its all-zero map, and no division by its norm."""
    flat = np.full((5, 5, 3), 0.5)
    assert not checker._proportional(np.ones((3, 3)), np.zeros((3, 3)))
    assert diagnose_edge_map(np.ones((5, 5)), flat).message == VALUES
    assert diagnose_edge_map(np.zeros((5, 5)), flat).reason == "zero"


def test_proportional_wants_a_positive_factor_within_the_tolerance() -> None:
    wanted = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert checker._proportional(2 * wanted, wanted)
    assert not checker._proportional(-2 * wanted, wanted)
    assert not checker._proportional(np.zeros((2, 2)), wanted), "a zero factor is no edge map"
    assert checker._proportional(2 * wanted + np.array([[0.0, 0.0], [0.0, 5e-4]]), wanted)
    assert not checker._proportional(2 * wanted + np.array([[0.0, 0.0], [0.0, 5e-3]]), wanted)


def test_the_checker_prints_the_label_then_the_verdict(picture, capsys) -> None:
    assert check_edge_map(edge_map, picture).message == RIGHT
    assert capsys.readouterr().out == RIGHT + "\n"
    check_edge_map(edge_map, picture, label="Sobel")
    assert capsys.readouterr().out == f"Sobel: {RIGHT}\n"
    with pytest.raises(AnswerCheckError) as error:
        check_edge_map(np.ones((6, 7)), picture, label="Sobel")
    assert str(error.value) == f"Sobel: {VALUES}"


def test_an_answer_that_is_no_map_is_told_what_to_return(picture) -> None:
    assert message("edges", picture) == (
        "Not yet right (type): the answer is a str; return the edge map as an H x W numpy array or torch tensor of "
        "real numbers."
    )


def test_a_wrong_map_with_zeros_but_no_negative_values_gets_the_steps(picture) -> None:
    answer = edge_map(picture) + 0.5
    answer[2, 2] = 0.0
    assert message(answer, picture) == VALUES


def test_a_tensor_picture_that_requires_grad_or_is_bfloat16_is_read(picture) -> None:
    tracked = torch.from_numpy(picture).float().requires_grad_(True)
    gx, gy = sobel_xy(tracked.detach().double().numpy().mean(axis=-1))
    assert diagnose_edge_map(gx**2 + gy**2, tracked).reason == "squared"
    bf16 = torch.from_numpy(picture).to(torch.bfloat16)
    gx, gy = sobel_xy(bf16.double().numpy().mean(axis=-1))
    assert diagnose_edge_map(np.abs(gx) + np.abs(gy), bf16).reason == "L1"


def test_a_float16_picture_is_judged_in_float64(picture) -> None:
    """The mean of the channels and Sobel in float16 would be off by about 1e-3, ten times the tolerance."""
    half = picture.astype(np.float16)
    gx, gy = sobel_xy(half.astype(np.float64).mean(axis=-1))
    assert diagnose_edge_map(np.abs(gx) + np.abs(gy), half).reason == "L1"
    rows, cols = np.gradient(half.astype(np.float64).mean(axis=-1))
    assert diagnose_edge_map(np.hypot(cols, rows), half).reason == "not Sobel"
