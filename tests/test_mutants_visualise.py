"""utils.visualise, value by value: the printed top classes, the overlay's inputs, the outline's clip view.

tests/test_visualise.py checks the figures; these pin what its mutants used to change unnoticed: whole messages
(each names the argument and the fix), ties in the printed ranking, a gray picture under a heatmap, and the
rectangle that clips the region outlines.
"""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from utils.visualise import _view_with_margin, display_imagenet_output, overlay_heatmap, show_image


def refuses(error: type[Exception], message: str):
    """pytest.raises for the whole message, taken literally."""
    return pytest.raises(error, match="^" + re.escape(message) + "$")


NAMES = ("cat", "dog", "car")


# --- display_imagenet_output ---------------------------------------------------------------------


def test_ties_print_the_lower_index_first_even_among_a_thousand(capsys: pytest.CaptureFixture[str]) -> None:
    assert display_imagenet_output(torch.zeros(1, 1000), n=3) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.rsplit("(class ", 1)[1] for line in lines] == ["0)", "1)", "2)"]


def test_one_class_is_a_valid_n_and_bad_ones_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert display_imagenet_output(np.array([0.0, 2.0, 1.0]), n=1, categories=NAMES) == 1
    assert capsys.readouterr().out == "1. dog  66.52%  (class 1)\n"
    for n, shown in ((0, "0"), (True, "True"), (2.0, "2.0"), (np.int64(-1), "np.int64(-1)")):
        with refuses(ValueError, f"n must be a positive integer, got {shown}."):
            display_imagenet_output(torch.zeros(3), n=n, categories=NAMES)


@pytest.mark.parametrize(
    "output, message",
    [
        (torch.zeros(2, 3), "output holds a batch of 2 images; pass one row, e.g. output[i:i + 1]."),
        (torch.zeros(1, 1, 3), "output must be 1 x K or K logits, got shape (1, 1, 3)."),
        (
            torch.zeros(4),
            "output has 4 scores but there are 3 category names; pass the model's categories (LoadedModel.categories).",
        ),
        (
            torch.tensor([0.0, float("nan"), 1.0]),
            "output contains NaN or infinite logits; check the model's forward pass.",
        ),
    ],
)
def test_logits_that_do_not_fit_are_named(output: torch.Tensor, message: str) -> None:
    with refuses(ValueError, message):
        display_imagenet_output(output, categories=NAMES)


# --- overlay_heatmap ----------------------------------------------------------------------------


def test_a_gray_picture_is_blended_on_every_channel() -> None:
    gray = np.linspace(0, 1, 16).reshape(4, 4)
    blended = overlay_heatmap(gray, np.zeros((4, 4)), alpha=0.25, cmap="gray", normalise=False)
    assert blended.shape == (4, 4, 3)
    np.testing.assert_allclose(blended, np.repeat(0.75 * gray[..., None], 3, axis=-1), atol=1e-6)


def test_overlay_names_its_arguments_in_its_messages() -> None:
    picture = np.zeros((4, 4, 3))
    with refuses(TypeError, "alpha must be a number, not '0.5'."):
        overlay_heatmap(picture, np.ones((2, 2)), alpha="0.5")
    with refuses(ValueError, "alpha must lie in [0, 1] (0 = picture only, 1 = heatmap only), got 1.5."):
        overlay_heatmap(picture, np.ones((2, 2)), alpha=1.5)
    with refuses(
        ValueError, "image of shape (4, 4, 2) is not a picture; pass H x W or an array H x W x C with C = 1, 3 or 4."
    ):
        overlay_heatmap(np.zeros((4, 4, 2)), np.ones((2, 2)))


# --- the outlines' clip view ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "limits, corner, size",
    [
        (((0.0, 10.0), (5.0, 25.0)), (-0.2, 4.6), (10.4, 20.8)),
        (((-0.5, 223.5), (223.5, -0.5)), (-0.5 - 4.48, -0.5 - 4.48), (224 * 1.04, 224 * 1.04)),  # imshow: y down
    ],
)
def test_the_clip_view_widens_the_limits_by_two_percent_on_every_side(limits, corner, size) -> None:
    fig, ax = plt.subplots()
    try:
        view = _view_with_margin(ax, limits)
        assert view.get_xy() == pytest.approx(corner)
        assert (view.get_width(), view.get_height()) == pytest.approx(size)
    finally:
        plt.close(fig)


def test_overlay_names_the_heatmap_and_the_flag() -> None:
    picture = np.zeros((4, 4, 3))
    with refuses(TypeError, "normalise must be True or False, not 1."):
        overlay_heatmap(picture, np.ones((2, 2)), normalise=1)
    with refuses(
        ValueError,
        "heatmap values must lie in [0, 1] with normalise=False, these span [0, 2]; "
        "pass normalise=True, or divide the map by its maximum first.",
    ):
        overlay_heatmap(picture, np.array([[0.0, 2.0]]), normalise=False)
    with pytest.raises(ValueError, match="^heatmap "):
        overlay_heatmap(picture, np.zeros((2, 2, 2, 2)))


def test_a_gray_picture_is_drawn_on_the_full_zero_to_one_scale() -> None:
    fig, ax = plt.subplots()
    try:
        show_image(ax, np.array([[0.2, 0.6], [0.4, 0.3]]))
        assert ax.images[0].get_clim() == (0.0, 1.0), "a dim picture must not be stretched to full contrast"
    finally:
        plt.close(fig)
