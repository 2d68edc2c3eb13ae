"""utils.road: noisy linear imputation and ROAD's curves equal the authors' code as pytorch-grad-cam ships it."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from pytorch_grad_cam.metrics.road import (
    NoisyLinearImputer,
    ROADCombined,
    ROADLeastRelevantFirst,
    ROADMostRelevantFirst,
)
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
from torch import nn

from utils.categories import describe
from utils.road import ROAD_ORDERS, ROAD_PERCENTAGES, noisy_linear_imputation, removed_pixels, road
from utils.shortcuts import small_cnn

# pytorch-grad-cam's metrics call numpy on tensors, which NumPy 2 warns about: their code, not ours
pytestmark = pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning")


def random_case(seed: int, shape=(3, 20, 24), share=0.4):
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(shape, generator=g)
    removed = (torch.rand(shape[1:], generator=g) < share).numpy()
    return image, removed


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("share", [0.1, 0.5, 0.95])
def test_imputation_equals_the_authors_code_without_noise(seed, share) -> None:
    image, removed = random_case(seed, share=share)
    theirs = NoisyLinearImputer(noise=0.0)(image, torch.from_numpy((~removed).astype(np.float32)))
    ours = noisy_linear_imputation(image, removed, noise=0.0)
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert torch.equal(ours[:, ~torch.from_numpy(removed)], image[:, ~torch.from_numpy(removed)])


def test_imputation_equals_the_authors_code_with_its_noise() -> None:
    image, removed = random_case(7)
    torch.manual_seed(11)
    theirs = NoisyLinearImputer(noise=0.01)(image, torch.from_numpy((~removed).astype(np.float32)))
    ours = noisy_linear_imputation(image, removed, noise=0.01, seed=11)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_each_filled_pixel_is_the_weighted_mean_of_its_neighbours() -> None:
    image, removed = random_case(3, shape=(1, 9, 9), share=0.3)
    filled = noisy_linear_imputation(image, removed, noise=0.0)[0].double()
    padded = torch.nn.functional.pad(filled[None, None], (1, 1, 1, 1))[0, 0]
    weights = torch.tensor([[1 / 12, 1 / 6, 1 / 12], [1 / 6, 0, 1 / 6], [1 / 12, 1 / 6, 1 / 12]], dtype=torch.float64)
    inside = torch.nn.functional.pad(torch.ones(1, 1, 9, 9, dtype=torch.float64), (1, 1, 1, 1))[0, 0]
    for r, c in zip(*np.nonzero(removed)):
        window, present = padded[r : r + 3, c : c + 3], inside[r : r + 3, c : c + 3]
        mean = (weights * window).sum() / (weights * present).sum()
        assert abs(float(filled[r, c]) - float(mean)) < 1e-5


def test_imputation_refuses_what_it_cannot_fill() -> None:
    image = torch.rand(3, 4, 4)
    with pytest.raises(ValueError, match="every pixel is removed"):
        noisy_linear_imputation(image, np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="boolean H x W array of the image's size"):
        noisy_linear_imputation(image, np.ones((4, 5), bool))
    with pytest.raises(ValueError, match="float tensor C x H x W"):
        noisy_linear_imputation(image[0], np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="noise must be a number from 0 to 1000"):
        noisy_linear_imputation(image, np.zeros((4, 4), bool), noise=-1.0)
    assert torch.equal(noisy_linear_imputation(image, np.zeros((4, 4), bool)), image)


def test_removed_pixels_take_the_share_asked_for_from_the_right_end() -> None:
    saliency = np.random.default_rng(0).random((10, 10))
    for p in ROAD_PERCENTAGES:
        top, bottom = removed_pixels(saliency, p), removed_pixels(saliency, p, "lerf")
        assert abs(top.mean() * 100 - p) <= 1 and abs(bottom.mean() * 100 - p) <= 1
        assert saliency[top].min() >= saliency[~top].max() and saliency[bottom].max() <= saliency[~bottom].min()
    # ties (a Grad-CAM map's zeros) go out a share at a time, not all together
    flat = np.zeros((10, 10))
    flat[:2] = 1.0
    assert removed_pixels(flat, 50).sum() == 50 and removed_pixels(flat, 50)[:2].all()
    assert removed_pixels(flat, 10, "lerf").sum() == 10 and not removed_pixels(flat, 10, "lerf")[:2].any()
    with pytest.raises(ValueError, match="'morf' .* or 'lerf'"):
        removed_pixels(saliency, 10, "first")
    with pytest.raises(ValueError, match="between 0 and 100"):
        removed_pixels(saliency, 100)


@pytest.mark.parametrize("seed", [0, 1])
def test_road_curves_equal_pytorch_grad_cams_metrics(seed) -> None:
    net = small_cnn(seed=seed).eval()
    x = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(seed))
    saliency = np.random.default_rng(seed).random((48, 48)).astype(np.float32)
    ours = road(net, x, saliency, 1, noise=0.0)
    targets = [ClassifierOutputSoftmaxTarget(1)]
    for p, morf, lerf in zip(ROAD_PERCENTAGES, ours.morf, ours.lerf):
        theirs_morf = ROADMostRelevantFirst(percentile=100 - p)
        theirs_lerf = ROADLeastRelevantFirst(percentile=100 - p)
        for metric in (theirs_morf, theirs_lerf):
            metric.perturbation.imputer.noise = 0.0
        drop_morf = theirs_morf(x, saliency[None], targets, net)[0]
        drop_lerf = theirs_lerf(x, saliency[None], targets, net)[0]
        assert abs((morf - ours.original) - drop_morf) < 1e-5
        assert abs((lerf - ours.original) - drop_lerf) < 1e-5


def test_road_combined_is_pytorch_grad_cams_with_its_noise() -> None:
    net = small_cnn(seed=2).eval()
    x = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    saliency = np.random.default_rng(2).random((48, 48)).astype(np.float32)
    torch.manual_seed(0)
    theirs = ROADCombined()(x, saliency[None], [ClassifierOutputSoftmaxTarget(1)], net)[0]
    ours = road(net, x, saliency, 1)
    # the noise is drawn differently (ours: one seed per imputed image): equal up to the noise's effect
    assert abs(ours.combined - theirs) < 0.01


def test_a_faithful_map_beats_its_reverse_on_a_model_whose_answer_is_known() -> None:
    """A linear model on the pixels of one region: the map that names the region must win, its reverse lose."""
    weight = torch.zeros(2, 3, 12, 12)
    weight[1, :, 3:7, 3:7] = 0.1  # class 1's score: the sum of the region's 48 values, less 1.5 per value
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 12 * 12, 2))
    with torch.no_grad():
        net[1].weight.copy_(weight.flatten(1))
        net[1].bias.copy_(torch.tensor([0.0, -48 * 0.1 * 1.5]))
    x = torch.ones(1, 3, 12, 12) + 0.1 * torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    x[:, :, 3:7, 3:7] += 1.0
    right = weight[1].sum(0).numpy() + 0.01 * np.random.default_rng(0).random((12, 12))
    wrong = right.max() - right  # high everywhere but on the region
    right_curves, wrong_curves = road(net, x, right, 1), road(net, x, wrong, 1)
    assert right_curves.combined > wrong_curves.combined + 0.05
    assert right_curves.morf.mean() < wrong_curves.morf.mean()


def test_road_checks_its_inputs_and_leaves_them_alone() -> None:
    net = small_cnn(seed=0).train()
    x = torch.rand(1, 3, 48, 48)
    before = x.clone()
    curves = road(net, x, torch.rand(48, 48), 0, percentages=(50,))
    assert curves.morf.shape == (1,) and net.training and torch.equal(x, before)
    assert all(p.requires_grad and p.grad is None for p in net.parameters())
    with pytest.raises(ValueError, match="one image, not a batch of 2"):
        road(net, torch.rand(2, 3, 48, 48), torch.rand(48, 48), 0)
    with pytest.raises(ValueError, match="upsample the map to the image's grid"):
        road(net, x, torch.rand(12, 12), 0)
    with pytest.raises(ValueError, match="percentages must be a non-empty tuple"):
        road(net, x, torch.rand(48, 48), 0, percentages=())
    with pytest.raises(ValueError, match="out of range"):
        road(net, x, torch.rand(48, 48), 5)


# --- what a caller sees: the draws a seed gives, class names, the messages that name a bad argument ----------


def test_road_is_the_model_on_images_imputed_with_seed_plus_their_position() -> None:
    """The documented recipe, rebuilt: MoRF then LeRF masks, image i's noise drawn from seed + i."""
    net = small_cnn(seed=4).eval()
    x = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(4))
    saliency = np.random.default_rng(4).random((24, 24))
    shares = (25, 50)
    for seed, curves in (
        (0, road(net, x, saliency, 1, percentages=shares)),
        (5, road(net, x, saliency, 1, percentages=shares, seed=5)),
    ):
        masks = [removed_pixels(saliency, p, order) for order in ("morf", "lerf") for p in shares]
        images = [noisy_linear_imputation(x[0], m, seed=seed + i) for i, m in enumerate(masks)]
        with torch.no_grad():
            p = torch.softmax(net(torch.stack([x[0], *images])).double(), dim=1)[:, 1].numpy()
        assert curves.percentages == shares and curves.original == pytest.approx(p[0], abs=1e-12)
        np.testing.assert_allclose(curves.morf, p[1:3], atol=1e-12)
        np.testing.assert_allclose(curves.lerf, p[3:], atol=1e-12)
    with torch.random.fork_rng(devices=[]):  # the global random state plays no part
        torch.manual_seed(123)
        again = road(net, x, saliency, 1, percentages=shares)
        torch.manual_seed(321)
        assert np.array_equal(road(net, x, saliency, 1, percentages=shares).morf, again.morf)


def test_one_order_alone_gives_that_orders_values_of_the_full_call_and_leaves_the_other_empty() -> None:
    """orders=("morf",) or ("lerf",): the same draws as the call with both (each image keeps its seed), half the
    images; the combined score, which needs both, says which one is missing."""
    net = small_cnn(seed=3).eval()
    x = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(3))
    saliency = np.random.default_rng(3).random((24, 24))
    shares = (20, 50, 80)
    both = road(net, x, saliency, 1, percentages=shares, seed=2)
    morf = road(net, x, saliency, 1, percentages=shares, seed=2, orders=("morf",))
    lerf = road(net, x, saliency, 1, percentages=shares, seed=2, orders=["lerf"])
    assert np.array_equal(morf.morf, both.morf) and np.array_equal(lerf.lerf, both.lerf)
    assert morf.lerf.shape == (0,) and lerf.morf.shape == (0,)
    assert morf.original == lerf.original == both.original and not np.array_equal(both.morf, both.lerf)
    reordered = road(net, x, saliency, 1, percentages=shares, seed=2, orders=("lerf", "morf"))
    assert np.array_equal(reordered.morf, both.morf) and np.array_equal(reordered.lerf, both.lerf)
    assert reordered.combined == both.combined
    for curves, missing in ((morf, "LeRF"), (lerf, "MoRF")):
        with pytest.raises(ValueError, match=f"^ROAD's combined score needs both orders, and {missing} was not"):
            _ = curves.combined


@pytest.mark.parametrize("orders", [(), ("morf", "morf"), "morf", ("MoRF",), ("morf", None), 1])
def test_orders_other_than_road_s_two_are_named_in_one_line(orders) -> None:
    net = small_cnn(seed=0).eval()
    message = 'orders must be ("morf", "lerf"), ("morf",) or ("lerf",): the orders to compute, each once, not '
    with pytest.raises(ValueError, match=f"^{re.escape(message + describe(orders))}.$"):
        road(net, torch.rand(1, 3, 24, 24), torch.rand(24, 24), 0, percentages=(50,), orders=orders)


@pytest.mark.parametrize("order", ROAD_ORDERS)
def test_one_share_of_one_order_is_one_image_and_a_map_off_the_grid_is_named(order) -> None:
    """A single imputed image: the call must not look for a second one, to check the map or to name its size."""
    net = small_cnn(seed=0).eval()
    x = torch.rand(1, 3, 48, 40, generator=torch.Generator().manual_seed(0))
    saliency = torch.rand(48, 40, generator=torch.Generator().manual_seed(1))
    one = road(net, x, saliency, 1, percentages=(30,), orders=(order,))
    full = road(net, x, saliency, 1, percentages=(30,))
    assert getattr(one, order).shape == (1,) and np.array_equal(getattr(one, order), getattr(full, order))
    message = "the map is 12 x 16 but the image 48 x 40; upsample the map to the image's grid first."
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        road(net, x, torch.rand(12, 16), 1, percentages=(30,), orders=(order,))


def test_road_takes_a_class_by_its_name_in_the_models_categories() -> None:
    net = small_cnn(seed=0).eval()
    x = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    saliency = np.random.default_rng(0).random((24, 24))
    by_name = road(net, x, saliency, "squirrel", percentages=(50,), categories=("cat", "squirrel"))
    by_index = road(net, x, saliency, 1, percentages=(50,))
    assert by_name.original == by_index.original and np.array_equal(by_name.morf, by_index.morf)
    assert road(net, x, saliency, 0, percentages=(50,)).original != by_index.original


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": -1}, "seed must be at least 0, got -1."),
        (
            {"percentages": []},
            "percentages must be a non-empty tuple of shares in percent, e.g. ROAD_PERCENTAGES, not [].",
        ),
        (
            {"percentages": 5},
            "percentages must be a non-empty tuple of shares in percent, e.g. ROAD_PERCENTAGES, not 5.",
        ),
        (
            {"saliency": torch.rand(12, 16)},
            "the map is 12 x 16 but the image 48 x 40; upsample the map to the image's grid first.",
        ),
        (
            {"target": "tiger cat"},
            "Class 'tiger cat' is index 282, which is out of range; valid: 0-1 (the model has 2 outputs).",
        ),
    ],
)
def test_roads_messages_name_the_bad_argument_and_its_value(change, message) -> None:
    """A non-square image (48 x 40) and map (12 x 16), so that height and width cannot be mixed up."""
    arguments = {"saliency": torch.rand(48, 40), "target": 0} | change
    saliency, target = arguments.pop("saliency"), arguments.pop("target")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        road(small_cnn(seed=0), torch.rand(1, 3, 48, 40), saliency, target, **arguments)


def test_removed_pixels_names_the_saliency_map_it_refuses() -> None:
    with pytest.raises(ValueError, match=r"^saliency must be H x W, C x H x W or 1 x C x H x W, got shape \(5,\)"):
        removed_pixels(np.zeros(5), 10)


@pytest.mark.parametrize("size", [126, 1001, 2001, 2304])
@pytest.mark.parametrize("percent", [0.1, 0.7, 1.6, 10, 33.3, 50, 90])
def test_removed_pixels_remove_as_many_as_pytorch_grad_cams_thresholds_in_both_orders(size, percent) -> None:
    """Its rule (metrics/road.py, RemoveMostRelevantFirst): keep the pixels below np.percentile(map, 100 - percent);
    LeRF applies it to 1 - map. (0.1% of 1,001 pixels, 1.6% of 126, 0.7% of 1,001: where the float index of
    np.percentile lands next to a whole number, a count from another formula is one pixel off.)"""
    saliency = np.random.default_rng(size).permutation(np.arange(size) / size).reshape(1, size)
    for order, ranked in (("morf", saliency), ("lerf", 1 - saliency)):
        theirs = ~(ranked < np.percentile(ranked, 100 - percent))
        ours = removed_pixels(saliency, percent, order)
        assert np.array_equal(ours, theirs), (order, int(ours.sum()), int(theirs.sum()))


def test_the_noise_is_noise_times_n01_from_the_seed_on_the_filled_pixels_only() -> None:
    """noise x N(0, 1), drawn (C x removed pixels, row by row) from torch.Generator().manual_seed(seed); seed=None
    draws from the global generator, as pytorch-grad-cam; a float64 image gets float64 noise."""
    image, removed = random_case(5, shape=(2, 6, 7))
    image = image.double()
    plain = noisy_linear_imputation(image, removed, noise=0.0)
    shape = (2, int(removed.sum()))
    for seed in (0, 9):
        expected = plain.clone()
        expected[:, torch.from_numpy(removed)] += 0.05 * torch.randn(
            shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
        )
        ours = noisy_linear_imputation(image, removed, noise=0.05, seed=seed)
        assert ours.dtype == torch.float64 and torch.allclose(ours, expected, rtol=0, atol=1e-14)
    default = noisy_linear_imputation(image, removed, noise=0.05)
    assert torch.equal(default, noisy_linear_imputation(image, removed, noise=0.05, seed=0))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        from_global = noisy_linear_imputation(image, removed, noise=0.05, seed=None)
        torch.manual_seed(3)
        expected = plain.clone()
        expected[:, torch.from_numpy(removed)] += 0.05 * torch.randn(shape, dtype=torch.float64)
    assert torch.allclose(from_global, expected, rtol=0, atol=1e-14)


def test_a_boolean_tensor_is_taken_as_the_removed_mask() -> None:
    image, removed = random_case(6, shape=(3, 5, 5))
    assert torch.equal(
        noisy_linear_imputation(image, torch.from_numpy(removed), noise=0.0),
        noisy_linear_imputation(image, removed, noise=0.0),
    )


@pytest.mark.parametrize(
    ("image", "removed", "options", "message"),
    [
        (
            torch.rand(4, 5),
            np.zeros((4, 5), bool),
            {},
            "image must be a float tensor C x H x W, not a torch.float32 tensor of shape (4, 5).",
        ),
        (
            torch.rand(3, 4, 5),
            np.zeros((4, 4), bool),
            {},
            "removed must be a boolean H x W array of the image's size (4, 5), not a bool array of shape (4, 4).",
        ),
        (
            torch.rand(3, 4, 5),
            torch.zeros(4, 5, dtype=torch.bool, device="meta"),
            {},
            "removed is a meta tensor (a shape without values); give the boolean H x W mask itself.",
        ),
        (
            torch.rand(3, 4, 5),
            np.ones((4, 5), bool),
            {},
            "every pixel is removed: noisy linear imputation needs at least one pixel to fill from.",
        ),
        (
            torch.rand(3, 4, 5),
            np.eye(4, 5, dtype=bool),
            {"noise": "0.01"},
            "noise must be a number from 0 to 1000 (the authors' code: 0.01), not '0.01'.",
        ),
        (
            torch.rand(3, 4, 5),
            np.eye(4, 5, dtype=bool),
            {"noise": 1001.0},
            "noise must be a number from 0 to 1000 (the authors' code: 0.01), not 1001.0.",
        ),
        (torch.rand(3, 4, 5), np.eye(4, 5, dtype=bool), {"seed": -1}, "seed must be at least 0, got -1."),
    ],
)
def test_imputations_messages_name_the_bad_argument_and_its_value(image, removed, options, message) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        noisy_linear_imputation(image, removed, **options)


def test_the_largest_noise_allowed_is_allowed() -> None:
    image, removed = random_case(8, shape=(1, 4, 4))
    filled = noisy_linear_imputation(image, removed, noise=1000.0)
    assert torch.isfinite(filled).all() and float((filled - image)[0][torch.from_numpy(removed)].abs().max()) > 10


@pytest.mark.parametrize(
    ("percent", "order", "message"),
    [
        (0, "morf", "percent must be a share of the pixels between 0 and 100 (exclusive), not 0."),
        ("10", "morf", "percent must be a share of the pixels between 0 and 100 (exclusive), not '10'."),
        (10, "first", "order must be 'morf' (most relevant first) or 'lerf' (least relevant first), not 'first'."),
    ],
)
def test_removed_pixels_messages_name_the_bad_argument_and_its_value(percent, order, message) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        removed_pixels(np.zeros((4, 4)), percent, order)


def test_one_percent_of_the_pixels_can_be_removed() -> None:
    assert removed_pixels(np.arange(100.0).reshape(10, 10), 1).sum() == 1


def test_tied_pixels_go_out_in_the_same_order_every_call() -> None:
    first = removed_pixels(np.zeros((10, 10)), 30)
    assert first.sum() == 30 and all(np.array_equal(first, removed_pixels(np.zeros((10, 10)), 30)) for _ in range(3))
