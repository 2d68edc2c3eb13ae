"""utils.faithfulness: values and messages its mutants used to change unnoticed (make mutation MODULE=faithfulness).

centre_map on sizes that are not square: a square map cannot tell the vertical spread (sigma x height) from the
horizontal one (sigma x width).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

import utils.faithfulness as faithfulness_module
from utils.faithfulness import (
    AttributionMaps,
    attribution_maps,
    blur,
    centre_map,
    edge_map,
    insertion_deletion,
    random_map,
    removal_ranks,
    replacement,
    report_card_rows,
    summarise,
)
from utils.saliency import grad_cam, upsample_cam
from utils.sanity import ConstantMapWarning, sobel_magnitude


@pytest.mark.parametrize("height, width, sigma", [(6, 15, 0.25), (15, 6, 0.25), (9, 20, 0.1), (1, 7, 0.5)])
def test_centre_map_spreads_each_axis_by_sigma_times_that_side(height: int, width: int, sigma: float) -> None:
    rows = np.arange(height) - (height - 1) / 2
    cols = np.arange(width) - (width - 1) / 2
    expected = np.exp(-0.5 * ((rows[:, None] / (sigma * height)) ** 2 + (cols[None, :] / (sigma * width)) ** 2))
    got = centre_map(height, width, sigma=sigma)
    assert got.shape == (height, width)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


def test_centre_map_falls_to_the_same_value_at_the_same_fraction_of_each_side() -> None:
    """At a quarter of the side from the centre, along either axis, the Gaussian has fallen by the same factor."""
    m = centre_map(9, 17, sigma=0.25)  # centre (4, 8); a quarter of each side: 2.25 rows, 4.25 columns
    vertical = np.interp(4 + 2.25, np.arange(9), m[:, 8])
    horizontal = np.interp(8 + 4.25, np.arange(17), m[4, :])
    assert m[4, 8] == pytest.approx(1.0)
    assert vertical == pytest.approx(horizontal, rel=0.05)


# --- what a caller sees: messages naming the value, maps a method returns, the settings the card uses -----------


def _exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


class Counting(nn.Module):
    """A small classifier that records the size of every batch it is given."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = nn.Sequential(
                nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
            )
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(int(x.shape[0]))
        return self.net(x)


def _photo(seed: int, side: int = 16) -> torch.Tensor:
    return torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    ("height", "width", "sigma", "message"),
    [
        (0, 5, 0.25, "height must be a whole number, at least 1, got 0."),
        (5, 0, 0.25, "width must be a whole number, at least 1, got 0."),
        (5, 5, 0, "sigma must be a positive number (a fraction of the side, e.g. 0.25), got 0."),
        (5, 5, 1e6, "sigma must be a positive number (a fraction of the side, e.g. 0.25), got 1000000.0."),
        (5, 5, "0.25", "sigma must be a positive number (a fraction of the side, e.g. 0.25), got '0.25'."),
    ],
)
def test_centre_maps_messages_name_the_argument_and_its_value(height, width, sigma, message) -> None:
    with pytest.raises(ValueError, match=_exactly(message)):
        centre_map(height, width, sigma=sigma)


def test_edge_map_of_a_one_channel_image_and_of_a_bfloat16_one() -> None:
    gray = torch.rand(1, 6, 7, generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(edge_map(gray), sobel_magnitude(gray[0].double()))
    whole = torch.randint(0, 256, (3, 5, 5), generator=torch.Generator().manual_seed(1)).float()
    np.testing.assert_array_equal(edge_map(whole.to(torch.bfloat16)), edge_map(whole))  # whole numbers: exact


def test_a_method_may_return_numpy_maps_or_one_c_x_h_x_w_map_for_one_image() -> None:
    net = Counting()
    x = _photo(0)
    as_numpy = np.random.default_rng(0).random((1, 1, 16, 16))
    found = attribution_maps(
        net,
        None,
        x,
        0,
        {"numpy": lambda model, batch, classes: as_numpy, "three_d": lambda model, batch, classes: batch[0].abs()},
    )
    assert found.maps["numpy"].dtype == torch.float32
    assert torch.equal(found.maps["numpy"], torch.from_numpy(as_numpy.astype(np.float32)))
    assert torch.equal(found.maps["three_d"], x.abs())


def test_a_method_that_returns_no_maps_is_named() -> None:
    message = "Method 'mine' returned list; a method must return maps (a tensor or an array)."
    with pytest.raises(TypeError, match=_exactly(message)):
        attribution_maps(Counting(), None, _photo(0), 0, {"mine": lambda model, batch, classes: [0.0]})


def test_insertion_deletion_takes_16_steps_and_8_images_a_batch_on_a_cpu_unless_told() -> None:
    net = Counting()
    x, saliency = _photo(1), np.random.default_rng(1).random((16, 16))
    assert len(insertion_deletion(net, x, saliency, 0).fractions) == 17
    net.batches.clear()
    insertion_deletion(net, x, saliency, 0, steps=40)
    assert net.batches == [8] * 10  # the image, its replacement and 2 x 39 perturbed images
    net.batches.clear()
    insertion_deletion(net, x, saliency, 0, steps=40, batch_size=64)
    assert net.batches == [64, 16]


def test_the_report_card_uses_8_steps_of_16_x_16_patches_and_8_images_a_batch_on_a_cpu() -> None:
    net = Counting()
    photos = {"a": (_photo(2, 64), 1)}
    maps = {
        name: (lambda model, batch, classes, s=s: torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(s)))
        for s, name in enumerate("mnopq")
    }
    computed = attribution_maps(net, None, photos["a"][0], 1, maps)
    net.batches.clear()
    rows = report_card_rows(net, None, photos, maps, computed=computed)
    assert net.batches == [8] * 9  # 2 + 5 maps x 2 curves x 7 inner steps = 72 images
    net.batches.clear()
    wide = report_card_rows(net, None, photos, maps, computed=computed, batch_size=64)
    assert net.batches == [64, 8] and wide == rows
    for row, name in zip(rows, "mnopq"):
        curves = insertion_deletion(net, photos["a"][0], computed.maps[name], 1, steps=8, patch=16)
        assert (row.method, row.photo, row.target) == (name, "a", 1)
        assert (row.insertion_auc, row.deletion_auc) == (curves.insertion_auc, curves.deletion_auc)


def test_the_report_card_takes_classes_by_name_in_the_models_categories() -> None:
    net = Counting()
    photos = {"a": (_photo(3), "squirrel"), "b": (_photo(4), "cat")}
    rows = report_card_rows(net, None, photos, ["random", "centre"], steps=2, patch=4, categories=("cat", "squirrel"))
    by_index = report_card_rows(
        net, None, {"a": (_photo(3), 1), "b": (_photo(4), 0)}, ["random", "centre"], steps=2, patch=4
    )
    assert [r.target for r in rows] == [1, 1, 0, 0]
    assert [(r.insertion_auc, r.deletion_auc) for r in rows] == [(r.insertion_auc, r.deletion_auc) for r in by_index]


@pytest.mark.parametrize(
    ("photos", "error", "message"),
    [
        (["x"], TypeError, "photos must be a dict {name: (x, class)}, not a list."),
        ("x" * 60, TypeError, "photos must be a dict {name: (x, class)}, not '" + "x" * 39 + "."),
        ({}, ValueError, "photos is an empty dict; give at least one photo, {name: (x, class)}."),
        (
            {"a": (None, 0, 1)},
            TypeError,
            "Each photo must be a pair (x, class): the model input and the class to explain.",
        ),
        (
            {"a": (torch.rand(1, 3, 8, 8), 0), "b": (torch.rand(1, 3, 8, 9), 0)},
            ValueError,
            "photos must each be one image (1 x C x H x W) of the same size; resize them alike.",
        ),
    ],
)
def test_report_cards_messages_name_bad_photos(photos, error, message) -> None:
    with pytest.raises(error, match=_exactly(message)):
        report_card_rows(Counting(), None, photos, ["random"])


def test_report_card_names_computed_maps_it_cannot_use() -> None:
    net = Counting()
    photos = {"a": (_photo(5), 0), "b": (_photo(6), 0)}
    both = torch.cat([photos["a"][0], photos["b"][0]])
    good = attribution_maps(net, None, both, 0, ["random"])
    cases = [
        ("not maps", TypeError, "computed must be the AttributionMaps of attribution_maps, or None, not 'not maps'."),
        (
            AttributionMaps(maps={"random": good.maps["random"][:1]}, seconds=good.seconds, inputs=both),
            ValueError,
            "computed holds maps for fewer images than the 2 photos; compute them for every photo.",
        ),
        (
            AttributionMaps(maps={"random": good.maps["random"][..., :8]}, seconds=good.seconds, inputs=both),
            ValueError,
            "computed's maps are not on the photos' grid; compute them with attribution_maps on the photos.",
        ),
        (
            AttributionMaps(maps=good.maps, seconds=good.seconds, inputs=both[:1]),
            ValueError,
            "computed's maps explain other images than the photos; compute them on the photos.",
        ),
        (
            AttributionMaps(maps=good.maps, seconds=good.seconds, inputs=both.flip(0)),
            ValueError,
            "computed's image 0 is not the photo 'a': its maps explain another image; pass the photos in the order of "
            "the images given to attribution_maps.",
        ),
    ]
    for computed, error, message in cases:
        with pytest.raises(error, match=_exactly(message)):
            report_card_rows(net, None, photos, ["random"], computed=computed)


def test_maps_computed_on_the_photos_in_another_float_dtype_are_accepted() -> None:
    """Maps computed on float64 photos explain the same photos in float32 (the inputs compared in the photos' dtype)."""
    net = Counting()
    precise = torch.rand(1, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    assert not torch.equal(precise.float().double(), precise)  # float32 rounds these values
    computed = attribution_maps(Counting().double(), None, precise, 0, ["random"])
    rows = report_card_rows(net, None, {"a": (precise.float(), 0)}, ["random"], steps=2, patch=4, computed=computed)
    assert [r.method for r in rows] == ["random"]


def test_summarise_names_what_it_was_given() -> None:
    with pytest.raises(
        TypeError, match=_exactly("rows must be a list of FaithfulnessRow (what report_card_rows returns), not 'rows'.")
    ):
        summarise("rows")


def test_a_constant_maps_warning_says_what_its_curves_are() -> None:
    message = (
        "saliency is constant (e.g. all zero): it ranks no pixel above another, so its curves are those of a fixed "
        "random order (a random map's); check the class and the method."
    )
    with pytest.warns(ConstantMapWarning, match=_exactly(message)):
        insertion_deletion(Counting(), _photo(8), np.zeros((16, 16)), 0, steps=2)


def test_a_class_name_the_model_has_no_output_for_is_named() -> None:
    message = "Class 'tiger cat' is index 282, which is out of range; valid: 0-1 (the model has 2 outputs)."
    with pytest.raises(ValueError, match=_exactly(message)):
        insertion_deletion(Counting(), _photo(9), np.random.default_rng(9).random((16, 16)), "tiger cat", steps=2)


@pytest.mark.parametrize(
    ("side", "options", "message"),
    [
        ((6, 9), {"patch": 0}, "patch must be a whole number, at least 1, got 0."),
        ((6, 9), {"patch": 7}, "patch=7 is larger than the image (6 x 9); use a smaller patch."),
        (
            (6, 12),
            {"patch": 3, "steps": 9},
            "steps=9 is more than the 8 pixels or patches there are to remove; use fewer steps.",
        ),
        (
            (33, 33),
            {"steps": 1025},
            "steps=1025 would run 2048 images through the model; at most 1024 steps give a "
            "smooth curve: use fewer steps.",
        ),
    ],
)
def test_the_curves_settings_are_named_with_the_image_they_do_not_fit(side, options, message) -> None:
    x = torch.rand(1, 3, *side)
    with pytest.raises(ValueError, match=_exactly(message)):
        insertion_deletion(Counting(), x, np.random.default_rng(0).random(side), 0, **options)


def test_the_most_steps_allowed_are_allowed_on_an_image_that_is_not_square() -> None:
    curves = insertion_deletion(
        Counting(), torch.rand(1, 3, 32, 33), np.random.default_rng(1).random((32, 33)), 0, steps=1024
    )
    assert len(curves.fractions) == 1025 and curves.fractions[-1] == 1.0


def test_a_map_off_the_images_grid_is_named_with_both_sizes() -> None:
    message = (
        "saliency is 5 x 7 but x is 6 x 8; give a map on x's grid (upsample a Grad-CAM map with "
        "utils.saliency.upsample_cam first)."
    )
    with pytest.raises(ValueError, match=_exactly(message)):
        insertion_deletion(Counting(), torch.rand(1, 3, 6, 8), np.zeros((5, 7)), 0)


def test_curves_name_their_baseline_an_image_when_given_one() -> None:
    x, saliency = _photo(10), np.random.default_rng(10).random((16, 16))
    assert insertion_deletion(Counting(), x, saliency, 0, steps=2, baseline=torch.zeros_like(x)).baseline == "image"
    assert insertion_deletion(Counting(), x, saliency, 0, steps=2, baseline="zero").baseline == "zero"


@pytest.mark.parametrize(
    ("shape", "patch", "message"),
    [
        ((4, 4, 4), 1, "shape must be (height, width) of the image, got a tuple."),
        ((0, 4), 1, "height must be a whole number, at least 1, got 0."),
        ((4, 0), 1, "width must be a whole number, at least 1, got 0."),
        ((4, 4), 0, "patch must be a whole number, at least 1, got 0."),
    ],
)
def test_removal_ranks_names_the_bad_argument(shape, patch, message) -> None:
    with pytest.raises(ValueError, match=_exactly(message)):
        removal_ranks(np.zeros((4, 4)), shape, patch)


def test_an_edge_patch_smaller_than_the_others_is_ranked_by_its_mean() -> None:
    """Patches of 2 on 3 columns: the first's mean is (0.4 + 0.4) / 2 = 0.4, the one-column edge patch's 0.5: first."""
    ranks, units = removal_ranks(np.array([[0.4, 0.4, 0.5]]), (1, 3), patch=2)
    assert ranks.tolist() == [[1, 1, 0]] and units == 2


def test_replacement_blurs_by_default_and_takes_the_mean_of_one_image() -> None:
    x = torch.rand(3, 12, 12, generator=torch.Generator().manual_seed(11))
    assert torch.equal(replacement(x), blur(x))
    assert torch.allclose(replacement(x, "mean"), x.mean(dim=(1, 2), keepdim=True).expand_as(x))


def test_a_baseline_image_is_taken_in_xs_dtype_and_its_faults_are_named() -> None:
    x = torch.rand(1, 3, 4, 5)
    taken = replacement(x, torch.ones(1, 3, 4, 5, dtype=torch.float64))
    assert taken.dtype == torch.float32 and torch.equal(taken, torch.ones(1, 3, 4, 5))
    message = "baseline has shape (1, 3, 4, 4); a baseline image must be shaped like x, (1, 3, 4, 5)."
    with pytest.raises(ValueError, match=_exactly(message)):
        replacement(x, torch.ones(1, 3, 4, 4))
    message = "baseline contains NaN or infinite values; check the image and its preprocessing."
    with pytest.raises(ValueError, match=_exactly(message)):
        replacement(x, torch.full((1, 3, 4, 5), float("nan")))


def test_the_model_free_maps_are_the_maps_they_name_on_each_image() -> None:
    x = torch.rand(2, 3, 10, 14, generator=torch.Generator().manual_seed(12))
    found = attribution_maps(Counting(), None, x, 0, ["random", "edges", "centre"])
    assert all(m.dtype == torch.float32 and tuple(m.shape) == (2, 1, 10, 14) for m in found.maps.values())
    for i in range(2):
        expected = {"random": random_map(10, 14, seed=0), "edges": edge_map(x[i]), "centre": centre_map(10, 14)}
        for name, values in expected.items():
            np.testing.assert_allclose(found.maps[name][i, 0].numpy(), values.astype(np.float32), rtol=0, atol=0)


def test_the_course_maps_grad_cam_is_upsampled_bilinearly() -> None:
    net, x = Counting(), _photo(13)
    small = grad_cam(net, "net.1", x, 0)
    expected = upsample_cam(small, x.shape[-2:], "bilinear")
    nearest = upsample_cam(small, x.shape[-2:], "nearest")
    assert (expected - nearest).abs().max() > 0.01 * expected.max() > 0  # the two modes differ on this map
    found = attribution_maps(net, "net.1", x, 0, ["grad_cam"])
    assert torch.allclose(found.maps["grad_cam"], expected, rtol=1e-5, atol=0)


def test_attribution_maps_time_each_map_with_the_clock(monkeypatch) -> None:
    ticks = iter([10.0, 10.6, 11.0, 11.2])
    monkeypatch.setattr(faithfulness_module, "_clock", lambda: next(ticks))
    found = attribution_maps(Counting(), "net.1", torch.rand(2, 3, 16, 16), 0, ["grad_cam", "random"])
    # the course's three maps of two images share 0.6 s; the random maps of two images take 0.2 s
    assert found.seconds == pytest.approx({"grad_cam": 0.1, "random": 0.1})


def test_attribution_maps_take_classes_by_name_in_the_models_categories() -> None:
    def class_map(model, batch, classes):
        return torch.tensor(classes, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 16, 16)

    x = torch.rand(2, 3, 16, 16)
    found = attribution_maps(Counting(), None, x, ["squirrel", "cat"], {"c": class_map}, categories=("cat", "squirrel"))
    assert found.maps["c"][:, 0, 0, 0].tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    ("layer", "methods", "error", "message"),
    [
        (None, 5, TypeError, "methods must be a list of method names or a dict {name: method}, not 5."),
        (None, [], ValueError, "methods must name at least one method, each by a string."),
        (None, {1: "random"}, ValueError, "methods must name at least one method, each by a string."),
        (
            None,
            ["sobel"],
            ValueError,
            "Unknown method 'sobel'; name one of grad_cam, guided_backprop, "
            "guided_grad_cam, random, edges, centre, or pass a function.",
        ),
        (None, {"x": 3}, TypeError, "Method 'x' must be a name or a function (model, x, classes) -> maps, not int."),
        (
            None,
            ["grad_cam", "guided_backprop", "random"],
            ValueError,
            "Methods grad_cam, guided_backprop need the Grad-CAM layer; pass layer (e.g. loaded.target_layer).",
        ),
    ],
)
def test_attribution_maps_names_what_it_cannot_compute(layer, methods, error, message) -> None:
    with pytest.raises(error, match=_exactly(message)):
        attribution_maps(Counting(), layer, torch.rand(1, 3, 16, 16), 0, methods)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((4, 0), "width must be a whole number, at least 1, got 0."),
        ((4, 4, -1), "seed must be a whole number, at least 0, got -1."),
        (
            (10_000, 10_000, 0),
            "A 10000 x 10000 map has more than MAX_MAP_PIXELS = 50,000,000 pixels; make it the "
            "size of the model's input (e.g. 224 x 224).",
        ),
    ],
)
def test_random_map_names_the_bad_argument(args, message) -> None:
    height, width, *seed = args
    with pytest.raises(ValueError, match=_exactly(message)):
        random_map(height, width, seed=seed[0] if seed else 0)


def test_random_maps_default_seed_is_0() -> None:
    assert np.array_equal(random_map(4, 5), np.random.default_rng(0).random((4, 5)))


@pytest.mark.parametrize(
    ("x", "error", "message"),
    [
        ([1.0], TypeError, "x must be a dense torch.Tensor, C x H x W or N x C x H x W, not list."),
        (
            torch.ones(1, 3, 4, 4).to_sparse(),
            TypeError,
            "x must be a dense torch.Tensor, C x H x W or N x C x H x W, not a sparse tensor.",
        ),
        (torch.ones(4, 4), ValueError, "x has shape (4, 4); expected an image C x H x W or a batch N x C x H x W."),
        (
            torch.ones(0, 3, 4, 4),
            ValueError,
            "x has shape (0, 3, 4, 4); expected an image C x H x W or a batch N x C x H x W.",
        ),
        (
            torch.ones(3, 4, 4, dtype=torch.int64),
            ValueError,
            "x has dtype torch.int64; preprocess the image into a float tensor.",
        ),
        (
            torch.full((3, 4, 4), float("inf")),
            ValueError,
            "x contains NaN or infinite values; check the image and its preprocessing.",
        ),
    ],
)
def test_an_image_that_is_not_one_is_named(x, error, message) -> None:
    with pytest.raises(error, match=_exactly(message)):
        blur(x)


def test_a_one_pixel_image_is_an_image() -> None:
    assert blur(torch.ones(1, 1, 1, 1)).shape == (1, 1, 1, 1)
