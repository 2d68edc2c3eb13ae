"""utils.road: noisy linear imputation and ROAD's curves equal the authors' code as pytorch-grad-cam ships it."""

from __future__ import annotations

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

from utils.road import ROAD_PERCENTAGES, noisy_linear_imputation, removed_pixels, road
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
