"""utils.discriminativity: the test's picture and its score, on hand-made maps and on lesson 04's pictures.

Hand-made maps pin the formulas; a tiny network stands in for a classifier where only the
plumbing matters; the offline model checks the lesson's claims on its picture.
"""

from __future__ import annotations

import copy
import re
import warnings

import numpy as np
import pytest
import torch
from captum.attr import GuidedBackprop, GuidedGradCam, LayerAttribution, LayerGradCam
from torch import nn

from utils.datasets import preprocess_imagenet_image, sample_image_path, two_class_image
from utils.discriminativity import (
    METHOD_TITLES,
    METHODS,
    DiscriminativityReport,
    discriminativity_map,
    discriminativity_score,
    map_correlation,
    paired_maps,
    scale_01,
)
from utils.lesson import open_photo
from utils.models import load_model
from utils.saliency import grad_cam, guided_backprop, guided_grad_cam
from utils.visualise import GRADIENT_CLIP_PERCENTILE

CATEGORIES = ("cat", "cup", "dog")
LEFT = np.zeros((4, 6), dtype=bool)
LEFT[:, :3] = True
HALVES = (LEFT, ~LEFT)
LEFT_8 = np.zeros((8, 8), dtype=bool)
LEFT_8[:, :4] = True
HALVES_8 = (LEFT_8, ~LEFT_8)


def tiny_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()


def blob(row: int, col: int, shape: tuple[int, int] = (4, 6), channels: int | None = None) -> np.ndarray:
    """A map that is 1 at one pixel, 0.5 at its neighbours in the row, 0 elsewhere."""
    values = np.zeros(shape)
    values[row, max(col - 1, 0) : col + 2] = 0.5
    values[row, col] = 1.0
    return values if channels is None else np.stack([values * (c + 1) for c in range(channels)])


@pytest.fixture(scope="module")
def rich_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """Two signed 1 x 3 x 8 x 8 maps with unequal maxima, like a GBP pair."""
    generator = torch.Generator().manual_seed(3)
    return torch.randn(1, 3, 8, 8, generator=generator), 5 * torch.randn(1, 3, 8, 8, generator=generator)


def reference(s_a, s_b) -> np.ndarray:
    """The recipe written out independently: |.| summed over channels, / own max, A - B."""

    def scaled(s):
        m = np.abs(np.asarray(s, dtype=np.float64)).reshape(-1, *np.shape(s)[-2:]).sum(0)
        return m / m.max() if m.max() > 0 else m

    return scaled(s_a) - scaled(s_b)


# --- scale_01 and the picture ---------------------------------------------------------------------


def test_scale_01_sums_magnitudes_over_channels_and_divides_by_the_max():
    saliency = torch.tensor([[[[1.0, -2.0]], [[-3.0, 0.5]], [[0.0, 0.5]]]])  # 1 x 3 x 1 x 2
    assert scale_01(saliency).tolist() == [[1.0, 0.75]]
    assert scale_01(np.array([[0.0, -4.0, 2.0]])).tolist() == [[0.0, 1.0, 0.5]]


def test_scale_01_keeps_a_zero_map_zero_and_leaves_its_input_alone():
    assert scale_01(torch.zeros(1, 1, 3, 3)).tolist() == [[0.0] * 3] * 3
    saliency = torch.randn(1, 3, 4, 4, requires_grad=True)
    kept = saliency.detach().clone()
    scaled = scale_01(saliency)
    assert torch.equal(saliency.detach(), kept) and saliency.grad is None
    assert scaled.dtype == np.float64 and scaled.max() == 1.0 and scaled.min() >= 0.0


@pytest.mark.parametrize(
    "saliency, error, message",
    [
        (
            torch.zeros(2, 3, 4, 4),
            ValueError,
            r"saliency must be H x W, C x H x W or 1 x C x H x W, got shape \(2, 3, 4, 4\)",
        ),
        (np.array([[np.nan, 1.0]]), ValueError, "saliency contains NaN or infinite values"),
        ([[1.0, 2.0]], TypeError, "saliency must be a numpy array or a torch tensor, not list"),
    ],
)
def test_scale_01_refuses_bad_maps(saliency, error, message):
    with pytest.raises(error, match=message):
        scale_01(saliency)


def test_discriminativity_map_is_the_difference_of_the_scaled_maps(rich_pair):
    s_a, s_b = rich_pair
    picture = discriminativity_map(s_a, s_b)
    assert picture.shape == (8, 8)
    assert np.allclose(picture, reference(s_a.numpy(), s_b.numpy()), atol=1e-12)
    assert np.allclose(discriminativity_map(s_b, s_a), -picture), "swapping the classes flips the sign"
    assert -1.0 <= picture.min() and picture.max() <= 1.0


def test_maps_with_different_channels_on_one_grid_compare_but_different_grids_do_not():
    cam, gbp = torch.rand(1, 1, 8, 8), torch.randn(1, 3, 8, 8)
    assert discriminativity_map(cam, gbp).shape == (8, 8)
    with pytest.raises(ValueError, match=r"s_a is 2 x 2 but s_b is 8 x 8; .*upsample_cam\(cam, x.shape\[-2:\]\)"):
        discriminativity_map(torch.rand(1, 1, 2, 2), gbp)


def heavy_tailed(seed: int = 0, shape: tuple[int, int] = (64, 64)) -> np.ndarray:
    """A gradient-like magnitude map: most pixels small, a few many times larger."""
    return np.random.default_rng(seed).pareto(1.5, size=shape)


def test_robust_scaling_divides_by_the_percentile_and_clips_above_it():
    values = np.arange(1.0, 101.0).reshape(10, 10)
    scaled = scale_01(values, clip_percentile=50)
    assert scaled.max() == 1.0 and (scaled == 1.0).sum() == 50
    assert scaled[0, 0] == pytest.approx(1.0 / np.percentile(values, 50))
    assert np.array_equal(scale_01(values, clip_percentile=100), scale_01(values)), (
        "the 100th percentile is the maximum"
    )


def test_robust_scaling_of_a_sparse_map_falls_back_to_the_maximum():
    sparse = np.zeros((40, 40))
    sparse[3, 4], sparse[5, 6] = 2.0, 8.0  # 2 of 1600 pixels: the 99.5th percentile is 0
    assert scale_01(sparse, clip_percentile=GRADIENT_CLIP_PERCENTILE).tolist() == scale_01(sparse).tolist()
    assert scale_01(sparse, clip_percentile=GRADIENT_CLIP_PERCENTILE).max() == 1.0
    assert scale_01(np.zeros((3, 3)), clip_percentile=50).max() == 0.0


def test_robust_scaling_makes_a_heavy_tailed_map_readable():
    values = heavy_tailed()
    article, robust = scale_01(values), scale_01(values, clip_percentile=GRADIENT_CLIP_PERCENTILE)
    assert article.mean() < 0.01, "divided by the maximum, most pixels sit near 0"
    assert robust.mean() > 3 * article.mean()
    assert robust.max() == 1.0 and robust.min() >= 0.0


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (0, ValueError, r"clip_percentile must be in \(0, 100\]"),
        (100.5, ValueError, r"clip_percentile must be in \(0, 100\]"),
        (True, TypeError, "clip_percentile must be a number in \\(0, 100\\] or None, not bool"),
        ("99", TypeError, "not str"),
    ],
)
def test_bad_clip_percentiles_are_named(bad, error, message):
    for call in (
        lambda: scale_01(np.ones((3, 3)), clip_percentile=bad),
        lambda: discriminativity_map(np.ones((3, 3)), np.ones((3, 3)), clip_percentile=bad),
        lambda: discriminativity_score(np.ones((3, 3)), np.ones((3, 3)), clip_percentile=bad),
    ):
        with pytest.raises(error, match=message):
            call()


def test_the_picture_keeps_the_articles_scaling_unless_asked():
    a, b = heavy_tailed(1), heavy_tailed(2)
    assert np.array_equal(discriminativity_map(a, b), scale_01(a) - scale_01(b))
    robust = discriminativity_map(a, b, clip_percentile=GRADIENT_CLIP_PERCENTILE)
    assert np.array_equal(robust, scale_01(a, GRADIENT_CLIP_PERCENTILE) - scale_01(b, GRADIENT_CLIP_PERCENTILE))
    assert np.abs(robust).mean() > 2 * np.abs(discriminativity_map(a, b)).mean(), "the robust picture is less pale"


# --- the score ------------------------------------------------------------------------------------


def test_one_outlier_pixel_does_not_fool_the_default_score_but_fools_the_articles_scaling():
    s_a = heavy_tailed(3, (224, 224))
    s_b = s_a.copy()
    s_b[100, 120] = 50 * s_a.max()  # equal to S_A except one pixel at 50 x the maximum
    robust = discriminativity_score(s_a, s_b)
    article = discriminativity_score(s_a, s_b, clip_percentile=None)
    assert robust.separation < 0.05 and robust.score < 0.05, robust
    assert article.separation > 0.9, "divided by its maximum, S_B shrinks to almost nothing outside the outlier"


def test_the_articles_scaling_is_the_documented_formula(rich_pair):
    s_a, s_b = rich_pair
    a, b = (np.abs(s.numpy()).sum(axis=(0, 1)) for s in (s_a, s_b))
    a, b = a / a.max(), b / b.max()
    report = discriminativity_score(s_a, s_b, HALVES_8, clip_percentile=None)
    assert report.separation == pytest.approx(np.abs(a - b).sum() / (a + b).sum())
    red, blue = np.clip(a - b, 0, None), np.clip(b - a, 0, None)
    assert report.localisation == pytest.approx((red[LEFT_8].sum() + blue[~LEFT_8].sum()) / np.abs(a - b).sum())


@pytest.mark.parametrize("scale", [1e-12, 1.0, 3.0, 1e9])
def test_identical_maps_score_zero_whatever_their_scale(rich_pair, scale):
    s_a = rich_pair[0]
    report = discriminativity_score(s_a, scale * s_a, HALVES_8)  # float32 rounding of scale * s_a: ~1e-7
    assert report.score < 1e-6 and report.separation < 1e-6
    assert report.correlation == pytest.approx(1.0)
    assert discriminativity_score(s_a, s_a.clone(), HALVES_8).separation == 0.0


def test_tiny_differences_score_tiny_although_the_self_scaled_picture_is_full_range(rich_pair):
    s_a = rich_pair[0]
    twin = 2 * s_a + 1e-7 * torch.randn(s_a.shape, generator=torch.Generator().manual_seed(0))
    picture = discriminativity_map(s_a, twin)
    stretched = picture / np.abs(picture).max()  # what a colour bar on the picture's own range shows
    assert stretched.min() < -0.5 and stretched.max() > 0.5, "min-max scaling makes noise look like a signal"
    assert discriminativity_score(s_a, twin, HALVES_8).score < 1e-5


def test_disjoint_maps_on_their_own_objects_score_one_and_on_each_others_zero():
    a, b = blob(1, 1), blob(2, 4)
    right_place = discriminativity_score(a, b, HALVES)
    assert right_place == DiscriminativityReport(
        score=1.0, separation=1.0, localisation=1.0, correlation=right_place.correlation
    )
    wrong_place = discriminativity_score(a, b, (HALVES[1], HALVES[0]))
    assert wrong_place.separation == 1.0 and wrong_place.localisation == 0.0 and wrong_place.score == 0.0


def test_score_formula_on_a_hand_computed_example():
    a = np.array([[1.0, 0.5, 0.0, 0.0, 0.0, 0.0]] * 4)
    b = np.array([[0.5, 0.0, 0.0, 0.0, 1.0, 0.0]] * 4)
    # Scaled maps equal the inputs (max 1). D = [0.5, 0.5, 0, 0, -1, 0] per row; sum|D| = 2, sum(a + b) = 3.
    # Red (0.5 + 0.5) lies on the left half, blue (1) on the right: localisation 1.
    report = discriminativity_score(a, b, HALVES)
    assert (
        report.separation == pytest.approx(2 / 3)
        and report.localisation == 1.0
        and report.score == pytest.approx(2 / 3)
    )
    # Moving B's blob onto the left half puts its blue in A's region: localisation 1 / 2.
    b_left = np.array([[0.5, 0.0, 1.0, 0.0, 0.0, 0.0]] * 4)
    assert discriminativity_score(a, b_left, HALVES).localisation == pytest.approx(0.5)


def test_without_masks_the_location_part_is_skipped():
    report = discriminativity_score(blob(1, 1), blob(2, 4))
    assert report.localisation is None and report.score == report.separation == 1.0


def test_scores_stay_finite_when_maps_are_all_zero():
    zero = np.zeros((4, 6))
    one_blank = discriminativity_score(blob(1, 1), zero, HALVES)
    assert one_blank == DiscriminativityReport(score=1.0, separation=1.0, localisation=1.0, correlation=0.0)
    both_blank = discriminativity_score(zero, zero, HALVES)
    assert both_blank == DiscriminativityReport(score=0.0, separation=0.0, localisation=0.0, correlation=1.0)
    assert map_correlation(zero, blob(1, 1)) == 0.0 and map_correlation(zero, zero) == 1.0


def test_correlation_of_three_channel_maps_uses_their_magnitudes():
    a = blob(1, 2, channels=3)
    assert discriminativity_score(a, -a).correlation == pytest.approx(1.0), "a sign flip is no change in magnitude"
    assert map_correlation(a, blob(1, 2)) == pytest.approx(1.0)
    assert map_correlation(blob(1, 1), blob(2, 4)) < 0


def test_map_correlation_inside_a_mask_ignores_the_rest():
    a, b = blob(1, 1) + blob(2, 4), blob(1, 1) + blob(3, 4)  # the same on the left half, different on the right
    assert map_correlation(a, b, HALVES[0]) == pytest.approx(1.0)
    assert map_correlation(a, b, HALVES[1]) < 0.5
    with pytest.raises(ValueError, match=r"mask has shape \(4, 3\) but the maps are 4 x 6"):
        map_correlation(a, b, LEFT[:, :3])


@pytest.mark.parametrize(
    "masks, message",
    [
        (
            (LEFT[:, :5], ~LEFT),
            r"mask_a has shape \(4, 5\) but the maps are 4 x 6; build masks on the model input's grid",
        ),
        ((LEFT, np.zeros((4, 6), dtype=bool)), r"mask_b is empty \(no True pixel\)"),
        ((LEFT, np.full((4, 6), 0.5)), r"mask_b must be boolean \(True on the object\) or 0/1"),
        (LEFT, r"masks must be a pair \(mask_a, mask_b\)"),
        (
            (np.ones((4, 6), dtype=bool), np.ones((4, 6), dtype=bool)),
            r"mask_a and mask_b overlap \(24 pixels are in both\)",
        ),
        ((LEFT, np.ones((4, 6), dtype=bool)), r"overlap \(12 pixels are in both\); mark each object's own pixels"),
    ],
)
def test_bad_masks_raise_clear_errors(masks, message):
    with pytest.raises(ValueError, match=message):
        discriminativity_score(blob(1, 1), blob(2, 4), masks)


def test_masks_may_be_tensors_or_zero_one_arrays_with_leading_ones():
    as_int = (LEFT.astype(int), (~LEFT).astype(np.uint8))
    as_tensor = (torch.from_numpy(LEFT)[None, None], torch.from_numpy(~LEFT)[None, None])
    expected = discriminativity_score(blob(1, 1), blob(2, 4), HALVES)
    assert discriminativity_score(blob(1, 1), blob(2, 4), as_int) == expected
    assert discriminativity_score(blob(1, 1), blob(2, 4), as_tensor) == expected


# --- paired_maps ----------------------------------------------------------------------------------


def test_paired_maps_gives_each_method_on_the_input_grid_from_one_forward_pass():
    net, x = tiny_net(), torch.rand(1, 3, 8, 8)
    calls = []
    handle = net.register_forward_hook(lambda *args: calls.append(1))
    try:
        pairs = paired_maps(net, "1", x, "cat", 2, categories=CATEGORIES)
    finally:
        handle.remove()
    assert len(calls) == 1, "both classes and all three methods from one forward pass"
    assert list(pairs) == list(METHODS) == list(METHOD_TITLES)
    # Expected values from the single-method functions and Captum, not from saliency_maps, which paired_maps calls.
    for method, (s_a, s_b) in pairs.items():
        assert s_a.shape[-2:] == (8, 8) and not s_a.requires_grad
        for got, target in ((s_a, 0), (s_b, 2)):
            assert torch.allclose(got, single_method(method, net, x, target), atol=1e-6), (method, target)
            assert torch.allclose(got, captum_map(method, net, x, target), atol=1e-6), (method, target)
    ggc_nearest = guided_grad_cam(net, "1", x, 0, interpolate_mode="nearest")
    assert not torch.allclose(pairs["guided_grad_cam"][0], ggc_nearest), "bilinear and nearest should differ here"


def single_method(method: str, net: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    """One map on x's grid from the function that computes only that method (bilinear, as paired_maps)."""
    if method == "grad_cam":
        return grad_cam(net, "1", x, target, upsample="bilinear")
    if method == "guided_backprop":
        return guided_backprop(net, x, target)
    return guided_grad_cam(net, "1", x, target, interpolate_mode="bilinear")


def captum_map(method: str, net: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    """The same map from Captum 0.9 (its warnings silenced; it gets its own copy of x)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "grad_cam":
            cam = LayerGradCam(net, net[1]).attribute(x.clone(), target, relu_attributions=True)
            return LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), interpolate_mode="bilinear")
        if method == "guided_backprop":
            return GuidedBackprop(net).attribute(x.clone(), target)
        return GuidedGradCam(net, net[1]).attribute(x.clone(), target, interpolate_mode="bilinear")


@pytest.mark.parametrize(
    "class_a, class_b, error, message",
    [
        (
            "cup",
            1,
            ValueError,
            r"class_a 'cup' and class_b 1 are the same class \('cup', index 1\); "
            r"the test compares two different classes",
        ),
        ("dog", "DOG", ValueError, "are the same class"),
        ("cat", "cupp", ValueError, r"class_b: Unknown class name 'cupp'; closest: 'cup'"),
        (3, "cat", ValueError, r"class_a: Class index 3 is out of range; valid: 0-2"),
        ("cat", 1.5, TypeError, "class_b: A class must be an index or a category name, not float"),
    ],
)
def test_bad_classes_raise_clear_errors(class_a, class_b, error, message):
    with pytest.raises(error, match=message):
        paired_maps(tiny_net(), "1", torch.rand(1, 3, 8, 8), class_a, class_b, categories=CATEGORIES)


def test_imagenet_names_are_the_default_categories():
    with pytest.raises(ValueError, match=r"class_a: Unknown class name 'tabbby'; closest: 'tabby'"):
        paired_maps(tiny_net(), "1", torch.rand(1, 3, 8, 8), "tabbby", "espresso")


def test_paired_maps_takes_one_image_only():
    with pytest.raises(ValueError, match=r"x must be one image, 1 x C x H x W or C x H x W, got \(2, 3, 8, 8\)"):
        paired_maps(tiny_net(), "1", torch.rand(2, 3, 8, 8), 0, 1, categories=CATEGORIES)
    assert paired_maps(tiny_net(), "1", torch.rand(3, 8, 8), 0, 1, categories=CATEGORIES)["grad_cam"][0].shape == (
        1,
        1,
        8,
        8,
    )


# --- lesson 04: the offline model's picture, and the two notebooks -----------------------------------


@pytest.fixture(scope="module")
def offline():
    return load_model("squeezenet1_1", device="cpu")


def test_the_lessons_claims_hold_on_the_composite(offline):
    pair = two_class_image(sample_image_path("cat"), sample_image_path("coffee"), crop_at=(0.5, 0.25))
    x = preprocess_imagenet_image(pair.image, offline.transforms, keep_aspect=False)
    pairs = paired_maps(offline.model, offline.target_layer, x, "Egyptian cat", "espresso")
    gbp, cam, guided = (
        discriminativity_score(*pairs[m], pair.masks) for m in ("guided_backprop", "grad_cam", "guided_grad_cam")
    )
    assert min(cam.score, guided.score) > 2 * gbp.score, (gbp, cam, guided)
    assert gbp.localisation > 0.9 and gbp.correlation > 0.5 and cam.correlation < 0.2
    assert min(map_correlation(*pairs["guided_backprop"], mask) for mask in pair.masks) > 0.85
    # Paleness under the article's scaling is heavy tails, not cancelling:
    # Guided Grad-CAM is as pale as GBP but separates more.
    pale = {m: np.abs(discriminativity_map(*pairs[m])).mean() for m in ("guided_backprop", "guided_grad_cam")}
    assert max(pale.values()) < 0.05 and max(pale.values()) < 1.5 * min(pale.values())
    article = {
        m: discriminativity_score(*pairs[m], clip_percentile=None).separation
        for m in ("guided_backprop", "guided_grad_cam")
    }
    assert article["guided_grad_cam"] > 1.5 * article["guided_backprop"]


def test_the_classifier_grid_explains_part_of_gbps_separation_not_its_location(offline):
    pair = two_class_image(sample_image_path("cat"), sample_image_path("coffee"), crop_at=(0.5, 0.25))
    x = preprocess_imagenet_image(pair.image, offline.transforms, keep_aspect=False)
    ablated = copy.deepcopy(offline.model)
    ablated.classifier[2] = nn.Identity()
    with_grid, without = (
        discriminativity_score(
            *paired_maps(net, "features.12", x, "Egyptian cat", "espresso")["guided_backprop"], pair.masks
        )
        for net in (offline.model, ablated)
    )
    assert without.separation < 0.75 * with_grid.separation and without.localisation > 0.9, (with_grid, without)
    assert isinstance(offline.model.classifier[2], nn.ReLU), "the loaded model keeps its ReLU"


def test_on_the_fruits_photo_grad_cam_separates_orange_from_lemon_and_gbp_does_not(offline):
    fruits = open_photo("fruits", offline)
    masks = (fruits.masks["orange"], fruits.masks["lemon"])
    pairs = paired_maps(offline.model, offline.target_layer, fruits.x, "orange", "lemon")
    gbp, cam, guided = (
        discriminativity_score(*pairs[m], masks) for m in ("guided_backprop", "grad_cam", "guided_grad_cam")
    )
    assert gbp.correlation > 0.95 and gbp.separation < 0.06, gbp
    assert min(cam.separation, guided.separation) > 3 * gbp.separation, (gbp, cam, guided)
    picture = discriminativity_map(*pairs["grad_cam"], clip_percentile=GRADIENT_CLIP_PERCENTILE)
    red, blue = np.clip(picture, 0, None), np.clip(-picture, 0, None)
    assert red[masks[0]].sum() / red.sum() > 0.7
    assert blue[masks[1]].sum() / blue.sum() > 2 * masks[1].mean()


# --- edges the formulas must keep (each pinned by a mutant that once survived) -------------------------------


def test_a_map_against_a_blank_one_is_fully_separated() -> None:
    """sum(a + b) = 1 (one pixel of a, b all zero) is still a positive total: separation 1, not 0."""
    report = discriminativity_score(np.array([[1.0, 0.0, 0.0]]), np.zeros((1, 3)), clip_percentile=None)
    assert (report.score, report.separation) == (1.0, 1.0)


def test_a_small_difference_is_localised_by_where_it_lies_not_by_its_size() -> None:
    """sum|D| = 0.1 < 1: all of the picture's red lies on A, so localisation is 1 however small the red is."""
    s_a, s_b = np.array([[1.0, 0.5, 0.0]]), np.array([[1.0, 0.4, 0.0]])
    left, right = np.array([[False, True, False]]), np.array([[True, False, True]])
    report = discriminativity_score(s_a, s_b, (left, right), clip_percentile=None)
    assert report.localisation == 1.0
    assert report.separation == round(0.1 / 2.9, 12) and report.score == round(0.1 / 2.9, 12)


def test_numbers_are_rounded_to_twelve_decimals() -> None:
    """Rounding is what makes a perfect score exactly 1.0; its number of decimals is part of the result."""
    s_a, s_b = np.array([[3.0, 1.0, 2.0, 0.5]]), np.array([[1.0, 2.0, 0.5, 3.0]])
    a, b = s_a / 3, s_b / 3
    report = discriminativity_score(s_a, s_b, clip_percentile=None)
    separation = float(np.abs(a - b).sum() / (a + b).sum())
    assert report.separation == round(separation, 12) != round(separation, 13)
    r = float(np.corrcoef(a.ravel(), b.ravel())[0, 1])
    assert report.correlation == round(r, 12) != round(r, 13)
    assert map_correlation(s_a, s_b) == round(r, 12)


def test_clip_percentile_accepts_any_value_above_zero() -> None:
    s_a, s_b = np.array([[4.0, 2.0, 1.0, 0.0]]), np.array([[0.0, 1.0, 2.0, 4.0]])
    low = discriminativity_score(s_a, s_b, clip_percentile=0.5)  # below 1 percent: still a percentile
    a = np.clip(s_a / np.percentile(s_a, 0.5), 0, 1)
    b = np.clip(s_b / np.percentile(s_b, 0.5), 0, 1)
    assert low.separation == round(float(np.abs(a - b).sum() / (a + b).sum()), 12)
    with pytest.raises(ValueError, match=r"clip_percentile must be in \(0, 100\]"):
        discriminativity_score(s_a, s_b, clip_percentile=0)


@pytest.mark.parametrize(
    "masks, message",
    [
        ((LEFT, ~LEFT, LEFT), "masks must be a pair (mask_a, mask_b) of H x W boolean arrays, got tuple."),
        ({"a": LEFT, "b": ~LEFT}, "masks must be a pair (mask_a, mask_b) of H x W boolean arrays, got dict."),
        (
            (LEFT, np.ones_like(LEFT)),
            "mask_a and mask_b overlap (12 pixels are in both); mark each object's own pixels, so that a "
            "colour on a shared pixel cannot count as placed right for either class.",
        ),
    ],
)
def test_masks_must_be_two_that_do_not_overlap(masks, message) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        discriminativity_score(blob(1, 1), blob(2, 4), masks)


@pytest.mark.parametrize("categories", ["cat", torch.arange(3), {"cat", "cup", "dog"}, ("cat", 1, "dog")])
def test_paired_maps_refuses_categories_that_are_not_a_list_of_names(categories) -> None:
    message = (
        f"categories must be a sequence of class names (str), e.g. loaded.categories, not {type(categories).__name__}."
    )
    with pytest.raises(TypeError, match="^" + re.escape(message) + "$"):
        paired_maps(tiny_net(), "1", torch.rand(1, 3, 8, 8), 0, 1, categories=categories)


@pytest.mark.parametrize("x, shown", [(np.zeros((3, 8, 8)), "ndarray"), ([[0.0]], "list")])
def test_paired_maps_names_an_input_that_is_not_a_tensor(x, shown) -> None:
    with pytest.raises(ValueError, match=rf"x must be one image, 1 x C x H x W or C x H x W, got {shown};"):
        paired_maps(tiny_net(), "1", x, 0, 1, categories=CATEGORIES)


def test_paired_maps_names_the_class_by_the_given_categories_in_its_warning() -> None:
    net = tiny_net()
    with torch.no_grad():
        net[4].weight[0] = -net[4].weight[0].abs() - 0.1  # class 0 only loses from the layer: a blank Grad-CAM
    with pytest.warns(UserWarning, match="Grad-CAM for class 'cat' is zero everywhere"):
        paired_maps(net, "1", torch.rand(1, 3, 8, 8), "cat", "cup", categories=CATEGORIES)
