"""utils.sanity: values, messages and warnings its mutants used to change unnoticed (make mutation MODULE=sanity).

Each test names the behaviour it protects; the mutation run (make mutation MODULE=sanity) checks they catch it.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity
from torch import nn

from utils.sanity import (
    ConstantMapWarning,
    cascading_randomisation,
    edge_map,
    hog_correlation,
    independent_randomisation,
    is_blank,
    magnitude_pair,
    rank_correlation,
    sobel_magnitude,
    ssim,
)


def _unit_magnitude(a: np.ndarray) -> np.ndarray:
    return np.abs(a) / np.abs(a).max()


@pytest.mark.parametrize(
    "shape, window",
    [((3, 3), 3), ((4, 4), 3), ((4, 9), 3), ((6, 6), 5), ((5, 6), 5), ((7, 7), 7), ((8, 8), 7), ((12, 10), 7)],
)
def test_ssim_window_is_the_largest_odd_side_up_to_seven_that_fits(shape: tuple[int, int], window: int) -> None:
    """An even map side gives the odd side below it (scikit-image refuses an even window)."""
    rng = np.random.default_rng(sum(shape))
    a, b = rng.normal(size=shape), rng.normal(size=shape)
    expected = structural_similarity(_unit_magnitude(a), _unit_magnitude(b), data_range=1.0, win_size=window)
    assert ssim(a, b) == pytest.approx(expected, abs=1e-12)


def test_ssim_of_a_map_and_its_transpose_on_an_even_square() -> None:
    ramp = np.arange(36.0).reshape(6, 6)
    expected = structural_similarity(ramp / 35, ramp.T / 35, data_range=1.0, win_size=5)
    assert ssim(ramp, ramp.T) == pytest.approx(expected, abs=1e-12)
    assert ssim(ramp, ramp) == pytest.approx(1.0)


# --- messages and warnings name the argument, the measure and the value -----------------------------------------


def _exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (np.zeros(5), np.zeros((2, 2)), "a must be H x W, C x H x W or 1 x C x H x W, got shape (5,)"),
        (np.zeros((2, 2)), np.zeros(5), "b must be H x W, C x H x W or 1 x C x H x W, got shape (5,)"),
        (
            np.zeros((2, 3)),
            np.zeros((4, 5)),
            "a is 2 x 3 but b is 4 x 5; compare maps on the same grid (upsample a Grad-CAM map to the input size "
            "with utils.saliency.upsample_cam(cam, x.shape[-2:])).",
        ),
    ],
)
@pytest.mark.parametrize(
    "measure", [lambda a, b: rank_correlation(a, b, absolute=False), lambda a, b: ssim(a, b, absolute=False)]
)
def test_signed_measures_name_the_map_they_refuse(measure, a, b, message) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        measure(a, b)


@pytest.mark.parametrize(
    ("measure", "a", "b", "message"),
    [
        (
            rank_correlation,
            np.eye(6),
            np.zeros((6, 6)),
            "map b is constant (e.g. all zero), so the rank correlation is undefined; returning 0.0.",
        ),
        (
            hog_correlation,
            np.zeros((24, 24)),
            np.zeros((24, 24)),
            "both maps are constant (e.g. all zero), so the HOG correlation is undefined; returning 1.0.",
        ),
    ],
)
def test_a_constant_maps_warning_names_the_measure(measure, a, b, message) -> None:
    with pytest.warns(ConstantMapWarning, match=_exactly(message)):
        measure(a, b)


def test_hog_correlation_names_the_size_it_needs_and_the_fix() -> None:
    message = (
        "HOG features need maps of at least 24 x 24 pixels, got (20, 30); upsample them first "
        "(utils.saliency.upsample_cam for a Grad-CAM map)."
    )
    with pytest.raises(ValueError, match=_exactly(message)):
        hog_correlation(np.eye(20, 30), np.eye(20, 30))


def test_is_blank_names_the_saliency_map_it_refuses() -> None:
    with pytest.raises(ValueError, match=r"^saliency must be H x W, C x H x W or 1 x C x H x W, got shape \(5,\)"):
        is_blank(np.zeros(5))


@pytest.mark.parametrize(
    ("gray", "error", "message"),
    [
        ([[0.0] * 3] * 3, TypeError, "gray must be a numpy array or a torch tensor, not list."),
        (np.zeros((3, 3, 3)), ValueError, "gray must be one non-empty H x W array, got shape (3, 3, 3)."),
        (np.zeros((0, 3)), ValueError, "gray must be one non-empty H x W array, got shape (0, 3)."),
        (np.full((3, 3), np.nan), ValueError, "gray contains NaN or infinite values."),
    ],
)
def test_sobel_magnitude_names_what_it_refuses(gray, error, message) -> None:
    with pytest.raises(error, match=_exactly(message)):
        sobel_magnitude(gray)


def test_sobel_magnitude_of_a_single_pixel_is_zero() -> None:
    assert sobel_magnitude(np.ones((1, 1))).tolist() == [[0.0]]


@pytest.mark.parametrize(
    ("picture", "error", "message"),
    [
        (
            [[0.0] * 3] * 3,
            TypeError,
            "picture must be a real numpy array or torch tensor, H x W x 3 or H x W, not list.",
        ),
        (
            np.full((3, 3), "a"),
            TypeError,
            "picture must be a real numpy array or torch tensor, H x W x 3 or H x W, not ndarray.",
        ),
        (np.full((3, 3), np.inf), ValueError, "picture contains NaN or infinite values."),
    ],
)
def test_edge_map_names_what_it_refuses(picture, error, message) -> None:
    with pytest.raises(error, match=_exactly(message)):
        edge_map(picture)


def test_edge_map_takes_the_smallest_pictures_and_any_real_dtype() -> None:
    """3 x 3 is the smallest it takes; a uint8 photo and a bfloat16 tensor give the float64 picture's map."""
    picture = np.random.default_rng(0).integers(0, 256, size=(3, 3, 3)).astype(np.uint8)
    expected = edge_map(picture.astype(np.float64))
    assert expected.shape == (3, 3) and expected.max() > 0
    assert np.array_equal(edge_map(picture), expected)
    as_bfloat16 = torch.from_numpy(picture.astype(np.float32)).to(torch.bfloat16)  # whole numbers to 256: exact
    assert np.array_equal(edge_map(as_bfloat16), expected)


def test_independent_and_cascading_randomisation_draw_the_same_first_layer_by_default() -> None:
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    (name, cascaded), (same, alone) = next(cascading_randomisation(net)), next(independent_randomisation(net))
    assert name == same == "2" and torch.equal(cascaded[2].weight, alone[2].weight)
    (_, seeded), *_ = independent_randomisation(net, seed=0)
    assert torch.equal(alone[2].weight, seeded[2].weight) and not torch.equal(alone[2].weight, net[2].weight)
    assert torch.equal(cascaded[2].weight, next(cascading_randomisation(net, seed=0))[1][2].weight)


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (np.zeros(5), np.zeros((2, 2)), "s_a must be H x W, C x H x W or 1 x C x H x W, got shape (5,)"),
        (np.zeros((2, 2)), np.zeros(5), "s_b must be H x W, C x H x W or 1 x C x H x W, got shape (5,)"),
    ],
)
def test_magnitude_pair_names_the_map_it_refuses_as_told(a, b, message) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        magnitude_pair(a, b, ("s_a", "s_b"))


def test_magnitude_pair_names_bad_names() -> None:
    message = "names must be a pair of strings, e.g. ('s_a', 's_b'), not ('a',)."
    with pytest.raises(TypeError, match=_exactly(message)):
        magnitude_pair(np.ones((2, 2)), np.ones((2, 2)), ("a",))


def test_ssim_scales_small_maps_too() -> None:
    """Each map is divided by its own largest |value|, even when that is below 1: a map and its double are equal."""
    small = np.random.default_rng(1).random((8, 8)) * 0.25
    assert ssim(small, 2 * small) == pytest.approx(1.0) and ssim(small, 2 * small, absolute=False) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("case", "span"),
    [
        ("a's largest value and b's smallest are their largest |values|", 2.0),
        ("no value above zero: the range still reaches 0", 1.0),
    ],
)
def test_signed_ssim_uses_the_range_the_two_scaled_maps_span_together_zero_included(case, span) -> None:
    rng = np.random.default_rng(2)
    if span == 2.0:
        first, second = rng.random((8, 8)) - 0.2, -rng.random((8, 8)) + 0.2
    else:
        first, second = -rng.random((8, 8)) - 0.5, -rng.random((8, 8)) - 0.5
    first, second = first / np.abs(first).max(), second / np.abs(second).max()
    together = max(first.max(), second.max(), 0.0) - min(first.min(), second.min(), 0.0)
    assert together == pytest.approx(span, abs=0.01)
    expected = structural_similarity(first, second, data_range=together, win_size=7)
    assert ssim(first, second, absolute=False) == pytest.approx(expected, abs=1e-12)


# --- randomising a model: seeds, blocks, messages ----------------------------------------------------------------


class Block(nn.Module):
    """A block as SqueezeNet's Fire module is one: parameters in its children only, a ReLU among them."""

    def __init__(self, inner: nn.Module | None = None) -> None:
        super().__init__()
        self.conv = nn.Linear(3, 3)
        self.relu = nn.ReLU()
        self.inner = inner if inner is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(self.relu(self.conv(x)))


class NoReset(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def test_a_block_is_randomised_as_a_whole() -> None:
    net = nn.Sequential(Block(), nn.Linear(3, 2))
    steps = [(name, copy_.state_dict()["0.conv.weight"].clone()) for name, copy_ in cascading_randomisation(net)]
    assert [name for name, _ in steps] == ["1", "0"]
    assert not torch.equal(steps[1][1], net[0].conv.weight)


def test_a_part_that_cannot_be_reinitialised_is_named_by_its_full_name() -> None:
    net = nn.Sequential(Block(NoReset()), nn.Linear(3, 2))
    message = (
        "Module '0.inner' (NoReset) has parameters but no reset_parameters(), so it cannot be re-initialised; "
        "leave it out of layer_order or give it that method."
    )
    with pytest.raises(ValueError, match=_exactly(message)):
        cascading_randomisation(net)


@pytest.mark.parametrize("randomise", [cascading_randomisation, independent_randomisation])
def test_seeds_up_to_2_to_the_62_are_taken_and_beyond_are_named(randomise) -> None:
    net = nn.Sequential(nn.Linear(2, 2))
    for seed in (2**62, -(2**62), 125):
        assert [name for name, _ in randomise(net, seed=seed)] == ["0"]
    for seed in (2**62 + 1, 2**63 + 1, -(2**62) - 1):
        with pytest.raises(ValueError, match=_exactly(f"seed must lie between -2**62 and 2**62, got {seed}.")):
            randomise(net, seed=seed)


@pytest.mark.parametrize(
    ("model", "order", "error", "message"),
    [
        ("net", None, TypeError, "model must be a torch nn.Module (the classifier to randomise), not 'net'."),
        (
            nn.Sequential(nn.Linear(2, 2)),
            nn.Linear(2, 2),
            TypeError,
            "layer_order must be a list of layers (names or modules), not a Linear; for one layer pass a list of "
            "one, e.g. [model.features[12]].",
        ),
    ],
)
def test_randomisations_messages_name_what_was_given(model, order, error, message) -> None:
    for randomise in (cascading_randomisation, independent_randomisation):
        with pytest.raises(error, match=_exactly(message)):
            randomise(model, order)
